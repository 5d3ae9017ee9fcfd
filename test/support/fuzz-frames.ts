// Inputs for the fuzzers: streams of client frames that start out valid (text with multi-byte UTF-8,
// binary, fragmented messages, control frames, close frames) and are then broken on purpose, both
// frame by frame (lengths, opcodes, RSV bits, masks, UTF-8, fragment order) and byte by byte. Frames
// are built here from the RFC, with no code from src/, so the engine cannot vouch for itself.
import { constants, deflateRawSync } from 'node:zlib';
import type { SeededRandom } from './seeded-random.js';

export interface FuzzFrame {
  fin: boolean;
  /** The 3-bit RSV field: 4 = RSV1, 2 = RSV2, 1 = RSV3. */
  rsv: number;
  opcode: number;
  /** The bytes sent after the header, before masking. */
  payload: Buffer;
  mask: Buffer | null;
  /** A length field that lies about the payload. */
  declared?: bigint;
  /** Length encoding wider than needed. */
  form?: 7 | 16 | 64;
}

/** permessage-deflate as negotiated for a case: whether the server keeps its inflate window between messages. */
export interface DeflateMode {
  contextTakeover: boolean;
}

export interface FuzzCase {
  bytes: Buffer;
  /** Frames built before byte-level mutation. */
  frames: number;
  /** Names of the mutations applied, for statistics and failure reports. */
  mutations: string[];
}

export function chance(rng: SeededRandom, p: number): boolean {
  return rng.nextUint32() < p * 0x100000000;
}

export function pick<T>(rng: SeededRandom, items: readonly T[]): T {
  return items[rng.below(items.length)]!;
}

export function between(rng: SeededRandom, low: number, high: number): number {
  return low + rng.below(high - low + 1);
}

/** Payload sizes with the small ones most likely, since most bugs live at boundaries near zero. */
function size(rng: SeededRandom): number {
  const r = rng.below(100);
  if (r < 65) return rng.below(32);
  if (r < 90) return between(rng, 100, 300);
  return rng.below(4096);
}

export function randomBytes(rng: SeededRandom, length: number): Buffer {
  return Buffer.from(rng.bytes(length));
}

// Code points at the edges of each UTF-8 sequence length, and common ones.
const CHARACTERS = [
  '\x00', '\x7f', '\u0080', 'é', 'ß', '\u07ff', '\u0800', '€', '中', '\ud7ff', '\ue000', '\ufffd', '\uffff',
  '\u{10000}', '😀', '𝄞', '\u{10ffff}',
].map((c) => Buffer.from(c));

/** Valid UTF-8 of `length` bytes or a few more: mostly ASCII, with multi-byte characters mixed in. */
export function randomText(rng: SeededRandom, length: number): Buffer {
  const out = Buffer.allocUnsafe(length + 3);
  const multiByteShare = rng.below(4);
  let at = 0;
  while (at < length) {
    if (rng.below(4) < multiByteShare) at += pick(rng, CHARACTERS).copy(out, at);
    else out[at++] = 0x20 + rng.below(95);
  }
  return out.subarray(0, at);
}

/** Big payloads are patterned rather than drawn byte by byte, which would dominate the run time. */
function bigPayload(rng: SeededRandom, length: number, text: boolean): Buffer {
  const unit = text ? randomText(rng, 64) : randomBytes(rng, 64);
  const out = Buffer.alloc(length);
  if (length > 0) out.fill(unit);
  if (!text) return out;
  // A cut-off character at the end would make the text invalid; pad with ASCII from its start.
  let end = length;
  while (end > 0 && (out[end - 1]! & 0xc0) === 0x80) end--;
  if (end > 0 && out[end - 1]! >= 0xc0) end--;
  return out.fill(0x61, end);
}

function payload(rng: SeededRandom, length: number, text: boolean): Buffer {
  return text ? randomText(rng, length) : randomBytes(rng, length);
}

