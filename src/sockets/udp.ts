/**
 * UDP datagrams over IPv4 and IPv6, with the sender's address on every datagram and a size limit.
 *
 * UDP promises nothing beyond "each datagram arrives whole or not at all": datagrams may be lost,
 * duplicated or reordered, and nobody is told. There is no connection, so no flow control either: a
 * receiver that falls behind loses datagrams. An application that needs any of that (acknowledgements,
 * sequence numbers, retries) builds it on top, or uses TCP.
 */
import { createSocket, type Socket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import { isIPv6, type AddressInfo } from 'node:net';
import { formatEndpoint } from './endpoint.js';

export type UdpType = 'udp4' | 'udp6';

/**
 * The largest payload one datagram can carry: 65,535 bytes of IP packet minus the headers (IPv4: 20
 * of IP and 8 of UDP; IPv6: the 40-byte header is not counted, only the UDP one). Anything above about
 * 1,200 bytes may be fragmented on the way, and a lost fragment loses the whole datagram.
 */
export const MAX_DATAGRAM_SIZE: Readonly<Record<UdpType, number>> = { udp4: 65_507, udp6: 65_527 };
export const DEFAULT_QUEUE_LIMIT = 1024;

export interface UdpPeer {
  address: string;
  port: number;
  family: 'IPv4' | 'IPv6';
}

export interface Datagram {
  data: Buffer;
  peer: UdpPeer;
}

export interface UdpOptions {
  /** Default: udp6 when `host` is an IPv6 address, udp4 otherwise. */
  type?: UdpType;
  /** Address to bind; default 127.0.0.1 (or ::1 for udp6). */
  host?: string;
  /** Port to bind; default 0, a free one. */
  port?: number;
  /** Largest datagram sent or accepted, in bytes; default and maximum: MAX_DATAGRAM_SIZE of the type. */
  maxDatagramSize?: number;
  /** Datagrams an async iteration may have waiting; those arriving beyond it are dropped. Default 1024. */
  queueLimit?: number;
}

export interface UdpSocket {
  on(event: 'message', listener: (data: Buffer, peer: UdpPeer) => void): this;
  on(event: 'oversize', listener: (size: number, peer: UdpPeer) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'close', listener: () => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

/**
 * Events: 'message' (data, peer); 'oversize' (size, peer) for a datagram over the limit, which is
 * dropped; 'error' (err), emitted only to listeners; 'close'.
 */
export class UdpSocket extends EventEmitter {
  readonly type: UdpType;
  readonly maxDatagramSize: number;
  private droppedCount = 0;
  private queue: Datagram[] | undefined;
  private wake: (() => void) | undefined;
  private isClosed = false;
  private closing: Promise<void> | undefined;

  /** Use bindUdp(). */
  constructor(
    private readonly socket: Socket,
    type: UdpType,
    maxDatagramSize: number,
    private readonly queueLimit: number,
  ) {
    super();
    this.type = type;
    this.maxDatagramSize = maxDatagramSize;
    socket.on('message', (data, rinfo) => this.onMessage(data, rinfo));
    socket.on('error', (err) => {
      if (this.listenerCount('error') > 0) this.emit('error', err);
    });
    socket.on('close', () => {
      this.isClosed = true;
      this.wake?.();
      this.emit('close');
    });
  }

  address(): AddressInfo {
    return this.socket.address();
  }

  /** Datagrams dropped because an async iteration had `queueLimit` waiting. */
  get dropped(): number {
    return this.droppedCount;
  }

  /**
   * Sends one datagram; resolves once it is handed to the operating system, which says nothing about
   * its arrival. A datagram over `maxDatagramSize` throws a RangeError instead of being sent.
   */
  send(data: Uint8Array | string, to: { address: string; port: number }): Promise<void> {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    if (bytes.byteLength > this.maxDatagramSize) {
      throw new RangeError(
        `datagram of ${bytes.byteLength} bytes exceeds the limit of ${this.maxDatagramSize} bytes (${this.type})`,
      );
    }
    return new Promise((resolve, reject) => {
      this.socket.send(bytes, to.port, to.address, (err) => (err ? reject(err) : resolve()));
    });
  }

  close(): Promise<void> {
    this.closing ??= this.isClosed ? Promise.resolve() : new Promise((resolve) => this.socket.close(() => resolve()));
    return this.closing;
  }

  /** Datagrams until close(); one that arrives while `queueLimit` wait is dropped and counted in `dropped`. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Datagram, void, undefined> {
    if (this.queue) throw new Error('this socket is already being iterated');
    const queue: Datagram[] = [];
    this.queue = queue;
    try {
      for (;;) {
        const next = queue.shift();
        if (next) {
          yield next;
          continue;
        }
        if (this.isClosed) return;
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
      }
    } finally {
      this.queue = undefined;
    }
  }

  private onMessage(data: Buffer, rinfo: { address: string; port: number; family: string }): void {
    const peer: UdpPeer = { address: rinfo.address, port: rinfo.port, family: rinfo.family === 'IPv6' ? 'IPv6' : 'IPv4' };
    if (data.length > this.maxDatagramSize) {
      this.emit('oversize', data.length, peer);
      return;
    }
    this.emit('message', data, peer);
    if (!this.queue) return;
    if (this.queue.length >= this.queueLimit) {
      this.droppedCount++;
      return;
    }
    this.queue.push({ data, peer });
    this.wake?.();
  }
}

/** Opens a UDP socket bound to `host`:`port`; rejects when the address cannot be bound. */
export function bindUdp(options: UdpOptions = {}): Promise<UdpSocket> {
  const type = options.type ?? (options.host !== undefined && isIPv6(options.host) ? 'udp6' : 'udp4');
  const host = options.host ?? (type === 'udp6' ? '::1' : '127.0.0.1');
  const max = options.maxDatagramSize ?? MAX_DATAGRAM_SIZE[type];
  if (!Number.isInteger(max) || max < 0 || max > MAX_DATAGRAM_SIZE[type]) {
    throw new RangeError(`maxDatagramSize must be a whole number from 0 to ${MAX_DATAGRAM_SIZE[type]} for ${type}, got ${max}`);
  }
  const socket = createSocket({ type });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(options.port ?? 0, host, () => {
      socket.off('error', reject);
      resolve(new UdpSocket(socket, type, max, options.queueLimit ?? DEFAULT_QUEUE_LIMIT));
    });
  });
}

/** A peer as "host:port", for messages to people. */
export function formatPeer(peer: UdpPeer): string {
  return formatEndpoint(peer.address, peer.port);
}
