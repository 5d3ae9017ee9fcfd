// Runs the built `duplex` command as a child process, the way a user would, with bounded waits, and
// a `ws`-package peer to talk to the servers it starts.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { WebSocket as WsClient } from 'ws';

/** dist/test/support/cli.js → dist/src/cli/main.js */
export const CLI_PATH = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

const DEFAULT_TIMEOUT_MS = 10_000;
const running = new Set<CliProcess>();

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export class CliProcess {
  stdout = '';
  stderr = '';
  readonly child: ChildProcessWithoutNullStreams;
  private readonly exit: Promise<Exit>;
  private readonly waiters = new Set<() => void>();

  constructor(args: string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, [CLI_PATH, ...args], {
      env: { ...process.env, NO_COLOR: '1', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    running.add(this);
    this.child.stdout.setEncoding('utf8').on('data', (text: string) => this.append('stdout', text));
    this.child.stderr.setEncoding('utf8').on('data', (text: string) => this.append('stderr', text));
    // A child that exits before reading its stdin must not crash the test with EPIPE.
    this.child.stdin.on('error', () => {});
    this.exit = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        running.delete(this);
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr });
      });
    });
  }

  /** Waits until `stream` has text matching `pattern`; fails with everything seen so far on timeout. */
  async waitFor(stream: 'stdout' | 'stderr', pattern: RegExp, ms = DEFAULT_TIMEOUT_MS): Promise<RegExpMatchArray> {
    return bounded(
      new Promise<RegExpMatchArray>((resolve) => {
        const check = (): void => {
          const match = this[stream].match(pattern);
          if (!match) return;
          this.waiters.delete(check);
          resolve(match);
        };
        this.waiters.add(check);
        check();
      }),
      ms,
      () => `no ${pattern} on ${stream}; stdout=${JSON.stringify(this.stdout)} stderr=${JSON.stringify(this.stderr)}`,
    );
  }

  exited(ms = DEFAULT_TIMEOUT_MS): Promise<Exit> {
    return bounded(this.exit, ms, () => `still running; stdout=${JSON.stringify(this.stdout)} stderr=${JSON.stringify(this.stderr)}`);
  }

  signal(signal: NodeJS.Signals): void {
    if (this.child.pid !== undefined && this.child.exitCode === null && this.child.signalCode === null) process.kill(this.child.pid, signal);
  }

  private append(stream: 'stdout' | 'stderr', text: string): void {
    this[stream] += text;
    for (const check of [...this.waiters]) check();
  }
}

/** Spawns `duplex ...args`; `input` (if given) is written to stdin, which is then closed. */
export function runCli(args: string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}): CliProcess {
  const cli = new CliProcess(args, options.env);
  if (options.input !== undefined) cli.child.stdin.end(options.input);
  return cli;
}

/** Starts a server command and returns it with the URL it printed. */
export async function startServerCli(args: string[]): Promise<{ cli: CliProcess; url: string }> {
  const cli = runCli(args);
  const [, url] = await cli.waitFor('stdout', /^listening on (\S+)\n/m);
  return { cli, url: url! };
}

/** For `after()`: kills, by PID, every child still running. */
export function killAll(): void {
  for (const cli of running) cli.signal('SIGKILL');
}

export function bounded<T>(promise: Promise<T>, ms: number, why: () => string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${why()}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export interface Received {
  data: Buffer;
  isBinary: boolean;
}

/** A client from the `ws` package that records what it receives, for checking the CLI's servers. */
export class Peer {
  private readonly received: Received[] = [];
  private readonly waiters = new Set<() => void>();
  private read = 0;
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WsClient) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.received.push({ data, isBinary });
      for (const wake of [...this.waiters]) wake();
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() }));
    });
  }

  static async open(url: string, ms = DEFAULT_TIMEOUT_MS): Promise<Peer> {
    const ws = new WsClient(url);
    const peer = new Peer(ws);
    await bounded(
      new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      }),
      ms,
      () => `cannot open ${url}`,
    );
    return peer;
  }

  /** The next message not yet returned, in arrival order. */
  next(ms = DEFAULT_TIMEOUT_MS): Promise<Received> {
    return bounded(
      new Promise<Received>((resolve) => {
        const check = (): void => {
          if (this.read >= this.received.length) return;
          this.waiters.delete(check);
          resolve(this.received[this.read++]!);
        };
        this.waiters.add(check);
        check();
      }),
      ms,
      () => `no message after ${this.read}`,
    );
  }

  waitClosed(ms = DEFAULT_TIMEOUT_MS): Promise<{ code: number; reason: string }> {
    return bounded(this.closed, ms, () => 'connection still open');
  }
}
