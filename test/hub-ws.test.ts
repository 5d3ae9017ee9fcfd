import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WS from 'ws';
import { WebSocket } from '../src/index.js';
import { signToken } from '../src/hub/auth.js';
import { Hub, type HubOptions } from '../src/hub/hub.js';
import { MemoryEngine } from '../src/hub/memory-engine.js';

const SECRET = 'a-test-secret-that-is-long-enough-for-hs256!';
const hubs: Hub[] = [];
after(async () => {
  await Promise.all(hubs.map((h) => h.close()));
});

async function startHub(options: HubOptions = {}): Promise<{ hub: Hub; url: string; http: string }> {
  const hub = new Hub({ port: 0, host: '127.0.0.1', ...options });
  hubs.push(hub);
  const { port } = await hub.listen();
  return { hub, url: `ws://127.0.0.1:${port}/ws`, http: `http://127.0.0.1:${port}` };
}

/** A hub client over our WebSocket that collects envelopes and can wait for one. */
class Client {
  readonly ws: WebSocket;
  readonly received: any[] = [];
  private waiters: Array<{ test: (m: any) => boolean; resolve: (m: any) => void }> = [];
  closed: Promise<{ code: number; reason: string }>;

  constructor(url: string, protocols?: string[]) {
    this.ws = new WebSocket(url, protocols);
    this.ws.on('message', (ev) => {
      const m = JSON.parse(String(ev.data));
      this.received.push(m);
      this.waiters = this.waiters.filter((w) => (w.test(m) ? (w.resolve(m), false) : true));
    });
    this.closed = new Promise((resolve) => this.ws.on('close', (ev) => resolve({ code: ev.code, reason: ev.reason })));
  }

