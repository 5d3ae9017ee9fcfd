// One WebSocket client of the hub: its subscriptions, its presence, its publish rate, and the
// envelopes it sends and receives (docs/protocol.md).
import { randomBytes } from 'node:crypto';
import type { MessageEvent, PreparedMessage, WebSocket } from '../index.js';
import type { HubContext } from './context.js';
import type { Identity } from './auth.js';
import { EngineError } from './engine.js';
import type { Outgoing, PresenceWatcher } from './feed.js';
import {
  ackEnvelope, errorEnvelope, parseClientMessage, presenceListEnvelope,
  subscribedEnvelope, unsubscribedEnvelope, type ClientId, type ClientMessage, type ErrorCode,
} from './protocol.js';
import type { BoundCounter } from './metrics.js';
import { TokenBucket } from './rate-limit.js';
import { Subscription } from './subscription.js';

// Client ids must not collide across the nodes of a hub sharing one engine: pids can.
const NODE = randomBytes(4).toString('hex');
let nextClient = 0;

interface Entry {
  sub: Subscription;
  watching: boolean;
  joined: boolean;
}

export class WsSession implements PresenceWatcher {
  readonly clientId: string;
  private readonly subscriptions = new Map<string, Entry>();
  private readonly bucket: TokenBucket;
  private closed = false;
  private queue: Promise<void> = Promise.resolve();
  /** Queued requests other than pipelined publishes, not yet done. */
  private acting = 0;
  // Bound once: these run for every message.
  private readonly metrics: Record<'messagesIn' | 'bytesIn' | 'messagesOut' | 'bytesOut', BoundCounter>;

  constructor(private readonly ws: WebSocket, private readonly identity: Identity, private readonly hub: HubContext) {
    this.clientId = `${NODE}-${(++nextClient).toString(36)}`;
    this.bucket = new TokenBucket(hub.limits.publishRate, Date.now());
    const m = hub.metrics;
    const ws_ = { transport: 'ws' };
    this.metrics = {
      messagesIn: m.messagesIn.with(ws_), bytesIn: m.bytesIn.with(ws_),
      messagesOut: m.messagesOut.with(ws_), bytesOut: m.bytesOut.with(ws_),
    };
    ws.on('message', (ev) => this.onMessage(ev));
    ws.on('close', () => this.onClose());
  }

  private onMessage(ev: MessageEvent): void {
    this.metrics.messagesIn.inc();
    this.metrics.bytesIn.inc(ev.rawData.length);
    const request = this.read(ev);
    if (!request.ok) {
      this.queue = this.queue.then(request.reply);
      return;
    }
    const message = request.message;
    // Replies go out in the order of the requests (a subscribe that reads history is answered before
    // the publish sent after it), and a request acts only once those before it have. Publishes
    // behind nothing but publishes are the exception: they go to the engine at once, which keeps
    // their order (one connection to Redis, or synchronous in memory), so a publisher does not wait
    // a round trip per message; their acks still wait their turn.
    if (message.type === 'publish' && this.acting === 0) {
      const reply = this.publish(message);
      this.queue = this.queue.then(() => reply).then((send) => send()).catch((err: unknown) => this.failure(err, message.id));
      return;
    }
    this.acting++;
    this.queue = this.queue.then(() => this.act(message)).finally(() => this.acting--);
  }

  /** Parses and checks an envelope; the refusal of a bad one is its reply. */
  private read(ev: MessageEvent): { ok: true; message: ClientMessage } | { ok: false; reply: () => void } {
    if (ev.isBinary) return { ok: false, reply: () => this.error('bad_request', 'the hub speaks JSON in text messages') };
    // The WebSocket layer's maxPayload bounds what gets parsed; parsing first lets the refusal carry the id.
    const parsed = parseClientMessage(ev.rawData.toString('utf8'));
    if (!parsed.ok) return { ok: false, reply: () => this.error(parsed.code, parsed.message, parsed.id) };
    const message = parsed.message;
    if (ev.rawData.length > this.hub.limits.maxMessageSize) {
      this.hub.metrics.drops.inc({ reason: 'too_large' });
      return { ok: false, reply: () => this.error('too_large', `messages are limited to ${this.hub.limits.maxMessageSize} bytes`, message.id) };
    }
    return { ok: true, message };
  }

  private async act(message: ClientMessage): Promise<void> {
    try {
      switch (message.type) {
        case 'subscribe': return await this.subscribe(message);
        case 'unsubscribe': return await this.unsubscribe(message.channel, message.id);
        case 'publish': return (await this.publish(message))();
        case 'presence': return await this.presenceList(message.channel, message.id);
      }
    } catch (err) {
      this.failure(err, message.id);
    }
  }

