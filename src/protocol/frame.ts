// WebSocket frames (RFC 6455 section 5.2): the encoder and an incremental parser.
import { randomFillSync } from 'node:crypto';
import { maskInPlace } from './mask.js';
import { CloseCode } from './close.js';

export const Opcode = {
  CONTINUATION: 0x0,
  TEXT: 0x1,
  BINARY: 0x2,
  CLOSE: 0x8,
  PING: 0x9,
  PONG: 0xa,
} as const;

export const MAX_CONTROL_PAYLOAD = 125;

export function isControl(opcode: number): boolean {
  return (opcode & 0x8) !== 0;
}

function headerLength(payloadLength: number, masked: boolean): number {
  const base = payloadLength < 126 ? 2 : payloadLength < 0x10000 ? 4 : 10;
  return masked ? base + 4 : base;
}

// Masking keys come from a pool so that each frame does not pay for a call into the CSPRNG.
const keyPool = Buffer.allocUnsafe(4096);
let keyOffset = keyPool.length;
function nextMaskKey(): Buffer {
  if (keyOffset === keyPool.length) {
    randomFillSync(keyPool);
    keyOffset = 0;
  }
  const key = keyPool.subarray(keyOffset, keyOffset + 4);
  keyOffset += 4;
  return key;
}

function writeHeader(
  target: Buffer, opcode: number, payloadLength: number, fin: boolean, rsv1: boolean, maskKey: Buffer | null,
): number {
  target[0] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode;
  const maskBit = maskKey ? 0x80 : 0;
  let offset: number;
  if (payloadLength < 126) {
    target[1] = maskBit | payloadLength;
    offset = 2;
  } else if (payloadLength < 0x10000) {
    target[1] = maskBit | 126;
    target.writeUInt16BE(payloadLength, 2);
    offset = 4;
  } else {
    target[1] = maskBit | 127;
    target.writeUInt32BE(Math.floor(payloadLength / 0x100000000), 2);
    target.writeUInt32BE(payloadLength >>> 0, 6);
    offset = 10;
  }
  if (maskKey) {
    target[offset] = maskKey[0]!;
    target[offset + 1] = maskKey[1]!;
    target[offset + 2] = maskKey[2]!;
    target[offset + 3] = maskKey[3]!;
    offset += 4;
  }
  return offset;
}

export interface FrameOptions {
  fin?: boolean;
  rsv1?: boolean;
  /** Clients mask every frame with a fresh random key; servers never mask. */
  mask: boolean;
}

/**
 * Encodes one frame into a single buffer. A string payload is written straight into the frame as
 * UTF-8, so text costs one allocation. The caller's payload is never modified.
 */
export function encodeFrame(opcode: number, payload: Uint8Array | string, options: FrameOptions): Buffer {
  const text = typeof payload === 'string';
  const length = text ? Buffer.byteLength(payload) : payload.length;
  const maskKey = options.mask ? nextMaskKey() : null;
  const offset = headerLength(length, options.mask);
  const frame = Buffer.allocUnsafe(offset + length);
  writeHeader(frame, opcode, length, options.fin ?? true, options.rsv1 ?? false, maskKey);
  if (text) frame.write(payload, offset);
  else frame.set(payload, offset);
  if (maskKey && length > 0) maskInPlace(frame.subarray(offset), maskKey);
  return frame;
}

/**
 * Encodes only the header of an unmasked frame, for large payloads that are written after it without
 * being copied.
 */
export function encodeHeader(opcode: number, payloadLength: number, fin = true, rsv1 = false): Buffer {
  const header = Buffer.allocUnsafe(headerLength(payloadLength, false));
  writeHeader(header, opcode, payloadLength, fin, rsv1, null);
  return header;
}

/**
 * What the parser reports. A `false` return from a callback stops the current push() right there: the
 * caller gets the number of bytes consumed and may push the rest later (e.g. after an async step).
 */
export interface FrameSink {
  frameStart(fin: boolean, rsv1: boolean, opcode: number, length: number): boolean;
  /** Unmasked payload bytes, in order; a frame's payload may come in several pieces. */
  framePayload(data: Buffer): boolean;
  frameEnd(): boolean;
  /** A violation found in a frame header; the parser is dead afterwards. */
  frameError(code: number, message: string): void;
}

export interface FrameParserOptions {
  /** Servers require masked frames, clients refuse them. */
  expectMasked: boolean;
  /** RSV1 is legal on data frames once permessage-deflate is negotiated. */
  allowRsv1?: boolean;
}

const enum State {
  Header,
  Payload,
  Dead,
}

/**
 * Parses frames out of a byte stream split at arbitrary points. Payloads are handed on as sub-views of
 * the input chunks and unmasked in place, so the parser copies only a header split across chunks.
 */
export class FrameParser {
  allowRsv1: boolean;
  private readonly expectMasked: boolean;
  private state = State.Header;
  // A header split across chunks is gathered here (at most 14 bytes).
  private headerBytes: Buffer | null = null;
  private headerFill = 0;
  private remaining = 0;
  private masked = false;
  // Made on the first masked frame: a connection that never sends costs no typed array.
  private maskKey: Uint8Array | null = null;
  private maskPhase = 0;
  private stopped = false;

  constructor(private readonly sink: FrameSink, options: FrameParserOptions) {
    this.expectMasked = options.expectMasked;
    this.allowRsv1 = options.allowRsv1 ?? false;
  }

  get dead(): boolean {
    return this.state === State.Dead;
  }

