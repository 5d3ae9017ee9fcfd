// WebSocketServer through its public API, in process: the three ways of running it, the handshake
// decisions it makes (subprotocols, verifyClient, origins, limits, malformed requests), the clients set,
// broadcast and shutdown.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { WebSocket, WebSocketServer, type CloseEvent, type ErrorEvent, type VerifyInfo, type VerifyResult } from '../src/index.js';
import {
  client, closeServer, collectMessages, connectPair, nextClose, nextEvent, nextMessage, opened, portOf, rawRequest,
  startServer, upgradeRequest, withTimeout, WAIT_MS, type Started,
} from './support/websocket-harness.js';

/** Destroys every socket of `server` when the test ends, upgraded ones included, so that closing it cannot wait. */
function closeWhenDone(t: TestContext, server: http.Server): void {
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  t.after(() => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    return withTimeout(closed, 'the http server to close');
  });
}

/** An http.Server on 127.0.0.1 answering plain requests with 200 "plain <path>"; closed when the test ends. */
async function startHttpServer(t: TestContext): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end(`plain ${req.url}`);
  });
  closeWhenDone(t, server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: portOf(server.address()) };
}

function attach(t: TestContext, options: ConstructorParameters<typeof WebSocketServer>[0]): WebSocketServer {
  const wss = new WebSocketServer(options);
  t.after(() => closeServer(wss));
  return wss;
}

function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  const done = new Promise<{ status: number; body: string }>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
  return withTimeout(done, `GET ${path}`);
}

/** Opens a client and expects the handshake to fail; resolves with the error message once the close event (1006) came. */
async function refusedWith(ws: WebSocket): Promise<string> {
  const error = nextEvent<ErrorEvent>(ws, 'error');
  const closed = nextClose(ws);
  const message = (await error).message;
  assert.equal((await closed).code, 1006);
  return message;
}

/** Echoes each message back prefixed with `name`, so a test can tell which server answered. */
function answerAs(wss: WebSocketServer, name: string): void {
  wss.on('connection', (ws) => ws.on('message', (ev) => ws.send(`${name}:${String(ev.data)}`)));
}

async function ask(ws: WebSocket, text: string): Promise<unknown> {
  const reply = nextMessage(ws);
  ws.send(text);
  return (await reply).data;
}

