// permessage-deflate (RFC 7692) with real peers, both ways: the `ws` package, Python's websockets
// (/usr/bin/python3, whose default is to offer and accept it) and Chromium (which always offers it).
// Every connection runs through a wire tap, a TCP proxy that reads the frame headers going each way,
// so a test sees what was compressed (RSV1) and not merely that the messages arrived; the tap also
// keeps the handshake, to compare the offer and the answer with what each side reports. Some messages
// repeat content two messages apart, at a distance beyond the smaller windows: a peer compressing with
// a larger window than agreed, or keeping one it agreed to drop, then sends data the other side cannot
// inflate, and the connection fails.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { WebSocket as WsClient, WebSocketServer as WsServer, type PerMessageDeflateOptions as WsDeflateOptions } from 'ws';
import { WebSocket, WebSocketServer, type MessageEvent } from '../src/index.js';
import type { PerMessageDeflateOptions } from '../src/protocol/permessage-deflate.js';
import { launchBrowserPeer, servePage, type BrowserPeer, type SendSpec } from './support/browser.js';
import {
  BINARY_SAMPLE,
  BURST,
  DuplexSide,
  Inbox,
  JSON_SAMPLE,
  MIB,
  TEXT_SAMPLES,
  WAIT_MS,
  binaryPattern,
  summarize,
  summarizeBytes,
  textPattern,
  within,
  type MessageSummary,
} from './support/interop.js';
import { SeededRandom } from './support/seeded-random.js';

const TEST_OPTIONS = { timeout: 30_000 };
const PYTHON = '/usr/bin/python3';
const SCRIPTS = new URL('../../test/support/python/', import.meta.url);
const PROCESS_MS = 20_000;

// ---------------------------------------------------------------------------------------------
// What every conversation sends

const JSON_TEXT = JSON.stringify(JSON_SAMPLE);
/** One at a time, each echo awaited: samples, empty messages, and 1 MiB of text and of binary. */
const SINGLES: Array<string | Buffer> = [...TEXT_SAMPLES, JSON_TEXT, BINARY_SAMPLE, '', Buffer.alloc(0), textPattern(MIB), binaryPattern(MIB)];

/** 3 KiB of words, multi-byte ones among them: compressible, yet without long repeats of its own. */
function wordsOf(seed: number): string {
  const words = ['duplex', 'κόσμε', 'frame', '😀', 'message', 'über', 'deflate', '日本語', 'window', 'ok'];
  const random = new SeededRandom(seed);
  const out: string[] = [];
  while (out.join(' ').length < 3000) out.push(`${words[random.below(words.length)]}${random.below(100)}`);
  return out.join(' ');
}

const BASES = [wordsOf(1), wordsOf(2)];
/** Back to back after the singles: the small burst, then 40 messages that each repeat the one two before. */
const STREAM: string[] = [...BURST, ...Array.from({ length: 40 }, (_, i) => `${String(i).padStart(2, '0')} ${BASES[i % 2]}`)];
const ALL = [...SINGLES, ...STREAM];
const LARGE = ALL.filter((data) => Buffer.byteLength(data) >= 1024).length;

const describeData = (data: string | Buffer): string => `${typeof data === 'string' ? 'text' : 'binary'} of ${Buffer.byteLength(data)} bytes`;

// ---------------------------------------------------------------------------------------------
// The wire tap

interface TapFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  length: number;
}

interface Tapped {
  /** The handshake heads, as sent. */
  request: string;
  response: string;
  toServer: TapFrame[];
  toClient: TapFrame[];
}

function headerOf(head: string, name: string): string | undefined {
  const line = head.split('\r\n').find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  return line?.slice(name.length + 1).trim();
}

/** Reads one direction: the HTTP head, then frame headers, skipping payloads. */
class FrameReader {
  private head: Buffer | null = Buffer.alloc(0);
  private buffered = Buffer.alloc(0);
  private skip = 0;

  constructor(
    private readonly onHead: (head: string) => void,
    private readonly frames: TapFrame[],
  ) {}

