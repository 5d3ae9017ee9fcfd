// The hub's client library: one ES module for browsers and Node (no node: imports, no packages; only
// the globals both have, and WebSocket/fetch overridable). It speaks docs/protocol.md over WebSocket,
// or over SSE + HTTP publish, or over long-polling, and hides which from the application.
//
//   import { connect } from './hub-client.js';
//   const hub = connect('http://127.0.0.1:8080', { token, onState: (s) => show(s) });
//   const sub = hub.subscribe('chat.room1', (m) => print(m.offset, m.data), { since: saved });
//   await hub.publish('chat.room1', { text: 'hi' });          // → { offset }
//   await hub.presence('chat.room1');                          // → [{ clientId, user?, info? }]
//   sub.lastOffset; sub.unsubscribe(); hub.close();
//   hub.on('state' | 'error' | 'transport', fn) → off()
//   In Node 20, which has no WebSocket global: connect(url, { WebSocket }) with duplex's WebSocket.
//
// Decisions:
// - Delivery. Every subscription keeps the last offset it delivered and resubscribes after it on each
//   reconnect (`since`), so nothing published meanwhile is lost (within the hub's history), and no
//   offset at or below it is ever delivered again, so nothing is duplicated. Without `since`, a
//   subscription starts at the channel's offset when the hub confirms it (onSubscribed). A confirmation
//   with a lower offset than ours means the hub's numbering restarted (an in-memory hub that
//   restarted, recovered: false): the subscription then follows the hub's new numbering.
// - One subscription per channel per client: subscribe() throws HubError 'already_subscribed' for a
//   second one. A subscription the hub refuses (forbidden, invalid channel) ends, and its error goes
//   to its onError, or else to the client's 'error' event.
// - Requests while not open. publish() and presence() made while connecting, reconnecting or offline
//   wait in a queue (at most maxQueue; beyond that they reject with 'queue_full') and go out in order
//   once a connection opens. A publish already sent when the connection drops rejects with
//   'connection_lost' and is not resent: the hub may or may not have stored it, and sending it again
//   could store it twice. Every sent request gives up after requestTimeoutMs ('timeout').
// - Publishing order. Publishes from one client are stored in the order of the publish() calls on
//   every transport (the HTTP fallbacks send them one at a time).
// - States. 'connecting' until the first connection opens, 'open', 'reconnecting' after one dropped,
//   'offline' when navigator.onLine is false (when there is a navigator) or after offlineAfter
//   consecutive failed attempts (it keeps retrying, at the backoff's pace, and at once on the
//   browser's 'online' event), 'closed' after close() or a refused credential (final).
// - Backoff. Attempt n after n consecutive failures waits min(maxMs, initialMs·factorⁿ⁻¹) less a random
//   share of at most `jitter`. A connection that stayed open STABLE_MS resets the count; one that drops
//   sooner counts as a failure, so a hub that accepts and drops at once is not hammered.
// - Transports. 'auto' (the default) starts with WebSocket (SSE when there is no WebSocket class),
//   and moves to the next of websocket → sse → poll (round again) after fallbackAfter consecutive
//   attempts that did not open. The first transport that opens is kept for the client's life: later
//   failures are outages, retried on it. A forced transport is never left.
// - Auth. The token goes as the bearer.<token> subprotocol next to duplex.v1 on WebSocket, and in an
//   Authorization header on every HTTP request, /sse and /poll too: never in a URL, which access logs
//   keep (from another origin, the header costs a CORS preflight, which the hub answers). A 4401 close
//   or an HTTP 401 closes the client with the error (state 'closed', 'error' event, lastError): a retry
//   with the same token cannot succeed. On WebSocket the hub can only refuse after the upgrade, so the
//   client is briefly 'open' before it closes.
// - Fallback limits. SSE and polling use one HTTP request per subscribed channel (the hub's /sse and
//   /poll take one channel), so a browser's six connections per HTTP/1.1 host bound how many channels
//   they carry. They have no presence of their own: the client does not appear in the channel's
//   presence and gets no join/leave events; presence() still answers.
// - Listeners and handlers that throw do not break the client: the exception is rethrown on a later
//   tick, where the platform reports it.
import { Backoff, type BackoffOptions } from './backoff.js';
import { endpoints } from './endpoints.js';
import { HubError } from './hub-error.js';
import { PollSession } from './poll-session.js';
import type {
  FetchLike, HubMessage, Member, PresenceEvent, Session, SessionEnd, SessionEnv, SessionHost, Transport,
  WebSocketConstructorLike, WireSubscription,
} from './session.js';
import { SseSession } from './sse-session.js';
import { WsSession } from './ws-session.js';

