/**
 * A publisher for the hub benchmarks: one raw WebSocket connection that publishes timed data to a
 * channel at a fixed rate (open loop: it does not wait for deliveries).
 *
 * A 1 ms timer sends what the schedule says is due, stamping each message with the time it is
 * written. If the process falls behind (a GC pause, a busy loop), it catches up with a burst of at
 * most MAX_CATCH_UP_MS of messages and drops the rest of the schedule; the achieved rate is
 * counted, so a shortfall shows. It never queues more than MAX_QUEUED bytes on a hub that stops
 * reading from it: that is a hub that cannot keep up, and the run must show it, not hide it in
 * our memory.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { nowMicros, timedData } from './hub-timed-data.js';
import { ServerFrameReader, textFrame, upgradeRequest, UpgradeResponse } from './hub-wire.js';

const TICK_MS = 1;
const MAX_CATCH_UP_MS = 100;
const MAX_QUEUED = 4 * 1024 * 1024;
const CONNECT_TIMEOUT_MS = 10_000;

export class PacedPublisher {
  /** Messages written to the socket so far; below the schedule after a stall or on a hub that stopped reading. */
  published = 0;
  private timer: NodeJS.Timeout | null = null;
  private failure: string | null = null;

  private constructor(
    private readonly socket: net.Socket,
    private readonly channel: string,
    private readonly dataSize: number,
  ) {}

  /** Connects and completes the WebSocket handshake to /ws. */
  static connect(port: number, headers: Record<string, string>, channel: string, dataSize: number): Promise<PacedPublisher> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.setNoDelay(true);
      const publisher = new PacedPublisher(socket, channel, dataSize);
      const response = new UpgradeResponse();
      let open = false;
      const reader = new ServerFrameReader({
        // The hub answers a publish without an id only when something is wrong.
        message: (payload) => publisher.fail(`the hub answered a publish: ${payload?.toString().slice(0, 200)}`),
        failed: (reason) => publisher.fail(reason),
        reply: (frame) => socket.write(frame),
      }, true);
      const timer = setTimeout(() => socket.destroy(new Error('publisher: handshake timed out')), CONNECT_TIMEOUT_MS);
      socket.once('connect', () => socket.write(upgradeRequest(port, headers)));
      socket.on('data', (chunk: Buffer) => {
        let rest: Buffer | null = chunk;
        if (!open) {
          try {
            rest = response.push(chunk);
          } catch (error) {
            socket.destroy(error as Error);
            return;
          }
          if (rest === null) return;
          open = true;
          clearTimeout(timer);
          resolve(publisher);
        }
        reader.push(rest, 0, rest.length);
      });
      socket.on('error', (error) => {
        clearTimeout(timer);
        if (open) publisher.fail(`publisher socket: ${error.message}`);
        else reject(error);
      });
      socket.on('close', () => {
        clearTimeout(timer);
        if (open) publisher.fail('the hub closed the publisher connection');
        else reject(new Error('publisher: connection closed during the handshake'));
      });
    });
  }

  /** The first problem seen on the connection, or null. */
  get error(): string | null {
    return this.failure;
  }

  /** Publishes `rate` messages per second until stop(), or until `total` more have been written. */
  start(rate: number, total = Infinity): void {
    this.stop();
    const start = performance.now();
    const end = this.published + total;
    const catchUp = Math.max(1, Math.ceil((rate * MAX_CATCH_UP_MS) / 1000));
    let scheduled = 0;
    this.timer = setInterval(() => {
      const due = Math.floor(((performance.now() - start) * rate) / 1000);
      const count = Math.min(due - scheduled, catchUp, end - this.published);
      scheduled = due;
      if (count > 0) this.send(count);
      if (this.published >= end) this.stop();
    }, TICK_MS);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  close(): void {
    this.stop();
    this.socket.destroy();
  }

  private send(count: number): void {
    if (this.socket.writableLength > MAX_QUEUED || this.failure !== null) return;
    const frames: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const data = timedData(nowMicros(), this.dataSize);
      frames.push(textFrame(`{"type":"publish","channel":"${this.channel}","data":${data}}`));
    }
    this.socket.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames));
    this.published += count;
  }

  private fail(reason: string): void {
    this.failure ??= reason;
    this.stop();
  }
}
