/**
 * A message socket over a stream socket: a codec from framing.ts turns the byte stream into messages
 * and back. The shell is thin: reading, write batching, flow control, timers and closing; all framing
 * is in the codec's pure decoder.
 *
 * Closing is where plain socket code usually loses data. Destroying a socket drops what is still in
 * its send queue, and closing one that has unread input makes the kernel answer with a reset that
 * discards what we sent last. So every close here is a half-close (our FIN after our last message) and
 * a wait for the peer's FIN, with a time limit, and the peer's FIN is handled only after every message
 * before it has been delivered.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { formatEndpoint } from './endpoint.js';
import { FramingError, type Codec, type Decoder } from './framing.js';

export interface FramedSocketOptions {
  /**
   * Keep our side open after the peer ends, until `end()` or `close()`. By default our side ends by
   * itself once the peer's end has been delivered: after the 'end' event, or when an async iteration
   * finishes; what was sent before that still goes out first.
   */
  allowHalfOpen?: boolean;
  /** Close the connection after this many ms without traffic either way; 0 (default) never. */
  idleTimeout?: number;
  /** How long closing waits for the peer's end before dropping the connection; default 5000 ms. */
  closeTimeout?: number;
}

export type SendCallback = (err?: Error) => void;

export const DEFAULT_CLOSE_TIMEOUT = 5_000;
// A batch up to this size is joined into one buffer; a larger one goes out as one corked writev.
const JOIN_LIMIT = 16 * 1024;
// Messages an async iteration may have waiting before we stop reading, and when we read again.
const QUEUE_HIGH_WATER = 64;
const QUEUE_LOW_WATER = 16;

// Reasons not to read from the socket, as bits of `holds`.
const HOLD_NO_CONSUMER = 1;
const HOLD_USER = 2;
const HOLD_QUEUE = 4;

/** Messages waiting for an async iteration, and the iteration's end. */
class MessageQueue<T> {
  private items: T[] = [];
  /** Index of the next item: taking from the front of a long array with shift() would be quadratic. */
  private head = 0;
  private waiter: { resolve: (r: IteratorResult<T>) => void; reject: (err: Error) => void } | undefined;
  private finished = false;
  private failure: Error | undefined;

  constructor(
    private readonly onLength: (length: number) => void,
    private readonly onDone: () => void,
  ) {}

  push(item: T): void {
    if (this.finished) return;
    if (this.waiter) {
      const { resolve } = this.waiter;
      this.waiter = undefined;
      resolve({ value: item, done: false });
      return;
    }
    this.items.push(item);
    this.onLength(this.length);
  }

  private get length(): number {
    return this.items.length - this.head;
  }

  /** No more items; the iteration ends (with `error`, if any) once those waiting are taken. */
  finish(error?: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.failure = error;
    if (this.waiter && this.length === 0) this.settle(this.waiter);
  }

  next(): Promise<IteratorResult<T>> {
    if (this.length > 0) {
      const value = this.items[this.head++]!;
      // Drop taken items every 1024 (or when none is left), so a queue that never empties does not keep them.
      if (this.head >= 1024 || this.head === this.items.length) {
        this.items = this.items.slice(this.head);
        this.head = 0;
      }
      this.onLength(this.length);
      return Promise.resolve({ value, done: false });
    }
    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject };
      if (this.finished) this.settle(waiter);
      else this.waiter = waiter;
    });
  }

  private settle(waiter: NonNullable<MessageQueue<T>['waiter']>): void {
    this.waiter = undefined;
    const error = this.failure;
    this.failure = undefined;
    this.onDone();
    if (error) waiter.reject(error);
    else waiter.resolve({ value: undefined, done: true });
  }
}

export interface FramedSocket<Out, In> {
  on(event: 'message', listener: (message: Out) => void): this;
  on(event: 'end' | 'drain' | 'timeout', listener: () => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'close', listener: (err: Error | undefined) => void): this;
  once(event: 'message', listener: (message: Out) => void): this;
  once(event: 'end' | 'drain' | 'timeout', listener: () => void): this;
  once(event: 'error', listener: (err: Error) => void): this;
  once(event: 'close', listener: (err: Error | undefined) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}

/**
 * Events: 'message' (message), 'end' (the peer will send no more), 'drain' (send() may go on after it
 * returned false), 'timeout' (idle; the connection is being closed), 'error' (err), 'close' (err?).
 * 'error' is emitted only to listeners: a peer breaking the framing must not crash a server that did
 * not listen for it. The connection closes after any error, and 'close' carries the error.
 *
 * Reading starts with the first 'message' listener or async iteration, so messages are never dropped
 * for lack of a consumer.
 */
export class FramedSocket<Out, In = Out> extends EventEmitter {
  private readonly decoder: Decoder<Out>;
  private holds = HOLD_NO_CONSUMER;
  private queue: MessageQueue<Out> | undefined;
  /** Inside a 'data' event: sends are gathered and written once it has been handled. */
  private receiving = false;
  private outbox: Buffer[] = [];
  private outboxBytes = 0;
  private outboxCallbacks: SendCallback[] | null = null;
  private flushScheduled = false;
  private needDrain = false;
  private writeEnded = false;
  /** No more messages will be delivered: the peer ended, we shut down, or the connection failed. */
  private inputDone = false;
  /** Input is read only to notice the peer's FIN, and thrown away. */
  private discarding = false;
  /** End our side once the consumer has taken the last message. */
  private endWhenDelivered = false;
  private closeTimer: NodeJS.Timeout | undefined;
  private failure: Error | undefined;
  private isClosed = false;
  private readonly whenClosed: Promise<void>;

