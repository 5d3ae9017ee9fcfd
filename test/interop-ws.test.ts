// Interop with the `ws` package, the most used Node implementation, in both directions:
// a ws client against duplex's WebSocketServer, and duplex's WebSocket against a ws server.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket as WsClient, WebSocketServer as WsServer } from 'ws';
import { WebSocket, WebSocketServer, type MessageEvent } from '../src/index.js';
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
  summarizeBytes,
  textPattern,
  within,
  type CloseSeen,
  type MessageSummary,
} from './support/interop.js';

const TEST_OPTIONS = { timeout: 15_000 };
// Listed in the server's order of preference, the reverse of the client's, so the tests
// can tell which side chose.
const SERVER_PROTOCOLS = ['chat.v2', 'chat.v1'];
const CLIENT_PROTOCOLS = ['chat.v1', 'chat.v2'];

interface Received {
  data: Buffer;
  isBinary: boolean;
}

/** A `ws` socket with everything it receives captured, through its browser-style close event so wasClean is visible. */
class WsSide {
  readonly messages = new Inbox<Received>();
  readonly pings = new Inbox<Buffer>();
  readonly pongs = new Inbox<Buffer>();
  private readonly closeEvent: Promise<CloseSeen>;

  constructor(readonly ws: WsClient) {
    ws.on('message', (data: Buffer, isBinary: boolean) => this.messages.push({ data, isBinary }));
    ws.on('ping', (data: Buffer) => this.pings.push(data));
    ws.on('pong', (data: Buffer) => this.pongs.push(data));
    this.closeEvent = new Promise((resolve) => {
      ws.addEventListener('close', (ev) => resolve({ code: ev.code, reason: ev.reason, wasClean: ev.wasClean }));
    });
  }

  async nextSummary(what: string): Promise<MessageSummary> {
    const { data, isBinary } = await this.messages.next(WAIT_MS, `ws receiving ${what}`);
    return summarizeBytes(data, isBinary);
  }

  closed(): Promise<CloseSeen> {
    return within(this.closeEvent, WAIT_MS, 'ws close event');
  }
}

interface Receiver {
  nextSummary(what: string): Promise<MessageSummary>;
}

function portOf(address: AddressInfo | string | null): number {
  if (address === null || typeof address === 'string') throw new Error(`unexpected address ${address}`);
  return address.port;
}

async function take(side: Receiver, count: number, what: string): Promise<MessageSummary[]> {
  const summaries = [];
  for (let i = 0; i < count; i++) summaries.push(await side.nextSummary(`${what} #${i}`));
  return summaries;
}

/** Sends a burst without waiting, then checks that every message arrived, in order, both ways. */
async function assertBurst(send: (data: string) => void, server: Receiver, client: Receiver): Promise<void> {
  for (const text of BURST) send(text);
  assert.deepEqual(await take(server, BURST.length, 'the burst'), BURST.map(summarize), 'what the server got');
  assert.deepEqual(await take(client, BURST.length, 'the burst echo'), BURST.map(summarize), 'what came back');
}

/** Sends each payload, checks what the server got, and that its echo came back intact. */
async function assertEchoes(
  payloads: Array<string | Buffer>,
  send: (data: string | Buffer) => void,
  server: Receiver,
  client: Receiver,
): Promise<void> {
  for (const data of payloads) {
    const what = `${typeof data === 'string' ? 'text' : 'binary'} of ${Buffer.byteLength(data)} bytes`;
    send(data);
    assert.deepEqual(await server.nextSummary(what), summarize(data), `server got ${what}`);
    assert.deepEqual(await client.nextSummary(`echo of ${what}`), summarize(data), `echo of ${what}`);
  }
}

