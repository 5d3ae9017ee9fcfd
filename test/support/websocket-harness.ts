// Plumbing for the tests of src/websocket: servers that are closed when the test ends, clients that are
// dropped when it ends, and waits that all give up after a bounded time with a message saying what
// never happened.
import net from 'node:net';
import { createHash } from 'node:crypto';
import type { TestContext } from 'node:test';
import { WebSocket, WebSocketServer, type CloseEvent, type MessageEvent, type ServerOptions, type WebSocketOptions } from '../../src/index.js';
import type { EventHost } from '../../src/websocket/events.js';

export const WAIT_MS = 5000;

export function withTimeout<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The first argument of the next `type` event. */
export function nextEvent<T = unknown>(host: EventHost<any>, type: string, ms = WAIT_MS): Promise<T> {
  let listener!: (value: T) => void;
  const fired = new Promise<T>((resolve) => {
    listener = resolve;
    host.once(type, listener);
  });
  return withTimeout(fired, `a '${type}' event`, ms).finally(() => host.off(type, listener));
}

export const nextClose = (ws: WebSocket, ms = WAIT_MS) => nextEvent<CloseEvent>(ws, 'close', ms);
export const nextMessage = (ws: WebSocket, ms = WAIT_MS) => nextEvent<MessageEvent>(ws, 'message', ms);

/** The next `count` messages, in order. */
export function collectMessages(ws: WebSocket, count: number, ms = WAIT_MS): Promise<MessageEvent[]> {
  const received: MessageEvent[] = [];
  let listener!: (ev: MessageEvent) => void;
  const done = new Promise<MessageEvent[]>((resolve) => {
    listener = (ev) => {
      received.push(ev);
      if (received.length === count) resolve(received);
    };
    ws.on('message', listener);
  });
  return withTimeout(done, `${count} messages (got ${received.length})`, ms).finally(() => ws.off('message', listener));
}

/** The next `count` uncaught exceptions. The test runner's own handlers, which would fail the test, are detached meanwhile. */
export function uncaughtExceptions(count = 1, ms = WAIT_MS): Promise<Error[]> {
  const saved = process.listeners('uncaughtException');
  process.removeAllListeners('uncaughtException');
  const caught: Error[] = [];
  return new Promise<Error[]>((resolve, reject) => {
    const restore = () => {
      clearTimeout(timer);
      process.off('uncaughtException', onException);
      for (const listener of saved) process.on('uncaughtException', listener);
    };
    const onException = (err: Error) => {
      caught.push(err);
      if (caught.length < count) return;
      restore();
      resolve(caught);
    };
    const timer = setTimeout(() => {
      restore();
      reject(new Error(`${caught.length} of ${count} uncaught exceptions within ${ms} ms`));
    }, ms);
    process.on('uncaughtException', onException);
  });
}

export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// close(cb) on a server that has already closed is not something every test should depend on, so each
// server is closed once and later callers share that result.
const closing = new WeakMap<WebSocketServer, Promise<void>>();

export function closeServer(wss: WebSocketServer, ms = WAIT_MS): Promise<void> {
  let done = closing.get(wss);
  if (!done) {
    done = withTimeout(new Promise<void>((resolve) => wss.close(() => resolve())), 'the WebSocketServer to close', ms);
    closing.set(wss, done);
  }
  return done;
}

export interface Started {
  wss: WebSocketServer;
  port: number;
  url: string;
}

/** A standalone server on 127.0.0.1 and a free port, closed when the test ends. */
export async function startServer(t: TestContext, options: Omit<ServerOptions, 'port' | 'server' | 'noServer'> = {}): Promise<Started> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', closeTimeout: 1000, ...options });
  t.after(() => closeServer(wss));
  await nextEvent(wss, 'listening');
  const port = portOf(wss.address());
  return { wss, port, url: `ws://127.0.0.1:${port}/` };
}

/** A server that echoes every message with its own type. */
export async function startEchoServer(t: TestContext, options: Omit<ServerOptions, 'port' | 'server' | 'noServer'> = {}): Promise<Started> {
  const started = await startServer(t, options);
  started.wss.on('connection', (ws) => ws.on('message', (ev) => ws.send(ev.rawData, { binary: ev.isBinary })));
  return started;
}

export function portOf(address: net.AddressInfo | string | null): number {
  if (address === null || typeof address === 'string') throw new Error(`unexpected address ${String(address)}`);
  return address.port;
}

