/**
 * One run of a hub benchmark against a hub of one or several nodes: with several, the nodes share
 * a fresh redis-server (their engine). Every server process — the nodes and redis-server — is
 * pinned to CPU 0 and the load generator to CPU 1, as in hub-pinned-run.ts; the load generator is
 * told every node's port and every server PID (the nodes', then redis-server's), and everything is
 * killed by PID at the end. Waits for a quiet machine first.
 *
 * Several nodes on one core measure what the path through Redis costs, not what several cores
 * would gain: the nodes and Redis take turns on CPU 0.
 */
import { collectOutput, spawnChild, stopChild, waitForLine, type Child } from './child-processes.js';
import type { HubServer } from './hub-pinned-run.js';
import { LOAD_CPU, SERVER_CPU, type Pinning } from './pinning.js';
import { cpuSeconds } from './process-cpu.js';
import { waitForQuiet } from './quiet.js';
import { RedisServer, type CommandStat } from './redis-server.js';

export interface HubNodes {
  server: HubServer;
  /** 1: a lone node on its in-memory engine; more: nodes on the Redis engine, sharing one redis-server. */
  nodes: number;
}

export interface NodesLoad {
  script: string;
  /** Ports of the nodes in order; PIDs of the nodes, then of redis-server when there is one. */
  args(ports: number[], serverPids: number[]): string[];
  timeLimitMs: number;
  /** Stdout lines between which Redis's command statistics count (the load's end of setup, and of measuring). */
  countFrom?: string;
  countTo?: string;
}

export interface NodesOutput {
  stdout: string;
  nodePids: number[];
  /** Redis's command statistics from `countFrom` (or its start) to `countTo` (or its end)… */
  redisCommands?: CommandStat[];
  /** …and its CPU seconds over the same span, of which the commands' time is a part. */
  redisCpuSeconds?: number;
}

const READY_TIMEOUT_MS = 10_000;
const QUIET_WAIT_MS = 60_000;
const STOP_TIMEOUT_MS = 5_000;

export async function runPinnedNodes(hub: HubNodes, load: NodesLoad, pinning: Pinning): Promise<NodesOutput> {
  await waitForQuiet(QUIET_WAIT_MS);
  const redis = hub.nodes > 1 ? await RedisServer.start(pinning, SERVER_CPU) : undefined;
  const nodes: Child[] = [];
  try {
    const env = redis ? { ...hub.server.env, HUB_BENCH_REDIS: redis.url } : hub.server.env;
    const ports: number[] = [];
    for (let i = 0; i < hub.nodes; i++) {
      const [command, args] = pinning.nodeCommand(SERVER_CPU, [...(hub.server.nodeOptions ?? []), hub.server.script, '0']);
      const node = spawnChild(command, args, env);
      nodes.push(node);
      const [, port] = await waitForLine(node, /^READY (\d+)$/, READY_TIMEOUT_MS);
      ports.push(Number(port));
    }
    const nodePids = nodes.map((n) => n.process.pid!);
    const serverPids = redis ? [...nodePids, redis.pid] : nodePids;
    const [command, args] = pinning.nodeCommand(LOAD_CPU, [load.script, ...load.args(ports, serverPids)]);
    let counting: Promise<void> = Promise.resolve();
    let counted: Promise<CommandStat[]> | undefined;
    let redisCpuFrom = redis ? cpuSeconds(redis.pid) : undefined;
    let redisCpuTo: number | undefined;
    const stdout = await collectOutput(spawnChild(command, args), load.timeLimitMs, (line) => {
      if (redis && line === load.countFrom) {
        redisCpuFrom = cpuSeconds(redis.pid);
        counting = redis.resetStats();
        // Awaited below; until then a failure must not count as unhandled.
        counting.catch(() => {});
      }
      if (redis && line === load.countTo) {
        redisCpuTo = cpuSeconds(redis.pid);
        counted = counting.then(() => redis.commandStats());
        counted.catch(() => {});
      }
    });
    await counting;
    if (!redis) return { stdout, nodePids };
    redisCpuTo ??= cpuSeconds(redis.pid);
    return {
      stdout, nodePids, redisCommands: await (counted ?? redis.commandStats()),
      ...(redisCpuFrom === undefined || redisCpuTo === undefined ? {} : { redisCpuSeconds: redisCpuTo - redisCpuFrom }),
    };
  } finally {
    for (const node of nodes) await stopChild(node, STOP_TIMEOUT_MS);
    await redis?.stop();
  }
}
