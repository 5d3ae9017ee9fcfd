/**
 * File transfer over loopback: `duplex file send` → `duplex file receive` against a plain nc pipe
 * (`nc -l 127.0.0.1 PORT > out` ← `nc -N 127.0.0.1 PORT < file`, Debian's netcat-openbsd) moving
 * the same file, in the same run. duplex also hashes the file on both ends, syncs it and renames
 * it; nc only copies bytes.
 *
 *   node dist/bench/file-transfer.js [--quick] [--rounds N] [--size MiB] [--dir DIR]
 *
 * Every run is a fresh receiver pinned to CPU 0 and a fresh sender pinned to CPU 1. The time runs
 * from spawning the sender until the file is complete: for nc when both processes have exited,
 * for duplex when the sender exits, which it does once the receiver has confirmed the hash (so it
 * includes node's start-up and the loading of the CLI, some 0.2 s). duplex's own figure, from
 * connecting to the confirmation, is reported as well. Rounds alternate the order; medians are
 * reported. Each received file is checked against the source's SHA-256 after the clock has
 * stopped.
 *
 * The files live in --dir, by default /dev/shm (memory), so that the disk does not decide the
 * result; both contenders write to the same place.
 */
import { spawnSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from './free-port.js';
import { alternatingRounds } from './alternating-rounds.js';
import { collectOutput, spawnChild, stopChild, waitForLine } from './child-processes.js';
import { detectPinning, LOAD_CPU, SERVER_CPU, type Pinning } from './pinning.js';
import { waitForQuiet } from './quiet.js';
import { decimal, machineDescription, table, writeResults } from './report-format.js';
import { median } from './stats.js';

export interface FileTransferOptions {
  quick: boolean;
  rounds?: number;
  /** File size in MiB. */
  sizeMiB?: number;
  dir?: string;
}

interface Sample {
  round: number;
  /** Spawn of the sender to the file complete, in seconds. */
  seconds?: number;
  /** duplex only: its own time, connect to confirmation. */
  transferSeconds?: number;
  error?: string;
}

interface ContenderSummary {
  name: string;
  samples: Sample[];
  medianMegabytesPerSecond: number;
  /** duplex only. */
  medianTransferMegabytesPerSecond?: number;
}

export interface FileTransferReport {
  date: string;
  machine: string;
  node: string;
  nc: string;
  pinning: string;
  rounds: number;
  bytes: number;
  dir: string;
  contenders: ContenderSummary[];
  /** duplex MB/s over nc MB/s, both end to end. */
  ratio: number | null;
  /** duplex's own transfer time against nc end to end. */
  transferRatio: number | null;
}

interface Contender {
  name: 'nc' | 'duplex';
  run(paths: Paths, pinning: Pinning): Promise<Omit<Sample, 'round'>>;
}

interface Paths {
  source: string;
  sha256: string;
  /** Emptied before every run. */
  outDir: string;
}

const TARGET = 0.8;
const RUN_LIMIT_MS = 300_000;
const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const QUIET_WAIT_MS = 20_000;
const MB = 1e6;

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

/** `command args…` on `cpu` when pinning works. */
function pinned(pinning: Pinning, cpu: number, command: string, args: string[]): [string, string[]] {
  return pinning.pinned ? ['taskset', ['-c', String(cpu), command, ...args]] : [command, args];
}

/** Whether something listens on 127.0.0.1:port, from /proc: connecting would use up nc's one accept. */
function listening(port: number): boolean {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'latin1')
    .split('\n')
    .some((line) => {
      const fields = line.trim().split(/\s+/);
      return fields[1] === local && fields[3] === '0A';
    });
}

async function waitListening(port: number): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!listening(port)) {
    if (Date.now() > deadline) throw new Error(`nothing listens on port ${port} after ${READY_TIMEOUT_MS} ms`);
    await sleep(5);
  }
}

const nc: Contender = {
  name: 'nc',
  async run({ source, outDir }, pinning) {
    const port = String(await freePort());
    const out = path.join(outDir, 'nc.out');
    // The shell only sets up the redirection; exec leaves nc itself, pinned, in its place.
    const receiver = spawnChild(...pinned(pinning, SERVER_CPU, 'sh', ['-c', 'exec nc -l 127.0.0.1 "$0" > "$1"', port, out]));
    try {
      await waitListening(Number(port));
      const received = collectOutput(receiver, RUN_LIMIT_MS);
      const start = performance.now();
      const sender = spawnChild(...pinned(pinning, LOAD_CPU, 'sh', ['-c', 'exec nc -N 127.0.0.1 "$0" < "$1"', port, source]));
      await Promise.all([collectOutput(sender, RUN_LIMIT_MS), received]);
      return { seconds: (performance.now() - start) / 1000 };
    } finally {
      await stopChild(receiver, STOP_TIMEOUT_MS);
    }
  },
};

