// WebSocketServer: accepts upgrades on its own port, on an existing http(s) server, or from the caller
// (noServer + handleUpgrade), and keeps the set of open connections.
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { acceptResponse, checkUpgradeRequest, rejectResponse } from '../protocol/handshake.js';
import { CloseCode } from '../protocol/close.js';
import { acceptOffer } from '../protocol/permessage-deflate.js';
import { EventHost } from './events.js';
import { Heartbeat, type HeartbeatOptions } from './heartbeat.js';
import { ACCEPTED, PreparedMessage, WebSocket, type WebSocketOptions } from './websocket.js';

export type VerifyResult = boolean | { ok: false; status?: number; reason?: string; headers?: Record<string, string> };

export interface VerifyInfo {
  req: http.IncomingMessage;
  origin: string | undefined;
  secure: boolean;
}

export interface ServerOptions extends Pick<
  WebSocketOptions, 'maxPayload' | 'maxFragments' | 'closeTimeout' | 'maxBufferedAmount' | 'slowConsumer' | 'perMessageDeflate'
> {
  /** Standalone: listen on this port (0 picks a free one). */
  port?: number;
  host?: string;
  backlog?: number;
  /** Standalone over TLS (wss://): the server's key and certificate chain, PEM. */
  key?: https.ServerOptions['key'];
  cert?: https.ServerOptions['cert'];
  ca?: https.ServerOptions['ca'];
  passphrase?: string;
  /** Standalone: largest request head in bytes (beyond it: 431); default 16 KiB. */
  maxHeaderSize?: number;
  /** Most request header lines (beyond it: 431); default 100. */
  maxHeaderCount?: number;
  /** Ping quiet clients and drop those that do not answer; off unless given. */
  heartbeat?: HeartbeatOptions | boolean;
  /** Attached: handle upgrades of this http(s) server; its other requests stay its own. */
  server?: http.Server | https.Server;
  /** Only upgrades to this path (query ignored) are handled. */
  path?: string;
  /** Neither: the caller passes upgrades to handleUpgrade(). */
  noServer?: boolean;
  /** Milliseconds a client has to complete the opening handshake (including verifyClient); default 10 s. */
  handshakeTimeout?: number;
  /** Subprotocols this server speaks; the first one the client offers that is listed here is chosen. */
  protocols?: string[];
  /** Picks the subprotocol from the client's offer; overrides `protocols`. */
  selectProtocol?: (offered: string[], req: http.IncomingMessage) => string | false | null | undefined;
  /** Accepts or refuses a client before the upgrade, synchronously or not. */
  verifyClient?: (info: VerifyInfo) => VerifyResult | Promise<VerifyResult>;
  /** Allowed values of the Origin header; requests without Origin (non-browser clients) are allowed. */
  origins?: string[];
  /** Open connections at most; further upgrades get 503. */
  maxConnections?: number;
}

export interface BroadcastOptions {
  except?: WebSocket;
  /** For Buffers: false sends them as text. */
  binary?: boolean;
}

type UpgradeCallback = (ws: WebSocket, req: http.IncomingMessage) => void;

const DEFAULT_HANDSHAKE_TIMEOUT = 10_000;
const DEFAULT_MAX_HEADER_COUNT = 100;

// The WebSocketServers attached to each http server, so that an upgrade to a path none of them serves
// still gets an answer, from exactly one of them.
const attached = new WeakMap<http.Server | https.Server, Set<WebSocketServer>>();

export interface ServerEvents {
  [type: string]: (...args: any[]) => void;
  connection: (ws: WebSocket, req: http.IncomingMessage) => void;
  listening: () => void;
  error: (err: Error) => void;
  close: () => void;
}

export class WebSocketServer extends EventHost<ServerEvents> {
  readonly clients = new Set<WebSocket>();
  readonly options: ServerOptions;
  private httpServer: http.Server | https.Server | null = null;
  private ownsServer = false;
  private upgradeListener: ((req: http.IncomingMessage, socket: Duplex, head: Buffer) => void) | null = null;
  private closing = false;
  private closed = false;
  // Sockets whose handshake waits on an async verifyClient: close() must not wait for them.
  private readonly verifying = new Set<Duplex>();
  private readonly heartbeat: Heartbeat<WebSocket> | null;

