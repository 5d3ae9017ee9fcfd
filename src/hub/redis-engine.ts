// The engine for several hub nodes sharing one Redis. Per channel: a counter gives offsets, a stream
// keeps history (entry id = offset), a hash and a sorted set keep presence with expiry, and a pub/sub
// channel carries live messages and presence events to every node that has subscribers there. Each
// node subscribes once per channel however many clients it serves (Feeds frames once for them).
//
// Redis down: every call fails at once with EngineError (HTTP 503, an `unavailable` envelope), never a
// false acknowledgement; clients stay connected. When Redis is back, this node resubscribes and then
// hands its subscribers the channel's latest message, from which each fills what it missed out of
// history (Subscription's gap fill). Acknowledged messages survive a Redis restart as far as Redis
// persists them: run it with `appendonly yes` (docs/deploy/README.md).
import { Redis } from 'ioredis';
import {
  EngineError, type Engine, type EngineStats, type HistoryQuery, type HistoryResult, type HubMessage,
  type LiveFeed, type PresenceEvent, type PresenceMember,
} from './engine.js';
import { HISTORY, JOIN, LEAVE, PUBLISH, SWEEP } from './redis-scripts.js';
import { redactUrl } from './redis-url.js';

export interface RedisEngineOptions {
  /** redis://[user:password@]host:port[/db] or rediss:// for TLS. */
  url: string;
  /** Messages kept per channel; default 1000. */
  historySize?: number;
  /** Milliseconds a message is kept; default 24 h. */
  historyTtl?: number;
  /** A member whose node stops refreshing it leaves after this many ms; default 30 000. */
  presenceTtl?: number;
  /** Prefix of every key and pub/sub channel, so several hubs can share a Redis; default 'duplex:'. */
  prefix?: string;
  /** How long to wait for Redis at start, in ms; default 5 000. */
  connectTimeout?: number;
}

interface Keys {
  offset: string;
  history: string;
  members: string;
  expiry: string;
  live: string;
}

interface ChannelFeed {
  channel: string;
  keys: Keys;
  listeners: Set<(message: HubMessage) => void>;
  presenceListeners: Set<(event: PresenceEvent) => void>;
  /** Settles when Redis has confirmed the subscription. */
  subscribed: Promise<void>;
  /** The last attempt to subscribe failed: the next follower, or the reconnect, tries again. */
  failed: boolean;
  /** Highest offset handed to listeners; the dashboard's figure. */
  offset: number;
}

type Scripted = Redis & {
  duplexPublish(...args: Array<string | number>): Promise<number>;
  duplexHistory(...args: Array<string | number>): Promise<[number, number, Array<[string, string[]]>]>;
  duplexJoin(...args: Array<string | number>): Promise<number>;
  duplexLeave(...args: Array<string | number>): Promise<number>;
  duplexSweep(...args: Array<string | number>): Promise<Array<string | number>>;
};

const DAY = 24 * 60 * 60 * 1000;
// The counter outlives its history, so a channel that falls silent does not start over at 1 while
// clients may still hold offsets from before (they would be told recovered: false, not fooled).
const MIN_OFFSET_TTL = 30 * DAY;
const CATCH_UP_RETRY_MS = 250;

export class RedisEngine implements Engine {
  private readonly commands: Scripted;
  private readonly subscriber: Redis;
  private readonly feeds = new Map<string, ChannelFeed>();
  private readonly byLive = new Map<string, ChannelFeed>();
  /** Members this node holds, per channel; it keeps their presence alive. */
  private readonly local = new Map<string, Map<string, PresenceMember>>();
  private readonly historySize: number;
  private readonly historyTtl: number;
  private readonly presenceTtl: number;
  private readonly prefix: string;
  private readonly ticker: NodeJS.Timeout;
  private everReady = false;
  /** The socket-level reason behind ioredis's generic "Connection is closed". */
  private lastError: string | null = null;
  private closed = false;
  /** History length and members per channel, as of the last tick. */
  private figures = new Map<string, { history: number; members: number }>();

