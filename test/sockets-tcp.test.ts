// Framed TCP connections and the TCP server helper, over real sockets on the loopback.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as netConnect, createServer, type AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { setImmediate as nextLoop, setTimeout as delay } from 'node:timers/promises';
import {
  connectTcp, encodeLengthPrefixed, FramedSocket, FramingError, LengthPrefixedDecoder, lengthPrefixed, lines,
  TcpServer, type Codec, type ConnectionHandler, type TcpServerOptions,
} from '../src/sockets/index.js';
import { bounded } from './support/cli.js';

const TEST_TIMEOUT = { timeout: 60_000 };
const WAIT_MS = 20_000;

async function ipv6Loopback(): Promise<string | undefined> {
  const server = createServer();
  try {
    server.listen(0, '::1');
    await bounded(once(server, 'listening'), 5000, () => 'listen on ::1');
    return undefined;
  } catch (err) {
    return `no IPv6 loopback on this machine (${(err as Error).message})`;
  } finally {
    server.close();
  }
}
const NO_IPV6 = await ipv6Loopback();

/** Runs `body` against a listening server, which is closed (bounded) whatever happens. */
async function withServer<Out, In>(
  server: TcpServer<Out, In>,
  body: (port: number) => Promise<void>,
  host = '127.0.0.1',
): Promise<void> {
  const { port } = await server.listen(0, host);
  try {
    await body(port);
  } finally {
    await bounded(server.close(), WAIT_MS, () => `server did not close; ${server.connections.size} connections left`);
  }
}

function echoServer<Out, In>(codec: Codec<Out, In>, options: Omit<TcpServerOptions<Out, In>, 'codec'> = {}): TcpServer<Out, In> {
  const echo: ConnectionHandler<Out, In> = (connection) => {
    connection.on('message', (message) => connection.send(message as unknown as In));
  };
  return new TcpServer({ ...options, codec }, echo);
}

/** Every message until the connection ends, bounded. */
function collect<Out, In>(connection: FramedSocket<Out, In>, ms = WAIT_MS): Promise<Out[]> {
  return bounded(
    (async () => {
      const out: Out[] = [];
      for await (const message of connection) out.push(message);
      return out;
    })(),
    ms,
    () => `connection to ${connection.remote} did not end`,
  );
}

function closed<Out, In>(connection: FramedSocket<Out, In>, ms = WAIT_MS): Promise<Error | undefined> {
  if (connection.closed) return Promise.resolve(undefined);
  return bounded(
    new Promise((resolve) => connection.once('close', resolve)),
    ms,
    () => `connection to ${connection.remote} did not close`,
  );
}

function payloadFor(client: number, index: number, size: number): Buffer {
  const head = Buffer.from(`client ${client} message ${index} `);
  const payload = Buffer.alloc(Math.max(size, head.length), client % 251);
  head.copy(payload);
  return payload;
}

