// wss://: the standalone TLS server and a WebSocketServer attached to an https.Server, our client's
// certificate checks (ca, rejectUnauthorized, servername/SNI, client certificates), and interop over TLS
// with the `ws` package in both directions. Certificates are made at test time (test/support/certs.ts).
import { before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { WebSocket as WsClient, WebSocketServer as WsServer } from 'ws';
import { WebSocket, WebSocketServer, type ErrorEvent, type VerifyInfo } from '../src/index.js';
import { CLIENT_NAME, createTestPki, SNI_NAME, type TestPki } from './support/certs.js';
import {
  client, closeServer, nextClose, nextEvent, nextMessage, opened, portOf, startTcpServer, withTimeout, WAIT_MS,
} from './support/websocket-harness.js';

const OPTIONS = { timeout: 30_000 };
let pki: TestPki;

before(async () => {
  pki = await createTestPki();
});

/** Listens on 127.0.0.1; the server and every socket it accepted are destroyed when the test ends. */
async function listen(t: TestContext, server: https.Server): Promise<number> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  t.after(() => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    return withTimeout(closed, 'the https server to close');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return portOf(server.address());
}

/** An https.Server with the localhost certificate that answers plain requests with 200 "plain <path>". */
function plainHttpsServer(options: https.ServerOptions = {}): https.Server {
  return https.createServer({ ...pki.localhost, ...options }, (req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end(`plain ${req.url}`);
  });
}

/** A standalone wss:// server that echoes; resolves with its wss:// URL once it listens. */
async function startWssEcho(t: TestContext, options: { verifyClient?: (info: VerifyInfo) => boolean } = {}): Promise<{ wss: WebSocketServer; url: string }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', closeTimeout: 1000, ...pki.localhost, ...options });
  t.after(() => closeServer(wss));
  echoEverything(wss);
  await nextEvent(wss, 'listening');
  return { wss, url: `wss://127.0.0.1:${portOf(wss.address())}/` };
}

function echoEverything(wss: WebSocketServer): void {
  wss.on('connection', (ws) => ws.on('message', (ev) => ws.send(ev.rawData, { binary: ev.isBinary })));
}

async function roundTrip(ws: WebSocket, data: string | Buffer): Promise<unknown> {
  const reply = nextMessage(ws);
  ws.send(data);
  return (await reply).data;
}

/** Expects the client's handshake to fail: resolves with the error message, after checking the close event. */
async function failure(ws: WebSocket): Promise<string> {
  const error = nextEvent<ErrorEvent>(ws, 'error');
  const closed = nextClose(ws);
  const message = (await error).message;
  const ev = await closed;
  assert.deepEqual([ev.code, ev.wasClean, ws.readyState], [1006, false, WebSocket.CLOSED]);
  return message;
}

/** Closes from the client and checks that both ends saw a clean 1000. */
async function closeCleanly(ws: WebSocket, serverEnd: Promise<WebSocket>): Promise<void> {
  const server = await serverEnd;
  const serverClosed = nextClose(server);
  const clientClosed = nextClose(ws);
  ws.close(1000, 'done');
  for (const ev of await Promise.all([clientClosed, serverClosed])) {
    assert.deepEqual([ev.code, ev.reason, ev.wasClean], [1000, 'done', true]);
  }
}

const MIB = 1024 * 1024;
const bigPayload = () => Buffer.alloc(MIB, 'wss');