function maskKey(rng: SeededRandom): Buffer {
  return chance(rng, 0.05) ? Buffer.alloc(4) : randomBytes(rng, 4);
}

function frame(rng: SeededRandom, opcode: number, payload: Buffer, fin = true): FuzzFrame {
  return { fin, rsv: 0, opcode, payload, mask: maskKey(rng) };
}

function controlFrame(rng: SeededRandom): FuzzFrame {
  const payload = chance(rng, 0.5) ? randomText(rng, rng.below(126)) : randomBytes(rng, rng.below(126));
  return frame(rng, chance(rng, 0.6) ? 0x9 : 0xa, payload.subarray(0, 125));
}

const WINDOW = 32 * 1024;

/**
 * The client's half of permessage-deflate for one stream. With context takeover, each message is
 * compressed with the plain text of the earlier ones as its dictionary, which is what a client's kept
 * window amounts to, so back-references cross message boundaries as they do on real connections.
 */
class Compressor {
  private window = Buffer.alloc(0);

  constructor(private readonly mode: DeflateMode) {}

  compress(rng: SeededRandom, data: Buffer): Buffer {
    // Now and then the stream ends with a BFINAL block (RFC 7692 7.2.3.4); the next message starts afresh.
    const final = chance(rng, 0.05);
    const dictionary = this.mode.contextTakeover && this.window.length > 0 ? { dictionary: this.window } : {};
    const out = deflateRawSync(data, { finishFlush: final ? constants.Z_FINISH : constants.Z_SYNC_FLUSH, ...dictionary });
    this.window = final ? Buffer.alloc(0) : Buffer.concat([this.window, data]).subarray(-WINDOW);
    // A sync flush ends with an empty stored block, 00 00 FF FF, which the sender leaves out (7.2.1).
    return final ? out : out.subarray(0, out.length - 4);
  }
}

/**
 * A message split at random byte offsets (inside characters too), with control frames in between;
 * compressed, most of the time, when permessage-deflate is on.
 */
function message(rng: SeededRandom, opcode: number, plain: Buffer, compressor: Compressor | null): FuzzFrame[] {
  const compressed = compressor !== null && chance(rng, 0.7);
  const payload = compressed ? compressor.compress(rng, plain) : plain;
  const pieces = chance(rng, 0.5) ? 1 : between(rng, 2, 6);
  const cuts = Array.from({ length: pieces - 1 }, () => rng.below(payload.length + 1)).sort((a, b) => a - b);
  const frames: FuzzFrame[] = [];
  let start = 0;
  for (let i = 0; i < pieces; i++) {
    const end = i < cuts.length ? cuts[i]! : payload.length;
    frames.push(frame(rng, i === 0 ? opcode : 0x0, payload.subarray(start, end), i === pieces - 1));
    if (i < pieces - 1 && chance(rng, 0.3)) frames.push(controlFrame(rng));
    start = end;
  }
  if (compressed) frames[0]!.rsv = 4;
  return frames;
}

const VALID_CLOSE_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999];
const INVALID_CLOSE_CODES = [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535];

function closePayload(code: number, reason: Buffer): Buffer {
  const head = Buffer.alloc(2);
  head.writeUInt16BE(code);
  return Buffer.concat([head, reason]);
}

function closeFrame(rng: SeededRandom): FuzzFrame {
  const r = rng.below(10);
  let payload: Buffer;
  if (r < 5) payload = closePayload(pick(rng, VALID_CLOSE_CODES), randomText(rng, rng.below(60)).subarray(0, 123));
  else if (r < 6) payload = Buffer.alloc(0);
  else if (r < 7) payload = randomBytes(rng, 1);
  else if (r < 8) payload = closePayload(pick(rng, INVALID_CLOSE_CODES), Buffer.alloc(0));
  else if (r < 9) payload = closePayload(rng.below(0x10000), Buffer.alloc(0));
  else payload = closePayload(1000, Buffer.concat([randomText(rng, 10), pick(rng, BAD_UTF8)]));
  return frame(rng, 0x8, payload.subarray(0, 125));
}