describe('ways of running a server', { timeout: 30_000 }, () => {
  test('standalone on port 0: listening, address(), connection with the request', async (t) => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    t.after(() => closeServer(wss));
    await nextEvent(wss, 'listening');
    const address = wss.address();
    assert.ok(address !== null && typeof address === 'object');
    assert.equal(address.address, '127.0.0.1');
    assert.ok(address.port > 0);

    const connection = new Promise<[WebSocket, http.IncomingMessage]>((resolve) => wss.once('connection', (ws, req) => resolve([ws, req])));
    const ws = client(t, `ws://127.0.0.1:${address.port}/room?id=7`, [], { headers: { 'X-Test': 'yes' } });
    const [serverWs, req] = await withTimeout(connection, 'the connection event');
    assert.ok(serverWs instanceof WebSocket);
    assert.equal(req.url, '/room?id=7');
    assert.equal(req.headers['x-test'], 'yes');
    await opened(ws);
  });

  test('the constructor callback is a listening listener', async (t) => {
    let listening!: () => void;
    const called = new Promise<void>((resolve) => (listening = resolve));
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' }, () => listening());
    t.after(() => closeServer(wss));
    await withTimeout(called, 'the listening callback');
  });

  test('exactly one of port, server and noServer must be given', async (t) => {
    const { server } = await startHttpServer(t);
    assert.throws(() => new WebSocketServer({}), TypeError);
    assert.throws(() => new WebSocketServer({ port: 0, noServer: true }), TypeError);
    assert.throws(() => new WebSocketServer({ server, noServer: true }), TypeError);
  });

  test('a port in use is an error event', async (t) => {
    const first = await startServer(t);
    const second = new WebSocketServer({ port: first.port, host: '127.0.0.1' });
    t.after(() => closeServer(second));
    const err = await nextEvent<NodeJS.ErrnoException>(second, 'error');
    assert.equal(err.code, 'EADDRINUSE');
  });

  test('attached at /ws: plain requests stay the http server\'s, other upgrade paths get 404', async (t) => {
    const { server, port } = await startHttpServer(t);
    const wss = attach(t, { server, path: '/ws' });
    answerAs(wss, 'ws');
    await nextEvent(wss, 'listening');
    assert.equal(portOf(wss.address()), port);

    assert.deepEqual(await httpGet(port, '/page'), { status: 200, body: 'plain /page' });
    const ws = client(t, `ws://127.0.0.1:${port}/ws?token=1`);
    await opened(ws);
    assert.equal(await ask(ws, 'hi'), 'ws:hi');
    assert.deepEqual(await httpGet(port, '/ws'), { status: 200, body: 'plain /ws' });

    assert.match(await refusedWith(client(t, `ws://127.0.0.1:${port}/elsewhere`)), /404/);
    const raw = await rawRequest(port, upgradeRequest('/elsewhere'));
    assert.equal(raw.status, 404);
  });

  test('attached before the http server listens: listening follows the http server', async (t) => {
    const server = http.createServer();
    closeWhenDone(t, server);
    const wss = attach(t, { server });
    const listening = nextEvent(wss, 'listening');
    server.listen(0, '127.0.0.1');
    await listening;
    const ws = client(t, `ws://127.0.0.1:${portOf(server.address())}/`);
    await opened(ws);
  });

  test('two servers on one http server at different paths each get their own clients', async (t) => {
    const { server, port } = await startHttpServer(t);
    const a = attach(t, { server, path: '/a' });
    const b = attach(t, { server, path: '/b' });
    answerAs(a, 'A');
    answerAs(b, 'B');
    const toA = client(t, `ws://127.0.0.1:${port}/a`);
    const toB = client(t, `ws://127.0.0.1:${port}/b`);
    await Promise.all([opened(toA), opened(toB)]);
    assert.equal(await ask(toA, 'x'), 'A:x');
    assert.equal(await ask(toB, 'y'), 'B:y');
    assert.deepEqual([a.clients.size, b.clients.size], [1, 1]);
    assert.deepEqual(await httpGet(port, '/c'), { status: 200, body: 'plain /c' });
  });

  test('two servers on one http server: an upgrade to a path neither serves gets 404', {
  }, async (t) => {
    const { server, port } = await startHttpServer(t);
    attach(t, { server, path: '/a' });
    attach(t, { server, path: '/b' });
    assert.equal((await rawRequest(port, upgradeRequest('/c'), 1000)).status, 404);
  });

  test('noServer: the caller hands upgrades to handleUpgrade()', async (t) => {
    const { server, port } = await startHttpServer(t);
    const wss = attach(t, { noServer: true });
    answerAs(wss, 'manual');
    assert.equal(wss.address(), null);
    const paths: string[] = [];
    server.on('upgrade', (req, socket, head) => {
      paths.push(req.url ?? '');
      wss.handleUpgrade(req, socket, head, (ws, request) => wss.emit('connection', ws, request));
    });
    const ws = client(t, `ws://127.0.0.1:${port}/anything`);
    await opened(ws);
    assert.equal(await ask(ws, 'q'), 'manual:q');
    assert.deepEqual(paths, ['/anything']);
    assert.equal(wss.clients.size, 1);
  });

  test('a plain GET on a standalone server gets 426 Upgrade Required', async (t) => {
    const { port } = await startServer(t);
    const res = await httpGet(port, '/');
    assert.equal(res.status, 426);
    const raw = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    assert.equal(raw.status, 426);
    assert.equal(raw.headers.upgrade, 'websocket');
  });
});

describe('options', () => {
  test('a bad permessage-deflate setting throws at construction, before anything listens', () => {
    for (const perMessageDeflate of [{ level: 10 }, { compressionWindowBits: 16 }, { serverMaxWindowBits: 7 }, { memLevel: 0 }]) {
      assert.throws(() => new WebSocketServer({ noServer: true, perMessageDeflate }), RangeError, JSON.stringify(perMessageDeflate));
      assert.throws(() => new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate }), RangeError, JSON.stringify(perMessageDeflate));
    }
  });
});

