// The web app at "/": the static files of web/ (the pages, their styles and scripts), the browser
// client (the compiled src/client/ modules, at /client/), and the dashboard's figures at /stats. Plugged
// into the hub as its `routes` option: `new Hub({ routes: webRoutes({ hub: () => hub }) })`.
//
// Files are read on each request and revalidated by ETag (Cache-Control: no-cache), so a rebuilt client
// or an edited page shows on the next reload, and a browser never runs a stale copy. Only names made
// of plain segments with a known extension are served, which is what keeps requests inside web/.
//
// The stats live at /stats rather than under /api/: the hub answers every /api/ path itself before
// it asks its routes.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type http from 'node:http';
import type { HubContext } from './context.js';
import { sendJson, type HubOptions } from './hub.js';
import { authenticate, intParam } from './http-common.js';

export type Routes = NonNullable<HubOptions['routes']>;

export interface WebRoutesOptions {
  /** The hub whose figures /stats reports; a function because the hub is built with these routes. */
  hub: () => { readonly context: HubContext };
  /** Where the pages are; web/ at the repository root by default. */
  webDir?: URL;
  /** Where the compiled browser client is; dist/src/client/ by default. */
  clientDir?: URL;
}

export const STATS_PATH = '/stats';
const CLIENT_PREFIX = '/client/';
/** The most channels /stats lists: channel names are chosen by clients, so their number is unbounded. */
export const MAX_STATS_CHANNELS = 200;

// dist/src/hub/web-routes.js → the repository root is three levels up.
const WEB_DIR = new URL('../../../web/', import.meta.url);
const CLIENT_DIR = new URL('../client/', import.meta.url);

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  css: 'text/css; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  svg: 'image/svg+xml',
  png: 'image/png',
  json: 'application/json; charset=utf-8',
};

// The pages load only what this hub serves: a page that tried a CDN font or an outside script would be
// refused here as well as caught by the tests.
const PAGE_HEADERS = {
  'Content-Security-Policy':
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; " +
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'Referrer-Policy': 'no-referrer',
};

const SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/;

export function webRoutes(options: WebRoutesOptions): Routes {
  const webDir = options.webDir ?? WEB_DIR;
  const clientDir = options.clientDir ?? CLIENT_DIR;
  // Without the pages (a package built without web/), their paths are left to whoever routes next.
  const hasPages = existsSync(new URL('index.html', webDir));
  return (req, res, url) => {
    const path = url.pathname;
    if (path === STATS_PATH) {
      if (!allowMethod(req, res)) return true;
      sendStats(options.hub().context, req, res, url);
      return true;
    }
    const file = path.startsWith(CLIENT_PREFIX)
      ? resolveFile(clientDir, path.slice(CLIENT_PREFIX.length), ['js'])
      : hasPages ? resolveFile(webDir, path === '/' ? 'index' : path.slice(1), Object.keys(TYPES)) : null;
    if (file === null) return false;
    if (!allowMethod(req, res)) return true;
    void serveFile(req, res, file).catch((err: unknown) => {
      options.hub().context.log('error', 'web file failed', { path, error: err instanceof Error ? err.message : String(err) });
      if (!res.headersSent) sendJson(res, 500, { error: 'internal', message: 'cannot read the file' });
      else res.destroy();
    });
    return true;
  };
}

interface StaticFile {
  url: URL;
  type: string;
}

/**
 * The file a request path names under `root`, or null when the path is not a servable name: every
 * segment plain (no "..", no slash or backslash smuggled in by percent-encoding, no hidden files) and
 * the extension one of `extensions`. A name without an extension is a page: "chat" is chat.html.
 */
function resolveFile(root: URL, relative: string, extensions: readonly string[]): StaticFile | null {
  const segments: string[] = [];
  for (const raw of relative.split('/')) {
    let segment: string;
    try {
      segment = decodeURIComponent(raw);
    } catch {
      return null;
    }
    if (!SEGMENT.test(segment)) return null;
    segments.push(segment);
  }
  const last = segments[segments.length - 1]!;
  const dot = last.lastIndexOf('.');
  if (dot === -1 && extensions.includes('html')) segments[segments.length - 1] = `${last}.html`;
  else if (dot === -1 || !extensions.includes(last.slice(dot + 1))) return null;
  const name = segments.join('/');
  const url = new URL(name, root);
  // The segment rule already keeps the name inside root; this states the invariant where it matters.
  if (!url.href.startsWith(root.href)) return null;
  return { url, type: TYPES[name.slice(name.lastIndexOf('.') + 1)]! };
}

