// The `duplex` command as a user runs it: spawned processes, real sockets on 127.0.0.1, pipes.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { constants as zlibConstants, inflateRawSync } from 'node:zlib';
import { WebSocketServer as WsServer, type WebSocket as WsSocket } from 'ws';
import { bounded, CLI_PATH, killAll, Peer, runCli, startServerCli } from './support/cli.js';
import { Op, RawClient } from './support/rawclient.js';

const TEST_TIMEOUT = { timeout: 20_000 };

after(killAll);

/** Exactly one line on stderr, with no stack trace. */
function assertOneLine(stderr: string, pattern: RegExp): void {
  assert.match(stderr, /^[^\n]*\n$/, `expected one line, got ${JSON.stringify(stderr)}`);
  assert.match(stderr, pattern);
}

/** A `ws` server on a free port; `setup` wires each connection. Closed by `close()`. */
async function wsServer(
  setup: (ws: WsSocket, req: IncomingMessage) => void,
  options: ConstructorParameters<typeof WsServer>[0] = {},
): Promise<{ url: string; server: WsServer; close: () => Promise<void> }> {
  const server = new WsServer({ ...options, port: 0, host: '127.0.0.1' });
  await bounded(once(server, 'listening'), 5000, () => 'ws server did not listen');
  server.on('connection', setup);
  const { port } = server.address() as AddressInfo;
  const close = async (): Promise<void> => {
    for (const client of server.clients) client.terminate();
    await bounded(new Promise<void>((resolve) => server.close(() => resolve())), 5000, () => 'ws server did not close');
  };
  return { url: `ws://127.0.0.1:${port}`, server, close };
}

async function listen(server: Server | ReturnType<typeof createHttpServer>): Promise<number> {
  server.listen(0, '127.0.0.1');
  await bounded(once(server, 'listening'), 5000, () => 'server did not listen');
  return (server.address() as AddressInfo).port;
}

function closeServer(server: Server | ReturnType<typeof createHttpServer>): Promise<void> {
  return bounded(new Promise<void>((resolve) => server.close(() => resolve())), 5000, () => 'server did not close');
}

