/**
 * The wire format of `duplex file`, sans I/O: encoders, incremental parsers and the name rules.
 *
 * Sender → receiver, in this order:
 *   HEADER   "DPXF" | version u8 | flags u8 | size u64 | name length u16 | name (UTF-8)
 *   KEEP*    "K"                  (while the sender hashes the prefix the receiver offered)
 *   START    "S" | offset u64     (the receiver's offer, or 0 when the prefix differs)
 *   BODY     size − offset raw bytes, no framing
 *   TRAILER  "H" | SHA-256 of the whole file (32 bytes)
 *
 * Receiver → sender:
 *   ACCEPT   "A" | offset u64 | SHA-256 of the first `offset` bytes it already has (32 bytes)
 *   DONE     "D" | SHA-256 it computed, equal to the trailer's; the file has its final name
 *   REFUSE   "R" | reason u8 | message length u16 | message (UTF-8); the last message
 *   KEEP     "K"                  (at any time, while it is busy with its disk)
 *
 * Integers are big-endian. The hash travels at the end so that the sender hashes while it sends
 * instead of reading the file twice; resuming stays safe because both sides check the prefix.
 */
export const MAGIC = Buffer.from('DPXF', 'latin1');
export const VERSION = 1;
export const HASH_BYTES = 32;
export const MAX_NAME_BYTES = 255;
/** Partial files are NAME + this suffix; names ending with it are reserved. */
export const PART_SUFFIX = '.part';

const FLAG_OVERWRITE = 0x01;
const HEADER_FIXED_BYTES = MAGIC.length + 1 + 1 + 8 + 2;
const START_BYTES = 1 + 8;
const TRAILER_BYTES = 1 + HASH_BYTES;
const ACCEPT_BYTES = 1 + 8 + HASH_BYTES;
const DONE_BYTES = 1 + HASH_BYTES;
const REFUSE_FIXED_BYTES = 1 + 1 + 2;
const MAX_MESSAGE_BYTES = 1024;

const TAG = { start: 0x53, trailer: 0x48, accept: 0x41, done: 0x44, refuse: 0x52, keep: 0x4b } as const;

export const REASONS = [
  'name-refused', 'exists', 'busy', 'hash-mismatch', 'disk-full', 'io-error', 'protocol', 'unsupported-version',
] as const;
export type RefusalReason = (typeof REASONS)[number];

export interface Header {
  name: string;
  size: number;
  /** The sender asks to replace a file of that name. */
  overwrite: boolean;
}

export type ReceiverMessage =
  | { type: 'accept'; offset: number; prefixSha256: Buffer }
  | { type: 'done'; sha256: Buffer }
  | { type: 'refuse'; reason: RefusalReason; message: string }
  | { type: 'keep' };

/** The peer broke the protocol; `reason` is what to answer it with. */
export class FileProtocolError extends Error {
  override name = 'FileProtocolError';
  constructor(readonly reason: RefusalReason, message: string) {
    super(message);
  }
}

/** Why `name` cannot be a file name in the receiving directory, or undefined when it can. */
export function nameProblem(name: string): string | undefined {
  if (name === '') return 'empty name';
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) return `longer than ${MAX_NAME_BYTES} bytes`;
  if (name === '.' || name === '..') return 'not a file name';
  // Both separators: a name is a name on every system, never a path.
  if (/[/\\]/.test(name)) return 'contains a path separator';
  if (/^[A-Za-z]:/.test(name)) return 'starts like a drive letter';
  // Control characters would also garble the one-line reports that quote the name.
  if (/[\x00-\x1f\x7f]/.test(name)) return 'contains a control character';
  if (name.endsWith(PART_SUFFIX)) return `ends with ${PART_SUFFIX}, which is kept for partial files`;
  return undefined;
}

function u64(value: number): Buffer {
  const buf = Buffer.allocUnsafe(8);
  buf.writeBigUInt64BE(BigInt(value));
  return buf;
}

function readU64(buf: Buffer, at: number, what: string): number {
  const value = buf.readBigUInt64BE(at);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new FileProtocolError('protocol', `${what} too large: ${value}`);
  return Number(value);
}