describe('subprotocols', { timeout: 30_000 }, () => {
  test('protocols: the first offered protocol the server speaks is chosen, on both ends', async (t) => {
    const started = await startServer(t, { protocols: ['chat.v2', 'chat.v1'] });
    const accepted = nextEvent<WebSocket>(started.wss, 'connection');
    const ws = client(t, started.url, ['chat.v1', 'chat.v2']);
    await opened(ws);
    assert.equal(ws.protocol, 'chat.v1');
    assert.equal((await accepted).protocol, 'chat.v1');
  });

  test('protocols: no match means no protocol (\'\'), and the connection still opens', async (t) => {
    const started = await startServer(t, { protocols: ['other'] });
    const accepted = nextEvent<WebSocket>(started.wss, 'connection');
    const ws = client(t, started.url, 'mine');
    await opened(ws);
    assert.equal(ws.protocol, '');
    assert.equal((await accepted).protocol, '');
  });

  test('selectProtocol sees the offer and the request; its choice wins over protocols', async (t) => {
    const offers: Array<[string[], string | undefined]> = [];
    const started = await startServer(t, {
      protocols: ['a'],
      selectProtocol: (offered, req) => {
        offers.push([offered, req.url]);
        return offered.includes('b') ? 'b' : false;
      },
    });
    const accepted = nextEvent<WebSocket>(started.wss, 'connection');
    const chosen = client(t, `${started.url}p`, ['a', 'b']);
    await opened(chosen);
    assert.equal(chosen.protocol, 'b');
    assert.equal((await accepted).protocol, 'b');

    const none = client(t, started.url, ['a']);
    await opened(none);
    assert.equal(none.protocol, '');
    assert.deepEqual(offers, [[['a', 'b'], '/p'], [['a'], '/']]);
  });

  test('selectProtocol returning a protocol that was not offered selects none', async (t) => {
    const started = await startServer(t, { selectProtocol: () => 'never-offered' });
    const ws = client(t, started.url, ['x']);
    await opened(ws);
    assert.equal(ws.protocol, '');
  });
});

describe('verifyClient and origins', { timeout: 30_000 }, () => {
  const cases: Array<[string, (info: VerifyInfo) => VerifyResult | Promise<VerifyResult>, number | null]> = [
    ['sync true', () => true, null],
    ['sync false', () => false, 401],
    ['sync { status: 403 }', () => ({ ok: false, status: 403, reason: 'forbidden' }), 403],
    ['async true', () => new Promise((resolve) => setTimeout(() => resolve(true), 10)), null],
    ['async { status: 451 }', async () => ({ ok: false, status: 451 }), 451],
  ];
  for (const [name, verifyClient, status] of cases) {
    test(`verifyClient ${name} → ${status ?? 'accepted'}`, async (t) => {
      const started = await startServer(t, { verifyClient });
      const ws = client(t, started.url);
      if (status === null) {
        await opened(ws);
        assert.equal(started.wss.clients.size, 1);
      } else {
        assert.match(await refusedWith(ws), new RegExp(String(status)));
        assert.equal(started.wss.clients.size, 0);
      }
    });
  }

  test('verifyClient gets the request, the origin and secure: false', async (t) => {
    const infos: VerifyInfo[] = [];
    const started = await startServer(t, { verifyClient: (info) => infos.push(info) > 0 });
    const ws = client(t, `${started.url}v`, [], { origin: 'https://app.example' });
    await opened(ws);
    assert.equal(infos.length, 1);
    assert.equal(infos[0]!.origin, 'https://app.example');
    assert.equal(infos[0]!.secure, false);
    assert.equal(infos[0]!.req.url, '/v');
  });

  test('a refusal\'s status, reason and headers reach the wire', async (t) => {
    const started = await startServer(t, {
      verifyClient: () => ({ ok: false, status: 403, reason: 'no entry', headers: { 'X-Why': 'token' } }),
    });
    const res = await rawRequest(started.port, upgradeRequest('/'));
    assert.equal(res.status, 403);
    assert.equal(res.headers['x-why'], 'token');
    assert.equal(res.body, 'no entry');
  });

  test('verifyClient rejecting or throwing: 500 and an error event', async (t) => {
    let mode: 'reject' | 'throw' = 'reject';
    const started = await startServer(t, {
      verifyClient: () => {
        if (mode === 'throw') throw new Error('verifier threw');
        return Promise.reject(new Error('verifier rejected'));
      },
    });
    let error = nextEvent<Error>(started.wss, 'error');
    assert.match(await refusedWith(client(t, started.url)), /500/);
    assert.equal((await error).message, 'verifier rejected');

    mode = 'throw';
    error = nextEvent<Error>(started.wss, 'error');
    assert.match(await refusedWith(client(t, started.url)), /500/);
    assert.equal((await error).message, 'verifier threw');
    assert.equal(started.wss.clients.size, 0);
  });

  test('origins: listed origins and requests without Origin are accepted; others get 403', async (t) => {
    const started = await startServer(t, { origins: ['https://good.example'] });
    await opened(client(t, started.url, [], { origin: 'https://good.example' }));
    await opened(client(t, started.url));
    assert.match(await refusedWith(client(t, started.url, [], { origin: 'https://evil.example' })), /403/);
    assert.equal(started.wss.clients.size, 2);
  });
});

