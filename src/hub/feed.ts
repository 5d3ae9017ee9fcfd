// This node's fan-out: one engine subscription per channel, however many local subscribers it has,
// and each message encoded once per wire format for all of them.
import { PreparedMessage } from '../websocket/websocket.js';
import type { Engine, HubMessage } from './engine.js';
import { messageEnvelope } from './protocol.js';

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

export class Feeds {
  private readonly channels = new Map<string, { subscribers: Set<Subscriber>; stop: () => void }>();

  constructor(private readonly engine: Engine) {}

  add(channel: string, subscriber: Subscriber): void {
    let feed = this.channels.get(channel);
    if (!feed) {
      const subscribers = new Set<Subscriber>();
      const stop = this.engine.subscribe(channel, (message) => {
        const out = new Outgoing(message);
        for (const s of subscribers) s.deliver(out);
      });
      feed = { subscribers, stop };
      this.channels.set(channel, feed);
    }
    feed.subscribers.add(subscriber);
  }

  remove(channel: string, subscriber: Subscriber): void {
    const feed = this.channels.get(channel);
    if (!feed || !feed.subscribers.delete(subscriber)) return;
    if (feed.subscribers.size === 0) {
      feed.stop();
      this.channels.delete(channel);
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
