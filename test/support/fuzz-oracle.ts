// The fuzzers' oracle: a second, deliberately plain reading of RFC 6455 for a server with no extensions.
// It takes a whole client byte stream at once and says what a correct server reports (messages, pings,
// pongs, the peer's close) and how the stream ends (still open, closed cleanly, or failed with which
// close codes), and it reads what the server writes back strictly. It shares no code with src/.
import { TextDecoder } from 'node:util';
import { constants, inflateRawSync } from 'node:zlib';
import type { DeflateMode } from './fuzz-frames.js';

export type FuzzEvent =
  | { kind: 'message'; binary: boolean; data: Buffer }
  | { kind: 'ping' | 'pong'; data: Buffer }
  | { kind: 'close'; code: number; reason: string };

export type Ending =
  /** The stream ran out; `codes` is non-empty when a partial header already breaks a rule the server may act on early. */
  | { kind: 'open'; idle: boolean; codes: number[] }
  | { kind: 'closed' }
  | { kind: 'failed'; codes: number[] };

export interface Expected {
  events: FuzzEvent[];
  ending: Ending;
  /** How many of the messages were compressed. */
  inflated: number;
}

const PROTOCOL_ERROR = 1002;
const NO_STATUS = 1005;
const INVALID_PAYLOAD = 1007;
const MESSAGE_TOO_BIG = 1009;

/** Codes a close frame may carry (RFC 6455 7.4.1 and the IANA registry). */
export function isSendableCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

function isUtf8(bytes: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

function headerRules(first: number, second: number | undefined, deflate: boolean): Set<number> {
  const broken = new Set<number>();
  const opcode = first & 0x0f;
  const control = opcode >= 0x8;
  // RSV1 means "compressed": only with permessage-deflate, and only on a message's first frame.
  const rsv1Allowed = deflate && opcode !== 0x0 && !control;
  if ((first & 0x30) !== 0 || ((first & 0x40) !== 0 && !rsv1Allowed)) broken.add(PROTOCOL_ERROR);
  if (![0x0, 0x1, 0x2, 0x8, 0x9, 0xa].includes(opcode)) broken.add(PROTOCOL_ERROR);
  if (control && (first & 0x80) === 0) broken.add(PROTOCOL_ERROR);
  if (second === undefined) return broken;
  if ((second & 0x80) === 0) broken.add(PROTOCOL_ERROR); // clients must mask
  if (control && (second & 0x7f) > 125) broken.add(PROTOCOL_ERROR);
  return broken;
}

/** The empty stored block a sender leaves off the end of each compressed message (RFC 7692 7.2.1). */
const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);
// zlib hands output on in pieces of this size: an error and the size limit within one piece may be seen in either order.
const ZLIB_CHUNK = 16 * 1024;

type Inflated = { ok: true; data: Buffer; streamEnded: boolean } | { ok: false; codes: number[] };

function inflate(input: Buffer, limit: number): { buffer: Buffer; consumed: number } {
  const { buffer, engine } = inflateRawSync(input, { finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength: limit, info: true }) as unknown as
    { buffer: Buffer; engine: { bytesWritten: number } };
  return { buffer, consumed: engine.bytesWritten };
}

/**
 * Inflates one received message the one-shot way: the deflate stream so far (`window` holds the
 * earlier messages' input when the window is kept) plus this payload and the trailer, keeping only
 * the new output. Beyond maxPayload is 1009, corrupt data 1007; when corrupt data comes right around
 * the size limit, either code is right.
 */
function inflateMessage(window: Buffer, before: number, payload: Buffer, maxPayload: number): Inflated {
  const input = Buffer.concat([window, payload, TRAILER]);
  const limit = before + maxPayload + 4 * ZLIB_CHUNK;
  try {
    const { buffer, consumed } = inflate(input, limit);
    const data = buffer.subarray(before);
    if (data.length > maxPayload) return { ok: false, codes: [MESSAGE_TOO_BIG] };
    return { ok: true, data, streamEnded: consumed < input.length };
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') return { ok: false, codes: [MESSAGE_TOO_BIG] };
  }
  // How much comes out before the corrupt byte: the longest prefix that still inflates.
  let good = window.length;
  let bad = input.length;
  while (bad - good > 1) {
    const middle = (good + bad) >> 1;
    try {
      inflate(input.subarray(0, middle), limit);
      good = middle;
    } catch {
      bad = middle;
    }
  }
  const produced = inflate(input.subarray(0, good), limit).buffer.length - before;
  return { ok: false, codes: produced > maxPayload - 2 * ZLIB_CHUNK ? [INVALID_PAYLOAD, MESSAGE_TOO_BIG] : [INVALID_PAYLOAD] };
}

