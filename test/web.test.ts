// The web app the hub serves at "/", in headless Debian Chromium: the static routes, chat between two
// browsers (over WebSocket, SSE and long-polling), the remote-control round trip with `duplex device`,
// a network drop through a TCP proxy, the dashboard, keyboard use, and screenshots of every page at
// desktop and phone sizes in test-output/ (for people to look at; nothing is compared against them).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core';
import { signToken } from '../src/hub/auth.js';
import { Hub } from '../src/hub/hub.js';
import { webRoutes } from '../src/hub/web-routes.js';
import { killAll, runCli, type CliProcess } from './support/cli.js';
import { TcpProxy } from './support/tcp-proxy.js';

const CHROMIUM_PATH = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-sync'];
const TEST_TIMEOUT = { timeout: 60_000 };
const WAIT_MS = 15_000;
const OUTPUT_DIR = fileURLToPath(new URL('../../test-output/', import.meta.url));
const CLIENT_JS = fileURLToPath(new URL('../src/client/hub-client.js', import.meta.url));
const SIZES: Record<string, BrowserContextOptions> = {
  desktop: { viewport: { width: 1280, height: 800 } },
  phone: { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true },
};
// What Chromium itself logs when a connection it holds is cut: expected in the network-drop test only.
const CONNECTION_NOISE = /WebSocket connection to .* failed|Failed to load resource|net::ERR_/;

after(killAll);

/** Everything a page did that a test may want to hold against it. */
interface PageRecord {
  requests: string[];
  errors: string[];
}

class WebApp {
  readonly hub: Hub = new Hub({ port: 0, host: '127.0.0.1', routes: webRoutes({ hub: () => this.hub }), pollTimeout: 5000 });
  browser!: Browser;
  url = '';
  private readonly contexts = new Set<BrowserContext>();
  readonly records = new Map<Page, PageRecord>();

  async start(): Promise<void> {
    const { port } = await this.hub.listen();
    this.url = `http://127.0.0.1:${port}`;
    this.browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true, timeout: 20_000 });
  }

  async stop(): Promise<void> {
    await this.browser?.close();
    await this.hub.close();
  }

  async context(size: keyof typeof SIZES = 'desktop'): Promise<BrowserContext> {
    const context = await this.browser.newContext(SIZES[size]);
    this.contexts.add(context);
    return context;
  }

  /** A new page at `path` of `origin` (the hub unless a proxy is in between), recording requests and errors. */
  async open(context: BrowserContext, path: string, origin = this.url): Promise<Page> {
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    const record: PageRecord = { requests: [], errors: [] };
    this.records.set(page, record);
    page.on('request', (request) => record.requests.push(request.url()));
    page.on('console', (message) => {
      if (message.type() === 'error') record.errors.push(message.text());
    });
    page.on('pageerror', (error) => record.errors.push(`uncaught: ${error.message}`));
    await page.goto(origin + path);
    return page;
  }

  /** Every request of the page went to `origin`, and nothing went wrong in it (except `allowed` noise). */
  assertClean(page: Page, origin = this.url, allowed?: RegExp): void {
    const record = this.records.get(page)!;
    const outside = record.requests.filter((url) => new URL(url).origin !== origin);
    assert.deepEqual(outside, [], 'requests that left the hub');
    const errors = record.errors.filter((text) => !allowed?.test(text));
    assert.deepEqual(errors, [], 'errors in the page');
  }

  async closeContexts(): Promise<void> {
    for (const context of this.contexts) await context.close();
    this.contexts.clear();
  }

  /** Connections the hub has accepted on `transport` (its metric's label) since it started. */
  async connectionsTotal(transport: string): Promise<number> {
    const res = await fetch(`${this.url}/stats?seconds=1`, { signal: AbortSignal.timeout(5000) });
    const stats = (await res.json()) as { metrics: Record<string, { values: Array<{ labels: Record<string, string>; value: number }> }> };
    return stats.metrics.duplex_connections_total!.values.find((v) => v.labels.transport === transport)?.value ?? 0;
  }

  async publish(channel: string, data: unknown): Promise<void> {
    const res = await fetch(`${this.url}/api/channels/${channel}/publish`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(data),
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(res.status, 200);
  }
}