  /** True while no frame is half-received: the parser holds no bytes of its own. */
  get idle(): boolean {
    return this.state === State.Header && this.headerFill === 0;
  }

  /** Parses as much of `chunk` as it can; returns the bytes consumed, less than its length only when stopped. */
  push(chunk: Buffer): number {
    let pos = 0;
    const end = chunk.length;
    this.stopped = false;
    while (pos < end && !this.stopped) {
      if (this.state === State.Header) {
        const used = this.headerFill === 0 ? this.parseHeader(chunk, pos) : this.continueHeader(chunk, pos);
        if (used < 0) return pos;
        pos += used;
        if (this.state === State.Header || this.stopped) continue; // an incomplete header is all used up
        if (this.remaining === 0) this.finishFrame();
      } else if (this.state === State.Payload) {
        const take = Math.min(this.remaining, end - pos);
        const piece = chunk.subarray(pos, pos + take);
        pos += take;
        if (this.masked) {
          maskInPlace(piece, this.maskKey!, this.maskPhase);
          this.maskPhase = (this.maskPhase + take) & 3;
        }
        this.remaining -= take;
        if (!this.sink.framePayload(piece)) this.stopped = true;
        else if (this.remaining === 0) this.finishFrame();
      } else {
        return pos;
      }
    }
    return pos;
  }

  private finishFrame(): void {
    this.state = State.Header;
    if (!this.sink.frameEnd()) this.stopped = true;
  }

  private fail(code: number, message: string): number {
    this.state = State.Dead;
    this.headerBytes = null;
    this.sink.frameError(code, message);
    return -1;
  }

  /** Bytes a header needs in total, once its first two bytes are known. */
  private static headerSize(second: number): number {
    const len7 = second & 0x7f;
    return (len7 < 126 ? 2 : len7 === 126 ? 4 : 10) + ((second & 0x80) !== 0 ? 4 : 0);
  }

  /** Parses a header from `buf` at `pos`; returns bytes used, or -1 if the parser died. */
  private parseHeader(buf: Buffer, pos: number): number {
    const available = buf.length - pos;
    if (available < 2 || available < FrameParser.headerSize(buf[pos + 1]!)) {
      return this.continueHeader(buf, pos);
    }
    return this.decodeHeader(buf, pos);
  }

  private continueHeader(buf: Buffer, pos: number): number {
    if (!this.headerBytes) this.headerBytes = Buffer.allocUnsafe(14);
    const header = this.headerBytes;
    let used = 0;
    const need = () => (this.headerFill < 2 ? 2 : FrameParser.headerSize(header[1]!));
    while (this.headerFill < need() && pos + used < buf.length) {
      header[this.headerFill++] = buf[pos + used++]!;
    }
    if (this.headerFill < need()) return used;
    this.headerFill = 0;
    this.headerBytes = null;
    return this.decodeHeader(header, 0) < 0 ? -1 : used;
  }

  /** Decodes a complete header at `pos` and validates it; returns the header's size or -1. */
  private decodeHeader(buf: Buffer, pos: number): number {
    const first = buf[pos]!;
    const second = buf[pos + 1]!;
    const fin = (first & 0x80) !== 0;
    const rsv1 = (first & 0x40) !== 0;
    const opcode = first & 0x0f;
    const masked = (second & 0x80) !== 0;
    let length = second & 0x7f;
    let offset = pos + 2;

    if ((first & 0x30) !== 0 || (rsv1 && (!this.allowRsv1 || isControl(opcode)))) {
      return this.fail(CloseCode.PROTOCOL_ERROR, 'reserved bits set without a negotiated extension');
    }
    if ((opcode > Opcode.BINARY && opcode < Opcode.CLOSE) || opcode > Opcode.PONG) {
      return this.fail(CloseCode.PROTOCOL_ERROR, `unknown opcode ${opcode}`);
    }
    if (isControl(opcode)) {
      if (!fin) return this.fail(CloseCode.PROTOCOL_ERROR, 'fragmented control frame');
      if (length > MAX_CONTROL_PAYLOAD) return this.fail(CloseCode.PROTOCOL_ERROR, 'control frame payload over 125 bytes');
    }
    if (masked !== this.expectMasked) {
      return this.fail(CloseCode.PROTOCOL_ERROR, masked ? 'masked frame from a server' : 'unmasked frame from a client');
    }
    if (length === 126) {
      length = buf.readUInt16BE(offset);
      offset += 2;
    } else if (length === 127) {
      const high = buf.readUInt32BE(offset);
      if (high & 0x80000000) return this.fail(CloseCode.PROTOCOL_ERROR, '64-bit payload length with the top bit set');
      // Lengths beyond 2^53 cannot be counted exactly and are far past any sane maxPayload.
      if (high > 0x1fffff) return this.fail(CloseCode.MESSAGE_TOO_BIG, 'payload length too large');
      length = high * 0x100000000 + buf.readUInt32BE(offset + 4);
      offset += 8;
    }
    this.masked = masked;
    if (masked) {
      // Copied: neither the header scratch buffer nor this chunk outlives the call.
      (this.maskKey ??= new Uint8Array(4)).set(buf.subarray(offset, offset + 4));
      this.maskPhase = 0;
      offset += 4;
    }
    this.remaining = length;
    this.state = State.Payload;
    if (!this.sink.frameStart(fin, rsv1, opcode, length)) this.stopped = true;
    return offset - pos;
  }
}
