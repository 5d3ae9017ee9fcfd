/**
 * Transports: the same message stream (10 and 1,000 messages/s, 100-byte data) delivered to one
 * subscriber of our hub over WebSocket, Server-Sent Events, long-polling and polling every second;
 * bytes on the wire per message, both ways, and publish-to-receive latency.
 *
 *   node dist/bench/transports.js [--quick] [--rounds N]
 *
 * Every run is a fresh hub on CPU 0 and a fresh load generator (publisher + subscriber,
 * hub-transport-load.ts) on CPU 1. Rounds run every transport once, the order rotated each round;
 * the report gives per transport the median over rounds. Method and results: docs/transports.md.
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import { alternatingRounds } from './alternating-rounds.js';
import { TRANSPORTS, type Transport } from './hub-transport-clients.js';
import type { TransportResult } from './hub-transport-load.js';
import { lastJsonLine, runPinned, type HubServer } from './hub-pinned-run.js';
import { detectPinning, type Pinning } from './pinning.js';
import { decimal, integer, machineDescription, percent, table, writeResults } from './report-format.js';
import { median } from './stats.js';
import { parseSuiteArgs, type SuiteOptions } from './suite-args.js';

interface Stream {
  rate: number;
  /** Seconds of publishing; messages = rate × seconds. */
  seconds: number;
}

export interface TransportSample {
  round: number;
  result?: TransportResult;
  error?: string;
}

export interface TransportSummary {
  transport: Transport;
  samples: TransportSample[];
  /** Medians over the rounds that completed. */
  up: number;
  down: number;
  ipTcp: number;
  p50: number;
  p99: number;
  setupBytes: number;
  ok: number;
}

export interface StreamSummary extends Stream {
  messages: number;
  transports: TransportSummary[];
}

export interface TransportsReport {
  date: string;
  machine: string;
  node: string;
  pinning: string;
  rounds: number;
  dataSize: number;
  streams: StreamSummary[];
}

const STREAMS: Stream[] = [{ rate: 10, seconds: 30 }, { rate: 1000, seconds: 10 }];
const QUICK_STREAMS: Stream[] = [{ rate: 10, seconds: 5 }, { rate: 1000, seconds: 2 }];
/** The first second of every stream is left out of the latency figures (but not of the bytes). */
const WARMUP_SECONDS = 1;
const DATA_SIZE = 100;
/** Beyond the stream itself: starting, connecting, the last poll interval, stopping. */
const RUN_ALLOWANCE_MS = 30_000;
// Enough history that a poller a second behind at 1,000 messages/s never finds a gap (`duplex serve --history`).
const HISTORY = 100_000;

const here = (relative: string): string => fileURLToPath(new URL(relative, import.meta.url));

const server: HubServer = { script: here('./servers/hub-server.js'), env: { ...process.env, HUB_BENCH_HISTORY: String(HISTORY) } };

async function takeSample(transport: Transport, stream: Stream, round: number, pinning: Pinning): Promise<TransportSample> {
  const messages = stream.rate * stream.seconds;
  const args = (port: string): string[] => [
    '--port', port,
    '--transport', transport,
    '--rate', String(stream.rate),
    '--messages', String(messages),
    '--data-size', String(DATA_SIZE),
    '--warmup-messages', String(Math.min(messages / 10, stream.rate * WARMUP_SECONDS)),
  ];
  const load = { script: here('./hub-transport-load.js'), args, timeLimitMs: stream.seconds * 1000 + RUN_ALLOWANCE_MS };
  try {
    const result = lastJsonLine<TransportResult>(await runPinned(server, load, pinning));
    return { round, result, ...(result.error ? { error: result.error } : {}) };
  } catch (error) {
    return { round, error: error instanceof Error ? error.message : String(error) };
  }
}