describe('framed TCP echo', () => {
  test('200 concurrent clients each get back exactly their own messages', TEST_TIMEOUT, async () => {
    const server = echoServer(lengthPrefixed());
    await withServer(server, async (port) => {
      const clients = Array.from({ length: 200 }, async (_, client) => {
        const connection = await connectTcp({ host: '127.0.0.1', port, codec: lengthPrefixed() });
        const sent = Array.from({ length: 20 }, (_, i) => payloadFor(client, i, [0, 10, 1500, 70_000][(client + i) % 4]!));
        const replies = collect(connection);
        for (const message of sent) connection.send(message);
        connection.end();
        assert.deepEqual(await replies, sent, `client ${client}`);
        assert.equal(await closed(connection), undefined);
      });
      await bounded(Promise.all(clients), WAIT_MS * 2, () => 'clients did not finish');
      assert.equal(server.connections.size, 0);
    });
  });

  test('writes cut at random points and sent with pauses still come back as whole messages', TEST_TIMEOUT, async () => {
    await withServer(echoServer(lengthPrefixed()), async (port) => {
      const clients = Array.from({ length: 20 }, async (_, client) => {
        const sent = Array.from({ length: 30 }, (_, i) => payloadFor(client, i, (i * 997 + client * 31) % 5000));
        const stream = Buffer.concat(sent.map((m) => encodeLengthPrefixed(m)));
        const socket = netConnect({ host: '127.0.0.1', port });
        socket.setNoDelay(true);
        const decoder = new LengthPrefixedDecoder();
        const received: Buffer[] = [];
        socket.on('data', (chunk: Buffer) => decoder.push(chunk, (m) => received.push(Buffer.from(m))));
        const ended = once(socket, 'end');
        await once(socket, 'connect');
        for (let offset = 0, step = 1; offset < stream.length; step = (step * 7 + client) % 300 || 1) {
          socket.write(stream.subarray(offset, offset + step));
          offset += step;
          if (step % 3 === 0) await nextLoop();
        }
        socket.end();
        await bounded(ended, WAIT_MS, () => `client ${client} got no end`);
        assert.deepEqual(received, sent);
        socket.destroy();
      });
      await bounded(Promise.all(clients), WAIT_MS * 2, () => 'clients did not finish');
    });
  });

  test('lines and CRLF round-trip through an echo server', TEST_TIMEOUT, async () => {
    await withServer(echoServer(lines()), async (port) => {
      const connection = await connectTcp({ host: '127.0.0.1', port, codec: lines({ crlf: true }) });
      const replies = collect(connection);
      for (const line of ['hello', 'héllo wörld', '', '🎉']) connection.send(line);
      connection.end();
      assert.deepEqual(await replies, ['hello', 'héllo wörld', '', '🎉']);
    });
  });

  test('IPv6 loopback', { ...TEST_TIMEOUT, skip: NO_IPV6 }, async () => {
    await withServer(
      echoServer(lengthPrefixed()),
      async (port) => {
        const connection = await connectTcp({ host: '::1', port, codec: lengthPrefixed() });
        assert.equal(connection.remote, `[::1]:${port}`);
        const replies = collect(connection);
        connection.send('over IPv6');
        connection.end();
        assert.deepEqual((await replies).map(String), ['over IPv6']);
      },
      '::1',
    );
  });
});

