// The WebSocket class: the browser's API (plus a few Node extras) over a socket, for both roles. All
// protocol decisions are made by protocol/connection.ts; this file moves bytes, batches writes, keeps
// time and turns what the connection reports into events.
import type net from 'node:net';
import { Blob } from 'node:buffer';
import { checkApplicationClose, CloseCode } from '../protocol/close.js';
import { Connection, DEFAULT_MAX_PAYLOAD, type ConnectionHandler, type Role } from '../protocol/connection.js';
import { encodeFrame, Opcode } from '../protocol/frame.js';
import { MessageCodec, type DeflateParams } from '../protocol/permessage-deflate.js';
import { openHandshake, parseWebSocketUrl, type ClientOptions } from './client.js';
import { CloseEvent, ErrorEvent, EventHost, MessageEvent, WsEvent, type BinaryType } from './events.js';
import { Heartbeat, type HeartbeatOptions } from './heartbeat.js';

export interface WebSocketOptions extends ClientOptions {
  /** Largest message accepted, in bytes; default 100 MiB. */
  maxPayload?: number;
  /** Most frames one message may be split into; default 65536. */
  maxFragments?: number;
  /** How long to wait for the peer's part of the closing handshake before dropping TCP; default 10 s. */
  closeTimeout?: number;
  /** Ping a quiet peer and drop it when it does not answer; off unless given. */
  heartbeat?: HeartbeatOptions | boolean;
  /**
   * Most payload bytes that may wait to be handed to the OS (bufferedAmount). A send beyond it applies
   * `slowConsumer`: 'close' (the default) closes with 1008 and drops the connection after closeTimeout;
   * 'drop' discards that message and reports it to its callback and as a 'drop' event. Default 16 MiB.
   */
  maxBufferedAmount?: number;
  slowConsumer?: 'close' | 'drop';
}

export const DEFAULT_MAX_BUFFERED = 16 * 1024 * 1024;

export interface SendOptions {
  /** For Buffers and views only: false sends the bytes as a text message (they must be UTF-8). */
  binary?: boolean;
}

type SendCallback = (err?: Error) => void;
type Payload = string | Buffer;
/** Travels with a message through the connection: its payload length, and its callback if any. */
type Receipt = number | { length: number; cb: SendCallback };
const BINARY_TYPES: readonly string[] = ['nodebuffer', 'arraybuffer', 'blob'];

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

// Batches up to this size are joined into one buffer before writing; larger ones go out as a corked
// series of writes (one writev), so big payloads are never copied.
const JOIN_LIMIT = 16 * 1024;
const ITERATOR_HIGH_WATER = 64;
// Reasons to stop reading from the socket, as bits of `holds`.
const HOLD_ITERATOR = 1;
const HOLD_INFLATE = 2;
const ITERATOR_LOW_WATER = 16;

/** Passed instead of a URL by the server, which hands over an accepted socket. */
export const ACCEPTED = Symbol('accepted');

export interface AcceptedInfo {
  socket: net.Socket;
  head: Buffer;
  path: string;
  protocol: string;
  extensions: string;
  deflate: DeflateParams | null;
  options: WebSocketOptions;
}

/**
 * A message encoded once as a server frame, to send to many connections without encoding it again
 * (broadcast, pub/sub fan-out). Uncompressed even where permessage-deflate is on, which RFC 7692 allows.
 */
export class PreparedMessage {
  readonly frame: Buffer;
  /** Payload bytes, as counted in bufferedAmount. */
  readonly length: number;

  constructor(data: string | Buffer | ArrayBuffer | ArrayBufferView, options?: SendOptions) {
    const { payload, binary } = toPayload(data, options);
    this.frame = encodeFrame(binary ? Opcode.BINARY : Opcode.TEXT, payload, { mask: false });
    this.length = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  }
}

