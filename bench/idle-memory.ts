/**
 * Memory per idle connection: our WebSocket server against `ws`, in the same run. Each sample is a
 * fresh server (pinned to CPU 0, run with --expose-gc) that reports its memory after forced garbage
 * collection before and after N connections (10,000; fewer with --quick) have completed their
 * handshake and sat idle for a moment; per connection = (after - before) / N.
 *
 *   node dist/bench/idle-memory.js [--quick] [--rounds N]
 *
 * Clients are raw TCP (idle-clients.ts), pinned to CPU 1, spread over as many processes as the
 * open-file limit requires; only when the connections outnumber the ephemeral ports does each process
 * bind its own loopback address (127.0.0.2, .3, …) to get a port range to itself.
 */
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { alternatingRounds } from './alternating-rounds.js';
import { spawnChild, stopChild, waitForLine, type Child } from './child-processes.js';
import { detectPinning, LOAD_CPU, SERVER_CPU, type Pinning } from './pinning.js';
import { decimal, integer, machineDescription, table, writeResults } from './report-format.js';
import type { MemoryReading } from './servers/memory-probe.js';
import { median } from './stats.js';
import { parseSuiteArgs, type SuiteOptions } from './suite-args.js';

interface Contender {
  name: string;
  script: string;
}

interface Variant {
  title: string;
  deflate: boolean;
}

interface PerConnection {
  rss: number;
  heapUsed: number;
  external: number;
}

/** Ratios of medians to ws's, per contender, for RSS and heapUsed (ws's external is about 0: no ratio). */
type Ratios = Record<string, Pick<PerConnection, 'rss' | 'heapUsed'>>;

interface MemorySample {
  round: number;
  before?: MemoryReading;
  after?: MemoryReading;
  perConnection?: PerConnection;
  error?: string;
}

interface ContenderSummary {
  name: string;
  samples: MemorySample[];
  /** Medians over the rounds, bytes per connection. */
  median: PerConnection;
}

export interface MemoryReport {
  date: string;
  machine: string;
  node: string;
  pinning: string;
  rounds: number;
  connections: number;
  clientProcesses: number;
  idleMs: number;
  notes: string[];
  variants: { variant: Variant; contenders: ContenderSummary[]; ratios: Ratios }[];
}

const VARIANTS: Variant[] = [
  { title: '(a) no extension', deflate: false },
  { title: '(b) permessage-deflate negotiated, idle', deflate: true },
];
const TARGET = 0.7;
/** Opened and closed before the baseline, so code first run by a connection is not counted per connection. */
const WARMUP_CONNECTIONS = 200;
const IDLE_MS = 2000;
const READY_TIMEOUT_MS = 10_000;
const OPEN_TIMEOUT_MS = 90_000;
const MEMORY_TIMEOUT_MS = 10_000;
const SETTLE_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;
/** File descriptors a process needs besides its connections: stdio, the listening socket, libuv. */
const FD_MARGIN = 100;
/** Ports of the ephemeral range left free on each client address, for whatever else runs. */
const PORT_MARGIN = 1000;

const here = (relative: string): string => fileURLToPath(new URL(relative, import.meta.url));

function contenders(): { list: Contender[]; notes: string[] } {
  const list: Contender[] = [];
  const notes: string[] = [];
  if (existsSync(here('../src/websocket/server.js'))) list.push({ name: 'duplex', script: here('./servers/duplex-idle.js') });
  else notes.push('duplex skipped: dist/src/websocket/server.js is not built yet');
  list.push({ name: 'ws', script: here('./servers/ws-idle.js') });
  // Not a WebSocket server: the least any server on Node's sockets can cost (servers/net-upgrade.ts).
  list.push({ name: 'net-floor', script: here('./servers/net-upgrade.js') });
  return { list, notes };
}

/** This process's open-file limit, which child processes inherit (Node raises its soft limit to the hard one). */
function openFileLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  const soft = line === undefined ? Number.NaN : Number(line.split(/\s+/)[3]);
  return Number.isFinite(soft) ? soft : Infinity;
}

function ephemeralPorts(): number {
  const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  return high! - low! + 1;
}

interface ClientLayout {
  processes: number;
  /** Each process binds its own loopback address (127.0.0.2, .3, …): more connections than one address has ports. */
  ownAddresses: boolean;
}

/** How many client processes the connections need, and whether each needs its own source address. */
function clientLayout(connections: number): ClientLayout {
  const limit = openFileLimit();
  if (connections + FD_MARGIN > limit) {
    throw new Error(`the server needs ${connections + FD_MARGIN} open files but the limit is ${limit}: raise it (ulimit -n) and run again`);
  }
  const ports = ephemeralPorts() - PORT_MARGIN;
  const ownAddresses = connections > ports;
  const perProcess = ownAddresses ? Math.min(limit - FD_MARGIN, ports) : limit - FD_MARGIN;
  return { processes: Math.ceil(connections / perProcess), ownAddresses };
}