  private async subscribe(m: Extract<ClientMessage, { type: 'subscribe' }>): Promise<void> {
    const { channel, id } = m;
    if (!this.hub.auth.can(this.identity, 'subscribe', channel)) {
      return this.error('forbidden', `not allowed to subscribe to ${channel}`, id);
    }
    if (this.subscriptions.has(channel)) return this.error('bad_request', `already subscribed to ${channel}`, id);
    if (this.subscriptions.size >= this.hub.limits.maxSubscriptions) {
      return this.error('too_many_subscriptions', `at most ${this.hub.limits.maxSubscriptions} subscriptions per connection`, id);
    }
    const sub = new Subscription(channel, this.hub.engine, this.hub.feeds, (out) => this.deliver(out));
    const entry: Entry = { sub, watching: false, joined: false };
    this.subscriptions.set(channel, entry);
    let result;
    try {
      result = await sub.start(m.since);
    } catch (err) {
      sub.stop();
      this.subscriptions.delete(channel);
      throw err;
    }
    if (this.closed || this.subscriptions.get(channel) !== entry) return sub.stop();
    this.send(subscribedEnvelope(channel, result.offset, result.recovered, id));
    sub.goLive();
    if (m.presenceEvents && this.hub.auth.can(this.identity, 'presence', channel)) {
      this.hub.feeds.watchPresence(channel, this);
      entry.watching = true;
    }
    const member = { clientId: this.clientId, ...(this.identity.open ? {} : { user: this.identity.id }), ...(m.presence === undefined ? {} : { info: m.presence }) };
    entry.joined = true;
    await this.hub.engine.join(channel, member);
  }

  private async unsubscribe(channel: string, id?: ClientId): Promise<void> {
    const entry = this.subscriptions.get(channel);
    if (!entry) return this.error('not_subscribed', `not subscribed to ${channel}`, id);
    this.subscriptions.delete(channel);
    await this.drop(channel, entry);
    this.send(unsubscribedEnvelope(channel, id));
  }

  /** Starts the publish now; resolves to its reply, to be sent in turn. Never rejects. */
  private async publish(m: Extract<ClientMessage, { type: 'publish' }>): Promise<() => void> {
    const { channel, id } = m;
    if (!this.hub.auth.can(this.identity, 'publish', channel)) {
      return () => this.error('forbidden', `not allowed to publish to ${channel}`, id);
    }
    if (!this.bucket.take(Date.now())) {
      this.hub.metrics.drops.inc({ reason: 'rate_limit' });
      return () => this.error('rate_limited', `publishing faster than ${this.hub.limits.publishRate.rate} messages per second`, id);
    }
    try {
      const published = await this.hub.engine.publish(channel, m.data, this.identity.id);
      this.hub.metrics.publishes.inc({ source: 'ws' });
      return () => {
        if (id !== undefined) this.send(ackEnvelope(id, published.offset));
      };
    } catch (err) {
      return () => this.failure(err, id);
    }
  }

  private async presenceList(channel: string, id?: ClientId): Promise<void> {
    if (!this.hub.auth.can(this.identity, 'presence', channel)) {
      return this.error('forbidden', `not allowed to see presence in ${channel}`, id);
    }
    this.send(presenceListEnvelope(channel, await this.hub.engine.presence(channel), id));
  }

  private deliver(out: Outgoing): void {
    this.sendFrame(out.frame);
  }

  presence(frame: PreparedMessage): void {
    this.sendFrame(frame);
  }

  private sendFrame(frame: PreparedMessage): void {
    if (this.closed) return;
    this.ws.sendPrepared(frame);
    this.metrics.messagesOut.inc();
    this.metrics.bytesOut.inc(frame.length);
  }

  private send(text: string): void {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(text);
    this.metrics.messagesOut.inc();
    this.metrics.bytesOut.inc(Buffer.byteLength(text));
  }

  private error(code: ErrorCode, message: string, id?: ClientId): void {
    this.hub.metrics.errors.inc({ code });
    this.send(errorEnvelope(code, message, id));
  }

  private failure(err: unknown, id?: ClientId): void {
    if (err instanceof EngineError) return this.error('unavailable', err.message, id);
    this.hub.log('error', 'hub request failed', { error: err instanceof Error ? err.message : String(err) });
    this.error('unavailable', 'internal error', id);
  }

  private async drop(channel: string, entry: Entry): Promise<void> {
    entry.sub.stop();
    if (entry.watching) this.hub.feeds.unwatchPresence(channel, this);
    if (entry.joined) await this.hub.engine.leave(channel, this.clientId);
  }

  private onClose(): void {
    this.closed = true;
    const entries = [...this.subscriptions];
    this.subscriptions.clear();
    for (const [channel, entry] of entries) {
      this.drop(channel, entry).catch((err: unknown) => this.hub.log('warn', 'presence leave failed', { channel, error: String(err) }));
    }
  }
}
