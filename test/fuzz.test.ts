// Fuzz tests of the WebSocket engine: mutated client streams against the sans-I/O Connection (checked
// frame by frame against an independent oracle), and against a live echo server over TCP while a
// well-behaved client must keep getting its echoes. Seeds are fixed, so the outcome is deterministic;
// a failure prints the seed of the case and a shrunk byte string that reproduces it.
// The long run of the same fuzzers is bench/fuzz.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { constants, deflateRawSync } from 'node:zlib';
import { Connection, type ConnectionHandler } from '../src/protocol/connection.js';
import { encodeFuzzFrame, type FuzzFrame } from './support/fuzz-frames.js';
import { expectFromStream } from './support/fuzz-oracle.js';
import { formatConnectionStats, fuzzConnection, FUZZ_MAX_PAYLOAD, judge, observe, observeDeflate } from './support/fuzz.js';
import { formatLiveStats, fuzzLive } from './support/fuzz-live.js';

const SEED = 0x5eed;
const KEY = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);

function clientFrame(opcode: number, payload: Buffer, extra: Partial<FuzzFrame> = {}): Buffer {
  return encodeFuzzFrame({ fin: true, rsv: 0, opcode, payload, mask: KEY, ...extra });
}

describe('connection fuzz (sans I/O)', () => {
  test('the harness notices an engine that breaks the rules', async () => {
    // A connection configured differently from the oracle stands in for a buggy engine.
    const atLimit = clientFrame(0x2, Buffer.alloc(100));
    assert.match(judge(expectFromStream(atLimit, 100), observe([Buffer.from(atLimit)], 99)) ?? '', /expected binary message of 100 bytes, got nothing/);
    // With context takeover the second message refers back into the first; a server that resets its
    // window between messages cannot inflate it.
    const first = Buffer.from('the first message, which the second one refers back to');
    const second = Buffer.from('the second message: the first message, which the second one refers back to');
    const flush = { finishFlush: constants.Z_SYNC_FLUSH };
    const deflated = [deflateRawSync(first, flush), deflateRawSync(second, { ...flush, dictionary: first })];
    const stream = Buffer.concat(deflated.map((d) => clientFrame(0x1, d.subarray(0, d.length - 4), { rsv: 4 })));
    const expected = expectFromStream(stream, 1000, { contextTakeover: true });
    assert.equal(expected.events.length, 2);
    // Copies: the connection unmasks what it receives in place.
    assert.equal(judge(expected, await observeDeflate([Buffer.from(stream)], 1000, { contextTakeover: true }, false)), null);
    assert.match(judge(expected, await observeDeflate([Buffer.from(stream)], 1000, { contextTakeover: false }, false)) ?? '', /event 1/);
  });

  test('100,000 mutated streams in random chunkings keep every invariant', async (t) => {
    const stats = await fuzzConnection({ seed: SEED, cases: 100_000 });
    for (const line of formatConnectionStats(stats).split('\n')) t.diagnostic(line);
    assert.equal(stats.cases, 100_000);
    // The streams must reach every way of ending, or the fuzzer has gone blind somewhere.
    for (const ending of ['open', 'closed', 'failed 1002', 'failed 1007', 'failed 1009']) {
      assert.ok((stats.endings[ending] ?? 0) > 500, `${ending}: ${stats.endings[ending] ?? 0} streams`);
    }
    assert.ok(stats.messages > 50_000);
  });

  test('8,000 streams with permessage-deflate: inflation, bombs, garbage, window kept or not', async (t) => {
    const stats = await fuzzConnection({ seed: SEED + 1, cases: 8_000, deflate: true });
    for (const line of formatConnectionStats(stats).split('\n')) t.diagnostic(line);
    assert.ok((stats.endings['failed 1009'] ?? 0) > 100, 'inflation bombs and oversized frames end in 1009');
    assert.ok((stats.endings['failed 1007'] ?? 0) > 500, 'garbage compressed data and bad UTF-8 end in 1007');
    assert.ok(stats.messages > 4_000 && stats.inflated > 2_000);
  });

  test('a failed connection lets go of the message it was assembling', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    // V8 frees array buffers after a collection, partly in the background: collect until the figure settles.
    const heldBytes = async () => {
      let last = -1;
      for (let round = 0; round < 20; round++) {
        gc();
        await setImmediate();
        const now = process.memoryUsage().arrayBuffers;
        if (Math.abs(now - last) < 16 * 1024) return now;
        last = now;
      }
      return last;
    };
    const handler: ConnectionHandler = { message() {}, ping() {}, pong() {}, closeReceived() {}, failed() {}, write() {} };
    const count = 200;
    const fragment = 60 * 1024;
    const retained = async (fail: boolean) => {
      const before = await heldBytes();
      const connections: Connection[] = [];
      for (let i = 0; i < count; i++) {
        const c = new Connection(handler, { role: 'server', maxPayload: FUZZ_MAX_PAYLOAD });
        // A fresh buffer per read, as from a socket: the first fragment of a message that never ends.
        c.receive(clientFrame(0x2, Buffer.alloc(fragment, i), { fin: false }));
        if (fail) c.receive(Buffer.from([0x82, 0x00])); // unmasked: 1002
        connections.push(c);
      }
      const held = (await heldBytes()) - before;
      assert.equal(connections.length, count); // keeps them alive until measured
      return held;
    };
    // The measurement sees a held message when there is one …
    assert.ok((await retained(false)) > count * fragment * 0.9);
    // … and a failed connection holds next to nothing (a few bytes each, allowing for allocator noise).
    const held = await retained(true);
    assert.ok(held < count * 1024, `${held} bytes still held by ${count} failed connections`);
  });
});

describe('live server fuzz', () => {
  // Bounds for the whole process (fuzzer, oracle and both clients included): typically about 170 MB
  // RSS and 70 MB of heap at the peak. Several times that would mean the server keeps what it should drop.
  const MAX_RSS = 768 * 1024 * 1024;
  const MAX_HEAP = 384 * 1024 * 1024;

  test('raw attackers over TCP while a good client gets every echo back', { timeout: 90_000 }, async (t) => {
    const stats = await fuzzLive({ seed: SEED, seconds: 10, attackers: 12, maxConnections: 20_000, earlyShare: 0.2, deflateShare: 0.4 });
    for (const line of formatLiveStats(stats).split('\n')) t.diagnostic(line);
    assert.deepEqual(stats.problems, []);
    assert.equal(stats.clientsAtEnd, 1);
    // How many connections fit in the time depends on the machine, so only "some" is asserted; the
    // diagnostics give the numbers (typically 10,000 to 15,000 connections here).
    assert.ok(stats.connections > 0 && stats.goodMessages > 0);
    assert.ok(stats.maxRss < MAX_RSS, `RSS peaked at ${stats.maxRss} bytes`);
    assert.ok(stats.maxHeapUsed < MAX_HEAP, `heap peaked at ${stats.maxHeapUsed} bytes`);
  });

  test('raw attackers that negotiate permessage-deflate', {
    timeout: 60_000,
    // Guards two bugs this found: a close frame arriving while an echo was being compressed lost the
    // echo and the close reply, and a failure while input was held for inflation left the socket paused.
  }, async (t) => {
    const stats = await fuzzLive({ seed: SEED + 1, seconds: 3, attackers: 12, maxConnections: 5_000, earlyShare: 0.2, deflateShare: 1, settleMs: 2_000 });
    for (const line of formatLiveStats(stats).split('\n')) t.diagnostic(line);
    assert.deepEqual(stats.problems, []);
    assert.equal(stats.clientsAtEnd, 1);
  });
});
