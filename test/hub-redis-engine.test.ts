// The Redis engine as several hub nodes see it: two or three RedisEngine instances in this process,
// on one real redis-server, stand for the nodes. History behaviour is checked against MemoryEngine on
// one table of cases; a node that dies is a child process killed with SIGKILL; an outage of Redis is
// a SIGKILL of redis-server followed by a restart on its append-only file.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import {
  EngineError, type Engine, type HistoryQuery, type HubMessage, type PresenceEvent, type PresenceMember,
} from '../src/hub/engine.js';
import { Feeds } from '../src/hub/feed.js';
import { MemoryEngine, type HistoryLimits } from '../src/hub/memory-engine.js';
import { RedisEngine, type RedisEngineOptions } from '../src/hub/redis-engine.js';
import { Subscription } from '../src/hub/subscription.js';
import { RedisServer } from './support/redis-server.js';

const TIMEOUT = { timeout: 30_000 };
const PRESENCE_NODE = fileURLToPath(new URL('./support/redis-presence-node.js', import.meta.url));

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

let prefixes = 0;
/** Tests sharing a redis-server keep out of each other's keys. */
const uniquePrefix = () => `test${++prefixes}:`;

/** `what` may be a function, to describe the state at the time of failure. */
async function waitFor(what: string | (() => string), timeoutMs: number, condition: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`no ${typeof what === 'string' ? what : what()} within ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** The attempt's result once it stops failing; Redis may take a few reconnect attempts to be back. */
async function retry<T>(what: string, timeoutMs: number, attempt: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms: ${(err as Error).message}`);
    }
    await sleep(100);
  }
}

/** Resolves once `engine` takes pub/sub subscriptions again. */
async function subscribed(engine: Engine, channel: string): Promise<void> {
  const feed = engine.subscribe(channel, () => {});
  try {
    await feed.ready;
  } finally {
    feed.stop();
  }
}

/** A redis-server per describe, and every engine the tests connect to it, all gone in after(). */
function redisNodes(): { server: () => RedisServer; connect: (options?: Partial<RedisEngineOptions>) => Promise<RedisEngine> } {
  let server: RedisServer | undefined;
  const engines: RedisEngine[] = [];
  before(async () => {
    server = await RedisServer.start();
  });
  after(async () => {
    await Promise.allSettled(engines.map((e) => e.close()));
    await server?.dispose();
  });
  return {
    server: () => server!,
    connect: async (options = {}) => {
      const engine = await RedisEngine.connect({ url: server!.url, ...options });
      engines.push(engine);
      return engine;
    },
  };
}

/** Presence events as `join id` / `leave id`, once the engine's pub/sub subscription is confirmed. */
async function watchPresence(engine: Engine, channel: string): Promise<{ events: string[]; members: PresenceMember[] }> {
  const seen = { events: [] as string[], members: [] as PresenceMember[] };
  engine.onPresence(channel, (e: PresenceEvent) => {
    seen.events.push(`${e.event} ${e.member.clientId}`);
    seen.members.push(e.member);
  });
  // onPresence has no readiness of its own; a live feed on the same channel shares its subscription.
  await engine.subscribe(channel, () => {}).ready;
  return seen;
}

