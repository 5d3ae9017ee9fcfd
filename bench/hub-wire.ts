/**
 * The WebSocket wire as the raw hub benchmark clients speak it: the upgrade request to /ws, masked
 * client frames for the few envelopes they send, and a reader for the hub's (unmasked) frames that
 * counts messages from headers alone and copies a payload only when asked to.
 */
import { createHash, randomBytes } from 'node:crypto';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const ACCEPT = createHash('sha1').update(`${KEY}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
const MAX_RESPONSE_HEAD = 16 * 1024;

const OPCODE_TEXT = 0x1;
const OPCODE_CLOSE = 0x8;
const OPCODE_PING = 0x9;
const OPCODE_PONG = 0xa;
const MAX_CONTROL_PAYLOAD = 125;
const MAX_HEADER = 10;

export function upgradeRequest(port: number, headers: Record<string, string> = {}): Buffer {
  const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  return Buffer.from(
    'GET /ws HTTP/1.1\r\n' +
      `Host: 127.0.0.1:${port}\r\n` +
      'Upgrade: websocket\r\n' +
      'Connection: Upgrade\r\n' +
      `Sec-WebSocket-Key: ${KEY}\r\n` +
      'Sec-WebSocket-Version: 13\r\n' +
      extra +
      '\r\n',
    'latin1',
  );
}

/**
 * Collects the 101 response head; returns the bytes after it once complete, null before. Throws on
 * anything but a 101 that accepts our key.
 */
export class UpgradeResponse {
  private head = Buffer.alloc(0);

  push(chunk: Buffer): Buffer | null {
    this.head = Buffer.concat([this.head, chunk]);
    const end = this.head.indexOf('\r\n\r\n');
    if (end === -1) {
      if (this.head.length > MAX_RESPONSE_HEAD) throw new Error('handshake response head too large');
      return null;
    }
    const text = this.head.toString('latin1', 0, end);
    if (!/^HTTP\/1\.1 101 /.test(text)) throw new Error(`handshake refused: ${text.slice(0, text.indexOf('\r\n'))}`);
    if (!text.includes(ACCEPT)) throw new Error('handshake response without the right Sec-WebSocket-Accept');
    return this.head.subarray(end + 4);
  }
}

// One mask for the whole process: the server only has to be able to unmask, and the benchmark
// clients must stay cheap.
const MASK = randomBytes(4);

function maskedFrame(opcode: number, payload: Buffer): Buffer {
  const length = payload.length;
  const headerLength = length < 126 ? 2 : length < 0x10000 ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerLength + 4 + length);
  frame[0] = 0x80 | opcode;
  if (length < 126) {
    frame[1] = 0x80 | length;
  } else if (length < 0x10000) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  MASK.copy(frame, headerLength);
  const start = headerLength + 4;
  for (let i = 0; i < length; i++) frame[start + i] = payload[i]! ^ MASK[i & 3]!;
  return frame;
}

export function textFrame(text: string): Buffer {
  return maskedFrame(OPCODE_TEXT, Buffer.from(text));
}

export interface FrameHandler {
  /** A complete text message; `payload` is only passed when the reader captures payloads. */
  message(payload: Buffer | null): void;
  /** The peer sent a close frame, or a frame this reader cannot follow. */
  failed(reason: string): void;
  /** Bytes to send back: the pong for a ping. */
  reply(frame: Buffer): void;
}

/**
 * Reads the hub's frames from a byte stream. Without `capture` a message costs its header parse
 * only; payloads are skipped by length, never copied. With `capture` each text payload is gathered
 * (it may span reads) and handed over. Pings are answered, as a browser would, so the hub's
 * heartbeat never drops a subscriber that only listens.
 */
export class ServerFrameReader {
  private readonly header = Buffer.alloc(MAX_HEADER);
  private headerLength = 0;
  private remaining = 0;
  private inPayload = false;
  private opcode = 0;
  private fin = false;
  private payload: Buffer | null = null;
  private filled = 0;
  private dead = false;

  constructor(
    private readonly handler: FrameHandler,
    /** Whether text payloads are gathered and handed over; may change between messages. */
    public capture: boolean,
  ) {}

  /** Feeds bytes `data[start..end)`; `data` may be reused by the caller afterwards. */
  push(data: Buffer, start: number, end: number): void {
    let i = start;
    while (i < end && !this.dead) {
      if (this.inPayload) {
        const take = Math.min(this.remaining, end - i);
        if (this.payload !== null) data.copy(this.payload, this.filled, i, i + take);
        this.filled += take;
        this.remaining -= take;
        i += take;
        if (this.remaining === 0) this.finishFrame();
        continue;
      }
      i = this.readHeader(data, i, end);
    }
  }

  private readHeader(data: Buffer, at: number, end: number): number {
    let i = at;
    while (i < end) {
      this.header[this.headerLength++] = data[i++]!;
      if (this.headerLength < 2) continue;
      const len7 = this.header[1]! & 0x7f;
      const needed = len7 === 126 ? 4 : len7 === 127 ? 10 : 2;
      if (this.headerLength < needed) continue;
      this.startFrame(len7);
      return i;
    }
    return i;
  }

  private startFrame(len7: number): void {
    const first = this.header[0]!;
    this.headerLength = 0;
    if (this.header[1]! & 0x80) return this.fail('the hub sent a masked frame');
    this.fin = (first & 0x80) !== 0;
    this.opcode = first & 0x0f;
    const length = len7 === 126 ? this.header.readUInt16BE(2) : len7 === 127 ? Number(this.header.readBigUInt64BE(2)) : len7;
    if (!this.fin || this.opcode !== OPCODE_TEXT) {
      if (this.opcode < OPCODE_CLOSE) return this.fail('the hub sent a fragmented or binary message');
      if (length > MAX_CONTROL_PAYLOAD) return this.fail('control frame too long');
    }
    const keep = this.opcode === OPCODE_PING || (this.capture && this.opcode === OPCODE_TEXT);
    this.payload = keep ? Buffer.allocUnsafe(length) : null;
    this.filled = 0;
    this.remaining = length;
    this.inPayload = true;
    if (length === 0) this.finishFrame();
  }

  private finishFrame(): void {
    this.inPayload = false;
    const payload = this.payload;
    this.payload = null;
    switch (this.opcode) {
      case OPCODE_TEXT: return this.handler.message(payload);
      case OPCODE_PING: return this.handler.reply(maskedFrame(OPCODE_PONG, payload!));
      case OPCODE_PONG: return;
      case OPCODE_CLOSE: return this.fail('the hub closed the connection');
      default: return this.fail(`unexpected opcode ${this.opcode}`);
    }
  }

  private fail(reason: string): void {
    this.dead = true;
    this.handler.failed(reason);
  }
}
