// Long-polling: GET /poll?channel=C[&since=N][&limit=L][&timeout=ms]. Answers at once when history
// holds messages after `since`, otherwise holds the request until one is published (then answers with
// everything new, read from history so nothing is skipped) or until the timeout (an empty list).
// Stateless: the client passes the answer's `offset` as its next `since`, so any node can answer.
//   → { "channel", "offset": the next since, "recovered": false when messages were lost, "messages": [...] }
import type http from 'node:http';
import type { HubContext } from './context.js';
import { EngineError, type HistoryResult } from './engine.js';
import { sendJson } from './hub.js';
import {
  allowOrigin, authorize, channelParam, fail, intParam, messageObject, methodNotAllowed, preflight,
} from './http-common.js';
import { DEFAULT_HISTORY_LIMIT, MAX_HISTORY_LIMIT } from './http-api.js';
import type { Outgoing, Subscriber } from './feed.js';

export function handlePoll(ctx: HubContext, req: http.IncomingMessage, res: http.ServerResponse, url: URL, timeoutMs: number): void {
  allowOrigin(req, res);
  if (req.method === 'OPTIONS') return preflight(req, res, 'GET');
  if (req.method !== 'GET') return methodNotAllowed(ctx, res, 'GET');
  const channel = channelParam(ctx, res, url);
  if (channel === null) return;
  const since = intParam(ctx, res, 'since', url.searchParams.get('since'), 0, Number.MAX_SAFE_INTEGER);
  if (!since.ok) return;
  const limit = intParam(ctx, res, 'limit', url.searchParams.get('limit'), 1, MAX_HISTORY_LIMIT);
  if (!limit.ok) return;
  const timeout = intParam(ctx, res, 'timeout', url.searchParams.get('timeout'), 0, Number.MAX_SAFE_INTEGER);
  if (!timeout.ok) return;
  if (!authorize(ctx, req, res, 'subscribe', channel)) return;
  new Poll(ctx, res, channel, limit.value ?? DEFAULT_HISTORY_LIMIT, Math.min(timeout.value ?? timeoutMs, timeoutMs)).start(since.value);
}

/** One held request; it listens before it reads, so a message published in between wakes it. */
class Poll implements Subscriber {
  private since = 0;
  private state: 'starting' | 'reading' | 'waiting' | 'done' = 'starting';
  // A message arrived while history was being read: read again before waiting.
  private woken = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ctx: HubContext,
    private readonly res: http.ServerResponse,
    private readonly channel: string,
    private readonly limit: number,
    private readonly timeoutMs: number,
  ) {
    ctx.metrics.connections.inc({ transport: 'poll' });
    ctx.metrics.connectionsTotal.inc({ transport: 'poll' });
    res.on('close', () => this.finish());
  }

  start(since: number | undefined): void {
    this.ctx.feeds.add(this.channel, this);
    void this.read(since);
  }

  deliver(out: Outgoing): void {
    if (this.state === 'waiting' && out.message.offset > this.since) void this.read(this.since);
    else if (this.state !== 'done') this.woken = true;
  }

  /** Reads history after `since` (no `since`: only learns the current offset) and answers if there is anything to say. */
  private async read(since: number | undefined): Promise<void> {
    this.state = 'reading';
    this.woken = false;
    let history: HistoryResult;
    try {
      history = await this.ctx.engine.history(this.channel, since === undefined ? { limit: 0 } : { since, limit: this.limit });
    } catch (err) {
      return this.failure(err);
    }
    if (this.state !== 'reading') return;
    // Like a subscription: a `since` beyond the channel's offset (a restarted engine) starts from the offset.
    this.since = Math.min(since ?? history.offset, history.offset);
    if (history.messages.length > 0 || !history.recovered) return this.answer(history);
    this.state = 'waiting';
    // The wait is timed from the first read, once `since` is known for the empty answer.
    this.timer ??= setTimeout(() => this.answer({ messages: [], offset: this.since, recovered: true }), this.timeoutMs);
    if (this.woken) void this.read(this.since);
  }

  private answer(history: HistoryResult): void {
    if (this.state === 'done') return;
    const messages = history.messages;
    const next = messages.length > 0 ? messages[messages.length - 1]!.offset : this.since;
    const body = { channel: this.channel, offset: next, recovered: history.recovered, messages: messages.map(messageObject) };
    this.finish();
    const socket = this.res.socket;
    const before = socket?.bytesWritten ?? 0;
    sendJson(this.res, 200, body);
    // What the answer put on the wire, head included; measured rather than encoding the body twice.
    if (messages.length > 0) {
      this.ctx.metrics.messagesOut.inc({ transport: 'poll' }, messages.length);
      this.ctx.metrics.bytesOut.inc({ transport: 'poll' }, (socket?.bytesWritten ?? 0) - before);
    }
  }

  private failure(err: unknown): void {
    if (this.state === 'done') return;
    this.finish();
    if (err instanceof EngineError) return fail(this.ctx, this.res, err.status, 'unavailable', err.message);
    this.ctx.log('error', 'poll failed', { error: err instanceof Error ? err.message : String(err) });
    fail(this.ctx, this.res, 500, 'unavailable', 'internal error');
  }

  private finish(): void {
    if (this.state === 'done') return;
    this.state = 'done';
    clearTimeout(this.timer);
    this.ctx.feeds.remove(this.channel, this);
    this.ctx.metrics.connections.dec({ transport: 'poll' });
  }
}