describe('ws client -> duplex WebSocketServer', () => {
  let wss: WebSocketServer;
  let url: string;
  const accepted = new Inbox<{ side: DuplexSide; req: http.IncomingMessage }>();
  const offers: string[][] = [];

  before(async () => {
    wss = new WebSocketServer({
      port: 0,
      host: '127.0.0.1',
      selectProtocol: (offered) => {
        offers.push(offered);
        return SERVER_PROTOCOLS.find((p) => offered.includes(p)) ?? false;
      },
    });
    wss.on('connection', (ws: WebSocket, req: http.IncomingMessage) => {
      const side = new DuplexSide(ws);
      ws.on('message', (ev: MessageEvent) => ws.send(ev.rawData, { binary: ev.isBinary }));
      accepted.push({ side, req });
    });
    await within(new Promise<void>((resolve) => wss.on('listening', () => resolve())), WAIT_MS, 'duplex listening');
    url = `ws://127.0.0.1:${portOf(wss.address())}`;
  });

  after(async () => {
    await within(new Promise<void>((resolve) => wss.close(() => resolve())), WAIT_MS, 'duplex server close');
  });

  async function connect(protocols: string[] = [], path = '/'): Promise<{ client: WsSide; server: DuplexSide }> {
    const ws = new WsClient(`${url}${path}`, protocols);
    const client = new WsSide(ws);
    const opened = new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    await within(opened, WAIT_MS, 'ws client open');
    const { side } = await accepted.next(WAIT_MS, 'duplex connection event');
    return { client, server: side };
  }

  test('text (multi-byte UTF-8, emoji), JSON, binary and empty messages', TEST_OPTIONS, async () => {
    const { client, server } = await connect();
    const json = JSON.stringify(JSON_SAMPLE);
    await assertEchoes([...TEXT_SAMPLES, json, BINARY_SAMPLE, '', Buffer.alloc(0)], (d) => client.ws.send(d), server, client);
    client.ws.send(json);
    const ev = await server.messages.next(WAIT_MS, 'duplex JSON message');
    assert.equal(typeof ev.data, 'string');
    assert.deepEqual(JSON.parse(ev.data as string), JSON_SAMPLE);
    assert.deepEqual(JSON.parse((await client.nextSummary('JSON echo')).text!), JSON_SAMPLE);
    client.ws.send(BINARY_SAMPLE);
    const binary = await server.messages.next(WAIT_MS, 'duplex binary message');
    assert.ok(Buffer.isBuffer(binary.data), 'binary arrives as a Buffer by default');
    client.ws.close();
    await client.closed();
  });

  test('1 MiB text and binary messages', TEST_OPTIONS, async () => {
    const { client, server } = await connect();
    await assertEchoes([textPattern(MIB), binaryPattern(MIB)], (d) => client.ws.send(d), server, client);
    client.ws.close();
    await client.closed();
  });

  test('fragmented messages, a code point split across frames, a ping between fragments', TEST_OPTIONS, async () => {
    const { client, server } = await connect();
    const emoji = Buffer.from('\u{1F600}');
    client.ws.send(Buffer.concat([Buffer.from('frag '), emoji.subarray(0, 2)]), { binary: false, fin: false });
    client.ws.ping('between');
    client.ws.send(Buffer.concat([emoji.subarray(2), Buffer.from(' ment')]), { binary: false, fin: true });
    client.ws.send(BINARY_SAMPLE.subarray(0, 4), { binary: true, fin: false });
    client.ws.send(BINARY_SAMPLE.subarray(4), { binary: true, fin: true });
    const text = 'frag \u{1F600} ment';
    assert.equal((await server.pings.next(WAIT_MS, 'duplex ping between fragments')).toString(), 'between');
    assert.deepEqual(await server.nextSummary('fragmented text'), summarize(text));
    assert.deepEqual(await server.nextSummary('fragmented binary'), summarize(BINARY_SAMPLE));
    assert.deepEqual(await client.nextSummary('echo of fragmented text'), summarize(text));
    assert.deepEqual(await client.nextSummary('echo of fragmented binary'), summarize(BINARY_SAMPLE));
    assert.equal((await client.pongs.next(WAIT_MS, 'ws pong')).toString(), 'between');
    client.ws.close();
    await client.closed();
  });

  test('frame length boundaries and a burst of small messages', TEST_OPTIONS, async () => {
    const { client, server } = await connect();
    await assertEchoes(LENGTH_BOUNDARIES.map(binaryPattern), (d) => client.ws.send(d), server, client);
    await assertBurst((d) => client.ws.send(d), server, client);
    client.ws.close();
    await client.closed();
  });

  test('server selects the subprotocol from the offered list', TEST_OPTIONS, async () => {
    offers.length = 0;
    const { client, server } = await connect(CLIENT_PROTOCOLS);
    assert.deepEqual(offers, [CLIENT_PROTOCOLS], 'selectProtocol sees the offer in order');
    assert.equal(client.ws.protocol, 'chat.v2');
    assert.equal(server.ws.protocol, 'chat.v2');
    client.ws.close();
    await client.closed();
    const plain = await connect();
    assert.equal(plain.client.ws.protocol, '');
    assert.equal(plain.server.ws.protocol, '');
    plain.client.ws.close();
    await plain.client.closed();
  });

  test('ws client closes with 4000 "bye"', TEST_OPTIONS, async () => {
    const { client, server } = await connect();
    client.ws.close(4000, 'bye');
    assert.deepEqual(await server.closed(), { code: 4000, reason: 'bye', wasClean: true });
    const seen = await client.closed();
    assert.deepEqual({ code: seen.code, wasClean: seen.wasClean }, { code: 4000, wasClean: true }, 'duplex echoes the code');
  });

  test('duplex server closes with 4000 "bye"', TEST_OPTIONS, async () => {
    const { client, server } = await connect();
    server.ws.close(4000, 'bye');
    assert.deepEqual(await client.closed(), { code: 4000, reason: 'bye', wasClean: true });
    assert.deepEqual(await server.closed(), { code: 4000, reason: 'bye', wasClean: true }, 'ws echoes code and reason');
  });

  test('1000 without a reason, and no code at all, in both directions', TEST_OPTIONS, async () => {
    const a = await connect();
    a.client.ws.close(1000);
    assert.deepEqual(await a.server.closed(), { code: 1000, reason: '', wasClean: true });
    assert.deepEqual(await a.client.closed(), { code: 1000, reason: '', wasClean: true });

    const b = await connect();
    b.server.ws.close(1000);
    assert.deepEqual(await b.client.closed(), { code: 1000, reason: '', wasClean: true });
    assert.deepEqual(await b.server.closed(), { code: 1000, reason: '', wasClean: true });

    const c = await connect();
    c.client.ws.close();
    assert.deepEqual(await c.server.closed(), { code: 1005, reason: '', wasClean: true }, 'an empty close frame is 1005');
    assert.equal((await c.client.closed()).wasClean, true);

    const d = await connect();
    d.server.ws.close();
    assert.deepEqual(await d.client.closed(), { code: 1005, reason: '', wasClean: true }, 'an empty close frame is 1005');
    assert.equal((await d.server.closed()).wasClean, true);
  });

  test('close reasons of 123 bytes of multi-byte UTF-8, both directions', TEST_OPTIONS, async () => {
    const a = await connect();
    a.client.ws.close(4001, LONGEST_REASON);
    assert.deepEqual(await a.server.closed(), { code: 4001, reason: LONGEST_REASON, wasClean: true });
    assert.equal((await a.client.closed()).wasClean, true);

    const b = await connect();
    b.server.ws.close(4001, LONGEST_REASON);
    assert.deepEqual(await b.client.closed(), { code: 4001, reason: LONGEST_REASON, wasClean: true });
    assert.equal((await b.server.closed()).wasClean, true);
  });

  test('closing the server sends 1001 to its clients', TEST_OPTIONS, async () => {
    const closing = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await within(new Promise<void>((resolve) => closing.on('listening', () => resolve())), WAIT_MS, 'duplex listening');
    const client = new WsSide(new WsClient(`ws://127.0.0.1:${portOf(closing.address())}/`));
    await within(new Promise((resolve) => client.ws.once('open', resolve)), WAIT_MS, 'ws client open');
    await within(new Promise<void>((resolve) => closing.close(() => resolve())), WAIT_MS, 'duplex server close');
    const seen = await client.closed();
    assert.deepEqual({ code: seen.code, wasClean: seen.wasClean }, { code: 1001, wasClean: true });
  });

  test('ping and pong in both directions', TEST_OPTIONS, async () => {
    const { client, server } = await connect();
    client.ws.ping('from ws');
    assert.equal((await server.pings.next(WAIT_MS, 'duplex ping event')).toString(), 'from ws');
    assert.equal((await client.pongs.next(WAIT_MS, 'ws pong for its ping')).toString(), 'from ws');
    server.ws.ping('from duplex');
    assert.equal((await client.pings.next(WAIT_MS, 'ws ping event')).toString(), 'from duplex');
    assert.equal((await server.pongs.next(WAIT_MS, 'duplex pong for its ping')).toString(), 'from duplex');
    client.ws.close();
    await client.closed();
  });
});

