// A deliberately low-level WebSocket client for conformance tests. It shares no code with
// src/ so that a bug in the engine cannot hide itself by being on both ends of the wire:
// it builds every frame by hand (any opcode, RSV bits, FIN, mask, even a false length),
// parses what the server sends strictly, and records how the connection ended. For
// permessage-deflate it can offer the extension, and RawDeflate compresses and inflates on
// node:zlib, independently of src/protocol/permessage-deflate.ts.
import net from 'node:net';
import zlib from 'node:zlib';
import { createHash, randomBytes } from 'node:crypto';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';

export const Op = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa,
} as const;

const HANDSHAKE_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const MAX_RESPONSE_HEAD = 16 * 1024;
export const DEFAULT_WAIT_MS = 3000;
const WRITE_WAIT_MS = 10_000;

export interface FrameSpec {
  opcode: number;
  payload?: Uint8Array | string;
  /** Default true. */
  fin?: boolean;
  /** The 3-bit RSV field as it sits in the header: 4 = RSV1, 2 = RSV2, 1 = RSV3. */
  rsv?: number;
  /** Default true: clients must mask. */
  mask?: boolean;
  maskKey?: Uint8Array;
  /** Declared payload length when it should differ from the real one. */
  length?: number | bigint;
}

export interface Frame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

export interface Message {
  opcode: number;
  data: Buffer;
  /** RSV1 was set on its first frame: with permessage-deflate, the data is still compressed. */
  compressed?: boolean;
}

export interface CloseInfo {
  /** null when the close frame had an empty payload. */
  code: number | null;
  reason: Buffer;
}

export interface ConnectOptions {
  /** How long the opening handshake may take. */
  timeoutMs?: number;
  /** Sec-WebSocket-Extensions to offer; each string of an array is a header line of its own. */
  extensions?: string | string[];
}

function toBuffer(data: Uint8Array | string | undefined): Buffer {
  if (data === undefined) return Buffer.alloc(0);
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
}

