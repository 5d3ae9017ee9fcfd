/**
 * Opening handshakes per second: our WebSocket server against `ws`, in the same run, on the same
 * machine. The load generator (handshake-load.ts) keeps K connections in their handshake at all times,
 * each destroyed as soon as its 101 response is checked.
 *
 *   node dist/bench/handshakes.js [--quick] [--rounds N]
 *
 * Rounds alternate the contenders' order; every run is a fresh server pinned to CPU 0 and a fresh
 * load generator pinned to CPU 1 (see docs/benchmarks.md).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { alternatingRounds } from './alternating-rounds.js';
import type { HandshakeLoadResult } from './handshake-load.js';
import { detectPinning, type Pinning } from './pinning.js';
import { serverMicroseconds, takePinnedSample, usableSamples, type PinnedSample } from './pinned-sample.js';
import { decimal, integer, machineDescription, percent, table, writeResults } from './report-format.js';
import { median } from './stats.js';
import { parseSuiteArgs, type SuiteOptions } from './suite-args.js';

interface Contender {
  name: string;
  script: string;
}

type Sample = PinnedSample<HandshakeLoadResult>;

interface ContenderSummary {
  name: string;
  samples: Sample[];
  medianHandshakesPerSecond: number;
  /** Server CPU time per handshake: what the server spends, whether or not it was the bottleneck. */
  medianServerMicroseconds: number;
  medianServerCpu: number;
  medianLoadCpu: number;
  medianOtherCpu: number;
}

export interface HandshakeReport {
  date: string;
  machine: string;
  node: string;
  pinning: string;
  rounds: number;
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  notes: string[];
  contenders: ContenderSummary[];
  /** duplex/ws handshakes per second. */
  ratio: number | null;
  /** ws/duplex server CPU per handshake: above 1 means duplex spends less. */
  cpuRatio: number | null;
}

const CONCURRENCY = 50;
const TARGET = 1.2;
const LOAD_MARGIN_MS = 20_000;

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

function sampleOnce(contender: Contender, round: number, pinning: Pinning, warmupMs: number, durationMs: number): Promise<Sample> {
  const env = { ...process.env };
  delete env.WS_NO_BUFFER_UTIL;
  return takePinnedSample<HandshakeLoadResult>(
    round,
    { script: contender.script, args: [], env },
    {
      script: here('./handshake-load.js'),
      args: (port) => ['--port', port, '--concurrency', String(CONCURRENCY), '--warmup', String(warmupMs), '--duration', String(durationMs)],
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
  return `${integer(r.handshakesPerSecond)} handshakes/s (CPU: ${cpu}${retried})${sample.disturbed ? ' DISTURBED' : ''}`;
}

function summarize(name: string, samples: Sample[]): ContenderSummary {
  const usable = usableSamples(samples);
  const of = (pick: (s: Sample) => number | undefined): number =>
    median(usable.map(pick).filter((v): v is number => v !== undefined));
  return {
    name,
    samples,
    medianHandshakesPerSecond: of((s) => s.result?.handshakesPerSecond),
    medianServerMicroseconds: of((s) => serverMicroseconds(s, (r) => r.handshakesPerSecond)),
    medianServerCpu: of((s) => s.serverCpu),
    medianLoadCpu: of((s) => s.result?.loadCpu),
    medianOtherCpu: of((s) => s.otherCpu),
  };
}

export function handshakeMarkdown(report: HandshakeReport): string {
  const range = (s: ContenderSummary): string => {
    const rates = s.samples.flatMap((x) => (x.result ? [x.result.handshakesPerSecond] : []));
    return rates.length === 0 ? 'n/a' : `${integer(Math.min(...rates))}–${integer(Math.max(...rates))}`;
  };
  const lines = [
    `Handshakes, ${report.date.slice(0, 10)}: ${report.machine}, Node ${report.node}`,
    `${report.rounds} rounds × (${report.warmupMs} ms warm-up + ${report.durationMs} ms window), ${report.concurrency} handshakes in flight; ${report.pinning}`,
    ...report.notes,
    '',
    ...table(
      ['contender', 'handshakes/s (median)', 'min–max', 'server µs/handshake', 'server CPU', 'load CPU', 'other CPU', 'ok runs', 'disturbed'],
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      report.contenders.map((s) => [
        s.name,
        integer(s.medianHandshakesPerSecond),
        range(s),
        integer(s.medianServerMicroseconds),
        percent(s.medianServerCpu),
        percent(s.medianLoadCpu),
        percent(s.medianOtherCpu),
        `${s.samples.filter((x) => x.error === undefined).length}/${s.samples.length}`,
        String(s.samples.filter((x) => x.disturbed).length),
      ]),
    ),
    '',
    `duplex/ws (ratio of medians): ${decimal(report.ratio ?? undefined, 2)} handshakes/s (target ≥ ${TARGET}); ` +
      `${decimal(report.cpuRatio ?? undefined, 2)} in server CPU per handshake (ws/duplex)`,
  ];
  const failures = report.contenders.flatMap((s) =>
    s.samples.filter((x) => x.error !== undefined).map((x) => `- ${s.name} round ${x.round + 1}: ${x.error}`),
  );
  if (failures.length > 0) lines.push('', 'Failed runs:', ...failures);
  return lines.join('\n');
}

export async function runHandshakes(options: SuiteOptions): Promise<HandshakeReport> {
  const rounds = options.rounds ?? (options.quick ? 2 : 5);
  const warmupMs = options.quick ? 500 : 1000;
  const durationMs = options.quick ? 2000 : 5000;
  const pinning = detectPinning();
  const { list, notes } = contenders();
  console.log(`handshake benchmark: ${rounds} rounds, ${warmupMs} ms warm-up + ${durationMs} ms window; ${pinning.note}`);
  for (const note of notes) console.log(note);

  const samples = await alternatingRounds(
    list,
    rounds,
    (contender, round) => sampleOnce(contender, round, pinning, warmupMs, durationMs),
    (contender, round, sample) => console.log(`  round ${round + 1}/${rounds} ${contender.name.padEnd(9)} ${progress(sample)}`),
  );
  const summaries = list.map((c) => summarize(c.name, samples.get(c.name)!));
  const rate = (name: string): number => summaries.find((s) => s.name === name)?.medianHandshakesPerSecond ?? Number.NaN;
  const cost = (name: string): number => summaries.find((s) => s.name === name)?.medianServerMicroseconds ?? Number.NaN;
  const ratio = rate('duplex') / rate('ws');
  const cpuRatio = cost('ws') / cost('duplex');
  const date = new Date().toISOString();
  const report: HandshakeReport = {
    date,
    machine: machineDescription(),
    node: process.version,
    pinning: pinning.note,
    rounds,
    concurrency: CONCURRENCY,
    warmupMs,
    durationMs,
    notes,
    contenders: summaries,
    ratio: Number.isFinite(ratio) ? ratio : null,
    cpuRatio: Number.isFinite(cpuRatio) ? cpuRatio : null,
  };
  console.log(`\n${handshakeMarkdown(report)}`);
  console.log(`results written to ${writeResults('handshakes', date, report)}`);
  return report;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runHandshakes(parseSuiteArgs());
}