function toPayload(data: unknown, options: SendOptions | undefined): { payload: Payload; binary: boolean } {
  if (typeof data === 'string') return { payload: data, binary: false };
  let bytes: Buffer | null = null;
  if (Buffer.isBuffer(data)) bytes = data;
  else if (ArrayBuffer.isView(data)) bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  else if (data instanceof ArrayBuffer || data instanceof SharedArrayBuffer) bytes = Buffer.from(data);
  if (bytes) return { payload: bytes, binary: options?.binary ?? true };
  // The browser turns anything else into a string.
  return { payload: String(data), binary: false };
}

export interface WebSocketEvents {
  [type: string]: (...args: any[]) => void;
  open: (event: WsEvent) => void;
  message: (event: MessageEvent) => void;
  close: (event: CloseEvent) => void;
  error: (event: ErrorEvent) => void;
  ping: (data: Buffer) => void;
  pong: (data: Buffer) => void;
  /** bufferedAmount went back to 0. */
  drain: () => void;
  /** A message was discarded by the 'drop' slow-consumer policy. */
  drop: (payloadLength: number) => void;
}

export class WebSocket extends EventHost<WebSocketEvents> {
  static readonly CONNECTING = CONNECTING;
  static readonly OPEN = OPEN;
  static readonly CLOSING = CLOSING;
  static readonly CLOSED = CLOSED;
  declare readonly CONNECTING: typeof CONNECTING;
  declare readonly OPEN: typeof OPEN;
  declare readonly CLOSING: typeof CLOSING;
  declare readonly CLOSED: typeof CLOSED;

  readonly url: string;
  private binaryType_: BinaryType = 'nodebuffer';
  private state: number = CONNECTING;
  private protocol_ = '';
  private extensions_ = '';
  private readonly role: Role;
  private readonly options: WebSocketOptions;
  private socket: net.Socket | null = null;
  private connection: Connection<Receipt> | null = null;
  private abortHandshake: (() => void) | null = null;

  // Outgoing bytes gathered during one data event or one tick, written with one socket call.
  private outbox: Buffer[] = [];
  private outboxBytes = 0;
  private outboxCallbacks: Array<{ length: number; cb: SendCallback }> | null = null;
  private outboxPayload = 0;
  private flushScheduled = false;
  private receiving = false;
  /** Payload bytes accepted by send() that the OS has not taken yet. */
  private unsent = 0;
  // Sends queued behind a Blob that is still being read, to keep their order.
  private blobQueue: Array<{ data: unknown; options: SendOptions | undefined; cb: SendCallback | undefined }> | null = null;

  /** When the peer last sent us bytes, for the heartbeat. */
  lastReceived = 0;
  private heartbeat: Heartbeat<WebSocket> | null = null;
  private closeTimer: NodeJS.Timeout | null = null;
  private holds = 0;
  // TCP closed while a message was still inflating: the close event waits until it is delivered.
  private socketGone = false;
  private closeCode: number = CloseCode.ABNORMAL;
  private closeReason = '';
  private closedCleanly = false;

  constructor(url: string | URL | typeof ACCEPTED, protocols?: string | string[] | AcceptedInfo, options: WebSocketOptions = {}) {
    super();
    if (url === ACCEPTED) {
      const info = protocols as AcceptedInfo;
      this.role = 'server';
      this.url = info.path;
      this.options = info.options;
      this.attach(info.socket, info.head, info.protocol, info.extensions, info.deflate);
      return;
    }
    this.role = 'client';
    this.options = options;
    const parsed = parseWebSocketUrl(url);
    this.url = parsed.href;
    const offered = protocols === undefined ? [] : typeof protocols === 'string' ? [protocols] : (protocols as string[]);
    this.abortHandshake = openHandshake(parsed, offered, options, (err, opened) => {
      this.abortHandshake = null;
      if (err) {
        this.state = CLOSED;
        this.emit('error', new ErrorEvent(this, err));
        this.emit('close', new CloseEvent(this, CloseCode.ABNORMAL, '', false));
        return;
      }
      this.attach(opened!.socket, opened!.head, opened!.protocol, opened!.extensions, opened!.deflate);
    });
  }

