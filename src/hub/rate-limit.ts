// A token bucket: `rate` actions per second on average, bursts of up to `burst`. The caller passes the
// time, so there is no timer per client.

export interface RateOptions {
  /** Sustained actions per second. */
  rate: number;
  /** Actions allowed at once after a quiet spell. */
  burst: number;
}

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(private readonly options: RateOptions, now: number) {
    this.tokens = options.burst;
    this.last = now;
  }

  /** Takes one token if there is one. */
  take(now: number): boolean {
    const { rate, burst } = this.options;
    this.tokens = Math.min(burst, this.tokens + ((now - this.last) / 1000) * rate);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
