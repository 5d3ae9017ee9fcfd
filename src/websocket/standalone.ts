// The listener of a standalone WebSocketServer: it accepts TCP (or TLS) connections itself and reads
// each request head with HttpRequestParser, with no http.Server in between. Upgrade requests go on to
// the server's handshake; everything else is answered here: 426 to plain requests, 400 / 431 / 505 to
// heads the parser refuses, 408 to heads not complete within handshakeTimeout.
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { rejectResponse, requestsUpgrade } from '../protocol/handshake.js';
import { HandshakeError } from '../protocol/handshake-error.js';
import { HttpRequestParser, type HttpRequestHead } from '../protocol/http-request.js';

export interface StandaloneOptions {
  /** Milliseconds from accepting a connection (after TLS, if any) to the end of the opening handshake. */
  handshakeTimeout: number;
  maxHeaderSize: number;
  maxHeaderCount: number;
  /** Key and certificate for wss://; null for ws://. */
  tls: Pick<tls.TlsOptions, 'key' | 'cert' | 'ca' | 'passphrase'> | null;
}

/**
 * Receives each upgrade request. `socket` is the client's, `head` the bytes that followed the request
 * head; the handler must report the outcome to `handshake`, now or later.
 */
export type UpgradeHandler = (req: http.IncomingMessage, socket: net.Socket, head: Buffer, handshake: PendingHandshake) => void;

const PLAIN_REQUEST_BODY = 'This is a WebSocket server: connect with a WebSocket client.\n';

// States of a connection whose handshake is not done.
const READING_HEAD = 0;
const DECIDING = 1;
const ANSWERED = 2;
const UPGRADED = 3;

export class StandaloneListener {
  readonly server: net.Server;
  // Connections in their handshake, in order of arrival and therefore of deadline.
  private readonly pending = new Map<net.Socket, PendingHandshake>();
  private sweeper: NodeJS.Timeout | null = null;

  constructor(private readonly options: StandaloneOptions, private readonly onUpgrade: UpgradeHandler) {
    const accept = (socket: net.Socket) => this.accept(socket);
    // Sockets as http.Server and https.Server make them. Plain ones are half-open: a client's FIN does not
    // cut off what is still to be written. TLS ones are not: a client that gives up during the TLS
    // handshake and closes would otherwise hold its connection until the TLS handshake timeout.
    if (!options.tls) {
      this.server = net.createServer({ allowHalfOpen: true, noDelay: true }, accept);
      return;
    }
    const server = tls.createServer({
      noDelay: true,
      ...options.tls,
      // A client that connects and never starts TLS is dropped as fast as one that never sends its request.
      handshakeTimeout: options.handshakeTimeout,
      // What https.Server announces: a client offering h2 as well learns that this server speaks HTTP/1.1.
      ALPNProtocols: ['http/1.1'],
    }, accept);
    // tls.Server only reports a failed or timed-out TLS handshake; dropping the socket is up to us.
    server.on('tlsClientError', (_err, socket) => socket.destroy());
    this.server = server;
  }

  /**
   * Stops accepting; connections still reading their request head are dropped. Calls back once every
   * connection the server accepted has closed, upgraded ones included.
   */
  close(callback: () => void): void {
    if (!this.server.listening) return callback();
    this.server.close(() => {
      this.stopSweeping();
      callback();
    });
    for (const handshake of this.pending.values()) handshake.abandon();
  }

  private accept(socket: net.Socket): void {
    const { handshakeTimeout, maxHeaderSize, maxHeaderCount } = this.options;
    const parser = new HttpRequestParser({ maxHeadSize: maxHeaderSize, maxHeaderCount });
    this.pending.set(socket, new PendingHandshake(socket, Date.now() + handshakeTimeout, parser, this.onUpgrade, this.pending));
    if (this.sweeper === null) {
      // Node's http.Server checks its request timers this often too: at most a second late.
      this.sweeper = setInterval(() => this.sweep(Date.now()), Math.max(10, Math.min(handshakeTimeout, 1000)));
      this.sweeper.unref();
    }
  }

  private sweep(now: number): void {
    for (const handshake of this.pending.values()) {
      if (handshake.deadline > now) return;
      handshake.expire();
    }
    // Stopped when idle; the next connection starts it again.
    if (this.pending.size === 0) this.stopSweeping();
  }

