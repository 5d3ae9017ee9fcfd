// The per-connection protocol state machine (RFC 6455 sections 5 to 7), sans I/O: bytes go in through
// receive(), bytes to send come out through handler.write(), and what happened is reported through the
// other handler callbacks. It assembles fragmented messages, validates UTF-8 as the bytes arrive,
// answers pings and close frames, and turns every protocol violation into the right close code.
// With permessage-deflate, messages pass through the codec, which is asynchronous: input is held back
// while a message inflates, and output keeps its order while a message deflates.
import { CloseCode, encodeClosePayload, parseClosePayload } from './close.js';
import { encodeFrame, encodeHeader, FrameParser, isControl, Opcode, type FrameSink } from './frame.js';
import { DeflateError, type MessageCodec } from './permessage-deflate.js';
import { isValidUtf8, Utf8Validator } from './utf8.js';

export type Role = 'client' | 'server';

export interface ConnectionOptions {
  role: Role;
  /** Largest message (after reassembly) accepted; beyond it the connection closes with 1009. */
  maxPayload?: number;
  /** Most frames one message may be split into; beyond it the connection closes with 1009. */
  maxFragments?: number;
  /** The permessage-deflate codec, when the handshake negotiated it. */
  deflate?: MessageCodec | null;
}

/**
 * What the connection reports. `R` is the caller's receipt for a sent message, handed back with the
 * bytes that carry it, so the caller can account for them when they are written.
 */
export interface ConnectionHandler<R = unknown> {
  message(data: Buffer, isBinary: boolean): void;
  ping(data: Buffer): void;
  pong(data: Buffer): void;
  /** The peer's close frame arrived; if we had not sent one, the echo has already been written. */
  closeReceived(code: number, reason: string): void;
  /** The peer broke the protocol: a close frame with `code` has been written and input is now ignored. */
  failed(code: number, message: string): void;
  write(bytes: Buffer, receipt?: R): void;
  /** Our close frame has just been handed to write() (it may wait behind a message being compressed). */
  closeWritten?(): void;
  /** Input should stop (true) or may flow again (false): a message is being inflated. */
  pause?(paused: boolean): void;
  /** The inflation that made the connection busy is over and its held input has been read. */
  drained?(): void;
}

export const DEFAULT_MAX_PAYLOAD = 100 * 1024 * 1024;
export const DEFAULT_MAX_FRAGMENTS = 65536;

// From this size on, a server's payload is written after its header instead of being copied behind it.
const ZERO_COPY_MIN = 4096;

// Past this many pieces a message is gathered into one growing buffer, so that a message sent as very
// many tiny fragments costs its payload bytes, not a Buffer object per fragment.
const MAX_PIECES = 16;

/** Gathers the payload of one message from the pieces the parser hands on. */
class MessageBuffer {
  private pieces: Buffer[] = [];
  private gathered: Buffer | null = null;
  length = 0;

  add(piece: Buffer): void {
    if (piece.length === 0) return;
    if (this.gathered) {
      if (this.length + piece.length > this.gathered.length) {
        const grown = Buffer.allocUnsafe(Math.max(this.gathered.length * 2, this.length + piece.length));
        this.gathered.copy(grown, 0, 0, this.length);
        this.gathered = grown;
      }
      piece.copy(this.gathered, this.length);
    } else if (this.pieces.length === MAX_PIECES) {
      this.gathered = Buffer.concat(this.pieces, Math.max(this.length * 2, this.length + piece.length));
      this.pieces = [];
      piece.copy(this.gathered, this.length);
    } else {
      this.pieces.push(piece);
    }
    this.length += piece.length;
  }

  take(): Buffer {
    let data: Buffer;
    if (this.gathered) data = this.gathered.subarray(0, this.length);
    else if (this.pieces.length === 1) data = this.pieces[0]!;
    else data = Buffer.concat(this.pieces, this.length);
    this.pieces = [];
    this.gathered = null;
    this.length = 0;
    return data;
  }
}