  get readyState(): number {
    return this.state;
  }

  /** How binary messages are delivered; other values are ignored, as in the browser. */
  get binaryType(): BinaryType {
    return this.binaryType_;
  }

  set binaryType(type: BinaryType) {
    if (BINARY_TYPES.includes(type)) this.binaryType_ = type;
  }

  /** The subprotocol the server selected, or ''. */
  get protocol(): string {
    return this.protocol_;
  }

  /** The extensions the server accepted, as in its Sec-WebSocket-Extensions header. */
  get extensions(): string {
    return this.extensions_;
  }

  /** Payload bytes passed to send() that have not been handed to the operating system yet. */
  get bufferedAmount(): number {
    return this.unsent;
  }

  get onopen() { return this.getHandler('open'); }
  set onopen(fn) { this.setHandler('open', fn); }
  get onmessage() { return this.getHandler('message'); }
  set onmessage(fn) { this.setHandler('message', fn); }
  get onclose() { return this.getHandler('close'); }
  set onclose(fn) { this.setHandler('close', fn); }
  get onerror() { return this.getHandler('error'); }
  set onerror(fn) { this.setHandler('error', fn); }

  /** The peer's address, for logs and rate limits. */
  get remoteAddress(): string | undefined {
    return this.socket?.remoteAddress;
  }

  send(data: string | ArrayBuffer | ArrayBufferView | Blob, options?: SendOptions | SendCallback, cb?: SendCallback): void {
    if (typeof options === 'function') {
      cb = options;
      options = undefined;
    }
    if (this.state === CONNECTING) {
      throw new DOMException('WebSocket is still in the CONNECTING state', 'InvalidStateError');
    }
    if (this.blobQueue || data instanceof Blob) {
      this.queueBehindBlob(data, options, cb);
      return;
    }
    this.sendNow(data, options, cb);
  }

  /** Sends a message encoded once for many connections (server side only: client frames need masking). */
  sendPrepared(message: PreparedMessage, cb?: SendCallback): void {
    if (this.role !== 'server') throw new TypeError('prepared messages are server frames; a client must mask each frame');
    if (!this.admit(message.length, cb)) return;
    this.enqueue(message.frame, cb ? { length: message.length, cb } : message.length);
  }

  ping(data: string | Buffer = ''): void {
    if (this.state === CONNECTING) throw new DOMException('WebSocket is still in the CONNECTING state', 'InvalidStateError');
    this.connection?.ping(data);
  }

  pong(data: string | Buffer = ''): void {
    if (this.state === CONNECTING) throw new DOMException('WebSocket is still in the CONNECTING state', 'InvalidStateError');
    this.connection?.pong(data);
  }

  close(code?: number, reason?: string): void {
    checkApplicationClose(code, reason, this.role === 'server');
    if (this.state === CLOSING || this.state === CLOSED) return;
    if (this.state === CONNECTING) {
      this.abortHandshake?.();
      this.abortHandshake = null;
      this.state = CLOSING;
      process.nextTick(() => {
        this.state = CLOSED;
        this.emit('error', new ErrorEvent(this, new Error('WebSocket was closed before the connection was established')));
        this.emit('close', new CloseEvent(this, CloseCode.ABNORMAL, '', false));
      });
      return;
    }
    this.state = CLOSING;
    // As in the browser, a reason without a code goes out with 1000.
    this.connection!.close(code ?? (reason ? CloseCode.NORMAL : undefined), reason ?? '');
    this.flush();
    this.armCloseTimer();
  }

  /** Puts this connection under a heartbeat (the server shares one among all its clients). */
  useHeartbeat(heartbeat: Heartbeat<WebSocket>): void {
    this.heartbeat = heartbeat;
    heartbeat.add(this);
  }

  /** Drops the connection at once, without a closing handshake (close code 1006). */
  terminate(): void {
    if (this.state === CONNECTING) {
      this.close();
      return;
    }
    this.socket?.destroy();
  }