const FINAL_LINE = /^sent \S+: .* in ([\d.]+) s, [\d.]+ MB\/s, sha256 ([0-9a-f]{64}) verified$/;

const duplex: Contender = {
  name: 'duplex',
  async run({ source, sha256, outDir }, pinning) {
    const receiver = spawnChild(...pinned(pinning, SERVER_CPU, process.execPath, [CLI, 'file', 'receive', '--port', '0', '--dir', outDir]));
    try {
      const [, address] = await waitForLine(receiver, /^listening on (\S+)$/, READY_TIMEOUT_MS);
      const start = performance.now();
      const sender = spawnChild(...pinned(pinning, LOAD_CPU, process.execPath, [CLI, 'file', 'send', address!, source]));
      const stdout = await collectOutput(sender, RUN_LIMIT_MS);
      const seconds = (performance.now() - start) / 1000;
      const match = stdout.trim().match(FINAL_LINE);
      if (!match) throw new Error(`unexpected output: ${stdout.trim()}`);
      if (match[2] !== sha256) throw new Error(`sender reports sha256 ${match[2]}, expected ${sha256}`);
      return { seconds, transferSeconds: Number(match[1]) };
    } finally {
      await stopChild(receiver, STOP_TIMEOUT_MS);
    }
  },
};

/** Pseudo-random bytes (AES-CTR over zeros), written 1 MiB at a time; returns their SHA-256. */
async function writeSource(file: string, bytes: number): Promise<string> {
  const hash = createHash('sha256');
  const stream = createCipheriv('aes-256-ctr', createHash('sha256').update('duplex-bench').digest(), Buffer.alloc(16));
  const zeros = Buffer.alloc(1 << 20);
  const handle = await open(file, 'w');
  try {
    for (let written = 0; written < bytes; ) {
      const chunk = stream.update(zeros.subarray(0, Math.min(zeros.length, bytes - written)));
      await handle.write(chunk);
      hash.update(chunk);
      written += chunk.length;
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  const handle = await open(file, 'r');
  try {
    for await (const chunk of handle.createReadStream({ highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  } finally {
    await handle.close().catch(() => {});
  }
  return hash.digest('hex');
}

function emptyDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
}

async function sample(contender: Contender, round: number, paths: Paths, pinning: Pinning): Promise<Sample> {
  emptyDir(paths.outDir);
  await waitForQuiet(QUIET_WAIT_MS);
  try {
    const result = await contender.run(paths, pinning);
    const received = path.join(paths.outDir, contender.name === 'nc' ? 'nc.out' : path.basename(paths.source));
    const sha256 = await sha256Of(received);
    if (sha256 !== paths.sha256) throw new Error(`received file has sha256 ${sha256}, expected ${paths.sha256}`);
    return { round, ...result };
  } catch (error) {
    return { round, error: error instanceof Error ? error.message : String(error) };
  } finally {
    emptyDir(paths.outDir);
  }
}

function summarize(name: string, samples: Sample[], bytes: number): ContenderSummary {
  const ok = samples.filter((s) => s.error === undefined);
  const summary: ContenderSummary = { name, samples, medianMegabytesPerSecond: median(ok.map((s) => bytes / MB / s.seconds!)) };
  const transfers = ok.flatMap((s) => (s.transferSeconds === undefined ? [] : [bytes / MB / s.transferSeconds]));
  if (transfers.length > 0) summary.medianTransferMegabytesPerSecond = median(transfers);
  return summary;
}

/** netcat-openbsd names itself and its version on the first line of its usage. */
function ncVersion(): string {
  const probe = spawnSync('nc', ['-h'], { encoding: 'utf8', timeout: 5000 });
  return `${probe.stdout ?? ''}${probe.stderr ?? ''}`.split('\n')[0]?.trim() || 'nc (unknown version)';
}

export function fileTransferMarkdown(report: FileTransferReport): string {
  const rates = (s: ContenderSummary): number[] => s.samples.flatMap((x) => (x.seconds === undefined ? [] : [report.bytes / MB / x.seconds]));
  const range = (s: ContenderSummary): string => {
    const r = rates(s);
    return r.length === 0 ? 'n/a' : `${decimal(Math.min(...r), 0)}–${decimal(Math.max(...r), 0)}`;
  };
  const lines = [
    `File transfer, ${report.date.slice(0, 10)}: ${report.machine}, Node ${report.node}, ${report.nc}`,
    `${report.rounds} rounds, ${decimal(report.bytes / MB, 1)} MB file in ${report.dir}; ${report.pinning}`,
    '',
    ...table(
      ['contender', 'MB/s end to end (median)', 'min–max', 'MB/s connect to verdict (median)', 'ok runs'],
      ['l', 'r', 'r', 'r', 'r'],
      report.contenders.map((s) => [
        s.name,
        decimal(s.medianMegabytesPerSecond, 0),
        range(s),
        s.medianTransferMegabytesPerSecond === undefined ? '–' : decimal(s.medianTransferMegabytesPerSecond, 0),
        `${s.samples.filter((x) => x.error === undefined).length}/${s.samples.length}`,
      ]),
    ),
    '',
    `duplex/nc end to end (ratio of medians): ${decimal(report.ratio ?? undefined, 2)} (target ≥ ${TARGET})`,
    `duplex connect-to-verdict / nc end to end: ${decimal(report.transferRatio ?? undefined, 2)}`,
  ];
  const failures = report.contenders.flatMap((s) =>
    s.samples.filter((x) => x.error !== undefined).map((x) => `- ${s.name} round ${x.round + 1}: ${x.error}`),
  );
  if (failures.length > 0) lines.push('', 'Failed runs:', ...failures);
  return lines.join('\n');
}

function defaultDir(): string {
  return existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
}

export async function runFileTransfer(options: FileTransferOptions): Promise<FileTransferReport> {
  const rounds = options.rounds ?? (options.quick ? 3 : 7);
  const bytes = (options.sizeMiB ?? (options.quick ? 256 : 1024)) * (1 << 20);
  const dir = options.dir ?? defaultDir();
  const pinning = detectPinning();
  const work = mkdtempSync(path.join(dir, 'duplex-bench-file-'));
  try {
    const source = path.join(work, 'source.bin');
    const outDir = path.join(work, 'out');
    mkdirSync(outDir);
    console.log(`file transfer benchmark: ${rounds} rounds of ${decimal(bytes / MB, 1)} MB in ${dir}; ${pinning.note}`);
    const paths: Paths = { source, sha256: await writeSource(source, bytes), outDir };
    const list = [nc, duplex];
    // One unmeasured run each: page cache, memory the receivers will write into, node's compile cache.
    for (const contender of list) {
      const warm = await sample(contender, -1, paths, pinning);
      if (warm.error !== undefined) console.log(`  warm-up ${contender.name} FAILED: ${warm.error}`);
    }
    const samples = await alternatingRounds(
      list,
      rounds,
      (contender, round) => sample(contender, round, paths, pinning),
      (contender, round, s) => {
        const shown = s.error !== undefined ? `FAILED: ${s.error}` : `${decimal(bytes / MB / s.seconds!, 0)} MB/s`;
        const own = s.transferSeconds === undefined ? '' : ` (connect to verdict ${decimal(bytes / MB / s.transferSeconds, 0)} MB/s)`;
        console.log(`  round ${round + 1}/${rounds} ${contender.name.padEnd(6)} ${shown}${own}`);
      },
    );
    const contenders = list.map((c) => summarize(c.name, samples.get(c.name)!, bytes));
    const [ncSummary, duplexSummary] = contenders as [ContenderSummary, ContenderSummary];
    const ratio = duplexSummary.medianMegabytesPerSecond / ncSummary.medianMegabytesPerSecond;
    const transferRatio = (duplexSummary.medianTransferMegabytesPerSecond ?? Number.NaN) / ncSummary.medianMegabytesPerSecond;
    const date = new Date().toISOString();
    const report: FileTransferReport = {
      date,
      machine: machineDescription(),
      node: process.version,
      nc: ncVersion(),
      pinning: pinning.note,
      rounds,
      bytes,
      dir,
      contenders,
      ratio: Number.isFinite(ratio) ? ratio : null,
      transferRatio: Number.isFinite(transferRatio) ? transferRatio : null,
    };
    console.log(`\n${fileTransferMarkdown(report)}`);
    console.log(`results written to ${writeResults('file-transfer', date, report)}`);
    return report;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function parseOptions(): FileTransferOptions {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      size: { type: 'string' },
      dir: { type: 'string' },
    },
  });
  const positive = (value: string | undefined, flag: string): number | undefined => {
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer`);
    return n;
  };
  return { quick: values.quick ?? false, rounds: positive(values.rounds, '--rounds'), sizeMiB: positive(values.size, '--size'), dir: values.dir };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runFileTransfer(parseOptions());
}
