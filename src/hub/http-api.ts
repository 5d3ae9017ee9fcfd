// The hub's HTTP API: publishing for backends and for clients on the fallbacks (SSE, long-polling),
// history and presence reads, and a channel list.
//   POST /api/channels/:channel/publish   body: application/json (any JSON value) or text/* (a string)
//   GET  /api/channels/:channel/history?since=N&limit=L
//   GET  /api/channels/:channel/presence
//   GET  /api/channels
// The channel may contain '/', so it is everything between '/api/channels/' and the last segment.
import type http from 'node:http';
import type { Identity } from './auth.js';
import type { HubContext } from './context.js';
import { EngineError } from './engine.js';
import { sendJson } from './hub.js';
import {
  allowOrigin, authenticate, authorize, CHANNEL_RULE, fail, intParam, messageObject, methodNotAllowed, preflight,
} from './http-common.js';
import { isValidChannel } from './protocol.js';
import { TokenBucket, type RateOptions } from './rate-limit.js';

export const DEFAULT_HISTORY_LIMIT = 100;
export const MAX_HISTORY_LIMIT = 1000;

const PREFIX = '/api/channels';
const ACTIONS = { publish: 'POST', history: 'GET', presence: 'GET' } as const;
type ApiAction = keyof typeof ACTIONS;

export function handleApi(ctx: HubContext, req: http.IncomingMessage, res: http.ServerResponse, url: URL): void {
  allowOrigin(req, res);
  const path = url.pathname;
  if (path === PREFIX || path === `${PREFIX}/`) {
    if (req.method === 'OPTIONS') return preflight(req, res, 'GET');
    if (req.method !== 'GET') return methodNotAllowed(ctx, res, 'GET');
    return void listChannels(ctx, req, res).catch((err: unknown) => failure(ctx, res, err));
  }
  const route = parseChannelPath(path);
  if (route === null) return fail(ctx, res, 404, 'not_found', `nothing at ${path}; see /api/channels/<channel>/{publish,history,presence}`);
  const method = ACTIONS[route.action];
  if (req.method === 'OPTIONS') return preflight(req, res, method);
  if (req.method !== method) return methodNotAllowed(ctx, res, method);
  if (route.channel === null || !isValidChannel(route.channel)) return fail(ctx, res, 400, 'invalid_channel', CHANNEL_RULE);
  const channel = route.channel;
  const run = route.action === 'publish' ? publish(ctx, req, res, channel)
    : route.action === 'history' ? history(ctx, req, res, url, channel)
    : presence(ctx, req, res, channel);
  run.catch((err: unknown) => failure(ctx, res, err));
}

/** The channel (null when not decodable) and the action of /api/channels/<channel>/<action>, or null for other paths. */
function parseChannelPath(path: string): { channel: string | null; action: ApiAction } | null {
  if (!path.startsWith(`${PREFIX}/`)) return null;
  const slash = path.lastIndexOf('/');
  const action = path.slice(slash + 1);
  if (slash <= PREFIX.length || !Object.hasOwn(ACTIONS, action)) return null;
  let channel: string | null;
  try {
    channel = decodeURIComponent(path.slice(PREFIX.length + 1, slash));
  } catch {
    channel = null;
  }
  return { channel, action: action as ApiAction };
}

async function publish(ctx: HubContext, req: http.IncomingMessage, res: http.ServerResponse, channel: string): Promise<void> {
  const identity = authorize(ctx, req, res, 'publish', channel);
  if (!identity) return;
  const kind = bodyKind(req.headers['content-type']);
  if (kind === null) {
    return fail(ctx, res, 415, 'bad_request', 'send the data as application/json (any JSON value) or text/plain (a string)');
  }
  const wait = limiterFor(ctx).take(rateKey(req, identity), Date.now());
  if (wait > 0) {
    ctx.metrics.drops.inc({ reason: 'rate_limit' });
    return fail(ctx, res, 429, 'rate_limited', `publishing faster than ${ctx.limits.publishRate.rate} messages per second`, {
      'Retry-After': String(wait),
    });
  }
  const max = ctx.limits.maxMessageSize;
  const body = await readBody(req, max);
  if (body === 'aborted') return;
  if (body === 'too_large') {
    ctx.metrics.drops.inc({ reason: 'too_large' });
    // The rest of the body is never read, so this connection cannot carry another request.
    return fail(ctx, res, 413, 'too_large', `messages are limited to ${max} bytes`, { Connection: 'close' });
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    return fail(ctx, res, 400, 'bad_request', 'the body is not valid UTF-8');
  }
  let data: unknown = text;
  if (kind === 'json') {
    try {
      data = JSON.parse(text);
    } catch {
      return fail(ctx, res, 400, 'bad_request', 'the body is not valid JSON (send text/plain for a string)');
    }
  }
  const message = await ctx.engine.publish(channel, data, identity.id);
  ctx.metrics.publishes.inc({ source: 'http' });
  sendJson(res, 200, { offset: message.offset, time: message.time });
}

