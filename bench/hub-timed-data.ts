/**
 * The data the hub benchmarks publish: a JSON object of a fixed serialized size carrying its send
 * time, so a receiver can compute publish-to-receive latency.
 *
 * The time is `performance.now()` in whole microseconds, the monotonic clock of the load process.
 * Publisher and receivers run in that same process on purpose: one clock stamps and reads, so
 * latency needs no clock synchronisation and cannot go negative or jump with NTP adjustments.
 */
import { performance } from 'node:perf_hooks';

const SENT_KEY = '"sent":';
const SENT_NEEDLE = Buffer.from(SENT_KEY);
const ZERO = 0x30;
const NINE = 0x39;

export const nowMicros = (): number => Math.round(performance.now() * 1000);

/** `{"sent":<µs>,"pad":"xxx…"}` padded to exactly `size` bytes (at least ~40). */
export function timedData(sentMicros: number, size: number): string {
  const head = `{${SENT_KEY}${sentMicros},"pad":"`;
  const tail = '"}';
  return head + 'x'.repeat(Math.max(0, size - head.length - tail.length)) + tail;
}

/** The send time in a message envelope's bytes, or -1 if absent; reads digits without decoding text. */
export function sentMicrosIn(envelope: Buffer): number {
  const at = envelope.indexOf(SENT_NEEDLE);
  if (at === -1) return -1;
  let value = 0;
  let i = at + SENT_NEEDLE.length;
  for (; i < envelope.length; i++) {
    const c = envelope[i]!;
    if (c < ZERO || c > NINE) break;
    value = value * 10 + (c - ZERO);
  }
  return i === at + SENT_NEEDLE.length ? -1 : value;
}
