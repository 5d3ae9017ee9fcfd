// The hub client library (src/client) against an in-process hub, in Node: every transport forced and
// 'auto' falling back, reconnects that lose and repeat nothing, auth, presence, the queue, and the
// pure parts (backoff, SSE parsing, URLs). Connections are cut server-side; a gate in front of the
// client's WebSocket and fetch keeps it disconnected for as long as a test needs, so no test depends
// on timing. Last, the same module runs in headless Chromium, loaded as the web app loads it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import http, { type ServerResponse } from 'node:http';
import { chromium, type Browser, type Page } from 'playwright-core';
import { WebSocket } from '../src/index.js';
import { signToken } from '../src/hub/auth.js';
import { Hub, type HubOptions } from '../src/hub/hub.js';
import { Backoff } from '../src/client/backoff.js';
import { endpoints } from '../src/client/endpoints.js';
import { SseParser, type SseEvent } from '../src/client/sse-reader.js';
import {
  connect, HubError, type ConnectOptions, type ConnectionState, type FetchLike, type HubClient, type HubMessage,
  type Transport, type WebSocketConstructorLike, type WebSocketLike,
} from '../src/client/hub-client.js';

const SECRET = 'a-test-secret-that-is-long-enough-for-hs256!';
const WAIT_MS = 5000;
const FAST = { initialMs: 10, maxMs: 50, jitter: 0 };
const TRANSPORTS: Transport[] = ['websocket', 'sse', 'poll'];

const hubs: Hub[] = [];
const clients: HubClient[] = [];
after(async () => {
  for (const c of clients) c.close();
  await Promise.all(hubs.map((h) => h.close()));
});

async function startHub(options: HubOptions = {}): Promise<{ hub: Hub; url: string }> {
  // A short poll hold and no publish limit keep the poll tests quick and the bursts unthrottled.
  const hub = new Hub({ port: 0, host: '127.0.0.1', pollTimeout: 2000, limits: { publishRate: { rate: 1e6, burst: 1e6 } }, ...options });
  hubs.push(hub);
  const { port } = await hub.listen();
  return { hub, url: `http://127.0.0.1:${port}` };
}

function client(url: string, options: ConnectOptions = {}): HubClient {
  const c = connect(url, { WebSocket, backoff: FAST, pollTimeoutMs: 2000, ...options });
  clients.push(c);
  return c;
}

/** Resolves once `check` holds, polling; rejects after `ms`. */
async function until(check: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function states(c: HubClient): ConnectionState[] {
  const seen: ConnectionState[] = [];
  c.on('state', (s) => seen.push(s));
  return seen;
}

/** Subscribes and resolves, with the messages array, once the hub confirmed the subscription. */
async function subscribed(c: HubClient, channel: string, options: { since?: number; presence?: unknown } = {}) {
  const messages: HubMessage[] = [];
  let confirmed: { offset: number; recovered?: boolean } | null = null;
  const sub = c.subscribe(channel, (m) => messages.push(m), { ...options, onSubscribed: (info) => (confirmed = info) });
  await until(() => confirmed !== null, `subscription to ${channel}`);
  return { sub, messages, info: confirmed! };
}

/** Publishes over a connection of its own: a pooled one might be one that cut() just destroyed. */
function httpPublish(url: string, channel: string, data: unknown, token?: string): Promise<number> {
  const body = JSON.stringify(data);
  return within(new Promise((resolve, reject) => {
    const req = http.request(`${url}/api/channels/${encodeURIComponent(channel)}/publish`, {
      method: 'POST',
      agent: false,
      headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk)).on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`publish answered ${res.statusCode}: ${text}`));
        resolve((JSON.parse(text) as { offset: number }).offset);
      });
    });
    req.on('error', reject);
    req.end(body);
  }), 'a publish over HTTP');
}

/** Drops every connection of the hub: WebSockets without a close frame, and all HTTP sockets. */
function cut(hub: Hub): void {
  for (const ws of hub['wss'].clients) ws.terminate();
  hub.server.closeAllConnections();
}

/** A WebSocket that never opens: error and close 1006 on the next tick, as a refused upgrade looks. */
class FailingWebSocket implements WebSocketLike {
  readyState = 0;
  onopen: ((ev: any) => unknown) | null = null;
  onmessage: ((ev: any) => unknown) | null = null;
  onclose: ((ev: any) => unknown) | null = null;
  onerror: ((ev: any) => unknown) | null = null;
  constructor() {
    setTimeout(() => {
      this.readyState = 3;
      this.onerror?.({});
      this.onclose?.({ code: 1006, reason: '' });
    }, 0);
  }
  send(): void {
    throw new Error('not open');
  }
  close(): void {
    this.readyState = 3;
  }
}