/** A client that is dropped when the test ends, whatever state it is in. */
export function client(t: TestContext, url: string | URL, protocols?: string | string[], options?: WebSocketOptions): WebSocket {
  const ws = new WebSocket(url, protocols, options);
  t.after(() => ws.terminate());
  return ws;
}

/** Resolves when `ws` opens; rejects if it closes first. */
export function opened(ws: WebSocket, ms = WAIT_MS): Promise<void> {
  let onOpen!: () => void;
  let onClose!: (ev: CloseEvent) => void;
  const open = new Promise<void>((resolve, reject) => {
    onOpen = resolve;
    onClose = (ev) => reject(new Error(`closed (${ev.code}) before opening`));
    ws.once('open', onOpen);
    ws.once('close', onClose);
  });
  return withTimeout(open, 'the connection to open', ms).finally(() => {
    ws.off('open', onOpen);
    ws.off('close', onClose);
  });
}

export interface Pair {
  client: WebSocket;
  /** The server's end of the same connection. */
  server: WebSocket;
}

/** Opens a client to `wss` and returns both ends once both are open. */
export async function connectPair(t: TestContext, started: Started, options?: WebSocketOptions): Promise<Pair> {
  const accepted = nextEvent<WebSocket>(started.wss, 'connection');
  const ws = client(t, started.url, undefined, options);
  const [server] = await Promise.all([accepted, opened(ws)]);
  return { client: ws, server };
}

/** A port nothing listens on (it was free a moment ago). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = portOf(server.address());
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A bare TCP server on 127.0.0.1, for peers that misbehave; it and its sockets are destroyed when the test ends. */
export async function startTcpServer(t: TestContext, onSocket: (socket: net.Socket) => void): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onSocket(socket);
  });
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return portOf(server.address());
}

/** Reads a request head from a raw socket; resolves with it as text. */
export function readRequestHead(socket: net.Socket, ms = WAIT_MS): Promise<string> {
  let text = '';
  let onData!: (chunk: Buffer) => void;
  const head = new Promise<string>((resolve) => {
    onData = (chunk) => {
      text += chunk.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end !== -1) resolve(text.slice(0, end + 4));
    };
    socket.on('data', onData);
  });
  return withTimeout(head, 'a request head', ms).finally(() => socket.off('data', onData));
}

/** A correct 101 answer to the request head `request`. */
export function switchingProtocols(request: string): string {
  const key = /^sec-websocket-key:[ \t]*(\S+)/im.exec(request)?.[1];
  if (!key) throw new Error(`no Sec-WebSocket-Key in ${JSON.stringify(request)}`);
  const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  return `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`;
}

export interface RawResponse {
  status: number;
  /** Lowercase names. */
  headers: Record<string, string>;
  body: string;
}

/**
 * Sends `request` (any bytes) on a fresh TCP connection and reads one HTTP response: up to the end of
 * its Content-Length body, or to the server's FIN when it has none.
 */
export function rawRequest(port: number, request: string | Buffer, ms = WAIT_MS): Promise<RawResponse> {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  let received = Buffer.alloc(0);
  const response = new Promise<RawResponse>((resolve, reject) => {
    const parse = (): RawResponse | null => {
      const end = received.indexOf('\r\n\r\n');
      if (end === -1) return null;
      const [statusLine, ...lines] = received.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine!)?.[1]);
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const body = received.subarray(end + 4);
      const length = headers['content-length'];
      if (length !== undefined && body.length < Number(length)) return null;
      return { status, headers, body: body.toString('utf8') };
    };
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const parsed = parse();
      if (parsed && parsed.headers['content-length'] !== undefined) resolve(parsed);
    });
    socket.on('close', () => {
      const parsed = parse();
      if (parsed) resolve(parsed);
      else reject(new Error(`connection closed after ${JSON.stringify(received.toString('latin1'))}`));
    });
  });
  socket.write(request);
  return withTimeout(response, 'an HTTP response', ms).finally(() => socket.destroy());
}

/** An upgrade request head for path `path`, with extra header lines. */
export function upgradeRequest(path = '/', extraLines: string[] = []): string {
  return [
    `GET ${path} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Upgrade: websocket',
    'Connection: Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version: 13',
    ...extraLines,
    '',
    '',
  ].join('\r\n');
}

export function isDomException(name: string): (err: unknown) => boolean {
  return (err) => err instanceof DOMException && err.name === name;
}