/** One well-formed piece of conversation. */
function scenario(rng: SeededRandom, compressor: Compressor | null): FuzzFrame[] {
  const r = rng.below(100);
  if (r < 38) return message(rng, 0x1, payload(rng, size(rng), true), compressor);
  if (r < 66) return message(rng, 0x2, payload(rng, size(rng), false), compressor);
  if (r < 90) return [controlFrame(rng)];
  return [closeFrame(rng)];
}

/** A message right at the size limit: a few bytes under, exactly at, or just over, possibly in fragments. */
function bigMessage(rng: SeededRandom, maxPayload: number, compressor: Compressor | null): FuzzFrame[] {
  const text = chance(rng, 0.5);
  return message(rng, text ? 0x1 : 0x2, bigPayload(rng, maxPayload + between(rng, -3, 2), text), compressor);
}

/** A few dozen compressed bytes that inflate to about the size limit: just under, at, or past it. */
function inflationBomb(rng: SeededRandom, maxPayload: number, compressor: Compressor): FuzzFrame[] {
  const bomb = frame(rng, 0x2, compressor.compress(rng, Buffer.alloc(maxPayload + between(rng, -2, 3))));
  bomb.rsv = 4;
  return [bomb];
}

// Byte sequences that are never valid UTF-8, or not at a message's end.
const BAD_UTF8 = [
  [0x80], [0xbf], [0xc0, 0xaf], [0xc1, 0xbf], [0xe0, 0x80, 0x80], [0xe0, 0x9f, 0xbf], [0xed, 0xa0, 0x80],
  [0xed, 0xbf, 0xbf], [0xf0, 0x80, 0x80, 0x80], [0xf0, 0x8f, 0xbf, 0xbf], [0xf4, 0x90, 0x80, 0x80],
  [0xf5, 0x80, 0x80, 0x80], [0xf8], [0xfe], [0xff], [0xc3], [0xe2, 0x82], [0xf0, 0x9f, 0x98], [0xc3, 0x41],
].map((b) => Buffer.from(b));

// Length fields that are absurd, at the 53- and 63-bit limits, or just past the configured maximum.
function hugeLengths(maxPayload: number): bigint[] {
  return [
    2n ** 63n, 2n ** 64n - 1n, 2n ** 63n + 5n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 32n, 2n ** 32n - 1n,
    2n ** 31n, BigInt(maxPayload) + 1n, BigInt(maxPayload), 0x1fffffffffffffn + 1n,
  ];
}

type FrameMutation = (rng: SeededRandom, frames: FuzzFrame[], maxPayload: number) => void;

const anyFrame = (rng: SeededRandom, frames: FuzzFrame[]) => frames[rng.below(frames.length)]!;

