// One `duplex serve` node as a spawned process on a free port of 127.0.0.1, logging JSON lines, so
// tests can run several nodes of a hub against one Redis and stop or crash each of them by PID.
import { runCli, type CliProcess, type Exit } from './cli.js';

export class HubNode {
  private constructor(
    readonly cli: CliProcess,
    /** http://127.0.0.1:PORT */
    readonly url: string,
    /** The JSON log record the node printed its settings in. */
    readonly config: Record<string, unknown>,
  ) {}

  /** Starts `duplex serve ...args` and waits for its "listening" record. */
  static async start(args: string[], env: NodeJS.ProcessEnv = {}): Promise<HubNode> {
    const cli = runCli(['serve', '--host', '127.0.0.1', '--port', '0', '--log', 'json', ...args], { env });
    try {
      const [listening] = await cli.waitFor('stdout', /^\{.*"msg":"listening".*\}$/m);
      const [config] = await cli.waitFor('stdout', /^\{.*"msg":"config".*\}$/m);
      const { url } = JSON.parse(listening!) as { url: string };
      return new HubNode(cli, url, JSON.parse(config!) as Record<string, unknown>);
    } catch (err) {
      cli.signal('SIGKILL');
      throw err;
    }
  }

  get ws(): string {
    return `${this.url.replace(/^http/, 'ws')}/ws`;
  }

  get alive(): boolean {
    return this.cli.child.exitCode === null && this.cli.child.signalCode === null;
  }

  /** SIGTERM and a bounded wait; SIGKILL if the node does not exit in time. */
  async stop(): Promise<Exit | null> {
    if (!this.alive) return null;
    this.cli.signal('SIGTERM');
    try {
      return await this.cli.exited(10_000);
    } catch {
      this.cli.signal('SIGKILL');
      return null;
    }
  }

  /** A crash: SIGKILL, then waits for the process to be gone. */
  async kill(): Promise<Exit> {
    this.cli.signal('SIGKILL');
    return this.cli.exited(10_000);
  }
}
