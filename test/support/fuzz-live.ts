// The live fuzzer: a WebSocketServer echo server in this process, attacked over loopback TCP by raw
// clients that do the opening handshake by hand and then send mutated frame streams in random pieces,
// while one well-behaved client (the ws package, so our own client cannot hide a server bug) sends a
// message every few milliseconds and must get every echo back, in order and byte for byte. Each
// attacker knows from the oracle exactly what the server must answer, and checks it on the wire.
import net from 'node:net';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import WsClient from 'ws';
import { WebSocketServer, type WebSocket } from '../../src/index.js';
import { SeededRandom } from './seeded-random.js';
import { between, chance, cleanCloseFrame, generateCase, pick, randomBytes, randomText, type DeflateMode } from './fuzz-frames.js';
import { closeCodeOf, compareWrites, expectedWrites, expectFromStream, ServerFrameReader, type Expected, type ServerFrame } from './fuzz-oracle.js';
import { caseSeed, FUZZ_MAX_PAYLOAD } from './fuzz.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** Longest an attacker waits for the handshake, or for the server to end its connection. */
const CONNECTION_TIMEOUT_MS = 10_000;
/** Longest the end of a run waits for echoes and for the server to forget its attackers. */
const SETTLE_TIMEOUT_MS = 10_000;
const MOST_WRITES = 64;
const GOOD_PATH = '/good';
// What attackers that want compression offer; the server accepts each as it stands.
const DEFLATE_OFFERS = [
  'permessage-deflate',
  'permessage-deflate; client_max_window_bits',
  'permessage-deflate; client_no_context_takeover',
  'permessage-deflate; server_no_context_takeover',
  'permessage-deflate; client_no_context_takeover; server_no_context_takeover',
];
const MAX_PROBLEMS = 20;

export interface LiveFuzzOptions {
  seed: number;
  /** Attacks start until this many seconds have passed … */
  seconds: number;
  /** … or this many connections were made. */
  maxConnections?: number;
  /** Attacker connections open at once. */
  attackers?: number;
  maxPayload?: number;
  /** The good client sends one message per interval. */
  goodIntervalMs?: number;
  /** Share of attackers that send their first bytes along with the upgrade request (0 to 1; default 0.2). */
  earlyShare?: number;
  /** Share of attackers that negotiate permessage-deflate (0 to 1; default 0.4). */
  deflateShare?: number;
  /** Longest the end of the run waits for echoes, for the server to drop its attackers and to close (default 10 s). */
  settleMs?: number;
  onProgress?: (stats: LiveFuzzStats) => void;
  progressEveryMs?: number;
}

export interface LiveFuzzStats {
  /** Attacker connections that completed the handshake. */
  connections: number;
  /** Of those, the ones the attacker dropped mid-stream on purpose. */
  abrupt: number;
  framesSent: number;
  bytesSent: number;
  /** Close codes the server sent to attackers ("none" for an empty close frame). */
  closeCodes: Record<string, number>;
  /** Echoes, pongs and close echoes attackers received and checked. */
  framesChecked: number;
  goodMessages: number;
  maxRss: number;
  maxHeapUsed: number;
  /** Open server-side connections after the attackers were done (the good client's: 1). */
  clientsAtEnd: number;
  ms: number;
  problems: string[];
}

/** Appends to an attacker stream until the oracle says the server must end the connection. */
function completeStream(rng: SeededRandom, bytes: Buffer, maxPayload: number, mode: DeflateMode | null): { stream: Buffer; expected: Expected } {
  let stream = bytes;
  let expected = expectFromStream(stream, maxPayload, mode);
  // 0xFF bytes break every state: as a header (RSV bits), as text (never UTF-8), as a close code (65535);
  // a binary payload swallows them only up to its length, which is at most maxPayload.
  for (let filler = 256; expected.ending.kind === 'open'; filler *= 2) {
    const tail = expected.ending.idle ? cleanCloseFrame(rng) : Buffer.alloc(filler, 0xff);
    stream = Buffer.concat([stream, tail]);
    expected = expectFromStream(stream, maxPayload, mode);
  }
  return { stream, expected };
}

