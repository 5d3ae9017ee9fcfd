/**
 * CPU over a measured window, taken by the load generator itself: the hub's (from /proc, by its
 * PID), the load generator's own, and the rest of the machine's. Measuring in the load generator
 * lets it repeat a step that other work on the shared machine disturbed, without restarting a
 * search that took a minute to reach that step.
 */
import { performance } from 'node:perf_hooks';
import { cpuSeconds, machineCpuSeconds } from './process-cpu.js';

export interface WindowCpu {
  /** The hub, as a fraction of one core: near 1 means the hub was the bottleneck. */
  serverCpu?: number;
  /** This process. */
  loadCpu: number;
  /** Everything else on the machine, in cores. */
  otherCpu?: number;
}

export class WindowCpuMeter {
  private readonly server: number | undefined;
  private readonly machine: number | undefined;
  private readonly own = process.cpuUsage();
  private readonly start = performance.now();

  constructor(private readonly serverPid: number | undefined) {
    this.server = serverPid === undefined ? undefined : cpuSeconds(serverPid);
    this.machine = machineCpuSeconds();
  }

  read(): WindowCpu {
    const seconds = (performance.now() - this.start) / 1000;
    const own = process.cpuUsage(this.own);
    const loadCpu = (own.user + own.system) / 1e6 / seconds;
    const server = this.serverPid === undefined ? undefined : cpuSeconds(this.serverPid);
    const machine = machineCpuSeconds();
    const serverCpu = server === undefined || this.server === undefined ? undefined : (server - this.server) / seconds;
    const machineCpu = machine === undefined || this.machine === undefined ? undefined : (machine - this.machine) / seconds;
    const otherCpu = machineCpu === undefined || serverCpu === undefined ? undefined : Math.max(0, machineCpu - serverCpu - loadCpu);
    return { loadCpu, ...(serverCpu === undefined ? {} : { serverCpu }), ...(otherCpu === undefined ? {} : { otherCpu }) };
  }
}