/**
 * What a correct server does with `bytes`. Where a frame breaks several rules at once the server may
 * name any of them, so a failure allows a set of codes. Invalid UTF-8 fails at the first byte that no
 * continuation could make valid (fail-fast), which TextDecoder in streaming mode finds the same way.
 */
export function expectFromStream(bytes: Buffer, maxPayload: number, deflate: DeflateMode | null = null, maxFragments = 65536): Expected {
  const events: FuzzEvent[] = [];
  // The inflate stream: its input so far (when the window is kept) and the output that input made.
  let window = Buffer.alloc(0);
  let windowOutput = 0;
  let compressed = false;
  let inflated = 0;
  let pos = 0;
  let messageOpcode = 0;
  let parts: Buffer[] = [];
  let messageLength = 0;
  let fragments = 0;
  let decoder: TextDecoder | null = null;
  const failed = (codes: Iterable<number>): Expected => ({ events, inflated, ending: { kind: 'failed', codes: [...codes].sort() } });
  // Idle: the stream stopped between messages, so the server holds no partial frame or message.
  const open = (codes: Iterable<number> = [], idle = false): Expected => ({
    events,
    inflated,
    ending: { kind: 'open', idle, codes: [...codes].sort() },
  });

  while (pos < bytes.length) {
    const first = bytes[pos]!;
    const second = bytes[pos + 1];
    const opcode = first & 0x0f;
    const fin = (first & 0x80) !== 0;
    const broken = headerRules(first, second, deflate !== null);
    if (second === undefined) return open(broken);
    const len7 = second & 0x7f;
    const masked = (second & 0x80) !== 0;
    const headerSize = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (masked ? 4 : 0);
    if (bytes.length - pos < headerSize) return open(broken);
    let length = BigInt(len7);
    if (len7 === 126) length = BigInt(bytes.readUInt16BE(pos + 2));
    if (len7 === 127) {
      length = bytes.readBigUInt64BE(pos + 2);
      if (length >= 2n ** 63n) broken.add(PROTOCOL_ERROR);
    }
    if (opcode < 0x8) {
      const continuation = opcode === 0x0;
      if (continuation && messageOpcode === 0) broken.add(PROTOCOL_ERROR);
      if (!continuation && messageOpcode !== 0) broken.add(PROTOCOL_ERROR);
      const soFar = continuation ? messageLength : 0;
      if (BigInt(soFar) + length > BigInt(maxPayload)) broken.add(MESSAGE_TOO_BIG);
      if ((continuation ? fragments : 0) + 1 > maxFragments) broken.add(MESSAGE_TOO_BIG);
    }
    if (broken.size > 0) return failed(broken);

    const key = masked ? bytes.subarray(pos + headerSize - 4, pos + headerSize) : null;
    pos += headerSize;
    const wanted = Number(length);
    const payload = Buffer.from(bytes.subarray(pos, pos + wanted));
    if (key) for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3]!;
    pos += payload.length;
    const complete = payload.length === wanted;

    if (opcode >= 0x8) {
      if (!complete) return open();
      if (opcode === 0x9) events.push({ kind: 'ping', data: payload });
      else if (opcode === 0xa) events.push({ kind: 'pong', data: payload });
      else {
        if (payload.length === 1) return failed([PROTOCOL_ERROR]);
        const code = payload.length === 0 ? NO_STATUS : payload.readUInt16BE(0);
        if (payload.length > 0 && !isSendableCloseCode(code)) return failed([PROTOCOL_ERROR]);
        const reason = payload.subarray(2);
        if (!isUtf8(reason)) return failed([INVALID_PAYLOAD]);
        events.push({ kind: 'close', code, reason: reason.toString('utf8') });
        return { events, inflated, ending: { kind: 'closed' } };
      }
      continue;
    }

    if (opcode !== 0x0) {
      messageOpcode = opcode;
      parts = [];
      messageLength = 0;
      fragments = 0;
      compressed = (first & 0x40) !== 0;
      decoder = opcode === 0x1 && !compressed ? new TextDecoder('utf-8', { fatal: true }) : null;
    }
    fragments++;
    try {
      decoder?.decode(payload, { stream: true });
    } catch {
      return failed([INVALID_PAYLOAD]);
    }
    parts.push(payload);
    messageLength += payload.length;
    if (!complete) return open();
    if (!fin) continue;
    let data: Buffer = Buffer.concat(parts);
    if (compressed) {
      // A compressed message is never empty (RFC 7692 7.2.3.6); an empty one is refused as invalid data.
      if (data.length === 0) return failed([INVALID_PAYLOAD]);
      const result = inflateMessage(window, windowOutput, data, maxPayload);
      if (!result.ok) return failed(result.codes);
      if (messageOpcode === 0x1 && !isUtf8(result.data)) return failed([INVALID_PAYLOAD]);
      const keep = deflate!.contextTakeover && !result.streamEnded;
      window = keep ? Buffer.concat([window, data, TRAILER]) : Buffer.alloc(0);
      windowOutput = keep ? windowOutput + result.data.length : 0;
      data = result.data;
      inflated++;
    }
    try {
      decoder?.decode();
    } catch {
      return failed([INVALID_PAYLOAD]);
    }
    events.push({ kind: 'message', binary: messageOpcode === 0x2, data });
    messageOpcode = 0;
    parts = [];
  }
  return open([], messageOpcode === 0);
}

