// The standalone server reads request heads itself (StandaloneListener + HttpRequestParser): what the
// 'connection' event gets as the request, heads and frames split across writes, frames sent while an
// asynchronous verifyClient decides, the answers to malformed and plain requests over the wire, and
// connections that are refused or never finish their head.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { setImmediate as nextLoop } from 'node:timers/promises';
import { closeServer, collectMessages, nextEvent, rawRequest, startEchoServer, startServer, upgradeRequest, withTimeout } from './support/websocket-harness.js';

const OPTIONS = { timeout: 30_000 };
const MASK = [0x11, 0x22, 0x33, 0x44];

/** A masked text frame, as a client sends it. */
function textFrame(text: string): Buffer {
  const payload = Buffer.from(text).map((byte, i) => byte ^ MASK[i % 4]!);
  return Buffer.from([0x81, 0x80 | payload.length, ...MASK, ...payload]);
}

/** A raw TCP connection, destroyed when the test ends; `received` is everything it got, as latin1. */
function connect(t: TestContext, port: number): { socket: net.Socket; received: () => string; closed: Promise<void> } {
  const socket = net.connect({ host: '127.0.0.1', port });
  t.after(() => socket.destroy());
  socket.setNoDelay(true);
  socket.on('error', () => {});
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { socket, received: () => text, closed };
}

/** Writes the bytes one write per byte, each after the previous has been sent on its own. */
async function trickle(socket: net.Socket, bytes: Buffer): Promise<void> {
  for (const byte of bytes) {
    await new Promise<void>((resolve) => socket.write(Buffer.from([byte]), () => resolve()));
    await nextLoop();
  }
}

describe('the request a standalone server hands out', OPTIONS, () => {
  test('an http.IncomingMessage with method, url, httpVersion, headers, rawHeaders and socket', async (t) => {
    const started = await startServer(t);
    const connection = new Promise<http.IncomingMessage>((resolve) => started.wss.once('connection', (_ws, req) => resolve(req)));
    const { socket } = connect(t, started.port);
    socket.write(upgradeRequest('/room?id=7', ['X-Test: yes', 'X-Test: again', 'Cookie: a=1', 'Cookie: b=2']));
    const req = await withTimeout(connection, 'the connection event');
    assert.ok(req instanceof http.IncomingMessage);
    assert.deepEqual([req.method, req.url, req.httpVersion, req.httpVersionMajor, req.httpVersionMinor], ['GET', '/room?id=7', '1.1', 1, 1]);
    assert.equal(req.headers.host, '127.0.0.1');
    assert.equal(req.headers['x-test'], 'yes, again');
    assert.equal(req.headers.cookie, 'a=1; b=2');
    assert.deepEqual(req.rawHeaders.slice(0, 4), ['Host', '127.0.0.1', 'Upgrade', 'websocket']);
    assert.equal(req.rawHeaders.length, 2 * 9);
    assert.equal(req.socket.remoteAddress, '127.0.0.1');
    assert.equal(req.complete, true);
  });
});

describe('heads and frames split across writes', OPTIONS, () => {
  test('a head sent one byte per write, then frames in one write before the 101 was read', async (t) => {
    const started = await startEchoServer(t);
    const { socket, received } = connect(t, started.port);
    await trickle(socket, Buffer.from(upgradeRequest('/')));
    socket.write(Buffer.concat([textFrame('one'), textFrame('two')]));
    await withTimeout((async () => {
      while (!received().includes('two')) await new Promise((resolve) => setTimeout(resolve, 10));
    })(), 'both echoes');
    assert.match(received(), /^HTTP\/1\.1 101 /);
    assert.ok(received().indexOf('one') < received().indexOf('two'));
  });

  test('frames in the same write as the end of the head reach the connection', async (t) => {
    const started = await startServer(t);
    const messages = new Promise<string[]>((resolve) => {
      started.wss.on('connection', (ws) => void collectMessages(ws, 2).then((evs) => resolve(evs.map((ev) => String(ev.data)))));
    });
    const { socket } = connect(t, started.port);
    const head = Buffer.from(upgradeRequest('/'));
    socket.write(head.subarray(0, 30));
    await nextLoop();
    socket.write(Buffer.concat([head.subarray(30), textFrame('early'), textFrame('bird')]));
    assert.deepEqual(await withTimeout(messages, 'the two messages'), ['early', 'bird']);
  });

  test('frames sent while an asynchronous verifyClient decides are delivered once it accepts', async (t) => {
    let admit!: (ok: boolean) => void;
    let asked!: (socket: net.Socket) => void;
    const verifying = new Promise<net.Socket>((resolve) => (asked = resolve));
    const started = await startServer(t, {
      verifyClient: (info) => {
        asked(info.req.socket);
        return new Promise<boolean>((resolve) => (admit = resolve));
      },
    });
    const messages = new Promise<string[]>((resolve) => {
      started.wss.on('connection', (ws) => void collectMessages(ws, 3).then((evs) => resolve(evs.map((ev) => String(ev.data)))));
    });
    const { socket } = connect(t, started.port);
    const first = Buffer.concat([Buffer.from(upgradeRequest('/')), textFrame('a')]);
    socket.write(first);
    const serverSocket = await withTimeout(verifying, 'verifyClient to be called');
    const later = Buffer.concat([textFrame('b'), textFrame('c')]);
    socket.write(later);
    // The decision comes only once the server has read every byte.
    await withTimeout((async () => {
      while (serverSocket.bytesRead < first.length + later.length) await new Promise((resolve) => setTimeout(resolve, 5));
    })(), 'the server to read the frames');
    admit(true);
    assert.deepEqual(await withTimeout(messages, 'the three messages'), ['a', 'b', 'c']);
  });
});

