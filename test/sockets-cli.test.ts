// `duplex tcp …` and `duplex udp …` as a user runs them: spawned processes, stdin and stdout, real
// sockets on the loopback, error messages and exit statuses.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect as netConnect, createServer, type AddressInfo, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import {
  bindUdp, connectTcp, encodeLengthPrefixed, lengthPrefixed, lines, TcpServer, type FramedSocket,
} from '../src/sockets/index.js';
import { bounded, killAll, runCli, startServerCli, type CliProcess } from './support/cli.js';

const TEST_TIMEOUT = { timeout: 60_000 };
const WAIT_MS = 15_000;

after(killAll);

async function ipv6Loopback(): Promise<string | undefined> {
  const socket = createSocket('udp6');
  try {
    socket.bind(0, '::1');
    await bounded(once(socket, 'listening'), 5000, () => 'bind ::1');
    return undefined;
  } catch (err) {
    return `no IPv6 loopback on this machine (${(err as Error).message})`;
  } finally {
    socket.close();
  }
}
const NO_IPV6 = await ipv6Loopback();

/** Exactly one line on stderr, with no stack trace. */
function assertOneLine(stderr: string, pattern: RegExp): void {
  assert.match(stderr, /^[^\n]*\n$/, `expected one line, got ${JSON.stringify(stderr)}`);
  assert.match(stderr.slice(0, -1), pattern);
}

function portOf(endpoint: string): number {
  return Number(endpoint.slice(endpoint.lastIndexOf(':') + 1));
}

/** A server command's address, announced on stderr when stdout carries data. */
async function listeningOnStderr(cli: CliProcess): Promise<string> {
  const [, endpoint] = await cli.waitFor('stderr', /^listening on (\S+)\n/m);
  return endpoint!;
}

async function stopServer(cli: CliProcess): Promise<void> {
  cli.signal('SIGTERM');
  const exit = await cli.exited();
  assert.equal(exit.code, 0, `stderr: ${exit.stderr}`);
}

/** A free port: listened on, then released. */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A plain TCP server; `close` also destroys the connections it still has. */
async function listenRaw(onSocket: (socket: Socket) => void): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onSocket(socket);
  });
  server.listen(0, '127.0.0.1');
  await bounded(once(server, 'listening'), 5000, () => 'server did not listen');
  const close = async (): Promise<void> => {
    for (const socket of sockets) socket.destroy();
    await bounded(new Promise((resolve) => server.close(resolve)), 5000, () => 'server did not close');
  };
  return { port: (server.address() as AddressInfo).port, close };
}

/** Every message until the connection ends, bounded. */
function collect<Out, In>(connection: FramedSocket<Out, In>): Promise<Out[]> {
  return bounded(
    (async () => {
      const out: Out[] = [];
      for await (const message of connection) out.push(message);
      return out;
    })(),
    WAIT_MS,
    () => 'connection did not end',
  );
}

