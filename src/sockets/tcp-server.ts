/**
 * A TCP server of framed connections: many concurrent clients, a connection limit, per-connection idle
 * timeouts, and a graceful shutdown.
 *
 * There is no thread (or process) per client, as classic socket tutorials teach: every connection lives
 * on Node's one event loop and costs only its buffers, so thousands of mostly idle clients are cheap,
 * and one slow or broken client cannot stall the others as long as handlers do not block the loop.
 */
import { EventEmitter } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { FramedSocket, type FramedSocketOptions } from './framed-socket.js';
import type { Codec } from './framing.js';

export interface TcpServerOptions<Out, In> extends FramedSocketOptions {
  codec: Codec<Out, In>;
  /** Connections beyond this many are dropped as they arrive (event 'drop'); default no limit. */
  maxConnections?: number;
}

export type ConnectionHandler<Out, In> = (connection: FramedSocket<Out, In>) => void | Promise<void>;

export interface DroppedPeer {
  remoteAddress: string | undefined;
  remotePort: number | undefined;
}

export interface TcpServer<Out, In> {
  on(event: 'connection', listener: (connection: FramedSocket<Out, In>) => void): this;
  on(event: 'clientError', listener: (err: Error, connection: FramedSocket<Out, In>) => void): this;
  on(event: 'drop', listener: (peer: DroppedPeer) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'close', listener: () => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

/**
 * Events: 'connection' (connection), 'clientError' (err, connection) for an error on one connection
 * (the peer broke the framing or reset, the handler threw), which closes that connection only,
 * 'drop' (peer) over the connection limit, 'error' (err) of the listening socket, 'close'.
 * A handler that throws or rejects has its connection destroyed; its error is rethrown unless
 * someone listens for 'clientError'.
 */
export class TcpServer<Out, In = Out> extends EventEmitter {
  readonly connections = new Set<FramedSocket<Out, In>>();
  private readonly server: Server;
  private readonly codec: Codec<Out, In>;
  private readonly maxConnections: number;
  private readonly socketOptions: FramedSocketOptions;
  private listening = false;
  private closing: Promise<void> | undefined;

  constructor(
    options: TcpServerOptions<Out, In>,
    private readonly handler?: ConnectionHandler<Out, In>,
  ) {
    super();
    const { codec, maxConnections = Infinity, ...socketOptions } = options;
    this.codec = codec;
    this.maxConnections = maxConnections;
    this.socketOptions = socketOptions;
    this.server = createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
    this.server.on('error', (err) => {
      if (this.listening) this.emit('error', err);
    });
    this.server.on('close', () => this.emit('close'));
  }

  /** Resolves with the address once listening; rejects when it cannot (EADDRINUSE, EACCES…). */
  listen(port = 0, host = '127.0.0.1'): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        this.listening = true;
        resolve(this.address());
      });
    });
  }

  address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  /**
   * Graceful shutdown: stops accepting, then every connection stops reading new messages, consumes
   * those already received and sends their replies, ends, and waits for its peer to end (each at most
   * `closeTimeout`). Resolves once all are closed.
   */
  close(): Promise<void> {
    this.closing ??= new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const connection of this.connections) void connection.shutdown();
    });
    return this.closing;
  }

  private accept(socket: Socket): void {
    if (this.closing || this.connections.size >= this.maxConnections) {
      const peer: DroppedPeer = { remoteAddress: socket.remoteAddress, remotePort: socket.remotePort };
      socket.destroy();
      if (!this.closing) this.emit('drop', peer);
      return;
    }
    const connection = new FramedSocket(socket, this.codec, this.socketOptions);
    this.connections.add(connection);
    connection.on('error', (err) => this.emit('clientError', err, connection));
    connection.on('close', () => this.connections.delete(connection));
    this.emit('connection', connection);
    if (!this.handler) return;
    try {
      const result = this.handler(connection);
      if (result instanceof Promise) result.catch((err: unknown) => this.handlerFailed(err, connection));
    } catch (err) {
      this.handlerFailed(err, connection);
    }
  }

  private handlerFailed(err: unknown, connection: FramedSocket<Out, In>): void {
    // An iteration rethrows the connection's own error, which 'clientError' has already reported.
    if (err === connection.error) return;
    const error = err instanceof Error ? err : new Error(String(err));
    connection.destroy();
    if (this.listenerCount('clientError') > 0) {
      this.emit('clientError', error, connection);
      return;
    }
    process.nextTick(() => {
      throw error;
    });
  }
}