export { HubError } from './hub-error.js';
export type { BackoffOptions } from './backoff.js';
export type {
  FetchInit, FetchLike, HubMessage, Member, PresenceEvent, ResponseLike, Transport, WebSocketConstructorLike, WebSocketLike,
} from './session.js';

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'offline' | 'closed';

export interface ConnectOptions {
  /** A hub token (HS256 JWT), for hubs started with an auth secret. */
  token?: string;
  /** Default 'auto'. */
  transport?: Transport | 'auto';
  /** Default globalThis.WebSocket. */
  WebSocket?: WebSocketConstructorLike;
  /** Default globalThis.fetch. */
  fetch?: FetchLike;
  backoff?: BackoffOptions;
  /** How long the hub may hold a long-poll, in ms (default 25 000; the hub caps it). */
  pollTimeoutMs?: number;
  /** How long opening a WebSocket or an event stream may take, in ms (default 10 000). */
  connectTimeoutMs?: number;
  /** How long a sent request (publish, presence …) may wait for its answer, in ms (default 15 000). */
  requestTimeoutMs?: number;
  /** 'auto': consecutive failures to open one transport before trying the next (default 2). */
  fallbackAfter?: number;
  /** Consecutive failed attempts after which the state is 'offline' (default 5). */
  offlineAfter?: number;
  /** Requests that may wait for a connection (default 100). */
  maxQueue?: number;
  /** Whether the device is online; default: navigator.onLine where there is one, else true. */
  online?: () => boolean;
  /** Registered as a 'state' listener before the first state, 'connecting', is announced. */
  onState?: (state: ConnectionState) => void;
}

export interface SubscribeOptions {
  /** Resume after this offset: every later message, exactly once and in order. Default: from now on. */
  since?: number;
  /** This client's public info in the channel's presence (WebSocket only). */
  presence?: unknown;
  /** Others joining and leaving the channel (WebSocket only). */
  onPresence?: (event: PresenceEvent) => void;
  /** On every (re)subscription: the channel's offset then, and with a `since`, whether history reached back to it. */
  onSubscribed?: (info: SubscribedInfo) => void;
  /** The hub refused the subscription, which is then over; without this, the client's 'error' event. */
  onError?: (error: HubError) => void;
}

export interface SubscribedInfo {
  offset: number;
  recovered?: boolean;
}

export interface Subscription {
  readonly channel: string;
  /** The last offset delivered (or, before any, where the subscription starts; 0 until known). */
  readonly lastOffset: number;
  unsubscribe(): void;
}

export interface HubClientEvents {
  state: (state: ConnectionState) => void;
  error: (error: HubError) => void;
  transport: (transport: Transport) => void;
}

/** How long a connection must stay open to count as a success that resets the backoff. */
const STABLE_MS = 5000;
const TRANSPORTS: readonly Transport[] = ['websocket', 'sse', 'poll'];

export function connect(url: string, options: ConnectOptions = {}): HubClient {
  return new HubClient(url, options);
}

interface Channel {
  readonly channel: string;
  readonly handler: (message: HubMessage) => void;
  readonly options: SubscribeOptions;
  lastOffset: number | undefined;
}

