// Reconnect delays: exponential growth from initialMs by `factor` up to maxMs, each delay shortened by
// a random share of at most `jitter`, so clients cut off together do not come back together.

export interface BackoffOptions {
  /** The first delay, in ms (default 500). */
  initialMs?: number;
  /** The longest delay, in ms (default 30 000). */
  maxMs?: number;
  /** Growth per failed attempt (default 2). */
  factor?: number;
  /** 0 … 1: the largest share taken off a delay at random (default 0.5: a delay lies in [d/2, d]). */
  jitter?: number;
}

export class Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly factor: number;
  readonly jitter: number;

  constructor(options: BackoffOptions = {}, private readonly random: () => number = Math.random) {
    this.initialMs = check('initialMs', options.initialMs ?? 500, 0, Infinity);
    this.maxMs = check('maxMs', options.maxMs ?? 30_000, this.initialMs, Infinity);
    this.factor = check('factor', options.factor ?? 2, 1, Infinity);
    this.jitter = check('jitter', options.jitter ?? 0.5, 0, 1);
  }

  /** The delay before attempt number `failures` + 1, after `failures` consecutive failures (≥ 1). */
  delay(failures: number): number {
    const full = Math.min(this.maxMs, this.initialMs * this.factor ** Math.max(0, failures - 1));
    return Math.round(full * (1 - this.jitter * this.random()));
  }
}

function check(name: string, value: number, min: number, max: number): number {
  if (typeof value !== 'number' || Number.isNaN(value) || value < min || value > max) {
    throw new RangeError(`backoff.${name} must be a number from ${min} to ${max}, not ${String(value)}`);
  }
  return value;
}
