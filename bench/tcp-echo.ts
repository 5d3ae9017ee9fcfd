/**
 * Framed TCP echo throughput: our TcpServer echoing length-prefixed messages (decoded, then encoded
 * again) against a plain `net` echo that pipes the same bytes back unparsed, with the same load.
 *
 *   node dist/bench/tcp-echo.js [--quick] [--rounds N]
 *
 * The same script is also the framed echo server (--server PORT) and the load generator (--load …),
 * run as child processes: the server pinned to CPU 0, the load to CPU 1, fresh for every run. Rounds
 * alternate the contenders, order reversed every other round. A run that other work on the machine
 * disturbed is repeated (up to three attempts); per contender the median over undisturbed runs is
 * reported, and the ratio framed/net of medians.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect, type AddressInfo, type Socket } from 'node:net';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { lengthPrefixed, TcpServer } from '../src/sockets/index.js';
import { collectOutput, spawnChild, stopChild, waitForLine } from './child-processes.js';
import { WINDOW_END, WINDOW_START, type LoadResult } from './load-output.js';
import { detectPinning, LOAD_CPU, SERVER_CPU, type Pinning } from './pinning.js';
import { cpuSeconds, machineCpuSeconds } from './process-cpu.js';
import { QUIET_THRESHOLD, waitForQuiet } from './quiet.js';
import { announceReady, exitWithParent } from './servers/lifecycle.js';
import { median } from './stats.js';

interface Scenario {
  title: string;
  size: number;
  connections: number;
  inflight: number;
}

interface Contender {
  name: 'framed' | 'net';
  args: string[];
}

interface Sample extends Partial<LoadResult> {
  /** Server CPU in the window, as a fraction of one core. */
  serverCpu?: number;
  /** CPU of neither server nor load in the window, in cores: other work disturbing the run. */
  otherCpu?: number;
  attempts?: number;
  /** Other work still took more than QUIET_THRESHOLD cores after the last attempt. */
  disturbed?: boolean;
  error?: string;
}

interface ContenderResult {
  name: string;
  samples: Sample[];
  /** Medians over the undisturbed samples, or over all when every one was disturbed. */
  medianMessagesPerSecond: number;
  medianServerCpu: number;
  undisturbed: number;
}

interface ScenarioResult {
  scenario: Scenario;
  contenders: ContenderResult[];
  /** Median msgs/s of framed over that of net: what the framing costs on top of moving the bytes. */
  ratio: number | null;
}

const SCENARIOS: Scenario[] = [
  { title: '(a) 64 B messages, 100 connections × 8 in flight', size: 64, connections: 100, inflight: 8 },
  { title: '(b) 16 KiB messages, 10 connections × 4 in flight', size: 16 * 1024, connections: 10, inflight: 4 },
];

const SCRIPT = fileURLToPath(import.meta.url);
const here = (relative: string): string => fileURLToPath(new URL(relative, import.meta.url));
const CONTENDERS: Contender[] = [
  { name: 'framed', args: [SCRIPT, '--server', '0'] },
  { name: 'net', args: [here('./servers/net-echo.js'), '0'] },
];
const RESULTS_DIR = here('../../bench/results');
const PREFIX_LENGTH = 4;
const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const LOAD_MARGIN_MS = 20_000;
const CONNECT_TIMEOUT_MS = 10_000;

// ---- the framed echo server ----

function runServer(port: number): void {
  exitWithParent();
  const server = new TcpServer({ codec: lengthPrefixed() }, (connection) => {
    connection.on('message', (message) => connection.send(message));
  });
  server.listen(port).then((address: AddressInfo) => announceReady(address));
}

// ---- the load generator ----

interface LoadOptions {
  port: number;
  connections: number;
  inflight: number;
  size: number;
  warmupMs: number;
  durationMs: number;
}

let received = 0;
let stopping = false;

function abort(message: string): never {
  console.error(`load: ${message}`);
  process.exit(1);
}

/**
 * One connection keeping `inflight` frames in flight. Echoes are counted from byte totals alone (every
 * frame has the same length), and each completed echo is answered with one more frame, so the load
 * costs a counter and a write per read, whatever the server.
 */
function openConnection(options: LoadOptions, burst: Buffer, frameLength: number): Promise<Socket> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: options.port });
    socket.setNoDelay(true);
    let partial = 0;
    let checked = false;
    socket.once('connect', () => {
      socket.write(burst);
      resolve(socket);
    });
    socket.on('data', (chunk: Buffer) => {
      if (!checked && chunk.length >= PREFIX_LENGTH) {
        checked = true;
        if (chunk.readUInt32BE(0) !== options.size) abort('the echo does not start with our frame');
      }
      partial += chunk.length;
      const echoes = Math.floor(partial / frameLength);
      if (echoes === 0) return;
      partial -= echoes * frameLength;
      received += echoes;
      for (let left = echoes; left > 0; left -= options.inflight) {
        socket.write(burst.subarray(0, Math.min(left, options.inflight) * frameLength));
      }
    });
    socket.on('error', (err) => {
      if (!stopping) abort(err.message);
    });
    socket.on('close', () => {
      if (!stopping) abort('connection closed by the server');
    });
  });
}