const FRAME_MUTATIONS: Record<string, FrameMutation> = {
  opcode: (rng, frames) => void (anyFrame(rng, frames).opcode = rng.below(16)),
  rsv: (rng, frames) => void (anyFrame(rng, frames).rsv = between(rng, 1, 7)),
  // RSV1 with deflate data, whole, cut short or garbage: refused outright unless permessage-deflate was negotiated.
  compressed: (rng, frames) => {
    const f = anyFrame(rng, frames);
    f.rsv |= 4;
    const deflated = deflateRawSync(randomText(rng, rng.below(200)));
    const r = rng.below(3);
    f.payload = r === 0 ? deflated : r === 1 ? deflated.subarray(0, rng.below(deflated.length + 1)) : randomBytes(rng, rng.below(64));
  },
  mask: (rng, frames) => {
    const f = anyFrame(rng, frames);
    f.mask = f.mask ? null : maskKey(rng);
  },
  fin: (rng, frames) => {
    const f = anyFrame(rng, frames);
    f.fin = !f.fin;
  },
  lengthLie: (rng, frames) => {
    const f = anyFrame(rng, frames);
    const delta = chance(rng, 0.8) ? between(rng, -20, 20) || 1 : rng.below(70000) - f.payload.length;
    f.declared = BigInt(Math.max(0, f.payload.length + delta));
  },
  hugeLength: (rng, frames, maxPayload) => {
    const f = anyFrame(rng, frames);
    f.declared = pick(rng, hugeLengths(maxPayload));
    f.form = 64;
  },
  nonMinimalLength: (rng, frames) => void (anyFrame(rng, frames).form = pick(rng, [16, 64] as const)),
  invalidUtf8: (rng, frames) => {
    const texts = frames.filter((f) => f.opcode === 0x1 || f.opcode === 0x0);
    const f = texts.length > 0 ? pick(rng, texts) : anyFrame(rng, frames);
    const at = rng.below(f.payload.length + 1);
    f.payload = Buffer.concat([f.payload.subarray(0, at), pick(rng, BAD_UTF8), f.payload.subarray(at)]);
  },
  dropFrame: (rng, frames) => void frames.splice(rng.below(frames.length), 1),
  duplicateFrame: (rng, frames) => {
    const i = rng.below(frames.length);
    frames.splice(i, 0, { ...frames[i]! });
  },
  swapFrames: (rng, frames) => {
    const i = rng.below(frames.length);
    const j = rng.below(frames.length);
    [frames[i], frames[j]] = [frames[j]!, frames[i]!];
  },
  strayContinuation: (rng, frames) => {
    frames.splice(rng.below(frames.length + 1), 0, frame(rng, 0x0, randomText(rng, rng.below(20)), chance(rng, 0.5)));
  },
  bigControl: (rng, frames) => {
    const f = frame(rng, pick(rng, [0x8, 0x9, 0xa]), randomBytes(rng, between(rng, 126, 400)));
    frames.splice(rng.below(frames.length + 1), 0, f);
  },
  fragmentedControl: (rng, frames) => {
    const f = controlFrame(rng);
    f.fin = false;
    frames.splice(rng.below(frames.length + 1), 0, f);
  },
};

type ByteMutation = (rng: SeededRandom, bytes: Buffer) => Buffer;

const INTERESTING_BYTES = [0x00, 0x01, 0x7d, 0x7e, 0x7f, 0x80, 0x81, 0x88, 0xc0, 0xfe, 0xff];

const BYTE_MUTATIONS: Record<string, ByteMutation> = {
  bitFlip: (rng, bytes) => {
    const out = Buffer.from(bytes);
    for (let n = between(rng, 1, 8); n > 0 && out.length > 0; n--) out[rng.below(out.length)] ^= 1 << rng.below(8);
    return out;
  },
  insertBytes: (rng, bytes) => {
    const at = rng.below(bytes.length + 1);
    return Buffer.concat([bytes.subarray(0, at), randomBytes(rng, between(rng, 1, 16)), bytes.subarray(at)]);
  },
  deleteBytes: (rng, bytes) => {
    const at = rng.below(bytes.length + 1);
    return Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + between(rng, 1, 16))]);
  },
  truncate: (rng, bytes) => bytes.subarray(0, rng.below(bytes.length + 1)),
  interestingByte: (rng, bytes) => {
    const out = Buffer.from(bytes);
    if (out.length > 0) out[rng.below(out.length)] = pick(rng, INTERESTING_BYTES);
    return out;
  },
};

const FRAME_MUTATION_NAMES = Object.keys(FRAME_MUTATIONS);
const BYTE_MUTATION_NAMES = Object.keys(BYTE_MUTATIONS);

