// The hub's URLs from the one the application gives: http(s)://host:port[/base/]. The hub's paths
// (ws, sse, poll, api/…) are resolved below the base, so a hub behind a proxy prefix works.
import type { Endpoints } from './session.js';

export function endpoints(url: string): Endpoints {
  let base: URL;
  try {
    base = new URL(url);
  } catch {
    throw new TypeError(`not a URL: ${JSON.stringify(url)}; expected http(s)://host:port`);
  }
  // A ws(s) URL of the hub is taken as its http(s) twin.
  if (base.protocol === 'ws:' || base.protocol === 'wss:') base.protocol = base.protocol === 'ws:' ? 'http:' : 'https:';
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new TypeError(`the hub URL must be http(s)://host:port, not ${JSON.stringify(url)}`);
  }
  base.search = '';
  base.hash = '';
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  const ws = new URL('ws', base);
  ws.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
  return {
    ws: ws.href,
    http(path, query = {}) {
      const target = new URL(path, base);
      for (const [name, value] of Object.entries(query)) {
        if (value !== undefined) target.searchParams.set(name, String(value));
      }
      return target.href;
    },
  };
}

/** The path of a channel's API resource; a channel may contain '/', which the hub reads back encoded. */
export function channelPath(channel: string, action: 'publish' | 'presence' | 'history'): string {
  return `api/channels/${encodeURIComponent(channel)}/${action}`;
}
