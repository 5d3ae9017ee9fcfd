/** Latency samples in milliseconds, kept in a growing typed array, and their percentiles. */

export interface LatencySummary {
  samples: number;
  p50: number;
  p99: number;
  max: number;
}

export class LatencyRecorder {
  private values = new Float64Array(1024);
  private count = 0;

  add(ms: number): void {
    if (this.count === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.count++] = ms;
  }

  get size(): number {
    return this.count;
  }

  summary(): LatencySummary {
    const sorted = this.values.slice(0, this.count).sort();
    return {
      samples: this.count,
      p50: percentile(sorted, 0.5),
      p99: percentile(sorted, 0.99),
      max: this.count === 0 ? Number.NaN : sorted[this.count - 1]!,
    };
  }
}

/** Nearest-rank percentile of ascending values; NaN when there are none. */
export function percentile(sorted: Float64Array, fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil(fraction * sorted.length));
  return sorted[rank - 1]!;
}
