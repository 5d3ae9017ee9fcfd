/**
 * One sample of the echo benchmark: a fresh server pinned to one CPU, a fresh load generator
 * pinned to the other, the server's and the machine's CPU time sampled over the measured
 * window, and the server killed by PID afterwards. A run that other work on the machine
 * disturbed is repeated.
 */
import { fileURLToPath } from 'node:url';
import { collectOutput, spawnChild, stopChild, waitForLine } from './child-processes.js';
import type { MessageType } from './client-frame.js';
import type { LoadResult } from './load-output.js';
import { LOAD_CPU, SERVER_CPU, type Pinning } from './pinning.js';
import { windowCpuMeter } from './process-cpu.js';
import { QUIET_THRESHOLD, waitForQuiet } from './quiet.js';

export interface Scenario {
  title: string;
  type: MessageType;
  size: number;
  connections: number;
  inflight: number;
}

export interface Contender {
  name: string;
  script: string;
  env: NodeJS.ProcessEnv;
  /** Talks raw TCP: no handshake, our frames come straight back. */
  raw: boolean;
}

interface Measurement extends LoadResult {
  /** Server CPU time in the window as a fraction of one core; 1 means the server was saturated. */
  serverCpu?: number;
  /** CPU used by other processes in the window, in cores; well above 0 means a disturbed run. */
  otherCpu?: number;
}

export interface Sample extends Partial<Measurement> {
  round: number;
  /** Runs made for this sample: a run disturbed by other work on the machine is repeated. */
  attempts: number;
  /** Still disturbed after the last attempt. */
  disturbed?: boolean;
  error?: string;
}

/** How every run is made: where processes go, and how long warm-up and window last. */
export interface RunPlan {
  pinning: Pinning;
  warmupMs: number;
  durationMs: number;
}

const READY_TIMEOUT_MS = 10_000;
const MAX_ATTEMPTS = 3;
const QUIET_WAIT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;
/** Load generator time beyond warm-up and window: connecting, handshakes, process start. */
const LOAD_MARGIN_MS = 20_000;

const LOAD_SCRIPT = fileURLToPath(new URL('./load.js', import.meta.url));

function loadArguments(scenario: Scenario, contender: Contender, port: string, plan: RunPlan): string[] {
  const args = [
    LOAD_SCRIPT,
    '--port', port,
    '--connections', String(scenario.connections),
    '--inflight', String(scenario.inflight),
    '--size', String(scenario.size),
    '--type', scenario.type,
    '--warmup', String(plan.warmupMs),
    '--duration', String(plan.durationMs),
  ];
  return contender.raw ? [...args, '--raw'] : args;
}


/** CPU used by neither server nor load generator: other work on the machine skewing the run. */
function otherCpu(machine: number | undefined, server: number | undefined, load: number): number | undefined {
  if (machine === undefined || server === undefined) return undefined;
  return Math.max(0, machine - server - load);
}

/** One fresh server, one load generator run against it, then the server is killed by PID. */
async function measure(scenario: Scenario, contender: Contender, plan: RunPlan): Promise<Measurement> {
  const [serverCommand, serverArgs] = plan.pinning.nodeCommand(SERVER_CPU, [contender.script, '0']);
  const server = spawnChild(serverCommand, serverArgs, contender.env);
  try {
    const [, port] = await waitForLine(server, /^READY (\d+)$/, READY_TIMEOUT_MS);
    const [loadCommand, loadArgs] = plan.pinning.nodeCommand(LOAD_CPU, loadArguments(scenario, contender, port!, plan));
    const load = spawnChild(loadCommand, loadArgs);
    const meter = windowCpuMeter(server.process.pid!);
    const limit = plan.warmupMs + plan.durationMs + LOAD_MARGIN_MS;
    const output = await collectOutput(load, limit, (line) => meter.onLine(line));
    const result = JSON.parse(output.trim().split('\n').pop()!) as LoadResult;
    const serverCpu = meter.server();
    return { ...result, serverCpu, otherCpu: otherCpu(meter.machine(), serverCpu, result.loadCpu) };
  } finally {
    await stopChild(server, STOP_TIMEOUT_MS);
  }
}

/** One sample: waits for a quiet machine first, and repeats a run that other work disturbed. */
export async function takeSample(round: number, scenario: Scenario, contender: Contender, plan: RunPlan): Promise<Sample> {
  let sample: Sample = { round, attempts: 0 };
  for (let attempts = 1; attempts <= MAX_ATTEMPTS; attempts++) {
    await waitForQuiet(QUIET_WAIT_MS);
    try {
      sample = { round, attempts, ...(await measure(scenario, contender, plan)) };
    } catch (error) {
      return { round, attempts, error: error instanceof Error ? error.message : String(error) };
    }
    if (sample.otherCpu === undefined || sample.otherCpu <= QUIET_THRESHOLD) return sample;
  }
  return { ...sample, disturbed: true };
}
