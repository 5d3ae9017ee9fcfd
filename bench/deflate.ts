/**
 * permessage-deflate echo throughput: our WebSocket server against `ws`, both with permessage-deflate
 * on (threshold 1024 bytes for both), in the same run, on the same machine.
 *
 *   node dist/bench/deflate.js [--quick] [--rounds N]
 *
 * The load generator (deflate-load.ts) negotiates permessage-deflate as browsers offer it, sends
 * pre-compressed text messages and counts the compressed echoes without inflating them. Rounds
 * alternate the contenders' order; every run is a fresh server pinned to CPU 0 and a fresh load
 * generator pinned to CPU 1 (see docs/benchmarks.md).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { alternatingRounds } from './alternating-rounds.js';
import type { DeflateLoadResult } from './deflate-load.js';
import type { PayloadKind } from './deflate-payloads.js';
import { detectPinning, type Pinning } from './pinning.js';
import { serverMicroseconds, takePinnedSample, usableSamples, type PinnedSample } from './pinned-sample.js';
import { decimal, integer, machineDescription, percent, table, writeResults } from './report-format.js';
import { median } from './stats.js';
import { parseSuiteArgs, type SuiteOptions } from './suite-args.js';
import { DEFLATE_OFFER } from './upgrade-request.js';

export interface DeflateScenario {
  title: string;
  kind: PayloadKind;
  size: number;
  /** Distinct messages cycled through; together larger than deflate's 32 KiB window. */
  pool: number;
  connections: number;
  inflight: number;
  /** The client's Sec-WebSocket-Extensions offer. */
  offer: string;
}

interface Contender {
  name: string;
  script: string;
}

type Sample = PinnedSample<DeflateLoadResult>;

interface ContenderSummary {
  name: string;
  samples: Sample[];
  medianMessagesPerSecond: number;
  medianMegabytesPerSecond: number;
  medianEchoBytes: number;
  /** Server CPU time per echoed message: what the server spends, whether or not it was the bottleneck. */
  medianServerMicroseconds: number;
  medianServerCpu: number;
  medianLoadCpu: number;
  medianOtherCpu: number;
}

export interface DeflateReport {
  date: string;
  machine: string;
  node: string;
  pinning: string;
  rounds: number;
  warmupMs: number;
  durationMs: number;
  notes: string[];
  /** ratio: duplex/ws msgs/s; cpuRatio: ws/duplex server CPU per message (above 1: duplex spends less). */
  scenarios: { scenario: DeflateScenario; contenders: ContenderSummary[]; ratio: number | null; cpuRatio: number | null }[];
}

export const DEFLATE_SCENARIOS: DeflateScenario[] = [
  { title: '(a) ~1.1 KiB JSON text, 50 connections × 4 in flight', kind: 'json', size: 1100, pool: 64, connections: 50, inflight: 4, offer: DEFLATE_OFFER },
  { title: '(b) 16 KiB English-like text, 10 connections × 4 in flight', kind: 'text', size: 16 * 1024, pool: 8, connections: 10, inflight: 4, offer: DEFLATE_OFFER },
];

/** The target the duplex/ws ratio is read against. */
const TARGET = 1.5;
const LOAD_MARGIN_MS = 20_000;

const here = (relative: string): string => fileURLToPath(new URL(relative, import.meta.url));

function contenders(): { list: Contender[]; notes: string[] } {
  const list: Contender[] = [];
  const notes: string[] = [];
  if (existsSync(here('../src/websocket/server.js'))) list.push({ name: 'duplex', script: here('./servers/duplex-deflate-echo.js') });
  else notes.push('duplex skipped: dist/src/websocket/server.js is not built yet');
  list.push({ name: 'ws', script: here('./servers/ws-deflate-echo.js') });
  return { list, notes };
}

function sampleOnce(scenario: DeflateScenario, contender: Contender, round: number, pinning: Pinning, warmupMs: number, durationMs: number): Promise<Sample> {
  const env = { ...process.env };
  delete env.WS_NO_BUFFER_UTIL;
  return takePinnedSample<DeflateLoadResult>(
    round,
    { script: contender.script, args: [], env },
    {
      script: here('./deflate-load.js'),
      args: (port) => [
        '--port', port,
        '--connections', String(scenario.connections),
        '--inflight', String(scenario.inflight),
        '--kind', scenario.kind,
        '--size', String(scenario.size),
        '--pool', String(scenario.pool),
        '--offer', scenario.offer,
        '--warmup', String(warmupMs),
        '--duration', String(durationMs),
      ],
      timeLimitMs: warmupMs + durationMs + LOAD_MARGIN_MS,
    },
    pinning,
  );
}

function progress(sample: Sample): string {
  if (sample.error !== undefined) return `FAILED: ${sample.error}`;
  const r = sample.result!;
  const cpu = `server ${percent(sample.serverCpu)}, load ${percent(r.loadCpu)}, other ${percent(sample.otherCpu)}`;
  const retried = sample.attempts > 1 ? `, attempt ${sample.attempts}` : '';
  return `${integer(r.messagesPerSecond)} msgs/s, echoes ${integer(r.echoBytes)} B (CPU: ${cpu}${retried})${sample.disturbed ? ' DISTURBED' : ''}`;
}

