// `duplex serve`: for now a minimal HTTP server with a test page and a broadcast room at /ws.
// The real-time hub will replace it.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type MessageEvent, type WebSocket } from '../index.js';
import { listenUrl } from './address.js';
import { listening } from './listening.js';
import { PAGE_HTML } from './page.js';
import { closeWithin, shutdownSignal } from './shutdown.js';

export interface ServeOptions {
  port: number;
  host: string;
}

const CLOSE_GRACE_MS = 3000;

export async function runServe({ port, host }: ServeOptions): Promise<number> {
  const server = createServer(respond);
  const wss = new WebSocketServer({ server, path: '/ws' });
  wss.on('connection', (ws: WebSocket) => {
    ws.on('message', (ev: MessageEvent) => wss.broadcast(ev.rawData, { binary: ev.isBinary }));
  });
  const up = listening(server, `${host}:${port}`);
  server.listen(port, host);
  await up;
  const stop = shutdownSignal();
  process.stdout.write(`listening on ${listenUrl('http', server.address() as AddressInfo)}\n`);
  await stop;
  const closed = await closeWithin((done) => wss.close(done), CLOSE_GRACE_MS);
  // Upgraded sockets left the http server already; this ends idle keep-alive connections.
  server.closeAllConnections();
  await closeWithin((done) => server.close(() => done()), CLOSE_GRACE_MS);
  if (!closed) process.stderr.write('duplex: some clients did not finish closing; exiting anyway\n');
  return 0;
}

function respond(req: IncomingMessage, res: ServerResponse): void {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return reply(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: 'GET, HEAD' });
  }
  if (path === '/') return reply(res, 200, 'text/html; charset=utf-8', PAGE_HTML);
  if (path === '/healthz') return reply(res, 200, 'text/plain; charset=utf-8', 'ok');
  if (path === '/ws') {
    return reply(res, 426, 'text/plain; charset=utf-8', 'this is a WebSocket endpoint\n', { upgrade: 'websocket' });
  }
  reply(res, 404, 'text/plain; charset=utf-8', 'not found\n');
}

function reply(
  res: ServerResponse,
  status: number,
  type: string,
  body: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