describe('duplex tcp echo', () => {
  test('--lines --upper answers every line in upper case, to 20 clients at once; SIGTERM exits 0', TEST_TIMEOUT, async () => {
    const { cli, url } = await startServerCli(['tcp', 'echo', '--port', '0', '--lines', '--upper']);
    assert.match(url, /^127\.0\.0\.1:\d+$/);
    const port = portOf(url);
    await Promise.all(
      Array.from({ length: 20 }, async (_, client) => {
        const connection = await connectTcp({ host: '127.0.0.1', port, codec: lines() });
        const sent = Array.from({ length: 10 }, (_, i) => `client ${client} says héllo ${i}`);
        const replies = collect(connection);
        for (const line of sent) connection.send(line);
        connection.end();
        assert.deepEqual(await replies, sent.map((line) => line.toUpperCase()));
      }),
    );
    await stopServer(cli);
    assert.equal(cli.stderr, '');
  });

  test('--frames echoes to 200 concurrent clients, each getting its own messages', TEST_TIMEOUT, async () => {
    const { cli, url } = await startServerCli(['tcp', 'echo', '--port', '0', '--frames']);
    const port = portOf(url);
    await bounded(
      Promise.all(
        Array.from({ length: 200 }, async (_, client) => {
          const connection = await connectTcp({ host: '127.0.0.1', port, codec: lengthPrefixed() });
          const sent = Array.from({ length: 5 }, (_, i) => Buffer.alloc(i * 3000 + 1, `${client}/${i};`));
          const replies = collect(connection);
          for (const message of sent) connection.send(message);
          connection.end();
          assert.deepEqual(await replies, sent, `client ${client}`);
        }),
      ),
      WAIT_MS * 2,
      () => 'clients did not finish',
    );
    await stopServer(cli);
  });

  test('without --lines or --frames it echoes raw bytes; --upper changes ASCII letters only', TEST_TIMEOUT, async () => {
    const { cli, url } = await startServerCli(['tcp', 'echo', '--port', '0', '--upper']);
    const socket = netConnect({ host: '127.0.0.1', port: portOf(url) });
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    const ended = once(socket, 'end');
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    socket.end(bytes);
    await bounded(ended, WAIT_MS, () => 'no end');
    const expected = Buffer.from(bytes.map((b) => (b >= 0x61 && b <= 0x7a ? b - 0x20 : b)));
    assert.deepEqual(Buffer.concat(received), expected);
    socket.destroy();
    await stopServer(cli);
  });

  test('an oversize frame closes that client with a line on stderr; the others go on', TEST_TIMEOUT, async () => {
    const { cli, url } = await startServerCli(['tcp', 'echo', '--port', '0', '--frames', '--max-size', '10']);
    const port = portOf(url);
    const good = await connectTcp({ host: '127.0.0.1', port, codec: lengthPrefixed() });
    const goodReplies = collect(good);
    const bad = await connectTcp({ host: '127.0.0.1', port, codec: lengthPrefixed() });
    const badReplies = collect(bad);
    bad.send('fine');
    bad.send('eleven byte');
    assert.deepEqual((await badReplies).map(String), ['fine']);
    await cli.waitFor('stderr', /\n/);
    assertOneLine(cli.stderr, /^duplex: 127\.0\.0\.1:\d+: frame of 11 bytes exceeds the limit of 10 bytes$/m);
    good.send('still ok');
    good.end();
    assert.deepEqual((await goodReplies).map(String), ['still ok']);
    await stopServer(cli);
  });

  test('--max-connections refuses clients beyond the limit', TEST_TIMEOUT, async () => {
    const { cli, url } = await startServerCli(['tcp', 'echo', '--port', '0', '--lines', '--max-connections', '1']);
    const port = portOf(url);
    const first = await connectTcp({ host: '127.0.0.1', port, codec: lines() });
    const firstReplies = collect(first);
    first.send('first');
    await bounded(once(first, 'message'), WAIT_MS, () => 'no echo');
    const second = await connectTcp({ host: '127.0.0.1', port, codec: lines() });
    assert.deepEqual(await collect(second), []);
    await cli.waitFor('stderr', /refused/);
    assertOneLine(cli.stderr, /^duplex: 127\.0\.0\.1:\d+: refused, connection limit \(1\) reached$/);
    first.end();
    assert.deepEqual(await firstReplies, ['first']);
    await stopServer(cli);
  });

  test('a port in use is one line and exit status 1', TEST_TIMEOUT, async () => {
    const { close, port } = await listenRaw(() => {});
    try {
      const exit = await runCli(['tcp', 'echo', '--port', String(port)]).exited();
      assert.equal(exit.code, 1);
      assertOneLine(exit.stderr, new RegExp(`^duplex: cannot listen on 127\\.0\\.0\\.1:${port}: address already in use$`));
    } finally {
      await close();
    }
  });
});

