// The hub's plain-HTTP side: the publish/history/presence API, Server-Sent Events and long-polling,
// against an in-process hub on a port the OS picks.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { signToken } from '../src/hub/auth.js';
import { Hub, type HubOptions } from '../src/hub/hub.js';
import { SseClient } from './support/sse-client.js';

const WAIT_MS = 5000;

interface Running {
  hub: Hub;
  base: string;
  port: number;
}

async function withHub(options: HubOptions, run: (h: Running) => Promise<void>): Promise<void> {
  const hub = new Hub({ port: 0, host: '127.0.0.1', ...options });
  const address = await hub.listen();
  try {
    await run({ hub, base: `http://127.0.0.1:${address.port}`, port: address.port });
  } finally {
    await hub.close();
  }
}

async function request(url: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; body: any }> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(WAIT_MS) });
  const text = await response.text();
  let body: unknown = text;
  if ((response.headers.get('content-type') ?? '').startsWith('application/json')) body = JSON.parse(text);
  return { status: response.status, headers: response.headers, body };
}

function publish(base: string, channel: string, data: unknown, headers: Record<string, string> = {}) {
  return request(`${base}/api/channels/${encodeURIComponent(channel)}/publish`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify(data),
  });
}

async function publishMany(base: string, channel: string, count: number): Promise<void> {
  for (let i = 1; i <= count; i++) {
    const r = await publish(base, channel, { n: i });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
}

/** Waits until `check` holds, polling; fails after `ms`. */
async function until(check: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const UNLIMITED = { publishRate: { rate: 1e6, burst: 1e6 } };

describe('HTTP API', () => {
  test('publishes JSON and text, and history returns them as message envelopes', async () => {
    await withHub({}, async ({ base }) => {
      const a = await publish(base, 'chat.room1', { text: 'hi', n: [1, 2] });
      assert.equal(a.status, 200);
      assert.equal(a.body.offset, 1);
      assert.match(a.body.time, /^\d{4}-\d\d-\d\dT/);
      const b = await request(`${base}/api/channels/chat.room1/publish`, {
        method: 'POST', headers: { 'Content-Type': 'text/plain; charset=utf-8' }, body: 'plain words ✓',
      });
      assert.equal(b.status, 200);
      assert.equal(b.body.offset, 2);
      const scalar = await publish(base, 'chat.room1', 42);
      assert.equal(scalar.body.offset, 3);

      const h = await request(`${base}/api/channels/chat.room1/history`);
      assert.equal(h.status, 200);
      assert.equal(h.body.channel, 'chat.room1');
      assert.equal(h.body.offset, 3);
      assert.equal(h.body.recovered, true);
      assert.deepEqual(h.body.messages, [
        { type: 'message', channel: 'chat.room1', offset: 1, data: { text: 'hi', n: [1, 2] }, time: a.body.time, publisher: 'anonymous' },
        { type: 'message', channel: 'chat.room1', offset: 2, data: 'plain words ✓', time: b.body.time, publisher: 'anonymous' },
        { type: 'message', channel: 'chat.room1', offset: 3, data: 42, time: scalar.body.time, publisher: 'anonymous' },
      ]);
    });
  });

  test('a channel name with a slash works in the path, encoded or not', async () => {
    await withHub({}, async ({ base }) => {
      assert.equal((await request(`${base}/api/channels/docs/a1/publish`, { method: 'POST', body: 'x' })).body.offset, 1);
      assert.equal((await request(`${base}/api/channels/docs%2Fa1/publish`, { method: 'POST', body: 'y' })).body.offset, 2);
      const h = await request(`${base}/api/channels/docs/a1/history`);
      assert.deepEqual(h.body.messages.map((m: any) => m.data), ['x', 'y']);
    });
  });

  test('history honours since and limit, defaults to 100 and refuses bad values', async () => {
    await withHub({ limits: UNLIMITED }, async ({ base }) => {
      await publishMany(base, 'c', 150);
      const page = await request(`${base}/api/channels/c/history?since=3&limit=4`);
      assert.deepEqual(page.body.messages.map((m: any) => m.offset), [4, 5, 6, 7]);
      assert.equal(page.body.offset, 150);
      assert.equal(page.body.recovered, true);
      const all = await request(`${base}/api/channels/c/history`);
      assert.equal(all.body.messages.length, 100);
      assert.equal(all.body.messages[0].offset, 1);
      const none = await request(`${base}/api/channels/c/history?since=150`);
      assert.deepEqual(none.body.messages, []);
      for (const query of ['since=-1', 'since=abc', 'since=1.5', 'limit=1001', 'limit=x', 'since=1e3']) {
        const bad = await request(`${base}/api/channels/c/history?${query}`);
        assert.equal(bad.status, 400, query);
        assert.equal(bad.body.error, 'bad_request', query);
        assert.match(bad.body.message, /must be an integer/, query);
      }
    });
  });

  test('history says recovered: false when since reaches back further than history holds', async () => {
    await withHub({ historySize: 5, limits: UNLIMITED }, async ({ base }) => {
      await publishMany(base, 'c', 10);
      const h = await request(`${base}/api/channels/c/history?since=2`);
      assert.equal(h.body.recovered, false);
      assert.deepEqual(h.body.messages.map((m: any) => m.offset), [6, 7, 8, 9, 10]);
      const ok = await request(`${base}/api/channels/c/history?since=5`);
      assert.equal(ok.body.recovered, true);
    });
  });

  test('presence of a channel nobody is in is an empty list', async () => {
    await withHub({}, async ({ base }) => {
      const p = await request(`${base}/api/channels/lobby/presence`);
      assert.equal(p.status, 200);
      assert.deepEqual(p.body, { channel: 'lobby', members: [] });
    });
  });

  test('lists channels with their offsets and local subscribers', async () => {
    await withHub({}, async ({ base }) => {
      await publish(base, 'b', 1);
      await publish(base, 'a', 1);
      await publish(base, 'a', 2);
      const sse = await SseClient.open(`${base}/sse?channel=a`);
      try {
        await sse.event('subscribed');
        const list = await request(`${base}/api/channels`);
        assert.equal(list.status, 200);
        assert.deepEqual(list.body.channels.map((c: any) => [c.channel, c.offset, c.subscribers]), [['a', 2, 1], ['b', 1, 0]]);
      } finally {
        sse.close();
      }
    });
  });

  test('a body over maxMessageSize gets 413 (declared or streamed), and the hub carries on', async () => {
    await withHub({ limits: { maxMessageSize: 1024 } }, async ({ base }) => {
      const declared = await publish(base, 'c', 'x'.repeat(2000));
      assert.equal(declared.status, 413);
      assert.equal(declared.body.error, 'too_large');
      assert.match(declared.body.message, /1024 bytes/);

      // Chunked, so the size is only known while reading: 64 KiB in 1 KiB pieces.
      let sent = 0;
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent >= 64) return controller.close();
          sent++;
          controller.enqueue(new TextEncoder().encode('y'.repeat(1024)));
        },
      });
      const streamed = await request(`${base}/api/channels/c/publish`, {
        method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: stream, duplex: 'half',
      } as RequestInit);
      assert.equal(streamed.status, 413);
      assert.equal(streamed.body.error, 'too_large');

      const exact = await request(`${base}/api/channels/c/publish`, { method: 'POST', body: 'z'.repeat(1024) });
      assert.equal(exact.status, 200);
      assert.equal(exact.body.offset, 1);
    });
  });

  test('invalid channels, bodies and methods get clear 4xx answers', async () => {
    await withHub({}, async ({ base }) => {
      for (const path of ['bad%20name/publish', 'a..b/publish', `${'x'.repeat(129)}/history`, 'chat.*/presence', '%E0%A4%A/history']) {
        const method = path.endsWith('publish') ? 'POST' : 'GET';
        const r = await request(`${base}/api/channels/${path}`, { method, body: method === 'POST' ? '1' : null });
        assert.equal(r.status, 400, path);
        assert.equal(r.body.error, 'invalid_channel', path);
      }
      const badJson = await request(`${base}/api/channels/c/publish`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"a":',
      });
      assert.equal(badJson.status, 400);
      assert.equal(badJson.body.error, 'bad_request');
      const badType = await request(`${base}/api/channels/c/publish`, {
        method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: 'abc',
      });
      assert.equal(badType.status, 415);

      const get = await request(`${base}/api/channels/c/publish`);
      assert.equal(get.status, 405);
      assert.equal(get.headers.get('allow'), 'POST, OPTIONS');
      assert.equal(get.body.error, 'method_not_allowed');
      const post = await request(`${base}/api/channels/c/history`, { method: 'POST', body: '' });
      assert.equal(post.status, 405);
      assert.equal(post.headers.get('allow'), 'GET, OPTIONS');
      const list = await request(`${base}/api/channels`, { method: 'DELETE' });
      assert.equal(list.status, 405);

      for (const path of ['/api/nothing', '/api/channels/c/unknown', '/api/channels/publish']) {
        const r = await request(`${base}${path}`);
        assert.equal(r.status, 404, path);
        assert.equal(r.body.error, 'not_found');
      }
      // None of that disturbed the channel.
      assert.equal((await publish(base, 'c', 'fine')).body.offset, 1);
    });
  });

  test('publishing faster than the rate gets 429 with Retry-After', async () => {
    await withHub({ limits: { publishRate: { rate: 1, burst: 2 } } }, async ({ hub, base }) => {
      assert.equal((await publish(base, 'c', 1)).status, 200);
      assert.equal((await publish(base, 'c', 2)).status, 200);
      const limited = await publish(base, 'c', 3);
      assert.equal(limited.status, 429);
      assert.equal(limited.body.error, 'rate_limited');
      assert.equal(limited.headers.get('retry-after'), '1');
      assert.equal(hub.context.metrics.drops.get({ reason: 'rate_limit' }), 1);
      const h = await request(`${base}/api/channels/c/history`);
      assert.equal(h.body.offset, 2);
    });
  });

  test('answers CORS preflights and marks answers readable by the calling origin', async () => {
    await withHub({}, async ({ base }) => {
      const pre = await request(`${base}/api/channels/c/publish`, {
        method: 'OPTIONS',
        headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization, content-type' },
      });
      assert.equal(pre.status, 204);
      assert.equal(pre.headers.get('access-control-allow-origin'), 'https://app.example');
      assert.equal(pre.headers.get('access-control-allow-methods'), 'POST, OPTIONS');
      assert.equal(pre.headers.get('access-control-allow-headers'), 'authorization, content-type');
      const r = await publish(base, 'c', 1, { Origin: 'https://app.example' });
      assert.equal(r.headers.get('access-control-allow-origin'), 'https://app.example');
      const noOrigin = await publish(base, 'c', 2);
      assert.equal(noOrigin.headers.get('access-control-allow-origin'), null);
    });
    await withHub({ origins: ['https://good.example'] }, async ({ base }) => {
      assert.equal((await publish(base, 'c', 1, { Origin: 'https://evil.example' })).status, 403);
      const ok = await publish(base, 'c', 1, { Origin: 'https://good.example' });
      assert.equal(ok.status, 200);
      assert.equal(ok.headers.get('access-control-allow-origin'), 'https://good.example');
    });
  });
});

