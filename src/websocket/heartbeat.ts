// Liveness: ping peers that have been quiet for `interval` and drop those that then stay silent for
// `timeout`. One timer serves a whole set of connections, so an idle connection owns no timer.

export interface HeartbeatOptions {
  /** Milliseconds of silence from the peer before we ping it; default 30 s. */
  interval?: number;
  /** Milliseconds we wait for any sign of life after a ping before dropping the peer; default 10 s. */
  timeout?: number;
}

/** What the heartbeat needs from a connection. */
export interface Beating {
  /** When the peer last sent us anything (a frame or a part of one), in ms since the epoch. */
  readonly lastReceived: number;
  /** We stopped reading from the peer ourselves: its silence proves nothing. */
  readonly readingPaused: boolean;
  ping(): void;
  /** Drops the connection without a closing handshake (close code 1006). */
  terminate(): void;
}

export class Heartbeat<T extends Beating> {
  readonly interval: number;
  readonly timeout: number;
  private readonly members = new Map<T, number>(); // → when we pinged it, 0 when no ping is outstanding
  private timer: NodeJS.Timeout | null = null;

  constructor(options: HeartbeatOptions = {}) {
    this.interval = options.interval ?? 30_000;
    this.timeout = options.timeout ?? 10_000;
    if (!(this.interval > 0) || !(this.timeout > 0)) throw new RangeError('heartbeat interval and timeout must be positive');
  }

  add(member: T): void {
    this.members.set(member, 0);
    if (!this.timer) {
      // A quarter of the shorter period bounds how late a dead peer is noticed.
      const step = Math.max(10, Math.min(this.interval, this.timeout) / 4);
      this.timer = setInterval(() => this.check(Date.now()), step);
      this.timer.unref();
    }
  }

  delete(member: T): void {
    this.members.delete(member);
    if (this.members.size === 0) this.stop();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private check(now: number): void {
    for (const [member, pingedAt] of this.members) {
      if (member.readingPaused) {
        this.members.set(member, 0);
        continue;
      }
      if (pingedAt !== 0 && member.lastReceived >= pingedAt) {
        this.members.set(member, 0);
      } else if (pingedAt !== 0) {
        if (now - pingedAt >= this.timeout) {
          this.members.delete(member);
          member.terminate();
        }
        continue;
      }
      if (now - member.lastReceived >= this.interval) {
        this.members.set(member, now);
        member.ping();
      }
    }
    if (this.members.size === 0) this.stop();
  }
}