function allowMethod(req: http.IncomingMessage, res: http.ServerResponse): boolean {
  if (req.method === 'GET' || req.method === 'HEAD') return true;
  res.setHeader('Allow', 'GET, HEAD');
  sendJson(res, 405, { error: 'method_not_allowed', message: 'use GET' });
  return false;
}

async function serveFile(req: http.IncomingMessage, res: http.ServerResponse, file: StaticFile): Promise<void> {
  let body: Buffer;
  try {
    body = await readFile(file.url);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR') {
      return sendJson(res, 404, { error: 'not_found', message: `nothing at ${new URL(req.url ?? '/', 'http://hub').pathname}` });
    }
    throw err;
  }
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
  const headers: Record<string, string | number> = {
    'Content-Type': file.type,
    'Cache-Control': 'no-cache',
    ETag: etag,
    'X-Content-Type-Options': 'nosniff',
    ...(file.type.startsWith('text/html') ? PAGE_HEADERS : {}),
  };
  if (matchesEtag(req.headers['if-none-match'], etag)) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  res.writeHead(200, { ...headers, 'Content-Length': body.length });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function matchesEtag(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t === etag || t === `W/${etag}`;
  });
}

/** One channel as the dashboard lists it. */
export interface ChannelStats {
  channel: string;
  /** Subscribers on this node, over every transport. */
  subscribers: number;
  /** The latest offset, when the engine tells. */
  offset?: number;
  history?: number;
  members?: number;
}

/** What /stats answers: the metrics snapshot, plus the channels the caller may see. */
export interface StatsBody {
  time: number;
  uptimeSeconds: number;
  metrics: ReturnType<HubContext['metrics']['snapshot']>['metrics'];
  rates: { messagesIn: number[]; messagesOut: number[] };
  channels: ChannelStats[];
  /** How many channels there are in all; `channels` stops at MAX_STATS_CHANNELS. */
  channelCount: number;
}

// The memory engine can list its channels; other engines may not, and then only local figures show.
type ChannelLister = { channelStats?: () => Array<{ channel: string; offset: number; history: number; members: number }> };

function sendStats(ctx: HubContext, req: http.IncomingMessage, res: http.ServerResponse, url: URL): void {
  const window = ctx.metrics.rates.messagesIn.capacity;
  const seconds = intParam(ctx, res, 'seconds', url.searchParams.get('seconds'), 1, window);
  if (!seconds.ok) return;
  // Channel names can be private (user ids, document ids): a hub with auth shows each caller only the
  // channels it may subscribe to, as GET /api/channels does.
  const identity = authenticate(ctx, req, res);
  if (!identity) return;
  const all = channelStats(ctx).filter((c) => ctx.auth.can(identity, 'subscribe', c.channel));
  const body: StatsBody = {
    ...ctx.metrics.snapshot(Date.now(), seconds.value ?? window),
    channels: all.slice(0, MAX_STATS_CHANNELS),
    channelCount: all.length,
  };
  sendJson(res, 200, body);
}

/** Every channel the engine or this node knows, the busiest (most subscribers, then most messages) first. */
function channelStats(ctx: HubContext): ChannelStats[] {
  const local = ctx.feeds.counts();
  const figures = new Map<string, ChannelStats>();
  for (const s of (ctx.engine as ChannelLister).channelStats?.() ?? []) {
    figures.set(s.channel, {
      channel: s.channel, subscribers: local.get(s.channel) ?? 0, offset: s.offset, history: s.history, members: s.members,
    });
  }
  for (const [channel, subscribers] of local) if (!figures.has(channel)) figures.set(channel, { channel, subscribers });
  return [...figures.values()].sort(
    (a, b) => b.subscribers - a.subscribers || (b.offset ?? 0) - (a.offset ?? 0) || (a.channel < b.channel ? -1 : 1),
  );
}