describe('connections', { timeout: 30_000 }, () => {
  test('maxConnections: further upgrades get 503 until a client leaves', async (t) => {
    const started = await startServer(t, { maxConnections: 2 });
    const first = await connectPair(t, started);
    await connectPair(t, started);
    assert.match(await refusedWith(client(t, started.url)), /503/);

    const gone = nextClose(first.server);
    first.client.close();
    await gone;
    await connectPair(t, started);
    assert.equal(started.wss.clients.size, 2);
  });

  test('the clients set grows with connections and shrinks as they close', async (t) => {
    const started = await startServer(t);
    const { wss } = started;
    assert.equal(wss.clients.size, 0);
    const one = await connectPair(t, started);
    assert.equal(wss.clients.size, 1);
    const two = await connectPair(t, started);
    assert.deepEqual([...wss.clients], [one.server, two.server]);

    let closed = nextClose(one.server);
    one.client.close();
    await closed;
    assert.deepEqual([...wss.clients], [two.server]);
    closed = nextClose(two.server);
    two.server.close(1000);
    await closed;
    assert.equal(wss.clients.size, 0);
  });

  test('a client that hangs up without a close frame leaves the clients set', {
  }, async (t) => {
    const started = await startServer(t);
    const { client: ws, server } = await connectPair(t, started);
    const closed = nextClose(server, 1000);
    ws.terminate();
    await closed;
    assert.equal(started.wss.clients.size, 0);
  });

  test('frames that arrive together with the handshake are not lost', {
  }, async (t) => {
    const started = await startServer(t);
    const received = new Promise<string>((resolve) => {
      started.wss.on('connection', (ws) => ws.on('message', (ev) => resolve(String(ev.data))));
    });
    const socket = net.connect({ host: '127.0.0.1', port: started.port });
    t.after(() => socket.destroy());
    socket.on('error', () => {});
    const mask = [1, 2, 3, 4];
    const payload = [...Buffer.from('early')].map((byte, i) => byte ^ mask[i % 4]!);
    socket.write(Buffer.concat([Buffer.from(upgradeRequest('/')), Buffer.from([0x81, 0x80 | payload.length, ...mask, ...payload])]));
    assert.equal(await withTimeout(received, 'the first message', 1000), 'early');
  });
});