  private constructor(options: RedisEngineOptions, private readonly log: (message: string, fields: Record<string, unknown>) => void) {
    this.historySize = options.historySize ?? 1000;
    this.historyTtl = options.historyTtl ?? DAY;
    this.presenceTtl = options.presenceTtl ?? 30_000;
    this.prefix = options.prefix ?? 'duplex:';
    const common = {
      lazyConnect: true,
      // Fail at once while Redis is unreachable instead of queueing: a caller must hear "unavailable",
      // and nothing may be sent twice (a resent publish would store the message a second time).
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      connectTimeout: options.connectTimeout ?? 5_000,
      retryStrategy: (attempt: number) => Math.min(attempt * 100, 1_000),
      // Closing while Redis is down must not hold the process for ioredis's default 2 s.
      disconnectTimeout: 200,
    };
    const commands = new Redis(options.url, common) as Scripted;
    commands.defineCommand('duplexPublish', { numberOfKeys: 2, lua: PUBLISH });
    commands.defineCommand('duplexHistory', { numberOfKeys: 2, lua: HISTORY });
    commands.defineCommand('duplexJoin', { numberOfKeys: 2, lua: JOIN });
    commands.defineCommand('duplexLeave', { numberOfKeys: 2, lua: LEAVE });
    commands.defineCommand('duplexSweep', { numberOfKeys: 2, lua: SWEEP });
    this.commands = commands;
    // Resubscribing is ours to do, so catching up can wait until Redis has confirmed it.
    this.subscriber = new Redis(options.url, { ...common, autoResubscribe: false });
    for (const [name, connection] of [['commands', commands], ['subscriber', this.subscriber]] as const) {
      // Once per outage, not once per reconnect attempt.
      let down = false;
      connection.on('error', (err: Error) => {
        this.lastError = err.message;
        if (!down && this.everReady) this.log('lost Redis; retrying', { connection: name, error: err.message });
        down = true;
      });
      connection.on('ready', () => {
        if (down) this.log('Redis is back', { connection: name });
        down = false;
      });
    }
    this.subscriber.on('message', (live: string, payload: string) => this.onLive(live, payload));
    this.subscriber.on('ready', () => this.onSubscriberReady());
    this.ticker = setInterval(() => void this.tick(), Math.max(100, Math.floor(this.presenceTtl / 3)));
    this.ticker.unref();
  }

  /** Connects both connections; rejects with a one-line reason when Redis cannot be reached. */
  static async connect(
    options: RedisEngineOptions,
    log: (message: string, fields: Record<string, unknown>) => void = () => {},
  ): Promise<RedisEngine> {
    const engine = new RedisEngine(options, log);
    try {
      await Promise.all([engine.commands.connect(), engine.subscriber.connect()]);
    } catch (err) {
      await engine.close();
      throw new EngineError(`cannot reach Redis at ${redactUrl(options.url)}: ${engine.lastError ?? (err as Error).message}`);
    }
    return engine;
  }

  async publish(channel: string, data: unknown, publisher?: string): Promise<HubMessage> {
    const keys = this.keys(channel);
    const time = new Date().toISOString();
    const offset = await this.call(this.commands, 'publish', () => this.commands.duplexPublish(
      keys.offset, keys.history,
      JSON.stringify(data === undefined ? null : data), time,
      publisher === undefined ? 'null' : JSON.stringify(publisher),
      this.historySize, this.historyTtl, Math.max(this.historyTtl, MIN_OFFSET_TTL), keys.live, this.cutoff(),
    ));
    const message: HubMessage = { channel, offset: Number(offset), time, data };
    if (publisher !== undefined) message.publisher = publisher;
    return message;
  }

  async history(channel: string, query: HistoryQuery = {}): Promise<HistoryResult> {
    const keys = this.keys(channel);
    const since = query.since ?? 0;
    const [latest, first, entries] = await this.call(this.commands, 'read', () => this.commands.duplexHistory(
      keys.offset, keys.history, since + 1, query.limit ?? -1, this.cutoff(),
    ));
    const offset = Number(latest);
    const oldest = Number(first);
    // As in the memory engine: offsets since+1 … oldest-1 are gone, or `since` is beyond anything issued.
    const recovered = query.since === undefined || (since >= oldest - 1 && since <= offset);
    const messages = since > offset ? [] : entries.map(([id, fields]) => storedMessage(channel, id, fields));
    return { messages, offset, recovered };
  }

  subscribe(channel: string, listener: (message: HubMessage) => void): LiveFeed {
    const feed = this.follow(channel);
    feed.listeners.add(listener);
    return {
      ready: feed.subscribed,
      stop: () => {
        feed.listeners.delete(listener);
        this.unfollowIfUnused(feed);
      },
    };
  }

  onPresence(channel: string, listener: (event: PresenceEvent) => void): () => void {
    const feed = this.follow(channel);
    feed.presenceListeners.add(listener);
    return () => {
      feed.presenceListeners.delete(listener);
      this.unfollowIfUnused(feed);
    };
  }

  async join(channel: string, member: PresenceMember): Promise<void> {
    let members = this.local.get(channel);
    if (!members) this.local.set(channel, (members = new Map()));
    members.set(member.clientId, member);
    await this.call(this.commands, 'read', () => this.joinCommand(channel, member));
  }

