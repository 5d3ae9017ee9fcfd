// Slow consumers: peers that complete the handshake and then stop reading, while the server keeps
// sending. Once the OS buffers are full, what the server sends waits in user space (bufferedAmount);
// maxBufferedAmount caps it, and the slowConsumer policy says what happens at the cap: 'close' (1008,
// TCP dropped after closeTimeout) or 'drop' (the message is discarded, a 'drop' event fires). Also:
// bufferedAmount is exact, and returns to 0 with a 'drain' event once the peer reads again.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { WebSocket, type CloseEvent } from '../src/index.js';
import { Op } from './support/rawclient.js';
import { rawPair, type RawPeer } from './support/raw-peer.js';
import {
  client, collectMessages, nextEvent, opened, startServer, withTimeout, WAIT_MS, type Started,
} from './support/websocket-harness.js';

const OPTIONS = { timeout: 60_000 };
const KIB = 1024;
const MIB = 1024 * KIB;
const MESSAGE = 64 * KIB;
// Sends per connection: far beyond what the OS buffers of a loopback connection absorb (a few MiB
// here), so every flood reaches the cap; bounded so that a broken policy cannot eat the machine.
const MAX_SENDS = 320;

interface Flood {
  sent: number;
  /** Errors passed to send callbacks, in order. */
  errors: Error[];
  /** The largest bufferedAmount seen right after a send. */
  maxBuffered: number;
  /** readyState right after the first refused send. */
  stateAfterRefusal: number | null;
}

/** A fresh 64 KiB message each time, as a real producer makes them: a reused Buffer would be queued by
 * reference and cost nothing however often it waits. */
const freshMessage = (i: number) => Buffer.alloc(MESSAGE, i & 0xff);

/**
 * Sends a fresh message to `ws` once per event-loop turn while it is open, at most MAX_SENDS times.
 * Yielding between sends lets each one reach the socket before the next, as a real producer's would.
 */
async function flood(ws: WebSocket): Promise<Flood> {
  const result: Flood = { sent: 0, errors: [], maxBuffered: 0, stateAfterRefusal: null };
  for (let i = 0; i < MAX_SENDS && ws.readyState === WebSocket.OPEN; i++) {
    ws.send(freshMessage(i), (err) => {
      if (!err) return;
      if (result.errors.length === 0) result.stateAfterRefusal = ws.readyState;
      result.errors.push(err);
    });
    result.sent++;
    result.maxBuffered = Math.max(result.maxBuffered, ws.bufferedAmount);
    await nextTurn();
  }
  return result;
}

/** Opens `count` raw peers that never read, and resolves with the server's end of each. */
async function stalledPeers(t: TestContext, started: Started, count: number): Promise<Array<{ peer: RawPeer; server: WebSocket }>> {
  const pairs = [];
  for (let i = 0; i < count; i++) pairs.push(await rawPair(t, started));
  return pairs;
}

function closeEvent(ws: WebSocket): Promise<CloseEvent> {
  return new Promise((resolve) => ws.once('close', resolve));
}

/** The largest RSS seen while `work` runs, minus the RSS before it, in bytes. */
async function rssGrowth<T>(work: () => Promise<T>): Promise<{ result: T; growth: number }> {
  const before = process.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
  try {
    const result = await work();
    peak = Math.max(peak, process.memoryUsage().rss);
    return { result, growth: peak - before };
  } finally {
    clearInterval(sampler);
  }
}

describe("policy 'close'", OPTIONS, () => {
  test('20 peers that never read are each closed with 1008 after closeTimeout; RSS growth stays bounded', async (t) => {
    const peers = 20;
    const maxBufferedAmount = MIB;
    const closeTimeout = 100;
    // What the policy guarantees: per peer at most maxBufferedAmount of payload waits in user space,
    // plus the message being refused: 20 × (1 MiB + 64 KiB) ≈ 21 MiB. The rest of the bound is room
    // for frames the OS has already taken that the GC has not collected yet: what a loopback
    // connection's buffers hold, about 4 MiB per peer here, so 80 MiB if no GC ran at all.
    // Without the policy the server would hold all it was asked to send, less what the OS took:
    // 20 × (320 × 64 KiB - a few MiB), over 300 MiB.
    const bound = 150 * MIB;
    const started = await startServer(t, { maxBufferedAmount, slowConsumer: 'close', closeTimeout });
    const pairs = await stalledPeers(t, started, peers);

    const { result, growth } = await rssGrowth(() => Promise.all(pairs.map(async ({ server }) => {
      const closed = closeEvent(server);
      const stats = await flood(server);
      return { stats, close: await withTimeout(closed, 'the slow peer to be dropped', WAIT_MS) };
    })));

    for (const { stats, close } of result) {
      assert.ok(stats.sent < MAX_SENDS, 'the flood was stopped by the policy');
      assert.ok(stats.maxBuffered <= maxBufferedAmount, `bufferedAmount reached ${stats.maxBuffered}`);
      assert.match(String(stats.errors[0]?.message), /send buffer full/);
      // The closing handshake started at once; TCP was dropped only when closeTimeout ran out.
      assert.equal(stats.stateAfterRefusal, WebSocket.CLOSING);
      assert.deepEqual([close.code, close.reason, close.wasClean], [1008, 'slow consumer', false]);
    }
    assert.equal(started.wss.clients.size, 0);
    t.diagnostic(`RSS growth during the flood: ${(growth / MIB).toFixed(1)} MiB (bound ${bound / MIB} MiB)`);
    assert.ok(growth < bound, `RSS grew by ${(growth / MIB).toFixed(1)} MiB`);
    await Promise.all(pairs.map(({ peer }) => (peer.read(), peer.waitClosed())));
  });

  test('a broadcast reaches a reading client in full while stalled peers are closed', async (t) => {
    const maxBufferedAmount = MIB;
    const started = await startServer(t, { maxBufferedAmount, slowConsumer: 'close', closeTimeout: 100 });
    const pairs = await stalledPeers(t, started, 5);
    const reader = client(t, started.url);
    await opened(reader);
    const count = 200;
    const received = collectMessages(reader, count, WAIT_MS * 2);
    const closes = pairs.map(({ server }) => closeEvent(server));
    const payload = Buffer.alloc(MESSAGE, 'b');
    for (let i = 0; i < count; i++) {
      started.wss.broadcast(payload);
      await nextTurn();
    }
    const messages = await received;
    assert.ok(messages.every((ev) => ev.rawData.equals(payload)));
    for (const close of await withTimeout(Promise.all(closes), 'the stalled peers to be dropped')) {
      assert.equal(close.code, 1008);
    }
    assert.equal(reader.readyState, WebSocket.OPEN);
    assert.equal(started.wss.clients.size, 1);
  });
});