function progress(sample: TransportSample): string {
  const r = sample.result;
  if (!r) return `FAILED: ${sample.error}`;
  const ipTcp = r.perMessage.ipTcp === undefined ? '' : ` + ${decimal(r.perMessage.ipTcp, 1)} IP/TCP`;
  const error = sample.error ? `; ERROR ${sample.error}` : '';
  return `${integer(r.messages)} msgs; B/msg up ${decimal(r.perMessage.up, 1)}, down ${decimal(r.perMessage.down, 1)}${ipTcp}; ` +
    `p50 ${decimal(r.latency.p50, 2)} ms, p99 ${decimal(r.latency.p99, 2)} ms${error}`;
}

function summarize(transport: Transport, samples: TransportSample[]): TransportSummary {
  const ok = samples.flatMap((s) => (s.result && s.error === undefined ? [s.result] : []));
  const of = (pick: (r: TransportResult) => number | undefined): number =>
    median(ok.map(pick).filter((v): v is number => v !== undefined));
  return {
    transport,
    samples,
    up: of((r) => r.perMessage.up),
    down: of((r) => r.perMessage.down),
    ipTcp: of((r) => r.perMessage.ipTcp),
    p50: of((r) => r.latency.p50),
    p99: of((r) => r.latency.p99),
    setupBytes: of((r) => r.setup.up + r.setup.down),
    ok: ok.length,
  };
}

export function transportsMarkdown(report: TransportsReport): string {
  const lines = [
    `${report.date.slice(0, 10)}, ${report.machine}, Node ${report.node}; ${report.pinning}; ` +
      `${report.rounds} rounds (medians); data ${report.dataSize} B per message.`,
    '',
  ];
  for (const stream of report.streams) {
    lines.push(`${integer(stream.rate)} messages/s for ${stream.seconds} s (${integer(stream.messages)} messages)`, '');
    const rows = stream.transports.map((t) => {
      const total = t.up + t.down + t.ipTcp;
      return [
        t.transport,
        decimal(t.up, 1),
        decimal(t.down, 1),
        decimal(t.ipTcp, 1),
        decimal(total, 1),
        percent(report.dataSize / total),
        decimal(t.p50, 2),
        decimal(t.p99, 2),
        integer(t.setupBytes),
        `${t.ok}/${t.samples.length}`,
      ];
    });
    lines.push(...table(
      ['transport', 'up B/msg', 'down B/msg', 'IP+TCP headers B/msg', 'total B/msg', 'data share', 'p50 ms', 'p99 ms', 'setup bytes', 'ok runs'],
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      rows,
    ), '');
  }
  return lines.join('\n');
}

export async function runTransports(options: SuiteOptions): Promise<TransportsReport> {
  const rounds = options.rounds ?? (options.quick ? 1 : 3);
  const streams = options.quick ? QUICK_STREAMS : STREAMS;
  const pinning = detectPinning();
  console.log(`transports benchmark: ${rounds} rounds; ${pinning.note}`);
  const summaries: StreamSummary[] = [];
  for (const stream of streams) {
    const messages = stream.rate * stream.seconds;
    console.log(`\n${integer(stream.rate)} messages/s, ${integer(messages)} messages`);
    const contenders = TRANSPORTS.map((name) => ({ name }));
    const samples = await alternatingRounds(
      contenders, rounds,
      (c, round) => takeSample(c.name, stream, round, pinning),
      (c, round, sample) => console.log(`  round ${round + 1}/${rounds} ${c.name.padEnd(13)} ${progress(sample)}`),
    );
    summaries.push({ ...stream, messages, transports: TRANSPORTS.map((t) => summarize(t, samples.get(t)!)) });
  }
  const report: TransportsReport = {
    date: new Date().toISOString(),
    machine: machineDescription(),
    node: process.version,
    pinning: pinning.note,
    rounds,
    dataSize: DATA_SIZE,
    streams: summaries,
  };
  console.log(`\n${transportsMarkdown(report)}`);
  console.log(`results written to ${writeResults('transports', report.date, report)}`);
  return report;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runTransports(parseSuiteArgs());
}