function writePieces(rng: SeededRandom, bytes: Buffer): Buffer[] {
  const floor = Math.ceil(bytes.length / MOST_WRITES);
  const largest = Math.max(floor, pick(rng, [1, 7, 64, 512, 4096, 65536]));
  const pieces: Buffer[] = [];
  for (let at = 0; at < bytes.length;) {
    const take = between(rng, Math.min(floor, largest), largest);
    pieces.push(bytes.subarray(at, at + take));
    at += take;
  }
  return pieces;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Opens a TCP connection and performs the client handshake by hand; `early` bytes ride along with the request. */
async function handshake(port: number, rng: SeededRandom, early: Buffer, offer: string | null): Promise<{ socket: net.Socket; rest: Buffer; extensions: string | null }> {
  const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
  const key = randomBytes(rng, 16).toString('base64');
  const request = `GET /fuzz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${offer ? `Sec-WebSocket-Extensions: ${offer}\r\n` : ''}\r\n`;
  socket.write(Buffer.concat([Buffer.from(request), early]));
  const response = new Promise<{ head: string; rest: Buffer }>((resolve, reject) => {
    let received = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      socket.pause();
      resolve({ head: received.subarray(0, end).toString('latin1'), rest: received.subarray(end + 4) });
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('the server closed the connection during the handshake')));
  });
  try {
    const { head, rest } = await withTimeout(response, CONNECTION_TIMEOUT_MS, 'the handshake response');
    const accept = createHash('sha1').update(key + GUID).digest('base64');
    if (!/^HTTP\/1\.1 101 /.test(head)) throw new Error(`handshake refused: ${head.split('\r\n')[0]}`);
    const header = (name: string) => new RegExp(`^${name}:[ \\t]*(.*)$`, 'im').exec(head)?.[1]?.trim() ?? null;
    if (header('sec-websocket-accept') !== accept) throw new Error('wrong Sec-WebSocket-Accept');
    socket.removeAllListeners('error');
    socket.removeAllListeners('close');
    return { socket, rest, extensions: header('sec-websocket-extensions') };
  } catch (err) {
    socket.destroy();
    throw err;
  }
}

interface AttackResult {
  abrupt: boolean;
  frames: number;
  bytes: number;
  written: ServerFrame[];
}

export interface AttackOptions {
  port: number;
  seed: number;
  maxPayload: number;
  earlyShare: number;
  deflateShare: number;
  onConnected?: (localPort: number, abrupt: boolean) => void;
}

/** Everything an attacker connection will do, drawn from its seed before it connects. */
export function attackPlan(options: Pick<AttackOptions, 'seed' | 'maxPayload' | 'earlyShare' | 'deflateShare'>) {
  const rng = new SeededRandom(options.seed);
  const offer = chance(rng, options.deflateShare) ? pick(rng, DEFLATE_OFFERS) : null;
  // The server accepts an offer as made, so whether it keeps our window is known before it answers.
  const mode = offer ? { contextTakeover: !offer.includes('client_no_context_takeover') } : null;
  const fuzzCase = generateCase(rng, options.maxPayload, mode);
  const abrupt = chance(rng, 0.1);
  const { stream, expected } = abrupt
    ? { stream: fuzzCase.bytes.subarray(0, rng.below(fuzzCase.bytes.length + 1)), expected: null }
    : completeStream(rng, fuzzCase.bytes, options.maxPayload, mode);
  const pieces = writePieces(rng, stream);
  const early = pieces.length > 0 && chance(rng, options.earlyShare) ? pieces.shift()! : Buffer.alloc(0);
  return { rng, offer, mode, fuzzCase, abrupt, stream, expected, pieces, early };
}

/**
 * One attacker connection: the stream of case `seed`, sent in random pieces with random pauses. Unless
 * it drops the connection on purpose, it checks that the server answered exactly what the oracle says
 * and ended TCP itself. Throws a description of the first thing that went wrong.
 */
