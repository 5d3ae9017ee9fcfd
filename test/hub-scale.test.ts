// Several `duplex serve --redis` nodes sharing channels through one real redis-server, end to end:
// every node, Redis and client is a separate process or connection on 127.0.0.1. Covers fan-out
// across nodes on every transport, resume on another node, a Redis restart (clean and crashed) in
// the middle of publishing, presence across nodes including a node that dies, and the start-up
// errors of --redis.
import assert from 'node:assert/strict';
import { after, describe, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { killAll, runCli } from './support/cli.js';
import { HubNode } from './support/hub-node.js';
import { HubSocket, type Envelope } from './support/hub-socket.js';
import { RedisServer } from './support/redis-server.js';
import { SseClient } from './support/sse-client.js';

const TEST_TIMEOUT = { timeout: 60_000 };
// These tests publish far faster than the default 100 messages per second per publisher, on purpose.
const FAST = ['--publish-rate', '100000:100000'];
const WAIT_MS = 15_000;
// The resume test's history must reach back past the 1,000 missed messages and the live ones.
const RESUME_HISTORY = 5000;

after(killAll);

type StartNode = (args: string[], env?: NodeJS.ProcessEnv) => Promise<HubNode>;

/** A redis-server and the nodes `fn` starts with it; all stopped (by PID) and removed afterwards. */
async function withRedis(fn: (redis: RedisServer, start: StartNode) => Promise<void>): Promise<void> {
  const redis = await RedisServer.start();
  const nodes: HubNode[] = [];
  const start: StartNode = async (args, env = {}) => {
    const node = await HubNode.start([...FAST, ...args], env);
    nodes.push(node);
    return node;
  };
  try {
    await fn(redis, start);
  } finally {
    await Promise.all(nodes.map((node) => node.stop()));
    await redis.dispose();
  }
}

/** Two nodes, A and B, on one Redis. */
function withPair(fn: (redis: RedisServer, a: HubNode, b: HubNode) => Promise<void>, args: string[] = []): Promise<void> {
  return withRedis(async (redis, start) => {
    const [a, b] = await Promise.all([start(['--redis', redis.url, ...args]), start(['--redis', redis.url, ...args])]);
    await fn(redis, a!, b!);
  });
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(WAIT_MS) });
  assert.equal(res.status, 200, `GET ${url}`);
  return (await res.json()) as T;
}

interface HttpPublish {
  status: number;
  offset?: number;
  error?: string;
  message?: string;
}

