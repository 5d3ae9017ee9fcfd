/**
 * Echo throughput: our WebSocket server against `ws` (with and without bufferutil) and a raw
 * TCP echo, in the same run, on the same machine.
 *
 *   node dist/bench/echo.js [--quick] [--rounds N]
 *
 * Each scenario runs several rounds; each round runs every contender once, in an order rotated
 * by one every round, so slow drift of the machine (thermal, noisy neighbours) spreads over all
 * contenders instead of hitting whichever always runs last. Per contender the median over the
 * rounds is reported. Every run is a fresh server process pinned to CPU 0 and a fresh load
 * generator pinned to CPU 1.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { echoMarkdown } from './echo-report.js';
import { takeSample, type Contender, type RunPlan, type Sample, type Scenario } from './echo-run.js';
import { detectPinning } from './pinning.js';
import { median } from './stats.js';

export interface ContenderSummary {
  name: string;
  samples: Sample[];
  medianMessagesPerSecond: number;
  medianMegabytesPerSecond: number;
  medianServerCpu: number;
  medianLoadCpu: number;
  medianOtherCpu: number;
}

export interface ScenarioSummary {
  scenario: Scenario;
  contenders: ContenderSummary[];
  /** "a/b" -> median msgs/s of a over median msgs/s of b; null when either is missing. */
  ratios: Record<string, number | null>;
}

export interface EchoReport {
  date: string;
  machine: string;
  node: string;
  pinning: string;
  rounds: number;
  warmupMs: number;
  durationMs: number;
  notes: string[];
  scenarios: ScenarioSummary[];
}

export interface EchoOptions {
  quick: boolean;
  rounds?: number;
}

export const SCENARIOS: Scenario[] = [
  { title: '(a) 64 B text, 100 connections × 8 in flight', type: 'text', size: 64, connections: 100, inflight: 8 },
  { title: '(b) 16 KiB binary, 10 connections × 4 in flight', type: 'binary', size: 16 * 1024, connections: 10, inflight: 4 },
];

const RATIOS: [string, string][] = [
  ['duplex', 'ws'],
  ['duplex', 'ws-no-bufferutil'],
  ['duplex', 'net'],
  ['ws', 'net'],
];

const here = (relative: string): string => fileURLToPath(new URL(relative, import.meta.url));
const DUPLEX_SERVER_MODULE = here('../src/websocket/server.js');
const RESULTS_DIR = here('../../bench/results');

function withoutBufferUtilSwitch(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.WS_NO_BUFFER_UTIL;
  return env;
}

function contenders(): { list: Contender[]; notes: string[] } {
  const list: Contender[] = [];
  const notes: string[] = [];
  if (existsSync(DUPLEX_SERVER_MODULE)) {
    list.push({ name: 'duplex', script: here('./servers/duplex-echo.js'), env: process.env, raw: false });
  } else {
    notes.push('duplex skipped: dist/src/websocket/server.js is not built yet');
  }
  list.push(
    { name: 'ws', script: here('./servers/ws-echo.js'), env: withoutBufferUtilSwitch(), raw: false },
    {
      name: 'ws-no-bufferutil',
      script: here('./servers/ws-echo.js'),
      env: { ...process.env, WS_NO_BUFFER_UTIL: '1' },
      raw: false,
    },
    { name: 'net', script: here('./servers/net-echo.js'), env: process.env, raw: true },
  );
  return { list, notes };
}

const percent = (fraction: number | undefined): string =>
  fraction === undefined ? 'n/a' : `${Math.round(fraction * 100)}%`;

function progress(sample: Sample): string {
  if (sample.error !== undefined) return `FAILED: ${sample.error}`;
  const rate = Math.round(sample.messagesPerSecond!).toLocaleString('en-US');
  const cpu = `server ${percent(sample.serverCpu)}, load ${percent(sample.loadCpu)}, other ${percent(sample.otherCpu)}`;
  const retried = sample.attempts > 1 ? `, attempt ${sample.attempts}` : '';
  return `${rate} msgs/s (CPU: ${cpu}${retried})${sample.disturbed ? ' DISTURBED' : ''}`;
}