export async function attack(options: AttackOptions): Promise<AttackResult> {
  const { rng, offer, fuzzCase, abrupt, stream, expected, pieces, early } = attackPlan(options);
  const { port } = options;
  const { socket, rest, extensions } = await handshake(port, rng, early, offer);
  options.onConnected?.(socket.localPort!, abrupt);
  if ((offer === null) !== (extensions === null) || (extensions !== null && !extensions.startsWith('permessage-deflate'))) {
    socket.destroy();
    throw new Error(`offered ${offer ?? 'no extension'}, the server answered ${extensions ?? 'none'}`);
  }
  const serverMode = extensions ? { contextTakeover: !extensions.includes('server_no_context_takeover') } : null;

  const reader = new ServerFrameReader(serverMode);
  const written: ServerFrame[] = [];
  let readError: string | null = null;
  let socketError: Error | null = null;
  let serverEnded = false;
  const closed = new Promise((resolve) => socket.once('close', resolve));
  const read = (chunk: Buffer) => {
    try {
      written.push(...reader.push(chunk));
    } catch (err) {
      readError ??= (err as Error).message;
    }
  };
  read(rest);
  socket.on('data', read);
  socket.on('end', () => (serverEnded = true));
  socket.on('error', (err) => (socketError ??= err));
  socket.resume();

  for (const piece of pieces) {
    if (socket.destroyed || written.some((f) => f.opcode === 0x8)) break;
    socket.write(piece);
    const r = rng.below(100);
    if (r < 35) await nextTurn();
    else if (r < 45) await sleep(1);
  }
  const result = { abrupt, frames: fuzzCase.frames, bytes: stream.length, written };
  if (abrupt) {
    socket.destroy();
    return result;
  }
  try {
    await withTimeout(closed, CONNECTION_TIMEOUT_MS, 'the server to end the connection');
  } finally {
    socket.destroy();
  }
  const ending = expected!.ending;
  const problem = readError ??
    (socketError ? `socket error ${(socketError as Error).message}` : null) ??
    (serverEnded ? null : 'TCP closed without the server ending it') ??
    checkWritten(written, expected!, serverMode !== null);
  if (problem) {
    throw new Error(`${problem}; expected ${ending.kind}${ending.kind === 'failed' ? ` with ${ending.codes.join(' or ')}` : ''}; mutations: ${fuzzCase.mutations.join(', ') || 'none'}`);
  }
  return result;
}

/**
 * Whether the server wrote what the oracle expects. When the server compresses, its echoes wait for
 * zlib, so pongs (written at once) may overtake them, and a failure drops the echoes still waiting;
 * everything else keeps its order.
 */
function checkWritten(written: ServerFrame[], expected: Expected, serverCompresses: boolean): string | null {
  const writes = expectedWrites(expected.events, true);
  const last = written.at(-1);
  if (expected.ending.kind === 'failed') {
    const code = last?.opcode === 0x8 ? closeCodeOf(last) : undefined;
    if (code === undefined || !expected.ending.codes.includes(code)) {
      const got = last ? `opcode ${last.opcode}${last.opcode === 0x8 ? ` code ${code}` : ''}` : 'nothing';
      return `the server's last frame is ${got} where a close frame with ${expected.ending.codes.join(' or ')} was due`;
    }
    writes.push(last!);
  }
  if (!serverCompresses) return compareWrites(written, writes);
  const isPong = (f: ServerFrame) => f.opcode === 0xa;
  const pongs = compareWrites(written.filter(isPong), writes.filter(isPong));
  if (pongs) return `pongs: ${pongs}`;
  if (last?.opcode !== 0x8) return 'the server did not end with a close frame';
  const others = written.filter((f) => !isPong(f));
  let due = writes.filter((f) => !isPong(f));
  if (expected.ending.kind === 'failed' && others.length <= due.length) {
    due = [...due.slice(0, others.length - 1), due.at(-1)!];
  }
  const rest = compareWrites(others, due);
  return rest && `data and close frames: ${rest}`;
}

/** The longest prefix of UTF-8 `text` that ends on a character boundary and has at most `length` bytes. */
function wholeCharacters(text: Buffer, length: number): Buffer {
  let end = Math.min(length, text.length);
  while (end > 0 && end < text.length && (text[end]! & 0xc0) === 0x80) end--;
  return text.subarray(0, end);
}

/** The well-behaved client: one message every interval, each echo checked in order. */
class GoodClient {
  sent = 0;
  echoed = 0;
  private readonly pending: Array<{ data: Buffer; binary: boolean }> = [];
  private timer: NodeJS.Timeout | null = null;
  private drained: (() => void) | null = null;

  private constructor(private readonly ws: WsClient, private readonly rng: SeededRandom, private readonly problem: (text: string) => void) {
    ws.on('message', (data: Buffer, isBinary: boolean) => this.receive(data, isBinary));
    ws.on('close', (code) => this.timer && problem(`the good client was disconnected with ${code}`));
    ws.on('error', (err) => problem(`the good client had an error: ${err.message}`));
  }

