// Server-Sent Events: GET /sse?channel=C[&since=N][&token=T], one channel per stream. Each message is
// an event whose id is its offset, so the browser's automatic reconnect (Last-Event-ID) resumes with no
// gap and no duplicate; the stream opens with a 'subscribed' event whose id is where it starts, so even
// a client that saw no message yet resumes from the right place. Any node can answer a resume.
import type http from 'node:http';
import type { Identity } from './auth.js';
import type { HubContext } from './context.js';
import { EngineError } from './engine.js';
import type { Outgoing } from './feed.js';
import {
  allowOrigin, authorize, channelParam, fail, intParam, methodNotAllowed, preflight,
} from './http-common.js';
import { subscribedEnvelope } from './protocol.js';
import { Subscription } from './subscription.js';
import { DEFAULT_MAX_BUFFERED } from '../websocket/websocket.js';

/** How long a browser waits before reconnecting a dropped stream. */
export const SSE_RETRY_MS = 2000;
/**
 * Bytes that may wait for a slow reader before it is dropped (it then reconnects and catches up from
 * history): the WebSocket default, so both transports ride out the same bursts, and a burst larger
 * than the kernel's socket buffer does not cost a healthy client its stream. A resume's replay is
 * allowed on top, until the stream has drained once. Queued events are mostly strings shared by every
 * stream, so the memory a slow reader holds is far below this.
 */
export const SSE_MAX_BUFFERED = DEFAULT_MAX_BUFFERED;
// setTimeout fires at once for longer delays.
const MAX_TIMER_MS = 2 ** 31 - 1;

export function handleSse(ctx: HubContext, req: http.IncomingMessage, res: http.ServerResponse, url: URL, keepAliveMs: number): void {
  allowOrigin(req, res);
  if (req.method === 'OPTIONS') return preflight(req, res, 'GET');
  if (req.method !== 'GET') return methodNotAllowed(ctx, res, 'GET');
  const channel = channelParam(ctx, res, url);
  if (channel === null) return;
  // The browser's own resume wins over the `since` of the URL it keeps reconnecting to.
  const header = req.headers['last-event-id'];
  const lastEventId = typeof header === 'string' && header !== '' ? header : undefined;
  const since = lastEventId !== undefined
    ? intParam(ctx, res, 'Last-Event-ID', lastEventId, 0, Number.MAX_SAFE_INTEGER)
    : intParam(ctx, res, 'since', url.searchParams.get('since'), 0, Number.MAX_SAFE_INTEGER);
  if (!since.ok) return;
  const identity = authorize(ctx, req, res, 'subscribe', channel);
  if (!identity) return;
  void new SseStream(ctx, res, channel, identity, keepAliveMs).start(since.value);
}

const eventBytes = new WeakMap<Outgoing, number>();

/** The byte length of a message's event, measured once for all streams. */
function sseBytes(out: Outgoing): number {
  let bytes = eventBytes.get(out);
  if (bytes === undefined) {
    bytes = Buffer.byteLength(out.sse);
    eventBytes.set(out, bytes);
  }
  return bytes;
}

class SseStream {
  private readonly sub: Subscription;
  private closed = false;
  private opened = false;
  private replaying = false;
  private maxBuffered = SSE_MAX_BUFFERED;
  private ping: NodeJS.Timeout | undefined;
  private expiry: NodeJS.Timeout | undefined;

  constructor(
    private readonly ctx: HubContext,
    private readonly res: http.ServerResponse,
    private readonly channel: string,
    private readonly identity: Identity,
    private readonly keepAliveMs: number,
  ) {
    this.sub = new Subscription(channel, ctx.engine, ctx.feeds, (out) => this.deliver(out));
    res.on('close', () => this.stop());
    res.on('error', () => this.stop());
  }

  async start(since: number | undefined): Promise<void> {
    let result;
    try {
      result = await this.sub.start(since);
    } catch (err) {
      this.stop();
      if (err instanceof EngineError) return fail(this.ctx, this.res, err.status, 'unavailable', err.message);
      this.ctx.log('error', 'SSE subscribe failed', { error: err instanceof Error ? err.message : String(err) });
      return fail(this.ctx, this.res, 500, 'unavailable', 'internal error');
    }
    if (this.closed) return;
    this.res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      // nginx and friends would otherwise hold events back to fill their buffers.
      'X-Accel-Buffering': 'no',
    });
    this.opened = true;
    this.ctx.metrics.connections.inc({ transport: 'sse' });
    this.ctx.metrics.connectionsTotal.inc({ transport: 'sse' });
    this.write(
      `retry: ${SSE_RETRY_MS}\n\n` +
      `id: ${this.sub.lastOffset}\nevent: subscribed\ndata: ${subscribedEnvelope(this.channel, result.offset, result.recovered)}\n\n`,
    );
    this.replaying = true;
    this.sub.goLive();
    this.replaying = false;
    if (this.closed) return;
    if (this.res.writableNeedDrain) {
      this.maxBuffered = SSE_MAX_BUFFERED + this.res.writableLength;
      this.res.once('drain', () => (this.maxBuffered = SSE_MAX_BUFFERED));
    }
    // Comment lines keep proxies from timing the stream out, and make writes to a dead peer fail.
    if (this.keepAliveMs > 0) this.ping = setInterval(() => this.write(': ping\n\n'), this.keepAliveMs);
    this.expireWithToken();
  }

  private deliver(out: Outgoing): void {
    if (!this.write(out.sse)) return;
    this.ctx.metrics.messagesOut.inc({ transport: 'sse' });
    this.ctx.metrics.bytesOut.inc({ transport: 'sse' }, sseBytes(out));
  }

  private write(chunk: string): boolean {
    if (this.closed) return false;
    if (!this.replaying && this.res.writableLength > this.maxBuffered) {
      this.ctx.metrics.drops.inc({ reason: 'slow_consumer' });
      this.ctx.log('info', 'SSE client dropped: reading too slowly', { channel: this.channel, buffered: this.res.writableLength });
      this.res.destroy();
      this.stop();
      return false;
    }
    this.res.write(chunk);
    return true;
  }

  /** Ends the stream when the token stops being valid; the browser's reconnect then gets its 401. */
  private expireWithToken(): void {
    const at = this.ctx.auth.expiresAt(this.identity);
    if (at === undefined || this.closed) return;
    const wait = at - Date.now();
    if (wait <= 0) {
      this.res.end();
      return;
    }
    this.expiry = setTimeout(() => this.expireWithToken(), Math.min(wait, MAX_TIMER_MS));
  }

  private stop(): void {
    if (this.closed) return;
    this.closed = true;
    this.sub.stop();
    clearInterval(this.ping);
    clearTimeout(this.expiry);
    if (this.opened) this.ctx.metrics.connections.dec({ transport: 'sse' });
  }
}
