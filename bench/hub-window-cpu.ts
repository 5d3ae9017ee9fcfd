/**
 * CPU over a measured window, taken by the load generator itself: the hub's (from /proc, by the
 * PIDs of its processes), the load generator's own, and the rest of the machine's. Measuring in
 * the load generator lets it repeat a step that other work on the shared machine disturbed,
 * without restarting a search that took a minute to reach that step.
 */
import { performance } from 'node:perf_hooks';
import { cpuSeconds, machineCpuSeconds } from './process-cpu.js';

export interface WindowCpu {
  /** The hub (all its processes together), as a fraction of one core: near 1 on one core means the hub was the bottleneck. */
  serverCpu?: number;
  /** Each of the hub's processes, in the order their PIDs were given; only when there are several. */
  serverCpus?: number[];
  /** This process. */
  loadCpu: number;
  /** Everything else on the machine, in cores. */
  otherCpu?: number;
}

export class WindowCpuMeter {
  private readonly servers: (number | undefined)[];
  private readonly machine: number | undefined;
  private readonly own = process.cpuUsage();
  private readonly start = performance.now();

  constructor(private readonly serverPids: readonly number[]) {
    this.servers = serverPids.map(cpuSeconds);
    this.machine = machineCpuSeconds();
  }

  read(): WindowCpu {
    const seconds = (performance.now() - this.start) / 1000;
    const own = process.cpuUsage(this.own);
    const loadCpu = (own.user + own.system) / 1e6 / seconds;
    const servers = this.serverPids.map((pid, i) => {
      const [before, after] = [this.servers[i], cpuSeconds(pid)];
      return before === undefined || after === undefined ? undefined : (after - before) / seconds;
    });
    const known = servers.every((cpu): cpu is number => cpu !== undefined) ? servers : undefined;
    const serverCpu = known === undefined || known.length === 0 ? undefined : known.reduce((a, b) => a + b, 0);
    const machine = machineCpuSeconds();
    const machineCpu = machine === undefined || this.machine === undefined ? undefined : (machine - this.machine) / seconds;
    const otherCpu = machineCpu === undefined || serverCpu === undefined ? undefined : Math.max(0, machineCpu - serverCpu - loadCpu);
    return {
      loadCpu,
      ...(serverCpu === undefined ? {} : { serverCpu }),
      ...(known !== undefined && known.length > 1 ? { serverCpus: known } : {}),
      ...(otherCpu === undefined ? {} : { otherCpu }),
    };
  }
}