async function runLoad(options: LoadOptions): Promise<void> {
  setTimeout(() => abort('overran its time limit'), CONNECT_TIMEOUT_MS + options.warmupMs + options.durationMs + 5000).unref();
  const frame = lengthPrefixed().encode(Buffer.alloc(options.size, 0x61));
  const burst = Buffer.concat(Array.from({ length: options.inflight }, () => frame));
  const connectLimit = setTimeout(() => abort('connections did not all open in time'), CONNECT_TIMEOUT_MS);
  const sockets = await Promise.all(Array.from({ length: options.connections }, () => openConnection(options, burst, frame.length)));
  clearTimeout(connectLimit);
  await sleep(options.warmupMs);
  const startCount = received;
  const startTime = process.hrtime.bigint();
  const startCpu = process.cpuUsage();
  console.log(WINDOW_START);
  await sleep(options.durationMs);
  const messages = received - startCount;
  const cpu = process.cpuUsage(startCpu);
  const seconds = Number(process.hrtime.bigint() - startTime) / 1e9;
  console.log(WINDOW_END);
  stopping = true;
  for (const socket of sockets) socket.destroy();
  const result: LoadResult = {
    messages,
    seconds,
    messagesPerSecond: messages / seconds,
    megabytesPerSecond: (messages * options.size) / seconds / 1e6,
    loadCpu: (cpu.user + cpu.system) / 1e6 / seconds,
  };
  console.log(JSON.stringify(result));
}

// ---- the harness ----

interface Plan {
  pinning: Pinning;
  warmupMs: number;
  durationMs: number;
}

async function measure(scenario: Scenario, contender: Contender, plan: Plan): Promise<Sample> {
  const [serverCommand, serverArgs] = plan.pinning.nodeCommand(SERVER_CPU, contender.args);
  const server = spawnChild(serverCommand, serverArgs);
  try {
    const [, port] = await waitForLine(server, /^READY (\d+)$/, READY_TIMEOUT_MS);
    const loadArgs = [
      SCRIPT, '--load',
      '--port', port!,
      '--connections', String(scenario.connections),
      '--inflight', String(scenario.inflight),
      '--size', String(scenario.size),
      '--warmup', String(plan.warmupMs),
      '--duration', String(plan.durationMs),
    ];
    const [loadCommand, args] = plan.pinning.nodeCommand(LOAD_CPU, loadArgs);
    const pid = server.process.pid!;
    const snapshot = () => ({ server: cpuSeconds(pid), machine: machineCpuSeconds(), time: process.hrtime.bigint() });
    let start: ReturnType<typeof snapshot> | undefined;
    let end: ReturnType<typeof snapshot> | undefined;
    const output = await collectOutput(spawnChild(loadCommand, args), plan.warmupMs + plan.durationMs + LOAD_MARGIN_MS, (line) => {
      if (line === WINDOW_START) start = snapshot();
      if (line === WINDOW_END) end = snapshot();
    });
    const result = JSON.parse(output.trim().split('\n').pop()!) as LoadResult;
    const cores = (key: 'server' | 'machine'): number | undefined => {
      const [from, to] = [start?.[key], end?.[key]];
      return from === undefined || to === undefined ? undefined : (to - from) / (Number(end!.time - start!.time) / 1e9);
    };
    const serverCpu = cores('server');
    const machine = cores('machine');
    const otherCpu = machine === undefined || serverCpu === undefined ? undefined : Math.max(0, machine - serverCpu - result.loadCpu);
    return { ...result, serverCpu, otherCpu };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  } finally {
    await stopChild(server, STOP_TIMEOUT_MS);
  }
}

const integer = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const percent = (n: number): string => (Number.isFinite(n) ? `${Math.round(n * 100)}%` : 'n/a');

function summarize(name: string, samples: Sample[]): ContenderResult {
  const ok = samples.filter((s) => s.error === undefined);
  const clean = ok.filter((s) => !s.disturbed);
  const counted = clean.length > 0 ? clean : ok;
  return {
    name,
    samples,
    medianMessagesPerSecond: median(counted.map((s) => s.messagesPerSecond!)),
    medianServerCpu: median(counted.flatMap((s) => (s.serverCpu === undefined ? [] : [s.serverCpu]))),
    undisturbed: clean.length,
  };
}

