/**
 * One run of a hub benchmark: a fresh server pinned to CPU 0, a fresh load generator pinned to
 * CPU 1 that is told the server's port and PID (it measures the server's CPU itself, per window),
 * and the server killed by PID at the end. Waits for a quiet machine first.
 */
import { collectOutput, spawnChild, stopChild, waitForLine } from './child-processes.js';
import { LOAD_CPU, SERVER_CPU, type Pinning } from './pinning.js';
import { waitForQuiet } from './quiet.js';

export interface HubServer {
  script: string;
  env: NodeJS.ProcessEnv;
  /** Node options before the script, e.g. --cpu-prof. */
  nodeOptions?: string[];
}

export interface HubLoad {
  script: string;
  args(port: string, serverPid: number): string[];
  timeLimitMs: number;
}

const READY_TIMEOUT_MS = 10_000;
/** A shared machine: builds and test runs of others come and go; wait a while for them to pass. */
const QUIET_WAIT_MS = 60_000;
const STOP_TIMEOUT_MS = 5_000;

/** Runs the load generator against a fresh server; returns the load generator's stdout. */
export async function runPinned(server: HubServer, load: HubLoad, pinning: Pinning): Promise<string> {
  await waitForQuiet(QUIET_WAIT_MS);
  const [serverCommand, serverArgs] = pinning.nodeCommand(SERVER_CPU, [...(server.nodeOptions ?? []), server.script, '0']);
  const serverChild = spawnChild(serverCommand, serverArgs, server.env);
  try {
    const [, port] = await waitForLine(serverChild, /^READY (\d+)$/, READY_TIMEOUT_MS);
    const [loadCommand, loadArgs] = pinning.nodeCommand(LOAD_CPU, [load.script, ...load.args(port!, serverChild.process.pid!)]);
    return await collectOutput(spawnChild(loadCommand, loadArgs), load.timeLimitMs);
  } finally {
    await stopChild(serverChild, STOP_TIMEOUT_MS);
  }
}

/** The last stdout line, which every hub load generator prints as its JSON result. */
export function lastJsonLine<T>(output: string): T {
  return JSON.parse(output.trim().split('\n').pop()!) as T;
}
