/**
 * Compressible payloads for the permessage-deflate benchmark: JSON-like event batches and English-like
 * text, from a seeded generator so every run and every process gets the same bytes.
 *
 * Each pool holds distinct messages whose total exceeds deflate's 32 KiB window, so a server that
 * keeps its compression context finds shared structure (keys, words) in earlier messages, as with real
 * traffic, but never the whole message again.
 */
export type PayloadKind = 'json' | 'text';

/** mulberry32: small, fast, and good enough to vary benchmark payloads. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const WORDS = (
  'the of and to in is that it was for on are with as his they be at one have this from or had by not ' +
  'word but what some we can out other were all there when up use your how said an each she which do ' +
  'their time if will way about many then them write would like so these her long make thing see him ' +
  'two has look more day could go come did number sound no most people my over know water than call ' +
  'first who may down side been now find any new work part take get place made live where after back'
).split(' ');
const EVENT_TYPES = ['trade', 'quote', 'order_placed', 'order_cancelled', 'position_update', 'heartbeat'];
const SYMBOLS = ['ACME', 'GLOBX', 'INITECH', 'UMBRL', 'STARK', 'WAYNE', 'OSCP', 'TYRL'];

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

function event(random: () => number, id: number): string {
  return JSON.stringify({
    id,
    type: pick(random, EVENT_TYPES),
    user: `${pick(random, WORDS)}_${Math.floor(random() * 10_000)}`,
    symbol: pick(random, SYMBOLS),
    price: Math.round(random() * 1e6) / 100,
    quantity: Math.floor(random() * 5000),
    timestamp: 1_700_000_000_000 + Math.floor(random() * 1e9),
    tags: [pick(random, WORDS), pick(random, WORDS)],
  });
}

/** A JSON batch of events, the first length at or above `minSize`. */
function jsonPayload(random: () => number, minSize: number): Buffer {
  const events: string[] = [];
  let length = '{"events":[]}'.length;
  for (let id = 1; length < minSize; id++) {
    const next = event(random, id);
    length += next.length + (events.length > 0 ? 1 : 0);
    events.push(next);
  }
  return Buffer.from(`{"events":[${events.join(',')}]}`);
}

/** Words and punctuation, exactly `size` bytes of ASCII. */
function textPayload(random: () => number, size: number): Buffer {
  const parts: string[] = [];
  let length = 0;
  while (length < size) {
    const word = pick(random, WORDS) + (random() < 0.1 ? '. ' : ' ');
    parts.push(word);
    length += word.length;
  }
  return Buffer.from(parts.join('').slice(0, size));
}

/** `count` distinct payloads of the kind; JSON sizes are `size` rounded up to a whole event. */
export function payloadPool(kind: PayloadKind, size: number, count: number): Buffer[] {
  const random = seeded(0x5eed + size);
  return Array.from({ length: count }, () => (kind === 'json' ? jsonPayload(random, size) : textPayload(random, size)));
}