  constructor(options: ServerOptions, onListening?: () => void) {
    super();
    this.options = options;
    const modes = [options.port !== undefined, options.server !== undefined, options.noServer === true];
    if (modes.filter(Boolean).length !== 1) {
      throw new TypeError('exactly one of the options port, server and noServer must be given');
    }
    const beat = options.heartbeat;
    this.heartbeat = beat ? new Heartbeat<WebSocket>(beat === true ? {} : beat) : null;
    if (onListening) this.once('listening', onListening);
    if (options.noServer) return;

    if (options.server) {
      this.httpServer = options.server;
    } else {
      const timeout = options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT;
      const httpOptions: http.ServerOptions = {
        headersTimeout: timeout,
        requestTimeout: timeout,
        // Node checks those timeouts only this often; the default (30 s) would let a slow client linger.
        connectionsCheckingInterval: Math.min(timeout, 1000),
        maxHeaderSize: options.maxHeaderSize ?? 16 * 1024,
      };
      const onRequest = (_req: http.IncomingMessage, res: http.ServerResponse) => {
        const body = 'This is a WebSocket server: connect with a WebSocket client.\n';
        res.writeHead(426, { 'Content-Type': 'text/plain; charset=utf-8', Upgrade: 'websocket', 'Content-Length': Buffer.byteLength(body) });
        res.end(body);
      };
      this.httpServer = options.cert
        ? https.createServer({
          ...httpOptions, key: options.key, cert: options.cert, ca: options.ca, passphrase: options.passphrase,
          // A client that connects and never starts TLS is dropped as fast as one that never sends its request.
          handshakeTimeout: timeout,
        }, onRequest)
        : http.createServer(httpOptions, onRequest);
      this.ownsServer = true;
    }
    const server = this.httpServer;
    const siblings = attached.get(server) ?? new Set<WebSocketServer>();
    attached.set(server, siblings);
    siblings.add(this);
    this.upgradeListener = (req, socket, head) => {
      if (this.matchesPath(req)) {
        this.handleUpgrade(req, socket, head, (ws, r) => this.emit('connection', ws, r));
        return;
      }
      // Leave it to a sibling that serves this path, or to the application's own upgrade listeners.
      if ([...siblings].some((s) => s.matchesPath(req))) return;
      if (server.listenerCount('upgrade') > siblings.size) return;
      if (siblings.values().next().value === this) socket.end(rejectResponse(404, 'no WebSocket endpoint at this path'));
    };
    server.on('upgrade', this.upgradeListener);
    if (this.ownsServer) {
      server.on('error', (err) => this.emit('error', err));
      server.on('listening', () => this.emit('listening'));
      server.listen(options.port, options.host, options.backlog);
    } else if (server.listening) {
      process.nextTick(() => this.emit('listening'));
    } else {
      server.once('listening', () => this.emit('listening'));
    }
  }

  address(): net.AddressInfo | string | null {
    return this.httpServer?.address() ?? null;
  }