export function encodeHeader({ name, size, overwrite }: Header): Buffer {
  const nameBytes = Buffer.from(name, 'utf8');
  if (nameBytes.length > MAX_NAME_BYTES) throw new RangeError(`file name longer than ${MAX_NAME_BYTES} bytes`);
  const fixed = Buffer.allocUnsafe(HEADER_FIXED_BYTES);
  MAGIC.copy(fixed, 0);
  fixed[4] = VERSION;
  fixed[5] = overwrite ? FLAG_OVERWRITE : 0;
  fixed.writeBigUInt64BE(BigInt(size), 6);
  fixed.writeUInt16BE(nameBytes.length, 14);
  return Buffer.concat([fixed, nameBytes]);
}

export const encodeStart = (offset: number): Buffer => Buffer.concat([Buffer.of(TAG.start), u64(offset)]);
export const encodeTrailer = (sha256: Buffer): Buffer => Buffer.concat([Buffer.of(TAG.trailer), sha256]);
export const encodeAccept = (offset: number, prefixSha256: Buffer): Buffer =>
  Buffer.concat([Buffer.of(TAG.accept), u64(offset), prefixSha256]);
export const encodeDone = (sha256: Buffer): Buffer => Buffer.concat([Buffer.of(TAG.done), sha256]);
export const KEEP = Buffer.of(TAG.keep);

export function encodeRefuse(reason: RefusalReason, message: string): Buffer {
  let text = Buffer.from(message, 'utf8');
  if (text.length > MAX_MESSAGE_BYTES) text = text.subarray(0, MAX_MESSAGE_BYTES);
  const fixed = Buffer.of(TAG.refuse, REASONS.indexOf(reason) + 1, 0, 0);
  fixed.writeUInt16BE(text.length, 2);
  return Buffer.concat([fixed, text]);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeName(bytes: Buffer): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new FileProtocolError('name-refused', 'the name is not valid UTF-8');
  }
}

/**
 * Collects bytes until `need` are there, across chunk boundaries, copying only what is split: the
 * input's memory may be reused once push() returns.
 */
class Gather {
  private parts: Buffer[] = [];
  private have = 0;

  get empty(): boolean {
    return this.have === 0;
  }

  /** Takes from chunk[at..] what is missing; returns the complete bytes and how many it used. */
  take(chunk: Buffer, at: number, need: number): { bytes?: Buffer; used: number } {
    const used = Math.min(need - this.have, chunk.length - at);
    if (this.have === 0 && used === need) return { bytes: chunk.subarray(at, at + need), used };
    this.parts.push(Buffer.from(chunk.subarray(at, at + used)));
    this.have += used;
    if (this.have < need) return { used };
    const bytes = Buffer.concat(this.parts, need);
    this.parts = [];
    this.have = 0;
    return { bytes, used };
  }
}

export interface SenderStreamHandler {
  header(header: Header): void;
  start(offset: number): void;
  /** A view of the input chunk, whose memory may be reused after the call: copy it to keep it. */
  body(chunk: Buffer): void;
  trailer(sha256: Buffer): void;
}

type SenderState = 'header' | 'name' | 'start' | 'body' | 'trailer' | 'end';

/** What the receiver reads; calls the handler as each part completes, throws FileProtocolError. */
export class SenderStreamParser {
  private state: SenderState = 'header';
  private readonly gather = new Gather();
  private size = 0;
  private flags = 0;
  private nameLength = 0;
  private bodyLeft = 0;