async function history(ctx: HubContext, req: http.IncomingMessage, res: http.ServerResponse, url: URL, channel: string): Promise<void> {
  const since = intParam(ctx, res, 'since', url.searchParams.get('since'), 0, Number.MAX_SAFE_INTEGER);
  if (!since.ok) return;
  const limit = intParam(ctx, res, 'limit', url.searchParams.get('limit'), 0, MAX_HISTORY_LIMIT);
  if (!limit.ok) return;
  if (!authorize(ctx, req, res, 'history', channel)) return;
  const result = await ctx.engine.history(channel, {
    ...(since.value === undefined ? {} : { since: since.value }),
    limit: limit.value ?? DEFAULT_HISTORY_LIMIT,
  });
  sendJson(res, 200, {
    channel, offset: result.offset, recovered: result.recovered, messages: result.messages.map(messageObject),
  });
}

async function presence(ctx: HubContext, req: http.IncomingMessage, res: http.ServerResponse, channel: string): Promise<void> {
  if (!authorize(ctx, req, res, 'presence', channel)) return;
  sendJson(res, 200, { channel, members: await ctx.engine.presence(channel) });
}

interface ChannelFigures {
  channel: string;
  offset?: number;
  history?: number;
  members?: number;
  /** Subscribers on this node. */
  subscribers: number;
}

/** Channels the caller may subscribe to, with what the engine can tell about them (the memory engine: offsets). */
async function listChannels(ctx: HubContext, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const identity = authenticate(ctx, req, res);
  if (!identity) return;
  const figures = new Map<string, ChannelFigures>();
  const local = ctx.feeds.counts();
  const engine = ctx.engine as { channelStats?: () => Array<Omit<ChannelFigures, 'subscribers'>> };
  for (const s of engine.channelStats?.() ?? []) {
    figures.set(s.channel, { channel: s.channel, offset: s.offset, history: s.history, members: s.members, subscribers: local.get(s.channel) ?? 0 });
  }
  for (const [channel, subscribers] of local) if (!figures.has(channel)) figures.set(channel, { channel, subscribers });
  const channels = [...figures.values()]
    .filter((f) => ctx.auth.can(identity, 'subscribe', f.channel))
    .sort((a, b) => (a.channel < b.channel ? -1 : a.channel > b.channel ? 1 : 0));
  sendJson(res, 200, { channels });
}

function failure(ctx: HubContext, res: http.ServerResponse, err: unknown): void {
  if (err instanceof EngineError) return fail(ctx, res, err.status, 'unavailable', err.message);
  ctx.log('error', 'hub API request failed', { error: err instanceof Error ? err.message : String(err) });
  fail(ctx, res, 500, 'unavailable', 'internal error');
}

function bodyKind(contentType: string | undefined): 'json' | 'text' | null {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/json' || type.endsWith('+json')) return 'json';
  // No Content-Type at all is read as text: the body is a string, whatever it looks like.
  if (type === '' || type.startsWith('text/')) return 'text';
  return null;
}

/**
 * The body, or 'too_large' as soon as it is known to exceed `max` (from Content-Length, or once the
 * bytes received pass it: the rest is left unread), or 'aborted' when the client went away.
 */
function readBody(req: http.IncomingMessage, max: number): Promise<Buffer | 'too_large' | 'aborted'> {
  const declared = Number(req.headers['content-length']);
  if (declared > max) return Promise.resolve('too_large');
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (result: Buffer | 'too_large' | 'aborted') => {
      req.off('data', onData).off('end', onEnd).off('close', onClose);
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.pause();
        return finish('too_large');
      }
      chunks.push(chunk);
    };
    const onEnd = () => finish(Buffer.concat(chunks, size));
    const onClose = () => finish('aborted');
    req.on('data', onData).on('end', onEnd).on('close', onClose);
  });
}

/**
 * Whose budget a publish spends: the token's subject or the API key when the hub checks credentials,
 * the client's address on an open hub, where everyone is 'anonymous'. Behind a proxy every client
 * shares its address; X-Forwarded-For is not trusted, since any client can write it.
 */
function rateKey(req: http.IncomingMessage, identity: Identity): string {
  return identity.open ? `ip:${req.socket.remoteAddress ?? ''}` : `id:${identity.id}`;
}

/** One token bucket per publisher, forgetting those idle long enough to have refilled. */
class PublishLimiter {
  private readonly buckets = new Map<string, { bucket: TokenBucket; used: number }>();
  private sweepAt = 10_000;

  constructor(private readonly options: RateOptions) {}

  /** 0 when the publish may go ahead, otherwise the seconds to wait (for Retry-After). */
  take(key: string, now: number): number {
    let entry = this.buckets.get(key);
    if (!entry) {
      if (this.buckets.size >= this.sweepAt) this.sweep(now);
      entry = { bucket: new TokenBucket(this.options, now), used: now };
      this.buckets.set(key, entry);
    }
    entry.used = now;
    return entry.bucket.take(now) ? 0 : Math.max(1, Math.ceil(1 / this.options.rate));
  }

  private sweep(now: number): void {
    const refill = (this.options.burst / this.options.rate) * 1000;
    for (const [key, entry] of this.buckets) if (now - entry.used >= refill) this.buckets.delete(key);
    // Sweeping again only once the map has doubled keeps the cost per publish constant.
    this.sweepAt = Math.max(10_000, this.buckets.size * 2);
  }
}

const limiters = new WeakMap<HubContext, PublishLimiter>();

function limiterFor(ctx: HubContext): PublishLimiter {
  let limiter = limiters.get(ctx);
  if (!limiter) {
    limiter = new PublishLimiter(ctx.limits.publishRate);
    limiters.set(ctx, limiter);
  }
  return limiter;
}