  constructor(
    readonly socket: Socket,
    readonly codec: Codec<Out, In>,
    private readonly options: FramedSocketOptions = {},
  ) {
    super();
    this.decoder = codec.decoder();
    // We end our side ourselves: Node would end it as soon as it reads the peer's FIN, before the
    // messages that came with it are handled and answered.
    socket.allowHalfOpen = true;
    socket.setNoDelay(true);
    socket.pause();
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('error', (err) => this.onError(err));
    socket.on('drain', () => this.onSocketDrain());
    socket.on('timeout', () => this.onIdle());
    this.whenClosed = new Promise((resolve) => socket.once('close', resolve));
    socket.on('close', () => this.onClose());
    this.on('newListener', (event) => {
      if (event === 'message') this.hold(HOLD_NO_CONSUMER, false);
    });
    this.on('removeListener', (event) => {
      if (event === 'message') this.hold(HOLD_NO_CONSUMER, !this.hasConsumer());
    });
    this.updateFlow();
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.socket.remotePort;
  }

  /** The peer as "host:port", for messages to people. */
  get remote(): string {
    const { remoteAddress, remotePort } = this.socket;
    return remoteAddress === undefined ? 'unknown peer' : formatEndpoint(remoteAddress, remotePort ?? 0);
  }

  /** Bytes accepted by send() and not yet handed to the operating system. */
  get bufferedAmount(): number {
    return this.outboxBytes + this.socket.writableLength;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** The error the connection failed with: a FramingError, or the socket's (ECONNRESET…). */
  get error(): Error | undefined {
    return this.failure;
  }

  /**
   * Queues a message; sends made in the same tick (or while handling one read) go out in one write.
   * The message is encoded, so copied, at once. A message the codec cannot carry (too big, a line with
   * "\n") throws a RangeError; after end() or close the message is dropped and `cb` gets the error.
   * Returns false when the caller should wait for 'drain' before sending more.
   */
  send(message: In, cb?: SendCallback): boolean {
    const bytes = this.codec.encode(message);
    if (this.writeEnded || this.socket.destroyed) {
      if (cb) process.nextTick(cb, new Error(this.socket.destroyed ? 'the connection is closed' : 'cannot send after end()'));
      return false;
    }
    this.outbox.push(bytes);
    this.outboxBytes += bytes.length;
    if (cb) (this.outboxCallbacks ??= []).push(cb);
    if (!this.receiving && !this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => this.flush());
    }
    if (this.bufferedAmount < this.socket.writableHighWaterMark) return true;
    this.needDrain = true;
    return false;
  }

  /** Half-close: our FIN goes out after every message sent so far; messages from the peer still arrive. */
  end(): void {
    if (this.writeEnded) return;
    this.writeEnded = true;
    this.flush();
    this.socket.end();
  }

  /**
   * Ends our side and resolves once the connection is closed: after the peer's end (messages it sent
   * before that are still delivered) or after `closeTimeout`, when the connection is dropped.
   */
  close(): Promise<void> {
    this.end();
    if (!this.hasConsumer()) this.discard();
    this.armCloseTimer();
    return this.whenClosed;
  }

  /**
   * Graceful shutdown: reads no new messages; those already received are still delivered, and our side
   * ends once they are consumed (at once for 'message' listeners, when the async iteration has taken
   * the last one otherwise), so that replies to them go out first. Closes like close().
   */
  shutdown(): Promise<void> {
    this.armCloseTimer();
    this.endWhenDelivered = true;
    if (!this.inputDone) {
      this.inputDone = true;
      this.queue?.finish();
    }
    this.discard();
    if (!this.queue) this.end();
    return this.whenClosed;
  }

  /** Drops the connection at once; unsent messages are lost. */
  destroy(error?: Error): void {
    this.socket.destroy(error);
  }

  /** Stops reading (flow control for 'message' listeners); messages of the read in progress still arrive. */
  pause(): void {
    this.hold(HOLD_USER, true);
  }

  resume(): void {
    this.hold(HOLD_USER, false);
  }