describe('broadcast', { timeout: 30_000 }, () => {
  async function clients(t: TestContext, started: Started, count: number): Promise<WebSocket[]> {
    const pairs = [];
    for (let i = 0; i < count; i++) pairs.push(await connectPair(t, started));
    return pairs.map((pair) => pair.client);
  }

  test('text and binary reach every client; except skips one; binary: false sends bytes as text', async (t) => {
    const started = await startServer(t);
    const all = await clients(t, started, 3);
    const [skipped] = [...started.wss.clients];

    let received = all.map((ws) => collectMessages(ws, 3));
    started.wss.broadcast('hello all');
    started.wss.broadcast(Buffer.from([1, 2, 3]));
    started.wss.broadcast(new Uint8Array([0, 4, 5, 0]).subarray(1, 3));
    for (const messages of await Promise.all(received)) {
      assert.deepEqual(messages.map((ev) => [ev.isBinary, ev.isBinary ? [...ev.rawData] : ev.data]), [
        [false, 'hello all'],
        [true, [1, 2, 3]],
        [true, [4, 5]],
      ]);
    }

    received = all.map((ws, i) => collectMessages(ws, i === 0 ? 1 : 2));
    started.wss.broadcast('not for the first', { except: skipped! });
    started.wss.broadcast(Buffer.from('text after all'), { binary: false });
    const [first, ...others] = await Promise.all(received);
    assert.deepEqual(first!.map((ev) => [ev.isBinary, ev.data]), [[false, 'text after all']]);
    for (const messages of others) {
      assert.deepEqual(messages.map((ev) => [ev.isBinary, ev.data]), [[false, 'not for the first'], [false, 'text after all']]);
    }
  });

  test('many clients receive the same bytes', async (t) => {
    const started = await startServer(t);
    const all = await clients(t, started, 25);
    const payload = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 31 + 7) & 0xff));
    const received = all.map((ws) => collectMessages(ws, 2));
    started.wss.broadcast(payload);
    started.wss.broadcast('✓ done');
    for (const [binary, text] of await Promise.all(received)) {
      assert.ok(binary!.rawData.equals(payload));
      assert.equal(text!.data, '✓ done');
    }
  });

  test('closing clients are skipped', async (t) => {
    const started = await startServer(t);
    const [leaving, staying] = await clients(t, started, 2);
    const [leavingServer] = [...started.wss.clients];
    const leavingGotIt: unknown[] = [];
    leaving!.on('message', (ev) => leavingGotIt.push(ev.data));
    const closed = nextClose(leaving!);
    leavingServer!.close(1000);
    const received = nextMessage(staying!);
    started.wss.broadcast('after the close');
    assert.equal((await received).data, 'after the close');
    await closed;
    assert.deepEqual(leavingGotIt, []);
  });
});