function rotate<T>(items: T[], by: number): T[] {
  const shift = by % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

const defined = (values: (number | undefined)[]): number[] => values.filter((v) => v !== undefined);

function summarize(name: string, samples: Sample[]): ContenderSummary {
  const ok = samples.filter((s) => s.error === undefined);
  return {
    name,
    samples,
    medianMessagesPerSecond: median(ok.map((s) => s.messagesPerSecond!)),
    medianMegabytesPerSecond: median(ok.map((s) => s.megabytesPerSecond!)),
    medianServerCpu: median(defined(ok.map((s) => s.serverCpu))),
    medianLoadCpu: median(ok.map((s) => s.loadCpu!)),
    medianOtherCpu: median(defined(ok.map((s) => s.otherCpu))),
  };
}

function ratiosOf(summaries: ContenderSummary[]): Record<string, number | null> {
  const medianOf = (name: string): number =>
    summaries.find((s) => s.name === name)?.medianMessagesPerSecond ?? Number.NaN;
  const ratios: Record<string, number | null> = {};
  for (const [a, b] of RATIOS) {
    const ratio = medianOf(a) / medianOf(b);
    ratios[`${a}/${b}`] = Number.isFinite(ratio) ? ratio : null;
  }
  return ratios;
}

async function runScenario(
  scenario: Scenario,
  list: Contender[],
  rounds: number,
  plan: RunPlan,
): Promise<ScenarioSummary> {
  console.log(`\n${scenario.title}`);
  const samples = new Map<string, Sample[]>(list.map((c) => [c.name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const contender of rotate(list, round)) {
      const sample = await takeSample(round, scenario, contender, plan);
      console.log(`  round ${round + 1}/${rounds} ${contender.name.padEnd(17)} ${progress(sample)}`);
      samples.get(contender.name)!.push(sample);
    }
  }
  const summaries = list.map((c) => summarize(c.name, samples.get(c.name)!));
  return { scenario, contenders: summaries, ratios: ratiosOf(summaries) };
}

function machineDescription(): string {
  const cpus = os.cpus();
  return `${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${os.type()} ${os.release()}`;
}

function writeJson(report: EchoReport): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = `${RESULTS_DIR}/echo-${report.date.replace(/[:.]/g, '-')}.json`;
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  return file;
}

export async function runEcho(options: EchoOptions): Promise<EchoReport> {
  const rounds = options.rounds ?? (options.quick ? 2 : 5);
  const plan: RunPlan = {
    pinning: detectPinning(),
    warmupMs: options.quick ? 500 : 1000,
    durationMs: options.quick ? 2000 : 5000,
  };
  const { pinning, warmupMs, durationMs } = plan;
  const { list, notes } = contenders();
  console.log(`echo benchmark: ${rounds} rounds, ${warmupMs} ms warm-up + ${durationMs} ms window; ${pinning.note}`);
  for (const note of notes) console.log(note);

  const scenarios: ScenarioSummary[] = [];
  for (const scenario of SCENARIOS) {
    scenarios.push(await runScenario(scenario, list, rounds, plan));
  }
  const report: EchoReport = {
    date: new Date().toISOString(),
    machine: machineDescription(),
    node: process.version,
    pinning: pinning.note,
    rounds,
    warmupMs,
    durationMs,
    notes,
    scenarios,
  };
  console.log(`\n${echoMarkdown(report)}`);
  console.log(`results written to ${writeJson(report)}`);
  return report;
}

function parseRounds(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const rounds = Number(value);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds needs a positive integer');
  return rounds;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, rounds: { type: 'string' } } });
  await runEcho({ quick: values.quick ?? false, rounds: parseRounds(values.rounds) });
}