interface Queued {
  run(session: Session): Promise<unknown>;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

export class HubClient {
  private currentState: ConnectionState = 'connecting';
  private currentTransport: Transport | null = null;
  private error: HubError | null = null;
  private readonly listeners: { [K in keyof HubClientEvents]: Set<HubClientEvents[K]> } = {
    state: new Set(), error: new Set(), transport: new Set(),
  };
  private readonly env: SessionEnv;
  private readonly backoff: Backoff;
  private readonly candidates: Transport[];
  private readonly fallbackAfter: number;
  private readonly offlineAfter: number;
  private readonly maxQueue: number;
  private readonly online: () => boolean;
  private readonly channels = new Map<string, Channel>();
  private queue: Queued[] = [];
  private session: Session | null = null;
  private retry: ReturnType<typeof setTimeout> | undefined;
  private candidate = 0;
  /** Consecutive attempts that did not give a stable connection. */
  private failures = 0;
  /** Consecutive attempts of the current transport that did not open, for 'auto'. */
  private openFailures = 0;
  private openedAt = 0;
  private everOpen = false;
  private readonly onOnline = () => this.retryNow();

  constructor(url: string, options: ConnectOptions = {}) {
    const WebSocket = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructorLike }).WebSocket;
    this.env = {
      urls: endpoints(url),
      token: options.token,
      WebSocket,
      fetch: options.fetch ?? defaultFetch(),
      connectTimeoutMs: positive('connectTimeoutMs', options.connectTimeoutMs ?? 10_000),
      requestTimeoutMs: positive('requestTimeoutMs', options.requestTimeoutMs ?? 15_000),
      pollTimeoutMs: positive('pollTimeoutMs', options.pollTimeoutMs ?? 25_000),
    };
    this.backoff = new Backoff(options.backoff);
    this.fallbackAfter = positive('fallbackAfter', options.fallbackAfter ?? 2);
    this.offlineAfter = positive('offlineAfter', options.offlineAfter ?? 5);
    this.maxQueue = positive('maxQueue', options.maxQueue ?? 100);
    this.online = options.online ?? navigatorOnline;
    const available = (t: Transport) => (t === 'websocket' ? WebSocket !== undefined : this.env.fetch !== undefined);
    const wanted = options.transport ?? 'auto';
    if (wanted === 'auto') {
      this.candidates = TRANSPORTS.filter(available);
      if (this.candidates.length === 0) throw new TypeError('neither a WebSocket class nor fetch here: pass the WebSocket or the fetch option');
    } else {
      if (!TRANSPORTS.includes(wanted)) throw new TypeError(`unknown transport ${JSON.stringify(wanted)}`);
      if (!available(wanted)) {
        throw new TypeError(wanted === 'websocket'
          ? 'no WebSocket class here: pass the WebSocket option (in Node 20, duplex\'s WebSocket)'
          : 'no fetch here: pass the fetch option');
      }
      this.candidates = [wanted];
    }
    if (options.onState) this.listeners.state.add(options.onState);
    const scope = globalThis as { addEventListener?: (type: string, fn: () => void) => void };
    scope.addEventListener?.('online', this.onOnline);
    // Listeners registered and subscriptions made right after connect() see the first attempt.
    queueMicrotask(() => {
      if (this.currentState === 'closed') return;
      this.emit('state', 'connecting');
      this.attempt();
    });
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  /** The transport in use or being tried. */
  get transport(): Transport | null {
    return this.currentTransport;
  }

  /** Why the last attempt failed (null once a connection opens), or why the client closed. */
  get lastError(): HubError | null {
    return this.error;
  }

  on<K extends keyof HubClientEvents>(event: K, listener: HubClientEvents[K]): () => void {
    const set = this.listeners[event] as Set<HubClientEvents[K]>;
    set.add(listener);
    return () => set.delete(listener);
  }

