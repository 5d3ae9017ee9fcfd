// Per-second event counts over a sliding window, for the dashboard's "messages per second" graph.
// Pure: the caller passes the time (milliseconds, as Date.now() gives), so there is no timer and the
// tests can replay any timeline.

export class RateSeries {
  // One slot more than the window, so the second being filled never overwrites the oldest second
  // the window still reports.
  private readonly counts: Float64Array;
  // The epoch second each slot counts. A slot whose stamp is not the second asked about is a gap
  // (nothing was recorded then), which is how gaps read as 0 without ever clearing slots.
  private readonly stamps: Float64Array;

  constructor(readonly capacity = 300) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`RateSeries capacity must be a positive integer, got ${capacity}`);
    }
    this.counts = new Float64Array(capacity + 1);
    this.stamps = new Float64Array(capacity + 1).fill(Number.NaN);
  }

  /** Counts `n` events at time `now` (ms). A record older than what its slot now holds is ignored. */
  record(now: number, n = 1): void {
    if (!Number.isFinite(now)) throw new RangeError(`RateSeries time must be finite, got ${now}`);
    if (!(n >= 0) || !Number.isFinite(n)) throw new RangeError(`RateSeries count must be >= 0, got ${n}`);
    const second = Math.floor(now / 1000);
    const slot = this.slot(second);
    const stamp = this.stamps[slot]!;
    if (stamp === second) {
      this.counts[slot]! += n;
    } else if (!(stamp > second)) {
      this.stamps[slot] = second;
      this.counts[slot] = n;
    }
  }

  /**
   * Counts `n` events spread evenly over the span (from, to] (ms), each second getting its share.
   * For a sampler that reads a counter about once a second: its readings never fall exactly on
   * second boundaries, and putting each whole delta into one second would make a steady rate look
   * like a sawtooth of 0 and 2x.
   */
  recordSpan(from: number, to: number, n: number): void {
    if (!(to > from)) {
      this.record(to, n);
      return;
    }
    const last = Math.floor(to / 1000);
    // Seconds older than the window cannot be reported, so a long gap costs no more than the window.
    const first = Math.max(Math.floor(from / 1000), last - this.capacity);
    for (let second = first; second <= last; second++) {
      const overlap = Math.min(to, (second + 1) * 1000) - Math.max(from, second * 1000);
      if (overlap > 0) this.record(second * 1000, (n * overlap) / (to - from));
    }
  }

  /**
   * Events per second for the `seconds` complete seconds before the one `now` falls in, oldest
   * first. The current second is left out because it is still filling: a graph ending on it would
   * always dip.
   */
  series(now: number, seconds = this.capacity): number[] {
    if (!Number.isFinite(now)) throw new RangeError(`RateSeries time must be finite, got ${now}`);
    if (!Number.isInteger(seconds) || seconds < 0 || seconds > this.capacity) {
      throw new RangeError(`RateSeries window must be 0..${this.capacity} seconds, got ${seconds}`);
    }
    const current = Math.floor(now / 1000);
    const out = new Array<number>(seconds);
    for (let i = 0; i < seconds; i++) {
      const second = current - seconds + i;
      const slot = this.slot(second);
      out[i] = this.stamps[slot] === second ? this.counts[slot]! : 0;
    }
    return out;
  }

  private slot(second: number): number {
    const size = this.counts.length;
    return ((second % size) + size) % size;
  }
}