describe('limits and errors', () => {
  test('an oversize frame closes that connection only, after answering the messages before it', TEST_TIMEOUT, async () => {
    const server = echoServer(lengthPrefixed({ maxFrameSize: 1024 }));
    const clientErrors: Error[] = [];
    server.on('clientError', (err) => clientErrors.push(err));
    await withServer(server, async (port) => {
      const good = await connectTcp({ host: '127.0.0.1', port, codec: lengthPrefixed() });
      const goodReplies: string[] = [];
      good.on('message', (m) => goodReplies.push(String(m)));
      good.send('before');

      const bad = netConnect({ host: '127.0.0.1', port });
      const received: Buffer[] = [];
      bad.on('data', (chunk: Buffer) => received.push(chunk));
      const badEnded = once(bad, 'end');
      bad.write(Buffer.concat([encodeLengthPrefixed('one'), encodeLengthPrefixed('two'), Buffer.from([0, 0, 0x04, 0x01])]));
      await bounded(badEnded, WAIT_MS, () => 'the bad client was not closed');
      assert.deepEqual(Buffer.concat(received), Buffer.concat([encodeLengthPrefixed('one'), encodeLengthPrefixed('two')]));
      bad.destroy();

      assert.equal(clientErrors.length, 1);
      assert.ok(clientErrors[0] instanceof FramingError);
      assert.equal(clientErrors[0].code, 'FRAME_TOO_LARGE');
      assert.match(clientErrors[0].message, /frame of 1025 bytes exceeds the limit of 1024 bytes/);

      // The other client never noticed.
      const after = collect(good);
      good.send('after');
      good.end();
      await after;
      assert.deepEqual(goodReplies, ['before', 'after']);
    });
  });

  test('without an error listener a framing error closes the connection and is given to close', TEST_TIMEOUT, async () => {
    const raw = createServer((socket) => socket.end(Buffer.concat([encodeLengthPrefixed('fine'), Buffer.from([0, 0, 1, 0])])));
    raw.listen(0, '127.0.0.1');
    await once(raw, 'listening');
    try {
      const connection = await connectTcp({ host: '127.0.0.1', port: (raw.address() as AddressInfo).port, codec: lengthPrefixed({ maxFrameSize: 10 }) });
      const received: string[] = [];
      connection.on('message', (m) => received.push(String(m)));
      const err = await closed(connection);
      assert.ok(err instanceof FramingError);
      assert.equal(err.code, 'FRAME_TOO_LARGE');
      assert.deepEqual(received, ['fine']);
    } finally {
      raw.close();
    }
  });

  test('an async iteration throws the error after the messages before it', TEST_TIMEOUT, async () => {
    const raw = createServer((socket) => socket.end(Buffer.concat([encodeLengthPrefixed('a'), encodeLengthPrefixed('bcd').subarray(0, 5)])));
    raw.listen(0, '127.0.0.1');
    await once(raw, 'listening');
    try {
      const connection = await connectTcp({ host: '127.0.0.1', port: (raw.address() as AddressInfo).port, codec: lengthPrefixed() });
      const received: string[] = [];
      await assert.rejects(
        bounded(
          (async () => {
            for await (const m of connection) received.push(String(m));
          })(),
          WAIT_MS,
          () => 'iteration did not end',
        ),
        (err: unknown) => err instanceof FramingError && err.code === 'TRUNCATED',
      );
      assert.deepEqual(received, ['a']);
    } finally {
      raw.close();
    }
  });

  test('connections over the limit are dropped; a freed place is taken again', TEST_TIMEOUT, async () => {
    const server = echoServer(lines(), { maxConnections: 2 });
    const drops: unknown[] = [];
    server.on('drop', (peer) => drops.push(peer));
    await withServer(server, async (port) => {
      const open = async (): Promise<FramedSocket<string, string>> => {
        const connection = await connectTcp({ host: '127.0.0.1', port, codec: lines() });
        const reply = once(connection, 'message');
        connection.send('ping');
        assert.deepEqual(await bounded(reply, WAIT_MS, () => 'no reply'), ['ping']);
        return connection;
      };
      const first = await open();
      const second = await open();
      const third = await connectTcp({ host: '127.0.0.1', port, codec: lines() });
      const thirdGot: string[] = [];
      third.on('message', (m) => thirdGot.push(m));
      await closed(third);
      assert.deepEqual(thirdGot, []);
      assert.equal(drops.length, 1);

      await first.close();
      await bounded(
        (async () => {
          while (server.connections.size > 1) await delay(10);
        })(),
        WAIT_MS,
        () => 'the server did not see the close',
      );
      const fourth = await open();
      await Promise.all([second.close(), fourth.close()]);
    });
  });

  test('an idle connection is closed; the client sees a clean end', TEST_TIMEOUT, async () => {
    const server = echoServer(lines(), { idleTimeout: 100 });
    const timeouts: string[] = [];
    server.on('connection', (connection) => connection.on('timeout', () => timeouts.push(connection.remote)));
    await withServer(server, async (port) => {
      const connection = await connectTcp({ host: '127.0.0.1', port, codec: lines() });
      assert.deepEqual(await collect(connection), []);
      assert.equal(await closed(connection), undefined);
      assert.equal(timeouts.length, 1);
    });
  });

  test('a handler that throws loses its connection only', TEST_TIMEOUT, async () => {
    let calls = 0;
    const server = new TcpServer({ codec: lines() }, (connection) => {
      if (++calls === 1) throw new Error('handler bug');
      connection.on('message', (m) => connection.send(m));
    });
    const errors: string[] = [];
    server.on('clientError', (err) => errors.push(err.message));
    await withServer(server, async (port) => {
      const broken = await connectTcp({ host: '127.0.0.1', port, codec: lines() });
      assert.deepEqual(await collect(broken), []);
      const fine = await connectTcp({ host: '127.0.0.1', port, codec: lines() });
      const replies = collect(fine);
      fine.send('still here');
      fine.end();
      assert.deepEqual(await replies, ['still here']);
      assert.deepEqual(errors, ['handler bug']);
    });
  });

  test('send refuses what the codec cannot carry, and reports sends after end', TEST_TIMEOUT, async () => {
    await withServer(echoServer(lines()), async (port) => {
      const connection = await connectTcp({ host: '127.0.0.1', port, codec: lines({ maxLineLength: 5 }) });
      assert.throws(() => connection.send('too long'), RangeError);
      assert.throws(() => connection.send('a\nb'), RangeError);
      connection.end();
      const result = await new Promise<Error | undefined>((resolve) => assert.equal(connection.send('late', resolve), false));
      assert.match(String(result), /cannot send after end\(\)/);
      await bounded(connection.close(), WAIT_MS, () => 'did not close');
    });
  });

  test('connecting to a closed port is refused', TEST_TIMEOUT, async () => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    await assert.rejects(connectTcp({ host: '127.0.0.1', port, codec: lines() }), { code: 'ECONNREFUSED' });
  });
});