  static async connect(port: number, rng: SeededRandom, problem: (text: string) => void): Promise<GoodClient> {
    const ws = new WsClient(`ws://127.0.0.1:${port}${GOOD_PATH}`);
    await withTimeout(once(ws, 'open'), CONNECTION_TIMEOUT_MS, 'the good client to connect');
    return new GoodClient(ws, rng, problem);
  }

  start(intervalMs: number, maxPayload: number): void {
    this.timer = setInterval(() => this.sendOne(maxPayload), intervalMs);
  }

  /** Stops sending and resolves once every echo is in. */
  async finish(timeoutMs: number): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.pending.length > 0) {
      const drained = new Promise<void>((resolve) => (this.drained = resolve));
      await withTimeout(drained, timeoutMs, `${this.pending.length} echoes to the good client`);
    }
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WsClient.CLOSED) return;
    const closed = once(this.ws, 'close');
    this.ws.close(1000);
    await withTimeout(closed, SETTLE_TIMEOUT_MS, 'the good client to close');
  }

  private sendOne(maxPayload: number): void {
    const r = this.rng.below(100);
    // Never quite maxPayload: the server applies the limit to the compressed size too, and random bytes grow a little.
    const length = r < 80 ? this.rng.below(200) : r < 98 ? this.rng.below(8192) : maxPayload - 256 - this.rng.below(4);
    const binary = chance(this.rng, 0.5);
    const payload = binary ? randomBytes(this.rng, length) : wholeCharacters(randomText(this.rng, length), length);
    this.pending.push({ data: payload, binary });
    this.sent++;
    this.ws.send(binary ? payload : payload.toString('utf8'), { binary });
  }

  private receive(data: Buffer, isBinary: boolean): void {
    const next = this.pending.shift();
    if (!next) {
      this.problem('the good client got an echo it never asked for');
    } else if (next.binary !== isBinary || !next.data.equals(data)) {
      this.problem(`echo ${this.echoed} to the good client differs: sent ${next.binary ? 'binary' : 'text'} of ${next.data.length} bytes, got ${isBinary ? 'binary' : 'text'} of ${data.length}`);
    }
    this.echoed++;
    if (this.pending.length === 0) this.drained?.();
  }
}

export async function startEchoServer(maxPayload: number): Promise<{ wss: WebSocketServer; port: number }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', maxPayload, perMessageDeflate: true });
  wss.on('connection', (ws) => {
    ws.on('message', (ev) => ws.send(ev.rawData, { binary: ev.isBinary }));
  });
  await withTimeout(new Promise<void>((resolve) => wss.on('listening', resolve)), CONNECTION_TIMEOUT_MS, 'the server to listen');
  return { wss, port: (wss.address() as net.AddressInfo).port };
}

