/** "host:port" as people write it, with IPv6 addresses in brackets ("[::1]:8080"), both ways. */

export interface Endpoint {
  host: string;
  port: number;
}

export function formatEndpoint(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Parses "host:port" or "[v6]:port"; throws a RangeError saying what is wrong. */
export function parseEndpoint(text: string): Endpoint {
  const match = /^(?:\[([0-9A-Fa-f:.]+(?:%[\w.-]+)?)\]|([^\s:[\]]+)):(\d+)$/.exec(text);
  if (!match) {
    const hint = (text.match(/:/g)?.length ?? 0) > 1 ? ' (write IPv6 addresses in brackets: [::1]:8080)' : '';
    throw new RangeError(`expected HOST:PORT, got "${text}"${hint}`);
  }
  const port = Number(match[3]);
  if (port < 1 || port > 65535) throw new RangeError(`port must be from 1 to 65535, got ${match[3]}`);
  return { host: match[1] ?? match[2]!, port };
}