function summarize(name: string, samples: Sample[]): ContenderSummary {
  const usable = usableSamples(samples);
  const of = (pick: (s: Sample) => number | undefined): number =>
    median(usable.map(pick).filter((v): v is number => v !== undefined));
  return {
    name,
    samples,
    medianMessagesPerSecond: of((s) => s.result?.messagesPerSecond),
    medianMegabytesPerSecond: of((s) => s.result?.megabytesPerSecond),
    medianEchoBytes: of((s) => s.result?.echoBytes),
    medianServerMicroseconds: of((s) => serverMicroseconds(s, (r) => r.messagesPerSecond)),
    medianServerCpu: of((s) => s.serverCpu),
    medianLoadCpu: of((s) => s.result?.loadCpu),
    medianOtherCpu: of((s) => s.otherCpu),
  };
}

function range(summary: ContenderSummary): string {
  const rates = summary.samples.flatMap((s) => (s.result ? [s.result.messagesPerSecond] : []));
  return rates.length === 0 ? 'n/a' : `${integer(Math.min(...rates))}–${integer(Math.max(...rates))}`;
}

export function deflateMarkdown(report: DeflateReport): string {
  const lines = [
    `permessage-deflate echo, ${report.date.slice(0, 10)}: ${report.machine}, Node ${report.node}`,
    `${report.rounds} rounds × (${report.warmupMs} ms warm-up + ${report.durationMs} ms window); ${report.pinning}`,
    ...report.notes,
  ];
  for (const { scenario, contenders: summaries } of report.scenarios) {
    lines.push('', scenario.title, '');
    lines.push(...table(
      ['contender', 'msgs/s (median)', 'MB/s uncompressed', 'echo bytes/msg', 'msgs/s min–max', 'server µs/msg', 'server CPU', 'load CPU', 'other CPU', 'ok runs', 'disturbed'],
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      summaries.map((s) => [
        s.name,
        integer(s.medianMessagesPerSecond),
        decimal(s.medianMegabytesPerSecond, 1),
        integer(s.medianEchoBytes),
        range(s),
        integer(s.medianServerMicroseconds),
        percent(s.medianServerCpu),
        percent(s.medianLoadCpu),
        percent(s.medianOtherCpu),
        `${s.samples.filter((x) => x.error === undefined).length}/${s.samples.length}`,
        String(s.samples.filter((x) => x.disturbed).length),
      ]),
    ));
  }
  lines.push('', ...table(
    ['ratio of medians', ...report.scenarios.map((s) => s.scenario.title.split(' ')[0]!), 'target'],
    ['l', ...report.scenarios.map((): 'r' => 'r'), 'r'],
    [
      ['duplex/ws msgs/s', ...report.scenarios.map((s) => decimal(s.ratio ?? undefined, 2)), `≥ ${TARGET}`],
      ['ws/duplex server µs/msg', ...report.scenarios.map((s) => decimal(s.cpuRatio ?? undefined, 2)), ''],
    ],
  ));
  const failures = report.scenarios.flatMap(({ scenario, contenders: summaries }) =>
    summaries.flatMap((s) => s.samples.filter((x) => x.error !== undefined).map((x) => `- ${scenario.title.split(' ')[0]} ${s.name} round ${x.round + 1}: ${x.error}`)),
  );
  if (failures.length > 0) lines.push('', 'Failed runs:', ...failures);
  return lines.join('\n');
}

export async function runDeflate(options: SuiteOptions): Promise<DeflateReport> {
  const rounds = options.rounds ?? (options.quick ? 2 : 5);
  const warmupMs = options.quick ? 500 : 1000;
  const durationMs = options.quick ? 2000 : 5000;
  const pinning = detectPinning();
  const { list, notes } = contenders();
  console.log(`deflate benchmark: ${rounds} rounds, ${warmupMs} ms warm-up + ${durationMs} ms window; ${pinning.note}`);
  for (const note of notes) console.log(note);

  const scenarios: DeflateReport['scenarios'] = [];
  for (const scenario of DEFLATE_SCENARIOS) {
    console.log(`\n${scenario.title}`);
    const samples = await alternatingRounds(
      list,
      rounds,
      (contender, round) => sampleOnce(scenario, contender, round, pinning, warmupMs, durationMs),
      (contender, round, sample) => console.log(`  round ${round + 1}/${rounds} ${contender.name.padEnd(7)} ${progress(sample)}`),
    );
    const summaries = list.map((c) => summarize(c.name, samples.get(c.name)!));
    const find = (name: string): ContenderSummary | undefined => summaries.find((s) => s.name === name);
    const ratio = (find('duplex')?.medianMessagesPerSecond ?? Number.NaN) / (find('ws')?.medianMessagesPerSecond ?? Number.NaN);
    const cpuRatio = (find('ws')?.medianServerMicroseconds ?? Number.NaN) / (find('duplex')?.medianServerMicroseconds ?? Number.NaN);
    scenarios.push({
      scenario,
      contenders: summaries,
      ratio: Number.isFinite(ratio) ? ratio : null,
      cpuRatio: Number.isFinite(cpuRatio) ? cpuRatio : null,
    });
  }
  const date = new Date().toISOString();
  const report: DeflateReport = { date, machine: machineDescription(), node: process.version, pinning: pinning.note, rounds, warmupMs, durationMs, notes, scenarios };
  console.log(`\n${deflateMarkdown(report)}`);
  console.log(`results written to ${writeResults('deflate', date, report)}`);
  return report;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runDeflate(parseSuiteArgs());
}