  private stopSweeping(): void {
    if (this.sweeper !== null) clearInterval(this.sweeper);
    this.sweeper = null;
  }
}

/** One accepted connection until its handshake is done: reads the request head, then waits for the decision. */
export class PendingHandshake {
  private state = READING_HEAD;

  constructor(
    private readonly socket: net.Socket,
    readonly deadline: number,
    private readonly parser: HttpRequestParser,
    private readonly onUpgrade: UpgradeHandler,
    private readonly pending: Map<net.Socket, PendingHandshake>,
  ) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
  }

  /** The server accepted: the socket is the WebSocket's now (it has attached its own listeners). */
  accepted(): void {
    this.state = UPGRADED;
    this.detach();
    if (this.socket.isPaused()) this.socket.resume();
  }

  /** The server answered with a refusal and ended the socket: what the client still sends is read and dropped. */
  refused(): void {
    this.state = ANSWERED;
    if (this.socket.isPaused()) this.socket.resume();
  }

  /** handshakeTimeout has passed. */
  expire(): void {
    // What Node's http.Server does with a request head that takes too long: 408, then the socket goes.
    if (this.state === READING_HEAD && this.parser.received > 0) this.socket.write(rejectResponse(408, 'request head not received in time'));
    this.destroy();
  }

  /** The server is closing: a connection that has not sent its request yet is not waited for. */
  abandon(): void {
    if (this.state === READING_HEAD) this.destroy();
  }

  private destroy(): void {
    this.pending.delete(this.socket);
    this.socket.destroy();
  }

  /** Leaves the socket to the WebSocket, with no listener of ours holding this object. */
  private detach(): void {
    this.pending.delete(this.socket);
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('error', this.onError);
    this.socket.off('close', this.onClose);
  }

  private answer(status: number, reason: string, headers?: Record<string, string>, bodyless = false): void {
    const response = rejectResponse(status, reason, headers);
    // A response to HEAD has the headers of the one to GET, without its body.
    this.socket.end(bodyless ? response.slice(0, response.length - reason.length) : response);
    this.state = ANSWERED;
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.state !== READING_HEAD) return;
    let parsed: { head: HttpRequestHead; rest: Buffer } | null;
    try {
      parsed = this.parser.push(chunk);
    } catch (err) {
      if (!(err instanceof HandshakeError)) throw err;
      return this.answer(err.status ?? 400, err.message);
    }
    if (parsed === null) return;
    const { head, rest } = parsed;
    if (!requestsUpgrade(head.headers)) {
      return this.answer(426, PLAIN_REQUEST_BODY, { Upgrade: 'websocket' }, head.method === 'HEAD');
    }
    this.state = DECIDING;
    this.onUpgrade(incomingMessage(head, this.socket), this.socket, rest, this);
    // Still deciding (an asynchronous verifyClient): nothing more is read until the decision.
    if (this.state === DECIDING) this.socket.pause();
  };

  private readonly onEnd = (): void => {
    if (this.state !== READING_HEAD) return;
    if (this.parser.received > 0) this.answer(400, 'the connection ended in the middle of the request head');
    else this.socket.end();
  };

  private readonly onError = (): void => {
    this.destroy();
  };

  private readonly onClose = (): void => {
    this.pending.delete(this.socket);
  };
}

/**
 * The request as the 'connection' event, verifyClient and selectProtocol get it: an http.IncomingMessage
 * like the one http.Server would have made for an upgrade, with method, url, httpVersion, headers,
 * rawHeaders and socket set from our own parse (headers as HttpRequestHead describes them), complete
 * and without a body.
 */
function incomingMessage(head: HttpRequestHead, socket: net.Socket): http.IncomingMessage {
  const req = new http.IncomingMessage(socket);
  req.method = head.method;
  req.url = head.url;
  req.httpVersion = head.httpVersion;
  req.httpVersionMajor = 1;
  req.httpVersionMinor = Number(head.httpVersion.slice(2));
  req.rawHeaders = head.rawHeaders;
  const headers: http.IncomingHttpHeaders = head.headers;
  // The one name Node's typings give an array of values; a request should not carry it at all.
  if (head.headers['set-cookie'] !== undefined) headers['set-cookie'] = rawValues(head.rawHeaders, 'set-cookie');
  req.headers = headers;
  req.complete = true;
  return req;
}

function rawValues(rawHeaders: string[], name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === name) values.push(rawHeaders[i + 1]!);
  return values;
}