  push(chunk: Buffer): void {
    let data = chunk;
    if (this.head) {
      const all = Buffer.concat([this.head, data]);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) {
        this.head = all;
        return;
      }
      this.head = null;
      this.onHead(all.subarray(0, end).toString('latin1'));
      data = all.subarray(end + 4);
    }
    while (data.length > 0) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, data.length);
        this.skip -= n;
        data = data.subarray(n);
        continue;
      }
      const bytes = this.buffered.length > 0 ? Buffer.concat([this.buffered, data]) : data;
      const header = readFrameHeader(bytes);
      if (header === null) {
        this.buffered = Buffer.from(bytes);
        return;
      }
      this.buffered = Buffer.alloc(0);
      this.frames.push(header.frame);
      this.skip = header.frame.length;
      data = bytes.subarray(header.size);
    }
  }
}

function readFrameHeader(bytes: Buffer): { frame: TapFrame; size: number } | null {
  if (bytes.length < 2) return null;
  let length = bytes[1]! & 0x7f;
  let size = 2;
  if (length === 126) {
    if (bytes.length < 4) return null;
    length = bytes.readUInt16BE(2);
    size = 4;
  } else if (length === 127) {
    if (bytes.length < 10) return null;
    length = Number(bytes.readBigUInt64BE(2));
    size = 10;
  }
  if (bytes[1]! & 0x80) size += 4;
  if (bytes.length < size) return null;
  const frame = { fin: (bytes[0]! & 0x80) !== 0, rsv: (bytes[0]! >> 4) & 7, opcode: bytes[0]! & 0xf, length };
  return { frame, size };
}

