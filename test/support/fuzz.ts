// The in-process fuzzer of the protocol core: random, mutated client streams go through a server-role
// Connection in random chunkings, and everything it reports and writes is checked against the oracle
// in fuzz-oracle.ts. A failing case is shrunk to a short byte string and reported with its seed.
import { Connection, type ConnectionHandler } from '../../src/protocol/connection.js';
import { MessageCodec } from '../../src/protocol/permessage-deflate.js';
import { SeededRandom } from './seeded-random.js';
import { chance, generateCase, randomChunks, type DeflateMode, type FuzzCase } from './fuzz-frames.js';
import {
  compareWrites, describeEvent, expectedWrites, expectFromStream, sameEvent, ServerFrameReader,
  type Expected, type FuzzEvent, type ServerFrame,
} from './fuzz-oracle.js';

export const FUZZ_MAX_PAYLOAD = 64 * 1024;
const FAILURE_CODES = [1002, 1007, 1009];
const SHRINK_BUDGET_MS = 20_000;
/** Longest a compressed message may take to inflate before the fuzzer calls the connection stuck. */
const SETTLE_TIMEOUT_MS = 5_000;

/** The seed of case `index` of a run: one number replays that case alone. */
export function caseSeed(runSeed: number, index: number): number {
  return new SeededRandom((runSeed + Math.imul(index + 1, 0x9e3779b9)) >>> 0).nextUint32();
}

