// The WebSocket transport: one socket to /ws carrying the hub's JSON envelopes (docs/protocol.md).
// Requests that expect an answer (subscribe, publish, presence) carry an id; the hub answers one
// envelope at a time, in order. A token goes as the subprotocol bearer.<token> next to duplex.v1,
// the one way a browser can attach it to a WebSocket.
import { HubError } from './hub-error.js';
import type {
  HubMessage, Member, Session, SessionEnv, SessionHost, Transport, WebSocketLike, WireSubscription,
} from './session.js';

const OPEN = 1;
/** The close code of a refused, invalid or expired token. */
const UNAUTHORIZED_CLOSE = 4401;
const HUB_SUBPROTOCOL = 'duplex.v1';

interface Pending {
  resolve(envelope: Record<string, unknown>): void;
  reject(error: HubError): void;
  channel: string;
  timer: ReturnType<typeof setTimeout> | undefined;
}

export class WsSession implements Session {
  readonly transport: Transport = 'websocket';
  private host: SessionHost | null = null;
  private ws: WebSocketLike | null = null;
  private opened = false;
  private ended = false;
  private openTimer: ReturnType<typeof setTimeout> | undefined;
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();
  /** The id of the latest subscribe sent per channel; its answer makes the channel live. */
  private readonly subscribeIds = new Map<string, number>();
  /** Channels whose `subscribed` came back: only their messages are passed on. */
  private readonly live = new Set<string>();

  constructor(private readonly env: SessionEnv) {}

  start(host: SessionHost): void {
    this.host = host;
    const WebSocket = this.env.WebSocket;
    if (!WebSocket) return this.end(new HubError('network', 'no WebSocket implementation: pass the WebSocket option'), false);
    const token = this.env.token;
    try {
      this.ws = new WebSocket(this.env.urls.ws, token === undefined ? [HUB_SUBPROTOCOL] : [HUB_SUBPROTOCOL, `bearer.${token}`]);
    } catch (err) {
      return this.end(new HubError('network', `cannot open a WebSocket: ${messageOf(err)}`), false);
    }
    const ws = this.ws;
    ws.onopen = () => this.onOpen();
    ws.onmessage = (ev: { data: unknown }) => this.onMessage(ev.data);
    ws.onclose = (ev: { code?: number; reason?: string }) => this.onClose(ev.code ?? 1006, ev.reason ?? '');
    // A close event always follows an error event, and carries more.
    ws.onerror = () => {};
    this.openTimer = setTimeout(() => {
      this.end(new HubError('timeout', `the WebSocket did not open within ${this.env.connectTimeoutMs} ms`), false);
    }, this.env.connectTimeoutMs);
  }

  subscribe(subscription: WireSubscription): void {
    const { channel, since, presence, presenceEvents } = subscription;
    if (!this.isOpen()) return;
    const id = this.request({
      type: 'subscribe', channel,
      ...(since === undefined ? {} : { since }),
      ...(presence === undefined ? {} : { presence }),
      ...(presenceEvents ? { presenceEvents } : {}),
    }, {
      resolve: (envelope) => {
        if (this.subscribeIds.get(channel) !== id) return;
        this.live.add(channel);
        const recovered = typeof envelope.recovered === 'boolean' ? envelope.recovered : undefined;
        this.host?.subscribed(channel, Number(envelope.offset), recovered);
      },
      reject: (error) => {
        if (this.subscribeIds.get(channel) !== id || error.code === 'connection_lost' || error.code === 'closed') return;
        this.subscribeIds.delete(channel);
        // No answer in time is a sick connection rather than a refusal: start over.
        if (error.code === 'timeout') return this.end(error, true);
        this.host?.refused(channel, error);
      },
    }, channel);
    this.subscribeIds.set(channel, id);
  }

  unsubscribe(channel: string): void {
    this.live.delete(channel);
    if (!this.subscribeIds.delete(channel) || !this.isOpen()) return;
    // The answer (or a not_subscribed after a refused subscribe) concerns nobody.
    this.request({ type: 'unsubscribe', channel }, { resolve: () => {}, reject: () => {} }, channel);
  }

  publish(channel: string, data: unknown): Promise<{ offset: number }> {
    return new Promise((resolve, reject) => {
      this.request({ type: 'publish', channel, data }, { resolve: (envelope) => resolve({ offset: Number(envelope.offset) }), reject }, channel);
    });
  }