  async leave(channel: string, clientId: string): Promise<void> {
    const members = this.local.get(channel);
    if (members?.delete(clientId) && members.size === 0) this.local.delete(channel);
    const keys = this.keys(channel);
    await this.call(this.commands, 'read', () => this.commands.duplexLeave(keys.members, keys.expiry, clientId, keys.live));
  }

  async presence(channel: string): Promise<PresenceMember[]> {
    const keys = this.keys(channel);
    const members = await this.call(this.commands, 'read', () => this.commands.duplexSweep(keys.members, keys.expiry, Date.now(), keys.live, 'list'));
    return members.map((m) => JSON.parse(String(m)) as PresenceMember);
  }

  /** What this node knows: channels it follows, and their history as of the last refresh. */
  stats(): EngineStats {
    let historyMessages = 0;
    for (const f of this.figures.values()) historyMessages += f.history;
    return { channels: this.feeds.size, historyMessages };
  }

  /** Per-channel figures for the dashboard, for the channels this node follows. */
  channelStats(): Array<{ channel: string; offset: number; history: number; subscribers: number; members: number }> {
    return [...this.feeds.values()].map((f) => ({
      channel: f.channel, offset: f.offset, subscribers: f.listeners.size,
      history: this.figures.get(f.channel)?.history ?? 0, members: this.figures.get(f.channel)?.members ?? 0,
    }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.ticker);
    // This node's members leave now rather than when their presence expires.
    const leaving = [...this.local].flatMap(([channel, members]) => [...members.keys()].map((id) => this.leave(channel, id)));
    await Promise.allSettled(leaving);
    for (const connection of [this.commands, this.subscriber]) {
      if (connection.status === 'ready') await connection.quit().catch(() => connection.disconnect());
      else connection.disconnect();
    }
  }

  /** Messages stamped before this are out of history. */
  private cutoff(): string {
    return new Date(Date.now() - this.historyTtl).toISOString();
  }

  private keys(channel: string): Keys {
    const base = `${this.prefix}{${channel}}`;
    return {
      offset: `${base}:offset`, history: `${base}:history`, members: `${base}:members`, expiry: `${base}:expiry`,
      // Pub/sub ignores database numbers: two hubs on /0 and /1 of one Redis must not hear each other.
      live: `${this.prefix}${this.commands.options.db ?? 0}:{${channel}}`,
    };
  }

  private joinCommand(channel: string, member: PresenceMember): Promise<number> {
    const keys = this.keys(channel);
    return this.commands.duplexJoin(
      keys.members, keys.expiry, member.clientId, JSON.stringify(member), Date.now() + this.presenceTtl, 2 * this.presenceTtl, keys.live,
    );
  }

  private follow(channel: string): ChannelFeed {
    let feed = this.feeds.get(channel);
    if (!feed) {
      const keys = this.keys(channel);
      feed = { channel, keys, listeners: new Set(), presenceListeners: new Set(), offset: 0, subscribed: Promise.resolve(), failed: false };
      this.feeds.set(channel, feed);
      this.byLive.set(keys.live, feed);
      this.subscribeLive(feed);
    } else if (feed.failed) {
      this.subscribeLive(feed);
    }
    return feed;
  }

  private subscribeLive(feed: ChannelFeed): void {
    feed.failed = false;
    feed.subscribed = this.call(this.subscriber, 'read', () => this.subscriber.subscribe(feed.keys.live)).then(() => {});
    // Whoever awaits `ready` sees the rejection; nobody may be waiting yet.
    feed.subscribed.catch(() => {
      feed.failed = true;
    });
  }

  private unfollowIfUnused(feed: ChannelFeed): void {
    if (feed.listeners.size > 0 || feed.presenceListeners.size > 0 || this.feeds.get(feed.channel) !== feed) return;
    this.feeds.delete(feed.channel);
    this.byLive.delete(feed.keys.live);
    if (this.subscriber.status === 'ready') this.subscriber.unsubscribe(feed.keys.live).catch(() => {});
  }

  private onLive(live: string, payload: string): void {
    const feed = this.byLive.get(live);
    if (!feed) return;
    let event: { t: 'm'; o: number; ts: string; p: string | null; d: unknown } | { t: 'p'; e: 'join' | 'leave'; m: PresenceMember };
    try {
      event = JSON.parse(payload);
    } catch {
      return this.log('unreadable message from Redis', { channel: feed.channel });
    }
    if (event.t === 'm') {
      const message: HubMessage = { channel: feed.channel, offset: event.o, time: event.ts, data: event.d };
      if (event.p !== null) message.publisher = event.p;
      this.dispatch(feed, message);
    } else {
      const presence: PresenceEvent = { channel: feed.channel, event: event.e, member: event.m };
      for (const listener of feed.presenceListeners) listener(presence);
    }
  }

  private dispatch(feed: ChannelFeed, message: HubMessage): void {
    if (message.offset > feed.offset) feed.offset = message.offset;
    for (const listener of feed.listeners) listener(message);
  }

  /** After a reconnect: subscribe again, then let every subscriber catch up from the latest message. */
  private async onSubscriberReady(): Promise<void> {
    if (!this.everReady) {
      this.everReady = true;
      return;
    }
    const feeds = [...this.feeds.values()];
    if (feeds.length === 0) return;
    try {
      await this.subscriber.subscribe(...feeds.map((f) => f.keys.live));
      for (const feed of feeds) {
        feed.failed = false;
        feed.subscribed = Promise.resolve();
      }
    } catch (err) {
      // The connection dropped again; its next 'ready' retries.
      return this.log('resubscribing to Redis failed', { error: (err as Error).message });
    }
    // The other connection may come back later than this one: keep trying while this one holds.
    for (let attempt = 0; !this.closed && this.subscriber.status === 'ready'; attempt++) {
      try {
        await Promise.all(feeds.map(async (feed) => {
          const entries = await this.commands.xrevrange(feed.keys.history, '+', '-', 'COUNT', 1);
          const latest = entries[0];
          if (latest && this.feeds.get(feed.channel) === feed) this.dispatch(feed, storedMessage(feed.channel, latest[0], latest[1]));
        }));
        return this.log('resubscribed to Redis', { channels: feeds.length });
      } catch (err) {
        if (attempt === 0) this.log('catching up after Redis came back failed; retrying', { error: (err as Error).message });
        await new Promise((resolve) => setTimeout(resolve, CATCH_UP_RETRY_MS));
      }
    }
  }

  /** Keeps this node's members alive, sweeps out those of dead nodes, refreshes the figures. */
  private async tick(): Promise<void> {
    if (this.closed || this.commands.status !== 'ready') return;
    try {
      const refreshes: Array<Promise<number>> = [];
      for (const [channel, members] of this.local) {
        for (const member of members.values()) refreshes.push(this.joinCommand(channel, member));
      }
      await Promise.all(refreshes);
      const channels = new Set([...this.local.keys(), ...this.feeds.keys()]);
      const figures = new Map<string, { history: number; members: number }>();
      await Promise.all([...channels].map(async (channel) => {
        const keys = this.keys(channel);
        const [members, history] = await Promise.all([
          this.commands.duplexSweep(keys.members, keys.expiry, Date.now(), keys.live, 'count'),
          this.commands.xlen(keys.history),
        ]);
        figures.set(channel, { history, members: Number(members[0] ?? 0) });
      }));
      // Swapped whole, so a scrape during the tick sees the last complete figures.
      this.figures = figures;
    } catch (err) {
      this.log('presence refresh failed', { error: (err as Error).message });
    }
  }

  /**
   * Runs a command only on a ready connection, so that a refused publish was certainly not stored;
   * one that was sent when the connection broke may have been, and says so.
   */
  private async call<T>(connection: Redis, kind: 'publish' | 'read', command: () => Promise<T>): Promise<T> {
    const unavailable = 'the message store (Redis) is unavailable';
    if (connection.status !== 'ready') {
      throw new EngineError(`${unavailable}: not connected${kind === 'publish' ? '; the message was not stored' : ''}`);
    }
    try {
      return await command();
    } catch (err) {
      const reason = (err as Error).message;
      if (kind === 'read') throw new EngineError(`${unavailable}: ${reason}`);
      // ioredis refuses a command it could not write with this text; any other failure may have
      // come after Redis ran the script.
      const unsent = reason.includes('enableOfflineQueue');
      throw new EngineError(unsent
        ? `${unavailable}: not connected; the message was not stored`
        : `${unavailable}: the connection broke during the publish (${reason}); the message may or may not have been stored`);
    }
  }
}

/** A history stream entry: its id is the offset; fields t (time), p (publisher, JSON), d (data, JSON). */
function storedMessage(channel: string, id: string, fields: string[]): HubMessage {
  const entry: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) entry[fields[i]!] = fields[i + 1]!;
  const message: HubMessage = { channel, offset: parseInt(id, 10), time: entry.t ?? '', data: JSON.parse(entry.d ?? 'null') };
  if (entry.p !== undefined && entry.p !== 'null') message.publisher = JSON.parse(entry.p) as string;
  return message;
}