  /** Messages until the connection closes; reading slowly pauses the socket instead of queueing without end. */
  async *[Symbol.asyncIterator](): AsyncGenerator<MessageEvent, void, undefined> {
    const queue: MessageEvent[] = [];
    let wake: (() => void) | null = null;
    let ended = false;
    const onMessage = (ev: MessageEvent) => {
      queue.push(ev);
      if (queue.length >= ITERATOR_HIGH_WATER) this.hold(HOLD_ITERATOR, true);
      wake?.();
    };
    const onClose = () => {
      ended = true;
      wake?.();
    };
    this.on('message', onMessage);
    this.on('close', onClose);
    if (this.state === CLOSED) ended = true;
    try {
      while (true) {
        const next = queue.shift();
        if (next) {
          if (queue.length === ITERATOR_LOW_WATER) this.hold(HOLD_ITERATOR, false);
          yield next;
        } else if (ended) {
          return;
        } else {
          await new Promise<void>((resolve) => (wake = resolve));
          wake = null;
        }
      }
    } finally {
      this.off('message', onMessage);
      this.off('close', onClose);
      this.hold(HOLD_ITERATOR, false);
    }
  }

  private sendNow(data: unknown, options: SendOptions | undefined, cb: SendCallback | undefined): void {
    const { payload, binary } = toPayload(data, options);
    const length = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
    if (!this.admit(length, cb)) return;
    this.connection!.send(payload, binary, cb ? { length, cb } : length);
  }

  /**
   * Whether a message of this size may be queued: the connection is open and the slow-consumer limit
   * holds. Counts it in bufferedAmount if so.
   */
  private admit(length: number, cb: SendCallback | undefined): boolean {
    if (this.state !== OPEN || !this.connection!.writable) {
      if (cb) process.nextTick(cb, new Error('WebSocket is not open'));
      return false;
    }
    if (length > 0 && this.unsent + length > (this.options.maxBufferedAmount ?? DEFAULT_MAX_BUFFERED)) {
      this.overflow(length, cb);
      return false;
    }
    this.unsent += length;
    return true;
  }

  private queueBehindBlob(data: unknown, options: SendOptions | undefined, cb: SendCallback | undefined): void {
    const queue = (this.blobQueue ??= []);
    queue.push({ data, options, cb });
    if (queue.length === 1) void this.drainBlobQueue();
  }

  private async drainBlobQueue(): Promise<void> {
    const queue = this.blobQueue!;
    while (queue.length > 0) {
      const item = queue[0]!;
      if (item.data instanceof Blob) {
        try {
          item.data = Buffer.from(await item.data.arrayBuffer());
        } catch (err) {
          queue.shift();
          item.cb?.(err instanceof Error ? err : new Error(String(err)));
          continue;
        }
      }
      queue.shift();
      this.sendNow(item.data, item.options, item.cb);
    }
    this.blobQueue = null;
  }

  // I/O