export class Connection<R = unknown> implements FrameSink {
  readonly role: Role;
  readonly maxPayload: number;
  readonly maxFragments: number;
  private readonly parser: FrameParser;
  private readonly deflate: MessageCodec | null;
  private closeSent = false;
  private closeReceivedFlag = false;
  private failedFlag = false;

  // The message being received (opcode 0 when none), and the control frame being received.
  private messageOpcode = 0;
  private fragments = 0;
  private finalFrame = false;
  private message: MessageBuffer | null = null;
  private utf8: Utf8Validator | null = null;
  private compressed = false;
  private frameOpcode = 0;
  private control: Buffer[] | null = null;

  // Input that arrived while a message was inflating, and output queued behind a message deflating.
  private inflating = false;
  private backlog: Buffer[] | null = null;
  private outQueue: Array<{ bytes: Buffer | null; receipt: R | undefined; close?: boolean }> | null = null;
  private closeWrittenFlag = false;

  constructor(private readonly handler: ConnectionHandler<R>, options: ConnectionOptions) {
    this.role = options.role;
    this.maxPayload = options.maxPayload ?? DEFAULT_MAX_PAYLOAD;
    this.maxFragments = options.maxFragments ?? DEFAULT_MAX_FRAGMENTS;
    this.deflate = options.deflate ?? null;
    this.parser = new FrameParser(this, { expectMasked: options.role === 'server', allowRsv1: this.deflate !== null });
  }

  /** Data may still be sent: we have not sent a close frame. */
  get writable(): boolean {
    return !this.closeSent;
  }

  /** Both close frames have been exchanged, or the connection failed. */
  get closed(): boolean {
    return this.failedFlag || (this.closeSent && this.closeReceivedFlag);
  }

  get closeFrameSent(): boolean {
    return this.closeSent;
  }

  get closeFrameReceived(): boolean {
    return this.closeReceivedFlag;
  }

  /** Our close frame has gone out to the transport, after everything queued before it. */
  get closeFrameWritten(): boolean {
    return this.closeWrittenFlag;
  }

  /** A message is being inflated, or input waits behind one: what arrived is not all read yet. */
  get busy(): boolean {
    return this.inflating || this.backlog !== null;
  }

  /** No partly received frame or message is held: the connection costs no buffers while idle. */
  get idle(): boolean {
    return this.parser.idle && this.messageOpcode === 0 && !this.inflating;
  }

  receive(chunk: Buffer): void {
    if (this.failedFlag || this.closeReceivedFlag) return;
    if (this.inflating) {
      (this.backlog ??= []).push(chunk);
      return;
    }
    const used = this.parser.push(chunk);
    if (this.inflating && used < chunk.length) (this.backlog ??= []).push(chunk.subarray(used));
  }

  /**
   * Sends a data message as one frame, compressed when negotiated and worth it; `receipt` comes back
   * with the bytes. Returns false once a close frame has been sent.
   */
  send(data: Buffer | string, isBinary: boolean, receipt?: R): boolean {
    if (this.closeSent) return false;
    const opcode = isBinary ? Opcode.BINARY : Opcode.TEXT;
    const codec = this.deflate;
    if (codec && codec.shouldCompress(typeof data === 'string' ? Buffer.byteLength(data) : data.length)) {
      const slot: { bytes: Buffer | null; receipt: R | undefined } = { bytes: null, receipt };
      (this.outQueue ??= []).push(slot);
      codec.compress(typeof data === 'string' ? Buffer.from(data) : data).then(
        (compressed) => {
          slot.bytes = encodeFrame(opcode, compressed, { mask: this.role === 'client', rsv1: true });
          this.drainOutQueue();
        },
        (err: Error) => this.fail(CloseCode.INTERNAL_ERROR, `compression failed: ${err.message}`),
      );
    } else if (this.role === 'server' && typeof data !== 'string' && data.length >= ZERO_COPY_MIN) {
      // Unmasked, a large payload needs no copy: the header goes out first, then the caller's bytes.
      this.output(encodeHeader(opcode, data.length), undefined);
      this.output(data, receipt);
    } else {
      this.output(this.encode(opcode, data), receipt);
    }
    return true;
  }

