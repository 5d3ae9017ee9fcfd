/**
 * Throughput of a function over a fixed number of bytes per call, in MB/s (10^6 bytes per second).
 * Takes the best of several timed rounds: this machine is shared, and the best round is the one least
 * disturbed by other work. Bounded: about `rounds * roundMs` of timing plus a short warm-up.
 */
export function measureThroughput(run: () => void, bytesPerCall: number, rounds = 5, roundMs = 100): number {
  let calls = 1;
  for (let start = performance.now(); performance.now() - start < roundMs / 2; calls *= 2) {
    for (let i = 0; i < calls; i++) run();
  }
  let best = 0;
  for (let round = 0; round < rounds; round++) {
    const start = performance.now();
    for (let i = 0; i < calls; i++) run();
    const seconds = (performance.now() - start) / 1000;
    best = Math.max(best, (calls * bytesPerCall) / seconds / 1e6);
  }
  return best;
}

export function formatRate(megabytesPerSecond: number): string {
  return megabytesPerSecond.toFixed(0).padStart(7);
}