  presence(channel: string): Promise<Member[]> {
    return new Promise((resolve, reject) => {
      this.request({ type: 'presence', channel }, {
        resolve: (envelope) => resolve(Array.isArray(envelope.members) ? (envelope.members as Member[]) : []),
        reject,
      }, channel);
    });
  }

  close(error: HubError): void {
    if (this.ended) return;
    this.ended = true;
    this.teardown(error);
  }

  private isOpen(): boolean {
    return !this.ended && this.opened && this.ws?.readyState === OPEN;
  }

  /** Sends an envelope with a fresh id and arranges for its answer; returns the id. */
  private request(envelope: Record<string, unknown>, handlers: Pick<Pending, 'resolve' | 'reject'>, channel: string): number {
    const id = ++this.nextId;
    if (!this.isOpen()) {
      handlers.reject(new HubError('connection_lost', 'the connection to the hub is down; nothing was sent', { channel }));
      return id;
    }
    const timeoutMs = this.env.requestTimeoutMs;
    const timer = setTimeout(() => {
      this.pending.delete(id);
      handlers.reject(new HubError('timeout', `no answer from the hub within ${timeoutMs} ms`, { channel }));
    }, timeoutMs);
    this.pending.set(id, { ...handlers, channel, timer });
    this.ws!.send(JSON.stringify({ ...envelope, id }));
    return id;
  }

  private onOpen(): void {
    if (this.ended) return;
    clearTimeout(this.openTimer);
    this.opened = true;
    const host = this.host!;
    // Subscriptions first: they are answered before anything queued behind them is published.
    for (const subscription of host.subscriptions()) this.subscribe(subscription);
    host.opened();
  }

  private onMessage(data: unknown): void {
    if (this.ended || typeof data !== 'string') return;
    let envelope: Record<string, unknown>;
    try {
      const value: unknown = JSON.parse(data);
      if (typeof value !== 'object' || value === null) return;
      envelope = value as Record<string, unknown>;
    } catch {
      return;
    }
    const host = this.host!;
    switch (envelope.type) {
      case 'message':
        if (typeof envelope.channel === 'string' && this.live.has(envelope.channel) && typeof envelope.offset === 'number') {
          host.message(envelope as unknown as HubMessage);
        }
        return;
      case 'presence':
        if (typeof envelope.id === 'number') return this.answer(envelope.id, envelope);
        if ((envelope.event === 'join' || envelope.event === 'leave') && typeof envelope.channel === 'string') {
          const { clientId, user, info } = envelope as { clientId?: unknown; user?: unknown; info?: unknown };
          if (!this.live.has(envelope.channel) || typeof clientId !== 'string') return;
          host.presence({
            channel: envelope.channel, event: envelope.event,
            member: { clientId, ...(typeof user === 'string' ? { user } : {}), ...(info === undefined ? {} : { info }) },
          });
        }
        return;
      case 'error': {
        const code = String(envelope.code ?? 'protocol');
        const message = String(envelope.message ?? 'the hub refused a request');
        const pending = typeof envelope.id === 'number' ? this.take(envelope.id) : undefined;
        if (pending) return pending.reject(new HubError(code, message, { channel: pending.channel }));
        host.error(new HubError(code, message));
        return;
      }
      default:
        // subscribed, unsubscribed, ack
        if (typeof envelope.id === 'number') this.answer(envelope.id, envelope);
    }
  }

  private answer(id: number, envelope: Record<string, unknown>): void {
    this.take(id)?.resolve(envelope);
  }

  private take(id: number): Pending | undefined {
    const pending = this.pending.get(id);
    if (!pending) return undefined;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    return pending;
  }

  private onClose(code: number, reason: string): void {
    if (code === UNAUTHORIZED_CLOSE) {
      return this.end(new HubError('unauthorized', reason || 'the hub refused the token'), this.opened, true);
    }
    const detail = reason ? `${code} ${reason}` : String(code);
    this.end(new HubError('connection_lost', this.opened ? `the connection closed (${detail})` : `the WebSocket did not open (${detail})`), this.opened);
  }

  private end(error: HubError, opened: boolean, fatal = false): void {
    if (this.ended) return;
    this.ended = true;
    this.teardown(new HubError('connection_lost', 'the connection dropped before the hub answered; a publish may or may not be stored'));
    this.host!.ended({ error, opened, fatal });
  }

  private teardown(error: HubError): void {
    clearTimeout(this.openTimer);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close();
      } catch {
        // Already closing.
      }
    }
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) {
      clearTimeout(p.timer);
      p.reject(error);
    }
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