/** Resolves with the rejection, or fails when the promise settles otherwise or hangs past `withinMs`. */
async function rejection(promise: Promise<unknown>, withinMs: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still pending after ${withinMs} ms`)), withinMs);
  });
  try {
    await Promise.race([promise, hung]);
  } catch (err) {
    if ((err as Error).message === `still pending after ${withinMs} ms`) throw err;
    return err;
  } finally {
    clearTimeout(timer);
  }
  throw new Error('resolved instead of rejecting');
}

function assertUnavailable(err: unknown, operation: string): void {
  assert.ok(err instanceof EngineError, `${operation}: ${String(err)} is not an EngineError`);
  assert.equal(err.status, 503, operation);
  assert.match(err.message, /unavailable/, operation);
}

describe('redis engine: offsets across nodes', () => {
  const nodes = redisNodes();

  test('two nodes publishing at once get distinct offsets; a third receives each once, in order', TIMEOUT, async () => {
    const prefix = uniquePrefix();
    const [a, b, c] = await Promise.all([nodes.connect({ prefix }), nodes.connect({ prefix }), nodes.connect({ prefix })]);
    const received: HubMessage[] = [];
    const feed = c!.subscribe('count', (m) => received.push(m));
    await feed.ready;
    const published = await Promise.all(range(0, 999).map((i) => (i % 2 === 0 ? a! : b!).publish('count', { i }, i % 2 === 0 ? 'a' : 'b')));
    assert.deepEqual(published.map((m) => m.offset).sort((x, y) => x - y), range(1, 1000));
    // Published after everything else: once it is in, any duplicate of an earlier message would be too.
    const last = await a!.publish('count', 'last');
    assert.equal(last.offset, 1001);
    await waitFor('message 1001 on the third node', 10_000, () => received.some((m) => m.offset === 1001));
    assert.deepEqual(received.map((m) => m.offset), range(1, 1001));
    const byOffset = new Map([...published, last].map((m) => [m.offset, m]));
    for (const m of received) assert.deepEqual(m, byOffset.get(m.offset));
    feed.stop();
  });
});

type Step = { publish: unknown } | { wait: number };

interface HistoryCase {
  name: string;
  limits: HistoryLimits;
  script: Step[];
  /** What history answers after the script, for each query. */
  expect: Array<{ query?: HistoryQuery; offsets: number[]; recovered: boolean; offset: number }>;
}

const publishAll = (...data: unknown[]): Step[] => data.map((d) => ({ publish: d }));

// Both engines must give these answers. The age cases use real time (neither engine takes a clock
// here): old messages are 1 200 ms old against a 1 000 ms bound, and the young one answers within its
// remaining 400 ms, whatever the machine's load.
const HISTORY_CASES: HistoryCase[] = [
  {
    name: 'count bound',
    limits: { historySize: 5 },
    script: publishAll(1, 2, 3, 4, 5, 6, 7, 8),
    expect: [
      { offsets: [4, 5, 6, 7, 8], recovered: true, offset: 8 },
      { query: { limit: 3 }, offsets: [4, 5, 6], recovered: true, offset: 8 },
      { query: { since: 5, limit: 2 }, offsets: [6, 7], recovered: true, offset: 8 },
      { query: { since: 3 }, offsets: [4, 5, 6, 7, 8], recovered: true, offset: 8 },
      { query: { since: 2 }, offsets: [4, 5, 6, 7, 8], recovered: false, offset: 8 },
      { query: { since: 0 }, offsets: [4, 5, 6, 7, 8], recovered: false, offset: 8 },
      { query: { since: 8 }, offsets: [], recovered: true, offset: 8 },
      { query: { since: 9 }, offsets: [], recovered: false, offset: 8 },
      { query: { since: 50, limit: 5 }, offsets: [], recovered: false, offset: 8 },
      // Nothing asked for, but nothing lost either: offsets 6… are all still held.
      { query: { since: 5, limit: 0 }, offsets: [], recovered: true, offset: 8 },
    ],
  },
  {
    name: 'a channel without messages',
    limits: {},
    script: [],
    expect: [
      { offsets: [], recovered: true, offset: 0 },
      { query: { since: 0 }, offsets: [], recovered: true, offset: 0 },
      { query: { since: 3 }, offsets: [], recovered: false, offset: 0 },
    ],
  },
  {
    name: 'history turned off',
    limits: { historySize: 0 },
    script: publishAll('x', 'y', 'z'),
    expect: [
      { offsets: [], recovered: true, offset: 3 },
      { query: { since: 3 }, offsets: [], recovered: true, offset: 3 },
      { query: { since: 2 }, offsets: [], recovered: false, offset: 3 },
    ],
  },
  {
    name: 'age bound',
    limits: { historySize: 100, historyTtl: 1_000 },
    script: [...publishAll('old 1', 'old 2', 'old 3'), { wait: 600 }, ...publishAll('young'), { wait: 600 }, ...publishAll('new 1', 'new 2')],
    expect: [
      { offsets: [4, 5, 6], recovered: true, offset: 6 },
      { query: { since: 0 }, offsets: [4, 5, 6], recovered: false, offset: 6 },
      { query: { since: 2 }, offsets: [4, 5, 6], recovered: false, offset: 6 },
      { query: { since: 3 }, offsets: [4, 5, 6], recovered: true, offset: 6 },
      { query: { since: 4, limit: 1 }, offsets: [5], recovered: true, offset: 6 },
      { query: { since: 6 }, offsets: [], recovered: true, offset: 6 },
      { query: { since: 7 }, offsets: [], recovered: false, offset: 6 },
      // A limit counts messages still held, not the aged-out ones before them.
      { query: { limit: 2 }, offsets: [4, 5], recovered: true, offset: 6 },
      { query: { since: 0, limit: 2 }, offsets: [4, 5], recovered: false, offset: 6 },
    ],
  },
  {
    name: 'everything aged out',
    limits: { historyTtl: 300 },
    script: [...publishAll('a', 'b'), { wait: 500 }],
    expect: [
      { offsets: [], recovered: true, offset: 2 },
      { query: { since: 0 }, offsets: [], recovered: false, offset: 2 },
      { query: { since: 1 }, offsets: [], recovered: false, offset: 2 },
      { query: { since: 2 }, offsets: [], recovered: true, offset: 2 },
    ],
  },
];

// Every JSON type, and strings that need escaping on their way through Lua and pub/sub.
const VALUES: Array<{ data: unknown; publisher?: string }> = [
  { data: { nested: { list: [1, 'two', null, false], empty: {} }, 'key "quoted"': 'v' }, publisher: 'alice' },
  { data: [1, [2, [3]], {}, []] },
  { data: 'unicode ü 日本語 😀, quotes " \' and \\ backslash, newline \n tab \t nul \u0000 line separator \u2028', publisher: 'bob "the" ü 😀' },
  { data: '' },
  { data: 0 },
  { data: -17.25 },
  { data: Number.MAX_SAFE_INTEGER, publisher: '' },
  { data: 1e-7 },
  { data: true },
  { data: false },
  { data: null },
];

/** A writer node and a reader node: the same engine in memory, two engines on one Redis. */
type EnginePair = (limits: HistoryLimits) => Promise<{ writer: Engine; reader: Engine }>;

function historyContract(kind: string, pair: EnginePair): void {
  for (const c of HISTORY_CASES) {
    test(`${kind}: history, ${c.name}`, TIMEOUT, async () => {
      const { writer, reader } = await pair(c.limits);
      for (const step of c.script) {
        if ('wait' in step) await sleep(step.wait);
        else await writer.publish('h', step.publish);
      }
      const wrong: string[] = [];
      for (const { query, ...expected } of c.expect) {
        const result = await reader.history('h', query);
        const got = { offsets: result.messages.map((m) => m.offset), recovered: result.recovered, offset: result.offset };
        if (!isDeepStrictEqual(got, expected)) wrong.push(`${JSON.stringify(query ?? {})}: ${JSON.stringify(got)}, not ${JSON.stringify(expected)}`);
      }
      assert.deepEqual(wrong, [], `history answers that differ:\n${wrong.join('\n')}`);
    });
  }

  test(`${kind}: data, publisher and time round-trip through live messages and history`, TIMEOUT, async () => {
    const { writer, reader } = await pair({});
    const live: HubMessage[] = [];
    const feed = reader.subscribe('json', (m) => live.push(m));
    await feed.ready;
    const published: HubMessage[] = [];
    for (const { data, publisher } of VALUES) {
      const before = new Date().toISOString();
      const message = await writer.publish('json', data, publisher);
      assert.ok(before <= message.time && message.time <= new Date().toISOString(), `time ${message.time} of ${JSON.stringify(data)}`);
      assert.equal(message.publisher, publisher);
      assert.deepEqual(message.data, data);
      published.push(message);
    }
    await waitFor('complete set of live messages', 5_000, () => live.length >= VALUES.length);
    assert.deepEqual(live, published);
    assert.deepEqual((await reader.history('json')).messages, published);
    feed.stop();
  });
}

describe('redis engine: hubs on different databases of one Redis', () => {
  const nodes = redisNodes();

  test('do not hear each other, though pub/sub spans databases', TIMEOUT, async () => {
    const prefix = uniquePrefix();
    const url = nodes.server().url;
    const [zero, one] = await Promise.all([nodes.connect({ prefix, url: `${url}/0` }), nodes.connect({ prefix, url: `${url}/1` })]);
    const heard: unknown[] = [];
    const feed = one!.subscribe('shared', (m) => heard.push(m.data));
    await feed.ready;
    await zero!.publish('shared', 'for database 0');
    const own = await one!.publish('shared', 'for database 1');
    assert.equal(own.offset, 1, 'offsets are per database');
    await waitFor('the message of database 1', 5_000, () => heard.length > 0);
    assert.deepEqual(heard, ['for database 1']);
    feed.stop();
  });
});

describe('history contract, memory engine', () => {
  historyContract('memory', async (limits) => {
    const engine = new MemoryEngine(limits);
    return { writer: engine, reader: engine };
  });
});

describe('history contract, redis engine', () => {
  const nodes = redisNodes();
  historyContract('redis', async (limits) => {
    const prefix = uniquePrefix();
    const [writer, reader] = await Promise.all([nodes.connect({ prefix, ...limits }), nodes.connect({ prefix, ...limits })]);
    return { writer: writer!, reader: reader! };
  });
});

describe('redis engine: presence across nodes', () => {
  const nodes = redisNodes();

  test('joins and leaves reach the other nodes once; presence lists every node\'s members', TIMEOUT, async () => {
    const prefix = uniquePrefix();
    const presenceTtl = 300;
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => nodes.connect({ prefix, presenceTtl })));
    const seen = await watchPresence(b!, 'room');
    const alice: PresenceMember = { clientId: 'a1', user: 'alice', info: { status: 'here', emoji: '😀' } };
    const bob: PresenceMember = { clientId: 'b1' };
    await a!.join('room', alice);
    await b!.join('room', bob);
    const listed = (await c!.presence('room')).sort((x, y) => x.clientId.localeCompare(y.clientId));
    assert.deepEqual(listed, [alice, bob]);
    // A second join and the node's own refreshes (every presenceTtl / 3) are not new arrivals.
    await a!.join('room', alice);
    await sleep(presenceTtl * 2);
    assert.deepEqual((await c!.presence('room')).map((m) => m.clientId).sort(), ['a1', 'b1'], 'refreshed members stay');
    await a!.leave('room', 'a1');
    // Redis delivers a channel's events in order: once the leave is in, no join can still be on its way.
    await waitFor('the leave of a1 on node B', 5_000, () => seen.events.includes('leave a1'));
    assert.deepEqual(seen.events, ['join a1', 'join b1', 'leave a1']);
    assert.deepEqual(seen.members, [alice, bob, alice]);
    assert.deepEqual(await c!.presence('room'), [bob]);
  });

  for (const company of [false, true]) {
    const title = company ? 'alongside a live node\'s member' : 'alone in its channel';
    test(`a member of a node that dies leaves after presenceTtl, ${title}`, TIMEOUT, async (t) => {
      const prefix = uniquePrefix();
      const presenceTtl = 900;
      const sweepInterval = presenceTtl / 3;
      const b = await nodes.connect({ prefix, presenceTtl });
      const seen = await watchPresence(b, 'room');
      if (company) await b.join('room', { clientId: 'b1' });
      const child = spawn(process.execPath, [PRESENCE_NODE, nodes.server().url, prefix, 'room', 'ghost', String(presenceTtl)], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      t.after(async () => {
        child.kill('SIGKILL');
        await exited;
      });
      let output = '';
      child.stdout!.setEncoding('utf8').on('data', (s: string) => (output += s));
      child.stderr!.setEncoding('utf8').on('data', (s: string) => (output += s));
      await waitFor('`joined` from the child node', 10_000, () => {
        if (child.exitCode !== null) throw new Error(`the child node exited: ${output}`);
        return output.includes('joined');
      });
      await waitFor('the ghost\'s join on node B', 5_000, () => seen.events.includes('join ghost'));
      // Let the child refresh its member a few times, so expiry is measured from a refresh.
      await sleep(presenceTtl);
      assert.ok((await b.presence('room')).some((m) => m.clientId === 'ghost'), 'listed while its node refreshes it');
      child.kill('SIGKILL');
      await exited;
      const killed = Date.now();
      // Expiry is due within presenceTtl of the last refresh, seen at B's next sweep; the slack is for load.
      // Waiting passively: polling presence() would run sweeps of its own and change what is tested.
      const bound = presenceTtl + sweepInterval + 2_000;
      await waitFor('the ghost\'s leave on node B', bound, () => seen.events.includes('leave ghost')).catch(async (err: Error) => {
        const listed = (await b.presence('room')).map((m) => m.clientId);
        throw new Error(`${err.message}; events seen: ${JSON.stringify(seen.events)}; presence now: ${JSON.stringify(listed)}`);
      });
      const gone = Date.now() - killed;
      assert.ok(!(await b.presence('room')).some((m) => m.clientId === 'ghost'), `still listed ${gone} ms after its node died`);
      assert.deepEqual(seen.events.filter((e) => e.endsWith('ghost')), ['join ghost', 'leave ghost']);
    });
  }
});

describe('redis engine: Redis down and back', () => {
  const nodes = redisNodes();

  test('calls fail at once while Redis is down; after it restarts, offsets go on and live messages flow', TIMEOUT, async () => {
    const prefix = uniquePrefix();
    const [publisher, subscriber] = await Promise.all([nodes.connect({ prefix }), nodes.connect({ prefix })]);
    const live: number[] = [];
    const feed = subscriber!.subscribe('r', (m) => live.push(m.offset));
    await feed.ready;
    // What a client sees: the hub's own resume logic over this node's feed.
    const delivered: number[] = [];
    const sub = new Subscription('r', subscriber!, new Feeds(subscriber!), (out) => delivered.push(out.message.offset));
    await sub.start(0);
    sub.goLive();
    for (let i = 1; i <= 3; i++) await publisher!.publish('r', `before ${i}`);
    await waitFor('offsets 1-3 live', 5_000, () => live.length >= 3 && delivered.length >= 3);

    await nodes.server().stop('SIGKILL');
    assertUnavailable(await rejection(publisher!.publish('r', 'lost'), 2_000), 'publish');
    assertUnavailable(await rejection(publisher!.history('r', { since: 0 }), 2_000), 'history');
    assertUnavailable(await rejection(subscriber!.presence('r'), 2_000), 'presence');
    const other = subscriber!.subscribe('other', () => {});
    assertUnavailable(await rejection(other.ready, 2_000), 'subscribe');
    other.stop();

    await nodes.server().restart();
    // Offset 4 may go out before the subscriber node has resubscribed: that one is the catch-up's to hand over.
    const first = await retry('publish after the restart', 15_000, () => publisher!.publish('r', 'after 4'));
    assert.equal(first.offset, 4, 'the offset counter survived the crash (append-only file)');
    await retry('history on the subscriber node', 15_000, () => subscriber!.history('r'));
    await retry('subscription on the subscriber node', 15_000, () => subscribed(subscriber!, 'probe'));
    // The node resubscribes from its 'ready' handler, which may run just after the first probe went
    // out; a second probe on the same connection comes after it for certain.
    await subscribed(subscriber!, 'probe');
    for (let i = 5; i <= 8; i++) await publisher!.publish('r', `after ${i}`);
    await waitFor('offset 8 on the subscriber node', 5_000, () => live.includes(8));
    // The node's catch-up may repeat what it already had; what follows the resubscription arrives live, in order.
    assert.deepEqual([...new Set(live.filter((o) => o >= 5))], [5, 6, 7, 8]);
    // The client's subscription passes each offset once, filling from history what the node missed.
    await waitFor('offset 8 delivered to the client', 5_000, () => delivered.includes(8));
    assert.deepEqual(delivered, range(1, 8));
    const history = await subscriber!.history('r', { since: 0 });
    assert.deepEqual(history.messages.map((m) => m.data), ['before 1', 'before 2', 'before 3', 'after 4', 'after 5', 'after 6', 'after 7', 'after 8']);
    sub.stop();
    feed.stop();
  });

  test('a channel first followed while Redis is down can be subscribed once it is back', TIMEOUT, async () => {
    const prefix = uniquePrefix();
    const [publisher, node] = await Promise.all([nodes.connect({ prefix }), nodes.connect({ prefix })]);
    await nodes.server().stop('SIGKILL');
    // A presence watcher arriving during the outage: the engine follows the channel from now on.
    node!.onPresence('late', () => {});
    await nodes.server().restart();
    await retry('history on both nodes', 15_000, () => Promise.all([publisher!.history('late'), node!.history('late')]));
    await retry('subscription on the node', 15_000, () => subscribed(node!, 'probe'));
    const live: number[] = [];
    const ready = node!.subscribe('late', (m) => live.push(m.offset)).ready;
    await assert.doesNotReject(ready, 'Redis is back: a new subscription must not inherit the outage\'s failure');
    await publisher!.publish('late', 'hello');
    await waitFor('the message on the node', 5_000, () => live.includes(1));
  });
});

describe('redis engine: close', () => {
  const nodes = redisNodes();

  /** Resources that keep the process alive (sockets, timers), as type → count. */
  const resources = () => {
    const counts = new Map<string, number>();
    for (const r of process.getActiveResourcesInfo()) counts.set(r, (counts.get(r) ?? 0) + 1);
    return counts;
  };
  const leftOver = (baseline: Map<string, number>) =>
    [...resources()].filter(([type, n]) => n > (baseline.get(type) ?? 0)).map(([type, n]) => `${type} +${n - (baseline.get(type) ?? 0)}`);

  test('close() makes the node\'s members leave at once and leaves nothing running', TIMEOUT, async () => {
    const prefix = uniquePrefix();
    // A long presenceTtl: only close() can explain the members leaving within this test.
    const observer = await nodes.connect({ prefix, presenceTtl: 30_000 });
    const room = await watchPresence(observer, 'room');
    const lobby = await watchPresence(observer, 'lobby');
    // The previous test's sockets may still be closing; they are not this engine's.
    await sleep(50);
    const baseline = resources();
    const closing = await RedisEngine.connect({ url: nodes.server().url, prefix, presenceTtl: 30_000 });
    await closing.join('room', { clientId: 'c1' });
    await closing.join('room', { clientId: 'c2', user: 'u2' });
    await closing.join('lobby', { clientId: 'c1' });
    await closing.publish('room', 'still works');
    await closing.close();
    assert.deepEqual(await observer.presence('room'), []);
    assert.deepEqual(await observer.presence('lobby'), []);
    await waitFor('three joins and three leaves on the observer', 5_000, () => room.events.length + lobby.events.length >= 6);
    assert.deepEqual(room.events.sort(), ['join c1', 'join c2', 'leave c1', 'leave c2']);
    assert.deepEqual(lobby.events, ['join c1', 'leave c1']);
    await assert.doesNotReject(closing.close(), 'a second close() is harmless');
    await waitFor(() => `release of the closed engine's resources (left: ${leftOver(baseline).join(', ')})`, 5_000, () => leftOver(baseline).length === 0);
  });

  test('close() while Redis is down returns and stops reconnecting', TIMEOUT, async (t) => {
    // A server of its own: the other engines of this file would be reconnecting to a dead one too.
    const server = await RedisServer.start();
    t.after(() => server.dispose());
    await sleep(50);
    const baseline = resources();
    const engine = await RedisEngine.connect({ url: server.url, presenceTtl: 30_000 });
    await engine.join('room', { clientId: 'c1' });
    await server.stop('SIGKILL');
    await engine.close();
    // ioredis, told to disconnect a socket that is already closed, still arms its 2 s disconnectTimeout.
    await waitFor(() => `release of the closed engine's resources (left: ${leftOver(baseline).join(', ')})`, 5_000, () => leftOver(baseline).length === 0);
    // Still nothing a while later: no reconnect timer fired and opened a socket again.
    await sleep(1_500);
    assert.deepEqual(leftOver(baseline), []);
  });
});