export function encodeFrame(spec: FrameSpec): Buffer {
  const payload = toBuffer(spec.payload);
  const declared = BigInt(spec.length ?? payload.length);
  const masked = spec.mask ?? true;
  const first = ((spec.fin ?? true) ? 0x80 : 0) | (((spec.rsv ?? 0) & 7) << 4) | (spec.opcode & 0xf);
  const maskBit = masked ? 0x80 : 0;
  let header: Buffer;
  if (declared < 126n) {
    header = Buffer.from([first, maskBit | Number(declared)]);
  } else if (declared < 0x10000n) {
    header = Buffer.alloc(4);
    header[0] = first;
    header[1] = maskBit | 126;
    header.writeUInt16BE(Number(declared), 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = first;
    header[1] = maskBit | 127;
    header.writeBigUInt64BE(declared, 2);
  }
  if (!masked) return Buffer.concat([header, payload]);
  const key = spec.maskKey ? Buffer.from(spec.maskKey) : randomBytes(4);
  const body = Buffer.alloc(payload.length);
  for (let i = 0; i < payload.length; i++) body[i] = payload[i]! ^ key[i & 3]!;
  return Buffer.concat([header, key, body]);
}

export function closePayload(code?: number, reason: Uint8Array | string = ''): Buffer {
  if (code === undefined) return Buffer.alloc(0);
  const head = Buffer.alloc(2);
  head.writeUInt16BE(code);
  return Buffer.concat([head, toBuffer(reason)]);
}

export function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

/** Splits bytes into pieces of at most `size` bytes. */
export function chunks(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

/** Collects bytes across TCP reads without re-copying everything on each read. */
class ByteQueue {
  private parts: Buffer[] = [];
  length = 0;

  push(chunk: Buffer): void {
    this.parts.push(chunk);
    this.length += chunk.length;
  }

  peek(n: number): Buffer {
    if (this.parts[0]!.length < n) this.parts = [Buffer.concat(this.parts)];
    return this.parts[0]!.subarray(0, n);
  }

  take(n: number): Buffer {
    const out = Buffer.from(this.peek(n));
    const head = this.parts[0]!;
    if (head.length === n) this.parts.shift();
    else this.parts[0] = head.subarray(n);
    this.length -= n;
    return out;
  }
}

type Decoded = { frame: Frame; size: number } | { need: number } | { error: string };

/** Decodes one frame from the queue front without consuming it; strict about what a server may send. */
function decodeHeader(queue: ByteQueue): Decoded {
  if (queue.length < 2) return { need: 2 };
  const two = queue.peek(2);
  const b0 = two[0]!;
  const b1 = two[1]!;
  let offset = 2;
  let length = b1 & 0x7f;
  if (length === 126) {
    if (queue.length < 4) return { need: 4 };
    length = queue.peek(4).readUInt16BE(2);
    offset = 4;
    if (length < 126) return { error: `non-minimal 16-bit length ${length}` };
  } else if (length === 127) {
    if (queue.length < 10) return { need: 10 };
    const big = queue.peek(10).readBigUInt64BE(2);
    offset = 10;
    if (big > BigInt(Number.MAX_SAFE_INTEGER)) return { error: `absurd 64-bit length ${big}` };
    length = Number(big);
    if (length < 0x10000) return { error: `non-minimal 64-bit length ${length}` };
  }
  const masked = (b1 & 0x80) !== 0;
  if (masked) offset += 4;
  if (queue.length < offset + length) return { need: offset + length };
  const raw = queue.peek(offset + length);
  const payload = Buffer.from(raw.subarray(offset));
  if (masked) {
    const key = raw.subarray(offset - 4, offset);
    for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ key[i & 3]!;
  }
  const frame = { fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0xf, masked, payload };
  return { frame, size: offset + length };
}

function describeFrame(f: Frame): string {
  const name = Object.entries(Op).find(([, v]) => v === f.opcode)?.[0] ?? `op${f.opcode}`;
  let extra = '';
  if (f.opcode === Op.Close && f.payload.length >= 2) extra = ` code=${f.payload.readUInt16BE(0)}`;
  return `${name}${f.fin ? '' : '(fin=0)'}[${f.payload.length}]${extra}`;
}

export class RawClient {
  /** Every frame the server sent, in order. */
  readonly frames: Frame[] = [];
  /** Ways in which the server broke RFC 6455 on its side of the wire. */
  readonly violations: string[] = [];
  /** The first close frame received. */
  closeReceived: CloseInfo | null = null;
  closeSent = false;
  /** True when the server ended TCP (FIN or reset) before we ever tore the socket down. */
  serverClosedTcp = false;
  socketError: Error | null = null;

  private readonly queue = new ByteQueue();
  private readPos = 0;
  private weDestroyed = false;
  private fragmentedOpcode: number | null = null;
  private readonly watchers = new Set<() => void>();
  /** permessage-deflate was accepted, which gives RSV1 a meaning on the first frame of a message. */
  private readonly rsv1Allowed: boolean;

  private constructor(
    private readonly socket: net.Socket,
    leftover: Buffer,
    /** The server's Sec-WebSocket-Extensions, '' when it accepted none. */
    readonly extensions = '',
  ) {
    this.rsv1Allowed = extensions.split(',').some((element) => element.split(';')[0]!.trim() === 'permessage-deflate');
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('end', () => this.markServerClosed());
    socket.on('error', (err) => {
      this.socketError = err;
      this.markServerClosed();
    });
    socket.on('close', () => this.markServerClosed());
    if (leftover.length > 0) this.receive(leftover);
    socket.resume();
  }

  static async connect(url: string, options: ConnectOptions = {}): Promise<RawClient> {
    const target = new URL(url);
    const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_MS;
    const socket = net.connect({ host: target.hostname.replace(/^\[|\]$/g, ''), port: Number(target.port) });
    const key = randomBytes(16).toString('base64');
    const path = target.pathname + target.search || '/';
    const offers = options.extensions === undefined ? [] : [options.extensions].flat();
    const request =
      `GET ${path} HTTP/1.1\r\nHost: ${target.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
      offers.map((offer) => `Sec-WebSocket-Extensions: ${offer}\r\n`).join('') +
      '\r\n';
    socket.write(request);
    try {
      const { head, rest } = await readResponseHead(socket, timeoutMs);
      return new RawClient(socket, rest, checkHandshakeResponse(head, key, offers.length > 0));
    } catch (err) {
      socket.destroy();
      throw err;
    }
  }

  /** Writes bytes as they are; resolves once they are handed to the kernel. Write errors are not fatal:
   * a server that has already failed the connection may well reset it under us. A server that neither
   * reads nor closes makes this reject after `timeoutMs`. */
  write(bytes: Uint8Array, timeoutMs = WRITE_WAIT_MS): Promise<void> {
    if (this.socket.destroyed || !this.socket.writable) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const stuck = (): void => reject(new Error(`write not flushed within ${timeoutMs} ms; ${this.summary()}`));
      const timer = setTimeout(stuck, timeoutMs);
      this.socket.write(bytes, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Writes bytes and half-closes TCP at once, as a peer does that has said all it had to say. */
  writeAndEnd(bytes: Uint8Array): Promise<void> {
    return new Promise((resolve) => this.socket.end(bytes, resolve));
  }

  send(spec: FrameSpec): Promise<void> {
    if (spec.opcode === Op.Close) this.closeSent = true;
    return this.write(encodeFrame(spec));
  }

  /** Several frames coalesced into one TCP write. */
  sendAll(specs: FrameSpec[]): Promise<void> {
    if (specs.some((s) => s.opcode === Op.Close)) this.closeSent = true;
    return this.write(Buffer.concat(specs.map(encodeFrame)));
  }

  /** Writes bytes in pieces of `size`, each its own write, with `pauseMs` between them (0: a macrotask turn). */
  async writeChunked(bytes: Uint8Array, size: number, pauseMs = 0): Promise<void> {
    for (const piece of chunks(Buffer.from(bytes), size)) {
      await this.write(piece);
      await (pauseMs > 0 ? sleep(pauseMs) : nextTurn());
    }
  }

  sendChunked(spec: FrameSpec, size: number, pauseMs = 0): Promise<void> {
    if (spec.opcode === Op.Close) this.closeSent = true;
    return this.writeChunked(encodeFrame(spec), size, pauseMs);
  }

  sendClose(code?: number, reason: Uint8Array | string = ''): Promise<void> {
    return this.send({ opcode: Op.Close, payload: closePayload(code, reason) });
  }

  /** Resolves with the next received frame not yet handed out. */
  nextFrame(timeoutMs = DEFAULT_WAIT_MS): Promise<Frame> {
    return this.waitFor(
      () => {
        if (this.readPos < this.frames.length) return this.frames[this.readPos++];
        if (this.serverClosedTcp) throw new Error(`connection ended while waiting for a frame; ${this.summary()}`);
        return undefined;
      },
      timeoutMs,
      'a frame',
    );
  }

  /** The next complete data message; any control frame on the way is an error, so ordering is checked too. */
  async nextMessage(timeoutMs = DEFAULT_WAIT_MS): Promise<Message> {
    const deadline = Date.now() + timeoutMs;
    const parts: Buffer[] = [];
    let first: Frame | null = null;
    for (;;) {
      const frame = await this.nextFrame(Math.max(1, deadline - Date.now()));
      if (frame.opcode >= 0x8) {
        throw new Error(`expected a data message, got ${describeFrame(frame)}; ${this.summary()}`);
      }
      first ??= frame;
      parts.push(frame.payload);
      if (frame.fin) return { opcode: first.opcode, data: Buffer.concat(parts), compressed: (first.rsv & 4) !== 0 };
    }
  }

  /** Waits for the server's close frame; data frames before it are returned for the caller to judge. */
  async nextClose(timeoutMs = DEFAULT_WAIT_MS): Promise<{ close: CloseInfo; before: Frame[] }> {
    const before: Frame[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const frame = await this.nextFrame(Math.max(1, deadline - Date.now()));
      if (frame.opcode === Op.Close) return { close: parseClose(frame.payload), before };
      before.push(frame);
    }
  }

  /** Resolves once the server has ended TCP; rejects if it has not within the time given. */
  waitForServerTcpClose(timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    return this.waitFor(() => (this.serverClosedTcp ? true : undefined), timeoutMs, 'the server to close TCP').then(
      () => undefined,
    );
  }

  destroy(): void {
    if (!this.serverClosedTcp) this.weDestroyed = true;
    this.socket.destroy();
  }

  summary(): string {
    const frames = this.frames.map(describeFrame).join(', ') || 'none';
    const end = this.serverClosedTcp ? 'server closed TCP' : 'TCP open';
    return `frames received: ${frames}; ${end}${this.socketError ? ` (${this.socketError.message})` : ''}`;
  }

  private waitFor<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const watcher = (): void => {
        let value: T | undefined;
        try {
          value = check();
        } catch (err) {
          finish();
          reject(err);
          return;
        }
        if (value === undefined) return;
        finish();
        resolve(value);
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${this.summary()}`));
      }, timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        this.watchers.delete(watcher);
      };
      this.watchers.add(watcher);
      watcher();
    });
  }

  private notify(): void {
    for (const watcher of [...this.watchers]) watcher();
  }

  private markServerClosed(): void {
    if (!this.weDestroyed && !this.serverClosedTcp) {
      this.serverClosedTcp = true;
      this.notify();
    }
  }

  private receive(chunk: Buffer): void {
    this.queue.push(chunk);
    for (;;) {
      const decoded = decodeHeader(this.queue);
      if ('need' in decoded) break;
      if ('error' in decoded) {
        this.violations.push(decoded.error);
        this.queue.take(this.queue.length);
        break;
      }
      this.queue.take(decoded.size);
      this.accept(decoded.frame);
    }
    this.notify();
  }

  private accept(frame: Frame): void {
    this.checkFrame(frame);
    this.frames.push(frame);
    if (frame.opcode !== Op.Close || this.closeReceived) return;
    this.closeReceived = parseClose(frame.payload);
    // Answer as Autobahn's client does, so the server can finish the handshake and close TCP.
    if (!this.closeSent) {
      const code = this.closeReceived.code;
      void this.sendClose(code !== null && isValidCloseCode(code) ? code : undefined);
    }
  }

  private checkFrame(frame: Frame): void {
    const what = describeFrame(frame);
    if (this.closeReceived) this.violations.push(`${what} after the close frame`);
    if (frame.masked) this.violations.push(`${what} is masked`);
    // RFC 7692 section 6: RSV1 marks a compressed message, on its first frame only.
    const compressible = this.rsv1Allowed && (frame.opcode === Op.Text || frame.opcode === Op.Binary);
    if ((compressible ? frame.rsv & 3 : frame.rsv) !== 0) {
      const why = this.rsv1Allowed ? 'not allowed on this frame' : 'without an extension';
      this.violations.push(`${what} has RSV ${frame.rsv} ${why}`);
    }
    if (frame.opcode >= 0x8) {
      if (![Op.Close, Op.Ping, Op.Pong].includes(frame.opcode as 8)) this.violations.push(`${what}: reserved opcode`);
      if (!frame.fin) this.violations.push(`${what}: fragmented control frame`);
      if (frame.payload.length > 125) this.violations.push(`${what}: control payload over 125`);
      if (frame.opcode === Op.Close) this.checkClosePayload(what, frame.payload);
      return;
    }
    if (frame.opcode !== Op.Continuation && frame.opcode !== Op.Text && frame.opcode !== Op.Binary) {
      this.violations.push(`${what}: reserved opcode`);
    } else if (frame.opcode === Op.Continuation && this.fragmentedOpcode === null) {
      this.violations.push(`${what}: continuation without a started message`);
    } else if (frame.opcode !== Op.Continuation && this.fragmentedOpcode !== null) {
      this.violations.push(`${what}: new message inside a fragmented one`);
    }
    if (frame.opcode !== Op.Continuation) this.fragmentedOpcode = frame.opcode;
    if (frame.fin) this.fragmentedOpcode = null;
  }

  private checkClosePayload(what: string, payload: Buffer): void {
    if (payload.length === 1) this.violations.push(`${what}: close payload of 1 byte`);
    if (payload.length >= 2 && !isValidCloseCode(payload.readUInt16BE(0))) {
      this.violations.push(`${what}: close code not allowed on the wire`);
    }
    if (payload.length > 2 && !isUtf8(payload.subarray(2))) this.violations.push(`${what}: close reason not UTF-8`);
  }
}