describe('close()', { timeout: 30_000 }, () => {
  test('sends 1001 to every client, emits close, calls back, stops listening', async (t) => {
    const started = await startServer(t);
    const pairs = [await connectPair(t, started), await connectPair(t, started)];
    const clientCloses = pairs.map((pair) => nextClose(pair.client));
    const closeEvent = nextEvent(started.wss, 'close');
    const callback = closeServer(started.wss);
    for (const ev of await Promise.all(clientCloses)) {
      assert.deepEqual([ev.code, ev.reason, ev.wasClean], [1001, 'server shutting down', true]);
    }
    await Promise.all([closeEvent, callback]);
    assert.equal(started.wss.clients.size, 0);
    assert.equal(started.wss.address(), null);
    const refused = client(t, started.url);
    const ev: CloseEvent = await nextClose(refused);
    assert.equal(ev.code, 1006);
  });

  test('with no clients, close() completes at once', async (t) => {
    const started = await startServer(t);
    await closeServer(started.wss);
    assert.equal(started.wss.address(), null);
  });

  test('clients that never answer are dropped after closeTimeout', async (t) => {
    const started = await startServer(t, { closeTimeout: 200 });
    const socket = net.connect({ host: '127.0.0.1', port: started.port });
    t.after(() => socket.destroy());
    socket.on('error', () => {});
    socket.resume();
    const connected = nextEvent(started.wss, 'connection');
    socket.write(upgradeRequest('/'));
    await connected;
    await closeServer(started.wss);
    assert.equal(started.wss.clients.size, 0);
  });

  test('an attached http server keeps running after close()', async (t) => {
    const { server, port } = await startHttpServer(t);
    const wss = attach(t, { server, path: '/ws' });
    const ws = client(t, `ws://127.0.0.1:${port}/ws`);
    await opened(ws);
    const closed = nextClose(ws);
    await closeServer(wss);
    assert.equal((await closed).code, 1001);
    assert.ok(server.listening);
    assert.deepEqual(await httpGet(port, '/still'), { status: 200, body: 'plain /still' });
  });

  test('close(callback) on a server that has already closed still calls back', {
  }, async (t) => {
    const started = await startServer(t);
    await closeServer(started.wss);
    await withTimeout(new Promise<void>((resolve) => started.wss.close(() => resolve())), 'the second close callback', 1000);
  });

  test('a handshake still being verified when close() is called does not produce a connection', {
  }, async (t) => {
    let admit!: (result: boolean) => void;
    let asked!: () => void;
    const verifying = new Promise<void>((resolve) => (asked = resolve));
    const started = await startServer(t, {
      verifyClient: () => {
        asked();
        return new Promise<boolean>((resolve) => (admit = resolve));
      },
    });
    const late: WebSocket[] = [];
    started.wss.on('connection', (serverWs) => late.push(serverWs));
    const ws = client(t, started.url);
    const clientClosed = nextClose(ws, 2000);
    await withTimeout(verifying, 'verifyClient to be called');
    const serverClosed = closeServer(started.wss, 2000);
    admit(true);
    try {
      await Promise.all([serverClosed, clientClosed]);
    } finally {
      ws.terminate();
      for (const serverWs of late) serverWs.terminate();
    }
  });

  test('after close() the process has nothing left to wait for', async () => {
    const index = fileURLToPath(new URL('../src/index.js', import.meta.url));
    const script = `
      import { WebSocket, WebSocketServer } from ${JSON.stringify(index)};
      const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' }, () => {
        const ws = new WebSocket('ws://127.0.0.1:' + wss.address().port + '/');
        ws.onopen = () => ws.send('hi');
        ws.onclose = (ev) => console.log('client closed ' + ev.code);
      });
      wss.on('connection', (ws) => ws.on('message', () => wss.close(() => console.log('server closed'))));
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      assert.equal(await withTimeout(exited, `the child process to exit by itself (output: ${output})`, WAIT_MS * 2), 0);
    } finally {
      if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid);
    }
    assert.match(output, /client closed 1001/);
    assert.match(output, /server closed/);
  });
});

describe('malformed handshakes (raw requests)', { timeout: 30_000 }, () => {
  const without = (name: string) => upgradeRequest('/').replace(new RegExp(`${name}: [^\\r]*\\r\\n`, 'i'), '');
  const cases: Array<[string, string, number]> = [
    ['no Sec-WebSocket-Key', without('Sec-WebSocket-Key'), 400],
    ['a malformed Sec-WebSocket-Key', upgradeRequest('/').replace('dGhlIHNhbXBsZSBub25jZQ==', 'short'), 400],
    ['Sec-WebSocket-Version: 8', upgradeRequest('/').replace('Version: 13', 'Version: 8'), 426],
    ['no Sec-WebSocket-Version', without('Sec-WebSocket-Version'), 400],
    ['Upgrade: h2c', upgradeRequest('/').replace('Upgrade: websocket', 'Upgrade: h2c'), 400],
    // Node itself decides what is an upgrade: without the token this is a plain request for the 426 page.
    ['Connection without the upgrade token', upgradeRequest('/').replace('Connection: Upgrade', 'Connection: keep-alive'), 426],
    ['POST', upgradeRequest('/').replace('GET', 'POST'), 405],
    ['no Upgrade header (a plain request)', `${without('Upgrade').replace('Connection: Upgrade', 'Connection: close')}`, 426],
  ];
  for (const [name, request, status] of cases) {
    test(`${name} → ${status}`, async (t) => {
      const started = await startServer(t);
      let connections = 0;
      started.wss.on('connection', () => connections++);
      const res = await rawRequest(started.port, request);
      assert.equal(res.status, status, JSON.stringify(res));
      if (status === 426) assert.equal(res.headers.upgrade, 'websocket');
      if (name.includes('Version: 8')) assert.equal(res.headers['sec-websocket-version'], '13');
      if (status === 405) assert.equal(res.headers.allow, 'GET');
      assert.equal(connections, 0);
    });
  }

  test('a correct raw request gets 101 with the RFC 6455 sample accept key', async (t) => {
    const started = await startServer(t, { closeTimeout: 100 });
    const socket = net.connect({ host: '127.0.0.1', port: started.port });
    t.after(() => socket.destroy());
    socket.on('error', () => {});
    let text = '';
    const head = new Promise<string>((resolve) => socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (text.includes('\r\n\r\n')) resolve(text);
    }));
    socket.write(upgradeRequest('/'));
    const response = await withTimeout(head, 'the 101 response');
    assert.match(response, /^HTTP\/1\.1 101 /);
    assert.match(response, /\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/i);
  });
});