describe('standalone wss:// server', OPTIONS, () => {
  test('our client with the CA: opens, echoes text and a 1 MiB message, verifyClient sees secure: true, closes cleanly', async (t) => {
    const seen: boolean[] = [];
    const { wss, url } = await startWssEcho(t, { verifyClient: (info) => (seen.push(info.secure), true) });
    const serverEnd = nextEvent<WebSocket>(wss, 'connection');
    const ws = client(t, url, undefined, { ca: pki.ca });
    await opened(ws);
    assert.equal(ws.url, url);
    assert.deepEqual(seen, [true]);
    assert.equal(await roundTrip(ws, 'over tls'), 'over tls');
    assert.ok(bigPayload().equals((await roundTrip(ws, bigPayload())) as Buffer));
    await closeCleanly(ws, serverEnd);
  });

  test('a plain request to the standalone TLS server gets 426 over https', async (t) => {
    const { url } = await startWssEcho(t);
    const answer = new Promise<number>((resolve, reject) => {
      https.get(url.replace('wss:', 'https:'), { ca: pki.ca, agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', reject);
    });
    assert.equal(await withTimeout(answer, 'the https answer'), 426);
  });

  test('without the CA the certificate is refused: error naming the certificate, close 1006, no connection', async (t) => {
    const { wss, url } = await startWssEcho(t);
    let connections = 0;
    wss.on('connection', () => connections++);
    assert.match(await failure(client(t, url)), /certificate/i);
    assert.equal(connections, 0);
  });

  test('rejectUnauthorized: false accepts the untrusted certificate', async (t) => {
    const { url } = await startWssEcho(t);
    const ws = client(t, url, undefined, { rejectUnauthorized: false });
    await opened(ws);
    assert.equal(await roundTrip(ws, 'unverified'), 'unverified');
  });

  test('a servername the certificate does not cover is refused even with the CA', async (t) => {
    const { url } = await startWssEcho(t);
    assert.match(await failure(client(t, url, undefined, { ca: pki.ca, servername: SNI_NAME })), /altnames|certificate/i);
  });

  test('the `ws` client with the CA talks to our wss:// server', async (t) => {
    const { url } = await startWssEcho(t);
    const ws = new WsClient(url, { ca: pki.ca });
    t.after(() => ws.terminate());
    await withTimeout(new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    }), 'the ws client to open');
    const reply = withTimeout(new Promise<Buffer>((resolve) => ws.once('message', (data: Buffer) => resolve(data))), 'the echo');
    ws.send(bigPayload());
    assert.ok(bigPayload().equals(await reply));
    const closed = withTimeout(new Promise<number>((resolve) => ws.once('close', (code: number) => resolve(code))), 'the ws close');
    ws.close(1000);
    assert.equal(await closed, 1000);
  });
});

