// The limits that keep one abusive client from hurting the server or its other clients: handshake head
// size and header count (431), slow or stuck handshakes (handshakeTimeout), maxConnections (503),
// messages split into very many fragments (maxFragments → 1009) and a message that never ends
// (maxPayload → 1009, with memory staying bounded). In every case a well-behaved client of the same
// server keeps getting its echoes.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from '../src/index.js';
import { Op, RawClient } from './support/rawclient.js';
import { RawPeer } from './support/raw-peer.js';
import {
  client, connectPair, nextClose, nextEvent, nextMessage, opened, rawRequest, startEchoServer,
  upgradeRequest, withTimeout, WAIT_MS, type Started,
} from './support/websocket-harness.js';

const OPTIONS = { timeout: 30_000 };
const MIB = 1024 * 1024;
// How long past handshakeTimeout a stuck handshake may linger: Node checks its request timers only
// every connectionsCheckingInterval (the server sets it to at most the timeout), plus scheduling slack.
const TIMEOUT_SLACK_MS = 1500;

/**
 * A well-behaved client of the same server. Each call makes one round trip and fails if the echo does
 * not come back intact within WAIT_MS.
 */
async function canary(t: TestContext, started: Started): Promise<() => Promise<void>> {
  const ws = client(t, started.url);
  await opened(ws);
  let count = 0;
  return async () => {
    const text = `canary ${count++}`;
    const reply = nextMessage(ws);
    ws.send(text);
    assert.equal((await reply).data, text);
    assert.equal(ws.readyState, WebSocket.OPEN);
  };
}

/** A raw TCP connection to the server, destroyed when the test ends; `received` collects what it is sent. */
function rawSocket(t: TestContext, port: number): { socket: net.Socket; received: () => string; closed: Promise<void> } {
  const socket = net.connect({ host: '127.0.0.1', port });
  t.after(() => socket.destroy());
  socket.on('error', () => {});
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { socket, received: () => text, closed };
}

/** Expects an upgrade with these extra header lines to get 101; the raw peer is dropped at once. */
async function accepted(t: TestContext, started: Started, headerLines: string[]): Promise<void> {
  const peer = await RawPeer.open(started.port, { headerLines });
  t.after(() => peer.destroy());
  peer.destroy();
}

/** `count` header lines beyond the five of upgradeRequest(). */
function extraHeaders(count: number, valueLength = 8): string[] {
  return Array.from({ length: count }, (_, i) => `X-Extra-${i}: ${'v'.repeat(valueLength)}`);
}

const MASK = [0x5a, 0xc3, 0x3c, 0xa5];

/** One text message of `count` bytes ("x"), sent as `count` masked frames of one byte each. */
function oneByteFragments(count: number): Buffer {
  const frameSize = 7; // 2 header bytes, 4 mask bytes, 1 payload byte
  const out = Buffer.alloc(count * frameSize);
  for (let i = 0; i < count; i++) {
    const at = i * frameSize;
    out[at] = (i === count - 1 ? 0x80 : 0) | (i === 0 ? Op.Text : Op.Continuation);
    out[at + 1] = 0x80 | 1;
    out.set(MASK, at + 2);
    out[at + 6] = 0x78 ^ MASK[0]!;
  }
  return out;
}