function startClients(pinning: Pinning, port: string, connections: number, layout: ClientLayout, deflate: boolean): Child[] {
  const { processes, ownAddresses } = layout;
  return Array.from({ length: processes }, (_, i) => {
    const share = Math.floor(connections / processes) + (i < connections % processes ? 1 : 0);
    const args = [here('./idle-clients.js'), '--port', port, '--connections', String(share)];
    if (ownAddresses) args.push('--local-address', `127.0.0.${2 + i}`);
    if (deflate) args.push('--deflate');
    const [command, argv] = pinning.nodeCommand(LOAD_CPU, args);
    return spawnChild(command, argv);
  });
}

async function readMemory(server: Child): Promise<MemoryReading> {
  const answer = waitForLine(server, /^MEMORY (\{.*\})$/, MEMORY_TIMEOUT_MS);
  server.process.stdin!.write('MEMORY\n');
  return JSON.parse((await answer)[1]!) as MemoryReading;
}

/** Reads the server's memory until it tracks `connections` connections (closes are noticed asynchronously). */
async function readMemoryAt(server: Child, connections: number): Promise<MemoryReading> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  for (;;) {
    const reading = await readMemory(server);
    if (reading.connections === connections) return reading;
    if (Date.now() > deadline) throw new Error(`server tracks ${reading.connections} connections, expected ${connections}`);
    await sleep(200);
  }
}

async function openClients(pinning: Pinning, port: string, connections: number, layout: ClientLayout, deflate: boolean): Promise<Child[]> {
  const clients = startClients(pinning, port, connections, layout, deflate);
  try {
    await Promise.all(clients.map((client) => waitForLine(client, /^OPEN \d+$/, OPEN_TIMEOUT_MS)));
  } catch (error) {
    await Promise.all(clients.map((client) => stopChild(client, STOP_TIMEOUT_MS)));
    throw error;
  }
  return clients;
}

async function measure(contender: Contender, variant: Variant, pinning: Pinning, connections: number, layout: ClientLayout): Promise<Omit<MemorySample, 'round'>> {
  const serverArgs = ['--expose-gc', contender.script, '0', ...(variant.deflate ? ['--deflate'] : [])];
  const env = { ...process.env };
  delete env.WS_NO_BUFFER_UTIL;
  const [command, argv] = pinning.nodeCommand(SERVER_CPU, serverArgs);
  const server = spawnChild(command, argv, env);
  let clients: Child[] = [];
  try {
    const [, port] = await waitForLine(server, /^READY (\d+)$/, READY_TIMEOUT_MS);
    const warmup = await openClients(pinning, port!, Math.min(WARMUP_CONNECTIONS, connections), { processes: 1, ownAddresses: false }, variant.deflate);
    await Promise.all(warmup.map((client) => stopChild(client, STOP_TIMEOUT_MS)));
    const before = await readMemoryAt(server, 0);
    clients = await openClients(pinning, port!, connections, layout, variant.deflate);
    await readMemoryAt(server, connections);
    await sleep(IDLE_MS);
    const after = await readMemoryAt(server, connections);
    const per = (key: keyof PerConnection): number => (after[key] - before[key]) / connections;
    return { before, after, perConnection: { rss: per('rss'), heapUsed: per('heapUsed'), external: per('external') } };
  } finally {
    await Promise.all(clients.map((client) => stopChild(client, STOP_TIMEOUT_MS)));
    await stopChild(server, STOP_TIMEOUT_MS);
  }
}

async function takeSample(contender: Contender, variant: Variant, round: number, pinning: Pinning, connections: number, layout: ClientLayout): Promise<MemorySample> {
  try {
    return { round, ...(await measure(contender, variant, pinning, connections, layout)) };
  } catch (error) {
    return { round, error: error instanceof Error ? error.message : String(error) };
  }
}

function summarize(name: string, samples: MemorySample[]): ContenderSummary {
  const ok = samples.flatMap((s) => (s.perConnection ? [s.perConnection] : []));
  return {
    name,
    samples,
    median: { rss: median(ok.map((p) => p.rss)), heapUsed: median(ok.map((p) => p.heapUsed)), external: median(ok.map((p) => p.external)) },
  };
}