/** A shell pipeline, for the cases where what matters is exactly how a user would type it. */
function shell(command: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('sh', ['-c', command], { timeout: 10_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe('duplex (program)', () => {
  test('the built entry point starts with a node shebang', () => {
    assert.equal(readFileSync(CLI_PATH, 'utf8').split('\n')[0], '#!/usr/bin/env node');
  });

  test('--version prints the version from package.json', TEST_TIMEOUT, async () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    const exit = await runCli(['--version']).exited();
    assert.equal(exit.code, 0);
    assert.equal(exit.stdout, `${version}\n`);
  });

  test('--help lists the commands', TEST_TIMEOUT, async () => {
    const exit = await runCli(['--help']).exited();
    assert.equal(exit.code, 0);
    for (const command of ['echo', 'connect', 'serve', 'publish', 'subscribe', 'token']) assert.match(exit.stdout, new RegExp(`^\\s+${command}\\b`, 'm'));
  });

  test('an unknown command, an unknown option or a bad port is one line and a failure', TEST_TIMEOUT, async () => {
    const cases: [string[], RegExp][] = [
      [['bogus'], /unknown command 'bogus'/],
      [['echo', '--bogus'], /unknown option '--bogus'/],
      [['echo', '--port', '70000'], /port/],
      [['connect', 'ws://127.0.0.1:1', '-H', 'no colon'], /Name: value/],
    ];
    for (const [args, pattern] of cases) {
      const exit = await runCli(args).exited();
      assert.notEqual(exit.code, 0, args.join(' '));
      assertOneLine(exit.stderr, pattern);
    }
  });
});

describe('duplex echo', () => {
  test('echoes text as text and binary as binary; SIGTERM closes with 1001 and exits 0', TEST_TIMEOUT, async () => {
    const { cli, url } = await startServerCli(['echo', '--port', '0']);
    assert.match(url, /^ws:\/\/127\.0\.0\.1:[1-9]\d*$/);
    const peer = await Peer.open(url);
    peer.ws.send('hello');
    assert.deepEqual(await peer.next(), { data: Buffer.from('hello'), isBinary: false });
    peer.ws.send(Buffer.from([0, 1, 2, 255]));
    assert.deepEqual(await peer.next(), { data: Buffer.from([0, 1, 2, 255]), isBinary: true });

    cli.signal('SIGTERM');
    assert.equal((await peer.waitClosed()).code, 1001);
    const exit = await cli.exited();
    assert.equal(exit.code, 0);
    assert.equal(exit.stdout, `listening on ${url}\n`);
    assert.equal(exit.stderr, '');
  });

  test('--broadcast sends each message to every other client, not back to the sender', TEST_TIMEOUT, async () => {
    const { cli, url } = await startServerCli(['echo', '--port', '0', '--broadcast']);
    const [a, b, c] = await Promise.all([Peer.open(url), Peer.open(url), Peer.open(url)]);
    a!.ws.send('from a');
    assert.deepEqual(await b!.next(), { data: Buffer.from('from a'), isBinary: false });
    assert.deepEqual(await c!.next(), { data: Buffer.from('from a'), isBinary: false });
    // b only sends after "from a" went out, so had a received its own message it would come first.
    b!.ws.send(Buffer.from([7]));
    assert.deepEqual(await a!.next(), { data: Buffer.from([7]), isBinary: true });
    assert.deepEqual(await c!.next(), { data: Buffer.from([7]), isBinary: true });

    cli.signal('SIGINT');
    assert.equal((await cli.exited()).code, 0);
  });

  test('--deflate accepts permessage-deflate and compresses what it echoes; without it the offer is declined', TEST_TIMEOUT, async () => {
    const text = 'compress me, '.repeat(400);
    for (const deflate of [true, false]) {
      const { cli, url } = await startServerCli(['echo', '--port', '0', ...(deflate ? ['--deflate'] : [])]);
      const client = await RawClient.connect(url, { extensions: 'permessage-deflate; client_max_window_bits' });
      try {
        assert.equal(client.extensions, deflate ? 'permessage-deflate' : '');
        await client.send({ opcode: Op.Text, payload: text });
        const echo = await client.nextMessage();
        assert.equal(echo.compressed, deflate, 'RSV1 on the echo');
        const payload = deflate ? inflateRawSync(echo.data, { finishFlush: zlibConstants.Z_SYNC_FLUSH }) : echo.data;
        assert.equal(payload.toString(), text);
        assert.deepEqual(client.violations, []);
      } finally {
        client.destroy();
        cli.signal('SIGTERM');
        assert.equal((await cli.exited()).code, 0);
      }
    }
  });

  test('a port in use is one line and exit 1', TEST_TIMEOUT, async () => {
    const blocker = createTcpServer();
    const port = await listen(blocker);
    try {
      const exit = await runCli(['echo', '--port', String(port)]).exited();
      assert.equal(exit.code, 1);
      assertOneLine(exit.stderr, new RegExp(`^duplex: cannot listen on 127\\.0\\.0\\.1:${port}: address already in use`));
    } finally {
      await closeServer(blocker);
    }
  });
});

describe('duplex connect', () => {
  test('in a shell pipe it prints the echoes and exits 0 after the close handshake', TEST_TIMEOUT, async () => {
    const { cli, url } = await startServerCli(['echo', '--port', '0']);
    try {
      const result = await shell(`printf 'a\\nb\\n' | '${process.execPath}' '${CLI_PATH}' connect ${url}`);
      assert.deepEqual(result, { code: 0, stdout: 'a\nb\n', stderr: '' });
    } finally {
      cli.signal('SIGTERM');
      await cli.exited();
    }
  });

  test('prints binary as base64, sends lines in order, closes with 1000', TEST_TIMEOUT, async () => {
    let closedWith: Promise<[number, Buffer]> | undefined;
    const server = await wsServer((ws) => {
      closedWith = once(ws, 'close') as Promise<[number, Buffer]>;
      ws.send(Buffer.from([0xde, 0xad, 0xbe, 0xef]));
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
    try {
      const exit = await runCli(['connect', server.url], { input: 'one\n\nthree' }).exited();
      assert.equal(exit.stderr, '');
      assert.equal(exit.code, 0);
      assert.equal(exit.stdout, '3q2+7w==\none\n\nthree\n');
      assert.equal((await bounded(closedWith!, 5000, () => 'server saw no close'))[0], 1000);
    } finally {
      await server.close();
    }
  });

  test('--binary sends each line as a binary message', TEST_TIMEOUT, async () => {
    const kinds: boolean[] = [];
    const server = await wsServer((ws) => {
      ws.on('message', (data, isBinary) => {
        kinds.push(isBinary);
        ws.send(data, { binary: isBinary });
      });
    });
    try {
      const exit = await runCli(['connect', server.url, '--binary'], { input: 'hi\n' }).exited();
      assert.equal(exit.code, 0);
      assert.equal(exit.stdout, `${Buffer.from('hi').toString('base64')}\n`);
      assert.deepEqual(kinds, [true]);
    } finally {
      await server.close();
    }
  });

  test('--deflate offers permessage-deflate and sends long lines compressed', TEST_TIMEOUT, async () => {
    const line = 'a long line that is worth compressing '.repeat(50);
    let offer: string | undefined;
    const firstBytes: number[] = [];
    const server = await wsServer(
      (ws, req) => {
        offer = req.headers['sec-websocket-extensions'];
        // The first byte of the first frame: FIN, RSV1 (compressed) and the opcode.
        req.socket.once('data', (chunk: Buffer) => firstBytes.push(chunk[0]!));
        // Uncompressed echoes: a compressed message arriving right before the server's FIN is lost
        // (see W.1 in conformance-deflate.test.ts).
        ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary, compress: false }));
      },
      { perMessageDeflate: true },
    );
    try {
      const exit = await runCli(['connect', server.url, '--deflate'], { input: `${line}\nshort\n` }).exited();
      assert.equal(exit.stderr, '');
      assert.equal(exit.code, 0);
      assert.equal(exit.stdout, `${line}\nshort\n`);
      assert.match(offer ?? '', /^permessage-deflate\b/);
      assert.deepEqual(firstBytes, [0xc1], 'a final, compressed text frame');
    } finally {
      await server.close();
    }
  });

  test('stdin written before the server accepts is queued, not lost', TEST_TIMEOUT, async () => {
    let arrived!: () => void;
    const handshakeStarted = new Promise<void>((resolve) => (arrived = resolve));
    let accept!: () => void;
    const server = await wsServer((ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })), {
      verifyClient: (_info, done) => {
        accept = () => done(true);
        arrived();
      },
    });
    try {
      const cli = runCli(['connect', server.url], { input: 'early\nbird\n' });
      await bounded(handshakeStarted, 5000, () => 'no handshake');
      // Gives the client time to read all of stdin (and its end) while still connecting; the result
      // must be the same however long this is.
      await delay(300);
      accept();
      const exit = await cli.exited();
      assert.equal(exit.code, 0);
      assert.equal(exit.stdout, 'early\nbird\n');
    } finally {
      await server.close();
    }
  });

  test('--wait keeps the connection open after the end of stdin until the server closes', TEST_TIMEOUT, async () => {
    let clientClosedFirst: boolean | undefined;
    const server = await wsServer((ws) => {
      ws.on('message', () => {
        // Long enough that a client closing at the end of its input would have done so by now.
        setTimeout(() => {
          clientClosedFirst = ws.readyState !== ws.OPEN;
          ws.send('late');
          ws.close(1000, 'bye');
        }, 300);
      });
    });
    try {
      const exit = await runCli(['connect', server.url, '--wait'], { input: 'a\n' }).exited();
      assert.equal(clientClosedFirst, false);
      assert.equal(exit.stdout, 'late\n');
      assertOneLine(exit.stderr, /^duplex: closed by server: 1000 bye$/m);
      assert.equal(exit.code, 0);
    } finally {
      await server.close();
    }
  });

  test('a close by the server with another code is reported and exits 1', TEST_TIMEOUT, async () => {
    const server = await wsServer((ws) => ws.close(4001, 'go away'));
    try {
      const cli = runCli(['connect', server.url]);
      const exit = await cli.exited();
      assert.equal(exit.code, 1);
      assertOneLine(exit.stderr, /^duplex: closed by server: 4001 go away$/m);
    } finally {
      await server.close();
    }
  });

  test('offers --protocol and sends -H headers', TEST_TIMEOUT, async () => {
    const server = await wsServer(
      (ws, req) => {
        ws.send(`${ws.protocol} ${req.headers['x-token']}`);
        ws.close(1000);
      },
      { handleProtocols: (offered) => (offered.has('chat') ? 'chat' : false) },
    );
    try {
      const args = ['connect', server.url, '--protocol', 'other', '--protocol', 'chat', '-H', 'X-Token: s3cret'];
      const exit = await runCli(args).exited();
      assert.equal(exit.stdout, 'chat s3cret\n');
      assert.equal(exit.code, 0);
    } finally {
      await server.close();
    }
  });

  test('a refused connection is one line and exit 1', TEST_TIMEOUT, async () => {
    const probe = createTcpServer();
    const port = await listen(probe);
    await closeServer(probe);
    const exit = await runCli(['connect', `ws://127.0.0.1:${port}`], { input: 'lost\n' }).exited();
    assert.equal(exit.code, 1);
    assert.equal(exit.stdout, '');
    assertOneLine(exit.stderr, new RegExp(`^duplex: cannot connect to ws://127\\.0\\.0\\.1:${port}: connection refused$`, 'm'));
  });

  test('a bad URL is one line and exit 1', TEST_TIMEOUT, async () => {
    for (const url of ['not a url', 'ftp://127.0.0.1/', 'ws://127.0.0.1/#fragment']) {
      const exit = await runCli(['connect', url]).exited();
      assert.equal(exit.code, 1, url);
      assertOneLine(exit.stderr, /^duplex: cannot connect to /);
    }
  });

  test('a handshake refused with 404 is one line and exit 1', TEST_TIMEOUT, async () => {
    const server = createHttpServer((_req, res) => res.writeHead(404).end('nothing here'));
    const port = await listen(server);
    try {
      const exit = await runCli(['connect', `ws://127.0.0.1:${port}/nope`]).exited();
      assert.equal(exit.code, 1);
      assertOneLine(exit.stderr, /^duplex: cannot connect to ws:\/\/127\.0\.0\.1:\d+\/nope: .*404/);
    } finally {
      server.closeAllConnections();
      await closeServer(server);
    }
  });

  test('a server that never answers the handshake times out: one line and exit 1', TEST_TIMEOUT, async () => {
    const sockets = new Set<Socket>();
    const silent = createTcpServer((socket) => sockets.add(socket.on('error', () => {})));
    const port = await listen(silent);
    try {
      const exit = await runCli(['connect', `ws://127.0.0.1:${port}`, '--handshake-timeout', '200']).exited();
      assert.equal(exit.code, 1);
      assertOneLine(exit.stderr, /^duplex: cannot connect to /);
    } finally {
      for (const socket of sockets) socket.destroy();
      await closeServer(silent);
    }
  });

  test('SIGTERM closes with 1000 and exits 0', TEST_TIMEOUT, async () => {
    let closedWith: Promise<[number, Buffer]> | undefined;
    const server = await wsServer((ws) => {
      closedWith = once(ws, 'close') as Promise<[number, Buffer]>;
      ws.send('ready');
    });
    try {
      const cli = runCli(['connect', server.url]);
      await cli.waitFor('stdout', /^ready\n/);
      cli.signal('SIGTERM');
      const exit = await cli.exited();
      assert.equal(exit.code, 0);
      assert.equal((await bounded(closedWith!, 5000, () => 'server saw no close'))[0], 1000);
    } finally {
      await server.close();
    }
  });
});