describe('duplex WebSocket -> ws WebSocketServer', () => {
  let wss: WsServer;
  let url: string;
  const accepted = new Inbox<{ side: WsSide; req: http.IncomingMessage }>();

  before(async () => {
    wss = new WsServer({
      port: 0,
      host: '127.0.0.1',
      perMessageDeflate: true,
      handleProtocols: (offered: Set<string>) => SERVER_PROTOCOLS.find((p) => offered.has(p)) ?? false,
    });
    wss.on('connection', (ws, req) => {
      const side = new WsSide(ws);
      ws.on('message', (data: Buffer, isBinary: boolean) => ws.send(data, { binary: isBinary }));
      accepted.push({ side, req });
    });
    await within(new Promise<void>((resolve) => wss.on('listening', () => resolve())), WAIT_MS, 'ws listening');
    url = `ws://127.0.0.1:${portOf(wss.address())}`;
  });

  after(async () => {
    for (const ws of wss.clients) ws.terminate();
    await within(new Promise<void>((resolve) => wss.close(() => resolve())), WAIT_MS, 'ws server close');
  });

  async function connect(protocols: string[] = [], target = url): Promise<{ client: DuplexSide; server: WsSide }> {
    const ws = new WebSocket(`${target}/`, protocols);
    const client = new DuplexSide(ws);
    const opened = new Promise<void>((resolve, reject) => {
      ws.on('open', () => resolve());
      ws.on('error', (ev: { error: Error }) => reject(ev.error));
    });
    await within(opened, WAIT_MS, 'duplex client open');
    const { side } = await accepted.next(WAIT_MS, 'ws connection event');
    return { client, server: side };
  }

  test('text (multi-byte UTF-8, emoji), JSON, binary and empty messages', TEST_OPTIONS, async () => {
    const { client, server } = await connect();
    const json = JSON.stringify(JSON_SAMPLE);
    await assertEchoes([...TEXT_SAMPLES, json, BINARY_SAMPLE, '', Buffer.alloc(0)], (d) => client.ws.send(d), server, client);

    client.ws.send(json);
    assert.deepEqual(JSON.parse((await server.nextSummary('JSON')).text!), JSON_SAMPLE);
    const echo = await client.messages.next(WAIT_MS, 'duplex JSON echo');
    assert.equal(typeof echo.data, 'string');
    assert.deepEqual(JSON.parse(echo.data as string), JSON_SAMPLE);
    client.ws.close();
    await client.closed();
  });

  test('ArrayBuffer, typed-array views and Blob are sent as binary; binaryType shapes what arrives', TEST_OPTIONS, async () => {
    const { client, server } = await connect();
    const framed = Buffer.concat([Buffer.from('xx'), BINARY_SAMPLE, Buffer.from('yy')]);
    const view = new Uint8Array(framed.buffer, framed.byteOffset + 2, BINARY_SAMPLE.length);
    const arrayBuffer = BINARY_SAMPLE.buffer.slice(BINARY_SAMPLE.byteOffset, BINARY_SAMPLE.byteOffset + BINARY_SAMPLE.length);
    for (const [label, data] of [['ArrayBuffer', arrayBuffer], ['Uint8Array view', view], ['Blob', new Blob([BINARY_SAMPLE])]] as const) {
      client.ws.send(data);
      assert.deepEqual(await server.nextSummary(label), summarize(BINARY_SAMPLE), `ws server got the ${label}`);
    }
    for (const _ of [1, 2, 3]) await client.messages.next(WAIT_MS, 'echo of a binary send');

    client.ws.binaryType = 'arraybuffer';
    client.ws.send(BINARY_SAMPLE);
    const asArrayBuffer = (await client.messages.next(WAIT_MS, 'echo as ArrayBuffer')).data;
    assert.ok(asArrayBuffer instanceof ArrayBuffer, 'binaryType arraybuffer gives an ArrayBuffer');
    assert.deepEqual(Buffer.from(asArrayBuffer), BINARY_SAMPLE);

    client.ws.binaryType = 'blob';
    client.ws.send(BINARY_SAMPLE);
    const asBlob = (await client.messages.next(WAIT_MS, 'echo as Blob')).data;
    assert.ok(asBlob instanceof Blob, 'binaryType blob gives a Blob');
    assert.deepEqual(Buffer.from(await asBlob.arrayBuffer()), BINARY_SAMPLE);
    client.ws.close();
    await client.closed();
  });

  test('1 MiB text and binary messages', TEST_OPTIONS, async () => {
    const { client, server } = await connect();
    await assertEchoes([textPattern(MIB), binaryPattern(MIB)], (d) => client.ws.send(d), server, client);
    client.ws.close();
    await client.closed();
  });

  test('fragmented messages from ws, a code point split across frames, a ping between fragments', TEST_OPTIONS, async () => {
    const { client, server } = await connect();
    const emoji = Buffer.from('\u{1F600}');
    server.ws.send(Buffer.concat([Buffer.from('frag '), emoji.subarray(0, 3)]), { binary: false, fin: false });
    server.ws.ping('between');
    server.ws.send(Buffer.concat([emoji.subarray(3), Buffer.from(' ment')]), { binary: false, fin: true });
    server.ws.send(BINARY_SAMPLE.subarray(0, 4), { binary: true, fin: false });
    server.ws.send(BINARY_SAMPLE.subarray(4), { binary: true, fin: true });
    assert.equal((await client.pings.next(WAIT_MS, 'duplex ping between fragments')).toString(), 'between');
    const text = await client.messages.next(WAIT_MS, 'duplex receiving fragmented text');
    assert.equal(text.data, 'frag \u{1F600} ment');
    assert.deepEqual(await client.nextSummary('fragmented binary'), summarize(BINARY_SAMPLE));
    assert.equal((await server.pongs.next(WAIT_MS, 'ws pong')).toString(), 'between');
    client.ws.close();
    await client.closed();
  });

  test('frame length boundaries and a burst of small messages', TEST_OPTIONS, async () => {
    const { client, server } = await connect();
    await assertEchoes(LENGTH_BOUNDARIES.map(binaryPattern), (d) => client.ws.send(d), server, client);
    await assertBurst((d) => client.ws.send(d), server, client);
    client.ws.close();
    await client.closed();
  });

  test('subprotocol: duplex reports what the server selected from its offer', TEST_OPTIONS, async () => {
    const { client, server } = await connect(CLIENT_PROTOCOLS);
    assert.equal(server.ws.protocol, 'chat.v2');
    assert.equal(client.ws.protocol, 'chat.v2');
    client.ws.close();
    await client.closed();
  });

  test('subprotocol: duplex fails the connection when the server answers with one it did not offer', TEST_OPTIONS, async () => {
    const rogue = new WsServer({ port: 0, host: '127.0.0.1', handleProtocols: () => 'chat.v9' });
    try {
      await within(new Promise<void>((resolve) => rogue.on('listening', () => resolve())), WAIT_MS, 'rogue listening');
      const ws = new WebSocket(`ws://127.0.0.1:${portOf(rogue.address())}/`, CLIENT_PROTOCOLS);
      const side = new DuplexSide(ws);
      let opened = false;
      let errors = 0;
      ws.on('open', () => (opened = true));
      ws.on('error', () => errors++);
      const closed = await side.closed();
      assert.deepEqual({ opened, errors, code: closed.code, wasClean: closed.wasClean }, { opened: false, errors: 1, code: 1006, wasClean: false });
    } finally {
      for (const ws of rogue.clients) ws.terminate();
      await within(new Promise<void>((resolve) => rogue.close(() => resolve())), WAIT_MS, 'rogue close');
    }
  });

  test('duplex client closes with 4000 "bye"', TEST_OPTIONS, async () => {
    const { client, server } = await connect();
    client.ws.close(4000, 'bye');
    assert.deepEqual(await server.closed(), { code: 4000, reason: 'bye', wasClean: true });
    assert.deepEqual(await client.closed(), { code: 4000, reason: 'bye', wasClean: true }, 'ws echoes code and reason');
  });

  test('ws server closes with 4000 "bye"', TEST_OPTIONS, async () => {
    const { client, server } = await connect();
    server.ws.close(4000, 'bye');
    assert.deepEqual(await client.closed(), { code: 4000, reason: 'bye', wasClean: true });
    const seen = await server.closed();
    assert.deepEqual({ code: seen.code, wasClean: seen.wasClean }, { code: 4000, wasClean: true }, 'duplex echoes the code');
  });

  test('1000 without a reason, and no code at all, in both directions', TEST_OPTIONS, async () => {
    const a = await connect();
    a.client.ws.close(1000);
    assert.deepEqual(await a.server.closed(), { code: 1000, reason: '', wasClean: true });
    assert.deepEqual(await a.client.closed(), { code: 1000, reason: '', wasClean: true });

    const b = await connect();
    b.server.ws.close(1000);
    assert.deepEqual(await b.client.closed(), { code: 1000, reason: '', wasClean: true });
    assert.deepEqual(await b.server.closed(), { code: 1000, reason: '', wasClean: true });

    const c = await connect();
    c.client.ws.close();
    assert.deepEqual(await c.server.closed(), { code: 1005, reason: '', wasClean: true }, 'an empty close frame is 1005');
    assert.equal((await c.client.closed()).wasClean, true);

    const d = await connect();
    d.server.ws.close();
    assert.deepEqual(await d.client.closed(), { code: 1005, reason: '', wasClean: true }, 'an empty close frame is 1005');
    assert.equal((await d.server.closed()).wasClean, true);
  });

  test('close reasons of 123 bytes of multi-byte UTF-8, both directions', TEST_OPTIONS, async () => {
    const a = await connect();
    a.client.ws.close(4001, LONGEST_REASON);
    assert.deepEqual(await a.server.closed(), { code: 4001, reason: LONGEST_REASON, wasClean: true });
    assert.equal((await a.client.closed()).wasClean, true);

    const b = await connect();
    b.server.ws.close(4001, LONGEST_REASON);
    assert.deepEqual(await b.client.closed(), { code: 4001, reason: LONGEST_REASON, wasClean: true });
    assert.equal((await b.server.closed()).wasClean, true);
  });

  test('ping and pong in both directions', TEST_OPTIONS, async () => {
    const { client, server } = await connect();
    client.ws.ping('from duplex');
    assert.equal((await server.pings.next(WAIT_MS, 'ws ping event')).toString(), 'from duplex');
    assert.equal((await client.pongs.next(WAIT_MS, 'duplex pong for its ping')).toString(), 'from duplex');
    server.ws.ping('from ws');
    assert.equal((await client.pings.next(WAIT_MS, 'duplex ping event')).toString(), 'from ws');
    assert.equal((await server.pongs.next(WAIT_MS, 'ws pong for its ping')).toString(), 'from ws');
    client.ws.close();
    await client.closed();
  });
});
