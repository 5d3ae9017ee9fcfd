// The deployment of docs/deploy/: a real Redis, two `duplex serve --redis` nodes sharing one auth
// secret, and a real nginx running docs/deploy/nginx.conf in front of them. Clients know only nginx's
// URL and nginx balances without sticky sessions, so a conversation spans both nodes: a WebSocket, an
// SSE and a long-polling client (the hub client library, each transport forced) and an HTTP
// publisher chat, and every message must reach every client once and in offset order. Then: SSE is
// streamed through nginx, bodies are limited as the hub limits them, and in a rolling restart (each
// node killed and started again in turn) every client resumes on the other node. That test runs last.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from '../src/index.js';
import { signToken } from '../src/hub/auth.js';
import {
  connect, type ConnectionState, type HubClient, type HubMessage, type Transport,
} from '../src/client/hub-client.js';
import { bounded, killAll, runCli, type CliProcess } from './support/cli.js';
import { Nginx } from './support/nginx.js';
import { RedisServer } from './support/redis-server.js';

const SECRET = 'a-test-secret-that-is-long-enough-for-hs256';
const TEST_TIMEOUT = { timeout: 60_000 };
const WAIT_MS = 20_000;
/** How soon an SSE event must come through nginx: generous, since an unbuffered stream takes milliseconds. */
const STREAM_BOUND_MS = 2000;
const PER_CLIENT = 5;
// The hub's default --max-message-size, which the documented client_max_body_size matches.
const MAX_MESSAGE_SIZE = 64 * 1024;
const FAST = { initialMs: 20, maxMs: 200, jitter: 0 };

interface HubNode {
  cli: CliProcess;
  url: string;
  /** host:port, as nginx's upstream block names it. */
  address: string;
}

interface Chatter {
  name: string;
  transport: Transport;
  client: HubClient;
  received: HubMessage[];
  states: ConnectionState[];
}

let redis: RedisServer | undefined;
let nginx: Nginx | undefined;
const nodes: HubNode[] = [];
const clients = new Set<HubClient>();

before(async () => {
  redis = await RedisServer.start();
  nodes.push(...(await Promise.all([startNode(redis.url), startNode(redis.url)])));
  nginx = await Nginx.start(nodes.map((node) => node.address));
}, { timeout: 30_000 });

after(async () => {
  for (const client of clients) client.close();
  await nginx?.stop();
  // A node that a failed test left killed is gone already (signalling it again would throw ESRCH).
  const running = nodes.filter(({ cli }) => cli.child.exitCode === null && cli.child.signalCode === null);
  for (const node of running) node.cli.signal('SIGTERM');
  await Promise.all(running.map((node) => node.cli.exited().catch(() => killAll())));
  await redis?.dispose();
});

/** A node as an operator starts one: defaults, plus the shared Redis and secret. */
async function startNode(redisUrl: string, port = 0): Promise<HubNode> {
  const cli = runCli(['serve', '--host', '127.0.0.1', '--port', String(port), '--redis', redisUrl, '--auth-secret', SECRET, '--log', 'human']);
  const [, url] = await cli.waitFor('stdout', /^listening on (\S+)\n/m);
  return { cli, url: url!, address: new URL(url!).host };
}

function token(sub: string): string {
  return signToken({ sub, subscribe: ['chat.*'], publish: ['chat.*'] }, SECRET, { expiresInSeconds: 600 });
}

function nginxErrors(): string {
  return nginx?.errorLog().slice(-2000) ?? '';
}

async function until(check: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}; nginx's error log ends: ${nginxErrors()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A hub client through nginx on one transport, subscribed to `channel` once this resolves. */
async function join(name: string, transport: Transport, channel: string): Promise<Chatter> {
  const client = connect(nginx!.url, { transport, token: token(name), WebSocket, backoff: FAST, pollTimeoutMs: 2000 });
  clients.add(client);
  const chatter: Chatter = { name, transport, client, received: [], states: [] };
  client.on('state', (state) => chatter.states.push(state));
  let confirmed = false;
  client.subscribe(channel, (message) => chatter.received.push(message), { onSubscribed: () => (confirmed = true) });
  await until(() => confirmed, `${name}'s subscription over ${transport}`);
  return chatter;
}