  opened(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ws.on('open', () => resolve());
      this.ws.on('close', () => reject(new Error('closed before open')));
    });
  }

  send(m: unknown): void {
    this.ws.send(JSON.stringify(m));
  }

  next(test: (m: any) => boolean, what = 'envelope', ms = 3000): Promise<any> {
    const found = this.received.find(test);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
      this.waiters.push({ test, resolve: (m) => { clearTimeout(timer); resolve(m); } });
    });
  }

  reply(id: unknown): Promise<any> {
    return this.next((m) => m.id === id, `reply to ${String(id)}`);
  }

  messages(channel: string): any[] {
    return this.received.filter((m) => m.type === 'message' && m.channel === channel);
  }

  async count(channel: string, n: number, ms = 5000): Promise<any[]> {
    const deadline = Date.now() + ms;
    while (this.messages(channel).length < n) {
      if (Date.now() > deadline) throw new Error(`got ${this.messages(channel).length} of ${n} messages on ${channel}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.messages(channel);
  }

  close(): void {
    this.ws.close();
  }
}

async function client(url: string, protocols?: string[]): Promise<Client> {
  const c = new Client(url, protocols);
  await c.opened();
  return c;
}

describe('hub over WebSocket', () => {
  test('subscribe, publish with ack, messages with offsets and time, in request order', async () => {
    const { url } = await startHub();
    const a = await client(url);
    const b = await client(url);
    a.send({ type: 'subscribe', channel: 'room.1', id: 's' });
    a.send({ type: 'publish', channel: 'room.1', data: { text: 'hello' }, id: 'p1' });
    assert.deepEqual(await a.reply('s'), { type: 'subscribed', channel: 'room.1', offset: 0, id: 's' });
    assert.deepEqual(await a.reply('p1'), { type: 'ack', id: 'p1', offset: 1 });
    const order = a.received.map((m) => m.type);
    assert.deepEqual(order.slice(0, 3), ['subscribed', 'message', 'ack']);
    b.send({ type: 'publish', channel: 'room.1', data: [1, 2], id: 7 });
    await b.reply(7);
    const msgs = await a.count('room.1', 2);
    assert.deepEqual(msgs.map((m) => [m.offset, m.data]), [[1, { text: 'hello' }], [2, [1, 2]]]);
    assert.ok(!Number.isNaN(Date.parse(msgs[0].time)));
    assert.equal(b.messages('room.1').length, 0, 'publishing does not subscribe');
    a.close();
    b.close();
  });

  test('the ws package as a client', async () => {
    const { url } = await startHub();
    const ws = new WS(url);
    const got: any[] = [];
    await new Promise((r) => ws.on('open', r));
    ws.on('message', (d) => got.push(JSON.parse(String(d))));
    ws.send(JSON.stringify({ type: 'subscribe', channel: 'x', id: 1 }));
    ws.send(JSON.stringify({ type: 'publish', channel: 'x', data: 'from ws', id: 2 }));
    const deadline = Date.now() + 3000;
    while (!got.some((m) => m.type === 'message') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(got.find((m) => m.type === 'message').data, 'from ws');
    ws.close();
  });

  test('resume: 1,000 messages missed while away arrive exactly once, in order, then live', async () => {
    const { url, http } = await startHub({ historySize: 5000, limits: { publishRate: { rate: 1e6, burst: 1e6 } } });
    const a = await client(url);
    a.send({ type: 'subscribe', channel: 'feed', id: 1 });
    await a.reply(1);
    const publisher = await client(url);
    publisher.send({ type: 'publish', channel: 'feed', data: 0, id: 'first' });
    await a.count('feed', 1);
    const last = a.messages('feed').at(-1).offset;
    a.close();
    await a.closed;
    for (let i = 1; i <= 1000; i++) publisher.send({ type: 'publish', channel: 'feed', data: i, id: `p${i}` });
    await publisher.reply('p1000');
    const b = await client(url);
    b.send({ type: 'subscribe', channel: 'feed', since: last, id: 'resume' });
    // Live publishes race the replay: they must come after it, once each.
    for (let i = 1001; i <= 1010; i++) publisher.send({ type: 'publish', channel: 'feed', data: i, id: `p${i}` });
    const sub = await b.reply('resume');
    assert.equal(sub.recovered, true);
    const got = await b.count('feed', 1010);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(b.messages('feed').map((m) => m.data), Array.from({ length: 1010 }, (_, i) => i + 1));
    assert.deepEqual(got.map((m) => m.offset), Array.from({ length: 1010 }, (_, i) => last + i + 1));
    const history = await (await fetch(`${http}/api/channels/feed/history?since=${last}&limit=5`)).json() as any;
    assert.deepEqual(history.messages.map((m: any) => m.data), [1, 2, 3, 4, 5]);
    b.close();
    publisher.close();
  });

  test('history that no longer reaches back says recovered: false', async () => {
    const { url } = await startHub({ historySize: 10 });
    const p = await client(url);
    for (let i = 1; i <= 30; i++) p.send({ type: 'publish', channel: 'short', data: i, id: i });
    await p.reply(30);
    p.send({ type: 'subscribe', channel: 'short', since: 5, id: 's' });
    const sub = await p.reply('s');
    assert.deepEqual({ offset: sub.offset, recovered: sub.recovered }, { offset: 30, recovered: false });
    const msgs = await p.count('short', 10);
    assert.deepEqual(msgs.map((m) => m.offset), [21, 22, 23, 24, 25, 26, 27, 28, 29, 30]);
    p.close();
  });

  test('malformed envelopes get an error and the connection stays open', async () => {
    const { url } = await startHub();
    const c = await client(url);
    const cases: Array<[unknown, string]> = [
      ['not json', 'bad_request'],
      [[1, 2], 'bad_request'],
      [{ type: 'dance', channel: 'a' }, 'bad_request'],
      [{ type: 'subscribe' }, 'invalid_channel'],
      [{ type: 'subscribe', channel: 'bad channel!' }, 'invalid_channel'],
      [{ type: 'subscribe', channel: 'a', since: -1 }, 'bad_request'],
      [{ type: 'publish', channel: 'a' }, 'bad_request'],
      [{ type: 'unsubscribe', channel: 'never' }, 'not_subscribed'],
    ];
    for (const [raw] of cases) c.ws.send(typeof raw === 'string' ? raw : JSON.stringify(raw));
    c.ws.send(Buffer.from('binary'));
    const deadline = Date.now() + 3000;
    while (c.received.filter((m) => m.type === 'error').length < cases.length + 1 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const codes = c.received.filter((m) => m.type === 'error').map((m) => m.code);
    assert.deepEqual(codes, [...cases.map(([, code]) => code), 'bad_request']);
    c.send({ type: 'publish', channel: 'still.open', data: 1, id: 'ok' });
    assert.equal((await c.reply('ok')).type, 'ack');
    c.close();
  });

  test('limits: message size, publish rate, subscriptions per connection — others undisturbed', async () => {
    const { url } = await startHub({ limits: { maxMessageSize: 1000, publishRate: { rate: 5, burst: 5 }, maxSubscriptions: 2 } });
    const c = await client(url);
    const bystander = await client(url);
    bystander.send({ type: 'subscribe', channel: 'calm', id: 1 });
    await bystander.reply(1);
    c.send({ type: 'publish', channel: 'calm', data: 'x'.repeat(2000), id: 'big' });
    assert.equal((await c.reply('big')).code, 'too_large');
    for (let i = 0; i < 8; i++) c.send({ type: 'publish', channel: 'calm', data: i, id: `r${i}` });
    await c.reply('r7');
    const rate = c.received.filter((m) => String(m.id).startsWith('r'));
    assert.equal(rate.filter((m) => m.type === 'ack').length, 5);
    assert.ok(rate.filter((m) => m.type === 'error').every((m) => m.code === 'rate_limited'));
    for (const ch of ['s1', 's2', 's3']) c.send({ type: 'subscribe', channel: ch, id: ch });
    assert.equal((await c.reply('s3')).code, 'too_many_subscriptions');
    await bystander.count('calm', 5);
    assert.equal(bystander.ws.readyState, WebSocket.OPEN);
    c.close();
    bystander.close();
  });

  test('publishes are pipelined to the engine, acks keep request order; other requests still act in turn', async () => {
    // An engine that holds every publish until released, as a remote store does for a round trip.
    const inner = new MemoryEngine();
    const held: Array<() => void> = [];
    const engine = Object.assign(Object.create(inner) as MemoryEngine, {
      publish: (channel: string, data: unknown, publisher?: string) =>
        new Promise<Awaited<ReturnType<MemoryEngine['publish']>>>((resolve) => held.push(() => resolve(inner.publish(channel, data, publisher)))),
    });
    const { url } = await startHub({ engine });
    const c = await client(url);
    for (const n of [1, 2, 3]) c.send({ type: 'publish', channel: 'pipe', data: n, id: `p${n}` });
    const deadline = Date.now() + 5000;
    while (held.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.equal(held.length, 3, 'all three publishes reached the engine before any was answered');
    for (const release of held.splice(0).reverse()) release();
    await c.reply('p3');
    assert.deepEqual(c.received.filter((m) => m.type === 'ack').map((m) => m.id), ['p1', 'p2', 'p3']);
    // Behind a subscribe, a publish waits until the subscribe has acted.
    c.send({ type: 'subscribe', channel: 'pipe', id: 's' });
    c.send({ type: 'publish', channel: 'pipe', data: 4, id: 'p4' });
    await c.reply('s');
    while (held.length < 1 && Date.now() < deadline + 5000) await new Promise((r) => setTimeout(r, 5));
    held.splice(0).forEach((release) => release());
    await c.reply('p4');
    const order = c.received.map((m) => m.id ?? m.type).slice(3);
    assert.deepEqual(order.filter((x) => x === 's' || x === 'p4'), ['s', 'p4']);
    c.close();
  });

  test('presence: list, join and leave events', async () => {
    const { url, http } = await startHub();
    const a = await client(url);
    a.send({ type: 'subscribe', channel: 'lobby', presence: { name: 'ann' }, presenceEvents: true, id: 1 });
    await a.reply(1);
    const b = await client(url);
    b.send({ type: 'subscribe', channel: 'lobby', presence: { name: 'bob' }, id: 2 });
    await b.reply(2);
    const join = await a.next((m) => m.type === 'presence' && m.event === 'join', 'join');
    assert.deepEqual(join.info, { name: 'bob' });
    // b did not ask for events: it is in the channel's presence but hears nothing of others.
    const c = await client(url);
    c.send({ type: 'subscribe', channel: 'lobby', presence: { name: 'cy' }, id: 3 });
    await c.reply(3);
    await a.next((m) => m.type === 'presence' && m.event === 'join' && m.info.name === 'cy', 'join of cy');
    c.close();
    await a.next((m) => m.type === 'presence' && m.event === 'leave' && m.clientId !== join.clientId, 'leave of cy');
    assert.equal(b.received.filter((m) => m.type === 'presence' && m.event).length, 0);
    b.send({ type: 'subscribe', channel: 'other', presenceEvents: 'yes', id: 4 });
    assert.equal((await b.reply(4)).code, 'bad_request');
    b.send({ type: 'presence', channel: 'lobby', id: 'list' });
    const list = await b.reply('list');
    assert.deepEqual(list.members.map((m: any) => m.info.name).sort(), ['ann', 'bob']);
    const viaHttp = await (await fetch(`${http}/api/channels/lobby/presence`)).json() as any;
    assert.equal(viaHttp.members.length, 2);
    b.close();
    await a.next((m) => m.type === 'presence' && m.event === 'leave' && m.clientId === join.clientId, 'leave of bob');
    a.close();
  });

  test('metrics move', async () => {
    const { url, http } = await startHub();
    const scrape = async () => {
      const text = await (await fetch(`${http}/metrics`)).text();
      const value = (name: string) => Number(text.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'))?.split(' ').pop() ?? NaN);
      return { text, value };
    };
    const before = await scrape();
    const c = await client(url);
    c.send({ type: 'subscribe', channel: 'm', id: 1 });
    c.send({ type: 'publish', channel: 'm', data: 1, id: 2 });
    await c.count('m', 1);
    const afterScrape = await scrape();
    assert.match(afterScrape.text, /duplex_connections\{transport="ws"\} 1/);
    assert.match(afterScrape.text, /duplex_publishes_total\{source="ws"\} 1/);
    assert.ok(afterScrape.value('duplex_messages_in_total') > (before.value('duplex_messages_in_total') || 0));
    assert.match(afterScrape.text, /duplex_channels 1/);
    assert.match(afterScrape.text, /duplex_subscriptions 1/);
    c.close();
  });
});

describe('hub auth over WebSocket', () => {
  const token = (claims: Record<string, unknown>, now = Date.now() / 1000) =>
    signToken({ sub: 'tester', ...claims } as any, SECRET, { expiresInSeconds: 3600, now });

  test('no token or a bad one: closed with 4401', async () => {
    const { url } = await startHub({ authSecret: SECRET });
    for (const target of [url, `${url}?token=not.a.token`, `${url}?token=${token({ subscribe: ['*'] }, Date.now() / 1000 - 7200)}`]) {
      const c = new Client(target);
      const closed = await c.closed;
      assert.equal(closed.code, 4401, target);
    }
  });

  test('a token in the query, the Authorization header or a subprotocol; grants per channel', async () => {
    const { url } = await startHub({ authSecret: SECRET });
    const t = token({ subscribe: ['chat.*'], publish: ['chat.*'] });
    const viaQuery = await client(`${url}?token=${t}`);
    viaQuery.send({ type: 'subscribe', channel: 'chat.room', id: 1 });
    assert.equal((await viaQuery.reply(1)).type, 'subscribed');
    viaQuery.send({ type: 'subscribe', channel: 'admin', id: 2 });
    assert.equal((await viaQuery.reply(2)).code, 'forbidden');
    viaQuery.send({ type: 'publish', channel: 'admin.x', data: 1, id: 3 });
    assert.equal((await viaQuery.reply(3)).code, 'forbidden');
    viaQuery.send({ type: 'publish', channel: 'chat.room', data: 1, id: 4 });
    assert.equal((await viaQuery.reply(4)).type, 'ack');
    viaQuery.close();

    const viaHeader = new Client(url);
    viaHeader.ws.close();
    const ws = new WebSocket(url, [], { headers: { Authorization: `Bearer ${t}` } });
    await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onclose = reject; });
    ws.close();

    const viaProtocol = await client(url, ['duplex.v1', `bearer.${t}`]);
    assert.equal(viaProtocol.ws.protocol, 'duplex.v1');
    viaProtocol.send({ type: 'subscribe', channel: 'chat.x', id: 1 });
    assert.equal((await viaProtocol.reply(1)).type, 'subscribed');
    viaProtocol.close();
  });

  test('HTTP publish: 401 without credentials, 403 without the grant, API key allowed', async () => {
    const { http } = await startHub({ authSecret: SECRET, apiKeys: ['key-1234567890'] });
    const post = (headers: Record<string, string>, channel = 'chat.a') =>
      fetch(`${http}/api/channels/${channel}/publish`, { method: 'POST', body: '1', headers: { 'content-type': 'application/json', ...headers } });
    assert.equal((await post({})).status, 401);
    assert.equal((await post({ authorization: `Bearer ${token({ publish: ['other.*'] })}` })).status, 403);
    assert.equal((await post({ authorization: `Bearer ${token({ publish: ['chat.*'] })}` })).status, 200);
    assert.equal((await post({ 'x-api-key': 'key-1234567890' }, 'anything')).status, 200);
    assert.equal((await post({ 'x-api-key': 'wrong' })).status, 401);
  });
});