describe('duplex tcp connect', () => {
  test('--lines sends stdin lines and prints the replies; the end of stdin half-closes; exit 0', TEST_TIMEOUT, async () => {
    const server = new TcpServer({ codec: lines() }, async (connection) => {
      for await (const line of connection) connection.send(`got ${line}`);
    });
    const { port } = await server.listen(0);
    try {
      const exit = await runCli(['tcp', 'connect', `127.0.0.1:${port}`, '--lines'], { input: 'one\r\ntwo\n\nlast' }).exited();
      assert.equal(exit.stderr, '');
      assert.equal(exit.stdout, 'got one\ngot two\ngot \ngot last\n');
      assert.equal(exit.code, 0);
    } finally {
      await server.close();
    }
  });

  test('is full duplex: output arrives while stdin is still open, input goes out while output flows', TEST_TIMEOUT, async () => {
    let peer: Socket | undefined;
    const { close, port } = await listenRaw((socket) => {
      peer = socket;
      socket.write('greeting before any input\n');
      socket.on('data', (chunk: Buffer) => socket.write(`echo:${chunk.toString()}`));
      socket.on('end', () => socket.end('bye\n'));
    });
    try {
      const cli = runCli(['tcp', 'connect', `127.0.0.1:${port}`]);
      await cli.waitFor('stdout', /greeting before any input\n/);
      cli.child.stdin.write('ping\n');
      await cli.waitFor('stdout', /echo:ping\n/);
      cli.child.stdin.end();
      const exit = await cli.exited();
      assert.equal(exit.code, 0);
      assert.equal(exit.stdout, 'greeting before any input\necho:ping\nbye\n');
      assert.ok(peer);
    } finally {
      await close();
    }
  });

  test('raw mode passes every byte value through unchanged', TEST_TIMEOUT, async () => {
    const received: Buffer[] = [];
    const { close, port } = await listenRaw((socket) => {
      socket.on('data', (chunk: Buffer) => received.push(chunk));
      socket.on('end', () => socket.end());
    });
    try {
      const bytes = Buffer.from(Array.from({ length: 4096 }, (_, i) => i % 256));
      const cli = runCli(['tcp', 'connect', `127.0.0.1:${port}`]);
      cli.child.stdin.end(bytes);
      const exit = await cli.exited();
      assert.equal(exit.code, 0);
      assert.deepEqual(Buffer.concat(received), bytes);
    } finally {
      await close();
    }
  });

  test('--frames sends a frame per stdin line and prints a line per frame', TEST_TIMEOUT, async () => {
    const server = new TcpServer({ codec: lengthPrefixed() }, async (connection) => {
      for await (const payload of connection) connection.send(Buffer.concat([Buffer.from('['), payload, Buffer.from(']')]));
    });
    const { port } = await server.listen(0);
    try {
      const exit = await runCli(['tcp', 'connect', `127.0.0.1:${port}`, '--frames'], { input: 'alpha\nbeta\n' }).exited();
      assert.equal(exit.code, 0);
      assert.equal(exit.stdout, '[alpha]\n[beta]\n');
    } finally {
      await server.close();
    }
  });

  test('an oversize frame from the peer: one line, exit 1', TEST_TIMEOUT, async () => {
    const { close, port } = await listenRaw((socket) => {
      socket.write(Buffer.concat([encodeLengthPrefixed('small'), encodeLengthPrefixed('x'.repeat(100))]));
      socket.resume();
    });
    try {
      const cli = runCli(['tcp', 'connect', `127.0.0.1:${port}`, '--frames', '--max-size', '50']);
      const exit = await cli.exited();
      assert.equal(exit.code, 1);
      assert.equal(exit.stdout, 'small\n');
      assertOneLine(exit.stderr, /^duplex: closed the connection: frame of 100 bytes exceeds the limit of 50 bytes$/);
    } finally {
      await close();
    }
  });

  test('a stdin line over --max-size: one line, exit 1', TEST_TIMEOUT, async () => {
    const server = new TcpServer({ codec: lines() }, (connection) => {
      connection.on('message', () => {});
    });
    const { port } = await server.listen(0);
    try {
      const exit = await runCli(['tcp', 'connect', `127.0.0.1:${port}`, '--lines', '--max-size', '4'], { input: 'ok\ntoo long\n' }).exited();
      assert.equal(exit.code, 1);
      assertOneLine(exit.stderr, /^duplex: stdin: line longer than the limit of 4 bytes$/);
    } finally {
      await server.close();
    }
  });

  test('SIGINT while connected closes the connection cleanly and exits 0', TEST_TIMEOUT, async () => {
    const { close, port } = await listenRaw((socket) => {
      socket.write('hi\n');
      socket.resume();
      socket.on('end', () => socket.end());
    });
    try {
      const cli = runCli(['tcp', 'connect', `127.0.0.1:${port}`]);
      await cli.waitFor('stdout', /hi\n/);
      cli.signal('SIGINT');
      const exit = await cli.exited();
      assert.equal(exit.code, 0);
      assert.equal(exit.stderr, '');
    } finally {
      await close();
    }
  });

  test('a refused connection is one line and exit status 1', TEST_TIMEOUT, async () => {
    const port = await freePort();
    const exit = await runCli(['tcp', 'connect', `127.0.0.1:${port}`], { input: '' }).exited();
    assert.equal(exit.code, 1);
    assertOneLine(exit.stderr, new RegExp(`^duplex: cannot connect to 127\\.0\\.0\\.1:${port}: connection refused$`));
  });

  test('bad arguments are one-line errors with exit status 1', TEST_TIMEOUT, async () => {
    const noPort = await runCli(['tcp', 'connect', 'localhost']).exited();
    assert.equal(noPort.code, 1);
    assert.match(noPort.stderr, /expected HOST:PORT, got "localhost"/);
    const bareV6 = await runCli(['tcp', 'connect', '::1:80']).exited();
    assert.match(bareV6.stderr, /write IPv6 addresses in brackets/);
    const both = await runCli(['tcp', 'connect', '127.0.0.1:80', '--lines', '--frames']).exited();
    assert.equal(both.code, 1);
    assert.match(both.stderr, /'--lines' cannot be used with option '--frames'/);
    const noPortOption = await runCli(['tcp', 'listen']).exited();
    assert.equal(noPortOption.code, 1);
    assert.match(noPortOption.stderr, /required option '-p, --port <port>' not specified/);
    for (const exit of [noPort, bareV6, both, noPortOption]) assert.doesNotMatch(exit.stderr, /\n\s+at /);
  });
});

