// Commander argument parsers: a bad value becomes commander's own one-line "invalid argument" error.
import { InvalidArgumentError } from 'commander';
import { parseEndpoint, type Endpoint } from '../sockets/endpoint.js';

export function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) {
    throw new InvalidArgumentError('expected a port number from 0 to 65535.');
  }
  return port;
}

export function parseMilliseconds(value: string): number {
  const ms = Number(value);
  if (!/^\d+$/.test(value) || ms < 1 || ms > 2 ** 31 - 1) {
    throw new InvalidArgumentError('expected a positive number of milliseconds.');
  }
  return ms;
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Collects repeated `-H 'Name: value'`; a repeated name is joined with ", " as HTTP allows. */
export function collectHeader(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const colon = value.indexOf(':');
  const name = value.slice(0, colon).trim();
  if (colon < 0 || !TOKEN.test(name)) {
    throw new InvalidArgumentError("expected 'Name: value'.");
  }
  const field = value.slice(colon + 1).trim();
  if (/[\r\n\0]/.test(field)) throw new InvalidArgumentError('header values cannot contain line breaks.');
  const key = Object.keys(previous).find((k) => k.toLowerCase() === name.toLowerCase()) ?? name;
  return { ...previous, [key]: key in previous ? `${previous[key]}, ${field}` : field };
}

/** "host:port", IPv6 in brackets. */
export function parseEndpointOption(value: string): Endpoint {
  try {
    return parseEndpoint(value);
  } catch (err) {
    throw new InvalidArgumentError(`${(err as Error).message}.`);
  }
}