describe('closing without losing messages', () => {
  test('replies made after the peer half-closed still arrive, then the end', TEST_TIMEOUT, async () => {
    const server = new TcpServer({ codec: lines() }, async (connection) => {
      for await (const line of connection) {
        await delay(5);
        connection.send(`re: ${line}`);
      }
    });
    await withServer(server, async (port) => {
      const connection = await connectTcp({ host: '127.0.0.1', port, codec: lines() });
      const replies = collect(connection);
      for (let i = 0; i < 5; i++) connection.send(`q${i}`);
      connection.end();
      assert.deepEqual(await replies, ['re: q0', 're: q1', 're: q2', 're: q3', 're: q4']);
      assert.equal(await closed(connection), undefined);
    });
  });

  test('close() delivers the last messages to a peer that is still sending, without a reset', TEST_TIMEOUT, async () => {
    const count = 2000;
    const server = new TcpServer({ codec: lines() }, (connection) => {
      connection.on('message', () => {});
      for (let i = 0; i < count; i++) connection.send(`line ${i} ${'x'.repeat(500)}`);
      void connection.close();
    });
    await withServer(server, async (port) => {
      const socket = netConnect({ host: '127.0.0.1', port });
      const decoder = new LineDecoderCounter();
      socket.on('data', (chunk: Buffer) => decoder.push(chunk));
      const errors: Error[] = [];
      socket.on('error', (err) => errors.push(err));
      // The client keeps talking while the server closes: data the server has not read must not turn
      // its close into a reset that discards the lines still in flight.
      const noise = setInterval(() => socket.write('noise\n'.repeat(2000)), 1);
      await bounded(once(socket, 'end'), WAIT_MS, () => `got ${decoder.lines} lines and no end`);
      clearInterval(noise);
      socket.end();
      await bounded(once(socket, 'close'), WAIT_MS, () => 'client socket did not close');
      assert.deepEqual(errors, []);
      assert.equal(decoder.lines, count);
    });
  });

  test('graceful shutdown answers the messages already received, then ends; new clients are refused', TEST_TIMEOUT, async () => {
    let received = 0;
    const server = new TcpServer({ codec: lines() }, async (connection) => {
      connection.on('message', () => received++);
      for await (const line of connection) {
        await delay(10);
        connection.send(`done ${line}`);
      }
    });
    const { port } = await server.listen(0);
    const connection = await connectTcp({ host: '127.0.0.1', port, codec: lines() });
    const replies = collect(connection);
    for (let i = 0; i < 10; i++) connection.send(`job ${i}`);
    await bounded(
      (async () => {
        while (received < 10) await delay(5);
      })(),
      WAIT_MS,
      () => `the server received ${received} of 10`,
    );
    const closing = server.close();
    assert.deepEqual(
      await replies,
      Array.from({ length: 10 }, (_, i) => `done job ${i}`),
    );
    await bounded(closing, WAIT_MS, () => 'server did not close');
    await assert.rejects(connectTcp({ host: '127.0.0.1', port, codec: lines() }), { code: 'ECONNREFUSED' });
    await closed(connection);
  });

  test('a slow async iteration stops reading instead of buffering without bound', TEST_TIMEOUT, async () => {
    const count = 5000;
    const got: string[] = [];
    let sawPause = false;
    let finished!: () => void;
    const serverDone = new Promise<void>((resolve) => (finished = resolve));
    const server = new TcpServer({ codec: lines() }, async (connection) => {
      for await (const line of connection) {
        if (connection.socket.isPaused()) sawPause = true;
        got.push(line);
        await nextLoop();
      }
      finished();
    });
    await withServer(server, async (port) => {
      const client = await connectTcp({ host: '127.0.0.1', port, codec: lines() });
      for (let i = 0; i < count; i++) client.send(`m${i}`);
      client.end();
      await collect(client);
      await bounded(serverDone, WAIT_MS, () => `the server got ${got.length} of ${count}`);
    });
    assert.equal(got.length, count);
    assert.deepEqual(got.slice(0, 3), ['m0', 'm1', 'm2']);
    assert.equal(got[count - 1], `m${count - 1}`);
    assert.ok(sawPause, 'the socket was never paused for the slow consumer');
  });

  test('reading starts only with a consumer, so messages sent before it are kept', TEST_TIMEOUT, async () => {
    const server = new TcpServer({ codec: lines() }, (connection) => {
      connection.send('welcome');
      connection.send('second');
      connection.end();
    });
    await withServer(server, async (port) => {
      const connection = await connectTcp({ host: '127.0.0.1', port, codec: lines() });
      await delay(50);
      assert.deepEqual(await collect(connection), ['welcome', 'second']);
    });
  });
});

/** Counts lines from raw chunks, for a client that must not go through FramedSocket. */
class LineDecoderCounter {
  lines = 0;

  push(chunk: Buffer): void {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) this.lines++;
  }
}