describe('answers over the wire', OPTIONS, () => {
  const cases: Array<[string, string, number]> = [
    ['obs-fold', upgradeRequest('/', ['X-A: b', ' c']), 400],
    ['bare LF line ends', upgradeRequest('/').replaceAll('\r\n', '\n'), 400],
    ['a second Host line', upgradeRequest('/', ['Host: elsewhere']), 400],
    ['a space before the colon', upgradeRequest('/', ['X-A : b']), 400],
    ['a request-target with a raw non-ASCII byte', upgradeRequest('/caf\xe9'), 400],
    ['not HTTP at all (a TLS hello)', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03', 400],
    ['HTTP/2.0', upgradeRequest('/').replace('HTTP/1.1', 'HTTP/2.0'), 505],
    ['HTTP/1.0', upgradeRequest('/').replace('HTTP/1.1', 'HTTP/1.0'), 400],
    ['an upgrade with another method', upgradeRequest('/').replace('GET', 'PUT'), 405],
    ['a plain POST with a body', 'POST /form HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello', 426],
    ['a plain GET on keep-alive', 'GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n', 426],
  ];
  for (const [name, request, status] of cases) {
    test(`${name} → ${status}`, async (t) => {
      const started = await startServer(t);
      let connections = 0;
      started.wss.on('connection', () => connections++);
      const res = await rawRequest(started.port, Buffer.from(request, 'latin1'));
      assert.equal(res.status, status, JSON.stringify(res));
      assert.equal(res.headers.connection?.split(',')[0], 'close');
      if (status === 426) {
        assert.equal(res.headers.upgrade, 'websocket');
        assert.equal(res.body, 'This is a WebSocket server: connect with a WebSocket client.\n');
      }
      assert.equal(connections, 0);
    });
  }

  test('HEAD of a plain request gets the 426 headers without the body', async (t) => {
    const started = await startServer(t);
    const { socket, received, closed } = connect(t, started.port);
    socket.write('HEAD / HTTP/1.1\r\nHost: a\r\n\r\n');
    await withTimeout(closed, 'the server to end the connection');
    assert.match(received(), /^HTTP\/1\.1 426 Upgrade Required\r\n/);
    assert.match(received(), /\r\nContent-Length: 61\r\n/);
    assert.ok(received().endsWith('\r\n\r\n'), JSON.stringify(received()));
  });

  test('empty lines before the request line are ignored', async (t) => {
    const started = await startServer(t);
    const connected = nextEvent(started.wss, 'connection');
    const { socket } = connect(t, started.port);
    socket.write(`\r\n\r\n${upgradeRequest('/')}`);
    await connected;
  });

  test('with a path option, an upgrade to another path gets 404 and a plain request still 426', async (t) => {
    const started = await startServer(t, { path: '/ws' });
    assert.equal((await rawRequest(started.port, upgradeRequest('/other'))).status, 404);
    assert.equal((await rawRequest(started.port, 'GET /ws HTTP/1.1\r\nHost: a\r\n\r\n')).status, 426);
    const connected = nextEvent(started.wss, 'connection');
    connect(t, started.port).socket.write(upgradeRequest('/ws?x=1'));
    await connected;
  });

  test('a client that ends its side in the middle of the head gets 400', async (t) => {
    const started = await startServer(t);
    const { socket, received, closed } = connect(t, started.port);
    socket.end('GET / HTTP/1.1\r\nHost: a\r\n');
    await withTimeout(closed, 'the server to close the connection');
    assert.match(received(), /^HTTP\/1\.1 400 /);
  });

  test('a refused client that keeps sending gets its whole answer, and the server reads on until it leaves', async (t) => {
    const started = await startServer(t);
    const { socket, received, closed } = connect(t, started.port);
    socket.write('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4194304\r\n\r\n');
    const body = Buffer.alloc(64 * 1024, 'b');
    for (let i = 0; i < 64; i++) await new Promise<void>((resolve) => socket.write(body, () => resolve()));
    await withTimeout((async () => {
      while (!received().endsWith('client.\n')) await new Promise((resolve) => setTimeout(resolve, 10));
    })(), 'the 426 answer');
    assert.match(received(), /^HTTP\/1\.1 426 /);
    socket.end();
    await withTimeout(closed, 'the connection to close once the client left');
  });
});

describe('connections that never finish their handshake', OPTIONS, () => {
  test('close() drops a connection that has sent part of its head and completes', async (t) => {
    const started = await startServer(t);
    const { socket, closed } = connect(t, started.port);
    socket.write('GET / HTTP/1.1\r\nHost: a\r\n');
    await nextLoop();
    await new Promise<void>((resolve) => socket.write('X-Half: ', () => resolve()));
    await closeServer(started.wss);
    await withTimeout(closed, 'the half-sent connection to be dropped');
  });

  test('a head that stops coming gets 408 after handshakeTimeout; one that never started is just closed', async (t) => {
    const started = await startServer(t, { handshakeTimeout: 300 });
    const partial = connect(t, started.port);
    partial.socket.write('GET / HTTP/1.1\r\nHost: a\r\n');
    const silent = connect(t, started.port);
    // handshakeTimeout plus the sweep's period (the timeout itself below 1 s) and scheduling slack.
    await withTimeout(Promise.all([partial.closed, silent.closed]), 'both connections to be dropped', 300 + 300 + 1500);
    assert.match(partial.received(), /^HTTP\/1\.1 408 /);
    assert.equal(silent.received(), '');
  });
});