describe('Server-Sent Events', () => {
  test('streams published messages with ids equal to their offsets', async () => {
    await withHub({}, async ({ hub, base }) => {
      const sse = await SseClient.open(`${base}/sse?channel=news`);
      try {
        assert.equal(sse.status, 200);
        assert.match(sse.headers.get('content-type') ?? '', /^text\/event-stream/);
        assert.equal(sse.headers.get('cache-control'), 'no-cache, no-transform');
        assert.equal(sse.headers.get('x-accel-buffering'), 'no');
        const subscribed = await sse.event('subscribed');
        assert.deepEqual(JSON.parse(subscribed.data), { type: 'subscribed', channel: 'news', offset: 0 });
        assert.equal(subscribed.id, '0');
        assert.equal(sse.retry, 2000);
        assert.equal(hub.context.metrics.connections.get({ transport: 'sse' }), 1);

        await publish(base, 'news', { headline: 'one' });
        await publish(base, 'news', 'two');
        const first = await sse.event('message');
        const second = await sse.event('message');
        assert.equal(first.id, '1');
        assert.equal(second.id, '2');
        const h = await request(`${base}/api/channels/news/history`);
        assert.deepEqual([JSON.parse(first.data), JSON.parse(second.data)], h.body.messages);
      } finally {
        sse.close();
      }
      await until(() => hub.context.metrics.connections.get({ transport: 'sse' }) === 0, 'the SSE stream to be counted closed');
      assert.equal(hub.context.feeds.subscriptions, 0);
    });
  });

  test('Last-Event-ID resumes with no gap and no duplicate, and wins over since', async () => {
    await withHub({ limits: UNLIMITED }, async ({ base }) => {
      await publishMany(base, 'c', 3);
      const a = await SseClient.open(`${base}/sse?channel=c&since=1`);
      const seen: number[] = [];
      try {
        const subscribed = JSON.parse((await a.event('subscribed')).data);
        assert.deepEqual(subscribed, { type: 'subscribed', channel: 'c', offset: 3, recovered: true });
        for (let i = 0; i < 2; i++) seen.push(Number((await a.event('message')).id));
        await publish(base, 'c', { n: 4 });
        seen.push(Number((await a.event('message')).id));
      } finally {
        a.close();
      }
      assert.deepEqual(seen, [2, 3, 4]);
      // Published while the client was away.
      await publish(base, 'c', { n: 5 });
      await publish(base, 'c', { n: 6 });
      const b = await SseClient.open(`${base}/sse?channel=c&since=1`, { 'Last-Event-ID': String(seen.at(-1)) });
      try {
        assert.equal(JSON.parse((await b.event('subscribed')).data).recovered, true);
        const resumed = [Number((await b.event('message')).id), Number((await b.event('message')).id)];
        await publish(base, 'c', { n: 7 });
        resumed.push(Number((await b.event('message')).id));
        assert.deepEqual(resumed, [5, 6, 7]);
      } finally {
        b.close();
      }
    });
  });

  test('the subscribed event carries the starting offset, so a resume without messages misses nothing', async () => {
    await withHub({}, async ({ base }) => {
      await publish(base, 'c', 'old');
      const a = await SseClient.open(`${base}/sse?channel=c`);
      const start = (await a.event('subscribed')).id!;
      a.close();
      assert.equal(start, '1');
      await publish(base, 'c', 'while away');
      const b = await SseClient.open(`${base}/sse?channel=c`, { 'Last-Event-ID': start });
      try {
        const event = await b.event('message');
        assert.equal(event.id, '2');
        assert.equal(JSON.parse(event.data).data, 'while away');
      } finally {
        b.close();
      }
    });
  });

  test('sends ping comments on an idle stream', async () => {
    await withHub({ sseKeepAlive: 30 }, async ({ base }) => {
      const sse = await SseClient.open(`${base}/sse?channel=quiet`);
      try {
        await sse.event('subscribed');
        for (let i = 0; i < 2; i++) {
          const ping = await sse.next((item) => item.kind === 'comment');
          assert.deepEqual(ping, { kind: 'comment', text: 'ping' });
        }
      } finally {
        sse.close();
      }
    });
  });

  test('refuses a missing or invalid channel, a bad since and wrong methods', async () => {
    await withHub({}, async ({ base }) => {
      assert.equal((await request(`${base}/sse`)).status, 400);
      const invalid = await request(`${base}/sse?channel=a..b`);
      assert.equal(invalid.status, 400);
      assert.equal(invalid.body.error, 'invalid_channel');
      assert.equal((await request(`${base}/sse?channel=c&since=x`)).status, 400);
      const badId = await request(`${base}/sse?channel=c`, { headers: { 'Last-Event-ID': 'nope' } });
      assert.equal(badId.status, 400);
      assert.match(badId.body.message, /Last-Event-ID/);
      assert.equal((await request(`${base}/sse?channel=c`, { method: 'POST', body: '' })).status, 405);
    });
  });

  test('drops a client that stops reading, and counts it as a slow consumer', async () => {
    await withHub({ historySize: 10, limits: { ...UNLIMITED, maxMessageSize: 64 * 1024 } }, async ({ hub, port }) => {
      const socket = net.connect(port, '127.0.0.1');
      let closed = false;
      socket.on('close', () => (closed = true));
      socket.on('error', () => {});
      socket.write('GET /sse?channel=firehose HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      // Read the head, then never again.
      await new Promise((resolve) => socket.once('data', resolve));
      socket.pause();
      const blob = 'b'.repeat(60 * 1024);
      const drops = () => hub.context.metrics.drops.get({ reason: 'slow_consumer' });
      for (let i = 0; i < 2000 && drops() === 0; i++) {
        await hub.context.engine.publish('firehose', blob);
        if (i % 20 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      assert.equal(drops(), 1);
      await until(() => hub.context.feeds.subscriptions === 0, 'the slow subscription to stop');
      socket.resume();
      await until(() => closed, 'the slow client to be disconnected');
    });
  });
});

describe('long-polling', () => {
  const poll = (base: string, query: string) => request(`${base}/poll?${query}`);

  test('answers at once when there are messages after since', async () => {
    await withHub({}, async ({ base }) => {
      await publish(base, 'c', 'a');
      await publish(base, 'c', 'b');
      const r = await poll(base, 'channel=c&since=0');
      assert.equal(r.status, 200);
      assert.equal(r.body.offset, 2);
      assert.equal(r.body.recovered, true);
      assert.deepEqual(r.body.messages.map((m: any) => [m.type, m.offset, m.data]), [['message', 1, 'a'], ['message', 2, 'b']]);
    });
  });

  test('holds the request until a message is published', async () => {
    await withHub({}, async ({ hub, base }) => {
      await publish(base, 'c', 'before');
      const held = poll(base, 'channel=c&since=1');
      await until(() => hub.context.metrics.connections.get({ transport: 'poll' }) === 1, 'the poll to be held');
      await publish(base, 'c', 'after');
      const r = await held;
      assert.equal(r.body.offset, 2);
      assert.deepEqual(r.body.messages.map((m: any) => m.data), ['after']);
      await until(() => hub.context.feeds.subscriptions === 0, 'the poll to let go of the channel');
      assert.equal(hub.context.metrics.connections.get({ transport: 'poll' }), 0);
    });
  });

  test('without since it waits for new messages only', async () => {
    await withHub({}, async ({ hub, base }) => {
      await publish(base, 'c', 'old');
      const held = poll(base, 'channel=c');
      await until(() => hub.context.feeds.subscriptions === 1, 'the poll to be held');
      await publish(base, 'c', 'new');
      const r = await held;
      assert.deepEqual(r.body.messages.map((m: any) => [m.offset, m.data]), [[2, 'new']]);
    });
  });

  test('answers an empty list at the timeout, with since as the offset', async () => {
    await withHub({ pollTimeout: 60_000 }, async ({ hub, base }) => {
      await publish(base, 'c', 'x');
      const r = await poll(base, 'channel=c&since=1&timeout=50');
      assert.deepEqual(r.body, { channel: 'c', offset: 1, recovered: true, messages: [] });
      const none = await poll(base, 'channel=empty&timeout=20');
      assert.deepEqual(none.body, { channel: 'empty', offset: 0, recovered: true, messages: [] });
      assert.equal(hub.context.feeds.subscriptions, 0);
    });
    // The hub's own cap wins over a longer timeout asked for.
    await withHub({ pollTimeout: 30 }, async ({ base }) => {
      const r = await poll(base, 'channel=c&timeout=600000');
      assert.deepEqual(r.body.messages, []);
    });
  });

  test('tells a client whose since is beyond the channel to start over', async () => {
    await withHub({}, async ({ base }) => {
      await publish(base, 'c', 'x');
      const r = await poll(base, 'channel=c&since=50');
      assert.deepEqual(r.body, { channel: 'c', offset: 1, recovered: false, messages: [] });
    });
  });

  test('a client releasing its held request lets go of the channel', async () => {
    await withHub({}, async ({ hub, base }) => {
      const controller = new AbortController();
      const held = fetch(`${base}/poll?channel=c`, { signal: controller.signal }).catch(() => null);
      await until(() => hub.context.feeds.subscriptions === 1, 'the poll to be held');
      controller.abort();
      await held;
      await until(() => hub.context.feeds.subscriptions === 0, 'the abandoned poll to be cleaned up');
      assert.equal(hub.context.metrics.connections.get({ transport: 'poll' }), 0);
    });
  });

  test('resuming with since delivers 1000 messages published meanwhile exactly once and in order', async () => {
    await withHub({ historySize: 2000 }, async ({ hub, base }) => {
      const total = 1000;
      // Straight into the engine, in small bursts between which the polls get their turn.
      const publishing = (async () => {
        for (let n = 1; n <= total; n++) {
          await hub.context.engine.publish('c', { n });
          if (n % 7 === 0) await new Promise((resolve) => setImmediate(resolve));
        }
      })();
      const received: number[] = [];
      let since = 0;
      let polls = 0;
      const deadline = Date.now() + 20_000;
      while (received.length < total && Date.now() < deadline && polls < 5000) {
        const r = await poll(base, `channel=c&since=${since}&timeout=2000`);
        assert.equal(r.status, 200);
        assert.equal(r.body.recovered, true);
        for (const m of r.body.messages) received.push(m.data.n);
        since = r.body.offset;
        polls++;
      }
      await publishing;
      assert.equal(received.length, total);
      assert.deepEqual(received, Array.from({ length: total }, (_, i) => i + 1));
      assert.ok(polls >= 10, `a poll answers at most 100 messages, yet ${polls} polls sufficed`);
    });
  });

  test('refuses bad parameters', async () => {
    await withHub({}, async ({ base }) => {
      for (const query of ['', 'channel=a..b', 'channel=c&since=-1', 'channel=c&limit=0', 'channel=c&limit=1001', 'channel=c&timeout=soon']) {
        assert.equal((await poll(base, query)).status, 400, query);
      }
    });
  });
});

describe('credentials', () => {
  const secret = 's'.repeat(32);
  const apiKey = 'backend-key-1';
  const token = (claims: { publish?: string[]; subscribe?: string[]; presence?: string[] }) =>
    signToken({ sub: 'alice', ...claims }, secret, { expiresInSeconds: 600 });

  test('HTTP API: 401 without credentials, 403 without permission, API keys publish', async () => {
    await withHub({ authSecret: secret, apiKeys: [apiKey] }, async ({ base }) => {
      const anonymous = await publish(base, 'c', 1);
      assert.equal(anonymous.status, 401);
      assert.equal(anonymous.body.error, 'unauthorized');
      assert.equal(anonymous.headers.get('www-authenticate'), 'Bearer realm="duplex"');

      const reader = token({ subscribe: ['c'] });
      const denied = await publish(base, 'c', 1, { Authorization: `Bearer ${reader}` });
      assert.equal(denied.status, 403);
      assert.equal(denied.body.error, 'forbidden');

      const writer = token({ publish: ['c'] });
      const ok = await publish(base, 'c', 'by token', { Authorization: `Bearer ${writer}` });
      assert.equal(ok.status, 200);
      const byKey = await publish(base, 'c', 'by key', { 'X-API-Key': apiKey });
      assert.equal(byKey.status, 200);
      assert.equal((await publish(base, 'c', 1, { 'X-API-Key': 'wrong' })).status, 401);

      const history = await request(`${base}/api/channels/c/history`, { headers: { Authorization: `Bearer ${reader}` } });
      assert.deepEqual(history.body.messages.map((m: any) => [m.data, m.publisher]), [['by token', 'alice'], ['by key', 'apikey:1']]);
      assert.equal((await request(`${base}/api/channels/c/history`, { headers: { Authorization: `Bearer ${writer}` } })).status, 403);
      assert.equal((await request(`${base}/api/channels/c/presence`, { headers: { 'X-API-Key': apiKey } })).status, 403);
      assert.equal((await request(`${base}/api/channels/c/presence`, { headers: { Authorization: `Bearer ${reader}` } })).status, 200);

      const list = await request(`${base}/api/channels`, { headers: { Authorization: `Bearer ${token({ subscribe: ['other'] })}` } });
      assert.deepEqual(list.body.channels, []);
      assert.equal((await request(`${base}/api/channels`)).status, 401);
    });
  });

  test('SSE and polling take a token from the query and need subscribe permission', async () => {
    await withHub({ authSecret: secret, apiKeys: [apiKey] }, async ({ base }) => {
      assert.equal((await request(`${base}/sse?channel=c`)).status, 401);
      assert.equal((await request(`${base}/sse?channel=c&token=${token({ publish: ['c'] })}`)).status, 403);
      assert.equal((await request(`${base}/poll?channel=c&timeout=10`)).status, 401);
      assert.equal((await request(`${base}/poll?channel=c&timeout=10&token=${token({ subscribe: ['d'] })}`)).status, 403);

      await publish(base, 'c', 'hello', { 'X-API-Key': apiKey });
      const reader = token({ subscribe: ['c'] });
      const polled = await request(`${base}/poll?channel=c&since=0&token=${reader}`);
      assert.deepEqual(polled.body.messages.map((m: any) => m.data), ['hello']);
      const sse = await SseClient.open(`${base}/sse?channel=c&since=0&token=${reader}`);
      try {
        assert.equal(sse.status, 200);
        assert.equal(JSON.parse((await sse.event('message')).data).data, 'hello');
      } finally {
        sse.close();
      }
    });
  });

  test('an SSE stream ends when its token expires', async () => {
    await withHub({ authSecret: secret }, async ({ base }) => {
      // exp is in the past but within the clock leeway, so the token still verifies for a moment.
      const now = Math.floor(Date.now() / 1000);
      const expiring = signToken({ sub: 'bob', subscribe: ['c'], exp: now - 28 }, secret, { now });
      const sse = await SseClient.open(`${base}/sse?channel=c&token=${expiring}`);
      try {
        assert.equal(sse.status, 200);
        await sse.closed(WAIT_MS);
      } finally {
        sse.close();
      }
    });
  });
});