  /** Completes (or refuses) the opening handshake of an upgrade request. */
  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, callback: UpgradeCallback): void {
    const netSocket = socket as net.Socket;
    // Until the handshake is done a socket error means only that this client went away.
    const onError = () => netSocket.destroy();
    netSocket.on('error', onError);
    const refuse = (status: number, reason: string, headers?: Record<string, string>) => {
      netSocket.end(rejectResponse(status, reason, headers));
    };
    if (this.closing) return refuse(503, 'the server is shutting down');

    if (req.rawHeaders.length / 2 > (this.options.maxHeaderCount ?? DEFAULT_MAX_HEADER_COUNT)) {
      return refuse(431, 'too many header lines');
    }
    const check = checkUpgradeRequest(req);
    if (!check.ok) return refuse(check.status, check.reason, check.headers);
    const { origins, maxConnections } = this.options;
    if (origins && check.origin !== undefined && !origins.includes(check.origin)) {
      return refuse(403, `origin ${check.origin} is not allowed`);
    }
    if (maxConnections !== undefined && this.clients.size >= maxConnections) {
      return refuse(503, 'too many connections');
    }
    const protocol = this.chooseProtocol(check.protocols, req);
    let deflate: ReturnType<typeof acceptOffer> = null;
    const pmd = this.options.perMessageDeflate;
    if (pmd) {
      try {
        deflate = acceptOffer(check.extensions, pmd === true ? {} : pmd);
      } catch (err) {
        return refuse(400, (err as Error).message);
      }
    }

    const complete = () => {
      if (netSocket.destroyed || !netSocket.writable) return;
      if (this.closing) return refuse(503, 'the server is shutting down');
      // Checked again: other handshakes may have completed while this one was being verified.
      if (maxConnections !== undefined && this.clients.size >= maxConnections) return refuse(503, 'too many connections');
      netSocket.off('error', onError);
      netSocket.write(acceptResponse({
        key: check.key,
        ...(protocol ? { protocol } : {}),
        ...(deflate ? { extensions: deflate.response } : {}),
      }));
      const ws = this.track(new WebSocket(ACCEPTED, {
        socket: netSocket,
        head,
        path: req.url ?? '/',
        protocol,
        extensions: deflate?.response ?? '',
        deflate: deflate?.params ?? null,
        options: this.options,
      }));
      callback(ws, req);
    };

    const verify = this.options.verifyClient;
    if (!verify) return complete();
    const decide = (result: VerifyResult) => {
      if (result === true) return complete();
      if (result === false) return refuse(401, 'unauthorized');
      refuse(result.status ?? 401, result.reason ?? 'unauthorized', result.headers);
    };
    let result: VerifyResult | Promise<VerifyResult>;
    try {
      result = verify({ req, origin: check.origin, secure: Boolean((netSocket as { encrypted?: boolean }).encrypted) });
    } catch (err) {
      this.emit('error', err instanceof Error ? err : new Error(String(err)));
      return refuse(500, 'internal error while verifying the client');
    }
    if (!(result instanceof Promise)) return decide(result);
    const timeout = this.options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT;
    const timer = setTimeout(() => netSocket.destroy(), timeout);
    timer.unref();
    this.verifying.add(socket);
    const settled = () => {
      clearTimeout(timer);
      this.verifying.delete(socket);
    };
    result.then(
      (r) => {
        settled();
        decide(r);
      },
      (err) => {
        settled();
        this.emit('error', err instanceof Error ? err : new Error(String(err)));
        refuse(500, 'internal error while verifying the client');
      },
    );
  }

  /**
   * Keeps an accepted connection in `clients` until it closes. A method of its own so that the listener
   * it leaves behind does not hold the handshake's scope (the request, its headers) for the connection's life.
   */
  private track(ws: WebSocket): WebSocket {
    this.clients.add(ws);
    ws.on('close', () => this.clients.delete(ws));
    if (this.heartbeat) ws.useHeartbeat(this.heartbeat);
    return ws;
  }

  /** Sends one message to every open client; the frame is encoded once and shared. */
  broadcast(data: string | Buffer | ArrayBuffer | ArrayBufferView, options: BroadcastOptions = {}): void {
    const message = new PreparedMessage(data, options.binary === undefined ? undefined : { binary: options.binary });
    for (const client of this.clients) {
      if (client !== options.except && client.readyState === WebSocket.OPEN) client.sendPrepared(message);
    }
  }

  /**
   * Stops accepting, closes every client with 1001, and calls back once all are closed (clients that do
   * not answer are dropped after closeTimeout). An attached http server is left running.
   */
  close(callback?: (err?: Error) => void): void {
    if (this.closed) {
      if (callback) process.nextTick(callback);
      return;
    }
    if (callback) this.once('close', () => callback());
    if (this.closing) return;
    this.closing = true;
    this.heartbeat?.stop();
    if (this.httpServer && this.upgradeListener) {
      this.httpServer.off('upgrade', this.upgradeListener);
      attached.get(this.httpServer)?.delete(this);
    }
    for (const client of this.clients) client.close(CloseCode.GOING_AWAY, 'server shutting down');
    for (const socket of this.verifying) socket.end(rejectResponse(503, 'the server is shutting down'));
    this.verifying.clear();
    const clientsClosed = new Promise<void>((resolve) => {
      let left = this.clients.size;
      if (left === 0) return resolve();
      for (const client of this.clients) client.once('close', () => --left === 0 && resolve());
    });
    const serverClosed = new Promise<void>((resolve) => {
      if (!this.ownsServer || !this.httpServer!.listening) return resolve();
      this.httpServer!.close(() => resolve());
      (this.httpServer as http.Server).closeIdleConnections();
    });
    void Promise.all([clientsClosed, serverClosed]).then(() => {
      this.closed = true;
      this.emit('close');
    });
  }

  /** Whether this server handles upgrades to the request's path. */
  matchesPath(req: http.IncomingMessage): boolean {
    if (this.options.path === undefined) return true;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    return (q === -1 ? url : url.slice(0, q)) === this.options.path;
  }

  private chooseProtocol(offered: string[], req: http.IncomingMessage): string {
    if (offered.length === 0) return '';
    if (this.options.selectProtocol) {
      const chosen = this.options.selectProtocol(offered, req);
      return chosen && offered.includes(chosen) ? chosen : '';
    }
    const supported = this.options.protocols;
    return supported ? (offered.find((p) => supported.includes(p)) ?? '') : '';
  }
}
