/**
 * Waiting for a quiet machine before a measurement. On a shared machine other processes (builds,
 * test runs) take whole cores for seconds at a time; starting a run in the middle of one would
 * measure them, not the contender.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { machineCpuSeconds } from './process-cpu.js';

/** Other work above this, in cores, counts as a disturbance. */
export const QUIET_THRESHOLD = 0.25;
const SAMPLE_MS = 300;

async function busyCores(): Promise<number | undefined> {
  const before = machineCpuSeconds();
  const start = process.hrtime.bigint();
  await sleep(SAMPLE_MS);
  const after = machineCpuSeconds();
  if (before === undefined || after === undefined) return undefined;
  return (after - before) / (Number(process.hrtime.bigint() - start) / 1e9);
}

/** Resolves true once the machine is quiet, false when it stayed busy for `maxWaitMs`. */
export async function waitForQuiet(maxWaitMs: number): Promise<boolean> {
  const deadline = Date.now() + maxWaitMs;
  do {
    const busy = await busyCores();
    if (busy === undefined || busy < QUIET_THRESHOLD) return true;
  } while (Date.now() < deadline);
  return false;
}