/** A TCP proxy on 127.0.0.1 in front of `targetPort`, recording each connection it carries. */
class WireTap {
  readonly connections: Tapped[] = [];
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    private readonly targetPort: number,
  ) {
    server.on('connection', (client) => this.carry(client));
  }

  static async start(targetPort: number): Promise<WireTap> {
    const server = net.createServer();
    const tap = new WireTap(server, targetPort);
    await within(new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve)), WAIT_MS, 'wire tap listening');
    return tap;
  }

  url(path = '/'): string {
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}${path}`;
  }

  /** The connection opened last. */
  get last(): Tapped {
    const tapped = this.connections.at(-1);
    if (!tapped) throw new Error('no connection went through the tap');
    return tapped;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await within(new Promise((resolve) => this.server.close(resolve)), WAIT_MS, 'wire tap close');
  }

  private carry(client: net.Socket): void {
    const tapped: Tapped = { request: '', response: '', toServer: [], toClient: [] };
    this.connections.push(tapped);
    const upstream = net.connect(this.targetPort, '127.0.0.1');
    const up = new FrameReader((head) => (tapped.request = head), tapped.toServer);
    const down = new FrameReader((head) => (tapped.response = head), tapped.toClient);
    client.on('data', (chunk: Buffer) => up.push(chunk));
    upstream.on('data', (chunk: Buffer) => down.push(chunk));
    client.pipe(upstream);
    upstream.pipe(client);
    for (const [socket, other] of [[client, upstream], [upstream, client]] as const) {
      this.sockets.add(socket);
      socket.on('error', () => other.destroy());
      socket.on('close', () => {
        this.sockets.delete(socket);
        other.destroy();
      });
    }
  }
}

/**
 * Checks RFC 7692 section 6 on one direction (RSV1 only on the first frame of a data message, no
 * other RSV bit) and returns how many messages went compressed, and how many in all.
 */
function countCompressed(frames: TapFrame[], direction: string): { compressed: number; messages: number } {
  let compressed = 0;
  let messages = 0;
  for (const frame of frames) {
    const what = `${direction}: frame with opcode ${frame.opcode}`;
    assert.equal(frame.rsv & 3, 0, `${what} has RSV2 or RSV3`);
    if (frame.opcode === 0 || frame.opcode >= 8) {
      assert.equal(frame.rsv, 0, `${what} has RSV1, which only the first frame of a data message may have`);
    } else {
      messages += 1;
      if (frame.rsv & 4) compressed += 1;
    }
  }
  return { compressed, messages };
}

/** Which of the ALL messages a side compresses: every one, or those of 1 KiB and more (duplex's default threshold). */
type Expectation = 'all' | 'large';

function assertCompression(tapped: Tapped, toServer: Expectation, toClient: Expectation): void {
  for (const [direction, frames, expected] of [
    ['client to server', tapped.toServer, toServer],
    ['server to client', tapped.toClient, toClient],
  ] as const) {
    const { compressed, messages } = countCompressed(frames, direction);
    assert.equal(messages, ALL.length, `${direction}: data messages on the wire`);
    if (expected === 'all') assert.equal(compressed, ALL.length, `${direction}: every message compressed`);
    else assert.equal(compressed, LARGE, `${direction}: the messages of 1 KiB or more compressed`);
  }
}

/** An extension header with each offer's parameters sorted: peers write them in different orders. */
function normalized(header: string | undefined): string | undefined {
  return header
    ?.split(',')
    .map((element) => {
      const [name, ...params] = element.split(';').map((part) => part.replace(/\s+/g, ''));
      return [name, ...params.sort()].join('; ');
    })
    .join(', ');
}

/** Checks the offer and the answer the tap saw (in any parameter order); returns the answer as sent. */
function assertNegotiated(tapped: Tapped, offer: string, answer: string): string {
  const seen = { offer: headerOf(tapped.request, 'sec-websocket-extensions'), answer: headerOf(tapped.response, 'sec-websocket-extensions') };
  assert.deepEqual(
    { offer: normalized(seen.offer), answer: normalized(seen.answer) },
    { offer: normalized(offer), answer: normalized(answer) },
    `negotiated on the wire: ${JSON.stringify(seen)}`,
  );
  return seen.answer!;
}

// ---------------------------------------------------------------------------------------------
// Peers

/** A `ws` socket whose received messages are summarized into an inbox. */
class WsSide {
  readonly messages = new Inbox<MessageSummary>();
  readonly closed: Promise<{ code: number; wasClean: boolean }>;

  constructor(readonly ws: WsClient) {
    ws.on('message', (data: Buffer, isBinary: boolean) => this.messages.push(summarizeBytes(data, isBinary)));
    this.closed = new Promise((resolve) => ws.addEventListener('close', (ev) => resolve({ code: ev.code, wasClean: ev.wasClean })));
  }

  next(what: string): Promise<MessageSummary> {
    return this.messages.next(WAIT_MS, `ws receiving ${what}`);
  }
}

interface Receiver {
  next(what: string): Promise<MessageSummary>;
}

const duplexReceiver = (side: DuplexSide): Receiver => ({ next: (what) => side.nextSummary(what) });

function opened(ws: WebSocket): Promise<void> {
  return within(
    new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', (ev) => reject(ev.error));
    }),
    WAIT_MS,
    'duplex open',
  );
}

/**
 * SINGLES one at a time, then STREAM back to back: checks what came back, in order, and what the
 * server got when it tells (the Python server does not).
 */
async function converse(send: (data: string | Buffer) => void, server: Receiver | null, client: Receiver): Promise<void> {
  for (const data of SINGLES) {
    send(data);
    if (server) assert.deepEqual(await server.next(describeData(data)), summarize(data), `server got ${describeData(data)}`);
    assert.deepEqual(await client.next(`echo of ${describeData(data)}`), summarize(data), `echo of ${describeData(data)}`);
  }
  for (const data of STREAM) send(data);
  if (server) for (const [i, data] of STREAM.entries()) assert.deepEqual(await server.next(`stream #${i}`), summarize(data), `server got stream #${i}`);
  for (const [i, data] of STREAM.entries()) assert.deepEqual(await client.next(`echo of stream #${i}`), summarize(data), `echo of stream #${i}`);
}

/** duplex's WebSocketServer echoing, with every connection's server side captured. */
async function startDuplexServer(options: PerMessageDeflateOptions | true) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: options });
  const accepted = new Inbox<DuplexSide>();
  wss.on('connection', (ws: WebSocket) => {
    accepted.push(new DuplexSide(ws));
    ws.on('message', (ev: MessageEvent) => ws.send(ev.rawData, { binary: ev.isBinary }));
  });
  await within(new Promise<void>((resolve) => wss.once('listening', () => resolve())), WAIT_MS, 'duplex listening');
  return {
    port: (wss.address() as AddressInfo).port,
    accepted,
    close: () => within(new Promise<void>((resolve) => wss.close(() => resolve())), WAIT_MS, 'duplex server close'),
  };
}

const children = new Set<ChildProcess>();
after(() => {
  for (const child of children) if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
});