function isUtf8(bytes: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

function parseClose(payload: Buffer): CloseInfo {
  if (payload.length < 2) return { code: null, reason: Buffer.alloc(0) };
  return { code: payload.readUInt16BE(0), reason: Buffer.from(payload.subarray(2)) };
}

function readResponseHead(socket: net.Socket, timeoutMs: number): Promise<{ head: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const timer = setTimeout(() => fail(new Error(`no handshake response within ${timeoutMs} ms`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) {
        if (buffered.length > MAX_RESPONSE_HEAD) fail(new Error('handshake response head too large'));
        return;
      }
      cleanup();
      // The frame parser takes over the socket; bytes already read after the head belong to it.
      socket.pause();
      resolve({ head: buffered.subarray(0, end).toString('latin1'), rest: buffered.subarray(end + 4) });
    };
    const onEnd = (): void => fail(new Error('connection closed during the handshake'));
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', fail);
    };
    function fail(err: Error): void {
      cleanup();
      reject(err);
    }
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', fail);
  });
}

/** Checks the 101 response and returns its Sec-WebSocket-Extensions ('' when absent). */
function checkHandshakeResponse(head: string, key: string, offered: boolean): string {
  const [statusLine, ...lines] = head.split('\r\n');
  if (!/^HTTP\/1\.1 101\b/.test(statusLine ?? '')) throw new Error(`handshake refused: ${statusLine}`);
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  const expected = createHash('sha1').update(key + HANDSHAKE_GUID).digest('base64');
  if (headers.get('upgrade')?.toLowerCase() !== 'websocket') throw new Error('handshake: Upgrade is not websocket');
  if (!/\bupgrade\b/i.test(headers.get('connection') ?? '')) throw new Error('handshake: Connection lacks upgrade');
  if (headers.get('sec-websocket-accept') !== expected) throw new Error('handshake: wrong Sec-WebSocket-Accept');
  if (headers.has('sec-websocket-extensions') && !offered) throw new Error('handshake: extension accepted that was not offered');
  return headers.get('sec-websocket-extensions') ?? '';
}