  /** Frees the codec's zlib streams; call once the transport is gone. */
  dispose(): void {
    this.deflate?.close();
    this.backlog = null;
    this.outQueue = null;
  }

  /** The bytes of a data frame as this side would send it, e.g. to write one encoding to many peers. */
  encode(opcode: number, data: Buffer | string): Buffer {
    return encodeFrame(opcode, data, { mask: this.role === 'client' });
  }

  ping(data: Buffer | string = ''): boolean {
    return this.control_(Opcode.PING, data);
  }

  pong(data: Buffer | string = ''): boolean {
    return this.control_(Opcode.PONG, data);
  }

  /** Starts the closing handshake; `code` undefined sends a close frame without a code. */
  close(code?: number, reason = ''): boolean {
    if (this.closeSent) return false;
    this.closeSent = true;
    this.output(this.encode(Opcode.CLOSE, encodeClosePayload(code, reason)), undefined, true);
    return true;
  }

  /** Writes in order behind any message still being compressed. */
  private output(bytes: Buffer, receipt: R | undefined, close = false): void {
    if (this.outQueue) this.outQueue.push({ bytes, receipt, close });
    else this.write(bytes, receipt, close);
  }

  private write(bytes: Buffer, receipt: R | undefined, close: boolean): void {
    this.handler.write(bytes, receipt);
    if (close) {
      this.closeWrittenFlag = true;
      this.handler.closeWritten?.();
    }
  }

  private drainOutQueue(): void {
    const queue = this.outQueue;
    while (queue && queue.length > 0 && queue[0]!.bytes) {
      const { bytes, receipt, close } = queue.shift()!;
      this.write(bytes!, receipt, close === true);
    }
    if (queue && queue.length === 0 && this.outQueue === queue) this.outQueue = null;
  }

  private control_(opcode: number, data: Buffer | string): boolean {
    if (this.closeSent) return false;
    if (Buffer.byteLength(data) > 125) throw new RangeError('control frame payload must be at most 125 bytes');
    this.handler.write(this.encode(opcode, data));
    return true;
  }

  private fail(code: number, message: string): false {
    if (this.failedFlag) return false;
    this.failedFlag = true;
    this.message = null;
    this.utf8 = null;
    this.control = null;
    this.backlog = null;
    this.outQueue = null;
    if (!this.closeSent) {
      this.closeSent = true;
      this.write(this.encode(Opcode.CLOSE, encodeClosePayload(code, message.slice(0, 123))), undefined, true);
    }
    this.handler.failed(code, message);
    return false;
  }

  // FrameSink: called by the parser.

  frameStart(fin: boolean, rsv1: boolean, opcode: number, length: number): boolean {
    this.frameOpcode = opcode;
    if (isControl(opcode)) {
      this.control = length > 0 ? [] : null;
      return true;
    }
    if (opcode === Opcode.CONTINUATION) {
      if (this.messageOpcode === 0) return this.fail(CloseCode.PROTOCOL_ERROR, 'continuation frame without a message to continue');
      if (rsv1) return this.fail(CloseCode.PROTOCOL_ERROR, 'RSV1 set on a continuation frame');
    } else {
      if (this.messageOpcode !== 0) return this.fail(CloseCode.PROTOCOL_ERROR, 'new message started before the previous one ended');
      this.messageOpcode = opcode;
      this.compressed = rsv1;
      this.fragments = 0;
      this.message = new MessageBuffer();
      if (opcode === Opcode.TEXT && !rsv1) this.utf8 ??= new Utf8Validator();
    }
    if (++this.fragments > this.maxFragments) {
      return this.fail(CloseCode.MESSAGE_TOO_BIG, `message split into more than ${this.maxFragments} frames`);
    }
    if (this.message!.length + length > this.maxPayload) {
      return this.fail(CloseCode.MESSAGE_TOO_BIG, `message larger than ${this.maxPayload} bytes`);
    }
    this.finalFrame = fin;
    return true;
  }