describe("policy 'drop'", OPTIONS, () => {
  test('messages over the cap are dropped with a drop event; bufferedAmount never exceeds it; the rest arrives once the peer reads', async (t) => {
    const maxBufferedAmount = MIB;
    const started = await startServer(t, { maxBufferedAmount, slowConsumer: 'drop', closeTimeout: 100 });
    const pairs = await stalledPeers(t, started, 5);

    await Promise.all(pairs.map(async ({ peer, server }) => {
      const dropped: number[] = [];
      let maxSeen = 0;
      server.on('drop', (length) => {
        dropped.push(length);
        maxSeen = Math.max(maxSeen, server.bufferedAmount);
      });
      const stats = await flood(server);
      assert.equal(stats.sent, MAX_SENDS, 'the connection stayed open through the flood');
      assert.ok(dropped.length > 0, 'some messages were dropped');
      assert.ok(dropped.every((length) => length === MESSAGE));
      assert.equal(stats.errors.length, dropped.length, 'each dropped message\'s callback got an error');
      assert.ok(Math.max(stats.maxBuffered, maxSeen) <= maxBufferedAmount);
      assert.equal(server.readyState, WebSocket.OPEN);

      const drained = nextEvent(server, 'drain');
      peer.read();
      await drained;
      assert.equal(server.bufferedAmount, 0);
      // Exactly the messages that were not dropped arrive, each whole, and nothing else.
      server.send('end');
      const delivered = MAX_SENDS - dropped.length;
      for (let i = 0; i < delivered; i++) {
        const frame = await peer.nextFrame();
        assert.deepEqual([frame.opcode, frame.fin, frame.length], [Op.Binary, true, MESSAGE]);
      }
      const last = await peer.nextFrame();
      assert.deepEqual([last.opcode, last.length], [Op.Text, 3]);
    }));
  });
});

describe('bufferedAmount', OPTIONS, () => {
  test('equals the payload bytes whose send callback has not fired, and returns to 0 with drain when the peer reads', async (t) => {
    const started = await startServer(t, { maxBufferedAmount: 64 * MIB, closeTimeout: 100 });
    const [{ peer, server }] = await stalledPeers(t, started, 1);
    let pending = 0;
    const mismatches: string[] = [];
    const errors: Error[] = [];
    const expectExact = (when: string) => {
      if (server.bufferedAmount !== pending) mismatches.push(`${when}: bufferedAmount ${server.bufferedAmount}, pending ${pending}`);
    };
    const sendCounted = (payload: Buffer | string) => {
      const length = Buffer.byteLength(payload);
      pending += length;
      server.send(payload, (err) => {
        if (err) errors.push(err);
        pending -= length;
        expectExact('in a send callback');
      });
      expectExact('after send()');
    };

    // One message per turn, sizes varied, until the OS buffers are surely full.
    for (let i = 0; i < 160; i++) {
      sendCounted(Buffer.alloc(MESSAGE + (i % 7) * 1000, 'x'));
      await nextTurn();
    }
    sendCounted('a text message counts its UTF-8 bytes: é');
    await nextTurn();
    // While the OS still took the bytes, drain fired after each write; now they wait.
    assert.ok(server.bufferedAmount > 0, 'the stalled peer left bytes waiting');

    const drained = nextEvent(server, 'drain');
    peer.read();
    await drained;
    assert.deepEqual(mismatches, []);
    assert.deepEqual(errors, []);
    assert.equal(server.bufferedAmount, 0);
    assert.equal(pending, 0);
  });

  test('a burst of sends in one tick: exact after each send and inside each callback', {
  }, async (t) => {
    const started = await startServer(t, { closeTimeout: 100 });
    const [{ peer, server }] = await stalledPeers(t, started, 1);
    peer.read();
    let pending = 0;
    const seen: Array<[number, number]> = [];
    const done = new Promise<void>((resolve) => {
      for (let i = 0; i < 5; i++) {
        pending += 1000;
        server.send(Buffer.alloc(1000), () => {
          pending -= 1000;
          seen.push([server.bufferedAmount, pending]);
          if (pending === 0) resolve();
        });
        assert.equal(server.bufferedAmount, pending);
      }
    });
    await withTimeout(done, 'the send callbacks');
    assert.equal(server.bufferedAmount, 0);
    assert.deepEqual(seen, [[4000, 4000], [3000, 3000], [2000, 2000], [1000, 1000], [0, 0]]);
  });
});