  subscribe(channel: string, handler: (message: HubMessage) => void, options: SubscribeOptions = {}): Subscription {
    if (this.currentState === 'closed') throw new HubError('closed', 'the client is closed', { channel });
    if (typeof channel !== 'string' || channel === '') throw new TypeError('the channel must be a non-empty string');
    if (typeof handler !== 'function') throw new TypeError('the handler must be a function');
    const { since } = options;
    if (since !== undefined && !(Number.isSafeInteger(since) && since >= 0)) {
      throw new RangeError(`since must be a non-negative integer offset, not ${String(since)}`);
    }
    if (this.channels.has(channel)) throw new HubError('already_subscribed', `this client already subscribes to ${channel}`, { channel });
    const entry: Channel = { channel, handler, options, lastOffset: since };
    this.channels.set(channel, entry);
    // A session that is still opening takes it too: WebSocket sends it on open, the fallbacks start a feed.
    this.session?.subscribe(wire(entry));
    return {
      channel,
      get lastOffset() {
        return entry.lastOffset ?? 0;
      },
      unsubscribe: () => {
        if (this.channels.get(channel) !== entry) return;
        this.channels.delete(channel);
        this.session?.unsubscribe(channel);
      },
    };
  }

  publish(channel: string, data: unknown): Promise<{ offset: number }> {
    if (data === undefined) return Promise.reject(new HubError('bad_request', 'data must be a JSON value', { channel }));
    return this.request((session) => session.publish(channel, data), channel);
  }

  presence(channel: string): Promise<Member[]> {
    return this.request((session) => session.presence(channel), channel);
  }

  /** Closes the connection for good; waiting requests reject with 'closed'. */
  close(): void {
    this.shut(null);
  }

