// Commander argument parsers: a bad value, from a flag or from an environment variable, becomes
// commander's own one-line "invalid argument" error. Lists (from repeated flags or from one
// comma-separated environment variable) are split on commas.
import { InvalidArgumentError } from 'commander';
import { parseEndpoint, type Endpoint } from '../sockets/endpoint.js';

/** The longest delay node's timers take. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/;
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE = /^(\d+)(b|k|kb|kib|m|mb|mib)?$/i;
const SIZE_UNITS: Record<string, number> = { b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2 };
const MAX_SIZE = 1024 ** 3;

/** A duration with a unit (500ms, 30s, 5m, 24h, 7d) or a bare number of seconds; returns milliseconds. */
export function durationParser(max: number): (value: string) => number {
  return (value) => {
    const match = DURATION.exec(value.trim());
    const ms = match ? Math.round(Number(match[1]) * DURATION_UNITS[match[2] ?? 's']!) : NaN;
    if (!(ms >= 1 && ms <= max)) {
      throw new InvalidArgumentError(`expected a duration such as 30s, 5m, 24h or a number of seconds, up to ${formatDuration(max)}.`);
    }
    return ms;
  };
}

export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = DURATION_UNITS[unit]!;
    // A day reads better as 24h; days are for longer spans.
    if (ms >= (unit === 'd' ? 2 * size : size) && ms % size === 0) return `${ms / size}${unit}`;
  }
  return ms >= 1000 ? `${ms / 1000}s` : `${ms}ms`;
}

/** Bytes, bare or with a binary unit (64k, 64KiB, 1m, 1MiB). */
export function parseSize(value: string): number {
  const match = SIZE.exec(value.trim());
  const bytes = match ? Number(match[1]) * SIZE_UNITS[(match[2] ?? 'b').toLowerCase()]! : NaN;
  if (!(bytes >= 1 && bytes <= MAX_SIZE)) throw new InvalidArgumentError('expected a size in bytes such as 65536, 64KiB or 1MiB, up to 1GiB.');
  return bytes;
}

export function formatSize(bytes: number): string {
  if (bytes >= 1024 ** 2 && bytes % 1024 ** 2 === 0) return `${bytes / 1024 ** 2} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} bytes`;
}

export function countParser(min: 0 | 1): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(min === 0 ? 'expected a whole number, 0 or more.' : 'expected a whole number, 1 or more.');
    }
    return n;
  };
}

/** For repeatable list options: each value may itself be a comma-separated list; an empty one adds nothing. */
export function listCollector<T>(parse: (item: string) => T): (value: string, previous?: T[]) => T[] {
  return (value, previous = []) => {
    const items = value.split(',').map((item) => item.trim()).filter((item) => item !== '');
    return [...previous, ...items.map(parse)];
  };
}

/**
 * Secrets, keys and tokens from flags or variables: empty means unset, since compose files and CI
 * leave variables defined but empty.
 */
export function nonEmpty(value: string | undefined): string | undefined {
  return value === '' ? undefined : value;
}

export function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) {
    throw new InvalidArgumentError('expected a port number from 0 to 65535.');
  }
  return port;
}

export function parseMilliseconds(value: string): number {
  const ms = Number(value);
  if (!/^\d+$/.test(value) || ms < 1 || ms > MAX_TIMER_MS) {
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
