/**
 * One sample of a benchmark driven by a load-generator process: a fresh server pinned to one CPU, a
 * fresh load generator pinned to the other, the server's and the machine's CPU time sampled over the
 * window the load generator marks (WINDOW_START / WINDOW_END), and the server killed by PID
 * afterwards. It waits for a quiet machine first and repeats a run that other work disturbed.
 *
 * The same procedure as echo-run.ts, for any load generator whose last stdout line is a JSON object
 * with its `loadCpu`.
 */
import { collectOutput, spawnChild, stopChild, waitForLine } from './child-processes.js';
import { LOAD_CPU, SERVER_CPU, type Pinning } from './pinning.js';
import { windowCpuMeter } from './process-cpu.js';
import { QUIET_THRESHOLD, waitForQuiet } from './quiet.js';

export interface ServerCommand {
  script: string;
  /** After the port argument. */
  args: string[];
  env: NodeJS.ProcessEnv;
}

export interface LoadCommand {
  script: string;
  args(port: string): string[];
  /** Kills the load generator and fails the run after this long. */
  timeLimitMs: number;
}

/** What every load generator reports: its CPU time in the window, as a fraction of one core. */
export interface LoadReport {
  loadCpu: number;
}

export interface PinnedSample<R extends LoadReport> {
  round: number;
  /** Runs made for this sample: a run disturbed by other work on the machine is repeated. */
  attempts: number;
  result?: R;
  /** Server CPU time in the window as a fraction of one core; 1 means the server was saturated. */
  serverCpu?: number;
  /** CPU used by other processes in the window, in cores; well above 0 means a disturbed run. */
  otherCpu?: number;
  /** Still disturbed after the last attempt. */
  disturbed?: boolean;
  error?: string;
}

const READY_TIMEOUT_MS = 10_000;
const MAX_ATTEMPTS = 5;
const QUIET_WAIT_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;


type Measured<R extends LoadReport> = Pick<PinnedSample<R>, 'result' | 'serverCpu' | 'otherCpu'>;

async function measure<R extends LoadReport>(server: ServerCommand, load: LoadCommand, pinning: Pinning): Promise<Measured<R>> {
  const [serverCommand, serverArgs] = pinning.nodeCommand(SERVER_CPU, [server.script, '0', ...server.args]);
  const serverChild = spawnChild(serverCommand, serverArgs, server.env);
  try {
    const [, port] = await waitForLine(serverChild, /^READY (\d+)$/, READY_TIMEOUT_MS);
    const [loadCommand, loadArgs] = pinning.nodeCommand(LOAD_CPU, [load.script, ...load.args(port!)]);
    const meter = windowCpuMeter(serverChild.process.pid!);
    const output = await collectOutput(spawnChild(loadCommand, loadArgs), load.timeLimitMs, (line) => meter.onLine(line));
    const result = JSON.parse(output.trim().split('\n').pop()!) as R;
    const serverCpu = meter.server();
    const machine = meter.machine();
    // CPU used by neither server nor load generator: other work on the machine skewing the run.
    const otherCpu = machine === undefined || serverCpu === undefined ? undefined : Math.max(0, machine - serverCpu - result.loadCpu);
    return { result, serverCpu, otherCpu };
  } finally {
    await stopChild(serverChild, STOP_TIMEOUT_MS);
  }
}

export async function takePinnedSample<R extends LoadReport>(
  round: number,
  server: ServerCommand,
  load: LoadCommand,
  pinning: Pinning,
): Promise<PinnedSample<R>> {
  let sample: PinnedSample<R> = { round, attempts: 0 };
  for (let attempts = 1; attempts <= MAX_ATTEMPTS; attempts++) {
    await waitForQuiet(QUIET_WAIT_MS);
    try {
      sample = { round, attempts, ...(await measure<R>(server, load, pinning)) };
    } catch (error) {
      return { round, attempts, error: error instanceof Error ? error.message : String(error) };
    }
    if (sample.otherCpu === undefined || sample.otherCpu <= QUIET_THRESHOLD) return sample;
  }
  return { ...sample, disturbed: true };
}

/**
 * The samples medians are taken over: the successful runs that other work did not disturb, or all
 * successful runs when every one was disturbed (the report counts those).
 */
export function usableSamples<R extends LoadReport>(samples: PinnedSample<R>[]): PinnedSample<R>[] {
  const ok = samples.filter((s) => s.error === undefined);
  const quiet = ok.filter((s) => !s.disturbed);
  return quiet.length > 0 ? quiet : ok;
}

/** Server CPU time per unit of work (message, handshake), in microseconds. */
export function serverMicroseconds<R extends LoadReport>(sample: PinnedSample<R>, perSecond: (result: R) => number): number | undefined {
  if (sample.serverCpu === undefined || sample.result === undefined) return undefined;
  return (sample.serverCpu * 1e6) / perSecond(sample.result);
}