async function publishHttp(node: HubNode, channel: string, data: unknown, ms = WAIT_MS): Promise<HttpPublish> {
  const res = await fetch(`${node.url}/api/channels/${channel}/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(data),
    signal: AbortSignal.timeout(ms),
  });
  const body = (await res.json()) as Omit<HttpPublish, 'status'>;
  return { status: res.status, ...body };
}

/** Publishes and expects it stored: returns the offset. */
async function publishedHttp(node: HubNode, channel: string, data: unknown): Promise<number> {
  const result = await publishHttp(node, channel, data);
  assert.equal(result.status, 200, `publish to ${node.url}: ${JSON.stringify(result)}`);
  return result.offset!;
}

async function publishedWs(socket: HubSocket, channel: string, data: unknown, id: string | number): Promise<number> {
  const reply = await socket.request({ type: 'publish', channel, data, id });
  assert.equal(reply.type, 'ack', `publish ${String(id)}: ${JSON.stringify(reply)}`);
  return reply.offset!;
}

async function subscribed(node: HubNode, channel: string, extra: Record<string, unknown> = {}): Promise<{ socket: HubSocket; reply: Envelope }> {
  const socket = await HubSocket.open(node.ws);
  const reply = await socket.request({ type: 'subscribe', channel, id: 'subscribe', ...extra });
  assert.equal(reply.type, 'subscribed', JSON.stringify(reply));
  return { socket, reply };
}

/** An SSE stream of the channel, once its 'subscribed' event says it is live. */
async function openSse(node: HubNode, channel: string): Promise<SseClient> {
  const sse = await SseClient.open(`${node.url}/sse?channel=${channel}`);
  assert.equal(sse.status, 200);
  await sse.event('subscribed');
  return sse;
}

/** The SSE stream's messages until one with offset `last` or beyond; each event's id is its offset. */
async function sseUpTo(sse: SseClient, last: number, ms = WAIT_MS): Promise<Envelope[]> {
  const deadline = Date.now() + ms;
  const got: Envelope[] = [];
  while ((got.at(-1)?.offset ?? 0) < last) {
    const event = await sse.event('message', Math.max(1, deadline - Date.now()));
    const envelope = JSON.parse(event.data) as Envelope;
    assert.equal(event.id, String(envelope.offset));
    got.push(envelope);
  }
  return got;
}

/** A long-polling subscriber: polls from `since`, each poll resuming where the last one ended, until offset `last`. */
async function pollUpTo(node: HubNode, channel: string, since: number, last: number, ms = WAIT_MS): Promise<Envelope[]> {
  const deadline = Date.now() + ms;
  const got: Envelope[] = [];
  for (let polls = 0; polls < 1000 && Date.now() < deadline; polls++) {
    const body = await getJson<{ offset: number; recovered: boolean; messages: Envelope[] }>(
      `${node.url}/poll?channel=${channel}&since=${since}&timeout=1000`,
    );
    assert.equal(body.recovered, true);
    got.push(...body.messages);
    since = body.offset;
    if (since >= last) return got;
  }
  return assert.fail(`long-polling ${node.url} reached offset ${since}, not ${last}`);
}

/** The channel's whole history on a node, page by page. */
async function historyAll(node: HubNode, channel: string): Promise<Envelope[]> {
  const all: Envelope[] = [];
  let since = 0;
  for (let page = 0; page < 100; page++) {
    const body = await getJson<{ messages: Envelope[] }>(`${node.url}/api/channels/${channel}/history?since=${since}&limit=1000`);
    if (body.messages.length === 0) return all;
    all.push(...body.messages);
    since = body.messages.at(-1)!.offset!;
  }
  return assert.fail('history never ended');
}

function pairs(messages: Envelope[]): Array<[number | undefined, unknown]> {
  return messages.map((m) => [m.offset, m.data]);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}

/** Keeps a background promise's rejection for whoever awaits it later, instead of an unhandled rejection. */
function background<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => {});
  return promise;
}

/** Retries `check` until it stops throwing, at most `ms`. */
async function eventually(check: () => Promise<void>, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  for (let attempt = 0; ; attempt++) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline || attempt > 1000) throw err;
      await sleep(50);
    }
  }
}

async function presenceNames(node: HubNode, channel: string): Promise<string[]> {
  const { members } = await getJson<{ members: Array<{ info?: { name?: string } }> }>(`${node.url}/api/channels/${channel}/presence`);
  return members.map((m) => m.info?.name ?? '?').sort();
}

function isPresence(event: 'join' | 'leave', name: string): (e: Envelope) => boolean {
  return (e) => e.type === 'presence' && e.event === event && (e.info as { name?: string } | undefined)?.name === name;
}

describe('several hub nodes on one Redis', () => {
  test('what is published on B reaches WebSocket, SSE and long-poll subscribers on A and B, in order, exactly once', TEST_TIMEOUT, () =>
    withPair(async (_redis, a, b) => {
      const channel = 'scale.fanout';
      const COUNT = 40;
      const { socket: wsA, reply } = await subscribed(a, channel);
      assert.deepEqual(reply, { type: 'subscribed', channel, offset: 0, id: 'subscribe' });
      const [sseA, sseB] = await Promise.all([openSse(a, channel), openSse(b, channel)]);
      const sse = [sseUpTo(sseA, COUNT), sseUpTo(sseB, COUNT)].map(background);
      const polls = [pollUpTo(a, channel, 0, COUNT), pollUpTo(b, channel, 0, COUNT)].map(background);
      const publisher = await HubSocket.open(b.ws);
      try {
        const expected: Array<[number, unknown]> = [];
        for (let n = 1; n <= COUNT; n++) {
          const data = { n, via: n % 2 === 1 ? 'ws' : 'http' };
          const offset = n % 2 === 1 ? await publishedWs(publisher, channel, data, n) : await publishedHttp(b, channel, data);
          expected.push([offset, data]);
        }
        assert.deepEqual(expected.map(([offset]) => offset), range(1, COUNT), 'offsets count from 1 across both transports');

        assert.deepEqual(pairs(await wsA.messagesUpTo(channel, COUNT)), expected, 'WebSocket on A');
        const [fromSseA, fromSseB] = await Promise.all(sse);
        assert.deepEqual(pairs(fromSseA!), expected, 'SSE on A');
        assert.deepEqual(pairs(fromSseB!), expected, 'SSE on B');
        const [fromPollA, fromPollB] = await Promise.all(polls);
        assert.deepEqual(pairs(fromPollA!), expected, 'long-polling on A');
        assert.deepEqual(pairs(fromPollB!), expected, 'long-polling on B');
      } finally {
        wsA.close();
        publisher.close();
        sseA.close();
        sseB.close();
      }
    }));

  test('a subscriber that leaves A resumes on B: 1,000 missed messages once and in order, then live ones without a seam', TEST_TIMEOUT, (t) =>
    withPair(async (_redis, a, b) => {
      const channel = 'scale.resume';
      assert.equal(a.config.history, RESUME_HISTORY);
      const byOffset = new Map<number, unknown>();
      const first = await subscribed(a, channel);
      for (let n = 1; n <= 10; n++) byOffset.set(await publishedHttp(a, channel, { phase: 'before', n }), { phase: 'before', n });
      const seen = await first.socket.messagesUpTo(channel, 10);
      assert.deepEqual(seen.map((m) => m.offset), range(1, 10));
      const lastSeen = seen.at(-1)!.offset!;
      await first.socket.closed();

      // 1,000 while it is away, from four publishers at once: WebSocket and HTTP on each node.
      const PER_SOURCE = 250;
      const [wsOnA, wsOnB] = await Promise.all([HubSocket.open(a.ws), HubSocket.open(b.ws)]);
      const viaWs = async (socket: HubSocket, src: string): Promise<void> => {
        const datas = range(1, PER_SOURCE).map((n) => ({ src, n }));
        datas.forEach((data, i) => socket.send({ type: 'publish', channel, data, id: i }));
        for (const [i, data] of datas.entries()) {
          const reply = await socket.reply(i);
          assert.equal(reply.type, 'ack', JSON.stringify(reply));
          byOffset.set(reply.offset!, data);
        }
      };
      const viaHttp = async (node: HubNode, src: string): Promise<void> => {
        for (let n = 1; n <= PER_SOURCE; n++) byOffset.set(await publishedHttp(node, channel, { src, n }), { src, n });
      };
      await Promise.all([viaWs(wsOnA, 'ws-a'), viaWs(wsOnB, 'ws-b'), viaHttp(a, 'http-a'), viaHttp(b, 'http-b')]);
      assert.deepEqual([...byOffset.keys()].sort((x, y) => x - y), range(1, 10 + 4 * PER_SOURCE), 'every offset issued once');

      // Live publishing goes on, alternating nodes, while the subscriber comes back on B.
      let stopAt = Number.POSITIVE_INFINITY;
      let highest = 10 + 4 * PER_SOURCE;
      const live = background((async () => {
        for (let n = 1; n <= 5000 && highest < stopAt; n++) {
          const data = { phase: 'live', n };
          const offset = await publishedHttp(n % 2 === 1 ? a : b, channel, data);
          byOffset.set(offset, data);
          highest = Math.max(highest, offset);
        }
      })());
      const resumed = await subscribed(b, channel, { since: lastSeen });
      try {
        assert.equal(resumed.reply.recovered, true);
        assert.ok(resumed.reply.offset! >= 10 + 4 * PER_SOURCE);
        // Twenty more after the subscription went live, then stop.
        stopAt = resumed.reply.offset! + 20;
        await live;
        const final = Math.max(...byOffset.keys());
        const got = await resumed.socket.messagesUpTo(channel, final);
        assert.deepEqual(got.map((m) => m.offset), range(lastSeen + 1, final), 'every missed and live offset once, in order');
        assert.deepEqual(got.map((m) => m.data), range(lastSeen + 1, final).map((o) => byOffset.get(o)));
        t.diagnostic(`resumed after ${lastSeen} on B: ${resumed.reply.offset! - lastSeen} from history, ${final - resumed.reply.offset!} live`);

        const [historyA, historyB] = await Promise.all([historyAll(a, channel), historyAll(b, channel)]);
        assert.deepEqual(historyA, historyB, 'A and B serve the same history');
        assert.deepEqual(pairs(historyA), range(1, final).map((o) => [o, byOffset.get(o)]));
      } finally {
        resumed.socket.close();
        wsOnA.close();
        wsOnB.close();
      }
    }, ['--history', String(RESUME_HISTORY)]));

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    test(`Redis stopped with ${signal} and restarted mid-publishing: every publish answered, every ack delivered once and in order`, TEST_TIMEOUT, (t) =>
      withPair(async (redis, a, b) => redisRestart(t, signal, redis, a, b)));
  }

  test('presence across nodes: join and leave from B seen on A, and the members of a crashed node leave within the TTL', TEST_TIMEOUT, (t) =>
    withRedis(async (redis, start) => {
      const channel = 'scale.presence';
      // A by flags, B by environment variables.
      const a = await start(['--redis', redis.url, '--presence-ttl', '2s']);
      const b = await start([], { DUPLEX_REDIS: redis.url, DUPLEX_PRESENCE_TTL: '2s' });
      assert.deepEqual([b.config.engine, b.config.presenceTtl], ['redis', '2s']);

      const watcher = await subscribed(a, channel, { presence: { name: 'w' }, presenceEvents: true });
      const x = await subscribed(b, channel, { presence: { name: 'x' } });
      const join = await watcher.socket.waitFor(isPresence('join', 'x'), "x's join");
      assert.equal(typeof join.clientId, 'string');
      for (const node of [a, b]) await eventually(async () => assert.deepEqual(await presenceNames(node, channel), ['w', 'x']));
      const listed = await watcher.socket.request({ type: 'presence', channel, id: 'who' });
      assert.deepEqual(listed.members!.map((m) => (m.info as { name: string }).name).sort(), ['w', 'x']);
      assert.ok(listed.members!.some((m) => m.clientId === join.clientId));

      await x.socket.request({ type: 'unsubscribe', channel, id: 'bye' });
      const leave = await watcher.socket.waitFor(isPresence('leave', 'x'), "x's leave");
      assert.equal(leave.clientId, join.clientId);
      for (const node of [a, b]) await eventually(async () => assert.deepEqual(await presenceNames(node, channel), ['w']));

      const c = await start(['--redis', redis.url, '--presence-ttl', '2s']);
      const y = await subscribed(c, channel, { presence: { name: 'y' } });
      await watcher.socket.waitFor(isPresence('join', 'y'), "y's join");
      await eventually(async () => assert.deepEqual(await presenceNames(a, channel), ['w', 'y']));

      // TTL 2 s, refreshed and swept every 2/3 s: a dead node's member is gone within about 2.7 s.
      const BOUND_MS = 6000;
      const killed = Date.now();
      await c.kill();
      const [gone, left] = await Promise.all([
        eventually(async () => assert.deepEqual(await presenceNames(a, channel), ['w']), BOUND_MS).then(() => Date.now() - killed),
        watcher.socket.waitFor(isPresence('leave', 'y'), "y's leave after its node died", BOUND_MS).then(() => Date.now() - killed),
      ]);
      t.diagnostic(`after SIGKILL of node C: gone from presence on A in ${gone} ms, leave event on A in ${left} ms`);
      assert.deepEqual(await presenceNames(b, channel), ['w']);
      assert.equal(watcher.socket.received.filter(isPresence('leave', 'y')).length, 1, 'one leave, however many nodes sweep');
      assert.notEqual(y.socket.closeCode, null, "y's connection died with its node");
      watcher.socket.close();
      x.socket.close();
    }));

  test('an unreachable Redis is one line on stderr and exit 1; a malformed URL is the usual invalid-argument line', TEST_TIMEOUT, async () => {
    const unreachable = await runCli(['serve', '--host', '127.0.0.1', '--port', '0', '--log', 'json', '--redis', 'redis://127.0.0.1:1']).exited(WAIT_MS);
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /^duplex: cannot reach Redis at redis:\/\/127\.0\.0\.1:1\/?: [^\n]+\n$/);
    assert.doesNotMatch(unreachable.stdout, /"msg":"listening"/);

    const cases: Array<[string[], NodeJS.ProcessEnv]> = [
      [['--redis', 'notaurl'], {}],
      [['--redis', 'http://127.0.0.1:6379'], {}],
      [[], { DUPLEX_REDIS: 'notaurl' }],
    ];
    for (const [args, env] of cases) {
      const exit = await runCli(['serve', '--port', '0', ...args], { env }).exited(WAIT_MS);
      assert.equal(exit.code, 1, `${args.join(' ')} ${JSON.stringify(env)}`);
      assert.match(exit.stderr, /^error: option '--redis <url>' (argument|value) '[^']+' (from env 'DUPLEX_REDIS' )?is invalid\. expected a Redis URL[^\n]*\n$/);
      assert.equal(exit.stdout, '');
    }
  });
});

interface Outcome {
  data: { src: string; n: number };
  /** The offset it was acknowledged with. */
  offset?: number;
  /** Refused: the `unavailable` envelope or HTTP 503. */
  refused?: string;
  /** Anything else: no answer in time, or an answer the contract does not allow. */
  wrong?: string;
}

/**
 * Two publishers at a steady pace, one over WebSocket to A and one over HTTP to B, while Redis is
 * stopped and started again about a second later; subscribers on both nodes keep their connections.
 */
async function redisRestart(t: TestContext, signal: NodeJS.Signals, redis: RedisServer, a: HubNode, b: HubNode): Promise<void> {
  const channel = 'scale.restart';
  const PACE_MS = 15;
  const MIN_ROUNDS = 200;
  const OUTAGE_AT_ROUND = 40;
  const ROUNDS_AFTER_OUTAGE = 30;
  const REPLY_MS = 10_000;

  const { socket: wsA } = await subscribed(a, channel);
  const { socket: wsB } = await subscribed(b, channel);
  const sseB = await openSse(b, channel);
  const publisher = await HubSocket.open(a.ws);
  const outcomes: Array<Promise<Outcome>> = [];
  let outage: Promise<void> | null = null;
  let outageOver = false;
  let roundsAfter = 0;
  try {
    for (let round = 1; round <= 2000 && (round <= MIN_ROUNDS || roundsAfter < ROUNDS_AFTER_OUTAGE); round++) {
      if (round === OUTAGE_AT_ROUND) {
        outage = background((async () => {
          try {
            await redis.stop(signal);
            await sleep(1000);
            await redis.restart();
          } finally {
            outageOver = true;
          }
        })());
      }
      if (outageOver) roundsAfter++;
      const wsData = { src: 'ws', n: round };
      outcomes.push(publisher.request({ type: 'publish', channel, data: wsData, id: round }, REPLY_MS).then(
        (reply): Outcome => reply.type === 'ack' ? { data: wsData, offset: reply.offset! }
          : reply.type === 'error' && reply.code === 'unavailable' ? { data: wsData, refused: reply.message! }
          : { data: wsData, wrong: JSON.stringify(reply) },
        (err: Error): Outcome => ({ data: wsData, wrong: err.message }),
      ));
      const httpData = { src: 'http', n: round };
      outcomes.push(publishHttp(b, channel, httpData, REPLY_MS).then(
        (res): Outcome => res.status === 200 ? { data: httpData, offset: res.offset! }
          : res.status === 503 && res.error === 'unavailable' ? { data: httpData, refused: `503 ${res.message}` }
          : { data: httpData, wrong: JSON.stringify(res) },
        (err: Error): Outcome => ({ data: httpData, wrong: err.message }),
      ));
      await sleep(PACE_MS);
    }
    await outage;
    const results = await Promise.all(outcomes);

    const wrong = results.filter((r) => r.wrong !== undefined);
    assert.deepEqual(wrong, [], 'every publish is acknowledged or refused, nothing else');
    const acked = results.filter((r) => r.offset !== undefined);
    const refused = results.filter((r) => r.refused !== undefined);
    assert.ok(refused.length > 0, 'the outage was seen by the publishers');
    const offsets = acked.map((r) => r.offset!);
    assert.equal(new Set(offsets).size, offsets.length, 'no offset acknowledged twice');
    const ackedData = new Map(acked.map((r) => [r.offset!, r.data]));
    const refusals = new Map(refused.map((r) => [JSON.stringify(r.data), r.refused!]));
    const last = Math.max(...offsets);

    const streams: Array<[string, Envelope[]]> = [
      ['WebSocket on A', await wsA.messagesUpTo(channel, last, WAIT_MS)],
      ['WebSocket on B', await wsB.messagesUpTo(channel, last, WAIT_MS)],
      ['SSE on B', await sseUpTo(sseB, last, WAIT_MS)],
      ['history on A', await historyAll(a, channel)],
      ['history on B', await historyAll(b, channel)],
    ];
    const notes: string[] = [];
    for (const [name, messages] of streams) {
      const got = messages.map((m) => m.offset!);
      assert.ok(got.every((o, i) => i === 0 || o > got[i - 1]!), `${name}: in offset order, no duplicate`);
      const byOffset = new Map(messages.map((m) => [m.offset!, m.data]));
      const missing = offsets.filter((o) => !byOffset.has(o));
      assert.deepEqual(missing, [], `${name}: every acknowledged message`);
      for (const [offset, data] of ackedData) assert.deepEqual(byOffset.get(offset), data, `${name}: offset ${offset}`);
      // Not acknowledged yet there: a publish whose connection dropped mid-command, stored after all.
      const extra = messages.filter((m) => !ackedData.has(m.offset!));
      for (const m of extra) {
        const refusal = refusals.get(JSON.stringify(m.data));
        assert.ok(refusal !== undefined, `${name}: offset ${m.offset} was never published`);
        // Only a publish cut off mid-command may be stored after all, and its refusal must say so.
        assert.match(refusal, /may or may not have been stored/, `${name}: offset ${m.offset} was refused as not stored`);
      }
      if (extra.length > 0) {
        const described = extra.map((m) => `${m.offset}=${JSON.stringify(m.data)} refused with "${refusals.get(JSON.stringify(m.data))}"`);
        notes.push(`${name}: ${extra.length} refused but stored: ${described.join(', ')}`);
      }
    }
    assert.deepEqual(streams[3]![1], streams[4]![1], 'A and B serve the same history');

    assert.equal(wsA.closeCode, null, 'the WebSocket subscriber on A never closed');
    assert.equal(wsB.closeCode, null, 'the WebSocket subscriber on B never closed');
    assert.equal(publisher.closeCode, null, 'the publisher never closed');
    for (const node of [a, b]) {
      assert.ok(node.alive, `${node.url} stayed up`);
      assert.equal((await fetch(`${node.url}/healthz`, { signal: AbortSignal.timeout(WAIT_MS) })).status, 200);
    }
    t.diagnostic(`${signal}: ${results.length} publishes, ${acked.length} acknowledged, ${refused.length} refused; last offset ${last}`);
    for (const note of notes) t.diagnostic(note);
  } finally {
    wsA.close();
    wsB.close();
    publisher.close();
    sseB.close();
  }
}