  private request<T>(run: (session: Session) => Promise<T>, channel: string): Promise<T> {
    if (this.currentState === 'closed') return Promise.reject(new HubError('closed', 'the client is closed', { channel }));
    if (this.currentState === 'open' && this.session) return run(this.session);
    if (this.queue.length >= this.maxQueue) {
      return Promise.reject(new HubError('queue_full', `${this.maxQueue} requests are already waiting for a connection`, { channel }));
    }
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run, resolve: resolve as (value: unknown) => void, reject });
    });
  }

  private attempt(): void {
    this.retry = undefined;
    if (this.currentState === 'closed') return;
    if (!this.online()) {
      // Not a failure of ours: check again later, or at once on the browser's 'online' event.
      this.setState('offline');
      this.schedule(this.backoff.delay(this.failures + 1));
      return;
    }
    const transport = this.candidates[this.candidate]!;
    this.setTransport(transport);
    const session = transport === 'websocket' ? new WsSession(this.env) : transport === 'sse' ? new SseSession(this.env) : new PollSession(this.env);
    this.session = session;
    session.start(this.hostFor(session));
  }

  private hostFor(session: Session): SessionHost {
    const current = () => this.session === session;
    return {
      subscriptions: () => [...this.channels.values()].map(wire),
      resumeFrom: (channel) => this.channels.get(channel)?.lastOffset,
      opened: () => {
        if (current()) this.opened(session);
      },
      ended: (end) => {
        if (!current()) return;
        this.session = null;
        this.ended(end);
      },
      subscribed: (channel, offset, recovered) => {
        const entry = current() ? this.channels.get(channel) : undefined;
        if (!entry) return;
        // Lower than ours: the hub's numbering restarted, and we follow it.
        entry.lastOffset = entry.lastOffset === undefined ? offset : Math.min(entry.lastOffset, offset);
        const onSubscribed = entry.options.onSubscribed;
        if (onSubscribed) guarded(onSubscribed, recovered === undefined ? { offset } : { offset, recovered });
      },
      refused: (channel, error) => {
        const entry = current() ? this.channels.get(channel) : undefined;
        if (!entry) return;
        this.channels.delete(channel);
        if (entry.options.onError) guarded(entry.options.onError, error);
        else this.emit('error', error);
      },
      rewind: (channel, offset) => {
        const entry = current() ? this.channels.get(channel) : undefined;
        if (entry && (entry.lastOffset === undefined || offset < entry.lastOffset)) entry.lastOffset = offset;
      },
      message: (message) => {
        if (current()) this.deliver(message);
      },
      presence: (event) => {
        const onPresence = current() ? this.channels.get(event.channel)?.options.onPresence : undefined;
        if (onPresence) guarded(onPresence, event);
      },
      error: (error) => {
        if (current()) this.emit('error', error);
      },
    };
  }

  private opened(session: Session): void {
    this.openedAt = Date.now();
    this.everOpen = true;
    this.error = null;
    this.openFailures = 0;
    // Before 'open' is announced: a listener that publishes then must not overtake what waited.
    const queued = this.queue;
    this.queue = [];
    for (const q of queued) q.run(session).then(q.resolve, q.reject);
    this.setState('open');
  }

  private ended(end: SessionEnd): void {
    if (end.fatal) return this.shut(end.error);
    this.error = end.error;
    const stable = end.opened && Date.now() - this.openedAt >= STABLE_MS;
    this.failures = stable ? 1 : this.failures + 1;
    let delay = this.backoff.delay(this.failures);
    if (!end.opened && !this.everOpen && ++this.openFailures >= this.fallbackAfter && this.candidates.length > 1) {
      this.candidate = (this.candidate + 1) % this.candidates.length;
      this.openFailures = 0;
      // Another way to the hub: no reason to wait before trying it.
      delay = 0;
    }
    this.setState(this.failures >= this.offlineAfter || !this.online() ? 'offline' : this.everOpen ? 'reconnecting' : 'connecting');
    this.schedule(delay);
  }

  private deliver(message: HubMessage): void {
    const entry = this.channels.get(message.channel);
    if (!entry) return;
    if (entry.lastOffset !== undefined && message.offset <= entry.lastOffset) return;
    entry.lastOffset = message.offset;
    const { channel, offset, data, time, publisher } = message;
    guarded(entry.handler, { channel, offset, data, time, ...(publisher === undefined ? {} : { publisher }) });
  }

  private schedule(delay: number): void {
    clearTimeout(this.retry);
    this.retry = setTimeout(() => this.attempt(), delay);
  }

  private retryNow(): void {
    if (this.retry === undefined || this.currentState === 'closed') return;
    clearTimeout(this.retry);
    this.attempt();
  }

  private shut(error: HubError | null): void {
    if (this.currentState === 'closed') return;
    this.currentState = 'closed';
    clearTimeout(this.retry);
    this.retry = undefined;
    const closed = new HubError('closed', error ? `the client closed: ${error.message}` : 'the client is closed');
    this.session?.close(closed);
    this.session = null;
    this.channels.clear();
    const queued = this.queue;
    this.queue = [];
    for (const q of queued) q.reject(closed);
    const scope = globalThis as { removeEventListener?: (type: string, fn: () => void) => void };
    scope.removeEventListener?.('online', this.onOnline);
    if (error) {
      this.error = error;
      this.emit('error', error);
    }
    this.emit('state', 'closed');
  }

  private setState(state: ConnectionState): void {
    if (state === this.currentState) return;
    this.currentState = state;
    this.emit('state', state);
  }

  private setTransport(transport: Transport): void {
    if (transport === this.currentTransport) return;
    this.currentTransport = transport;
    this.emit('transport', transport);
  }

  private emit<K extends keyof HubClientEvents>(event: K, value: Parameters<HubClientEvents[K]>[0]): void {
    for (const listener of [...this.listeners[event]]) guarded(listener as (v: typeof value) => void, value);
  }
}

function wire(entry: Channel): WireSubscription {
  return {
    channel: entry.channel, since: entry.lastOffset, presence: entry.options.presence,
    presenceEvents: entry.options.onPresence !== undefined,
  };
}

/** Calls application code; an exception goes to the platform on a later tick instead of into the client. */
function guarded<T>(fn: (value: T) => void, value: T): void {
  try {
    fn(value);
  } catch (err) {
    setTimeout(() => {
      throw err;
    }, 0);
  }
}

function defaultFetch(): FetchLike | undefined {
  const scope = globalThis as { fetch?: FetchLike };
  // Called through the global: a browser refuses a fetch called as a method of another object.
  return scope.fetch ? (url, init) => scope.fetch!(url, init) : undefined;
}

function navigatorOnline(): boolean {
  const navigator = (globalThis as { navigator?: { onLine?: unknown } }).navigator;
  return navigator?.onLine !== false;
}

function positive(name: string, value: number): number {
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
    throw new RangeError(`${name} must be a positive number, not ${String(value)}`);
  }
  return value;
}