// ---- what the pages show ----

function messageTexts(page: Page): Promise<string[]> {
  return page.$$eval('#messages .msg .bubble', (nodes) => nodes.map((n) => n.textContent ?? ''));
}

function memberNames(page: Page): Promise<string[]> {
  return page.$$eval('#members li', (nodes) => nodes.map((n) => n.firstChild?.textContent ?? '').sort());
}

/** Waits until `read` gives `expected` (deep equality); the failure says what was there instead. */
async function until<T>(read: () => Promise<T>, expected: T, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  let actual = await read();
  while (!isDeepStrictEqual(actual, expected)) {
    if (Date.now() > deadline) assert.fail(`${what}: expected ${JSON.stringify(expected)}, still ${JSON.stringify(actual)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    actual = await read();
  }
}

async function waitUntil(check: () => Promise<boolean>, what: string): Promise<void> {
  await until(check, true, what);
}

/** The id of the element with the keyboard focus. */
function focused(page: Page): Promise<string | undefined> {
  // The project has no DOM typings; this one line runs in the page.
  return page.evaluate(() => (globalThis as any).document.activeElement?.id as string | undefined);
}


async function send(page: Page, text: string): Promise<void> {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
}

async function shoot(page: Page, name: string): Promise<void> {
  await mkdir(OUTPUT_DIR, { recursive: true });
  await page.screenshot({ path: `${OUTPUT_DIR}${name}.png`, fullPage: true });
}

/** A raw GET, so the path reaches the hub exactly as written (fetch would resolve the dots away). */
function rawGet(url: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}${path}`, { timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.path = path;
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
  });
}

describe('web app', { skip: existsSync(CLIENT_JS) ? false : 'the hub client (dist/src/client/hub-client.js) is not built' }, () => {
  const app = new WebApp();
  let device: CliProcess | undefined;

  before(async () => {
    await app.start();
    device = runCli(['device', '--url', app.url, '--name', 'rover', '--interval', '250ms']);
    await device.waitFor('stderr', /connected to the hub/);
  });

  after(async () => {
    device?.signal('SIGTERM');
    await device?.exited();
    await app.stop();
  });

  test('serves the pages, the client and the stats with their types, and nothing outside them', TEST_TIMEOUT, async () => {
    const types: Record<string, RegExp> = {
      '/': /^text\/html/, '/chat': /^text\/html/, '/remote': /^text\/html/, '/dashboard': /^text\/html/,
      '/style.css': /^text\/css/, '/chat.js': /^text\/javascript/, '/favicon.svg': /^image\/svg\+xml/,
      '/client/hub-client.js': /^text\/javascript/, '/client/backoff.js': /^text\/javascript/, '/stats': /^application\/json/,
    };
    for (const [path, type] of Object.entries(types)) {
      const res = await fetch(app.url + path, { signal: AbortSignal.timeout(5000) });
      assert.equal(res.status, 200, path);
      assert.match(res.headers.get('content-type') ?? '', type, path);
      await res.arrayBuffer();
    }
    const page = await fetch(app.url + '/', { signal: AbortSignal.timeout(5000) });
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    assert.equal(page.headers.get('cache-control'), 'no-cache');
    const etag = page.headers.get('etag');
    assert.ok(etag, 'an ETag');
    await page.text();
    const again = await fetch(app.url + '/', { headers: { 'If-None-Match': etag }, signal: AbortSignal.timeout(5000) });
    assert.equal(again.status, 304);
    assert.equal(await again.text(), '');

    const head = await fetch(app.url + '/chat', { method: 'HEAD', signal: AbortSignal.timeout(5000) });
    assert.equal(head.status, 200);
    assert.ok(Number(head.headers.get('content-length')) > 0);
    const post = await fetch(app.url + '/chat', { method: 'POST', body: 'x', signal: AbortSignal.timeout(5000) });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    await post.arrayBuffer();

    for (const path of [
      '/../package.json', '/%2e%2e/package.json', '/..%2fpackage.json', '/..%5cpackage.json', '/client/..%2f..%2f..%2fpackage.json',
      '/client/%2e%2e/%2e%2e/%2e%2e/package.json', '/client/hub-client.ts', '/client/hub-client.js.map', '/README.md',
      '/.gitignore', '/%00', '/chat.html%00.js', '//etc/passwd', '/web/index.html', '/nothing-here.css',
    ]) {
      const res = await rawGet(app.url, path);
      assert.ok(res.status === 404 || res.status === 400, `${path}: ${res.status}`);
      assert.doesNotMatch(res.body, /devDependencies|<html|import /, path);
    }

    const stats = (await (await fetch(`${app.url}/stats?seconds=10`, { signal: AbortSignal.timeout(5000) })).json()) as {
      rates: { messagesIn: number[] }; metrics: Record<string, unknown>; channels: Array<{ channel: string }>; channelCount: number;
    };
    assert.equal(stats.rates.messagesIn.length, 10);
    assert.ok('duplex_connections' in stats.metrics);
    assert.ok(stats.channels.some((c) => c.channel === 'device.rover.cmd'), JSON.stringify(stats.channels));
    assert.equal(stats.channelCount, stats.channels.length);
    const bad = await fetch(`${app.url}/stats?seconds=0`, { signal: AbortSignal.timeout(5000) });
    assert.equal(bad.status, 400);
    await bad.arrayBuffer();
  });

  test('`duplex serve` serves the web app, its client and the stats', TEST_TIMEOUT, async () => {
    const serve = runCli(['serve', '--host', '127.0.0.1', '--port', '0', '--log', 'json']);
    try {
      const [, url] = await serve.waitFor('stdout', /"url":"(http:[^"]+)"/);
      const home = await fetch(`${url}/`, { signal: AbortSignal.timeout(5000) });
      assert.match(await home.text(), /<title>duplex<\/title>[\s\S]*href="\/chat"/);
      for (const path of ['/chat', '/client/hub-client.js', '/stats']) {
        const res = await fetch(url + path, { signal: AbortSignal.timeout(5000) });
        assert.equal(res.status, 200, path);
        await res.arrayBuffer();
      }
    } finally {
      serve.signal('SIGTERM');
      await serve.exited();
    }
  });

  test('two browsers chat in a room: messages, presence, history after a reload, leaving', TEST_TIMEOUT, async () => {
    const ada = await app.open(await app.context(), '/chat?room=r1&name=Ada');
    const bob = await app.open(await app.context(), '/chat?room=r1&name=Bob');
    await until(() => memberNames(ada), ['Ada', 'Bob'], "Ada's presence list");
    await until(() => memberNames(bob), ['Ada', 'Bob'], "Bob's presence list");
    assert.match((await ada.textContent('#status')) ?? '', /Connected · WebSocket/);

    await send(ada, 'hello Bob');
    await until(() => messageTexts(bob), ['hello Bob'], 'Bob sees it');
    await bob.fill('#text', 'hi Ada');
    await bob.click('#send');
    await until(() => messageTexts(ada), ['hello Bob', 'hi Ada'], 'Ada sees both');
    await until(() => messageTexts(bob), ['hello Bob', 'hi Ada'], 'Bob sees both');
    const first = bob.locator('#messages .msg').first();
    assert.equal(await first.locator('.author').textContent(), 'Ada');
    assert.match((await first.locator('time').getAttribute('datetime')) ?? '', /^\d{4}-\d\d-\d\dT/);
    assert.equal(await bob.locator('#messages .msg.mine .bubble').textContent(), 'hi Ada');

    // A reload rejoins the same room and shows its history, once.
    await ada.reload();
    await until(() => messageTexts(ada), ['hello Bob', 'hi Ada'], 'history after the reload');
    await until(() => memberNames(ada), ['Ada', 'Bob'], 'presence after the reload');

    await bob.close();
    await until(() => memberNames(ada), ['Ada'], 'Bob leaves');
    app.assertClean(ada);
    await app.closeContexts();
  });

  for (const [transport, label] of [['sse', 'Server-Sent Events'], ['poll', 'long-polling']] as const) {
    test(`the same chat with the transport forced to ${transport}`, TEST_TIMEOUT, async () => {
      const room = `over-${transport}`;
      const opened = await app.connectionsTotal(transport);
      const cy = await app.open(await app.context(), `/chat?room=${room}&name=Cy&transport=${transport}`);
      const di = await app.open(await app.context(), `/chat?room=${room}&name=Di&transport=${transport}`);
      for (const page of [cy, di]) await until(() => page.textContent('#status'), `Connected · ${label}`, 'the status');
      // Both are subscribed (the hub counts them) before the first message, which is then a live one.
      await until(async () => {
        const stats = (await (await fetch(`${app.url}/stats`)).json()) as { channels: Array<{ channel: string; subscribers: number }> };
        return stats.channels.find((c) => c.channel === `chat.${room}`)?.subscribers ?? 0;
      }, 2, 'subscribers on the hub');
      await send(cy, `hi over ${transport}`);
      await until(() => messageTexts(di), [`hi over ${transport}`], 'Di sees it');
      await send(di, 'got it');
      await until(() => messageTexts(cy), [`hi over ${transport}`, 'got it'], 'Cy sees both');
      await until(() => messageTexts(di), [`hi over ${transport}`, 'got it'], 'Di sees both');
      assert.match((await cy.textContent('#presence-note')) ?? '', /fallback transport/);
      // The hub saw the pages on that transport, not on a WebSocket.
      assert.ok((await app.connectionsTotal(transport)) >= opened + 2, `${transport} connections on the hub`);
      app.assertClean(cy);
      app.assertClean(di);
      await app.closeContexts();
    });
  }

  test('remote control: a click on forward is acknowledged and the telemetry changes', TEST_TIMEOUT, async () => {
    const page = await app.open(await app.context(), '/remote?device=rover');
    await page.waitForSelector('#device-pill.online');
    const forward = page.locator('button[data-action=forward]');
    await until(() => forward.isEnabled(), true, 'forward enabled');
    const before = await page.textContent('#t-position');
    assert.match(before ?? '', /^x -?\d+\.\d m, y -?\d+\.\d m$/);

    await forward.click();
    await page.waitForSelector('#log li.ok:has-text("forward")');
    assert.match((await page.textContent('#log li.ok')) ?? '', /driving forward at 50 %/);
    await waitUntil(async () => (await page.textContent('#t-position')) !== before, 'the position changes');
    assert.match((await page.textContent('#t-motion')) ?? '', /^forward at 50 %$/);

    // The keyboard drives too: a focused pad button with Enter, and the X shortcut stops.
    await page.focus('button[data-action=right]');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#log li.ok:has-text("turned right")');
    await page.locator('body').focus();
    await page.keyboard.press('x');
    await page.waitForSelector('#log li.ok:has-text("stopped")');
    await until(() => page.textContent('#t-motion'), 'stopped', 'the motion');

    await page.fill('#command', 'speed 80');
    await page.press('#command', 'Enter');
    await page.waitForSelector('#log li.ok:has-text("speed 80 %")');
    await page.fill('#command', 'fly away');
    await page.press('#command', 'Enter');
    await page.waitForSelector('#log li.failed:has-text("unknown command")');
    app.assertClean(page);
    await app.closeContexts();
  });

  test('remote control: controls are disabled, with the reason shown, while the device is silent', TEST_TIMEOUT, async () => {
    const page = await app.open(await app.context(), '/remote?device=nobody');
    await until(() => page.textContent('#status'), 'Connected · WebSocket', 'the status');
    assert.equal(await page.locator('button[data-action=forward]').isDisabled(), true);
    assert.match((await page.textContent('#control-reason')) ?? '', /nobody is not online/);
    assert.match((await page.textContent('#device-command')) ?? '', /npx duplex device --url http:\/\/127\.0\.0\.1:\d+ --name nobody/);
    app.assertClean(page);
    await app.closeContexts();
  });

  for (const transport of ['ws', 'sse', 'poll'] as const) {
    test(`a network drop (${transport}): the page reconnects by itself and shows every message once, in order`, TEST_TIMEOUT, async () => {
      const proxy = await TcpProxy.start({ host: '127.0.0.1', port: Number(new URL(app.url).port) });
      try {
        const origin = `http://127.0.0.1:${proxy.port}`;
        const room = `drop-${transport}`;
        const page = await app.open(await app.context(), `/chat?room=${room}&name=Eve&transport=${transport}`, origin);
        await until(() => page.getAttribute('#status', 'data-state'), 'open', 'connected');
        await app.publish(`chat.${room}`, { name: 'hub', text: 'm0' });
        await until(() => messageTexts(page), ['m0'], 'the first message');

        proxy.cut();
        await until(() => page.getAttribute('#status', 'data-state'), 'connecting', 'the page notices the drop');
        assert.equal(await page.locator('#send').isDisabled(), true);
        assert.match((await page.textContent('#send-reason')) ?? '', /reconnecting/);
        const sent = ['m1', 'm2', 'm3', 'm4', 'm5'];
        for (const text of sent) await app.publish(`chat.${room}`, { name: 'hub', text });
        if (transport === 'ws') await shoot(page, 'chat-reconnecting-desktop');

        const accepted = proxy.accepted;
        proxy.restore();
        await until(() => page.getAttribute('#status', 'data-state'), 'open', 'reconnected');
        assert.ok(proxy.accepted > accepted, 'the page came back through the proxy');
        await until(() => messageTexts(page), ['m0', ...sent], 'every message once, in order');
        // A live message after the catch-up: had anything been delivered twice, it would be before this.
        await app.publish(`chat.${room}`, { name: 'hub', text: 'm6' });
        await until(() => messageTexts(page), ['m0', ...sent, 'm6'], 'and the next one');
        assert.equal(await page.locator('#send').isEnabled(), true);
        assert.equal(await page.textContent('#send-reason'), '');
        app.assertClean(page, origin, CONNECTION_NOISE);
      } finally {
        await app.closeContexts();
        await proxy.close();
      }
    });
  }

  test('the dashboard shows connections by transport, the message rate and the channels', TEST_TIMEOUT, async () => {
    const chat = await app.open(await app.context(), '/chat?room=dash&name=Flo');
    await until(() => chat.getAttribute('#status', 'data-state'), 'open', 'the chat connects');
    const page = await app.open(await app.context(), '/dashboard');
    await page.waitForSelector('#channels td.channel:has-text("chat.dash")');
    const wsRow = page.locator('#transports [data-transport=ws] .n');
    assert.ok(Number(await wsRow.textContent()) >= 2, 'the chat and the device are WebSocket connections');
    // The device reports four times a second, so the rate shows within a few seconds.
    await waitUntil(async () => Number(await page.textContent('#rate-in')) > 0, 'a message rate above 0');
    const points = await page.getAttribute('#chart polyline.line.in', 'points');
    assert.equal(points?.trim().split(/\s+/).length, 300);
    assert.match((await page.getAttribute('#chart', 'aria-label')) ?? '', /Messages per second over the last 5 minutes/);
    app.assertClean(page);
    await app.closeContexts();
  });

  test('keyboard only: join a room and send a message', TEST_TIMEOUT, async () => {
    const page = await app.open(await app.context(), '/chat');
    await until(() => focused(page), 'name', 'the name field has focus');
    await page.keyboard.type('Kim');
    await page.keyboard.press('Tab');
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.type('keys');
    await page.keyboard.press('Enter');
    await until(() => focused(page), 'text', 'the message field has focus');
    await until(() => page.locator('#send').isEnabled(), true, 'send enabled');
    await page.keyboard.type('typed, not clicked');
    await page.keyboard.press('Enter');
    await until(() => messageTexts(page), ['typed, not clicked'], 'the message');
    assert.match(page.url(), /room=keys&name=Kim/);
    app.assertClean(page);
    await app.closeContexts();
  });

  test('a hub with auth: pages load, ?token= joins, no token is refused with a visible reason', TEST_TIMEOUT, async () => {
    const secret = 'a-web-test-secret-long-enough-for-hs256';
    const secured: Hub = new Hub({ port: 0, host: '127.0.0.1', authSecret: secret, routes: webRoutes({ hub: () => secured }) });
    const origin = `http://127.0.0.1:${(await secured.listen()).port}`;
    try {
      const token = signToken({ sub: 'ada', publish: ['chat.*'], subscribe: ['chat.*'] }, secret);
      const noToken = await fetch(`${origin}/stats`, { signal: AbortSignal.timeout(5000) });
      assert.equal(noToken.status, 401);
      await noToken.arrayBuffer();

      const ada = await app.open(await app.context(), `/chat?room=secret&name=Ada&token=${token}`, origin);
      await until(() => ada.textContent('#status'), 'Connected · WebSocket', 'the status with a token');
      await send(ada, 'signed and sealed');
      await until(() => messageTexts(ada), ['signed and sealed'], 'the message');
      const stats = await fetch(`${origin}/stats`, { headers: { Authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) });
      assert.deepEqual(((await stats.json()) as { channels: Array<{ channel: string }> }).channels.map((c) => c.channel), ['chat.secret']);

      const anonymous = await app.open(await app.context(), '/chat?room=secret&name=Anon', origin);
      await until(() => anonymous.textContent('#status'), 'Disconnected', 'the status without a token');
      assert.equal(await anonymous.locator('#send').isDisabled(), true);
      assert.match((await anonymous.textContent('#send-reason')) ?? '', /unauthorized/);
      app.assertClean(ada, origin);
      app.assertClean(anonymous, origin, CONNECTION_NOISE);
    } finally {
      await app.closeContexts();
      await secured.close();
    }
  });

  test('screenshots of every page at desktop and phone sizes', TEST_TIMEOUT, async () => {
    await app.publish('chat.lobby', { name: 'Grace', text: 'Welcome to the lobby! Open this page in a second window to chat with yourself.' });
    for (const size of Object.keys(SIZES) as Array<keyof typeof SIZES>) {
      const friend = await app.open(await app.context(size), '/chat?room=lobby&name=Grace');
      const context = await app.context(size);
      const home = await app.open(context, '/');
      await waitUntil(async () => (await home.textContent('#fig-uptime')) !== '–', 'the figures');
      await shoot(home, `home-${size}`);

      const chat = await app.open(context, '/chat?room=lobby&name=Alan');
      await until(() => memberNames(chat), ['Alan', 'Grace'], 'the lobby');
      await send(chat, `Hello from a ${size} screen`);
      await until(async () => (await messageTexts(chat)).at(-1), `Hello from a ${size} screen`, 'the message');
      await shoot(chat, `chat-${size}`);

      const remote = await app.open(context, '/remote?device=rover');
      await remote.waitForSelector('#device-pill.online');
      await remote.click('button[data-action=left]');
      await remote.click('button[data-action=forward]');
      await remote.waitForSelector('#log li.ok:has-text("forward")');
      await remote.click('button[data-action=camera][data-arg=up]');
      await remote.waitForSelector('#log li.ok:has-text("camera")');
      // A second of driving, so the map has a track.
      await remote.waitForTimeout(1000);
      await remote.click('button[data-action=stop]');
      await remote.waitForSelector('#log li.ok:has-text("stopped")');
      await shoot(remote, `remote-${size}`);

      const dashboard = await app.open(context, '/dashboard');
      await dashboard.waitForSelector('#channels td.channel:has-text("chat.lobby")');
      await shoot(dashboard, `dashboard-${size}`);
      for (const page of [friend, home, chat, remote, dashboard]) app.assertClean(page);
      await app.closeContexts();
    }
  });
});