  /**
   * Messages until the peer ends; throws the connection's error, if any, after the messages before it.
   * A slow loop stops reading from the socket, so a fast peer is held back instead of filling memory.
   * Leaving the loop early (break) closes the connection.
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<Out> {
    if (this.queue) throw new Error('this socket is already being iterated');
    const queue = new MessageQueue<Out>(
      (length) => {
        if (length >= QUEUE_HIGH_WATER) this.hold(HOLD_QUEUE, true);
        else if (length <= QUEUE_LOW_WATER) this.hold(HOLD_QUEUE, false);
      },
      () => this.onIterationDone(queue),
    );
    this.queue = queue;
    if (this.inputDone) queue.finish(this.failure);
    this.hold(HOLD_NO_CONSUMER, false);
    const iterator: AsyncIterableIterator<Out> = {
      next: () => queue.next(),
      return: async () => {
        if (this.queue === queue) {
          this.detach(queue);
          await this.close();
        }
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  private hasConsumer(): boolean {
    return this.queue !== undefined || this.listenerCount('message') > 0;
  }

  private deliver = (message: Out): void => {
    this.emit('message', message);
    this.queue?.push(message);
  };

  private onData(chunk: Buffer): void {
    if (this.discarding) return;
    this.receiving = true;
    try {
      this.decoder.push(chunk, this.deliver);
    } catch (err) {
      if (!(err instanceof FramingError)) throw err;
      this.fail(err);
    } finally {
      this.receiving = false;
      this.flush();
    }
  }

  private onEnd(): void {
    if (this.discarding) return;
    try {
      this.decoder.end(this.deliver);
    } catch (err) {
      if (!(err instanceof FramingError)) throw err;
      return this.fail(err);
    }
    this.inputDone = true;
    this.endWhenDelivered = this.options.allowHalfOpen !== true;
    this.emit('end');
    if (this.queue) this.queue.finish();
    else if (this.endWhenDelivered) this.end();
  }

  private onIterationDone(queue: MessageQueue<Out>): void {
    this.detach(queue);
    if (this.endWhenDelivered) this.end();
  }

  private detach(queue: MessageQueue<Out>): void {
    if (this.queue !== queue) return;
    this.queue = undefined;
    this.hold(HOLD_QUEUE, false);
    this.hold(HOLD_NO_CONSUMER, !this.hasConsumer());
  }

  /** The framing broke: deliver nothing more, send what is queued, and close. */
  private fail(err: Error): void {
    this.failure ??= err;
    this.inputDone = true;
    this.discard();
    if (this.listenerCount('error') > 0) this.emit('error', err);
    this.queue?.finish(err);
    this.end();
    this.armCloseTimer();
  }

  private onError(err: Error): void {
    this.failure ??= err;
    this.inputDone = true;
    if (this.listenerCount('error') > 0) this.emit('error', err);
    this.queue?.finish(err);
  }

  private onIdle(): void {
    this.emit('timeout');
    void this.close();
  }

  private onClose(): void {
    this.isClosed = true;
    this.inputDone = true;
    clearTimeout(this.closeTimer);
    this.queue?.finish(this.failure);
    this.flush();
    this.emit('close', this.failure);
  }

  private discard(): void {
    this.discarding = true;
    this.updateFlow();
  }

  private armCloseTimer(): void {
    if (this.closeTimer || this.isClosed) return;
    this.closeTimer = setTimeout(() => this.socket.destroy(), this.options.closeTimeout ?? DEFAULT_CLOSE_TIMEOUT);
  }

  private hold(reason: number, on: boolean): void {
    const before = this.holds;
    this.holds = on ? before | reason : before & ~reason;
    if (this.holds !== before) this.updateFlow();
  }

  /**
   * Reads while nothing holds us back, and always once input is only being discarded. The idle timer
   * runs only while we read: a peer waiting on our slow consumer is not idle.
   */
  private updateFlow(): void {
    const reading = this.discarding || this.holds === 0;
    if (reading) this.socket.resume();
    else this.socket.pause();
    const idle = this.options.idleTimeout ?? 0;
    if (idle > 0) this.socket.setTimeout(reading ? idle : 0);
  }

  private onSocketDrain(): void {
    if (!this.needDrain || this.outboxBytes > 0) return;
    this.needDrain = false;
    this.emit('drain');
  }

  private flush(): void {
    this.flushScheduled = false;
    const outbox = this.outbox;
    const count = outbox.length;
    if (count === 0) return;
    const bytes = this.outboxBytes;
    const callbacks = this.outboxCallbacks;
    this.outbox = [];
    this.outboxBytes = 0;
    this.outboxCallbacks = null;
    const socket = this.socket;
    if (socket.destroyed || socket.writableEnded) {
      for (const cb of callbacks ?? []) process.nextTick(cb, new Error('the connection is closed'));
      return;
    }
    const onWritten = callbacks && ((err?: Error | null) => callbacks.forEach((cb) => cb(err ?? undefined)));
    let below: boolean;
    if (count === 1) {
      below = socket.write(outbox[0]!, onWritten ?? undefined);
    } else if (bytes <= JOIN_LIMIT) {
      below = socket.write(Buffer.concat(outbox, bytes), onWritten ?? undefined);
    } else {
      socket.cork();
      for (let i = 0; i < count - 1; i++) socket.write(outbox[i]!);
      below = socket.write(outbox[count - 1]!, onWritten ?? undefined);
      socket.uncork();
    }
    // The socket emits 'drain' only after a write that returned false; otherwise it is ours to emit.
    if (below && this.needDrain) {
      this.needDrain = false;
      process.nextTick(() => this.emit('drain'));
    }
  }
}
