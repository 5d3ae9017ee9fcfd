// A real redis-server (Debian's) for tests: on a free port of 127.0.0.1, in its own temporary
// directory, with an append-only file fsynced on every write so that a restart (even after SIGKILL)
// keeps everything Redis acknowledged. Stopped by PID, never by name.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './websocket-harness.js';

const START_TIMEOUT_MS = 10_000;

export class RedisServer {
  private child: ChildProcess | null = null;

  private constructor(readonly port: number, private readonly dir: string) {}

  static async start(): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), mkdtempSync(join(tmpdir(), 'duplex-redis-')));
    await server.launch();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Stops it: SIGTERM lets it save and exit; SIGKILL is a crash. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
  }

  /** Starts it again on the same port and data directory. */
  restart(): Promise<void> {
    return this.launch();
  }

  /** Stops it for good and removes its files. */
  async dispose(): Promise<void> {
    await this.stop('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async launch(): Promise<void> {
    if (this.child) throw new Error('redis-server is already running');
    const child = spawn('redis-server', [
      '--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '',
      '--appendonly', 'yes', '--appendfsync', 'always', '--daemonize', 'no', '--loglevel', 'warning',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let output = '';
    child.stdout!.setEncoding('utf8').on('data', (t: string) => (output += t));
    child.stderr!.setEncoding('utf8').on('data', (t: string) => (output += t));
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!(await answersPing(this.port))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        await this.stop('SIGKILL');
        throw new Error(`redis-server did not start on port ${this.port}: ${output.trim()}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.setTimeout(1000);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString().startsWith('+PONG'));
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}