function leave(chatters: Chatter[]): void {
  for (const { client } of chatters) {
    client.close();
    clients.delete(client);
  }
}

/** Each chatter publishes `count` messages ({from, n}, n counting on from `first`), all at once. */
async function chat(chatters: Chatter[], channel: string, first: number, count: number): Promise<void> {
  await Promise.all(chatters.map(({ client, name }) =>
    Promise.all(Array.from({ length: count }, (_, i) => client.publish(channel, { from: name, n: first + i })))));
}

interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request on a connection of its own, so no test depends on another's keep-alive socket. */
function request(url: string, options: http.RequestOptions = {}, body?: string): Promise<HttpAnswer> {
  return bounded(new Promise<HttpAnswer>((resolve, reject) => {
    const req = http.request(url, { agent: false, ...options }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk)).on('end', () => {
        resolve({ status: res.statusCode!, headers: res.headers, body: text });
      });
    });
    req.on('error', reject);
    req.end(body);
  }), 10_000, () => `no answer from ${url}`);
}

function publishOverHttp(channel: string, body: string, sub: string): Promise<HttpAnswer> {
  return request(`${nginx!.url}/api/channels/${encodeURIComponent(channel)}/publish`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token(sub)}` },
  }, body);
}

async function publishJson(channel: string, data: unknown, sub: string): Promise<number> {
  const answer = await publishOverHttp(channel, JSON.stringify(data), sub);
  assert.equal(answer.status, 200, `publish through nginx: ${answer.body}`);
  return (JSON.parse(answer.body) as { offset: number }).offset;
}

/** The sum of a metric's series (optionally those with one label value) in a node's /metrics. */
async function metric(node: HubNode, name: string, label?: string): Promise<number> {
  const answer = await request(`${node.url}/metrics`);
  assert.equal(answer.status, 200);
  let sum = 0;
  for (const line of answer.body.split('\n')) {
    const match = /^(\w+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (match?.[1] === name && (label === undefined || (match[2] ?? '').includes(label))) sum += Number(match[3]);
  }
  return sum;
}

/**
 * Waits until nginx has completed a request on a restarted node: only that clears the failure nginx
 * marked it with when it died (docs/deploy/nginx.conf, fail_timeout), so only then may the other
 * node go down. Asks /healthz through nginx until one answer came from this node.
 */
async function backInRotation(node: HubNode): Promise<void> {
  const logged = nginx!.accessLog().length;
  const answered = new RegExp(`"GET /healthz HTTP/1.1" 200 .* upstream=${node.address.replace(/\./g, '\\.')} `);
  for (let attempt = 0; attempt < 300; attempt++) {
    const answer = await request(`${nginx!.url}/healthz`);
    assert.equal(answer.status, 200);
    if (answered.test(nginx!.accessLog().slice(logged))) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`nginx never sent a request to ${node.address} again; its error log ends: ${nginxErrors()}`);
}

/** The node holding the one open WebSocket, once the nodes count exactly one between them. */
async function webSocketHolder(): Promise<HubNode> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const counts = await Promise.all(nodes.map((node) => metric(node, 'duplex_connections', 'transport="ws"')));
    const total = counts.reduce((a, b) => a + b, 0);
    if (total === 1) return nodes[counts.indexOf(1)]!;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('the nodes never counted exactly one WebSocket between them');
}

/**
 * Every chatter got exactly the messages after `startOffset` up to `count` of them: contiguous offsets,
 * the same sequence for everyone, and each publisher's messages in the order it sent them.
 */
async function assertConversation(chatters: Chatter[], startOffset: number, count: number, publishers: string[], perPublisher: number): Promise<void> {
  await until(() => chatters.every((c) => c.received.length >= count), `${count} messages at every client`);
  const offsets = Array.from({ length: count }, (_, i) => startOffset + 1 + i);
  const reference = chatters[0]!.received.map(({ offset, data, publisher }) => ({ offset, data, publisher }));
  for (const chatter of chatters) {
    const seen = chatter.received.map(({ offset, data, publisher }) => ({ offset, data, publisher }));
    assert.deepEqual(seen.map((m) => m.offset), offsets, `${chatter.name} (${chatter.transport}): offsets`);
    assert.deepEqual(seen, reference, `${chatter.name} (${chatter.transport}) saw what ${chatters[0]!.name} saw`);
  }
  for (const name of publishers) {
    const sent = reference.filter((m) => (m.data as { from: string }).from === name);
    assert.deepEqual(sent.map((m) => (m.data as { n: number }).n), Array.from({ length: perPublisher }, (_, i) => i), `${name}'s messages`);
    assert.ok(sent.every((m) => m.publisher === name), `${name} is named as the publisher`);
  }
}