describe('duplex tcp listen', () => {
  test('two commands talk both ways at once, and both exit 0 when one ends its input', TEST_TIMEOUT, async () => {
    const listener = runCli(['tcp', 'listen', '--port', '0', '--lines']);
    const endpoint = await listeningOnStderr(listener);
    const connector = runCli(['tcp', 'connect', endpoint, '--lines']);
    connector.child.stdin.write('from connect\n');
    await listener.waitFor('stdout', /from connect\n/);
    listener.child.stdin.write('from listen\n');
    await connector.waitFor('stdout', /from listen\n/);
    connector.child.stdin.end('last words\n');
    const [listened, connected] = await Promise.all([listener.exited(), connector.exited()]);
    assert.equal(listened.code, 0, listened.stderr);
    assert.equal(connected.code, 0, connected.stderr);
    assert.equal(listened.stdout, 'from connect\nlast words\n');
    assert.equal(connected.stdout, 'from listen\n');
  });

  test('SIGTERM before any connection exits 0', TEST_TIMEOUT, async () => {
    const listener = runCli(['tcp', 'listen', '--port', '0']);
    await listeningOnStderr(listener);
    await stopServer(listener);
  });
});

describe('duplex udp', () => {
  test('listen prints each datagram, with --from its sender; send exits 0', TEST_TIMEOUT, async () => {
    const listener = runCli(['udp', 'listen', '--port', '0', '--from']);
    const endpoint = await listeningOnStderr(listener);
    const sent = await runCli(['udp', 'send', endpoint, 'hello datagram']).exited();
    assert.equal(sent.code, 0, sent.stderr);
    assert.equal(sent.stdout, '');
    await listener.waitFor('stdout', /^127\.0\.0\.1:\d+ hello datagram\n$/);
    await stopServer(listener);
  });

  test('over IPv6', { ...TEST_TIMEOUT, skip: NO_IPV6 }, async () => {
    const listener = runCli(['udp', 'listen', '--port', '0', '--host', '::1']);
    const endpoint = await listeningOnStderr(listener);
    assert.match(endpoint, /^\[::1\]:\d+$/);
    const sent = await runCli(['udp', 'send', endpoint, 'over v6']).exited();
    assert.equal(sent.code, 0, sent.stderr);
    await listener.waitFor('stdout', /^over v6\n$/);
    await stopServer(listener);
  });

  test('listen drops datagrams over --max-size with a line on stderr', TEST_TIMEOUT, async () => {
    const listener = runCli(['udp', 'listen', '--port', '0', '--max-size', '4']);
    const endpoint = await listeningOnStderr(listener);
    const sender = await bindUdp();
    try {
      await sender.send('hello', { address: '127.0.0.1', port: portOf(endpoint) });
      await listener.waitFor('stderr', /dropped/);
      assert.match(listener.stderr, /^duplex: dropped a datagram of 5 bytes from 127\.0\.0\.1:\d+: over the limit of 4 bytes$/m);
      await sender.send('ok', { address: '127.0.0.1', port: portOf(endpoint) });
      await listener.waitFor('stdout', /^ok\n$/);
    } finally {
      await sender.close();
    }
    await stopServer(listener);
  });

  test('send refuses a datagram over the limit: one line, exit 1', TEST_TIMEOUT, async () => {
    const port = await freePort();
    const exit = await runCli(['udp', 'send', `127.0.0.1:${port}`, 'too long', '--max-size', '5']).exited();
    assert.equal(exit.code, 1);
    assertOneLine(exit.stderr, /^duplex: cannot send to 127\.0\.0\.1:\d+: datagram of 8 bytes exceeds the limit of 5 bytes \(udp4\)$/);
    const huge = await runCli(['udp', 'send', `127.0.0.1:${port}`, 'x'.repeat(65_508)]).exited();
    assert.equal(huge.code, 1);
    assertOneLine(huge.stderr, /datagram of 65508 bytes exceeds the limit of 65507 bytes \(udp4\)$/);
  });

  test('listen on a port in use is one line and exit status 1', TEST_TIMEOUT, async () => {
    const taken = await bindUdp();
    try {
      const exit = await runCli(['udp', 'listen', '--port', String(taken.address().port)]).exited();
      assert.equal(exit.code, 1);
      assertOneLine(exit.stderr, /^duplex: cannot listen on 127\.0\.0\.1:\d+: address already in use$/);
    } finally {
      await taken.close();
    }
  });
});
