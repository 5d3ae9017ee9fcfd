// Interop with a real browser: headless Chromium loads a page from a Node http server, and the
// page's native WebSocket connects back to the same port, where duplex's WebSocketServer is
// attached at /ws. The page (test/support/pages) is driven through test/support/browser.ts.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer, type MessageEvent } from '../src/index.js';
import { launchBrowserPeer, servePage, type BrowserPeer, type PageSocket, type SendSpec } from './support/browser.js';
import {
  BINARY_SAMPLE,
  BURST,
  DuplexSide,
  Inbox,
  JSON_SAMPLE,
  LENGTH_BOUNDARIES,
  LONGEST_REASON,
  MIB,
  TEXT_SAMPLES,
  WAIT_MS,
  binaryPattern,
  summarize,
  textPattern,
  within,
} from './support/interop.js';

const TEST_OPTIONS = { timeout: 20_000 };
const SERVER_PROTOCOLS = ['chat.v2', 'chat.v1'];
const CLIENT_PROTOCOLS = ['chat.v1', 'chat.v2'];

const clean = (code: number, reason = '') => ({ code, reason, wasClean: true, errors: 0 });

describe('Chromium native WebSocket -> duplex WebSocketServer attached to an http server', () => {
  let httpServer: http.Server;
  let wss: WebSocketServer;
  let browser: BrowserPeer;
  let origin: string;
  const accepted = new Inbox<{ server: DuplexSide; req: http.IncomingMessage }>();

  before(async () => {
    httpServer = http.createServer((req, res) => {
      servePage(req, res).catch((error: unknown) => res.destroy(error as Error));
    });
    wss = new WebSocketServer({
      server: httpServer,
      path: '/ws',
      selectProtocol: (offered) => SERVER_PROTOCOLS.find((p) => offered.includes(p)) ?? false,
    });
    wss.on('connection', (ws: WebSocket, req: http.IncomingMessage) => {
      const server = new DuplexSide(ws);
      ws.on('message', (ev: MessageEvent) => ws.send(ev.rawData, { binary: ev.isBinary }));
      accepted.push({ server, req });
    });
    await within(new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve)), WAIT_MS, 'http listening');
    origin = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
    browser = await launchBrowserPeer(`${origin}/`);
  });

  after(async () => {
    try {
      await browser?.close();
    } finally {
      await within(new Promise<void>((resolve) => wss.close(() => resolve())), WAIT_MS, 'duplex server close');
      httpServer.closeAllConnections();
      await within(new Promise((resolve) => httpServer.close(resolve)), WAIT_MS, 'http server close');
    }
  });

  async function connect(
    name: string,
    protocols?: string[],
    binaryType?: 'blob' | 'arraybuffer',
  ): Promise<{ page: PageSocket; protocol: string; server: DuplexSide; req: http.IncomingMessage }> {
    const opened = await browser.open(`/ws?t=${name}`, protocols, binaryType);
    if ('failed' in opened) assert.fail(`the browser could not connect: ${JSON.stringify(opened)}`);
    const { server, req } = await accepted.next(WAIT_MS, 'duplex connection event');
    return { page: browser.socket(opened.id), protocol: opened.protocol, server, req };
  }

  test('text (multi-byte UTF-8, emoji), JSON and empty text messages', TEST_OPTIONS, async () => {
    const { page, server } = await connect('text');
    for (const text of [...TEXT_SAMPLES, '']) {
      await page.send({ text });
      assert.deepEqual(await server.nextSummary(JSON.stringify(text)), summarize(text), 'what duplex received');
      assert.deepEqual(await page.next(), summarize(text), 'what the browser got back');
    }
    await page.send({ json: JSON_SAMPLE });
    const ev = await server.messages.next(WAIT_MS, 'duplex receiving JSON');
    assert.deepEqual(JSON.parse(ev.data as string), JSON_SAMPLE);
    assert.deepEqual(JSON.parse((await page.next()).text!), JSON_SAMPLE);
    await page.close(1000);
    await page.closed();
  });

  for (const binaryType of ['arraybuffer', 'blob'] as const) {
    test(`binary and empty binary messages, ArrayBuffer and Blob, received as ${binaryType}`, TEST_OPTIONS, async () => {
      const { page, server } = await connect(`binary-${binaryType}`, undefined, binaryType);
      const base64 = BINARY_SAMPLE.toString('base64');
      const empty = Buffer.alloc(0);
      const sends: Array<[SendSpec, Buffer]> = [
        [{ base64 }, BINARY_SAMPLE],
        [{ blob: base64 }, BINARY_SAMPLE],
        [{ base64: '' }, empty],
        [{ blob: '' }, empty],
      ];
      for (const [spec, data] of sends) {
        await page.send(spec);
        assert.deepEqual(await server.nextSummary(JSON.stringify(spec)), summarize(data), `duplex receiving ${JSON.stringify(spec)}`);
        assert.deepEqual(await page.next(), { ...summarize(data), as: binaryType }, `echo of ${JSON.stringify(spec)}`);
      }
      server.ws.send(new Blob([BINARY_SAMPLE]));
      assert.deepEqual(await page.next(), { ...summarize(BINARY_SAMPLE), as: binaryType }, 'a Blob sent by duplex');
      await page.close(1000);
      await page.closed();
    });
  }

  test('1 MiB text, ArrayBuffer and Blob messages', TEST_OPTIONS, async () => {
    const { page, server } = await connect('large', undefined, 'arraybuffer');
    const text = summarize(textPattern(MIB));
    const binary = summarize(binaryPattern(MIB));
    await page.send({ pattern: 'text', size: MIB });
    assert.deepEqual(await server.nextSummary('1 MiB text'), text);
    assert.deepEqual(await page.next(), text);
    await page.send({ pattern: 'binary', size: MIB });
    assert.deepEqual(await server.nextSummary('1 MiB ArrayBuffer'), binary);
    assert.deepEqual(await page.next(), { ...binary, as: 'arraybuffer' });
    await page.send({ pattern: 'binary', size: MIB, asBlob: true });
    assert.deepEqual(await server.nextSummary('1 MiB Blob'), binary);
    assert.deepEqual(await page.next(), { ...binary, as: 'arraybuffer' });
    await page.close(1000);
    await page.closed();
  });

  test('frame length boundaries and a burst of small messages', TEST_OPTIONS, async () => {
    const { page, server } = await connect('burst', undefined, 'arraybuffer');
    for (const size of LENGTH_BOUNDARIES) {
      const expected = summarize(binaryPattern(size));
      await page.send({ pattern: 'binary', size });
      assert.deepEqual(await server.nextSummary(`${size} bytes`), expected);
      assert.deepEqual(await page.next(), { ...expected, as: 'arraybuffer' });
    }
    await page.sendAll(BURST.map((text) => ({ text })));
    const got = [];
    const echoed = [];
    for (const text of BURST) got.push(await server.nextSummary(JSON.stringify(text)));
    for (const _ of BURST) echoed.push(await page.next());
    assert.deepEqual(got, BURST.map(summarize), 'what duplex received, in order');
    assert.deepEqual(echoed, BURST.map(summarize), 'what the browser got back, in order');
    await page.close(1000);
    await page.closed();
  });

  test('server selects the subprotocol from the offered list; the page origin arrives', TEST_OPTIONS, async () => {
    const offered = await connect('subprotocol', CLIENT_PROTOCOLS);
    assert.equal(offered.protocol, 'chat.v2', 'ws.protocol in the browser');
    assert.equal(offered.server.ws.protocol, 'chat.v2');
    assert.equal(offered.req.headers.origin, origin);
    await offered.page.close(1000);
    await offered.page.closed();

    const none = await connect('no-subprotocol');
    assert.equal(none.protocol, '');
    assert.equal(none.server.ws.protocol, '');
    await none.page.close(1000);
    await none.page.closed();
  });

  test('an upgrade on another path is refused', TEST_OPTIONS, async () => {
    const result = await browser.open('/elsewhere');
    assert.ok('failed' in result, `the browser connected to /elsewhere: ${JSON.stringify(result)}`);
    assert.deepEqual(result.failed, { code: 1006, reason: '', wasClean: false });
  });

  test('browser closes with 4000 "bye"', TEST_OPTIONS, async () => {
    const { page, server } = await connect('browser-4000');
    await page.close(4000, 'bye');
    assert.deepEqual(await server.closed(), { code: 4000, reason: 'bye', wasClean: true });
    const seen = await page.closed();
    assert.deepEqual({ code: seen.code, wasClean: seen.wasClean }, { code: 4000, wasClean: true }, 'duplex echoes the code');
  });

  test('duplex closes with 4000 "bye"', TEST_OPTIONS, async () => {
    const { page, server } = await connect('server-4000');
    server.ws.close(4000, 'bye');
    assert.deepEqual(await page.closed(), clean(4000, 'bye'));
    assert.deepEqual(await server.closed(), { code: 4000, reason: 'bye', wasClean: true }, 'Chromium echoes code and reason');
  });

  test('1000 without a reason, and no code at all, in both directions', TEST_OPTIONS, async () => {
    const a = await connect('browser-1000');
    await a.page.close(1000);
    assert.deepEqual(await a.server.closed(), { code: 1000, reason: '', wasClean: true });
    assert.deepEqual(await a.page.closed(), clean(1000));

    const b = await connect('server-1000');
    b.server.ws.close(1000);
    assert.deepEqual(await b.page.closed(), clean(1000));
    assert.deepEqual(await b.server.closed(), { code: 1000, reason: '', wasClean: true });

    const c = await connect('browser-bare');
    await c.page.close();
    assert.deepEqual(await c.server.closed(), { code: 1005, reason: '', wasClean: true }, 'an empty close frame is 1005');
    assert.equal((await c.page.closed()).wasClean, true);

    const d = await connect('server-bare');
    d.server.ws.close();
    assert.deepEqual(await d.page.closed(), clean(1005), 'an empty close frame is 1005');
    assert.equal((await d.server.closed()).wasClean, true);
  });

  test('close reasons of 123 bytes of multi-byte UTF-8, both directions', TEST_OPTIONS, async () => {
    const a = await connect('browser-long-reason');
    await a.page.close(4001, LONGEST_REASON);
    assert.deepEqual(await a.server.closed(), { code: 4001, reason: LONGEST_REASON, wasClean: true });
    assert.equal((await a.page.closed()).wasClean, true);

    const b = await connect('server-long-reason');
    b.server.ws.close(4001, LONGEST_REASON);
    assert.deepEqual(await b.page.closed(), clean(4001, LONGEST_REASON));
    assert.equal((await b.server.closed()).wasClean, true);
  });

  test('closing the server sends 1001 to the browser', TEST_OPTIONS, async () => {
    const other = http.createServer();
    const closing = new WebSocketServer({ server: other, path: '/ws' });
    try {
      await within(new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve)), WAIT_MS, 'http listening');
      const connected = new Promise((resolve) => closing.on('connection', resolve));
      const opened = await browser.open(`ws://127.0.0.1:${(other.address() as AddressInfo).port}/ws`);
      if ('failed' in opened) assert.fail(`the browser could not connect: ${JSON.stringify(opened)}`);
      await within(connected, WAIT_MS, 'duplex connection event');
      await within(new Promise<void>((resolve) => closing.close(() => resolve())), WAIT_MS, 'duplex server close');
      const seen = await browser.socket(opened.id).closed();
      assert.deepEqual({ code: seen.code, wasClean: seen.wasClean, errors: seen.errors }, { code: 1001, wasClean: true, errors: 0 });
    } finally {
      other.closeAllConnections();
      await within(new Promise((resolve) => other.close(resolve)), WAIT_MS, 'http server close');
    }
  });

  test('Chromium answers a ping from duplex', TEST_OPTIONS, async () => {
    const { page, server } = await connect('ping');
    server.ws.ping('from duplex');
    assert.equal((await server.pongs.next(WAIT_MS, 'duplex pong for its ping')).toString(), 'from duplex');
    await page.send({ text: 'still open' });
    assert.deepEqual(await page.next(), summarize('still open'));
    await page.close(1000);
    await page.closed();
  });
});