function markdown(results: ScenarioResult[], header: string[]): string {
  const lines = [...header];
  for (const { scenario, contenders, ratio } of results) {
    lines.push(
      '',
      scenario.title,
      '',
      '| server | msgs/s (median) | msgs/s min–max | server CPU | ok runs | undisturbed |',
      '|---|---:|---:|---:|---:|---:|',
    );
    for (const c of contenders) {
      const rates = c.samples.flatMap((s) => (s.messagesPerSecond === undefined ? [] : [s.messagesPerSecond]));
      const range = rates.length ? `${integer(Math.min(...rates))}–${integer(Math.max(...rates))}` : 'n/a';
      const ok = c.samples.filter((s) => s.error === undefined).length;
      const cells = [c.name, integer(c.medianMessagesPerSecond), range, percent(c.medianServerCpu), `${ok}/${c.samples.length}`, String(c.undisturbed)];
      lines.push(`| ${cells.join(' | ')} |`);
    }
    lines.push('', `framed/net: ${ratio === null ? 'n/a' : ratio.toFixed(2)}`);
    for (const c of contenders) {
      for (const s of c.samples) if (s.error !== undefined) lines.push(`- ${c.name} failed: ${s.error}`);
    }
  }
  return lines.join('\n');
}

export async function runTcpEcho(options: { quick: boolean; rounds?: number }): Promise<ScenarioResult[]> {
  const rounds = options.rounds ?? (options.quick ? 2 : 5);
  const plan: Plan = { pinning: detectPinning(), warmupMs: options.quick ? 500 : 1000, durationMs: options.quick ? 2000 : 5000 };
  const header = [
    `Framed TCP echo, ${new Date().toISOString().slice(0, 10)}: ${os.cpus().length} × ${os.cpus()[0]?.model.trim()}, Node ${process.version}`,
    `${rounds} rounds × (${plan.warmupMs} ms warm-up + ${plan.durationMs} ms window); ${plan.pinning.note}`,
  ];
  console.log(header.join('\n'));
  const results: ScenarioResult[] = [];
  for (const scenario of SCENARIOS) {
    console.log(`\n${scenario.title}`);
    const samples = new Map<string, Sample[]>(CONTENDERS.map((c) => [c.name, []]));
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? CONTENDERS : [...CONTENDERS].reverse();
      for (const contender of order) {
        let sample: Sample = {};
        // A run that other work on the machine disturbed is repeated, up to three attempts.
        for (let attempt = 1; attempt <= 3; attempt++) {
          await waitForQuiet(20_000);
          sample = { ...(await measure(scenario, contender, plan)), attempts: attempt };
          sample.disturbed = (sample.otherCpu ?? 0) > QUIET_THRESHOLD;
          if (sample.error !== undefined || !sample.disturbed) break;
        }
        const line =
          sample.error ??
          `${integer(sample.messagesPerSecond!)} msgs/s (CPU: server ${percent(sample.serverCpu ?? NaN)}, ` +
            `load ${percent(sample.loadCpu!)}, other ${percent(sample.otherCpu ?? NaN)}; attempt ${sample.attempts})` +
            (sample.disturbed ? ' DISTURBED' : '');
        console.log(`  round ${round + 1}/${rounds} ${contender.name.padEnd(7)} ${line}`);
        samples.get(contender.name)!.push(sample);
      }
    }
    const contenders = CONTENDERS.map((c) => summarize(c.name, samples.get(c.name)!));
    const ratio = contenders[0]!.medianMessagesPerSecond / contenders[1]!.medianMessagesPerSecond;
    results.push({ scenario, contenders, ratio: Number.isFinite(ratio) ? ratio : null });
  }
  console.log(`\n${markdown(results, header)}`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = `${RESULTS_DIR}/tcp-echo-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  writeFileSync(file, `${JSON.stringify({ header, results }, null, 2)}\n`);
  console.log(`results written to ${file}`);
  return results;
}

function wholeNumber(name: string, value: string | undefined): number {
  const n = Number(value);
  if (value === undefined || !Number.isInteger(n) || n < 0) abort(`--${name} needs a non-negative integer`);
  return n;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      server: { type: 'string' },
      load: { type: 'boolean', default: false },
      port: { type: 'string' },
      connections: { type: 'string' },
      inflight: { type: 'string' },
      size: { type: 'string' },
      warmup: { type: 'string' },
      duration: { type: 'string' },
    },
  });
  if (values.server !== undefined) {
    runServer(wholeNumber('server', values.server));
  } else if (values.load) {
    await runLoad({
      port: wholeNumber('port', values.port),
      connections: wholeNumber('connections', values.connections),
      inflight: wholeNumber('inflight', values.inflight),
      size: wholeNumber('size', values.size),
      warmupMs: wholeNumber('warmup', values.warmup),
      durationMs: wholeNumber('duration', values.duration),
    });
  } else {
    await runTcpEcho({ quick: values.quick ?? false, rounds: values.rounds === undefined ? undefined : Math.max(1, wholeNumber('rounds', values.rounds)) });
  }
}
