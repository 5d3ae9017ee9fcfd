// WebSocketServer: accepts upgrades on its own port, on an existing http(s) server, or from the caller
// (noServer + handleUpgrade), and keeps the set of open connections.
import type http from 'node:http';
import type https from 'node:https';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { acceptResponse, checkUpgradeRequest, rejectResponse } from '../protocol/handshake.js';
import { CloseCode } from '../protocol/close.js';
import { acceptOffer, checkDeflateOptions } from '../protocol/permessage-deflate.js';
import { EventHost } from './events.js';
import { Heartbeat, type HeartbeatOptions } from './heartbeat.js';
import { StandaloneListener, type PendingHandshake } from './standalone.js';
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
  /** Standalone: largest request head in bytes, request line to blank line (beyond it: 431); default 16 KiB. */
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
const DEFAULT_MAX_HEADER_SIZE = 16 * 1024;
const DEFAULT_MAX_HEADER_COUNT = 100;

// The WebSocketServers attached to each http server, so that an upgrade to a path none of them serves
// still gets an answer, from exactly one of them.
const attached = new WeakMap<http.Server | https.Server, Set<WebSocketServer>>();

export interface ServerEvents {
  [type: string]: (...args: any[]) => void;
  /**
   * `req` is the upgrade request. Attached or noServer: the http.IncomingMessage of the http server.
   * Standalone: an http.IncomingMessage made from our own parse of the request head, with method, url,
   * httpVersion, headers (lowercase names, repeated lines joined with ", "), rawHeaders and socket
   * (remoteAddress etc.) set; it has no body.
   */
  connection: (ws: WebSocket, req: http.IncomingMessage) => void;
  listening: () => void;
  error: (err: Error) => void;
  close: () => void;
}

export class WebSocketServer extends EventHost<ServerEvents> {
  readonly clients = new Set<WebSocket>();
  readonly options: ServerOptions;
  /** Attached: the application's http(s) server. */
  private httpServer: http.Server | https.Server | null = null;
  /** Standalone: our own TCP / TLS listener. */
  private listener: StandaloneListener | null = null;
  private upgradeListener: ((req: http.IncomingMessage, socket: Duplex, head: Buffer) => void) | null = null;
  private closing = false;
  private closed = false;
  // Handshakes waiting on an async verifyClient, and how to refuse each: close() must not wait for them.
  private readonly verifying = new Map<Duplex, (status: number, reason: string) => void>();
  private readonly heartbeat: Heartbeat<WebSocket> | null;

  constructor(options: ServerOptions, onListening?: () => void) {
    super();
    this.options = options;
    const modes = [options.port !== undefined, options.server !== undefined, options.noServer === true];
    if (modes.filter(Boolean).length !== 1) {
      throw new TypeError('exactly one of the options port, server and noServer must be given');
    }
    if (typeof options.perMessageDeflate === 'object') checkDeflateOptions(options.perMessageDeflate);
    const beat = options.heartbeat;
    this.heartbeat = beat ? new Heartbeat<WebSocket>(beat === true ? {} : beat) : null;
    if (onListening) this.once('listening', onListening);
    if (options.noServer) return;
    if (options.server) {
      this.attach(options.server);
      return;
    }

    // Standalone: nothing else shares the port, so the request head is read without http.Server
    // (see StandaloneListener), and upgrades come here directly.
    const listener = new StandaloneListener({
      handshakeTimeout: options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT,
      maxHeaderSize: options.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE,
      maxHeaderCount: options.maxHeaderCount ?? DEFAULT_MAX_HEADER_COUNT,
      tls: options.cert ? { key: options.key, cert: options.cert, ca: options.ca, passphrase: options.passphrase } : null,
    }, (req, socket, head, handshake) => this.upgradeStandalone(req, socket, head, handshake));
    this.listener = listener;
    listener.server.on('error', (err) => this.emit('error', err));
    listener.server.on('listening', () => this.emit('listening'));
    listener.server.listen(options.port, options.host, options.backlog);
  }

  /** Handles the upgrades of an application's http(s) server, through its 'upgrade' event. */
  private attach(server: http.Server | https.Server): void {
    this.httpServer = server;
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
    if (server.listening) {
      process.nextTick(() => this.emit('listening'));
    } else {
      server.once('listening', () => this.emit('listening'));
    }
  }

  private upgradeStandalone(req: http.IncomingMessage, socket: net.Socket, head: Buffer, handshake: PendingHandshake): void {
    if (!this.matchesPath(req)) {
      socket.end(rejectResponse(404, 'no WebSocket endpoint at this path'));
      return handshake.refused();
    }
    this.upgrade(req, socket, head, (ws, r) => {
      handshake.accepted();
      this.emit('connection', ws, r);
    }, () => handshake.refused());
  }

  address(): net.AddressInfo | string | null {
    return (this.listener?.server ?? this.httpServer)?.address() ?? null;
  }

  /** Completes (or refuses) the opening handshake of an upgrade request. */
  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, callback: UpgradeCallback): void {
    this.upgrade(req, socket as net.Socket, head, callback);
  }

  /**
   * The opening handshake after the request head, the same in every mode: the checks, verifyClient, the
   * 101 and the WebSocket; or a refusal, after which `refused` is called.
   */
  private upgrade(req: http.IncomingMessage, netSocket: net.Socket, head: Buffer, callback: UpgradeCallback, refused?: () => void): void {
    // Until the handshake is done a socket error means only that this client went away.
    const onError = () => netSocket.destroy();
    netSocket.on('error', onError);
    const refuse = (status: number, reason: string, headers?: Record<string, string>) => {
      netSocket.end(rejectResponse(status, reason, headers));
      refused?.();
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
    const timer = setTimeout(() => {
      this.verifying.delete(netSocket);
      netSocket.destroy();
    }, timeout);
    timer.unref();
    this.verifying.set(netSocket, refuse);
    const settled = () => {
      clearTimeout(timer);
      this.verifying.delete(netSocket);
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
    for (const refuse of this.verifying.values()) refuse(503, 'the server is shutting down');
    this.verifying.clear();
    const clientsClosed = new Promise<void>((resolve) => {
      let left = this.clients.size;
      if (left === 0) return resolve();
      for (const client of this.clients) client.once('close', () => --left === 0 && resolve());
    });
    const serverClosed = new Promise<void>((resolve) => {
      if (this.listener) this.listener.close(resolve);
      else resolve();
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