function ratiosOf(summaries: ContenderSummary[]): Ratios {
  const ws = summaries.find((s) => s.name === 'ws')?.median;
  const ratios: Ratios = {};
  if (!ws) return ratios;
  for (const { name, median: m } of summaries) {
    if (name !== 'ws') ratios[`${name}/ws`] = { rss: m.rss / ws.rss, heapUsed: m.heapUsed / ws.heapUsed };
  }
  return ratios;
}

const kib = (bytes: number): string => decimal(bytes / 1024, 2);
const mib = (bytes: number | undefined): string => (bytes === undefined ? 'n/a' : decimal(bytes / 2 ** 20, 1));

export function memoryMarkdown(report: MemoryReport): string {
  const lines = [
    `Memory per idle connection, ${report.date.slice(0, 10)}: ${report.machine}, Node ${report.node}`,
    `${report.rounds} rounds, ${integer(report.connections)} connections from ${report.clientProcesses} client process(es), ` +
      `idle ${report.idleMs} ms; ${report.pinning}`,
    ...report.notes,
  ];
  for (const { variant, contenders: summaries } of report.variants) {
    lines.push('', variant.title, '');
    lines.push(...table(
      ['contender', 'RSS KiB/conn', 'heapUsed KiB/conn', 'external KiB/conn', 'RSS before → after (MiB)', 'heapUsed before → after (MiB)', 'ok runs'],
      ['l', 'r', 'r', 'r', 'r', 'r', 'r'],
      summaries.map((s) => {
        const last = s.samples.filter((x) => x.after).at(-1);
        return [
          s.name,
          kib(s.median.rss),
          kib(s.median.heapUsed),
          kib(s.median.external),
          `${mib(last?.before?.rss)} → ${mib(last?.after?.rss)}`,
          `${mib(last?.before?.heapUsed)} → ${mib(last?.after?.heapUsed)}`,
          `${s.samples.filter((x) => x.error === undefined).length}/${s.samples.length}`,
        ];
      }),
    ));
  }
  const names = Object.keys(report.variants[0]?.ratios ?? {});
  lines.push('', ...table(
    ['ratio of medians', ...report.variants.map((v) => v.variant.title.split(' ')[0]!), 'target'],
    ['l', ...report.variants.map((): 'r' => 'r'), 'r'],
    names.flatMap((name) =>
      (['rss', 'heapUsed'] as const).map((key) => [
        `${name} ${key}`,
        ...report.variants.map((v) => decimal(v.ratios[name]?.[key], 2)),
        name === 'duplex/ws' ? `≤ ${TARGET}` : '',
      ]),
    ),
  ));
  const failures = report.variants.flatMap(({ variant, contenders: summaries }) =>
    summaries.flatMap((s) => s.samples.filter((x) => x.error !== undefined).map((x) => `- ${variant.title.split(' ')[0]} ${s.name} round ${x.round + 1}: ${x.error}`)),
  );
  if (failures.length > 0) lines.push('', 'Failed runs:', ...failures);
  return lines.join('\n');
}

export async function runIdleMemory(options: SuiteOptions): Promise<MemoryReport> {
  const rounds = options.rounds ?? (options.quick ? 1 : 3);
  const connections = options.quick ? 2000 : 10_000;
  const layout = clientLayout(connections);
  const pinning = detectPinning();
  const { list, notes } = contenders();
  console.log(`idle memory benchmark: ${rounds} rounds, ${connections} connections from ${layout.processes} client process(es); ${pinning.note}`);
  for (const note of notes) console.log(note);

  const variants: MemoryReport['variants'] = [];
  for (const variant of VARIANTS) {
    console.log(`\n${variant.title}`);
    const samples = await alternatingRounds(
      list,
      rounds,
      (contender, round) => takeSample(contender, variant, round, pinning, connections, layout),
      (contender, round, sample) => {
        const p = sample.perConnection;
        const text = p ? `RSS ${kib(p.rss)} KiB, heapUsed ${kib(p.heapUsed)} KiB, external ${kib(p.external)} KiB per connection` : `FAILED: ${sample.error}`;
        console.log(`  round ${round + 1}/${rounds} ${contender.name.padEnd(9)} ${text}`);
      },
    );
    const summaries = list.map((c) => summarize(c.name, samples.get(c.name)!));
    variants.push({ variant, contenders: summaries, ratios: ratiosOf(summaries) });
  }
  const date = new Date().toISOString();
  const report: MemoryReport = {
    date,
    machine: machineDescription(),
    node: process.version,
    pinning: pinning.note,
    rounds,
    connections,
    clientProcesses: layout.processes,
    idleMs: IDLE_MS,
    notes,
    variants,
  };
  console.log(`\n${memoryMarkdown(report)}`);
  console.log(`results written to ${writeResults('idle-memory', date, report)}`);
  return report;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runIdleMemory(parseSuiteArgs());
}
