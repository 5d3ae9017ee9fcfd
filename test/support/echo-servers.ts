// Echo servers for the conformance tests. The target is duplex itself, in-process or as the
// `duplex echo` CLI; the `ws`-based reference exists only to check that a test expects what a
// mature implementation does, and is chosen solely through DUPLEX_CONFORMANCE_SERVER=ws.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';

export interface EchoServer {
  url: string;
  stop(): Promise<void>;
}

export interface EchoServerOptions {
  maxPayload?: number;
}

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 3_000;

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function urlOf(address: AddressInfo | string | null): string {
  if (address === null || typeof address === 'string') throw new Error(`unexpected server address ${address}`);
  return `ws://127.0.0.1:${address.port}/`;
}

/** duplex's WebSocketServer in this process, echoing every message with its own type. */
export async function startDuplexEchoServer(options: EchoServerOptions = {}): Promise<EchoServer> {
  const { WebSocketServer } = await import('../../src/websocket/server.js');
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', ...options });
  wss.on('connection', (ws) => {
    ws.on('message', (ev) => ws.send(ev.rawData, { binary: ev.isBinary }));
  });
  const listening = new Promise<void>((resolve, reject) => {
    wss.once('listening', () => resolve());
    wss.once('error', reject);
  });
  await withTimeout(listening, START_TIMEOUT_MS, 'duplex server start');
  return {
    url: urlOf(wss.address()),
    stop: () => withTimeout(new Promise<void>((resolve) => wss.close(() => resolve())), STOP_TIMEOUT_MS, 'stop'),
  };
}

/** The `duplex echo` command as a child process; its URL is read from what it prints. */
export async function startCliEchoServer(): Promise<EchoServer> {
  const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
  const child = spawn(process.execPath, [main, 'echo', '--port', '0', '--host', '127.0.0.1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = once(child, 'exit');
  let output = '';
  const found = new Promise<string>((resolve, reject) => {
    const onOutput = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      const match = /ws:\/\/[^\s"'`]+/.exec(output);
      if (match) resolve(match[0]);
    };
    child.stdout.on('data', onOutput);
    child.stderr.on('data', onOutput);
    void exited.then(() => reject(new Error(`duplex echo exited before printing its URL: ${output}`)));
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    try {
      await withTimeout(exited, STOP_TIMEOUT_MS, 'duplex echo exit');
    } catch {
      child.kill('SIGKILL');
      await exited;
    }
  };
  try {
    return { url: await withTimeout(found, START_TIMEOUT_MS, 'duplex echo start'), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Reference echo server on the `ws` package, for validating the tests themselves. */
export async function startReferenceEchoServer(options: EchoServerOptions = {}): Promise<EchoServer> {
  const { WebSocketServer } = await import('ws');
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', ...options });
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    // ws rethrows protocol errors unless someone listens; the close frame is what the tests check.
    ws.on('error', () => {});
  });
  await withTimeout(once(wss, 'listening'), START_TIMEOUT_MS, 'ws server start');
  return {
    url: urlOf(wss.address()),
    stop: async () => {
      for (const client of wss.clients) client.terminate();
      await withTimeout(new Promise<void>((resolve) => wss.close(() => resolve())), STOP_TIMEOUT_MS, 'stop');
    },
  };
}

/** The server the conformance suites run against: duplex in-process unless told otherwise. */
export function startEchoServer(options: EchoServerOptions = {}): Promise<EchoServer> {
  switch (process.env['DUPLEX_CONFORMANCE_SERVER']) {
    case 'ws':
      return startReferenceEchoServer(options);
    case 'cli':
      if (options.maxPayload !== undefined) return startDuplexEchoServer(options);
      return startCliEchoServer();
    default:
      return startDuplexEchoServer(options);
  }
}
