// permessage-deflate (RFC 7692) conformance, modelled on Autobahn|Testsuite categories 12 (many
// compressed messages of growing sizes, text and binary, whole and fragmented) and 13 (the same
// under each parameter set a client can offer), reduced so the file runs in well under a minute.
// The raw client negotiates the extension, compresses with node:zlib (RawDeflate, which shares no
// code with src/) and inflates every echo with exactly the window the server agreed to, with
// server_no_context_takeover each with a fresh inflater; the messages repeat content so that a
// server keeping a window it promised to drop, or using a larger one, produces data that fails to
// inflate. Then RFC 7692's negotiation rules and its failures: RSV1 where it has no meaning (1002),
// corrupt data and invalid UTF-8 (1007), a compression bomb (1009).
//
// Targets: duplex's WebSocketServer in this process (threshold 0, so every echo is compressed) and
// `duplex echo --deflate` as a child process. DUPLEX_CONFORMANCE_SERVER=ws runs the cases against the
// `ws` package instead, to check that the tests expect what a mature implementation does; ws refuses
// (400) the offers it cannot accept where RFC 7692 section 7 has the server decline them and go on
// to the next, so the N.1, N.2, N.5, N.6, 13.13 and some S cases fail against it by design.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import net, { type AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import { WebSocketServer as WsServer } from 'ws';
import { WebSocket as DuplexWebSocket, WebSocketServer, type CloseEvent, type MessageEvent, type WebSocket } from '../src/index.js';
import type { PerMessageDeflateOptions } from '../src/protocol/permessage-deflate.js';
import { Op, RawClient, RawDeflate, chunks, encodeFrame, type FrameSpec, type Message } from './support/rawclient.js';
import {
  assertMessage,
  closeNormally,
  expectFailure,
  expectPong,
  useEchoServer,
  type ServerHandle,
} from './support/conformance-case.js';
import type { EchoServer } from './support/echo-servers.js';
import { killAll, startServerCli } from './support/cli.js';
import { within } from './support/interop.js';
import { SeededRandom } from './support/seeded-random.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const CASE_TIMEOUT_MS = 20_000;
const ECHO_WAIT_MS = 10_000;
const START_TIMEOUT_MS = 10_000;
/** Messages in flight at once in the echo loops, as Autobahn's client keeps several outstanding. */
const WINDOW = 8;
const REFERENCE = process.env['DUPLEX_CONFORMANCE_SERVER'] === 'ws';

after(killAll);

// ---------------------------------------------------------------------------------------------
// Servers

interface Setup {
  /** The server's perMessageDeflate option. */
  deflate: true | PerMessageDeflateOptions;
  maxPayload?: number;
}

/** An echo server and the message size from which it compresses what it sends. */
interface DeflateServer extends ServerHandle {
  readonly threshold: number;
}

function urlOf(address: AddressInfo | string | null): string {
  if (address === null || typeof address === 'string') throw new Error(`unexpected server address ${address}`);
  return `ws://127.0.0.1:${address.port}/`;
}

async function startDuplex({ deflate, maxPayload }: Setup): Promise<EchoServer> {
  const wss = new WebSocketServer({
    port: 0,
    host: '127.0.0.1',
    perMessageDeflate: deflate,
    ...(maxPayload ? { maxPayload } : {}),
  });
  wss.on('connection', (ws: WebSocket) => {
    ws.on('message', (ev: MessageEvent) => ws.send(ev.rawData, { binary: ev.isBinary }));
  });
  await within(new Promise<void>((resolve) => wss.once('listening', () => resolve())), START_TIMEOUT_MS, 'duplex server start');
  return {
    url: urlOf(wss.address()),
    stop: () => within(new Promise<void>((resolve) => wss.close(() => resolve())), START_TIMEOUT_MS, 'duplex server stop'),
  };
}

/** `duplex echo --deflate`: perMessageDeflate true, the default maxPayload. */
async function startCli(): Promise<EchoServer> {
  const { cli, url } = await startServerCli(['echo', '--port', '0', '--host', '127.0.0.1', '--deflate']);
  return {
    url,
    stop: async () => {
      cli.signal('SIGTERM');
      await cli.exited();
    },
  };
}

async function startReference({ deflate, maxPayload }: Setup): Promise<EchoServer> {
  // ws takes the same option names; `clientMaxWindowBits: true` is what it does without one.
  const perMessageDeflate = deflate === true ? true : { ...deflate, clientMaxWindowBits: deflate.clientMaxWindowBits === true ? undefined : deflate.clientMaxWindowBits };
  const wss = new WsServer({ port: 0, host: '127.0.0.1', perMessageDeflate, ...(maxPayload ? { maxPayload } : {}) });
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('error', () => {});
  });
  await within(once(wss, 'listening'), START_TIMEOUT_MS, 'ws server start');
  return {
    url: urlOf(wss.address()),
    stop: async () => {
      for (const client of wss.clients) client.terminate();
      await within(new Promise<void>((resolve) => wss.close(() => resolve())), START_TIMEOUT_MS, 'ws server stop');
    },
  };
}

/** The in-process server for the suite (or the reference), started before its cases. */
function useServer(setup: Setup): DeflateServer {
  const handle = useEchoServer({}, () => (REFERENCE ? startReference(setup) : startDuplex(setup)));
  return withThreshold(handle, setup.deflate === true ? 1024 : setup.deflate.threshold ?? 1024);
}

function useCli(): DeflateServer {
  const handle = useEchoServer({}, () => (REFERENCE ? startReference({ deflate: true }) : startCli()));
  return withThreshold(handle, 1024);
}