describe('duplex serve', () => {
  test('answers /healthz and /, speaks the hub protocol on /ws, exits 0 on SIGTERM', TEST_TIMEOUT, async () => {
    // More of the hub command is in hub-cli.test.ts.
    const { cli, url } = await startServerCli(['serve', '--port', '0', '--host', '127.0.0.1', '--log', 'human']);
    assert.match(url, /^http:\/\/127\.0\.0\.1:[1-9]\d*$/);

    const health = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5000) });
    assert.equal(health.status, 200);
    assert.match(await health.text(), /^ok/);

    const page = await fetch(`${url}/`, { signal: AbortSignal.timeout(5000) });
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    const html = await page.text();
    assert.match(html, /<title>duplex<\/title>/);
    assert.match(html, /\/ws/);
    assert.doesNotMatch(html, /(src|href)\s*=\s*["']?(https?:)?\/\//i, 'the page loads nothing from elsewhere');

    const missing = await fetch(`${url}/nope`, { signal: AbortSignal.timeout(5000) });
    assert.equal(missing.status, 404);
    await missing.arrayBuffer();

    const wsUrl = `${url.replace(/^http/, 'ws')}/ws`;
    const [a, b] = await Promise.all([Peer.open(wsUrl), Peer.open(wsUrl)]);
    // The next envelope of a type; presence events come in between.
    const envelope = async (peer: Peer, type: string): Promise<Record<string, unknown>> => {
      for (;;) {
        const received = JSON.parse((await peer.next()).data.toString()) as Record<string, unknown>;
        if (received.type === type) return received;
      }
    };
    for (const peer of [a!, b!]) {
      peer.ws.send(JSON.stringify({ type: 'subscribe', channel: 'lobby', id: 1 }));
      assert.deepEqual(await envelope(peer, 'subscribed'), { type: 'subscribed', channel: 'lobby', offset: 0, id: 1 });
    }
    a!.ws.send(JSON.stringify({ type: 'publish', channel: 'lobby', data: { text: 'hi all' } }));
    for (const peer of [a!, b!]) {
      const { time, ...message } = await envelope(peer, 'message');
      assert.equal(typeof time, 'string');
      assert.deepEqual(message, { type: 'message', channel: 'lobby', offset: 1, data: { text: 'hi all' }, publisher: 'anonymous' });
    }

    cli.signal('SIGTERM');
    assert.equal((await a!.waitClosed()).code, 1001);
    assert.equal((await b!.waitClosed()).code, 1001);
    const exit = await cli.exited();
    assert.equal(exit.code, 0);
    assert.equal(exit.stderr, '');
  });
});
