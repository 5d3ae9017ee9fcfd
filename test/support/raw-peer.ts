// A WebSocket client on a bare TCP socket that does only what a test tells it to: it completes the
// opening handshake and then neither reads nor answers anything until asked. That makes the peers the
// production features exist for: one that never answers pings or close frames, one that never reads
// (so the server's send buffers fill), one that talks but never pongs. Frames are built with
// rawclient.ts's encoder; what the server sends is parsed only as far as these tests need.
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import type { WebSocket } from '../../src/index.js';
import { closePayload, encodeFrame, Op } from './rawclient.js';
import { nextEvent, withTimeout, WAIT_MS, type Started } from './websocket-harness.js';

export interface ServerFrame {
  fin: boolean;
  opcode: number;
  /** Payload length in bytes. */
  length: number;
  /** The payload of control frames; data payloads are only counted, as a test may receive many MiB. */
  payload: Buffer | null;
}

export interface RawPeerOptions {
  path?: string;
  /** Extra request header lines, e.g. 'Origin: x'. */
  headerLines?: string[];
  ms?: number;
}

const MAX_HEAD = 16 * 1024;

export class RawPeer {
  readonly frames: ServerFrame[] = [];
  /** Bytes of data-frame payload received so far. */
  dataBytes = 0;
  /** Resolves once the socket has closed, however that happened. */
  readonly closed: Promise<void>;
  isClosed = false;
  private pending: Buffer;
  private readPos = 0;
  private readonly watchers = new Set<() => void>();

  private constructor(readonly socket: net.Socket, rest: Buffer) {
    this.pending = rest;
    this.closed = new Promise((resolve) => {
      if (socket.closed) resolve();
      socket.once('close', () => resolve());
    });
    void this.closed.then(() => {
      this.isClosed = true;
      this.notify();
    });
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    this.parse();
  }

  /** Connects and completes the handshake; the socket is left paused, reading nothing more. */
  static async open(port: number, options: RawPeerOptions = {}): Promise<RawPeer> {
    const socket = net.connect({ host: '127.0.0.1', port });
    // A server that drops this peer may well reset the connection; that is what the tests provoke.
    socket.on('error', () => {});
    const key = randomBytes(16).toString('base64');
    socket.write([
      `GET ${options.path ?? '/'} HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Upgrade: websocket', 'Connection: Upgrade',
      `Sec-WebSocket-Key: ${key}`, 'Sec-WebSocket-Version: 13', ...(options.headerLines ?? []), '', '',
    ].join('\r\n'));
    try {
      const { head, rest } = await withTimeout(responseHead(socket), 'the handshake response', options.ms ?? WAIT_MS);
      if (!/^HTTP\/1\.1 101 /.test(head)) throw new Error(`handshake refused: ${head.split('\r\n')[0]}`);
      return new RawPeer(socket, rest);
    } catch (err) {
      socket.destroy();
      throw err;
    }
  }

  /** Starts (or resumes) reading and parsing what the server sends. */
  read(): void {
    this.socket.resume();
  }

  stopReading(): void {
    this.socket.pause();
  }

  /** Writes one masked frame, as a client must. */
  send(opcode: number, payload: Buffer | string = Buffer.alloc(0), fin = true): void {
    if (!this.socket.destroyed) this.socket.write(encodeFrame({ opcode, payload, fin }));
  }

  sendClose(code: number): void {
    this.send(Op.Close, closePayload(code));
  }

  /** The next frame not yet handed out; the peer must be reading. */
  nextFrame(ms = WAIT_MS): Promise<ServerFrame> {
    return this.waitFor(() => (this.readPos < this.frames.length ? this.frames[this.readPos++] : undefined), ms, 'a frame');
  }

  /** Skips data and ping frames up to the server's close frame and returns its code. */
  async nextCloseCode(ms = WAIT_MS): Promise<number | null> {
    const deadline = Date.now() + ms;
    for (;;) {
      const frame = await this.nextFrame(Math.max(1, deadline - Date.now()));
      if (frame.opcode === Op.Close) return frame.payload!.length >= 2 ? frame.payload!.readUInt16BE(0) : null;
    }
  }

  waitClosed(ms = WAIT_MS): Promise<void> {
    return withTimeout(this.closed, 'the server to close the raw socket', ms);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private receive(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    this.parse();
  }

  private parse(): void {
    for (;;) {
      const buf = this.pending;
      if (buf.length < 2) break;
      let length = buf[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (buf.length < 4) break;
        length = buf.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (buf.length < 10) break;
        length = Number(buf.readBigUInt64BE(2));
        offset = 10;
      }
      if (buf.length < offset + length) break;
      const opcode = buf[0]! & 0x0f;
      const control = opcode >= 0x8;
      this.frames.push({
        fin: (buf[0]! & 0x80) !== 0,
        opcode,
        length,
        payload: control ? Buffer.from(buf.subarray(offset, offset + length)) : null,
      });
      if (!control) this.dataBytes += length;
      this.pending = buf.subarray(offset + length);
    }
    this.notify();
  }

  private waitFor<T>(check: () => T | undefined, ms: number, what: string): Promise<T> {
    let watcher!: () => void;
    const found = new Promise<T>((resolve, reject) => {
      watcher = () => {
        const value = check();
        if (value !== undefined) resolve(value);
        else if (this.isClosed) reject(new Error(`the socket closed while waiting for ${what}`));
      };
      this.watchers.add(watcher);
      watcher();
    });
    return withTimeout(found, what, ms).finally(() => this.watchers.delete(watcher));
  }

  private notify(): void {
    for (const watcher of [...this.watchers]) watcher();
  }
}

/** Opens a raw peer to `started`, destroyed when the test ends, with the server's end of the connection. */
export async function rawPair(t: TestContext, started: Started): Promise<{ peer: RawPeer; server: WebSocket }> {
  const serverEnd = nextEvent<WebSocket>(started.wss, 'connection');
  const peer = await RawPeer.open(started.port);
  t.after(() => peer.destroy());
  return { peer, server: await serverEnd };
}

function responseHead(socket: net.Socket): Promise<{ head: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end === -1) {
        if (received.length > MAX_HEAD) fail(new Error('response head too large'));
        return;
      }
      // Stop here: whatever follows is read only when the test says so.
      socket.pause();
      cleanup();
      resolve({ head: received.subarray(0, end).toString('latin1'), rest: received.subarray(end + 4) });
    };
    const onClose = () => fail(new Error(`closed during the handshake after ${JSON.stringify(received.toString('latin1'))}`));
    const cleanup = () => {
      socket.off('data', onData);
      socket.off('close', onClose);
    };
    function fail(err: Error) {
      cleanup();
      reject(err);
    }
    socket.on('data', onData);
    socket.on('close', onClose);
  });
}
