/** CPU time of another process and of the whole machine, from Linux's /proc; undefined elsewhere. */
import { readFileSync } from 'node:fs';
import { WINDOW_END, WINDOW_START } from './load-output.js';

/** Kernel clock ticks per second for /proc times; 100 on every mainstream Linux build. */
const CLOCK_TICKS = 100;

export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) may contain spaces; fields after its closing parenthesis are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return (utime + stime) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/**
 * Busy time of all CPUs together. Interrupt time is included because tick-based accounting
 * also charges it to whichever process was running, so the sum matches per-process times.
 */
export function machineCpuSeconds(): number | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0]!.trim().split(/\s+/).map(Number);
    const [, user, nice, system, , , irq, softirq] = fields;
    return (user! + nice! + system! + irq! + softirq!) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

interface CpuSnapshot {
  server?: number;
  machine?: number;
  time: bigint;
}

function snapshot(pid: number): CpuSnapshot {
  return { server: cpuSeconds(pid), machine: machineCpuSeconds(), time: process.hrtime.bigint() };
}

/** Server and whole-machine CPU over the load generator's window, as fractions of one core. */
export function windowCpuMeter(pid: number) {
  let start: CpuSnapshot | undefined;
  let end: CpuSnapshot | undefined;
  const fraction = (key: 'server' | 'machine'): number | undefined => {
    const [from, to] = [start?.[key], end?.[key]];
    if (from === undefined || to === undefined) return undefined;
    return (to - from) / (Number(end!.time - start!.time) / 1e9);
  };
  return {
    onLine(line: string): void {
      if (line === WINDOW_START) start = snapshot(pid);
      if (line === WINDOW_END) end = snapshot(pid);
    },
    server: () => fraction('server'),
    machine: () => fraction('machine'),
  };
}
