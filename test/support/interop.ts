// Shared by the interop tests: deadlines, the payloads every peer sends, the summary every peer
// gives of what it received (test/support/python/peer_report.py and pages/peer.js build the same
// summary, so large payloads are compared by length and SHA-256 instead of verbatim), and the
// duplex end of a connection with everything it receives captured.
import { createHash } from 'node:crypto';
import type { CloseEvent, MessageEvent, WebSocket } from '../../src/index.js';

/** How long any single expected event may take. */
export const WAIT_MS = 5_000;

/** Rejects with a message naming `what` unless `promise` settles within `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A FIFO whose consumers wait, bounded, for items that have not arrived yet. */
export class Inbox<T> {
  private readonly items: T[] = [];
  private readonly waiters: Array<(item: T) => void> = [];

  push(item: T): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(item);
    else this.items.push(item);
  }

  next(ms: number, what: string): Promise<T> {
    if (this.items.length > 0) return Promise.resolve(this.items.shift() as T);
    let waiter!: (item: T) => void;
    const arrival = new Promise<T>((resolve) => {
      waiter = resolve;
      this.waiters.push(resolve);
    });
    return within(arrival, ms, what).catch((error: unknown) => {
      this.waiters.splice(this.waiters.indexOf(waiter), 1);
      throw error;
    });
  }
}

// Mixes 1-, 2-, 3- and 4-byte UTF-8 sequences so large text splits code points across
// frames and TCP reads.
const TEXT_UNIT = 'a\u00e9\u20ac\u{1F600}';
const TEXT_UNIT_BYTES = 10;

export const MIB = 1024 * 1024;

/** The deterministic large text the peers generate for `{ pattern: 'text', size }`. */
export function textPattern(size: number): string {
  return TEXT_UNIT.repeat(Math.ceil(size / TEXT_UNIT_BYTES));
}

/** The deterministic large binary the peers generate for `{ pattern: 'binary', size }`. */
export function binaryPattern(size: number): Buffer {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = i % 251;
  return bytes;
}

/** Text messages for every peer: ASCII, 2-, 3- and 4-byte UTF-8, combining marks, ZWJ emoji. */
export const TEXT_SAMPLES = [
  'hello',
  'h\u00e9llo w\u00f6rld \u2014 \u20ac5',
  '\u65e5\u672c\u8a9e\u30c6\u30ad\u30b9\u30c8',
  '\u{1F600}\u{1F680}\u{1F469}\u200D\u{1F4BB} e\u0301',
];

export const JSON_SAMPLE = {
  id: 42,
  name: 'caf\u00e9 \u{1F375}',
  tags: ['a', 'b'],
  nested: { ok: true, none: null, ratio: 0.5 },
};

/** Payload sizes on either side of the 7-bit, 16-bit and 64-bit frame length encodings. */
export const LENGTH_BOUNDARIES = [125, 126, 127, 65535, 65536];

/** Small messages sent back to back, so writes are batched and reads hold many frames. */
export const BURST = Array.from({ length: 200 }, (_, i) => `#${i} \u2713`);

/** The longest close reason allowed (123 bytes of UTF-8), mostly 2- and 4-byte sequences. */
export const LONGEST_REASON = '\u{1F44B}' + '\u00f1'.repeat(59) + '!';

/** Bytes that are not valid UTF-8, so a peer that mistakes binary for text would fail. */
export const BINARY_SAMPLE = Buffer.from([0x00, 0x01, 0x02, 0xfe, 0xff, 0x80, 0xc3, 0x28, 0x7f]);

const INLINE_LIMIT = 1024;

export interface MessageSummary {
  type: 'text' | 'binary';
  bytes: number;
  sha256: string;
  text?: string;
  base64?: string;
}

/** The summary a peer reports for a message with these payload bytes. */
export function summarizeBytes(bytes: Buffer, isBinary: boolean): MessageSummary {
  const summary: MessageSummary = {
    type: isBinary ? 'binary' : 'text',
    bytes: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
  };
  if (bytes.length <= INLINE_LIMIT) {
    if (isBinary) summary.base64 = bytes.toString('base64');
    else summary.text = bytes.toString('utf8');
  }
  return summary;
}

/** The summary a peer should report for receiving `data` (a string is a text message). */
export function summarize(data: string | Buffer): MessageSummary {
  return typeof data === 'string' ? summarizeBytes(Buffer.from(data, 'utf8'), false) : summarizeBytes(data, true);
}

export interface CloseSeen {
  code: number;
  reason: string;
  wasClean: boolean;
}

/** A duplex WebSocket with its messages, pings, pongs and close event captured from the start. */
export class DuplexSide {
  readonly messages = new Inbox<MessageEvent>();
  readonly pings = new Inbox<Buffer>();
  readonly pongs = new Inbox<Buffer>();
  private readonly closeEvent: Promise<CloseEvent>;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (ev: MessageEvent) => this.messages.push(ev));
    ws.on('ping', (data: Buffer) => this.pings.push(data));
    ws.on('pong', (data: Buffer) => this.pongs.push(data));
    this.closeEvent = new Promise((resolve) => ws.on('close', resolve));
  }

  async nextSummary(what: string): Promise<MessageSummary> {
    const ev = await this.messages.next(WAIT_MS, `duplex receiving ${what}`);
    return summarizeBytes(ev.rawData, ev.isBinary);
  }

  async closed(): Promise<CloseSeen> {
    const ev = await within(this.closeEvent, WAIT_MS, 'duplex close event');
    return { code: ev.code, reason: ev.reason, wasClean: ev.wasClean };
  }
}