/** What a Connection did with one stream. */
export interface Observed {
  events: FuzzEvent[];
  failedCode: number | null;
  closed: boolean;
  writes: ServerFrame[];
  /** Invariants broken on the way, whatever the oracle says. */
  problems: string[];
  /** The connection's own claim to hold no partial frame or message. */
  idle: boolean;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function isUtf8(data: Buffer): boolean {
  try {
    utf8.decode(data);
    return true;
  } catch {
    return false;
  }
}

/** A handler that records what a connection reports and checks the invariants that need no oracle. */
function recorder(maxPayload: number) {
  const o: Observed = { events: [], failedCode: null, closed: false, writes: [], problems: [], idle: false };
  const reader = new ServerFrameReader();
  const ended = () => o.failedCode !== null || o.closed;
  // Wakes whoever waits for an inflating connection to settle.
  let settled: (() => void) | null = null;
  const state = { paused: false };
  const report = (event: FuzzEvent) => {
    if (ended()) o.problems.push(`${describeEvent(event)} reported after the connection ended`);
    o.events.push(event);
  };
  const handler: ConnectionHandler = {
    message: (data, isBinary) => {
      if (!isBinary && !isUtf8(data)) o.problems.push('a text message that is not valid UTF-8 was delivered');
      if (data.length > maxPayload) o.problems.push(`a message of ${data.length} bytes was delivered`);
      report({ kind: 'message', binary: isBinary, data: Buffer.from(data) });
    },
    ping: (data) => report({ kind: 'ping', data: Buffer.from(data) }),
    pong: (data) => report({ kind: 'pong', data: Buffer.from(data) }),
    closeReceived: (code, reason) => {
      report({ kind: 'close', code, reason });
      o.closed = true;
      settled?.();
    },
    failed: (code, message) => {
      if (ended()) o.problems.push(`failed(${code}, ${JSON.stringify(message)}) reported after the connection ended`);
      if (!FAILURE_CODES.includes(code)) o.problems.push(`failed with code ${code}`);
      o.failedCode ??= code;
      settled?.();
    },
    write: (bytes) => {
      try {
        o.writes.push(...reader.push(bytes));
      } catch (err) {
        o.problems.push((err as Error).message);
      }
    },
    pause: (paused) => {
      state.paused = paused;
      if (!paused) settled?.();
    },
  };
  /** Resolves once no message is inflating (or the connection ended); false if that takes too long. */
  const settle = async (): Promise<boolean> => {
    if (!state.paused || ended()) return true;
    let timer: NodeJS.Timeout | undefined;
    const done = await new Promise<boolean>((resolve) => {
      settled = () => (!state.paused || ended()) && resolve(true);
      timer = setTimeout(() => resolve(false), SETTLE_TIMEOUT_MS);
    });
    clearTimeout(timer);
    settled = null;
    return done;
  };
  const finish = (connection: Connection) => {
    if (reader.pending > 0) o.problems.push(`the connection wrote a partial frame (${reader.pending} bytes left over)`);
    o.idle = connection.idle;
    return o;
  };
  const receive = (connection: Connection, chunk: Buffer): boolean => {
    try {
      connection.receive(chunk);
      return true;
    } catch (err) {
      o.problems.push(`receive() threw ${(err as Error).stack ?? String(err)}`);
      return false;
    }
  };
  return { handler, settle, finish, receive, state };
}

/** Feeds `chunks` to a fresh server-role Connection and records everything it does. */
export function observe(chunks: Buffer[], maxPayload: number): Observed {
  const r = recorder(maxPayload);
  const connection = new Connection(r.handler, { role: 'server', maxPayload });
  for (const chunk of chunks) if (!r.receive(connection, chunk)) break;
  return r.finish(connection);
}

/**
 * The same with permessage-deflate negotiated. Inflating is asynchronous: the chunks are fed either
 * all at once, so input piles up behind an inflating message, or each only once the connection no
 * longer asks for a pause, as a socket would deliver them.
 */
export async function observeDeflate(chunks: Buffer[], maxPayload: number, mode: DeflateMode, waitForResume: boolean): Promise<Observed> {
  const r = recorder(maxPayload);
  const params = { serverNoContextTakeover: false, clientNoContextTakeover: !mode.contextTakeover, serverMaxWindowBits: 15, clientMaxWindowBits: 15 };
  const codec = new MessageCodec(params, 'server', { maxPayload });
  const connection = new Connection(r.handler, { role: 'server', maxPayload, deflate: codec });
  for (const chunk of chunks) {
    if (waitForResume && !(await r.settle())) break;
    if (!r.receive(connection, chunk)) break;
  }
  const settled = await r.settle();
  const o = r.finish(connection);
  if (!settled) o.problems.push(`a compressed message never finished inflating (${SETTLE_TIMEOUT_MS} ms)`);
  connection.dispose();
  if (codec.zlibStreams !== 0) o.problems.push(`the codec holds ${codec.zlibStreams} zlib streams after dispose()`);
  return o;
}

/** The first way `o` departs from `expected`, or null when it matches. */
export function judge(expected: Expected, o: Observed): string | null {
  if (o.problems.length > 0) return o.problems[0]!;
  for (let i = 0; i < Math.max(expected.events.length, o.events.length); i++) {
    const e = expected.events[i];
    const a = o.events[i];
    if (!e || !a || !sameEvent(e, a)) return `event ${i}: expected ${describeEvent(e)}, got ${describeEvent(a)}`;
  }
  const ending = expected.ending;
  const got = o.failedCode !== null ? `failed with ${o.failedCode}` : o.closed ? 'closed' : 'still open';
  if (ending.kind === 'failed' && (o.failedCode === null || !ending.codes.includes(o.failedCode))) {
    return `expected a failure with ${ending.codes.join(' or ')}, but the connection is ${got}`;
  }
  if (ending.kind === 'closed' && (!o.closed || o.failedCode !== null)) return `expected a clean close, but the connection is ${got}`;
  if (ending.kind === 'open') {
    if (o.closed || (o.failedCode !== null && !ending.codes.includes(o.failedCode))) {
      return `expected the connection to wait for more bytes, but it is ${got}`;
    }
    if (ending.idle && o.failedCode === null && !o.idle) return 'the stream stopped between messages, yet the connection is not idle';
  }
  const writes = expectedWrites(expected.events, false);
  if (o.failedCode !== null) writes.push({ opcode: 0x8, payload: Buffer.from([o.failedCode >> 8, o.failedCode & 0xff]) });
  return compareWrites(o.writes, writes);
}

export interface CaseRun {
  seed: number;
  /** permessage-deflate as negotiated for this case, or null for none. */
  mode: DeflateMode | null;
  fuzzCase: FuzzCase;
  chunks: Buffer[];
  expected: Expected;
  observed: Observed;
  problem: string | null;
}

/** Feeds a stream as the case says and judges the result against the oracle. */
async function runStream(bytes: Buffer, chunks: Buffer[], maxPayload: number, mode: DeflateMode | null, waitForResume: boolean) {
  const expected = expectFromStream(bytes, maxPayload, mode);
  const observed = mode ? await observeDeflate(chunks, maxPayload, mode, waitForResume) : observe(chunks, maxPayload);
  return { expected, observed, problem: judge(expected, observed) };
}

/**
 * Generates, runs and judges the case of one seed. With `deflate`, the case negotiates
 * permessage-deflate, with or without context takeover as its seed decides.
 */
export async function runCase(seed: number, deflate: boolean, maxPayload = FUZZ_MAX_PAYLOAD): Promise<CaseRun> {
  const rng = new SeededRandom(seed);
  const mode = deflate ? { contextTakeover: chance(rng, 0.5) } : null;
  const waitForResume = chance(rng, 0.5);
  const fuzzCase = generateCase(rng, maxPayload, mode);
  const chunks = randomChunks(rng, fuzzCase.bytes);
  const result = await runStream(fuzzCase.bytes, chunks, maxPayload, mode, waitForResume);
  return { seed, mode, fuzzCase, chunks, ...result };
}

type Chunking = 'whole' | 'bytewise';

async function problemWith(bytes: Buffer, chunking: Chunking, maxPayload: number, mode: DeflateMode | null): Promise<string | null> {
  const chunks = chunking === 'whole' ? [Buffer.from(bytes)] : [...bytes].map((b) => Buffer.from([b]));
  return (await runStream(bytes, chunks, maxPayload, mode, false)).problem;
}

/**
 * Cuts bytes out of a failing stream while it keeps failing, fed whole or one byte per receive().
 * Null when neither chunking fails, i.e. the failure needs the original chunk boundaries.
 */
export async function shrink(bytes: Buffer, mode: DeflateMode | null, maxPayload = FUZZ_MAX_PAYLOAD): Promise<{ bytes: Buffer; chunking: Chunking } | null> {
  const chunking: Chunking | null = (await problemWith(bytes, 'whole', maxPayload, mode)) !== null ? 'whole'
    : (await problemWith(bytes, 'bytewise', maxPayload, mode)) !== null ? 'bytewise' : null;
  if (!chunking) return null;
  const deadline = Date.now() + SHRINK_BUDGET_MS;
  let current = bytes;
  for (let size = current.length >> 1; size >= 1 && Date.now() < deadline;) {
    let removed = false;
    for (let at = 0; at + size <= current.length && Date.now() < deadline;) {
      const candidate = Buffer.concat([current.subarray(0, at), current.subarray(at + size)]);
      if ((await problemWith(candidate, chunking, maxPayload, mode)) !== null) {
        current = candidate;
        removed = true;
      } else {
        at += size;
      }
    }
    if (!removed) size >>= 1;
  }
  return { bytes: current, chunking };
}

function hex(bytes: Buffer, limit = 600): string {
  const text = bytes.subarray(0, limit).toString('hex').replace(/(..)/g, '$1 ').trim();
  return bytes.length > limit ? `${text} … (${bytes.length} bytes)` : text;
}

/** A failure report that tells how to replay the case and gives the smallest stream found. */
export async function describeFailure(run: CaseRun, maxPayload = FUZZ_MAX_PAYLOAD): Promise<string> {
  const small = await shrink(run.fuzzCase.bytes, run.mode, maxPayload);
  const mode = run.mode ? `permessage-deflate ${run.mode.contextTakeover ? 'with' : 'without'} context takeover` : 'no extension';
  return [
    `connection fuzz: case seed ${run.seed} (${mode}) broke an invariant: ${run.problem}`,
    `  mutations: ${run.fuzzCase.mutations.join(', ') || 'none'}`,
    `  stream: ${run.fuzzCase.bytes.length} bytes in ${run.chunks.length} receive() calls of ${run.chunks.slice(0, 40).map((c) => c.length).join(', ')}${run.chunks.length > 40 ? ', …' : ''}`,
    small
      ? `  minimal stream (${small.bytes.length} bytes, ${small.chunking === 'whole' ? 'one receive() call' : 'one byte per receive() call'}): ${hex(small.bytes)}\n  it fails with: ${await problemWith(small.bytes, small.chunking, maxPayload, run.mode)}`
      : '  the failure needs the original chunk boundaries; no smaller stream was found',
    `  replay: node dist/bench/fuzz.js --replay ${run.seed}${run.mode ? ' --deflate' : ''}`,
  ].join('\n');
}

export interface ConnectionFuzzOptions {
  seed: number;
  /** Negotiate permessage-deflate in every case. */
  deflate?: boolean;
  /** Stop after this many cases … */
  cases?: number;
  /** … or once this many frames have been generated, whichever comes first. */
  frames?: number;
  maxPayload?: number;
  onProgress?: (stats: ConnectionFuzzStats) => void;
  progressEveryMs?: number;
}

export interface ConnectionFuzzStats {
  cases: number;
  frames: number;
  bytes: number;
  receiveCalls: number;
  messages: number;
  /** Of those, the ones that came compressed. */
  inflated: number;
  /** How the streams ended: "failed 1002", "closed", "open" … */
  endings: Record<string, number>;
  mutations: Record<string, number>;
  ms: number;
}

function count(record: Record<string, number>, key: string): void {
  record[key] = (record[key] ?? 0) + 1;
}

/** Runs cases until a limit is reached; throws a reproducible report at the first broken invariant. */
export async function fuzzConnection(options: ConnectionFuzzOptions): Promise<ConnectionFuzzStats> {
  const maxPayload = options.maxPayload ?? FUZZ_MAX_PAYLOAD;
  const maxCases = options.cases ?? Infinity;
  const maxFrames = options.frames ?? Infinity;
  const stats: ConnectionFuzzStats = { cases: 0, frames: 0, bytes: 0, receiveCalls: 0, messages: 0, inflated: 0, endings: {}, mutations: {}, ms: 0 };
  const start = performance.now();
  let nextProgress = start + (options.progressEveryMs ?? 2000);
  while (stats.cases < maxCases && stats.frames < maxFrames) {
    const run = await runCase(caseSeed(options.seed, stats.cases), options.deflate ?? false, maxPayload);
    if (run.problem) throw new Error(await describeFailure(run, maxPayload));
    stats.cases++;
    stats.frames += run.fuzzCase.frames;
    stats.bytes += run.fuzzCase.bytes.length;
    stats.receiveCalls += run.chunks.length;
    stats.messages += run.observed.events.filter((e) => e.kind === 'message').length;
    stats.inflated += run.expected.inflated;
    const o = run.observed;
    count(stats.endings, o.failedCode !== null ? `failed ${o.failedCode}` : o.closed ? 'closed' : 'open');
    for (const m of run.fuzzCase.mutations) count(stats.mutations, m);
    if (run.fuzzCase.mutations.length === 0) count(stats.mutations, 'none');
    if (options.onProgress && performance.now() >= nextProgress) {
      stats.ms = performance.now() - start;
      options.onProgress(stats);
      nextProgress += options.progressEveryMs ?? 2000;
    }
  }
  stats.ms = performance.now() - start;
  return stats;
}

/** One line per figure, for test diagnostics and the long run. */
export function formatConnectionStats(stats: ConnectionFuzzStats): string {
  const sorted = (r: Record<string, number>) => Object.entries(r).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ');
  return [
    `${stats.cases} streams, ${stats.frames} frames, ${(stats.bytes / 1048576).toFixed(1)} MiB in ${stats.receiveCalls} receive() calls, ${(stats.ms / 1000).toFixed(1)} s`,
    `messages delivered: ${stats.messages} (${stats.inflated} of them compressed); endings: ${sorted(stats.endings)}`,
    `mutations: ${sorted(stats.mutations)}`,
  ].join('\n');
}
