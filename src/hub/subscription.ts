// One client's subscription to one channel, for the transports that keep a stream open (WebSocket,
// SSE). It guarantees the resume contract: every message after `since` exactly once and in order,
// history first, then live, with no gap and no duplicate at the seam, because it listens for live
// messages *before* reading history and then drops whatever it has already passed on. A gap in live
// offsets (a node that missed a message) is filled from history before anything later goes out.
import type { Engine, HubMessage } from './engine.js';
import { Outgoing, type Feeds, type Subscriber } from './feed.js';

export interface SubscribeResult {
  /** The channel's latest offset when the subscription started. */
  offset: number;
  /** Only when `since` was given: false if history no longer reached back that far. */
  recovered?: boolean;
}

export class Subscription implements Subscriber {
  /** The last offset passed on to the client. */
  lastOffset = 0;
  // Live messages held back while history is being read.
  private held: Outgoing[] | null = [];
  private replay: HubMessage[] = [];
  private active = true;

  constructor(
    readonly channel: string,
    private readonly engine: Engine,
    private readonly feeds: Feeds,
    private readonly send: (out: Outgoing) => void,
  ) {}

  /** Starts listening and reads history; call goLive() once the client has been told the result. */
  async start(since?: number): Promise<SubscribeResult> {
    await this.feeds.add(this.channel, this);
    const history = await this.engine.history(this.channel, since === undefined ? { limit: 0 } : { since });
    if (since === undefined) {
      this.lastOffset = history.offset;
      return { offset: history.offset };
    }
    this.lastOffset = Math.min(since, history.offset);
    this.replay = history.messages;
    return { offset: history.offset, recovered: history.recovered };
  }

  /** Sends the history read by start(), then what arrived meanwhile, and from then on live messages. */
  goLive(): void {
    const replay = this.replay;
    this.replay = [];
    for (const message of replay) this.pass(new Outgoing(message));
    this.release();
  }

  stop(): void {
    this.active = false;
    this.held = null;
    this.feeds.remove(this.channel, this);
  }

  deliver(out: Outgoing): void {
    if (!this.active) return;
    if (this.held) {
      this.held.push(out);
      return;
    }
    const offset = out.message.offset;
    if (offset <= this.lastOffset) return;
    if (offset > this.lastOffset + 1) {
      void this.fillGap(out);
      return;
    }
    this.pass(out);
  }

  private pass(out: Outgoing): void {
    if (!this.active || out.message.offset <= this.lastOffset) return;
    this.lastOffset = out.message.offset;
    this.send(out);
  }

  private release(): void {
    const held = this.held;
    this.held = null;
    if (held) for (const out of held) this.deliver(out);
  }

  private async fillGap(trigger: Outgoing): Promise<void> {
    this.held = [trigger];
    try {
      const history = await this.engine.history(this.channel, { since: this.lastOffset });
      for (const message of history.messages) {
        if (message.offset < trigger.message.offset) this.pass(new Outgoing(message));
      }
    } catch {
      // History unreachable: carry on from the live message rather than stall the client.
    }
    // What history could not supply is lost; the live message goes out next instead of waiting forever.
    this.lastOffset = Math.max(this.lastOffset, trigger.message.offset - 1);
    if (this.active) this.release();
  }
}
