import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Engine, HistoryQuery, HistoryResult, HubMessage } from '../src/hub/engine.js';
import { Feeds, type Outgoing } from '../src/hub/feed.js';
import { MemoryEngine } from '../src/hub/memory-engine.js';
import { Subscription } from '../src/hub/subscription.js';

describe('memory engine', () => {
  test('offsets grow per channel, with time and publisher', async () => {
    const engine = new MemoryEngine({}, () => Date.UTC(2026, 0, 1));
    const a1 = await engine.publish('a', 1, 'alice');
    const a2 = await engine.publish('a', 2);
    const b1 = await engine.publish('b', 'x');
    assert.deepEqual([a1.offset, a2.offset, b1.offset], [1, 2, 1]);
    assert.equal(a1.time, '2026-01-01T00:00:00.000Z');
    assert.equal(a1.publisher, 'alice');
    assert.equal(a2.publisher, undefined);
  });

  test('history since an offset, with limit, and the recovered flag', async () => {
    const engine = new MemoryEngine({ historySize: 5 });
    for (let i = 1; i <= 8; i++) await engine.publish('c', i);
    const all = await engine.history('c');
    assert.deepEqual(all.messages.map((m) => m.data), [4, 5, 6, 7, 8]);
    assert.equal(all.offset, 8);
    const since5 = await engine.history('c', { since: 5, limit: 2 });
    assert.deepEqual(since5.messages.map((m) => m.offset), [6, 7]);
    assert.equal(since5.recovered, true);
    assert.equal((await engine.history('c', { since: 3 })).recovered, true, 'offset 4 is the oldest kept: nothing lost');
    const since2 = await engine.history('c', { since: 2 });
    assert.equal(since2.recovered, false, 'offset 3 was dropped');
    assert.deepEqual(since2.messages.map((m) => m.offset), [4, 5, 6, 7, 8]);
    const future = await engine.history('c', { since: 50 });
    assert.equal(future.recovered, false, 'an offset this engine never issued cannot be vouched for');
    assert.deepEqual(future.messages, []);
    assert.deepEqual(await engine.history('nothing', { since: 0 }), { messages: [], offset: 0, recovered: true });
    assert.equal((await engine.history('nothing', { since: 3 })).recovered, false);
  });

  test('history is bounded by age', async () => {
    let now = 1_000_000;
    const engine = new MemoryEngine({ historyTtl: 1000 }, () => now);
    await engine.publish('t', 'old');
    now += 600;
    await engine.publish('t', 'new');
    now += 600;
    const h = await engine.history('t', { since: 0 });
    assert.deepEqual(h.messages.map((m) => m.data), ['new']);
    assert.equal(h.recovered, false);
    assert.equal(engine.stats().historyMessages, 1);
  });

  test('live subscribers and presence events', async () => {
    const engine = new MemoryEngine();
    const seen: number[] = [];
    const feed = engine.subscribe('p', (m) => seen.push(m.offset));
    await feed.ready;
    const events: string[] = [];
    engine.onPresence('p', (e) => events.push(`${e.event} ${e.member.clientId}`));
    await engine.publish('p', 'x');
    await engine.join('p', { clientId: 'c1', user: 'u' });
    await engine.join('p', { clientId: 'c1', user: 'u' });
    await engine.join('p', { clientId: 'c2' });
    assert.deepEqual((await engine.presence('p')).map((m) => m.clientId), ['c1', 'c2']);
    await engine.leave('p', 'c1');
    await engine.leave('p', 'c1');
    feed.stop();
    await engine.publish('p', 'y');
    assert.deepEqual(seen, [1]);
    assert.deepEqual(events, ['join c1', 'join c2', 'leave c1']);
  });

  test('channels that never had a message are forgotten when left', async () => {
    const engine = new MemoryEngine();
    const feed = engine.subscribe('empty', () => {});
    assert.equal(engine.stats().channels, 1);
    feed.stop();
    assert.equal(engine.stats().channels, 0);
  });
});

/** An engine whose history answers late, so live messages race the replay, as they do on Redis. */
class SlowHistory implements Engine {
  constructor(private readonly inner: MemoryEngine, private readonly beforeAnswer: () => Promise<void>) {}
  publish(channel: string, data: unknown) { return this.inner.publish(channel, data); }
  async history(channel: string, query?: HistoryQuery): Promise<HistoryResult> {
    const result = await this.inner.history(channel, query);
    await this.beforeAnswer();
    return result;
  }
  subscribe(channel: string, listener: (m: HubMessage) => void) { return this.inner.subscribe(channel, listener); }
  join() { return Promise.resolve(); }
  leave() { return Promise.resolve(); }
  presence() { return Promise.resolve([]); }
  onPresence() { return () => {}; }
  stats() { return this.inner.stats(); }
  close() { return this.inner.close(); }
}

describe('subscription resume', () => {
  test('history then live, exactly once and in order across the seam', async () => {
    const inner = new MemoryEngine();
    for (let i = 1; i <= 10; i++) await inner.publish('s', i);
    // Messages published while the history read is in flight must come after it, once each.
    const engine = new SlowHistory(inner, async () => {
      for (let i = 11; i <= 15; i++) await inner.publish('s', i);
    });
    const got: number[] = [];
    const sub = new Subscription('s', engine, new Feeds(engine), (out: Outgoing) => got.push(out.message.offset));
    const result = await sub.start(4);
    assert.deepEqual(result, { offset: 10, recovered: true });
    for (let i = 16; i <= 17; i++) await inner.publish('s', i);
    sub.goLive();
    for (let i = 18; i <= 20; i++) await inner.publish('s', i);
    assert.deepEqual(got, Array.from({ length: 16 }, (_, i) => i + 5));
    sub.stop();
    await inner.publish('s', 21);
    assert.equal(got.length, 16);
  });

  test('without since: only messages after the subscription', async () => {
    const engine = new MemoryEngine();
    await engine.publish('n', 'before');
    const got: unknown[] = [];
    const sub = new Subscription('n', engine, new Feeds(engine), (out) => got.push(out.message.data));
    assert.deepEqual(await sub.start(), { offset: 1 });
    sub.goLive();
    await engine.publish('n', 'after');
    assert.deepEqual(got, ['after']);
  });

  test('a gap in live offsets is filled from history before later messages', async () => {
    const inner = new MemoryEngine();
    const feeds = new Feeds(inner);
    const got: number[] = [];
    const sub = new Subscription('g', inner, feeds, (out) => got.push(out.message.offset));
    await sub.start(0);
    sub.goLive();
    await inner.publish('g', 'a');
    // A node that missed offsets 2 and 3: they reach history but not this node's live feed.
    sub.stop();
    await inner.publish('g', 'b');
    await inner.publish('g', 'c');
    const resumed = new Subscription('g', inner, feeds, (out) => got.push(out.message.offset));
    await resumed.start();
    resumed.lastOffset = 1;
    resumed.goLive();
    await inner.publish('g', 'd');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(got, [1, 2, 3, 4]);
  });

  test('encodings are made once and shared', async () => {
    const engine = new MemoryEngine();
    const feeds = new Feeds(engine);
    const outs: Outgoing[] = [];
    for (let i = 0; i < 3; i++) feeds.add('e', { deliver: (out) => outs.push(out) });
    await engine.publish('e', { hello: 'world' });
    assert.equal(outs.length, 3);
    assert.ok(outs.every((o) => o === outs[0]));
    assert.equal(outs[0]!.frame, outs[1]!.frame);
    assert.match(outs[0]!.sse, /^id: 1\nevent: message\ndata: \{"type":"message","channel":"e","offset":1,/);
  });
});