/** What a sync flush ends with; permessage-deflate leaves it off the wire (RFC 7692 section 7.2.1). */
const DEFLATE_TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/**
 * One direction of permessage-deflate on node:zlib: compresses what we send, or inflates what the
 * server sent, one whole message at a time. With `keepWindow` the LZ77 window carries over from one
 * message to the next (context takeover); without it every message starts from an empty window.
 */
export class RawDeflate {
  private stream: zlib.DeflateRaw | zlib.InflateRaw | null = null;

  private constructor(
    private readonly kind: 'deflate' | 'inflate',
    private readonly windowBits: number,
    private readonly keepWindow: boolean,
  ) {}

  static compressor(windowBits: number, keepWindow: boolean): RawDeflate {
    return new RawDeflate('deflate', windowBits, keepWindow);
  }

  static decompressor(windowBits: number, keepWindow: boolean): RawDeflate {
    return new RawDeflate('inflate', windowBits, keepWindow);
  }

  /** A message to the payload that goes with RSV1, or such a payload back to the message. */
  async run(data: Buffer): Promise<Buffer> {
    const input = this.kind === 'inflate' ? Buffer.concat([data, DEFLATE_TAIL]) : data;
    const options = { windowBits: this.windowBits, finishFlush: zlib.constants.Z_SYNC_FLUSH };
    let output: Buffer;
    if (this.keepWindow) output = await this.flushThrough(input);
    else output = this.kind === 'deflate' ? zlib.deflateRawSync(input, options) : zlib.inflateRawSync(input, options);
    if (this.kind === 'inflate') return output;
    if (!output.subarray(-4).equals(DEFLATE_TAIL)) throw new Error('zlib did not end the message with a sync flush');
    return output.subarray(0, -4);
  }

  close(): void {
    this.stream?.close();
    this.stream = null;
  }

  /** Writes to the kept stream and collects everything up to the end of a sync flush. */
  private flushThrough(input: Buffer): Promise<Buffer> {
    const options = { windowBits: this.windowBits };
    const stream = (this.stream ??= this.kind === 'deflate' ? zlib.createDeflateRaw(options) : zlib.createInflateRaw(options));
    return new Promise((resolve, reject) => {
      const output: Buffer[] = [];
      const onData = (chunk: Buffer): void => void output.push(chunk);
      const onError = (err: Error): void => {
        stream.off('data', onData);
        this.stream = null;
        reject(err);
      };
      stream.on('data', onData);
      stream.once('error', onError);
      stream.write(input);
      stream.flush(zlib.constants.Z_SYNC_FLUSH, () => {
        stream.off('data', onData);
        stream.off('error', onError);
        resolve(Buffer.concat(output));
      });
    });
  }
}
