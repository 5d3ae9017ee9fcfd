/**
 * CPU pinning for the echo benchmark: the server gets CPU 0 and the load generator CPU 1, so
 * they never compete for a core and the scheduler cannot move them around between runs.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';

export const SERVER_CPU = 0;
export const LOAD_CPU = 1;

export interface Pinning {
  pinned: boolean;
  /** Why pinning is off, or which CPUs are used; printed with the results. */
  note: string;
  /** The command line that runs `node args…`, on `cpu` when pinned. */
  nodeCommand(cpu: number, args: string[]): [string, string[]];
}

function tasksetWorks(): boolean {
  const probe = spawnSync('taskset', ['-c', String(LOAD_CPU), process.execPath, '-e', ''], { timeout: 10_000 });
  return probe.error === undefined && probe.status === 0;
}

export function detectPinning(): Pinning {
  const cpus = os.availableParallelism();
  let reason = '';
  if (cpus < 2) reason = `only ${cpus} CPU available`;
  else if (!tasksetWorks()) reason = 'taskset is missing or not permitted';
  if (reason) {
    return {
      pinned: false,
      note: `NOT pinned (${reason}): server and load generator share CPUs, results are less reliable`,
      nodeCommand: (_cpu, args) => [process.execPath, args],
    };
  }
  return {
    pinned: true,
    note: `pinned with taskset: server on CPU ${SERVER_CPU}, load generator on CPU ${LOAD_CPU}`,
    nodeCommand: (cpu, args) => ['taskset', ['-c', String(cpu), process.execPath, ...args]],
  };
}