  framePayload(data: Buffer): boolean {
    if (isControl(this.frameOpcode)) {
      this.control!.push(data);
      return true;
    }
    if (this.messageOpcode === Opcode.TEXT && !this.compressed && !this.utf8!.push(data)) {
      return this.fail(CloseCode.INVALID_PAYLOAD, 'invalid UTF-8 in a text message');
    }
    this.message!.add(data);
    return true;
  }

  frameEnd(): boolean {
    const opcode = this.frameOpcode;
    if (isControl(opcode)) {
      const pieces = this.control;
      this.control = null;
      const payload = !pieces ? Buffer.alloc(0) : pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
      return this.controlFrame(opcode, payload);
    }
    if (!this.finalFrame) return true;
    const isText = this.messageOpcode === Opcode.TEXT;
    const data = this.message!.take();
    this.message = null;
    this.messageOpcode = 0;
    if (this.compressed) return this.inflate(data, !isText);
    if (isText && !this.utf8!.end()) {
      return this.fail(CloseCode.INVALID_PAYLOAD, 'text message ends inside a UTF-8 sequence');
    }
    this.handler.message(data, !isText);
    return !this.failedFlag && !this.closeReceivedFlag;
  }

  /** Inflates a compressed message; input waits meanwhile, so messages keep their order. */
  private inflate(data: Buffer, isBinary: boolean): false {
    // Compressing even an empty message yields at least one byte (RFC 7692 7.2.3.6); an empty payload
    // would make the inflater read the appended tail as the start of a block and garble what follows.
    if (data.length === 0) return this.fail(CloseCode.INVALID_PAYLOAD, 'empty compressed message');
    this.inflating = true;
    this.handler.pause?.(true);
    this.deflate!.decompress(data).then(
      (plain) => {
        this.inflating = false;
        if (this.failedFlag) return;
        if (!isBinary && !isValidUtf8(plain)) {
          this.fail(CloseCode.INVALID_PAYLOAD, 'invalid UTF-8 in a text message');
          return;
        }
        this.handler.message(plain, isBinary);
        const backlog = this.backlog;
        this.backlog = null;
        // receive() queues again behind the next compressed message, if there is one.
        if (backlog) for (const chunk of backlog) this.receive(chunk);
        if (!this.inflating) {
          if (!this.failedFlag) this.handler.pause?.(false);
          this.handler.drained?.();
        }
      },
      (err: Error) => {
        this.inflating = false;
        this.fail(err instanceof DeflateError ? err.closeCode : CloseCode.INVALID_PAYLOAD, err.message);
        this.handler.drained?.();
      },
    );
    return false;
  }

  frameError(code: number, message: string): void {
    this.fail(code, message);
  }

  private controlFrame(opcode: number, payload: Buffer): boolean {
    if (opcode === Opcode.PING) {
      if (!this.closeSent) this.handler.write(this.encode(Opcode.PONG, payload));
      this.handler.ping(payload);
    } else if (opcode === Opcode.PONG) {
      this.handler.pong(payload);
    } else {
      const parsed = parseClosePayload(payload);
      if (!parsed.ok) return this.fail(parsed.code, parsed.message);
      this.closeReceivedFlag = true;
      if (!this.closeSent) {
        this.closeSent = true;
        const echoed = parsed.code === CloseCode.NO_STATUS ? undefined : parsed.code;
        this.output(this.encode(Opcode.CLOSE, encodeClosePayload(echoed, parsed.reason)), undefined, true);
      }
      this.handler.closeReceived(parsed.code, parsed.reason);
      return false;
    }
    return !this.failedFlag && !this.closeReceivedFlag;
  }
}
