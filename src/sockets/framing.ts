/**
 * Message framing for stream sockets, sans-I/O: encoders and incremental decoders over buffers, with
 * no sockets and no timers.
 *
 * TCP carries bytes, not messages: one read may return half a message, or the end of one glued to the
 * start of the next, wherever the sender's writes, the network and the receiver's reads happened to
 * cut. A decoder keeps whatever is incomplete between pushes, so the messages it reports never depend
 * on how the stream was cut.
 */
import { isUtf8 } from 'node:buffer';

export type FramingErrorCode = 'FRAME_TOO_LARGE' | 'LINE_TOO_LONG' | 'INVALID_UTF8' | 'TRUNCATED';

/** The peer broke the framing; the stream cannot be resynchronised, so its connection must close. */
export class FramingError extends Error {
  override name = 'FramingError';

  constructor(
    readonly code: FramingErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface Decoder<T> {
  /**
   * Decodes the messages this chunk completes and hands them to `emit`, in order. Messages may be
   * views of `chunk`, so the caller must not reuse it. On a violation the messages before it are
   * emitted, then a FramingError is thrown, and again on every later call.
   */
  push(chunk: Buffer, emit: (message: T) => void): void;
  /** The stream ended: emits what the last bytes complete, or throws if they cannot be a message. */
  end(emit: (message: T) => void): void;
  /** Bytes held for a message not yet complete. */
  readonly buffered: number;
}

export interface Codec<Out, In = Out> {
  /** 'frames', 'lines' or 'raw', for messages to people. */
  readonly name: string;
  /** One buffer with the message and its framing; throws a RangeError for a message it cannot carry. */
  encode(message: In): Buffer;
  /** A fresh decoder: one per stream, as it holds that stream's partial message. */
  decoder(): Decoder<Out>;
}

/** The most a u32 length prefix can announce. */
export const MAX_U32 = 0xffff_ffff;
export const DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024;
/** The limit of Python's asyncio StreamReader too: generous for text protocols, small enough to hold per client. */
export const DEFAULT_MAX_LINE_LENGTH = 64 * 1024;

const PREFIX_LENGTH = 4;
const LF = 0x0a;
const CR = 0x0d;
const EMPTY = Buffer.alloc(0);

function checkLimit(name: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${name} must be a whole number from 0 to ${max}, got ${value}`);
  }
  return value;
}

function toBuffer(message: Uint8Array | string): Buffer {
  if (typeof message === 'string') return Buffer.from(message);
  return Buffer.isBuffer(message) ? message : Buffer.from(message.buffer, message.byteOffset, message.byteLength);
}

/** Pieces of a message that arrived in several chunks; joined once, when the message is complete. */
class Pieces {
  private list: Buffer[] = [];
  bytes = 0;

  add(piece: Buffer): void {
    if (piece.length === 0) return;
    this.list.push(piece);
    this.bytes += piece.length;
  }

  /** Everything held, followed by `last`, as one buffer; empties the holder. */
  take(last: Buffer = EMPTY): Buffer {
    const total = this.bytes + last.length;
    let joined = last;
    if (this.list.length === 1 && last.length === 0) joined = this.list[0]!;
    else if (this.list.length > 0) joined = Buffer.concat(last.length > 0 ? [...this.list, last] : this.list, total);
    this.list = [];
    this.bytes = 0;
    return joined;
  }
}

/**
 * Length-prefixed frames: a u32 big-endian payload length, then the payload. The length is checked
 * against the limit as soon as its four bytes are in, before any of the payload is held, and payloads
 * are gathered as received rather than allocated up front, so a peer announcing 4 GiB costs nothing.
 */
export class LengthPrefixedDecoder implements Decoder<Buffer> {
  private readonly prefix = Buffer.alloc(PREFIX_LENGTH);
  private prefixFill = 0;
  /** Payload length of the frame in progress, or -1 while reading a prefix. */
  private expected = -1;
  private readonly payload = new Pieces();
  private failure: FramingError | undefined;

  constructor(readonly maxFrameSize = DEFAULT_MAX_FRAME_SIZE) {
    checkLimit('maxFrameSize', maxFrameSize, MAX_U32);
  }

  get buffered(): number {
    return this.prefixFill + this.payload.bytes;
  }

  push(chunk: Buffer, emit: (message: Buffer) => void): void {
    if (this.failure) throw this.failure;
    let offset = 0;
    while (offset < chunk.length) {
      if (this.expected < 0) {
        offset = this.readPrefix(chunk, offset);
        if (this.expected < 0) return;
        if (this.expected === 0) {
          this.expected = -1;
          emit(EMPTY);
          continue;
        }
      }
      const missing = this.expected - this.payload.bytes;
      const end = Math.min(chunk.length, offset + missing);
      const piece = chunk.subarray(offset, end);
      offset = end;
      if (piece.length < missing) {
        this.payload.add(piece);
        return;
      }
      this.expected = -1;
      emit(this.payload.take(piece));
    }
  }

  end(): void {
    if (this.failure) throw this.failure;
    if (this.expected >= 0) {
      this.fail('TRUNCATED', `the stream ended inside a frame (${this.payload.bytes} of ${this.expected} bytes)`);
    }
    if (this.prefixFill > 0) this.fail('TRUNCATED', 'the stream ended inside a frame length');
  }

  /** Reads (the rest of) a length prefix from `chunk` at `offset`; returns the new offset. */
  private readPrefix(chunk: Buffer, offset: number): number {
    let length: number;
    if (this.prefixFill === 0 && chunk.length - offset >= PREFIX_LENGTH) {
      length = chunk.readUInt32BE(offset);
      offset += PREFIX_LENGTH;
    } else {
      const copied = chunk.copy(this.prefix, this.prefixFill, offset, offset + PREFIX_LENGTH - this.prefixFill);
      this.prefixFill += copied;
      offset += copied;
      if (this.prefixFill < PREFIX_LENGTH) return offset;
      this.prefixFill = 0;
      length = this.prefix.readUInt32BE(0);
    }
    if (length > this.maxFrameSize) {
      this.fail('FRAME_TOO_LARGE', `frame of ${length} bytes exceeds the limit of ${this.maxFrameSize} bytes`);
    }
    this.expected = length;
    return offset;
  }

  private fail(code: FramingErrorCode, message: string): never {
    this.failure = new FramingError(code, message);
    throw this.failure;
  }
}

export function encodeLengthPrefixed(message: Uint8Array | string, maxFrameSize = MAX_U32): Buffer {
  const text = typeof message === 'string';
  const length = text ? Buffer.byteLength(message) : message.byteLength;
  if (length > maxFrameSize) {
    throw new RangeError(`message of ${length} bytes exceeds the frame limit of ${maxFrameSize} bytes`);
  }
  const frame = Buffer.allocUnsafe(PREFIX_LENGTH + length);
  frame.writeUInt32BE(length, 0);
  if (text) frame.write(message, PREFIX_LENGTH);
  else frame.set(message, PREFIX_LENGTH);
  return frame;
}

/**
 * Lines of UTF-8 text ended by "\n"; a "\r" before it is dropped too, so CRLF peers (telnet, many
 * Internet protocols) work unchanged. A line is checked as soon as it is known to be too long, without
 * waiting for its end, so a peer that never sends "\n" cannot make us hold more than the limit.
 */
export class LineDecoder implements Decoder<string> {
  private readonly pending = new Pieces();
  private failure: FramingError | undefined;

  constructor(readonly maxLineLength = DEFAULT_MAX_LINE_LENGTH) {
    checkLimit('maxLineLength', maxLineLength, MAX_U32);
  }

  get buffered(): number {
    return this.pending.bytes;
  }

  push(chunk: Buffer, emit: (line: string) => void): void {
    if (this.failure) throw this.failure;
    let start = 0;
    for (let lf = chunk.indexOf(LF, start); lf !== -1; lf = chunk.indexOf(LF, start)) {
      const line = this.pending.take(chunk.subarray(start, lf));
      start = lf + 1;
      emit(this.decode(line));
    }
    this.pending.add(chunk.subarray(start));
    // One byte more than the limit may still be the "\r" of a CRLF.
    if (this.pending.bytes > this.maxLineLength + 1) this.tooLong();
  }

  /** A last line without "\n" is still a line: `printf 'a\nb'` sends two. */
  end(emit: (line: string) => void): void {
    if (this.failure) throw this.failure;
    if (this.pending.bytes > 0) emit(this.decode(this.pending.take()));
  }

  private decode(line: Buffer): string {
    const end = line.length > 0 && line[line.length - 1] === CR ? line.length - 1 : line.length;
    if (end > this.maxLineLength) this.tooLong();
    const content = line.subarray(0, end);
    if (!isUtf8(content)) this.fail('INVALID_UTF8', 'line is not valid UTF-8');
    return content.toString('utf8');
  }

  private tooLong(): never {
    this.fail('LINE_TOO_LONG', `line longer than the limit of ${this.maxLineLength} bytes`);
  }

  private fail(code: FramingErrorCode, message: string): never {
    this.failure = new FramingError(code, message);
    throw this.failure;
  }
}

export function encodeLine(line: string, options: { maxLineLength?: number; crlf?: boolean } = {}): Buffer {
  // A "\n" inside would arrive as two messages, and a final "\r" would be taken for a CRLF's.
  if (line.includes('\n')) throw new RangeError('a line cannot contain "\\n"');
  if (line.endsWith('\r')) throw new RangeError('a line cannot end with "\\r"');
  const max = options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH;
  const length = Buffer.byteLength(line);
  if (length > max) throw new RangeError(`line of ${length} bytes exceeds the limit of ${max} bytes`);
  const ending = options.crlf ? '\r\n' : '\n';
  const bytes = Buffer.allocUnsafe(length + ending.length);
  bytes.write(line, 0);
  bytes.write(ending, length, 'latin1');
  return bytes;
}

/**
 * No framing: each message is whatever one read returned. Right for byte pipes, wrong for messages.
 * Its encoder does not copy: a Buffer sent is written as is, as with `socket.write`.
 */
export class RawDecoder implements Decoder<Buffer> {
  readonly buffered = 0;

  push(chunk: Buffer, emit: (bytes: Buffer) => void): void {
    if (chunk.length > 0) emit(chunk);
  }

  end(): void {}
}

export interface LengthPrefixedOptions {
  /** Largest payload accepted and sent, in bytes; default 16 MiB, at most 2^32 - 1. */
  maxFrameSize?: number;
}

export function lengthPrefixed(options: LengthPrefixedOptions = {}): Codec<Buffer, Uint8Array | string> {
  const max = checkLimit('maxFrameSize', options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE, MAX_U32);
  return {
    name: 'frames',
    encode: (message) => encodeLengthPrefixed(message, max),
    decoder: () => new LengthPrefixedDecoder(max),
  };
}

export interface LinesOptions {
  /** Longest line accepted and sent, in bytes of UTF-8 without the line ending; default 64 KiB. */
  maxLineLength?: number;
  /** End the lines we send with "\r\n" instead of "\n" (both are always accepted). */
  crlf?: boolean;
}

export function lines(options: LinesOptions = {}): Codec<string> {
  const maxLineLength = checkLimit('maxLineLength', options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH, MAX_U32);
  const crlf = options.crlf === true;
  return {
    name: 'lines',
    encode: (line) => encodeLine(line, { maxLineLength, crlf }),
    decoder: () => new LineDecoder(maxLineLength),
  };
}

export function rawBytes(): Codec<Buffer, Uint8Array | string> {
  return { name: 'raw', encode: toBuffer, decoder: () => new RawDecoder() };
}
