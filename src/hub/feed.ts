// This node's fan-out: one engine subscription per channel, however many local subscribers it has,
// and each message (or presence event) encoded once per wire format for all of them.
import { PreparedMessage } from '../index.js';
import type { Engine, HubMessage, PresenceEvent } from './engine.js';
import { messageEnvelope, presenceEventEnvelope } from './protocol.js';

/** A message with its encodings, each made on first use and then shared by every subscriber. */
export class Outgoing {
  private json_: string | null = null;
  private frame_: PreparedMessage | null = null;
  private sse_: string | null = null;

  constructor(readonly message: HubMessage) {}

  get json(): string {
    return (this.json_ ??= messageEnvelope(this.message));
  }

  /** The WebSocket frame carrying `json`. */
  get frame(): PreparedMessage {
    return (this.frame_ ??= new PreparedMessage(this.json));
  }

  /** The Server-Sent Event carrying `json`; its id is the offset, so Last-Event-ID resumes. */
  get sse(): string {
    return (this.sse_ ??= `id: ${this.message.offset}\nevent: message\ndata: ${this.json}\n\n`);
  }
}

export interface Subscriber {
  deliver(out: Outgoing): void;
}

/** A WebSocket client that asked for a channel's join and leave events. */
export interface PresenceWatcher {
  readonly clientId: string;
  /** The event's envelope, framed once for every watcher of the channel. */
  presence(frame: PreparedMessage): void;
}

export class Feeds {
  private readonly channels = new Map<string, { subscribers: Set<Subscriber>; stop: () => void; ready: Promise<void> }>();
  private readonly watchers = new Map<string, { watchers: Set<PresenceWatcher>; stop: () => void }>();

  constructor(private readonly engine: Engine) {}

  /** Resolves once the engine delivers the channel's live messages to this node. */
  add(channel: string, subscriber: Subscriber): Promise<void> {
    let feed = this.channels.get(channel);
    if (!feed) {
      const subscribers = new Set<Subscriber>();
      const live = this.engine.subscribe(channel, (message) => {
        const out = new Outgoing(message);
        for (const s of subscribers) s.deliver(out);
      });
      feed = { subscribers, stop: live.stop, ready: live.ready };
      this.channels.set(channel, feed);
    }
    feed.subscribers.add(subscriber);
    return feed.ready;
  }

  remove(channel: string, subscriber: Subscriber): void {
    const feed = this.channels.get(channel);
    if (!feed || !feed.subscribers.delete(subscriber)) return;
    if (feed.subscribers.size === 0) {
      feed.stop();
      this.channels.delete(channel);
    }
  }

  /**
   * Join and leave events are opt-in: sent to everybody, a channel of N members would cost N² frames
   * as they arrive. Each event is encoded once for all of the channel's watchers here.
   */
  watchPresence(channel: string, watcher: PresenceWatcher): void {
    let entry = this.watchers.get(channel);
    if (!entry) {
      const watchers = new Set<PresenceWatcher>();
      const stop = this.engine.onPresence(channel, (event: PresenceEvent) => {
        const frame = new PreparedMessage(presenceEventEnvelope(channel, event.event, event.member));
        for (const w of watchers) if (w.clientId !== event.member.clientId) w.presence(frame);
      });
      entry = { watchers, stop };
      this.watchers.set(channel, entry);
    }
    entry.watchers.add(watcher);
  }

  unwatchPresence(channel: string, watcher: PresenceWatcher): void {
    const entry = this.watchers.get(channel);
    if (!entry || !entry.watchers.delete(watcher)) return;
    if (entry.watchers.size === 0) {
      entry.stop();
      this.watchers.delete(channel);
    }
  }

  /** Local subscribers per channel. */
  counts(): Map<string, number> {
    return new Map([...this.channels].map(([channel, feed]) => [channel, feed.subscribers.size]));
  }

  get subscriptions(): number {
    let n = 0;
    for (const feed of this.channels.values()) n += feed.subscribers.size;
    return n;
  }
}