export interface ServerFrame {
  opcode: number;
  payload: Buffer;
}

/**
 * Reads what a server writes, in any chunking, and throws at the first thing a server must never send:
 * masked or fragmented frames (this server never fragments), RSV bits, unknown opcodes, over-long
 * control frames, non-minimal lengths, or a close frame with a bad code or reason.
 */
export class ServerFrameReader {
  private buffered = Buffer.alloc(0);
  // The server's deflate stream as we inflate it: its input so far and the output that made.
  private window = Buffer.alloc(0);
  private windowOutput = 0;

  /** `deflate`: permessage-deflate was negotiated, and whether the server keeps its window between messages. */
  constructor(private readonly deflate: DeflateMode | null = null) {}

  get pending(): number {
    return this.buffered.length;
  }

  push(chunk: Buffer): ServerFrame[] {
    this.buffered = this.buffered.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.buffered, chunk]);
    const frames: ServerFrame[] = [];
    for (;;) {
      const b = this.buffered;
      if (b.length < 2) break;
      const len7 = b[1]! & 0x7f;
      const headerSize = len7 === 126 ? 4 : len7 === 127 ? 10 : 2;
      if (b.length < headerSize) break;
      const length = len7 === 126 ? b.readUInt16BE(2) : len7 === 127 ? Number(b.readBigUInt64BE(2)) : len7;
      checkHeader(b[0]!, b[1]!, length, this.deflate !== null);
      if (b.length < headerSize + length) break;
      const frame: ServerFrame = { opcode: b[0]! & 0x0f, payload: Buffer.from(b.subarray(headerSize, headerSize + length)) };
      if (frame.opcode === 0x8) checkClosePayload(frame.payload);
      if ((b[0]! & 0x40) !== 0) frame.payload = this.inflate(frame.payload);
      frames.push(frame);
      this.buffered = b.subarray(headerSize + length);
    }
    return frames;
  }

  private inflate(payload: Buffer): Buffer {
    const inflated = inflateMessage(this.window, this.windowOutput, payload, 16 * 1024 * 1024);
    if (!inflated.ok) throw new Error('the server wrote a compressed message that does not inflate');
    const keep = this.deflate!.contextTakeover && !inflated.streamEnded;
    this.window = keep ? Buffer.concat([this.window, payload, TRAILER]) : Buffer.alloc(0);
    this.windowOutput = keep ? this.windowOutput + inflated.data.length : 0;
    return Buffer.from(inflated.data);
  }
}

