/**
 * A fresh redis-server for one benchmark sample: on a free port of 127.0.0.1, pinned to the CPU it
 * is given, killed by PID at the end. No persistence (`--save '' --appendonly no`): the benchmark
 * measures the engine's path through Redis, not a disk, and every sample starts from an empty Redis.
 * Its command statistics (INFO commandstats: calls and microseconds per command, the commands run
 * inside scripts counted as well) say where Redis spends the time it spends executing commands.
 */
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { spawnChild, stopChild, type Child } from './child-processes.js';
import { freePort } from './free-port.js';
import type { Pinning } from './pinning.js';

const START_TIMEOUT_MS = 10_000;
const POLL_MS = 50;
const STOP_TIMEOUT_MS = 5_000;

export interface CommandStat {
  /** Lower case, as Redis names it: evalsha, publish, xadd, … */
  command: string;
  calls: number;
  /** Microseconds spent executing it, in total. */
  usec: number;
}

/** The version line of the installed redis-server, or undefined when there is none. */
export function redisServerVersion(): string | undefined {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8', timeout: 5_000 });
  return probe.status === 0 ? probe.stdout.trim() : undefined;
}

export class RedisServer {
  private constructor(private readonly child: Child, readonly port: number, private readonly client: Redis) {}

  static async start(pinning: Pinning, cpu: number): Promise<RedisServer> {
    const port = await freePort();
    const args = [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--dir', tmpdir(), '--daemonize', 'no', '--loglevel', 'warning',
    ];
    // taskset execs redis-server, so the child's PID is redis-server's: its CPU is read by that PID.
    const child = pinning.pinned ? spawnChild('taskset', ['-c', String(cpu), 'redis-server', ...args]) : spawnChild('redis-server', args);
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      client.on('error', () => {});
      try {
        await client.connect();
        await client.ping();
        return new RedisServer(child, port, client);
      } catch {
        client.disconnect();
      }
      if (child.process.exitCode !== null || child.process.signalCode !== null || Date.now() > deadline) {
        await stopChild(child, STOP_TIMEOUT_MS);
        throw new Error(`redis-server did not start on port ${port}: ${child.stderr() || 'no answer to PING'}`);
      }
      await sleep(POLL_MS);
    }
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.child.process.pid!;
  }

  /** Zeroes the command statistics, so that the next commandStats() covers only what follows. */
  async resetStats(): Promise<void> {
    await this.client.config('RESETSTAT');
  }

  async commandStats(): Promise<CommandStat[]> {
    const text = await this.client.info('commandstats');
    const stats: CommandStat[] = [];
    for (const line of text.split('\n')) {
      const match = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line.trim());
      if (match) stats.push({ command: match[1]!, calls: Number(match[2]), usec: Number(match[3]) });
    }
    return stats.sort((a, b) => b.usec - a.usec);
  }

  async stop(): Promise<void> {
    this.client.disconnect();
    await stopChild(this.child, STOP_TIMEOUT_MS);
  }
}