/** Starts a Python peer script; each stdout line goes to `onLine`. */
function spawnPython(script: string, args: string[], env: Record<string, string>, onLine: (line: string) => void) {
  const child = spawn(PYTHON, [fileURLToPath(new URL(script, SCRIPTS)), ...args], {
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', STEP_TIMEOUT: String(WAIT_MS / 1000), ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.add(child);
  child.stdin!.on('error', () => {});
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  createInterface({ input: child.stdout! }).on('line', onLine);
  const exited = new Promise<number | null>((resolve) => {
    child.on('close', (code) => {
      children.delete(child);
      resolve(code);
    });
  });
  return { child, exited, stderr: () => stderr };
}

type Line = Record<string, any>;

// ---------------------------------------------------------------------------------------------
// ws

describe('ws client (perMessageDeflate) -> duplex WebSocketServer', () => {
  const cases: Array<[string, WsDeflateOptions, PerMessageDeflateOptions | true, string, string, Expectation]> = [
    [
      'defaults on both sides but threshold 0',
      { threshold: 0 },
      { threshold: 0 },
      'permessage-deflate; client_max_window_bits',
      'permessage-deflate',
      'all',
    ],
    [
      'no context takeover either way',
      { threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true },
      { threshold: 0 },
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits',
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover',
      'all',
    ],
    [
      'windows of 9 bits asked by the client',
      { threshold: 0, serverMaxWindowBits: 9, clientMaxWindowBits: 9 },
      { threshold: 0 },
      'permessage-deflate; server_max_window_bits=9; client_max_window_bits=9',
      'permessage-deflate; server_max_window_bits=9; client_max_window_bits=9',
      'all',
    ],
    [
      'a server without context takeover and with 10- and 11-bit windows',
      { threshold: 0 },
      { threshold: 0, serverNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 11 },
      'permessage-deflate; client_max_window_bits',
      'permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=11',
      'all',
    ],
    [
      'perMessageDeflate: true on both sides (threshold 1024)',
      {},
      true,
      'permessage-deflate; client_max_window_bits',
      'permessage-deflate',
      'large',
    ],
  ];
  for (const [name, wsOptions, ourOptions, offer, answer, expectation] of cases) {
    test(name, TEST_OPTIONS, async () => {
      const server = await startDuplexServer(ourOptions);
      const tap = await WireTap.start(server.port);
      try {
        const client = new WsSide(new WsClient(tap.url(), { perMessageDeflate: wsOptions }));
        await within(new Promise((resolve, reject) => client.ws.once('open', resolve).once('error', reject)), WAIT_MS, 'ws open');
        const side = await server.accepted.next(WAIT_MS, 'duplex connection');
        assert.equal(side.ws.extensions, assertNegotiated(tap.last, offer, answer), 'extensions on the duplex side');
        assert.equal(client.ws.extensions, 'permessage-deflate', 'extensions on the ws side');
        await converse((data) => client.ws.send(data), duplexReceiver(side), client);
        client.ws.close(1000);
        assert.deepEqual(await within(client.closed, WAIT_MS, 'ws close'), { code: 1000, wasClean: true });
        assert.equal((await side.closed()).wasClean, true);
        // ws compresses every message while it keeps its window, whatever its threshold.
        assertCompression(tap.last, 'all', expectation);
      } finally {
        await tap.close();
        await server.close();
      }
    });
  }
});

describe('duplex WebSocket (perMessageDeflate) -> ws server', () => {
  const cases: Array<[string, PerMessageDeflateOptions | true, WsDeflateOptions, string, string, Expectation]> = [
    ['defaults on both sides but threshold 0', { threshold: 0 }, { threshold: 0 }, 'permessage-deflate; client_max_window_bits', 'permessage-deflate', 'all'],
    [
      'no context takeover either way',
      { threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true },
      { threshold: 0 },
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits',
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover',
      'all',
    ],
    [
      'windows of 9 bits asked by the client',
      { threshold: 0, serverMaxWindowBits: 9, clientMaxWindowBits: 9 },
      { threshold: 0 },
      'permessage-deflate; server_max_window_bits=9; client_max_window_bits=9',
      'permessage-deflate; server_max_window_bits=9; client_max_window_bits=9',
      'all',
    ],
    [
      'a server asking for a 10-bit client window and without its own context takeover',
      { threshold: 0, clientMaxWindowBits: true },
      { threshold: 0, clientMaxWindowBits: 10, serverMaxWindowBits: 11, serverNoContextTakeover: true },
      'permessage-deflate; client_max_window_bits',
      'permessage-deflate; server_no_context_takeover; server_max_window_bits=11; client_max_window_bits=10',
      'all',
    ],
    ['perMessageDeflate: true on both sides (threshold 1024)', true, {}, 'permessage-deflate; client_max_window_bits', 'permessage-deflate', 'large'],
  ];
  for (const [name, ourOptions, wsOptions, offer, answer, expectation] of cases) {
    test(name, TEST_OPTIONS, async () => {
      const wss = new WsServer({ port: 0, host: '127.0.0.1', perMessageDeflate: wsOptions });
      await within(new Promise((resolve) => wss.once('listening', resolve)), WAIT_MS, 'ws server listening');
      const accepted = new Inbox<WsSide>();
      wss.on('connection', (ws) => {
        accepted.push(new WsSide(ws));
        ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }));
      });
      const tap = await WireTap.start((wss.address() as AddressInfo).port);
      try {
        const client = new DuplexSide(new WebSocket(tap.url(), [], { perMessageDeflate: ourOptions }));
        await opened(client.ws);
        const server = await accepted.next(WAIT_MS, 'ws connection');
        assert.equal(client.ws.extensions, assertNegotiated(tap.last, offer, answer), 'extensions on the duplex side');
        assert.equal(server.ws.extensions, 'permessage-deflate', 'extensions on the ws side');
        await converse((data) => client.ws.send(data), server, duplexReceiver(client));
        client.ws.close(1000);
        assert.deepEqual(await client.closed(), { code: 1000, reason: '', wasClean: true });
        // ws compresses every message while it keeps its window, whatever its threshold.
        assertCompression(tap.last, expectation, 'all');
      } finally {
        await tap.close();
        for (const ws of wss.clients) ws.terminate();
        await within(new Promise((resolve) => wss.close(resolve)), WAIT_MS, 'ws server close');
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Python websockets

/** The client.py steps for ALL: the singles with their echoes, then the stream, then a close. */
function pythonSteps(): Line[] {
  const send = (data: string | Buffer): Line => {
    if (Buffer.byteLength(data) >= MIB) return { op: 'send', pattern: typeof data === 'string' ? 'text' : 'binary', size: MIB };
    return typeof data === 'string' ? { op: 'send', text: data } : { op: 'send', base64: data.toString('base64') };
  };
  return [
    ...SINGLES.flatMap((data) => [send(data), { op: 'recv' }]),
    ...STREAM.map(send),
    ...STREAM.map(() => ({ op: 'recv' })),
    { op: 'close', code: 1000, reason: '' },
  ];
}

describe('python websockets client -> duplex WebSocketServer', () => {
  const cases: Array<[string, Record<string, unknown> | null, PerMessageDeflateOptions | true, string, string, Expectation]> = [
    ["python's default offer, server threshold 0", null, { threshold: 0 }, 'permessage-deflate; client_max_window_bits', 'permessage-deflate', 'all'],
    [
      'python offering no context takeover and 10-bit windows',
      { server_no_context_takeover: true, client_no_context_takeover: true, server_max_window_bits: 10, client_max_window_bits: 10 },
      { threshold: 0 },
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=10',
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=10',
      'all',
    ],
    [
      'a server asking for 9-bit windows',
      null,
      { threshold: 0, serverMaxWindowBits: 9, clientMaxWindowBits: 9 },
      'permessage-deflate; client_max_window_bits',
      'permessage-deflate; server_max_window_bits=9; client_max_window_bits=9',
      'all',
    ],
    ["python's default offer, perMessageDeflate: true (threshold 1024)", null, true, 'permessage-deflate; client_max_window_bits', 'permessage-deflate', 'large'],
  ];
  for (const [name, pythonOffer, ourOptions, offer, answer, expectation] of cases) {
    test(name, TEST_OPTIONS, async () => {
      const server = await startDuplexServer(ourOptions);
      const tap = await WireTap.start(server.port);
      try {
        const lines: Line[] = [];
        const env: Record<string, string> = pythonOffer ? { DEFLATE: JSON.stringify(pythonOffer) } : {};
        const python = spawnPython('client.py', [tap.url(), '-'], env, (line) => lines.push(JSON.parse(line)));
        python.child.stdin!.end(JSON.stringify(pythonSteps()));
        const side = await server.accepted.next(WAIT_MS, 'duplex connection');
        for (const data of ALL) assert.deepEqual(await side.nextSummary(describeData(data)), summarize(data), `duplex got ${describeData(data)}`);
        const code = await within(python.exited, PROCESS_MS, 'python client exit');
        assert.equal(code, 0, `python client failed: ${JSON.stringify(lines).slice(0, 2000)}\n${python.stderr()}`);
        const sent = assertNegotiated(tap.last, offer, answer);
        assert.equal(side.ws.extensions, sent, 'extensions on the duplex side');
        assert.deepEqual(lines[0], { event: 'open', subprotocol: null, extensions: sent }, 'what python reports');
        assert.deepEqual(lines.slice(1, -2), ALL.map((data) => ({ event: 'message', ...summarize(data) })), 'what python got back');
        assert.deepEqual(lines.slice(-2), [{ event: 'closed', sent: { code: 1000, reason: '' }, received: { code: 1000, reason: '' } }, { event: 'done' }]);
        // websockets compresses every message.
        assertCompression(tap.last, 'all', expectation);
      } finally {
        await tap.close();
        await server.close();
      }
    });
  }
});

describe('duplex WebSocket (perMessageDeflate) -> python websockets server', () => {
  const cases: Array<[string, PerMessageDeflateOptions | true, Record<string, unknown> | null, string, string, Expectation]> = [
    [
      "python's default configuration (12-bit windows), client threshold 0",
      { threshold: 0 },
      null,
      'permessage-deflate; client_max_window_bits',
      'permessage-deflate; server_max_window_bits=12; client_max_window_bits=12',
      'all',
    ],
    [
      'a client asking for no context takeover and 10-bit windows',
      { threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 10 },
      null,
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=10',
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=10',
      'all',
    ],
    [
      'a python server requiring a 9-bit client window',
      { threshold: 0, clientMaxWindowBits: true },
      { client_max_window_bits: 9, server_max_window_bits: 9 },
      'permessage-deflate; client_max_window_bits',
      'permessage-deflate; server_max_window_bits=9; client_max_window_bits=9',
      'all',
    ],
    [
      'perMessageDeflate: true (threshold 1024)',
      true,
      null,
      'permessage-deflate; client_max_window_bits',
      'permessage-deflate; server_max_window_bits=12; client_max_window_bits=12',
      'large',
    ],
  ];
  for (const [i, [name, ourOptions, pythonConfig, offer, answer, expectation]] of cases.entries()) {
    test(name, TEST_OPTIONS, async () => {
      const lines: Line[] = [];
      const arrived = new Inbox<void>();
      let ready!: (port: number) => void;
      const env: Record<string, string> = pythonConfig ? { DEFLATE: JSON.stringify(pythonConfig) } : {};
      const python = spawnPython('echo_server.py', [], env, (line) => {
        const banner = /^READY (\d+)$/.exec(line);
        if (banner) ready(Number(banner[1]));
        else {
          lines.push(JSON.parse(line));
          arrived.push();
        }
      });
      const port = await within(new Promise<number>((resolve) => (ready = resolve)), PROCESS_MS, `python server READY: ${python.stderr()}`);
      const tap = await WireTap.start(port);
      const path = `/echo/${i}`;
      try {
        const client = new DuplexSide(new WebSocket(tap.url(path), [], { perMessageDeflate: ourOptions }));
        await opened(client.ws);
        const sent = assertNegotiated(tap.last, offer, answer);
        assert.equal(client.ws.extensions, sent, 'extensions on the duplex side');
        await converse((data) => client.ws.send(data), null, duplexReceiver(client)).catch((err: unknown) => {
          throw new Error(`${(err as Error).message}; python said ${JSON.stringify(lines)}`);
        });
        client.ws.close(1000);
        assert.deepEqual(await client.closed(), { code: 1000, reason: '', wasClean: true });
        while (!lines.some((l) => l.event === 'closed')) await arrived.next(WAIT_MS, `python "closed" line; so far ${JSON.stringify(lines)}`);
        assert.deepEqual(lines, [
          { event: 'open', path, subprotocol: null, offered_extensions: headerOf(tap.last.request, 'sec-websocket-extensions'), extensions: sent },
          { event: 'closed', path, sent: { code: 1000, reason: '' }, received: { code: 1000, reason: '' } },
        ]);
        assertCompression(tap.last, expectation, 'all');
      } finally {
        await tap.close();
        python.child.stdin!.end();
        await within(python.exited, WAIT_MS, 'python server exit').catch(() => python.child.kill('SIGKILL'));
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Chromium: the page comes from a plain http server, its WebSocket goes through the tap to duplex.

describe('Chromium native WebSocket -> duplex WebSocketServer with permessage-deflate', () => {
  let browser: BrowserPeer;
  let pageOrigin: string;
  let pageServer: http.Server;

  before(async () => {
    pageServer = http.createServer((req, res) => {
      servePage(req, res).catch((error: unknown) => res.destroy(error as Error));
    });
    await within(new Promise<void>((resolve) => pageServer.listen(0, '127.0.0.1', resolve)), WAIT_MS, 'page server listening');
    pageOrigin = `http://127.0.0.1:${(pageServer.address() as AddressInfo).port}`;
    browser = await launchBrowserPeer(`${pageOrigin}/`);
  });

  after(async () => {
    try {
      await browser?.close();
    } finally {
      pageServer.closeAllConnections();
      await within(new Promise((resolve) => pageServer.close(resolve)), WAIT_MS, 'page server close');
    }
  });

  const specOf = (data: string | Buffer): SendSpec => {
    if (Buffer.byteLength(data) >= MIB) return { pattern: typeof data === 'string' ? 'text' : 'binary', size: MIB };
    return typeof data === 'string' ? { text: data } : { base64: data.toString('base64') };
  };

  const cases: Array<[string, PerMessageDeflateOptions | true, string, Expectation]> = [
    ['perMessageDeflate: true (threshold 1024)', true, 'permessage-deflate', 'large'],
    [
      'threshold 0, no server context takeover, 10-bit windows',
      { threshold: 0, serverNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 10 },
      'permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=10',
      'all',
    ],
  ];
  for (const [name, ourOptions, answer, expectation] of cases) {
    test(name, TEST_OPTIONS, async () => {
      const server = await startDuplexServer(ourOptions);
      const tap = await WireTap.start(server.port);
      try {
        const opened = await browser.open(tap.url('/ws'), undefined, 'arraybuffer');
        if ('failed' in opened) assert.fail(`the browser could not connect: ${JSON.stringify(opened)}`);
        const page = browser.socket(opened.id);
        const side = await server.accepted.next(WAIT_MS, 'duplex connection');
        const sent = assertNegotiated(tap.last, 'permessage-deflate; client_max_window_bits', answer);
        assert.equal(opened.extensions, sent, 'extensions in the browser');
        assert.equal(side.ws.extensions, sent, 'extensions on the duplex side');
        const pageReceiver: Receiver = {
          next: async () => {
            const { as: _as, ...summary } = await page.next();
            return summary;
          },
        };
        // The page cannot send synchronously from here: the stream goes through sendAll, in one task.
        for (const data of SINGLES) {
          await page.send(specOf(data));
          assert.deepEqual(await side.nextSummary(describeData(data)), summarize(data), `duplex got ${describeData(data)}`);
          assert.deepEqual(await pageReceiver.next(''), summarize(data), `the browser got back ${describeData(data)}`);
        }
        await page.sendAll(STREAM.map(specOf));
        for (const [j, data] of STREAM.entries()) assert.deepEqual(await side.nextSummary(`stream #${j}`), summarize(data));
        for (const [j, data] of STREAM.entries()) assert.deepEqual(await pageReceiver.next(''), summarize(data), `echo of stream #${j}`);
        await page.close(1000);
        assert.deepEqual(await page.closed(), { code: 1000, reason: '', wasClean: true, errors: 0 });
        assert.equal((await side.closed()).wasClean, true);
        // Chromium compresses every message.
        assertCompression(tap.last, 'all', expectation);
      } finally {
        await tap.close();
        await server.close();
      }
    });
  }
});