/** While closed, new WebSockets fail and fetches are refused, as when the hub is out of reach. */
class Gate {
  open = true;
  wsAttempts = 0;
  readonly WebSocket: WebSocketConstructorLike;
  readonly fetch: FetchLike;
  constructor() {
    const gate = this;
    this.WebSocket = function GatedWebSocket(url: string, protocols?: string | string[]) {
      gate.wsAttempts++;
      return gate.open ? new WebSocket(url, protocols) : new FailingWebSocket();
    } as unknown as WebSocketConstructorLike;
    this.fetch = (url, init) => (gate.open ? fetch(url, init) : Promise.reject(new TypeError('fetch failed (gate closed)')));
  }
}

describe('hub client: each transport forced', () => {
  for (const transport of TRANSPORTS) {
    test(`${transport}: subscribe, publish, receive, in order, with publisher and time`, { timeout: 20_000 }, async () => {
      const { url } = await startHub();
      const c = client(url, { transport });
      const seen = states(c);
      const { messages, info } = await subscribed(c, 'chat.room1');
      assert.equal(info.offset, 0);
      assert.equal(info.recovered, undefined);
      assert.equal(c.state, 'open');
      assert.equal(c.transport, transport);
      const results = [];
      for (let i = 0; i < 5; i++) results.push(c.publish('chat.room1', { n: i }));
      assert.deepEqual((await within(Promise.all(results), 'acks')).map((r) => r.offset), [1, 2, 3, 4, 5]);
      await until(() => messages.length === 5, 'five messages');
      assert.deepEqual(messages.map((m) => [m.offset, m.data]), [[1, { n: 0 }], [2, { n: 1 }], [3, { n: 2 }], [4, { n: 3 }], [5, { n: 4 }]]);
      assert.equal(messages[0]!.channel, 'chat.room1');
      assert.equal(messages[0]!.publisher, 'anonymous');
      assert.match(messages[0]!.time, /^\d{4}-\d\d-\d\dT/);
      assert.deepEqual(seen, ['connecting', 'open']);
      c.close();
      assert.equal(c.state, 'closed');
      assert.deepEqual(seen, ['connecting', 'open', 'closed']);
    });

    test(`${transport}: since resumes from history; unsubscribe stops delivery`, { timeout: 20_000 }, async () => {
      const { url } = await startHub();
      for (let i = 1; i <= 4; i++) await httpPublish(url, 'feed', i);
      const c = client(url, { transport });
      const { sub, messages, info } = await subscribed(c, 'feed', { since: 1 });
      assert.deepEqual(info, { offset: 4, recovered: true });
      await until(() => messages.length === 3, 'the replay');
      assert.deepEqual(messages.map((m) => m.data), [2, 3, 4]);
      assert.equal(sub.lastOffset, 4);
      sub.unsubscribe();
      // A second subscription sees the next message; the first, unsubscribed, must not.
      const other = await subscribed(c, 'other');
      await httpPublish(url, 'feed', 5);
      await c.publish('other', 'marker');
      await until(() => other.messages.length === 1, 'the marker');
      assert.equal(messages.length, 3);
    });

    test(`${transport}: presence lists the WebSocket members`, { timeout: 20_000 }, async () => {
      const { url } = await startHub();
      const member = client(url, { transport: 'websocket' });
      await subscribed(member, 'room', { presence: { name: 'Ann' } });
      const c = client(url, { transport });
      const members = await within(c.presence('room'), 'presence');
      assert.equal(members.length, 1);
      assert.deepEqual(members[0]!.info, { name: 'Ann' });
      assert.equal(typeof members[0]!.clientId, 'string');
    });

    test(`${transport}: reconnects after the hub cuts it, and delivers what was published meanwhile exactly once, in order`, { timeout: 20_000 }, async () => {
      const { hub, url } = await startHub();
      const gate = new Gate();
      const c = client(url, { transport, WebSocket: gate.WebSocket, fetch: gate.fetch });
      const seen = states(c);
      const { sub, messages } = await subscribed(c, 'chat.x');
      for (let i = 1; i <= 3; i++) await c.publish('chat.x', i);
      await until(() => messages.length === 3, 'the first three');

      gate.open = false;
      cut(hub);
      await until(() => c.state !== 'open', 'the client to notice the cut');
      for (let i = 4; i <= 8; i++) await httpPublish(url, 'chat.x', i);
      // Publishes made while away wait for the connection, then go in order.
      const queued = [c.publish('chat.x', 9), c.publish('chat.x', 10)];
      assert.equal(messages.length, 3);
      gate.open = true;

      assert.deepEqual((await within(Promise.all(queued), 'the queued publishes')).map((r) => r.offset), [9, 10]);
      await until(() => messages.length >= 10, 'all ten messages');
      await c.publish('chat.x', 11);
      await until(() => messages.length >= 11, 'the eleventh');
      assert.deepEqual(messages.map((m) => m.offset), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
      assert.deepEqual(messages.map((m) => m.data), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
      assert.equal(sub.lastOffset, 11);
      assert.equal(seen[0], 'connecting');
      assert.equal(seen[1], 'open');
      assert.ok(seen[2] === 'reconnecting', `states: ${seen.join(' ')}`);
      assert.equal(seen.at(-1), 'open');
      assert.equal(c.transport, transport);
    });

    test(`${transport}: a publish the hub refuses rejects with its code`, { timeout: 20_000 }, async () => {
      const { url } = await startHub({ limits: { maxMessageSize: 100 } });
      const c = client(url, { transport });
      await subscribed(c, 'c');
      const error = await within(c.publish('c', 'x'.repeat(500)).then(() => null, (e: unknown) => e), 'the refusal');
      assert.ok(error instanceof HubError);
      assert.equal(error.code, 'too_large');
      assert.equal(error.channel, 'c');
      assert.equal(c.state, 'open');
      assert.equal((await c.publish('c', 'small')).offset, 1);
    });
  }
});

describe('hub client: auth', () => {
  const token = (claims: { subscribe?: string[]; publish?: string[] } = { subscribe: ['chat.*'], publish: ['chat.*'] }) =>
    signToken({ sub: 'alice', ...claims }, SECRET, { expiresInSeconds: 300 });

  for (const transport of TRANSPORTS) {
    test(`${transport}: a token subscribes and publishes as its subject, and is never in a URL`, { timeout: 20_000 }, async () => {
      const { hub, url } = await startHub({ authSecret: SECRET });
      // What reached the hub, seen before the hub handles it.
      const seen: Array<{ method: string; url: string; credential: string | undefined }> = [];
      hub.server.prependListener('request', (req: http.IncomingMessage) => {
        seen.push({ method: req.method ?? '', url: req.url ?? '', credential: req.headers.authorization });
      });
      hub.server.prependListener('upgrade', (req: http.IncomingMessage) => {
        seen.push({ method: 'UPGRADE', url: req.url ?? '', credential: req.headers['sec-websocket-protocol'] });
      });
      const tok = token();
      const c = client(url, { transport, token: tok });
      const { messages } = await subscribed(c, 'chat.a');
      await c.publish('chat.a', 'hello');
      await until(() => messages.length === 1, 'the message');
      assert.equal(messages[0]!.publisher, 'alice');
      const requests = seen.map((r) => `${r.method} ${r.url} ${r.credential ?? '-'}`).join('\n');
      const path = transport === 'websocket' ? '/ws' : `/${transport}?`;
      assert.ok(seen.some((r) => r.url.startsWith(path)), requests);
      for (const r of seen) {
        assert.doesNotMatch(r.url, /token=/, requests);
        if (transport === 'websocket') assert.equal(r.credential, `duplex.v1, bearer.${tok}`, requests);
        else assert.equal(r.credential, `Bearer ${tok}`, requests);
      }
    });

    test(`${transport}: a subscription the token does not grant ends with forbidden; the client stays open`, { timeout: 20_000 }, async () => {
      const { url } = await startHub({ authSecret: SECRET });
      const c = client(url, { transport, token: token() });
      let refusal: HubError | null = null;
      c.subscribe('secret.x', () => {}, { onError: (e) => (refusal = e) });
      const ok = await subscribed(c, 'chat.ok');
      await until(() => refusal !== null, 'the refusal');
      assert.equal(refusal!.code, 'forbidden');
      assert.equal(refusal!.channel, 'secret.x');
      assert.equal(c.state, 'open');
      // The channel is free again.
      c.subscribe('secret.x', () => {}, { onError: () => {} }).unsubscribe();
      const error = await c.publish('secret.x', 1).then(() => null, (e: HubError) => e);
      assert.equal(error?.code, 'forbidden');
      await c.publish('chat.ok', 1);
      await until(() => ok.messages.length === 1, 'the granted message');
    });

    test(`${transport}: a bad token closes the client with unauthorized, without retrying`, { timeout: 20_000 }, async () => {
      const { url } = await startHub({ authSecret: SECRET });
      const gate = new Gate();
      let attempts = 0;
      const counting: FetchLike = (u, init) => {
        attempts++;
        return gate.fetch(u, init);
      };
      const c = client(url, { transport, token: signToken({ sub: 'x' }, 'another-secret-that-is-long-enough-too!!'), WebSocket: gate.WebSocket, fetch: counting });
      const errors: HubError[] = [];
      c.on('error', (e) => errors.push(e));
      const seen = states(c);
      const pending = c.publish('chat.a', 1).then(() => null, (e: HubError) => e);
      c.subscribe('chat.a', () => {});
      await until(() => c.state === 'closed', 'the client to close');
      assert.equal(c.lastError?.code, 'unauthorized');
      assert.equal(errors.length, 1);
      assert.equal(errors[0]!.code, 'unauthorized');
      // The hub can refuse a WebSocket only once it is open, so the publish may have been sent by then.
      assert.ok(['closed', 'connection_lost'].includes((await pending)!.code));
      assert.equal(seen.at(-1), 'closed');
      const tries = transport === 'websocket' ? gate.wsAttempts : attempts;
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(transport === 'websocket' ? gate.wsAttempts : attempts, tries, 'no retry after the refusal');
      assert.throws(() => c.subscribe('chat.b', () => {}), (e: HubError) => e.code === 'closed');
    });

    test(`${transport}: without subscriptions a bad token is found out too`, { timeout: 20_000 }, async () => {
      const { url } = await startHub({ authSecret: SECRET });
      const c = client(url, { transport });
      await until(() => c.state === 'closed', 'the client to close');
      assert.equal(c.lastError?.code, 'unauthorized');
    });
  }
});

describe('hub client: transport fallback', () => {
  test("'auto' uses WebSocket when it works", { timeout: 20_000 }, async () => {
    const { url } = await startHub();
    const c = client(url);
    const transports: Transport[] = [];
    c.on('transport', (t) => transports.push(t));
    await subscribed(c, 'a');
    assert.deepEqual(transports, ['websocket']);
  });

  test("'auto' falls back to SSE when WebSockets fail, and keeps it across reconnects", { timeout: 20_000 }, async () => {
    const { hub, url } = await startHub();
    const c = client(url, { WebSocket: FailingWebSocket as unknown as WebSocketConstructorLike });
    const transports: Transport[] = [];
    c.on('transport', (t) => transports.push(t));
    const { messages } = await subscribed(c, 'a');
    assert.equal(c.transport, 'sse');
    assert.deepEqual(transports, ['websocket', 'sse']);
    await c.publish('a', 1);
    await until(() => messages.length === 1, 'the message');
    cut(hub);
    await until(() => c.state !== 'open', 'the cut');
    await httpPublish(url, 'a', 2);
    await until(() => messages.length === 2, 'the message published during the cut');
    assert.deepEqual(messages.map((m) => m.data), [1, 2]);
    assert.deepEqual(transports, ['websocket', 'sse']);
  });

  test("'auto' falls back to long-polling when SSE fails too", { timeout: 20_000 }, async () => {
    const { url } = await startHub();
    // A proxy that does not pass event streams: /sse answers 502.
    const noSse: FetchLike = (u, init) => (new URL(u).pathname === '/sse' ? Promise.resolve(new Response('bad gateway', { status: 502 })) : fetch(u, init));
    const c = client(url, { WebSocket: FailingWebSocket as unknown as WebSocketConstructorLike, fetch: noSse });
    const transports: Transport[] = [];
    c.on('transport', (t) => transports.push(t));
    const { messages } = await subscribed(c, 'a');
    assert.equal(c.transport, 'poll');
    assert.deepEqual(transports, ['websocket', 'sse', 'poll']);
    await c.publish('a', 'via poll');
    await until(() => messages.length === 1, 'the message');
    assert.equal(messages[0]!.data, 'via poll');
  });

  test('a client without a WebSocket class starts with SSE; forcing WebSocket then is an error', async () => {
    const { url } = await startHub();
    const c = connect(url, { backoff: FAST });
    clients.push(c);
    await subscribed(c, 'a');
    assert.equal(c.transport, 'sse');
    assert.throws(() => connect(url, { transport: 'websocket' }), /WebSocket/);
  });
});

describe('hub client: states, backoff and the queue', () => {
  test("goes 'offline' after offlineAfter failed attempts, and comes back", { timeout: 20_000 }, async () => {
    const { url } = await startHub();
    const gate = new Gate();
    gate.open = false;
    const c = client(url, { transport: 'websocket', WebSocket: gate.WebSocket, offlineAfter: 3 });
    const seen = states(c);
    let attemptsWhenOffline = 0;
    c.on('state', (s) => {
      if (s === 'offline') attemptsWhenOffline = gate.wsAttempts;
    });
    await until(() => c.state === 'offline', 'offline');
    assert.deepEqual(seen, ['connecting', 'offline']);
    assert.equal(attemptsWhenOffline, 3);
    assert.equal(c.lastError?.code, 'connection_lost');
    gate.open = true;
    await until(() => c.state === 'open', 'open');
    assert.deepEqual(seen, ['connecting', 'offline', 'open']);
  });

  test("is 'offline' without trying while the device says it is offline", { timeout: 20_000 }, async () => {
    const { url } = await startHub();
    const gate = new Gate();
    let online = false;
    const c = client(url, { transport: 'websocket', WebSocket: gate.WebSocket, online: () => online });
    await until(() => c.state === 'offline', 'offline');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(gate.wsAttempts, 0);
    online = true;
    await until(() => c.state === 'open', 'open');
  });

  test('waiting requests are bounded by maxQueue and rejected by close()', { timeout: 20_000 }, async () => {
    const { url } = await startHub();
    const gate = new Gate();
    gate.open = false;
    const c = client(url, { transport: 'websocket', WebSocket: gate.WebSocket, maxQueue: 2 });
    const first = c.publish('a', 1).then(() => null, (e: HubError) => e.code);
    const second = c.presence('a').then(() => null, (e: HubError) => e.code);
    const third = await c.publish('a', 3).then(() => null, (e: HubError) => e.code);
    assert.equal(third, 'queue_full');
    c.close();
    assert.deepEqual(await Promise.all([first, second]), ['closed', 'closed']);
    assert.equal(await c.publish('a', 4).then(() => null, (e: HubError) => e.code), 'closed');
  });

  test('subscribing twice to a channel is refused; bad arguments throw', async () => {
    const { url } = await startHub();
    const c = client(url);
    c.subscribe('a', () => {});
    assert.throws(() => c.subscribe('a', () => {}), (e: HubError) => e.code === 'already_subscribed');
    assert.throws(() => c.subscribe('b', () => {}, { since: -1 }), RangeError);
    assert.throws(() => connect('ftp://x'), TypeError);
    assert.throws(() => connect(url, { WebSocket, backoff: { factor: 0.5 } }), RangeError);
  });

  test('backoff grows by factor up to maxMs, jitter takes off at most its share', () => {
    const exact = new Backoff({ initialMs: 100, maxMs: 1000, factor: 2, jitter: 0 });
    assert.deepEqual([1, 2, 3, 4, 5, 6, 50].map((n) => exact.delay(n)), [100, 200, 400, 800, 1000, 1000, 1000]);
    let r = 0;
    const jittered = new Backoff({ initialMs: 100, maxMs: 1000, factor: 2, jitter: 0.5 }, () => r);
    assert.equal(jittered.delay(2), 200);
    r = 0.999999;
    assert.equal(jittered.delay(2), 100);
    r = 0.5;
    assert.equal(jittered.delay(4), 600);
    const defaults = new Backoff();
    assert.deepEqual([defaults.initialMs, defaults.maxMs, defaults.factor, defaults.jitter], [500, 30_000, 2, 0.5]);
  });
});

/** A hub played by the test over a fake WebSocket, for what a real hub never does. */
class ScriptedWebSocket implements WebSocketLike {
  static last: ScriptedWebSocket | null = null;
  readyState = 0;
  readonly sent: any[] = [];
  onopen: ((ev: any) => unknown) | null = null;
  onmessage: ((ev: any) => unknown) | null = null;
  onclose: ((ev: any) => unknown) | null = null;
  onerror: ((ev: any) => unknown) | null = null;
  constructor(readonly url: string, readonly protocols?: string | string[]) {
    ScriptedWebSocket.last = this;
    setTimeout(() => {
      this.readyState = 1;
      this.onopen?.({});
    }, 0);
  }
  send(data: string): void {
    this.sent.push(JSON.parse(data));
  }
  close(): void {
    this.readyState = 3;
  }
  deliver(envelope: unknown): void {
    this.onmessage?.({ data: JSON.stringify(envelope) });
  }
  drop(code = 1006, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

describe('hub client: delivery rules, over a scripted hub', () => {
  const message = (offset: number) => ({ type: 'message', channel: 'c', offset, data: offset, time: new Date(0).toISOString() });

  test('never delivers an offset at or below the last one, and follows a hub whose numbering restarted', { timeout: 20_000 }, async () => {
    const c = client('http://127.0.0.1:9', { WebSocket: ScriptedWebSocket as unknown as WebSocketConstructorLike, token: 'T' });
    const got: number[] = [];
    const infos: unknown[] = [];
    c.subscribe('c', (m) => got.push(m.offset), { since: 10, onSubscribed: (i) => infos.push(i) });
    await until(() => ScriptedWebSocket.last?.sent.length === 1, 'the subscribe');
    const ws = ScriptedWebSocket.last!;
    assert.deepEqual(ws.protocols, ['duplex.v1', 'bearer.T']);
    assert.equal(ws.url, 'ws://127.0.0.1:9/ws');
    const subscribe = ws.sent[0];
    assert.deepEqual({ ...subscribe, id: 0 }, { type: 'subscribe', channel: 'c', since: 10, id: 0 });
    // A message before the subscription is confirmed belongs to nothing of ours.
    ws.deliver(message(11));
    ws.deliver({ type: 'subscribed', channel: 'c', offset: 13, recovered: true, id: subscribe.id });
    for (const offset of [9, 10, 11, 12, 12, 11, 13]) ws.deliver(message(offset));
    assert.deepEqual(got, [11, 12, 13]);
    assert.deepEqual(infos, [{ offset: 13, recovered: true }]);

    ws.drop();
    await until(() => ScriptedWebSocket.last !== ws && ScriptedWebSocket.last!.sent.length === 1, 'the resubscribe');
    const again = ScriptedWebSocket.last!;
    assert.equal(again.sent[0].since, 13);
    // An in-memory hub that restarted: its offsets begin again at 1.
    again.deliver({ type: 'subscribed', channel: 'c', offset: 2, recovered: false, id: again.sent[0].id });
    for (const offset of [1, 2, 3]) again.deliver(message(offset));
    assert.deepEqual(got, [11, 12, 13, 3]);
    assert.deepEqual(infos.at(-1), { offset: 2, recovered: false });
    c.close();
  });

  test('a publish in flight when the connection drops rejects with connection_lost and is not resent', { timeout: 20_000 }, async () => {
    const c = client('http://127.0.0.1:9', { WebSocket: ScriptedWebSocket as unknown as WebSocketConstructorLike });
    await until(() => c.state === 'open', 'open');
    const ws = ScriptedWebSocket.last!;
    const result = c.publish('c', 'x').then(() => null, (e: HubError) => e.code);
    assert.equal(ws.sent[0].type, 'publish');
    ws.drop();
    assert.equal(await result, 'connection_lost');
    await until(() => ScriptedWebSocket.last !== ws && c.state === 'open', 'the reconnect');
    assert.deepEqual(ScriptedWebSocket.last!.sent, []);
    c.close();
  });

  test('a request the hub does not answer rejects after requestTimeoutMs', { timeout: 20_000 }, async () => {
    const c = client('http://127.0.0.1:9', { WebSocket: ScriptedWebSocket as unknown as WebSocketConstructorLike, requestTimeoutMs: 20 });
    await until(() => c.state === 'open', 'open');
    assert.equal(await within(c.presence('c').then(() => null, (e: HubError) => e.code), 'the timeout'), 'timeout');
    assert.equal(c.state, 'open');
    c.close();
  });

  test('a 4401 close is final; an error envelope without an id goes to the error event', { timeout: 20_000 }, async () => {
    const c = client('http://127.0.0.1:9', { WebSocket: ScriptedWebSocket as unknown as WebSocketConstructorLike });
    const errors: string[] = [];
    c.on('error', (e) => errors.push(e.code));
    await until(() => c.state === 'open', 'open');
    const ws = ScriptedWebSocket.last!;
    ws.deliver({ type: 'error', code: 'bad_request', message: 'what?' });
    ws.drop(4401, 'token expired');
    assert.equal(c.state, 'closed');
    assert.deepEqual(errors, ['bad_request', 'unauthorized']);
    assert.match(c.lastError!.message, /token expired/);
  });

  test('presence events are asked for with onPresence, and reach it', { timeout: 20_000 }, async () => {
    const c = client('http://127.0.0.1:9', { WebSocket: ScriptedWebSocket as unknown as WebSocketConstructorLike });
    const events: unknown[] = [];
    c.subscribe('quiet', () => {}, { presence: { me: 1 } });
    c.subscribe('c', () => {}, { presence: { me: 1 }, onPresence: (e) => events.push(e) });
    await until(() => ScriptedWebSocket.last?.sent.length === 2, 'the subscribes');
    const ws = ScriptedWebSocket.last!;
    assert.equal(ws.sent[0].presenceEvents, undefined);
    ws.sent.shift();
    assert.deepEqual(ws.sent[0].presence, { me: 1 });
    assert.equal(ws.sent[0].presenceEvents, true);
    ws.deliver({ type: 'subscribed', channel: 'c', offset: 0, id: ws.sent[0].id });
    ws.deliver({ type: 'presence', channel: 'c', event: 'join', clientId: 'k1', user: 'bob', info: { x: 1 } });
    assert.deepEqual(events, [{ channel: 'c', event: 'join', member: { clientId: 'k1', user: 'bob', info: { x: 1 } } }]);
    c.close();
  });
});

describe('hub client: pure parts', () => {
  test('SSE parsing: line ends of every kind, split anywhere; multi-line data; comments; no data, no event', () => {
    const text = ': hello\r\nretry: 2000\r\n\r\nid: 3\nevent: subscribed\ndata: {"a":1}\n\ndata: one\rdata:two\r\n\r\nevent: empty\n\nid: 4\ndata: x\n\n';
    const expected: SseEvent[] = [
      { event: 'subscribed', data: '{"a":1}', id: '3' },
      { event: 'message', data: 'one\ntwo', id: '3' },
      { event: 'message', data: 'x', id: '4' },
    ];
    for (let split = 0; split <= text.length; split++) {
      for (const size of [1, 2, 7]) {
        const events: SseEvent[] = [];
        const parser = new SseParser((e) => events.push(e));
        parser.push(text.slice(0, split));
        for (let i = split; i < text.length; i += size) parser.push(text.slice(i, i + size));
        assert.deepEqual(events, expected, `split at ${split}, then ${size}`);
      }
    }
  });

  test('URLs: ws from http(s), a base path kept, channels encoded', () => {
    const plain = endpoints('http://127.0.0.1:8080');
    assert.equal(plain.ws, 'ws://127.0.0.1:8080/ws');
    assert.equal(plain.http('sse', { channel: 'a.b/c', since: 3, timeout: undefined }), 'http://127.0.0.1:8080/sse?channel=a.b%2Fc&since=3');
    const based = endpoints('https://example.test/hub?x=1');
    assert.equal(based.ws, 'wss://example.test/hub/ws');
    assert.equal(based.http('api/channels'), 'https://example.test/hub/api/channels');
    assert.equal(endpoints('ws://h:1/').http('poll'), 'http://h:1/poll');
  });
});

// ---- in a browser ----

const CLIENT_DIR = new URL('../src/client/', import.meta.url);
const PAGE = '<!doctype html><script type="module">import * as hub from "/client/hub-client.js"; window.hubClient = hub;</script>';

/** Hub routes for the page and the compiled client modules (dist/src/client), as the web app gets them. */
function servePage(res: ServerResponse, url: URL): boolean {
  if (url.pathname === '/') {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(PAGE);
    return true;
  }
  const file = /^\/client\/([a-z-]+\.js)$/.exec(url.pathname)?.[1];
  if (!file) return false;
  readFile(new URL(file, CLIENT_DIR)).then(
    (body) => res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8' }).end(body),
    () => res.writeHead(404).end(),
  );
  return true;
}

describe('hub client: in Chromium', () => {
  let browser: Browser;
  let page: Page;
  let hub: Hub;

  before(async () => {
    const started = await startHub({ authSecret: SECRET, routes: (_req, res, url) => servePage(res, url) });
    hub = started.hub;
    browser = await within(chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update'],
    }), 'Chromium to start', 20_000);
    page = await browser.newPage();
    await page.goto(`${started.url}/`);
    await page.waitForFunction(() => (globalThis as any).hubClient !== undefined, undefined, { timeout: WAIT_MS });
  });

  after(async () => {
    await browser?.close();
  });

  for (const transport of [...TRANSPORTS, 'auto'] as const) {
    test(`${transport}: connects with a token, subscribes, publishes, receives, and survives a cut`, { timeout: 30_000 }, async () => {
      const token = signToken({ sub: 'browser', subscribe: ['*'], publish: ['*'] }, SECRET, { expiresInSeconds: 300 });
      const channel = `web.${transport}`;
      const first = await page.evaluate(async ({ transport, token, channel }) => {
        const g = globalThis as any;
        const deadline = (ms: number, what: string) => new Promise((_, reject) => setTimeout(() => reject(new Error(`page: no ${what}`)), ms));
        const c = g.hubClient.connect(g.location.origin, { transport, token, backoff: { initialMs: 10, maxMs: 50, jitter: 0 } });
        const got: unknown[] = [];
        const states: string[] = [];
        c.on('state', (s: string) => states.push(s));
        g.test = { c, got, states };
        await Promise.race([
          new Promise((resolve) => c.subscribe(channel, (m: any) => got.push(m.data), { onSubscribed: resolve })),
          deadline(5000, 'subscription'),
        ]);
        const { offset } = await c.publish(channel, { n: 1 });
        for (let i = 0; i < 500 && got.length < 1; i++) await new Promise((resolve) => setTimeout(resolve, 10));
        return { offset, got: [...got], transport: c.transport, state: c.state };
      }, { transport, token, channel });
      assert.deepEqual(first, { offset: 1, got: [{ n: 1 }], transport: transport === 'auto' ? 'websocket' : transport, state: 'open' });

      cut(hub);
      // Chromium resends a GET whose reused connection was reset before any answer, so a cut long-poll
      // goes unnoticed, as it should; the other transports see theirs drop.
      const noticed = transport !== 'poll';
      if (noticed) await page.waitForFunction(() => (globalThis as any).test.states.includes('reconnecting'), undefined, { timeout: WAIT_MS });
      await httpPublish(`http://127.0.0.1:${(hub.server.address() as { port: number }).port}`, channel, { n: 2 }, token);
      await page.waitForFunction(() => (globalThis as any).test.got.length >= 2, undefined, { timeout: WAIT_MS });
      const second = await page.evaluate(() => {
        const t = (globalThis as any).test;
        t.c.close();
        return { got: t.got, states: t.states };
      });
      assert.deepEqual(second.got, [{ n: 1 }, { n: 2 }]);
      assert.deepEqual(second.states.slice(0, 3), noticed ? ['connecting', 'open', 'reconnecting'] : ['connecting', 'open', 'closed']);
      assert.equal(second.states.at(-1), 'closed');
    });
  }

  test('sse, poll: from another origin, the token goes in a header the hub\'s CORS preflight allows', { timeout: 30_000 }, async () => {
    // The page comes from a server of its own, so the hub is another origin and every request with
    // an Authorization header is preflighted.
    const pages = http.createServer((req, res) => {
      if (!servePage(res, new URL(req.url ?? '/', 'http://page'))) res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => pages.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(pages.address() as { port: number }).port}`;
    const hubOrigin = `http://127.0.0.1:${(hub.server.address() as { port: number }).port}`;
    const seen: Array<{ method: string; path: string; url: string; origin?: string; credential?: string; asked?: string }> = [];
    const record = (req: http.IncomingMessage) => {
      const url = req.url ?? '';
      seen.push({
        method: req.method ?? '', path: url.replace(/\?.*/, ''), url, origin: req.headers.origin,
        credential: req.headers.authorization, asked: req.headers['access-control-request-headers'],
      });
    };
    hub.server.prependListener('request', record);
    const other = await browser.newPage();
    try {
      await other.goto(`${origin}/`);
      await other.waitForFunction(() => (globalThis as any).hubClient !== undefined, undefined, { timeout: WAIT_MS });
      const token = signToken({ sub: 'elsewhere', subscribe: ['*'], publish: ['*'] }, SECRET, { expiresInSeconds: 300 });
      for (const transport of ['sse', 'poll'] as const) {
        const result = await other.evaluate(async ({ transport, token, hubOrigin }) => {
          const g = globalThis as any;
          const deadline = (ms: number, what: string) => new Promise((_, reject) => setTimeout(() => reject(new Error(`page: no ${what}`)), ms));
          const c = g.hubClient.connect(hubOrigin, { transport, token, backoff: { initialMs: 10, maxMs: 50, jitter: 0 } });
          const got: unknown[] = [];
          try {
            await Promise.race([
              new Promise((resolve) => c.subscribe('cors.x', (m: any) => got.push(m.data), { onSubscribed: resolve })),
              deadline(5000, 'subscription'),
            ]);
            const { offset } = await c.publish('cors.x', { transport });
            for (let i = 0; i < 500 && got.length < 1; i++) await new Promise((resolve) => setTimeout(resolve, 10));
            return { offset: offset > 0, got, state: c.state, error: c.lastError?.message ?? null };
          } finally {
            c.close();
          }
        }, { transport, token, hubOrigin });
        assert.deepEqual(result, { offset: true, got: [{ transport }], state: 'open', error: null });
        const requests = seen.map((r) => `${r.method} ${r.url} origin=${r.origin} auth=${r.credential ?? '-'} asked=${r.asked ?? '-'}`).join('\n');
        const preflights = seen.filter((r) => r.method === 'OPTIONS' && r.path === `/${transport}`);
        assert.ok(preflights.length > 0, `no preflight of /${transport}:\n${requests}`);
        for (const r of preflights) assert.match(r.asked ?? '', /(^|,\s*)authorization(\s*,|$)/i, requests);
        const feeds = seen.filter((r) => r.method === 'GET' && r.path === `/${transport}`);
        assert.ok(feeds.length > 0, `no GET /${transport}:\n${requests}`);
        for (const r of seen.filter((r) => r.method !== 'OPTIONS')) {
          assert.equal(r.origin, origin, requests);
          assert.equal(r.credential, `Bearer ${token}`, requests);
        }
        for (const r of seen) assert.doesNotMatch(r.url, /token=/, requests);
        seen.length = 0;
      }
    } finally {
      hub.server.off('request', record);
      await other.close();
      pages.closeAllConnections();
      await new Promise((resolve) => pages.close(resolve));
    }
  });
});
