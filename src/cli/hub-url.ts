// Where a hub is, as the user gives it to publish and subscribe: its http(s):// address (the one
// `duplex serve` prints), from which the API and WebSocket URLs follow. A ws(s):// URL, with or without
// the /ws path, names the same hub, and a path prefix is kept for hubs behind a proxy.
import { InvalidArgumentError } from 'commander';

export interface HubUrl {
  /** http(s)://host:port[/prefix], without a trailing slash. */
  base: string;
  /** The WebSocket endpoint. */
  ws: string;
}

const SCHEMES: Record<string, string> = { 'http:': 'http:', 'https:': 'https:', 'ws:': 'http:', 'wss:': 'https:' };

export function parseHubUrl(value: string): HubUrl {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError('expected the hub URL, e.g. http://localhost:8080.');
  }
  const scheme = SCHEMES[url.protocol];
  if (!scheme || url.search !== '' || url.hash !== '') {
    throw new InvalidArgumentError('expected the hub URL, e.g. http://localhost:8080 (http, https, ws or wss; no query).');
  }
  const prefix = url.pathname.replace(/\/+$/, '').replace(/\/ws$/, '');
  const base = `${scheme}//${url.host}${prefix}`;
  return { base, ws: `${scheme === 'https:' ? 'wss:' : 'ws:'}//${url.host}${prefix}/ws` };
}