/** Runs the live fuzz for a bounded time; the caller judges `problems`, which is empty when all went well. */
export async function fuzzLive(options: LiveFuzzOptions): Promise<LiveFuzzStats> {
  const maxPayload = options.maxPayload ?? FUZZ_MAX_PAYLOAD;
  const stats: LiveFuzzStats = {
    connections: 0, abrupt: 0, framesSent: 0, bytesSent: 0, closeCodes: {}, framesChecked: 0, goodMessages: 0,
    maxRss: 0, maxHeapUsed: 0, clientsAtEnd: -1, ms: 0, problems: [],
  };
  const problem = (text: string) => stats.problems.length < MAX_PROBLEMS && stats.problems.push(text);
  const onUncaught = (err: unknown) => problem(`uncaught: ${(err as Error)?.stack ?? String(err)}`);
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
  const start = performance.now();
  const sample = () => {
    const m = process.memoryUsage();
    stats.maxRss = Math.max(stats.maxRss, m.rss);
    stats.maxHeapUsed = Math.max(stats.maxHeapUsed, m.heapUsed);
  };
  const sampler = setInterval(sample, 100);
  let good: GoodClient | null = null;
  const progress = options.onProgress && setInterval(() => {
    stats.ms = performance.now() - start;
    stats.goodMessages = good?.echoed ?? 0;
    options.onProgress!(stats);
  }, options.progressEveryMs ?? 2000);

  const settleMs = options.settleMs ?? SETTLE_TIMEOUT_MS;
  let wss: WebSocketServer | null = null;
  try {
    const server = await startEchoServer(maxPayload);
    wss = server.wss;
    const port = server.port;
    wss.on('error', (err) => problem(`server error: ${err.message}`));
    // Which attacker each server-side connection belongs to, to name the ones the server fails to forget.
    const remotePorts = new Map<WebSocket, number>();
    wss.on('connection', (ws, req) => remotePorts.set(ws, req.socket.remotePort!));
    const attackers = new Map<number, string>();
    good = await GoodClient.connect(port, new SeededRandom(options.seed ^ 0x600d), problem);
    good.start(options.goodIntervalMs ?? 3, maxPayload);
    const deadline = start + options.seconds * 1000;
    const maxConnections = options.maxConnections ?? Infinity;
    let launched = 0;
    const attacker = async () => {
      while (performance.now() < deadline && launched < maxConnections) {
        const seed = caseSeed(options.seed, launched++);
        try {
          const r = await attack({
            port, seed, maxPayload, earlyShare: options.earlyShare ?? 0.2, deflateShare: options.deflateShare ?? 0.4,
            onConnected: (localPort, abrupt) => attackers.set(localPort, `case seed ${seed}${abrupt ? ' (dropped by the attacker)' : ''}`),
          });
          stats.connections++;
          if (r.abrupt) stats.abrupt++;
          stats.framesSent += r.frames;
          stats.bytesSent += r.bytes;
          if (!r.abrupt) {
            stats.framesChecked += r.written.length;
            const close = r.written.find((f) => f.opcode === 0x8);
            const key = close ? String(closeCodeOf(close) ?? 'none') : 'no close frame';
            stats.closeCodes[key] = (stats.closeCodes[key] ?? 0) + 1;
          }
        } catch (err) {
          problem(`attacker case seed ${seed}: ${(err as Error).message}`);
        }
      }
    };
    await Promise.all(Array.from({ length: options.attackers ?? 12 }, attacker));
    await good.finish(settleMs);
    stats.goodMessages = good.echoed;
    // Attackers that dropped TCP are forgotten once the server sees the close; give it a moment.
    for (let waited = 0; wss.clients.size > 1 && waited < settleMs; waited += 10) await sleep(10);
    stats.clientsAtEnd = wss.clients.size;
    if (stats.clientsAtEnd !== 1) {
      const left = [...wss.clients].map((ws) => `${ws.url === GOOD_PATH ? 'the good client' : attackers.get(remotePorts.get(ws)!)} in readyState ${ws.readyState}`);
      problem(`the server still has ${stats.clientsAtEnd} clients, not just the good one: ${left.slice(0, 10).join('; ')}`);
      // Reported; now let the process exit without waiting for their close timers.
      for (const ws of wss.clients) if (ws.url !== GOOD_PATH) ws.terminate();
    }
    if (good.sent !== good.echoed) problem(`the good client sent ${good.sent} messages but got ${good.echoed} echoes`);
  } catch (err) {
    problem((err as Error).message);
  } finally {
    await good?.close().catch((err: Error) => problem(err.message));
    const server = wss;
    if (server) {
      await withTimeout(new Promise<void>((resolve) => server.close(() => resolve())), settleMs, 'the server to close')
        .catch((err: Error) => problem(err.message));
    }
    sample();
    clearInterval(sampler);
    if (progress) clearInterval(progress);
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUncaught);
    stats.ms = performance.now() - start;
  }
  return stats;
}

/** One line per figure, for test diagnostics and the long run. */
export function formatLiveStats(stats: LiveFuzzStats): string {
  const codes = Object.entries(stats.closeCodes).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ');
  const mib = (n: number) => `${(n / 1048576).toFixed(0)} MiB`;
  return [
    `${stats.connections} attacker connections (${stats.abrupt} dropped on purpose), ${stats.framesSent} frames, ${(stats.bytesSent / 1048576).toFixed(1)} MiB sent, ${(stats.ms / 1000).toFixed(1)} s`,
    `close codes from the server: ${codes}; server frames checked: ${stats.framesChecked}`,
    `good client echoes: ${stats.goodMessages}; server clients at the end: ${stats.clientsAtEnd}; peak RSS ${mib(stats.maxRss)}, heap ${mib(stats.maxHeapUsed)}`,
    ...stats.problems.map((p) => `PROBLEM: ${p}`),
  ].join('\n');
}