  private attach(socket: net.Socket, head: Buffer, protocol: string, extensions: string, deflate: DeflateParams | null): void {
    this.socket = socket;
    this.protocol_ = protocol;
    this.extensions_ = extensions;
    const options = this.options;
    const pmd = options.perMessageDeflate === true ? {} : options.perMessageDeflate || {};
    this.connection = new Connection<Receipt>(new WebSocket.Events(this), {
      role: this.role,
      deflate: deflate && new MessageCodec(deflate, this.role, { ...pmd, maxPayload: options.maxPayload ?? DEFAULT_MAX_PAYLOAD }),
      ...(options.maxPayload !== undefined ? { maxPayload: options.maxPayload } : {}),
      ...(options.maxFragments !== undefined ? { maxFragments: options.maxFragments } : {}),
    });
    this.state = OPEN;
    socket.setNoDelay(true);
    socket.setTimeout(0);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.onSocketError(err));
    socket.on('close', () => this.onSocketClose());
    // Sockets are half-open (the server's from http.Server, the client's by choice), so a peer's FIN does
    // not destroy data still waiting to be read; once it has all been read, our side ends too.
    socket.on('end', () => socket.end());
    // Frames that came with the handshake are read after 'open' / 'connection' have been handled.
    // `head` goes as an argument: captured, it would stay alive with the socket listeners' shared scope.
    if (head.length > 0) process.nextTick((ws: WebSocket, bytes: Buffer) => ws.onData(bytes), this, head);
    this.lastReceived = Date.now();
    if (this.role === 'client') {
      const beat = options.heartbeat;
      if (beat) this.useHeartbeat(new Heartbeat(beat === true ? {} : beat));
      this.emit('open', new WsEvent('open', this));
    }
  }

  /**
   * Forwards what the connection reports to this WebSocket: one small object per connection rather than
   * a closure per callback (idle connections are counted by the ten thousand). Nested in the class so
   * that it may use the private members.
   */
  private static readonly Events = class implements ConnectionHandler<Receipt> {
    constructor(private readonly ws: WebSocket) {}

    message(data: Buffer, isBinary: boolean): void {
      const ws = this.ws;
      ws.emit('message', new MessageEvent(ws, data, isBinary, ws.binaryType_));
    }

    ping(data: Buffer): void {
      this.ws.emit('ping', data);
    }

    pong(data: Buffer): void {
      this.ws.emit('pong', data);
    }

    closeReceived(code: number, reason: string): void {
      const ws = this.ws;
      ws.state = CLOSING;
      ws.closeCode = code;
      ws.closeReason = reason;
      ws.closedCleanly = true;
      // The server closes TCP first (RFC 6455 7.1.1), once its close frame is out (it may wait behind a
      // message being compressed); the client waits for the server, but not forever.
      if (ws.connection!.closeFrameWritten) ws.endIfServer();
      else ws.flush();
      ws.armCloseTimer();
    }

    closeWritten(): void {
      if (this.ws.connection!.closeFrameReceived) this.ws.endIfServer();
    }

    failed(code: number, message: string): void {
      const ws = this.ws;
      ws.state = CLOSING;
      ws.closeCode = code;
      ws.closeReason = message;
      ws.closedCleanly = false;
      ws.emit('error', new ErrorEvent(ws, Object.assign(new Error(message), { closeCode: code })));
      ws.flush();
      ws.socket!.end();
      // Input may have been held for an inflation; the peer's FIN must still be read.
      ws.hold(HOLD_INFLATE, false);
      ws.armCloseTimer();
    }

    write(bytes: Buffer, receipt?: Receipt): void {
      this.ws.enqueue(bytes, receipt);
    }

    pause(paused: boolean): void {
      this.ws.hold(HOLD_INFLATE, paused);
    }

    drained(): void {
      if (this.ws.socketGone) this.ws.finishClose();
    }
  };


  private enqueue(bytes: Buffer, receipt: Receipt | undefined): void {
    this.outbox.push(bytes);
    this.outboxBytes += bytes.length;
    if (typeof receipt === 'number') {
      this.outboxPayload += receipt;
    } else if (receipt) {
      (this.outboxCallbacks ??= []).push(receipt);
    }
    if (!this.receiving && !this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => this.flush());
    }
  }

  private endIfServer(): void {
    this.flush();
    if (this.role === 'server') this.socket!.end();
  }

  /** We are not reading from the peer (backpressure), so its silence says nothing about its health. */
  get readingPaused(): boolean {
    return this.holds !== 0;
  }

  /** Stops reading while any reason holds; reads again once none does. */
  private hold(reason: number, on: boolean): void {
    const before = this.holds;
    this.holds = on ? before | reason : before & ~reason;
    if (before === 0 && this.holds !== 0) {
      this.socket?.pause();
    } else if (before !== 0 && this.holds === 0) {
      this.lastReceived = Date.now();
      this.socket?.resume();
    }
  }

  /** The slow-consumer policy: the peer reads slower than we send, and the buffer is full. */
  private overflow(payloadLength: number, cb: SendCallback | undefined): void {
    const error = new Error(`send buffer full: more than ${this.options.maxBufferedAmount ?? DEFAULT_MAX_BUFFERED} bytes waiting for a slow peer`);
    if (cb) process.nextTick(cb, error);
    if (this.options.slowConsumer === 'drop') {
      this.emit('drop', payloadLength);
      return;
    }
    if (this.state !== OPEN) return;
    this.state = CLOSING;
    this.closeCode = CloseCode.POLICY_VIOLATION;
    this.closeReason = 'slow consumer';
    this.connection!.close(CloseCode.POLICY_VIOLATION, 'slow consumer');
    this.armCloseTimer();
  }

  private flush(): void {
    this.flushScheduled = false;
    const outbox = this.outbox;
    const count = outbox.length;
    if (count === 0) return;
    const bytes = this.outboxBytes;
    const socket = this.socket!;
    const callbacks = this.outboxCallbacks;
    const payload = this.outboxPayload;
    this.outbox = [];
    this.outboxBytes = 0;
    this.outboxPayload = 0;
    this.outboxCallbacks = null;
    if (socket.destroyed) {
      this.unsent -= payload;
      if (callbacks) {
        for (const { length, cb } of callbacks) {
          this.unsent -= length;
          process.nextTick(cb, new Error('the connection is closed'));
        }
      }
      return;
    }
    // Each callback sees bufferedAmount without its own message and those before it, as if reported one by one.
    const onWritten = (err?: Error | null) => {
      this.unsent -= payload;
      if (callbacks) {
        for (const { length, cb } of callbacks) {
          this.unsent -= length;
          cb(err ?? undefined);
        }
      }
      if (this.unsent === 0 && (payload > 0 || callbacks)) this.emit('drain');
    };
    if (count === 1) {
      socket.write(outbox[0]!, onWritten);
    } else if (bytes <= JOIN_LIMIT) {
      socket.write(Buffer.concat(outbox, bytes), onWritten);
    } else {
      socket.cork();
      for (let i = 0; i < count - 1; i++) socket.write(outbox[i]!);
      socket.write(outbox[count - 1]!, onWritten);
      socket.uncork();
    }
  }

  private onData(chunk: Buffer): void {
    if (this.heartbeat) this.lastReceived = Date.now();
    this.receiving = true;
    try {
      this.connection!.receive(chunk);
    } finally {
      this.receiving = false;
    }
    this.flush();
  }

  private armCloseTimer(): void {
    if (this.closeTimer) return;
    this.closeTimer = setTimeout(() => this.socket?.destroy(), this.options.closeTimeout ?? 10_000);
    this.closeTimer.unref();
  }

  private onSocketError(err: Error): void {
    // Errors after our part of the closing handshake are the peer hanging up; they change nothing.
    if (this.state === OPEN) this.emit('error', new ErrorEvent(this, err));
  }

  private onSocketClose(): void {
    this.socketGone = true;
    // Messages that arrived before the peer hung up are still delivered, in order, before 'close'.
    if (this.connection!.busy) return;
    this.finishClose();
  }

  private finishClose(): void {
    if (this.state === CLOSED) return;
    this.heartbeat?.delete(this);
    this.connection!.dispose();
    if (this.closeTimer) clearTimeout(this.closeTimer);
    this.closeTimer = null;
    const clean = this.closedCleanly && this.connection!.closeFrameSent;
    this.state = CLOSED;
    this.emit('close', new CloseEvent(this, this.closeCode, this.closeReason, clean));
  }
}

for (const [name, value] of Object.entries({ CONNECTING, OPEN, CLOSING, CLOSED })) {
  Object.defineProperty(WebSocket.prototype, name, { value, enumerable: true });
  Object.defineProperty(WebSocket, name, { value, enumerable: true, writable: false });
}