  constructor(private readonly handler: SenderStreamHandler) {}

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.state === 'body') {
        const take = Math.min(this.bodyLeft, chunk.length - at);
        this.bodyLeft -= take;
        if (this.bodyLeft === 0) this.state = 'trailer';
        this.handler.body(chunk.subarray(at, at + take));
        at += take;
        continue;
      }
      if (this.state === 'start' && this.gather.empty && chunk[at] === TAG.keep) {
        at += 1;
        continue;
      }
      if (this.state === 'end') throw new FileProtocolError('protocol', 'bytes after the trailer');
      const { bytes, used } = this.gather.take(chunk, at, this.need());
      at += used;
      if (bytes) this.complete(bytes);
    }
  }

  private need(): number {
    switch (this.state) {
      case 'header': return HEADER_FIXED_BYTES;
      case 'name': return this.nameLength;
      case 'start': return START_BYTES;
      default: return TRAILER_BYTES;
    }
  }

  private complete(bytes: Buffer): void {
    switch (this.state) {
      case 'header': return this.fixedHeader(bytes);
      case 'name': return this.named(decodeName(bytes));
      case 'start': return this.started(bytes);
      default: return this.ended(bytes);
    }
  }

  private fixedHeader(bytes: Buffer): void {
    if (!bytes.subarray(0, MAGIC.length).equals(MAGIC)) throw new FileProtocolError('protocol', 'not a duplex file sender');
    if (bytes[4] !== VERSION) throw new FileProtocolError('unsupported-version', `protocol version ${bytes[4]}, expected ${VERSION}`);
    this.flags = bytes[5]!;
    if ((this.flags & ~FLAG_OVERWRITE) !== 0) throw new FileProtocolError('protocol', `unknown flags ${this.flags}`);
    this.size = readU64(bytes, 6, 'file size');
    this.nameLength = bytes.readUInt16BE(14);
    if (this.nameLength === 0) this.named('');
    else this.state = 'name';
  }

  private named(name: string): void {
    this.state = 'start';
    this.handler.header({ name, size: this.size, overwrite: (this.flags & FLAG_OVERWRITE) !== 0 });
  }

  private started(bytes: Buffer): void {
    if (bytes[0] !== TAG.start) throw new FileProtocolError('protocol', `expected START, got byte ${bytes[0]}`);
    const offset = readU64(bytes, 1, 'start offset');
    if (offset > this.size) throw new FileProtocolError('protocol', `start offset ${offset} beyond the size ${this.size}`);
    this.bodyLeft = this.size - offset;
    this.state = this.bodyLeft === 0 ? 'trailer' : 'body';
    this.handler.start(offset);
  }

  private ended(bytes: Buffer): void {
    if (bytes[0] !== TAG.trailer) throw new FileProtocolError('protocol', `expected the trailer, got byte ${bytes[0]}`);
    this.state = 'end';
    this.handler.trailer(Buffer.from(bytes.subarray(1)));
  }
}

/** What the sender reads: a handful of small messages, returned as they complete. */
export class ReceiverMessageParser {
  private readonly gather = new Gather();
  private tag: number | undefined;
  private refuseHead: Buffer | undefined;

  push(chunk: Buffer): ReceiverMessage[] {
    const messages: ReceiverMessage[] = [];
    let at = 0;
    while (at < chunk.length) {
      if (this.tag === undefined) {
        this.tag = chunk[at++]!;
        if (this.tag === TAG.keep) {
          this.tag = undefined;
          messages.push({ type: 'keep' });
        }
        continue;
      }
      const { bytes, used } = this.gather.take(chunk, at, this.need());
      at += used;
      const message = bytes && this.complete(bytes);
      if (message) messages.push(message);
    }
    return messages;
  }

  private need(): number {
    switch (this.tag) {
      case TAG.accept: return ACCEPT_BYTES - 1;
      case TAG.done: return DONE_BYTES - 1;
      case TAG.refuse: return this.refuseHead ? this.refuseHead.readUInt16BE(1) : REFUSE_FIXED_BYTES - 1;
      default: throw new FileProtocolError('protocol', `unknown message ${this.tag}: not a duplex file receiver`);
    }
  }

  private complete(bytes: Buffer): ReceiverMessage | undefined {
    const tag = this.tag;
    this.tag = undefined;
    if (tag === TAG.accept) return { type: 'accept', offset: readU64(bytes, 0, 'offset'), prefixSha256: Buffer.from(bytes.subarray(8)) };
    if (tag === TAG.done) return { type: 'done', sha256: Buffer.from(bytes) };
    if (!this.refuseHead) {
      this.refuseHead = Buffer.from(bytes);
      if (this.refuseHead.readUInt16BE(1) > 0) {
        this.tag = tag;
        return undefined;
      }
      return this.refusal(Buffer.alloc(0));
    }
    return this.refusal(bytes);
  }

  private refusal(text: Buffer): ReceiverMessage {
    const reason = REASONS[this.refuseHead![0]! - 1] ?? 'protocol';
    this.refuseHead = undefined;
    return { type: 'refuse', reason, message: text.toString('utf8') };
  }
}