function checkHeader(first: number, second: number, length: number, deflate: boolean): void {
  const opcode = first & 0x0f;
  const problem =
    (first & 0x80) === 0 ? 'a fragmented frame' :
    (first & 0x30) !== 0 ? 'RSV2 or RSV3' :
    (first & 0x40) !== 0 && (!deflate || opcode >= 0x8) ? 'RSV1 without permessage-deflate or on a control frame' :
    ![0x1, 0x2, 0x8, 0x9, 0xa].includes(opcode) ? `opcode ${opcode}` :
    (second & 0x80) !== 0 ? 'a masked frame' :
    opcode >= 0x8 && length > 125 ? `a control frame of ${length} bytes` :
    ((second & 0x7f) === 126 && length < 126) || ((second & 0x7f) === 127 && length < 0x10000) ? 'a non-minimal length' :
    null;
  if (problem) throw new Error(`the server wrote ${problem}`);
}

function checkClosePayload(payload: Buffer): void {
  if (payload.length === 0) return;
  if (payload.length === 1) throw new Error('the server wrote a close frame with a 1-byte payload');
  const code = payload.readUInt16BE(0);
  if (!isSendableCloseCode(code)) throw new Error(`the server wrote close code ${code}`);
  if (!isUtf8(payload.subarray(2))) throw new Error('the server wrote a close reason that is not UTF-8');
}

/** Reads the close code of a close frame the server wrote, or undefined for an empty one. */
export function closeCodeOf(frame: ServerFrame): number | undefined {
  return frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : undefined;
}

/**
 * The frames a correct server writes for the expected events: a pong for each ping, an echo of each
 * message when `echo` is on, the echo of the peer's close frame (same code, or none when it had none).
 * The close frame that ends a failed connection is left to the caller, who knows the code reported.
 */
export function expectedWrites(events: FuzzEvent[], echo: boolean): ServerFrame[] {
  const writes: ServerFrame[] = [];
  for (const e of events) {
    if (e.kind === 'ping') writes.push({ opcode: 0xa, payload: e.data });
    else if (e.kind === 'message' && echo) writes.push({ opcode: e.binary ? 0x2 : 0x1, payload: e.data });
    else if (e.kind === 'close') {
      const payload = Buffer.alloc(e.code === NO_STATUS ? 0 : 2);
      if (e.code !== NO_STATUS) payload.writeUInt16BE(e.code);
      writes.push({ opcode: 0x8, payload });
    }
  }
  return writes;
}

export function describeEvent(e: FuzzEvent | undefined): string {
  if (!e) return 'nothing';
  if (e.kind === 'close') return `close ${e.code} ${JSON.stringify(e.reason)}`;
  if (e.kind === 'message') return `${e.binary ? 'binary' : 'text'} message of ${e.data.length} bytes`;
  return `${e.kind} of ${e.data.length} bytes`;
}

export function sameEvent(a: FuzzEvent, b: FuzzEvent): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'close' && b.kind === 'close') return a.code === b.code && a.reason === b.reason;
  if (a.kind === 'message' && b.kind === 'message' && a.binary !== b.binary) return false;
  return (a as { data: Buffer }).data.equals((b as { data: Buffer }).data);
}

/** First difference between the frames written and those expected, or null. Close frames are compared by code. */
export function compareWrites(actual: ServerFrame[], expected: ServerFrame[]): string | null {
  for (let i = 0; i < Math.max(actual.length, expected.length); i++) {
    const a = actual[i];
    const e = expected[i];
    const show = (f: ServerFrame | undefined) => (f ? `opcode ${f.opcode} with ${f.payload.length} bytes${f.opcode === 8 ? ` code ${closeCodeOf(f)}` : ''}` : 'nothing');
    const same = a && e && a.opcode === e.opcode &&
      (a.opcode === 0x8 ? closeCodeOf(a) === closeCodeOf(e) : a.payload.equals(e.payload));
    if (!same) return `written frame ${i}: expected ${show(e)}, got ${show(a)}`;
  }
  return null;
}