/** The frame as a client puts it on the wire. */
export function encodeFuzzFrame(frame: FuzzFrame): Buffer {
  const length = frame.declared ?? BigInt(frame.payload.length);
  const minimal = length < 126n ? 7 : length < 0x10000n ? 16 : 64;
  const form = Math.max(minimal, frame.form ?? 7);
  const key = frame.mask;
  const lengthBytes = form === 7 ? 1 : form === 16 ? 3 : 9;
  const start = 1 + lengthBytes + (key ? 4 : 0);
  const out = Buffer.allocUnsafe(start + frame.payload.length);
  out[0] = (frame.fin ? 0x80 : 0) | ((frame.rsv & 7) << 4) | (frame.opcode & 0xf);
  out[1] = (key ? 0x80 : 0) | (form === 7 ? Number(length) : form === 16 ? 126 : 127);
  if (form === 16) out.writeUInt16BE(Number(length), 2);
  if (form === 64) out.writeBigUInt64BE(BigInt.asUintN(64, length), 2);
  const payload = frame.payload;
  if (!key) {
    payload.copy(out, start);
    return out;
  }
  key.copy(out, start - 4);
  for (let i = 0; i < payload.length; i++) out[start + i] = payload[i]! ^ key[i & 3]!;
  return out;
}

/** A masked close frame, as a well-behaved client ends a session. */
export function cleanCloseFrame(rng: SeededRandom): Buffer {
  const payload = chance(rng, 0.2) ? Buffer.alloc(0) : closePayload(pick(rng, [1000, 1001, 3000, 4999]), randomText(rng, rng.below(30)));
  return encodeFuzzFrame(frame(rng, 0x8, payload.subarray(0, 125)));
}

/**
 * One random stream: a few scenarios, then 0 to 3 mutations of frames or bytes. Few streams carry a
 * message at the size limit: they cost a hundred times more than the rest.
 */
export function generateCase(rng: SeededRandom, maxPayload: number, deflate: DeflateMode | null = null): FuzzCase {
  const compressor = deflate && new Compressor(deflate);
  const frames: FuzzFrame[] = [];
  for (let n = between(rng, 1, 5); n > 0; n--) frames.push(...scenario(rng, compressor));
  if (chance(rng, 0.02)) frames.push(...bigMessage(rng, maxPayload, compressor));
  if (compressor && chance(rng, 0.05)) frames.push(...inflationBomb(rng, maxPayload, compressor));
  if (chance(rng, 0.3)) frames.push(closeFrame(rng));
  const r = rng.below(100);
  const count = r < 15 ? 0 : r < 60 ? 1 : r < 85 ? 2 : 3;
  const plan = Array.from({ length: count }, () => chance(rng, 0.65));
  const mutations: string[] = [];
  for (const structural of plan) {
    if (!structural || frames.length === 0) continue;
    const name = pick(rng, FRAME_MUTATION_NAMES);
    FRAME_MUTATIONS[name]!(rng, frames, maxPayload);
    mutations.push(name);
  }
  const built = frames.length;
  let bytes: Buffer = Buffer.concat(frames.map(encodeFuzzFrame));
  for (const structural of plan) {
    if (structural) continue;
    const name = pick(rng, BYTE_MUTATION_NAMES);
    bytes = BYTE_MUTATIONS[name]!(rng, bytes);
    mutations.push(name);
  }
  return { bytes, frames: built, mutations };
}

// Long streams are cut into at most about this many pieces on average, to bound the cost of a case.
const MOST_PIECES = 300;

/**
 * Cuts a stream into reads the way TCP might: whole, byte by byte, or in random sizes. The pieces are
 * views of one copy, since the connection unmasks what it receives in place.
 */
export function randomChunks(rng: SeededRandom, bytes: Buffer): Buffer[] {
  const copy = Buffer.from(bytes);
  const r = rng.below(100);
  const floor = Math.ceil((2 * bytes.length) / MOST_PIECES);
  const largest = r < 20 ? bytes.length : r < 25 && bytes.length <= MOST_PIECES ? 1
    : Math.max(floor, pick(rng, [2, 3, 7, 16, 64, 300, 1500, 9000]));
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length;) {
    const take = largest === 1 ? 1 : between(rng, 1, Math.max(1, largest));
    chunks.push(copy.subarray(at, at + take));
    at += take;
  }
  return chunks;
}