describe('attached to an https.Server', OPTIONS, () => {
  test('{ server, path }: the upgrade at the path is a wss:// connection, plain https requests stay the server\'s', async (t) => {
    const server = plainHttpsServer();
    const wss = new WebSocketServer({ server, path: '/ws', closeTimeout: 1000 });
    t.after(() => closeServer(wss));
    echoEverything(wss);
    const port = await listen(t, server);
    const serverEnd = nextEvent<WebSocket>(wss, 'connection');
    const ws = client(t, `wss://127.0.0.1:${port}/ws`, undefined, { ca: pki.ca });
    await opened(ws);
    assert.equal(await roundTrip(ws, 'attached'), 'attached');
    const plain = new Promise<string>((resolve, reject) => {
      https.get(`https://127.0.0.1:${port}/page`, { ca: pki.ca, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve(body));
      }).on('error', reject);
    });
    assert.equal(await withTimeout(plain, 'the plain https answer'), 'plain /page');
    await closeCleanly(ws, serverEnd);
  });

  test('SNI: the server sees the servername we send, picks its certificate by it, and we verify against it', async (t) => {
    const sniContext = tls.createSecureContext(pki.sni);
    const server = plainHttpsServer({ SNICallback: (name, cb) => cb(null, name === SNI_NAME ? sniContext : undefined) });
    const names: Array<string | false> = [];
    server.on('secureConnection', (socket: tls.TLSSocket) => names.push(socket.servername as string | false));
    const wss = new WebSocketServer({ server, closeTimeout: 1000 });
    t.after(() => closeServer(wss));
    echoEverything(wss);
    const port = await listen(t, server);
    const url = `wss://127.0.0.1:${port}/`;

    const named = client(t, url, undefined, { ca: pki.ca, servername: SNI_NAME });
    await opened(named);
    assert.equal(await roundTrip(named, 'sni'), 'sni');

    const local = client(t, url, undefined, { ca: pki.ca, servername: 'localhost' });
    await opened(local);

    // RFC 6066 forbids IP literals as server names, so a URL with an address sends none.
    const bare = client(t, url, undefined, { ca: pki.ca });
    await opened(bare);
    assert.deepEqual(names, [SNI_NAME, 'localhost', false]);
  });

  test('a server that asks for a client certificate accepts ours and sees its subject; without one the handshake fails', async (t) => {
    const server = plainHttpsServer({ ca: pki.ca, requestCert: true, rejectUnauthorized: true });
    const subjects: string[] = [];
    const wss = new WebSocketServer({
      server,
      closeTimeout: 1000,
      verifyClient: ({ req }) => {
        subjects.push(String((req.socket as tls.TLSSocket).getPeerCertificate().subject?.CN));
        return true;
      },
    });
    t.after(() => closeServer(wss));
    echoEverything(wss);
    const port = await listen(t, server);
    const url = `wss://127.0.0.1:${port}/`;

    const ws = client(t, url, undefined, { ca: pki.ca, ...pki.client });
    await opened(ws);
    assert.equal(await roundTrip(ws, 'mutual'), 'mutual');
    assert.deepEqual(subjects, [CLIENT_NAME]);

    assert.match(await failure(client(t, url, undefined, { ca: pki.ca })), /certificate/i);
    assert.deepEqual(subjects, [CLIENT_NAME]);
  });

  test('our client with the CA talks to a `ws` server on an https.Server', async (t) => {
    const server = plainHttpsServer();
    const wss = new WsServer({ server });
    t.after(() => {
      for (const peer of wss.clients) peer.terminate();
      return withTimeout(new Promise<void>((resolve) => wss.close(() => resolve())), 'the ws server to close');
    });
    let closedWith: Promise<number> | null = null;
    wss.on('connection', (peer) => {
      peer.on('message', (data: Buffer, isBinary: boolean) => peer.send(data, { binary: isBinary }));
      closedWith = new Promise<number>((resolve) => peer.once('close', (code: number) => resolve(code)));
    });
    const port = await listen(t, server);
    const ws = client(t, `wss://127.0.0.1:${port}/`, undefined, { ca: pki.ca });
    await opened(ws);
    assert.equal(await roundTrip(ws, 'to ws'), 'to ws');
    assert.ok(bigPayload().equals((await roundTrip(ws, bigPayload())) as Buffer));
    const ours = nextClose(ws);
    ws.close(1000);
    assert.deepEqual([(await ours).code, (await ours).wasClean], [1000, true]);
    assert.ok(closedWith, 'the ws server saw the connection');
    assert.equal(await withTimeout(closedWith as Promise<number>, 'the ws server\'s close event', WAIT_MS), 1000);
  });
});

describe('handshake timeouts over TLS', OPTIONS, () => {
  const handshakeTimeout = 500;
  // Node checks its request timers only every connectionsCheckingInterval, plus scheduling slack.
  const within = handshakeTimeout + 1500;

  async function startSlowWss(t: TestContext): Promise<number> {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', handshakeTimeout, ...pki.localhost });
    t.after(() => closeServer(wss));
    await nextEvent(wss, 'listening');
    return portOf(wss.address());
  }

  test('a request head trickled after the TLS handshake gets 408 after handshakeTimeout', async (t) => {
    const port = await startSlowWss(t);
    const socket = tls.connect({ host: '127.0.0.1', port, ca: pki.ca });
    t.after(() => socket.destroy());
    socket.on('error', () => {});
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.once('secureConnect', () => socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n'));
    await withTimeout(closed, 'the server to drop the slow TLS client', within);
    assert.match(received, /^HTTP\/1\.1 408 /);
  });

  test('a TCP client that never starts the TLS handshake is dropped after handshakeTimeout', {
  }, async (t) => {
    const port = await startSlowWss(t);
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.on('error', () => {});
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    try {
      await withTimeout(closed, 'the server to drop the silent TCP client', within);
    } finally {
      // Before the server is closed, which would otherwise wait for this connection.
      socket.destroy();
    }
  });

  test('our client gives up on a server that accepts TCP but never answers the TLS handshake', async (t) => {
    const port = await startTcpServer(t, (socket) => socket.pause());
    const message = await failure(client(t, `wss://127.0.0.1:${port}/`, undefined, { ca: pki.ca, handshakeTimeout }));
    assert.match(message, /timed out/);
  });
});