describe('handshake limits', OPTIONS, () => {
  test('a request head over maxHeaderSize gets 431; one under it is accepted', async (t) => {
    const started = await startEchoServer(t, { maxHeaderSize: 1024 });
    const check = await canary(t, started);
    const response = await rawRequest(started.port, upgradeRequest('/', [`X-Filler: ${'a'.repeat(2000)}`]));
    assert.equal(response.status, 431);
    await accepted(t, started, [`X-Filler: ${'a'.repeat(500)}`]);
    await check();
  });

  test('more header lines than maxHeaderCount get 431; exactly maxHeaderCount are accepted', async (t) => {
    const started = await startEchoServer(t, { maxHeaderCount: 10 });
    const check = await canary(t, started);
    assert.equal((await rawRequest(started.port, upgradeRequest('/', extraHeaders(6)))).status, 431);
    await accepted(t, started, extraHeaders(5));
    await check();
  });

  test('the default maxHeaderCount is 100 lines', async (t) => {
    const started = await startEchoServer(t);
    assert.equal((await rawRequest(started.port, upgradeRequest('/', extraHeaders(96)))).status, 431);
    await accepted(t, started, extraHeaders(95));
  });

  test('slowloris: a request head sent one byte every 100 ms is cut off after handshakeTimeout', async (t) => {
    const handshakeTimeout = 500;
    const started = await startEchoServer(t, { handshakeTimeout });
    const check = await canary(t, started);
    const slow = rawSocket(t, started.port);
    const head = Buffer.from(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ${'a'.repeat(200)}`);
    let closed = false;
    void slow.closed.then(() => (closed = true));
    const trickle = (async () => {
      for (let i = 0; i < head.length && !closed; i++) {
        slow.socket.write(head.subarray(i, i + 1));
        await sleep(100);
      }
    })();
    const dropped = withTimeout(slow.closed, 'the server to drop the slow client', handshakeTimeout + TIMEOUT_SLACK_MS);
    // The others are served while the slow client holds its connection.
    for (let i = 0; i < 3; i++) await check();
    await dropped;
    await trickle;
    assert.match(slow.received(), /^(HTTP\/1\.1 408 |$)/);
    await check();
  });

  test('a client that connects and never sends a byte is dropped after handshakeTimeout', async (t) => {
    const handshakeTimeout = 500;
    const started = await startEchoServer(t, { handshakeTimeout });
    const silent = rawSocket(t, started.port);
    await withTimeout(silent.closed, 'the server to drop the silent client', handshakeTimeout + TIMEOUT_SLACK_MS);
  });

  test('an async verifyClient that never settles: the socket is destroyed after handshakeTimeout, no connection', async (t) => {
    const handshakeTimeout = 500;
    let asked = 0;
    const started = await startEchoServer(t, {
      handshakeTimeout,
      verifyClient: (info) => (info.req.url === '/stuck' ? (asked++, new Promise<boolean>(() => {})) : true),
    });
    const check = await canary(t, started);
    let connections = 0;
    started.wss.on('connection', () => connections++);
    const stuck = rawSocket(t, started.port);
    stuck.socket.write(upgradeRequest('/stuck'));
    await check();
    await withTimeout(stuck.closed, 'the stuck handshake to be dropped', handshakeTimeout + TIMEOUT_SLACK_MS);
    assert.equal(asked, 1);
    assert.equal(connections, 0);
    await check();
  });
});

describe('maxConnections', OPTIONS, () => {
  test('the connection over the limit gets 503; once one leaves a new one is accepted', async (t) => {
    const started = await startEchoServer(t, { maxConnections: 2 });
    const first = await connectPair(t, started);
    await connectPair(t, started);
    const refused = await rawRequest(started.port, upgradeRequest('/'));
    assert.equal(refused.status, 503);
    assert.equal(started.wss.clients.size, 2);

    const gone = nextClose(first.server);
    first.client.close();
    await gone;
    const again = await connectPair(t, started);
    const reply = nextMessage(again.client);
    again.client.send('back in');
    assert.equal((await reply).data, 'back in');
    assert.equal(started.wss.clients.size, 2);
  });

  test('handshakes verified at the same time cannot together exceed the limit', {
  }, async (t) => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let waiting = 0;
    let allWaiting!: () => void;
    const bothAsked = new Promise<void>((resolve) => (allWaiting = resolve));
    const started = await startEchoServer(t, {
      maxConnections: 1,
      verifyClient: async () => {
        if (++waiting === 2) allWaiting();
        await gate;
        return true;
      },
    });
    const a = client(t, started.url);
    const b = client(t, started.url);
    const outcomes = [a, b].map((ws) => new Promise<string>((resolve) => {
      ws.once('open', () => resolve('open'));
      ws.once('close', () => resolve('refused'));
    }));
    await withTimeout(bothAsked, 'both handshakes to reach verifyClient');
    release();
    const seen = await withTimeout(Promise.all(outcomes), 'both handshakes to finish');
    assert.deepEqual(seen.sort(), ['open', 'refused']);
    assert.equal(started.wss.clients.size, 1);
  });
});

describe('fragments and never-ending messages', OPTIONS, () => {
  /** Sends `count` one-byte fragments and resolves with the server's close code, or the echoed length. */
  async function sendFragments(started: Started, count: number): Promise<{ echoed?: number; closeCode?: number | null; serverCode?: number }> {
    const serverEnd = nextEvent<WebSocket>(started.wss, 'connection');
    const raw = await RawClient.connect(started.url);
    try {
      const server = await serverEnd;
      const serverClose = new Promise<number>((resolve) => server.once('close', (ev) => resolve(ev.code)));
      await raw.write(oneByteFragments(count));
      const frame = await raw.nextFrame(WAIT_MS);
      if (frame.opcode === Op.Close) {
        const serverCode = await withTimeout(serverClose, 'the server end\'s close event');
        return { closeCode: frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : null, serverCode };
      }
      assert.equal(frame.opcode, Op.Text);
      assert.ok(frame.fin);
      assert.ok(frame.payload.equals(Buffer.alloc(count, 'x')), 'the echo is the reassembled message');
      return { echoed: frame.payload.length };
    } finally {
      raw.destroy();
    }
  }

  test('maxFragments 1000: 1000 one-byte fragments make a message, 1001 close with 1009', async (t) => {
    const started = await startEchoServer(t, { maxFragments: 1000 });
    const check = await canary(t, started);
    assert.deepEqual(await sendFragments(started, 1000), { echoed: 1000 });
    assert.deepEqual(await sendFragments(started, 1001), { closeCode: 1009, serverCode: 1009 });
    await check();
  });

  test('default maxFragments (65536): 65536 one-byte fragments are accepted, 100,000 close with 1009', async (t) => {
    const started = await startEchoServer(t);
    const check = await canary(t, started);
    assert.deepEqual(await sendFragments(started, 65_536), { echoed: 65_536 });
    await check();
    assert.deepEqual(await sendFragments(started, 100_000), { closeCode: 1009, serverCode: 1009 });
    await check();
  });

  test('maxFragments 200,000: a message of 100,000 one-byte fragments is accepted intact', async (t) => {
    const started = await startEchoServer(t, { maxFragments: 200_000 });
    const check = await canary(t, started);
    assert.deepEqual(await sendFragments(started, 100_000), { echoed: 100_000 });
    await check();
  });

  test('a message that never ends is cut off at maxPayload with 1009; memory stays bounded', async (t) => {
    const maxPayload = MIB;
    // Without the limit the server would hold the whole stream: 64 MiB of message and more in garbage.
    const budget = 64 * MIB;
    // What a 1 MiB limit allows: the message so far (its buffer may double), the socket reads and the
    // client's frames not yet collected, all a few times the few MiB in flight before the close arrives.
    const memoryBound = 48 * MIB;
    const started = await startEchoServer(t, { maxPayload });
    const check = await canary(t, started);
    const serverEnd = nextEvent<WebSocket>(started.wss, 'connection');
    const raw = await RawClient.connect(started.url);
    t.after(() => raw.destroy());
    const server = await serverEnd;
    const serverClosed = nextClose(server);

    const fragment = Buffer.alloc(16 * 1024, 'f');
    const maskKey = Buffer.from(MASK);
    const before = process.memoryUsage().arrayBuffers;
    let peak = 0;
    let sent = 0;
    while (!raw.closeReceived && !raw.serverClosedTcp && sent < budget) {
      await raw.send({ opcode: sent === 0 ? Op.Binary : Op.Continuation, payload: fragment, fin: false, maskKey });
      sent += fragment.length;
      peak = Math.max(peak, process.memoryUsage().arrayBuffers - before);
      if (sent % MIB === 0) await check();
    }
    assert.ok(sent < budget, `the server let ${sent} bytes of one message in`);
    const { close } = await raw.nextClose();
    assert.equal(close.code, 1009);
    assert.equal((await serverClosed).code, 1009);
    assert.ok(peak < memoryBound, `external memory grew by ${(peak / MIB).toFixed(1)} MiB`);
    await check();
  });
});