function withThreshold(handle: ServerHandle, threshold: number): DeflateServer {
  return {
    threshold,
    get url() {
      return handle.url;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Negotiation, as the client reads the server's answer

type Params = Map<string, string | true>;

/** An extension list, element by element; quoted values are unquoted. A repeated parameter fails the test. */
function parseList(header: string): Array<{ name: string; params: Params }> {
  return header
    .split(',')
    .map((element) => element.trim())
    .filter((element) => element !== '')
    .map((element) => {
      const [name, ...rest] = element.split(';').map((part) => part.trim());
      const params: Params = new Map();
      for (const param of rest) {
        const eq = param.indexOf('=');
        const key = (eq < 0 ? param : param.slice(0, eq)).trim();
        assert.ok(!params.has(key), `parameter ${key} repeated in ${JSON.stringify(header)}`);
        params.set(key, eq < 0 ? true : param.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1'));
      }
      return { name: name!, params };
    });
}

/** What the accepted offer and the answer bind each side to. */
interface Agreement {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number;
  clientMaxWindowBits: number;
}

const WINDOW_BITS = /^(?:8|9|1[0-5])$/;

/**
 * Checks that `response` is an answer RFC 7692 section 7.1 allows to the single offer `offer`, and
 * returns what it agrees to. The client keeps its own promises: a client_no_context_takeover or a
 * client_max_window_bits value it offered binds it whatever the answer says.
 */
function agree(offer: string, response: string): Agreement {
  const offered = parseList(offer)[0]!.params;
  const accepted = parseList(response).filter((element) => element.name === 'permessage-deflate');
  assert.equal(accepted.length, 1, `permessage-deflate accepted once, in ${JSON.stringify(response)}`);
  const params = accepted[0]!.params;
  const what = `response ${JSON.stringify(response)} to ${JSON.stringify(offer)}`;
  for (const [name, value] of params) {
    if (name === 'server_no_context_takeover' || name === 'client_no_context_takeover') {
      assert.equal(value, true, `${what}: ${name} takes no value`);
    } else if (name === 'server_max_window_bits' || name === 'client_max_window_bits') {
      assert.match(String(value), WINDOW_BITS, `${what}: ${name} must be 8 to 15`);
    } else {
      assert.fail(`${what}: unknown parameter ${name}`);
    }
  }
  if (offered.has('server_no_context_takeover')) {
    assert.ok(params.has('server_no_context_takeover'), `${what}: 7.1.1.1 the server accepts server_no_context_takeover by answering it`);
  }
  const bits = (value: string | true | undefined): number => (value === undefined || value === true ? 15 : Number(value));
  if (offered.has('server_max_window_bits')) {
    assert.ok(params.has('server_max_window_bits'), `${what}: 7.1.2.1 the server accepts server_max_window_bits by answering it`);
    assert.ok(bits(params.get('server_max_window_bits')) <= bits(offered.get('server_max_window_bits')), `${what}: 7.1.2.1 at most the offered value`);
  }
  if (params.has('client_max_window_bits')) {
    assert.ok(offered.has('client_max_window_bits'), `${what}: 7.1.2.2 client_max_window_bits only when offered`);
    assert.ok(bits(params.get('client_max_window_bits')) <= bits(offered.get('client_max_window_bits')), `${what}: 7.1.2.2 at most the offered value`);
  }
  return {
    serverNoContextTakeover: params.has('server_no_context_takeover'),
    clientNoContextTakeover: params.has('client_no_context_takeover') || offered.has('client_no_context_takeover'),
    serverMaxWindowBits: bits(params.get('server_max_window_bits')),
    clientMaxWindowBits: Math.min(bits(params.get('client_max_window_bits')), bits(offered.get('client_max_window_bits'))),
  };
}

// ---------------------------------------------------------------------------------------------
// The client's side of the extension

/** A raw connection with permessage-deflate agreed: it compresses what it sends and inflates what it gets. */
class DeflateSession {
  private readonly compressor: RawDeflate;
  private readonly decompressor: RawDeflate;

  constructor(
    readonly raw: RawClient,
    readonly agreed: Agreement,
  ) {
    this.compressor = RawDeflate.compressor(agreed.clientMaxWindowBits, !agreed.clientNoContextTakeover);
    // Without context takeover every message gets a fresh inflater: a server that kept its window
    // anyway sends back-references this one cannot resolve.
    this.decompressor = RawDeflate.decompressor(agreed.serverMaxWindowBits, !agreed.serverNoContextTakeover);
  }

  compress(data: Buffer): Promise<Buffer> {
    return this.compressor.run(data);
  }

  /** One message, compressed (RSV1 on its first frame only) unless `plain`, in frames of `frameSize` bytes. */
  async send(opcode: number, data: Buffer, options: { frameSize?: number; plain?: boolean } = {}): Promise<void> {
    const payload = options.plain ? data : await this.compress(data);
    await this.raw.sendAll(frames(opcode, payload, options.frameSize, options.plain ? 0 : 4));
  }

  /** The next message, inflated if it came compressed. */
  async next(timeoutMs = ECHO_WAIT_MS): Promise<Message> {
    const message = await this.raw.nextMessage(timeoutMs);
    return message.compressed ? { ...message, data: await this.inflate(message.data) } : message;
  }

  async inflate(payload: Buffer): Promise<Buffer> {
    try {
      return await this.decompressor.run(payload);
    } catch (err) {
      throw new Error(`the server's compressed message does not inflate with ${JSON.stringify(this.agreed)}: ${(err as Error).message}`);
    }
  }

  close(): void {
    this.compressor.close();
    this.decompressor.close();
  }
}

/** A message as frames of at most `frameSize` payload bytes; `rsv` goes on the first frame only. */
function frames(opcode: number, payload: Buffer, frameSize = Infinity, rsv = 0): FrameSpec[] {
  const pieces = payload.length <= frameSize ? [payload] : chunks(payload, frameSize);
  return pieces.map((piece, i) => ({
    opcode: i === 0 ? opcode : Op.Continuation,
    payload: piece,
    fin: i === pieces.length - 1,
    rsv: i === 0 ? rsv : 0,
  }));
}

/** Connects with `offer`; on a 101 returns the client, on a refusal the status line. */
async function tryConnect(server: ServerHandle, offer: string | string[]): Promise<RawClient | string> {
  try {
    return await RawClient.connect(server.url, { extensions: offer });
  } catch (err) {
    const refused = /^handshake refused: (.*)$/.exec((err as Error).message);
    if (refused) return refused[1]!;
    throw err;
  }
}

interface CaseOffer {
  /** What the client sends: one header line, or several. */
  header: string | string[];
  /** The offer the server should accept; default the whole header. */
  accepted?: string;
}

/** One case: a fresh connection that must agree to permessage-deflate, the body, then a protocol check. */
function deflateCase(
  server: ServerHandle,
  name: string,
  offer: CaseOffer,
  body: (s: DeflateSession, t: TestContext) => Promise<void>,
  todo?: string,
): void {
  test(name, { timeout: CASE_TIMEOUT_MS, ...(todo ? { todo } : {}) }, async (t) => {
    const raw = await RawClient.connect(server.url, { extensions: offer.header });
    let session: DeflateSession | undefined;
    try {
      assert.notEqual(raw.extensions, '', `the server declined ${JSON.stringify(offer.header)}`);
      session = new DeflateSession(raw, agree(offer.accepted ?? [offer.header].flat().join(', '), raw.extensions));
      await body(session, t);
      assert.deepEqual(raw.violations, [], `server broke the protocol: ${raw.summary()}`);
    } finally {
      session?.close();
      raw.destroy();
    }
  });
}

const PLAIN: CaseOffer = { header: 'permessage-deflate' };

// ---------------------------------------------------------------------------------------------
// Payloads: deterministic, of exact sizes, some compressible and some not

type Kind = 'json text' | 'word text' | 'structured binary' | 'random text' | 'random binary';

const TEXT_ALPHABET = ['a', 'Z', ' ', '7', 'é', 'ß', 'κ', '€', '中', '😀', '🚀', '\u0301'];
const WORDS = ['duplex', 'κόσμε', 'frame', '😀', 'message', 'über', 'deflate', '日本語', 'window', 'ok'];

function makePayload(kind: Kind, size: number, seed: number): Buffer {
  const random = new SeededRandom(seed);
  if (kind === 'random binary') return Buffer.from(random.bytes(size));
  if (kind === 'structured binary') {
    const out = Buffer.alloc(size);
    for (let at = 0; at + 8 <= size; at += 8) {
      out.writeUInt32BE(at >> 3, at);
      out.writeUInt16BE(random.below(64), at + 4);
      out.writeUInt16BE(0xbeef, at + 6);
    }
    return out;
  }
  const parts: string[] = [];
  let length = 0;
  while (length < size) {
    const part =
      kind === 'json text'
        ? `{"id":${random.below(10_000)},"name":"κόσμε ${random.below(100)}","tags":["a","€"],"ok":true}\n`
        : kind === 'word text'
          ? `${WORDS[random.below(WORDS.length)]}${random.below(1000)} `
          : TEXT_ALPHABET[random.below(TEXT_ALPHABET.length)]!;
    parts.push(part);
    length += Buffer.byteLength(part);
  }
  return fitUtf8(Buffer.from(parts.join('')), size);
}

/** Cuts UTF-8 text to `size` bytes at a character boundary, padding with spaces. */
function fitUtf8(text: Buffer, size: number): Buffer {
  let end = Math.min(size, text.length);
  while (end > 0 && end < text.length && (text[end]! & 0xc0) === 0x80) end--;
  return Buffer.concat([text.subarray(0, end), Buffer.alloc(size - end, ' ')]);
}

const isText = (kind: Kind): boolean => kind.endsWith('text');

/**
 * Message `i` of a run: one of two bases, alternately, behind a counter. Repeating content at a
 * distance of two messages is what makes a server's window show: back-references across messages
 * need the context it agreed to keep, and only reach as far as the window it agreed to. zlib only
 * finds them when a base has few short repeats of its own (words, random bytes): in repetitive data
 * its hash chains fill up with nearby matches before reaching the previous messages.
 */
function runMessages(kind: Kind, size: number, seed: number): (i: number) => Buffer {
  const counter = Math.min(4, size);
  const bases = [makePayload(kind, size - counter, seed), makePayload(kind, size - counter, seed + 1)];
  return (i) => Buffer.concat([Buffer.from(String(i % 10_000).padStart(4, '0').slice(-counter)), bases[i % 2]!]);
}

/** Sends `count` messages with up to WINDOW outstanding and checks each echo, in order. */
async function echoRun(
  s: DeflateSession,
  server: DeflateServer,
  count: number,
  message: (i: number) => { opcode: number; data: Buffer },
  frameSize?: number,
): Promise<void> {
  let sent = 0;
  for (let received = 0; received < count; received++) {
    while (sent < count && sent - received < WINDOW) {
      const { opcode, data } = message(sent++);
      await s.send(opcode, data, { frameSize });
    }
    const expected = message(received);
    const echo = await s.next();
    assertMessage(echo, expected, `echo #${received}`);
    // ws applies its threshold only without context takeover, so against it only threshold 0 is checked.
    if (!REFERENCE || server.threshold === 0) {
      assert.equal(echo.compressed, expected.data.length >= server.threshold, `echo #${received} of ${expected.data.length} bytes compressed`);
    }
  }
}

function sizeLabel(size: number): string {
  return size >= KiB ? `${size / KiB} KiB` : `${size} B`;
}

/** Fewer messages as they grow, so that each case stays well under a second. */
function countFor(size: number): number {
  return size <= 256 ? 300 : size <= 4 * KiB ? 200 : 100;
}

// ---------------------------------------------------------------------------------------------
// Category 12: compressed echo with the default offer

const SIZES_12 = [16, 64, 256, KiB, 4 * KiB, 16 * KiB, 64 * KiB];

describe('12 compressed echo, offer "permessage-deflate", server threshold 0', () => {
  const server = useServer({ deflate: { threshold: 0 } });
  const kinds: Kind[] = ['json text', 'structured binary', 'random text', 'random binary'];
  kinds.forEach((kind, k) => {
    SIZES_12.forEach((size, i) => {
      const count = countFor(size);
      deflateCase(server, `12.${k + 1}.${i + 1} ${count} ${kind} messages of ${sizeLabel(size)}`, PLAIN, async (s) => {
        const data = runMessages(kind, size, 1000 * k + i);
        await echoRun(s, server, count, (n) => ({ opcode: isText(kind) ? Op.Text : Op.Binary, data: data(n) }));
        await closeNormally(s.raw);
      });
    });
  });
  SIZES_12.slice(2).forEach((size, i) => {
    const count = Math.min(100, countFor(size));
    deflateCase(server, `12.5.${i + 1} ${count} json text messages of ${sizeLabel(size)}, compressed, in frames of 64 B`, PLAIN, async (s) => {
      const data = runMessages('json text', size, 5000 + i);
      await echoRun(s, server, count, (n) => ({ opcode: Op.Text, data: data(n) }), 64);
      await closeNormally(s.raw);
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Category 13: the parameter sets

const OFFERS_13: Array<[string, CaseOffer]> = [
  ['13.1', PLAIN],
  ['13.2', { header: 'permessage-deflate; client_no_context_takeover' }],
  ['13.3', { header: 'permessage-deflate; server_no_context_takeover' }],
  ['13.4', { header: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover' }],
  ['13.5.8', { header: 'permessage-deflate; server_max_window_bits=8' }],
  ['13.5.9', { header: 'permessage-deflate; server_max_window_bits=9' }],
  ['13.5.15', { header: 'permessage-deflate; server_max_window_bits=15' }],
  ['13.6.8', { header: 'permessage-deflate; client_max_window_bits=8' }],
  ['13.6.9', { header: 'permessage-deflate; client_max_window_bits=9' }],
  ['13.6.15', { header: 'permessage-deflate; client_max_window_bits=15' }],
  ['13.7', { header: 'permessage-deflate; client_max_window_bits' }],
  ['13.8.8', { header: 'permessage-deflate; server_no_context_takeover; server_max_window_bits=8' }],
  ['13.8.15', { header: 'permessage-deflate; server_no_context_takeover; server_max_window_bits=15' }],
  ['13.9.8', { header: 'permessage-deflate; client_no_context_takeover; client_max_window_bits=8' }],
  ['13.9.15', { header: 'permessage-deflate; client_no_context_takeover; client_max_window_bits=15' }],
  ['13.10', { header: 'permessage-deflate; server_max_window_bits=9; client_max_window_bits=8' }],
  [
    '13.11',
    {
      header:
        'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=8; client_max_window_bits=8',
    },
  ],
  [
    '13.12 (several offers: the first)',
    {
      header: 'permessage-deflate; server_no_context_takeover; server_max_window_bits=8, permessage-deflate; server_no_context_takeover, permessage-deflate',
      accepted: 'permessage-deflate; server_no_context_takeover; server_max_window_bits=8',
    },
  ],
  [
    '13.13 (several offers: the first acceptable)',
    {
      header: 'permessage-deflate; server_max_window_bits=7, permessage-deflate; max_window_bits=9, permessage-deflate; server_max_window_bits=9; client_no_context_takeover',
      accepted: 'permessage-deflate; server_max_window_bits=9; client_no_context_takeover',
    },
  ],
];

const SIZES_13 = [16, 256, 4 * KiB, 32 * KiB];

describe('13 compressed echo under each parameter set, server threshold 0', () => {
  const server = useServer({ deflate: { threshold: 0 } });
  for (const [id, offer] of OFFERS_13) {
    SIZES_13.forEach((size, i) => {
      const count = 100;
      const name = `${id}.${i + 1} ${JSON.stringify(offer.header)}: ${count} messages of ${sizeLabel(size)}, text and binary`;
      deflateCase(server, name, offer, async (s) => {
        const textData = runMessages('word text', size, 13_000 + i);
        const binaryData = runMessages('random binary', size, 14_000 + i);
        await echoRun(s, server, count, (n) => (n % 2 === 0 ? { opcode: Op.Text, data: textData(n >> 1) } : { opcode: Op.Binary, data: binaryData(n >> 1) }));
        await closeNormally(s.raw);
      });
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Negotiation

describe('negotiation with perMessageDeflate: true', () => {
  const server = useServer({ deflate: true });

  /** RFC 7692 section 7: an offer the server must decline, with the connection going on uncompressed. */
  const declined: string[] = [
    'permessage-deflate; server_max_window_bits=7',
    'permessage-deflate; server_max_window_bits=16',
    'permessage-deflate; server_max_window_bits=08',
    'permessage-deflate; server_max_window_bits',
    'permessage-deflate; client_max_window_bits=0',
    'permessage-deflate; client_max_window_bits=16',
    'permessage-deflate; server_no_context_takeover=1',
    'permessage-deflate; client_no_context_takeover=true',
    'permessage-deflate; x_unknown_parameter',
    'permessage-deflate; max_window_bits=10',
    'permessage-deflate; server_no_context_takeover; server_no_context_takeover',
    'permessage-deflate; client_max_window_bits; client_max_window_bits=10',
    'permessage-deflate; server_max_window_bits=10; server_max_window_bits=10',
    'x-webkit-deflate-frame',
    'deflate-frame; no_context_takeover',
  ];
  declined.forEach((offer, i) => {
    test(`N.1.${i + 1} ${JSON.stringify(offer)} is declined; the connection stays uncompressed`, { timeout: CASE_TIMEOUT_MS }, async () => {
      const c = await tryConnect(server, offer);
      assert.ok(typeof c !== 'string', `refused with ${c}; RFC 7692 section 7 has the server decline the offer instead`);
      try {
        assert.equal(c.extensions, '', 'Sec-WebSocket-Extensions in the response');
        await c.send({ opcode: Op.Text, payload: 'still here' });
        assertMessage(await c.nextMessage(), { opcode: Op.Text, data: Buffer.from('still here') });
        await closeNormally(c);
        assert.deepEqual(c.violations, [], c.summary());
      } finally {
        c.destroy();
      }
    });
  });

  test('N.2 after a declined offer, RSV1 is a protocol error (1002)', { timeout: CASE_TIMEOUT_MS }, async () => {
    const c = await RawClient.connect(server.url, { extensions: 'permessage-deflate; server_max_window_bits=7' });
    try {
      assert.equal(c.extensions, '');
      await c.send({ opcode: Op.Text, rsv: 4, payload: Buffer.from([0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]) });
      await expectFailure(c, 1002);
    } finally {
      c.destroy();
    }
  });

  test('N.3 without an offer, RSV1 is a protocol error (1002)', { timeout: CASE_TIMEOUT_MS }, async () => {
    const c = await RawClient.connect(server.url);
    try {
      assert.equal(c.extensions, '');
      await c.send({ opcode: Op.Binary, rsv: 4, payload: Buffer.from([0x00]) });
      await expectFailure(c, 1002);
    } finally {
      c.destroy();
    }
  });

  /** Header syntax errors: RFC 6455 lets the server refuse the handshake (400) or decline. */
  const malformed: string[] = [
    'permessage-deflate;',
    'permessage-deflate; ; client_no_context_takeover',
    'permessage-deflate; =10',
    'permessage-deflate; server_max_window_bits=',
    'permessage-deflate server_max_window_bits=10',
    'permessage-deflate; server_max_window_bits="1 0"',
    'permessage-deflate; server_max_window_bits="10',
    ';permessage-deflate',
  ];
  malformed.forEach((offer, i) => {
    test(`N.4.${i + 1} malformed ${JSON.stringify(offer)} is refused or declined`, { timeout: CASE_TIMEOUT_MS }, async (t) => {
      const c = await tryConnect(server, offer);
      if (typeof c === 'string') {
        assert.match(c, /^HTTP\/1\.1 400\b/, 'a refusal is a 400');
        t.diagnostic(`refused: ${c}`);
        return;
      }
      try {
        assert.equal(c.extensions, '', 'a malformed offer must not be accepted');
        t.diagnostic('declined');
        await closeNormally(c);
      } finally {
        c.destroy();
      }
    });
  });

  const chosen: Array<[string | string[], string]> = [
    ['x-webkit-deflate-frame, permessage-deflate', 'permessage-deflate'],
    ['permessage-deflate; x_unknown, permessage-deflate; client_no_context_takeover', 'permessage-deflate; client_no_context_takeover'],
    [['permessage-deflate; server_max_window_bits=7', 'permessage-deflate; server_max_window_bits=10'], 'permessage-deflate; server_max_window_bits=10'],
    ['permessage-deflate; server_max_window_bits="10"', 'permessage-deflate; server_max_window_bits=10'],
    ['permessage-deflate;server_no_context_takeover ;  client_max_window_bits = 9', 'permessage-deflate; server_no_context_takeover; client_max_window_bits=9'],
    [
      'permessage-deflate; server_no_context_takeover; server_no_context_takeover, permessage-deflate; server_max_window_bits=12',
      'permessage-deflate; server_max_window_bits=12',
    ],
  ];
  chosen.forEach(([header, accepted], i) => {
    deflateCase(server, `N.5.${i + 1} ${JSON.stringify(header)}: the server accepts ${JSON.stringify(accepted)}`, { header, accepted }, async (s) => {
      const data = runMessages('json text', 2 * KiB, 500 + i);
      await echoRun(s, server, 20, (n) => ({ opcode: Op.Text, data: data(n) }));
      await closeNormally(s.raw);
    });
  });

  test('N.6 the answer names permessage-deflate once, with no parameter the offer did not allow', { timeout: CASE_TIMEOUT_MS }, async () => {
    for (const offer of OFFERS_13.map(([, o]) => o)) {
      const c = await RawClient.connect(server.url, { extensions: offer.header });
      try {
        agree(offer.accepted ?? [offer.header].flat().join(', '), c.extensions);
        await closeNormally(c);
      } finally {
        c.destroy();
      }
    }
  });
});

describe('negotiation with server options', () => {
  /** The server's options, the offer, and the answer: the parameters of the offer it accepts, or null to decline. */
  const table: Array<[PerMessageDeflateOptions, CaseOffer, Record<string, string | true> | null]> = [
    [{ serverNoContextTakeover: true }, PLAIN, { server_no_context_takeover: true }],
    [{ clientNoContextTakeover: true }, PLAIN, { client_no_context_takeover: true }],
    [{ serverMaxWindowBits: 10 }, PLAIN, { server_max_window_bits: '10' }],
    [{ serverMaxWindowBits: 10 }, { header: 'permessage-deflate; server_max_window_bits=9' }, { server_max_window_bits: '9' }],
    [{ serverMaxWindowBits: 10 }, { header: 'permessage-deflate; server_max_window_bits=12' }, { server_max_window_bits: '10' }],
    [{ clientMaxWindowBits: 10 }, { header: 'permessage-deflate; client_max_window_bits' }, { client_max_window_bits: '10' }],
    [{ clientMaxWindowBits: 10 }, { header: 'permessage-deflate; client_max_window_bits=12' }, { client_max_window_bits: '10' }],
    [{ clientMaxWindowBits: 10 }, { header: 'permessage-deflate; client_max_window_bits=9' }, { client_max_window_bits: '9' }],
    [{ clientMaxWindowBits: 10 }, PLAIN, null],
    [
      { clientMaxWindowBits: 10 },
      { header: 'permessage-deflate, permessage-deflate; client_max_window_bits', accepted: 'permessage-deflate; client_max_window_bits' },
      { client_max_window_bits: '10' },
    ],
  ];
  table.forEach(([options, offer, expected], i) => {
    describe(`S.${i + 1} server ${JSON.stringify(options)}, offer ${JSON.stringify(offer.header)}`, () => {
      const server = useServer({ deflate: { ...options, threshold: 0 } });
      if (expected === null) {
        test('declined', { timeout: CASE_TIMEOUT_MS }, async () => {
          const c = await RawClient.connect(server.url, { extensions: offer.header });
          try {
            assert.equal(c.extensions, '');
            await closeNormally(c);
          } finally {
            c.destroy();
          }
        });
        return;
      }
      deflateCase(server, `answered ${JSON.stringify(expected)}`, offer, async (s) => {
        const answered = parseList(s.raw.extensions)[0]!.params;
        assert.deepEqual(Object.fromEntries(answered), expected, s.raw.extensions);
        const data = runMessages('json text', 4 * KiB, 700 + i);
        await echoRun(s, server, 50, (n) => ({ opcode: n % 3 === 0 ? Op.Binary : Op.Text, data: data(n) }));
        await closeNormally(s.raw);
      });
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Frames: what RSV1 may be on, and what a compressed message may hold

/** RFC 7692 section 7.2.3's examples: "Hello", compressed in each of the ways the RFC shows. */
const HELLO = {
  compressed: Buffer.from([0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]),
  /** Only valid right after `compressed`, on a connection whose client keeps its window (7.2.3.2). */
  sharingWindow: Buffer.from([0xf2, 0x00, 0x11, 0x00, 0x00]),
  stored: Buffer.from([0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00]),
  bfinal: Buffer.from([0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00]),
  twoBlocks: Buffer.from([0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00]),
};

const INVALID_UTF8: Array<[string, Buffer]> = [
  ['a UTF-16 surrogate', Buffer.concat([Buffer.from('κόσμε'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('edited')])],
  ['a code point above U+10FFFF', Buffer.from([0x61, 0xf4, 0x90, 0x80, 0x80])],
  ['an overlong encoding', Buffer.from([0xc0, 0xaf])],
  ['a sequence cut at the end', Buffer.from([0x68, 0x69, 0xe2, 0x82])],
];

const compressOnce = (data: Buffer, windowBits = 15): Buffer =>
  zlib.deflateRawSync(data, { windowBits, level: 9, finishFlush: zlib.constants.Z_SYNC_FLUSH }).subarray(0, -4);

describe('frames and payloads on a permessage-deflate connection (server maxPayload 64 KiB)', () => {
  const limit = 64 * KiB;
  const server = useServer({ deflate: { threshold: 0 }, maxPayload: limit });
  const hello = { opcode: Op.Text, data: Buffer.from('Hello') };

  deflateCase(server, 'F.1 RFC 7692 section 7.2.3: "Hello" compressed, sharing the window, stored, in two blocks, with BFINAL', PLAIN, async (s) => {
    for (const payload of [HELLO.compressed, HELLO.sharingWindow, HELLO.stored, HELLO.twoBlocks, HELLO.bfinal, HELLO.compressed]) {
      await s.raw.send({ opcode: Op.Text, rsv: 4, payload });
      assertMessage(await s.next(), hello, `echo of ${payload.toString('hex')}`);
    }
    await closeNormally(s.raw);
  });

  deflateCase(server, 'F.2 messages that each end their deflate stream with BFINAL, then a sync-flushed one', PLAIN, async (s) => {
    const texts = ['first message', 'second message, second message', 'κόσμε'.repeat(50)];
    for (const text of texts) {
      await s.raw.send({ opcode: Op.Text, rsv: 4, payload: zlib.deflateRawSync(Buffer.from(text)) });
      assertMessage(await s.next(), { opcode: Op.Text, data: Buffer.from(text) });
    }
    await s.send(Op.Text, Buffer.from(texts[1]!));
    assertMessage(await s.next(), { opcode: Op.Text, data: Buffer.from(texts[1]!) });
    await closeNormally(s.raw);
  });

  deflateCase(server, 'F.3 empty compressed messages: a lone 0x00 (RFC 7692 section 7.2.3.6)', PLAIN, async (s) => {
    for (const [opcode, payload] of [
      [Op.Text, Buffer.from([0x00])],
      [Op.Binary, Buffer.from([0x00])],
      [Op.Binary, await s.compress(Buffer.alloc(0))],
      [Op.Text, Buffer.from([0x00])],
    ] as const) {
      await s.raw.send({ opcode, rsv: 4, payload });
      assertMessage(await s.next(), { opcode, data: Buffer.alloc(0) });
    }
    await closeNormally(s.raw);
  });

  // Section 7.2.1 always leaves at least the header bits of the final empty block, so a compressed
  // message has at least one byte. With none, the appended 00 00 ff ff is itself read as the start
  // of a stored block of 0xff00 bytes, which swallows the messages that follow.
  deflateCase(
    server,
    'F.3.2 an empty payload with RSV1 fails with 1007, or at least corrupts no later message',
    PLAIN,
    async (s) => {
      await s.raw.send({ opcode: Op.Binary, rsv: 4, payload: Buffer.alloc(0) });
      await s.raw.send({ opcode: Op.Binary, rsv: 4, payload: Buffer.from([0x00]) });
      await s.raw.send({ opcode: Op.Text, rsv: 4, payload: HELLO.compressed });
      const first = await s.raw.nextFrame();
      if (first.opcode === Op.Close) {
        assert.equal(s.raw.closeReceived?.code, 1007, 'close code');
        return;
      }
      assert.equal(first.opcode, Op.Binary, s.raw.summary());
      assertMessage({ opcode: first.opcode, data: first.rsv & 4 ? await s.inflate(first.payload) : first.payload }, { opcode: Op.Binary, data: Buffer.alloc(0) }, 'the empty message');
      assertMessage(await s.next(), { opcode: Op.Binary, data: Buffer.alloc(0) }, 'the lone 0x00 after it');
      assertMessage(await s.next(), hello, '"Hello" after it');
      await closeNormally(s.raw);
    },
  );

  [1, 7, 64, 1000].forEach((frameSize, i) => {
    deflateCase(server, `F.4.${i + 1} compressed messages fragmented into frames of ${frameSize} B, RSV1 on the first only`, PLAIN, async (s) => {
      const text = makePayload('json text', 3 * KiB, 40 + i);
      const bytes = makePayload('random binary', 2 * KiB, 50 + i);
      await s.send(Op.Text, text, { frameSize });
      await s.send(Op.Binary, bytes, { frameSize });
      assertMessage(await s.next(), { opcode: Op.Text, data: text });
      assertMessage(await s.next(), { opcode: Op.Binary, data: bytes });
      await closeNormally(s.raw);
    });
  });

  deflateCase(server, 'F.5 a ping between the fragments of a compressed message is answered first', PLAIN, async (s) => {
    const text = makePayload('json text', 4 * KiB, 60);
    const [first, ...rest] = frames(Op.Text, await s.compress(text), 100, 4);
    await s.raw.sendAll([first!, { opcode: Op.Ping, payload: 'between' }, ...rest]);
    await expectPong(s.raw, 'between');
    assertMessage(await s.next(), { opcode: Op.Text, data: text });
    await closeNormally(s.raw);
  });

  deflateCase(server, 'F.6 uncompressed messages, whole and fragmented, among compressed ones', PLAIN, async (s) => {
    const sent: Array<{ opcode: number; data: Buffer; plain: boolean; frameSize?: number }> = [
      { opcode: Op.Text, data: Buffer.from('plain text κόσμε'), plain: true },
      { opcode: Op.Text, data: makePayload('json text', 2 * KiB, 70), plain: false },
      { opcode: Op.Binary, data: makePayload('random binary', 300, 71), plain: true },
      { opcode: Op.Binary, data: makePayload('structured binary', 5 * KiB, 72), plain: false, frameSize: 512 },
      { opcode: Op.Text, data: makePayload('random text', 3 * KiB, 73), plain: true, frameSize: 100 },
      { opcode: Op.Text, data: makePayload('json text', 2 * KiB, 70), plain: false },
    ];
    for (const m of sent) await s.send(m.opcode, m.data, m);
    for (const m of sent) assertMessage(await s.next(), m);
    await closeNormally(s.raw);
  });

  deflateCase(server, 'F.7 a message of exactly maxPayload once inflated is echoed', PLAIN, async (s) => {
    const data = makePayload('json text', limit, 80);
    await s.send(Op.Text, data);
    assertMessage(await s.next(), { opcode: Op.Text, data });
    await closeNormally(s.raw);
  });

  deflateCase(server, 'F.8 a message of maxPayload + 1 once inflated fails with 1009', PLAIN, async (s) => {
    await s.send(Op.Binary, Buffer.alloc(limit + 1, 0x61));
    await expectFailure(s.raw, 1009);
  });

  for (const [name, frameSize] of [['in one frame', Infinity], ['in 1 KiB frames', KiB]] as const) {
    deflateCase(server, `F.9 compression bomb: 128 MiB of zeros (about 128 KiB compressed) ${name} fails with 1009`, PLAIN, async (s, t) => {
      const bomb = compressedZeros(128 * MiB);
      const started = Date.now();
      await s.raw.sendAll(frames(Op.Binary, bomb, frameSize, 4));
      await expectFailure(s.raw, 1009);
      t.diagnostic(`${bomb.length} compressed bytes; 1009 and TCP closed ${Date.now() - started} ms after sending`);
    });
  }

  for (const [name, opcode] of [['ping', Op.Ping], ['pong', Op.Pong], ['close', Op.Close]] as const) {
    deflateCase(server, `F.10 RSV1 on a ${name} frame fails with 1002`, PLAIN, async (s) => {
      const payload = opcode === Op.Close ? Buffer.from([0x03, 0xe8]) : HELLO.compressed;
      await s.raw.send({ opcode, rsv: 4, payload });
      await expectFailure(s.raw, 1002);
    });
  }

  deflateCase(server, 'F.11 RSV1 on the continuation of a compressed message fails with 1002', PLAIN, async (s) => {
    const [first, second] = chunks(await s.compress(Buffer.from('Hello, continuation')), 4);
    await s.raw.sendAll([
      { opcode: Op.Text, rsv: 4, payload: first, fin: false },
      { opcode: Op.Continuation, rsv: 4, payload: second },
    ]);
    await expectFailure(s.raw, 1002);
  });

  deflateCase(server, 'F.12 RSV1 on the continuation of an uncompressed message fails with 1002', PLAIN, async (s) => {
    await s.raw.sendAll([
      { opcode: Op.Binary, payload: 'plain', fin: false },
      { opcode: Op.Continuation, rsv: 4, payload: HELLO.compressed },
    ]);
    await expectFailure(s.raw, 1002);
  });

  for (const rsv of [2, 1, 6]) {
    deflateCase(server, `F.13 RSV ${rsv} (not permessage-deflate's) on a data frame fails with 1002`, PLAIN, async (s) => {
      await s.raw.send({ opcode: Op.Text, rsv, payload: HELLO.compressed });
      await expectFailure(s.raw, 1002);
    });
  }

  const garbage: Array<[string, Buffer]> = [
    ['a reserved block type', Buffer.from([0xff, 0xff, 0xff, 0xff])],
    ['a stored block whose length does not match its complement', Buffer.from([0x00, 0x05, 0x00, 0x00, 0x00, 0x48, 0x65])],
    // A fixed-Huffman block whose first symbol copies 3 bytes from distance 1, before any output.
    ['a back-reference before the start of the stream', Buffer.from([0x02, 0x02, 0x00])],
  ];
  garbage.forEach(([name, payload], i) => {
    deflateCase(server, `F.14.${i + 1} compressed data with ${name} fails with 1007`, PLAIN, async (s) => {
      await s.raw.send({ opcode: Op.Binary, rsv: 4, payload });
      await expectFailure(s.raw, 1007);
    });
  });

  deflateCase(server, 'F.15 corrupt data after a good message, with the window kept, fails with 1007', PLAIN, async (s) => {
    await s.send(Op.Text, Buffer.from('a good message first'));
    assertMessage(await s.next(), { opcode: Op.Text, data: Buffer.from('a good message first') });
    await s.raw.send({ opcode: Op.Text, rsv: 4, payload: Buffer.from([0xff, 0xff, 0xff]) });
    await expectFailure(s.raw, 1007);
  });

  INVALID_UTF8.forEach(([name, bytes], i) => {
    deflateCase(server, `F.16.${i + 1} compressed text with ${name} fails with 1007`, PLAIN, async (s) => {
      await s.send(Op.Text, bytes);
      await expectFailure(s.raw, 1007);
    });
    deflateCase(server, `F.17.${i + 1} the same bytes as compressed binary are echoed`, PLAIN, async (s) => {
      await s.send(Op.Binary, bytes);
      assertMessage(await s.next(), { opcode: Op.Binary, data: bytes });
      await closeNormally(s.raw);
    });
  });

  deflateCase(server, 'F.18 compressed text with invalid UTF-8 deep inside, in 100 B frames, fails with 1007', PLAIN, async (s) => {
    const bytes = Buffer.concat([makePayload('json text', 8 * KiB, 90), Buffer.from([0xed, 0xbf, 0xbf]), makePayload('json text', KiB, 91)]);
    await s.send(Op.Text, bytes, { frameSize: 100 });
    await expectFailure(s.raw, 1007);
  });
});

describe("the server's own view of the end of a connection (duplex in-process, closeTimeout 30 s)", () => {
  let wss: WebSocketServer;
  let url = '';
  /** Per connection: the messages the server got, and its close event. */
  const seen: Array<{ messages: string[]; closed: Promise<{ code: number; wasClean: boolean }> }> = [];
  before(async () => {
    wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: true, maxPayload: 64 * KiB, closeTimeout: 30_000 });
    wss.on('connection', (ws: WebSocket) => {
      const messages: string[] = [];
      ws.on('message', (ev: MessageEvent) => messages.push(ev.rawData.toString()));
      seen.push({ messages, closed: new Promise((resolve) => ws.on('close', (ev) => resolve({ code: ev.code, wasClean: ev.wasClean }))) });
    });
    await within(new Promise<void>((resolve) => wss.once('listening', () => resolve())), START_TIMEOUT_MS, 'duplex server start');
    url = urlOf(wss.address());
  });
  after(async () => {
    for (const ws of wss.clients) ws.terminate();
    await within(new Promise<void>((resolve) => wss.close(() => resolve())), START_TIMEOUT_MS, 'duplex server stop');
  });

  // A failure found once a message is inflated must release the hold on input taken for the
  // inflation, or the close reply and the FIN go unread until closeTimeout.
  const cases: Array<[string, number, (s: DeflateSession) => Promise<void>]> = [
    ['RSV1 on a ping, found by the frame parser', 1002, (s) => s.raw.send({ opcode: Op.Ping, rsv: 4, payload: 'x' })],
    ['corrupt compressed data', 1007, (s) => s.raw.send({ opcode: Op.Binary, rsv: 4, payload: Buffer.from([0xff, 0xff]) })],
    ['invalid UTF-8 in compressed text', 1007, (s) => s.send(Op.Text, INVALID_UTF8[0]![1])],
    ['a message over maxPayload once inflated', 1009, (s) => s.send(Op.Binary, Buffer.alloc(64 * KiB + 1))],
  ];
  cases.forEach(([name, code, send], i) => {
    test(`F.19.${i + 1} ${name}: ${code}, then the server reads the close reply and closes`, { timeout: CASE_TIMEOUT_MS }, async () => {
      const raw = await RawClient.connect(url, { extensions: PLAIN.header });
      const session = new DeflateSession(raw, agree('permessage-deflate', raw.extensions));
      try {
        const { closed } = seen.at(-1)!;
        await send(session);
        // The raw client answers the close frame, as a well-behaved peer does.
        await expectFailure(raw, code);
        assert.ok(raw.closeSent, 'the close reply went out');
        const event = await within(closed, 5000, "the server's close event after the close reply");
        assert.equal(event.code, code);
      } finally {
        session.close();
        raw.destroy();
      }
    });
  });

  test(
    'F.20 compressed messages, the close frame and FIN in one write: the server gets the messages, then a clean 1000',
    { timeout: CASE_TIMEOUT_MS },
    async () => {
      const raw = await RawClient.connect(url, { extensions: PLAIN.header });
      const session = new DeflateSession(raw, agree('permessage-deflate', raw.extensions));
      try {
        const { messages, closed } = seen.at(-1)!;
        const frames = [
          { opcode: Op.Text, rsv: 4, payload: await session.compress(Buffer.from('first')) },
          { opcode: Op.Text, rsv: 4, payload: await session.compress(Buffer.from('second')) },
          { opcode: Op.Close, payload: Buffer.from([0x03, 0xe8]) },
        ];
        await raw.writeAndEnd(Buffer.concat(frames.map((frame) => encodeFrame(frame))));
        const event = await within(closed, 5000, "the server's close event");
        assert.deepEqual({ messages, code: event.code }, { messages: ['first', 'second'], code: 1000 });
      } finally {
        session.close();
        raw.destroy();
      }
    },
  );
});

/** The race F.20 and W.1 find, seen from either role. */

/** `size` zero bytes, deflated once per size: a bomb with a ratio of about 1000. */
const bombs = new Map<number, Buffer>();
function compressedZeros(size: number): Buffer {
  let bomb = bombs.get(size);
  if (bomb === undefined) {
    bomb = compressOnce(Buffer.alloc(size));
    bombs.set(size, bomb);
  }
  return bomb;
}

// ---------------------------------------------------------------------------------------------
// duplex's client, against a server written out by hand

describe('the duplex WebSocket client with permessage-deflate', () => {
  let server: net.Server;
  let url = '';
  /** What the hand-written server sends right after its 101, before it half-closes. */
  let script: Buffer = Buffer.alloc(0);
  const sockets = new Set<net.Socket>();
  before(async () => {
    server = net.createServer((socket) => {
      sockets.add(socket.on('error', () => {}).on('close', () => sockets.delete(socket)));
      let head = '';
      socket.on('data', (chunk: Buffer) => {
        if (head.includes('\r\n\r\n')) return;
        head += chunk.toString('latin1');
        const key = /^sec-websocket-key:\s*(\S+)/im.exec(head)?.[1];
        if (!head.includes('\r\n\r\n') || key === undefined) return;
        const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
        const response =
          'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          `Sec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n`;
        socket.end(Buffer.concat([Buffer.from(response, 'latin1'), script]));
      });
    });
    await within(new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve)), START_TIMEOUT_MS, 'raw server listening');
    url = urlOf(server.address());
  });
  after(async () => {
    for (const socket of sockets) socket.destroy();
    await within(new Promise((resolve) => server.close(resolve)), START_TIMEOUT_MS, 'raw server close');
  });

  test(
    'W.1 compressed messages, the close frame and FIN in one write: the client gets the messages, then a clean 1000',
    { timeout: CASE_TIMEOUT_MS },
    async () => {
      const deflater = RawDeflate.compressor(15, true);
      const frames = [
        { opcode: Op.Text, rsv: 4, payload: await deflater.run(Buffer.from('first')), mask: false },
        { opcode: Op.Text, rsv: 4, payload: await deflater.run(Buffer.from('second')), mask: false },
        { opcode: Op.Close, payload: Buffer.from([0x03, 0xe8]), mask: false },
      ];
      deflater.close();
      script = Buffer.concat(frames.map((frame) => encodeFrame(frame)));
      const ws = new DuplexWebSocket(url, [], { perMessageDeflate: true });
      const messages: string[] = [];
      ws.on('message', (ev: MessageEvent) => messages.push(ev.rawData.toString()));
      const event = await within(new Promise<CloseEvent>((resolve) => ws.on('close', resolve)), 5000, 'the client close event');
      assert.equal(ws.extensions, 'permessage-deflate');
      assert.deepEqual({ messages, code: event.code }, { messages: ['first', 'second'], code: 1000 });
    },
  );
});

// ---------------------------------------------------------------------------------------------
// The CLI

describe('duplex echo --deflate', () => {
  const server = useCli();
  const offers: Array<[string, CaseOffer]> = [
    ['C.1', PLAIN],
    ['C.2', { header: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover' }],
    ['C.3', { header: 'permessage-deflate; server_max_window_bits=9; client_max_window_bits=8' }],
    ['C.4', { header: 'permessage-deflate; client_max_window_bits' }],
  ];
  for (const [id, offer] of offers) {
    [64, KiB, 64 * KiB].forEach((size, i) => {
      const count = size >= 64 * KiB ? 50 : 200;
      deflateCase(server, `${id}.${i + 1} ${JSON.stringify(offer.header)}: ${count} messages of ${sizeLabel(size)}, compressed from 1 KiB`, offer, async (s) => {
        const textData = runMessages('word text', size, 20_000 + i);
        const binaryData = runMessages('random binary', size, 21_000 + i);
        await echoRun(s, server, count, (n) => (n % 2 === 0 ? { opcode: Op.Text, data: textData(n >> 1) } : { opcode: Op.Binary, data: binaryData(n >> 1) }));
        await closeNormally(s.raw);
      });
    });
  }

  deflateCase(server, 'C.5 uncompressed messages and fragmented compressed ones', PLAIN, async (s) => {
    const text = makePayload('random text', 5 * KiB, 30);
    await s.send(Op.Text, text, { plain: true });
    await s.send(Op.Text, text, { frameSize: 333 });
    assertMessage(await s.next(), { opcode: Op.Text, data: text });
    assertMessage(await s.next(), { opcode: Op.Text, data: text });
    await closeNormally(s.raw);
  });

  deflateCase(server, 'C.6 compression bomb: 128 MiB of zeros (about 128 KiB compressed) fails with 1009 (maxPayload 100 MiB)', PLAIN, async (s, t) => {
    const bomb = compressedZeros(128 * MiB);
    const started = Date.now();
    await s.raw.send({ opcode: Op.Binary, rsv: 4, payload: bomb });
    await expectFailure(s.raw, 1009);
    t.diagnostic(`${bomb.length} compressed bytes; 1009 and TCP closed ${Date.now() - started} ms after sending`);
  });

  deflateCase(server, 'C.7 RSV1 on a continuation fails with 1002', PLAIN, async (s) => {
    await s.raw.sendAll([
      { opcode: Op.Text, rsv: 4, payload: HELLO.compressed.subarray(0, 3), fin: false },
      { opcode: Op.Continuation, rsv: 4, payload: HELLO.compressed.subarray(3) },
    ]);
    await expectFailure(s.raw, 1002);
  });

  deflateCase(server, 'C.8 corrupt compressed data fails with 1007', PLAIN, async (s) => {
    await s.raw.send({ opcode: Op.Binary, rsv: 4, payload: Buffer.from([0xff, 0xff, 0xff]) });
    await expectFailure(s.raw, 1007);
  });

  deflateCase(server, 'C.9 compressed text with invalid UTF-8 fails with 1007', PLAIN, async (s) => {
    await s.send(Op.Text, INVALID_UTF8[0]![1]);
    await expectFailure(s.raw, 1007);
  });
});