describe('duplex behind nginx (docs/deploy): two nodes on Redis, no sticky sessions', () => {
  test('WebSocket, SSE and long-polling clients and an HTTP publisher chat through nginx; both nodes serve', TEST_TIMEOUT, async () => {
    const channel = 'chat.lobby';
    // One at a time: each long-lived connection then counts when nginx places the next.
    const chatters = [
      await join('alice', 'websocket', channel),
      await join('bob', 'sse', channel),
      await join('carol', 'poll', channel),
    ];
    try {
      await Promise.all([
        chat(chatters, channel, 0, PER_CLIENT),
        (async () => {
          for (let n = 0; n < PER_CLIENT; n++) await publishJson(channel, { from: 'dave', n }, 'dave');
        })(),
      ]);
      await assertConversation(chatters, 0, 4 * PER_CLIENT, ['alice', 'bob', 'carol', 'dave'], PER_CLIENT);

      // Each node counts what it served itself: both took part.
      for (const node of nodes) {
        assert.ok(await metric(node, 'duplex_connections_total') > 0, `node ${node.address} served no client`);
      }
      for (const node of nodes) assert.ok(nginx!.accessLog().includes(`upstream=${node.address}`), `nginx never used ${node.address}`);
    } finally {
      leave(chatters);
    }

    // nginx logs a stream when it ends. The documented format leaves query strings, and so the
    // tokens of SSE and polling, out.
    await until(() => nginx!.accessLog().includes('"GET /sse HTTP/1.1"'), 'the SSE stream in the access log', 5000);
    assert.doesNotMatch(nginx!.accessLog(), /token=/);
  });

  test('SSE through nginx is streamed as written: not buffered, not compressed', TEST_TIMEOUT, async () => {
    const channel = 'chat.stream';
    const url = `${nginx!.url}/sse?channel=${channel}&token=${token('erin')}`;
    let text = '';
    const wakes = new Set<() => void>();
    const res = await bounded(new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.get(url, { agent: false, headers: { Accept: 'text/event-stream', 'Accept-Encoding': 'gzip, deflate, br' } }, resolve);
      req.on('error', reject);
    }), 10_000, () => 'no answer to the SSE request');
    try {
      assert.equal(res.statusCode, 200);
      assert.match(String(res.headers['content-type']), /^text\/event-stream/);
      assert.equal(res.headers['content-encoding'], undefined, 'an event stream must not be compressed');
      // Passed on by the /sse location, for a proxy in front of this one.
      assert.equal(res.headers['x-accel-buffering'], 'no');
      res.setEncoding('utf8').on('data', (chunk: string) => {
        text += chunk;
        for (const wake of [...wakes]) wake();
      });
      const seen = (pattern: RegExp, ms: number, what: string) => bounded(new Promise<void>((resolve) => {
        const check = () => {
          if (!pattern.test(text)) return;
          wakes.delete(check);
          resolve();
        };
        wakes.add(check);
        check();
      }), ms, () => `${what}; the stream so far: ${JSON.stringify(text)}`);

      await seen(/event: subscribed\n/, 10_000, 'no subscribed event');
      const offset = await publishJson(channel, { text: 'now' }, 'frank');
      await seen(new RegExp(`id: ${offset}\nevent: message\ndata: [^\n]*"now"`), STREAM_BOUND_MS, `the message did not come through within ${STREAM_BOUND_MS} ms`);
    } finally {
      res.destroy();
    }
  });

  test("nginx passes bodies up to the hub's message limit, refuses larger ones itself, and keeps /metrics private", TEST_TIMEOUT, async () => {
    const channel = 'chat.sizes';
    const largest = JSON.stringify('x'.repeat(MAX_MESSAGE_SIZE - 2));
    assert.equal(Buffer.byteLength(largest), MAX_MESSAGE_SIZE);
    const accepted = await publishOverHttp(channel, largest, 'grace');
    assert.equal(accepted.status, 200, accepted.body);

    const refused = await publishOverHttp(channel, JSON.stringify('x'.repeat(MAX_MESSAGE_SIZE - 1)), 'grace');
    assert.equal(refused.status, 413);
    // nginx's own page, not the hub's JSON: the body never reached a node.
    assert.match(String(refused.headers['content-type']), /^text\/html/);

    assert.equal((await request(`${nginx!.url}/metrics`)).status, 403);
    const health = await request(`${nginx!.url}/healthz`);
    assert.deepEqual([health.status, health.body], [200, 'ok\n']);
  });

  test('a rolling restart: each node dies and comes back in turn; every client resumes through nginx, nothing lost or repeated', TEST_TIMEOUT, async () => {
    const channel = 'chat.rolling';
    const chatters = [
      await join('alice', 'websocket', channel),
      await join('bob', 'sse', channel),
      await join('carol', 'poll', channel),
    ];
    const [ws, ...fallbacks] = chatters as [Chatter, Chatter, Chatter];
    const names = chatters.map((c) => c.name);
    try {
      await chat(chatters, channel, 0, PER_CLIENT);
      await assertConversation(chatters, 0, 3 * PER_CLIENT, names, PER_CLIENT);

      // The first node's clients move to the second; once the first is back, the second dies and all
      // of them move to the first. So the WebSocket and the SSE stream both resume on another node.
      for (let round = 0; round < nodes.length; round++) {
        const victim = nodes[round]!;
        const heldWebSocket = (await webSocketHolder()) === victim;
        const dropsBefore = ws.states.filter((s) => s === 'reconnecting').length;
        victim.cli.signal('SIGKILL');
        await victim.cli.exited();

        // The fallbacks publish over HTTP at once, while the clients of the dead node are still away;
        // the WebSocket client publishes once it is back (a publish on a dead connection could not be
        // told stored or not).
        await chat(fallbacks, channel, (round + 1) * PER_CLIENT, PER_CLIENT);
        if (heldWebSocket) {
          await until(() => ws.states.filter((s) => s === 'reconnecting').length > dropsBefore && ws.client.state === 'open', 'the WebSocket client to reconnect');
        }
        await chat([ws], channel, (round + 1) * PER_CLIENT, PER_CLIENT);
        await assertConversation(chatters, 0, (round + 2) * 3 * PER_CLIENT, names, (round + 2) * PER_CLIENT);

        if (round + 1 < nodes.length) {
          const restarted = await startNode(redis!.url, Number(new URL(victim.url).port));
          nodes[round] = restarted;
          await backInRotation(restarted);
        }
      }
      assert.ok(ws.states.includes('reconnecting'), 'the WebSocket client never had to move');
    } finally {
      leave(chatters);
    }
  });
});
