/**
 * Echo load generator: N raw TCP connections, each keeping K messages in flight.
 *
 * It has to be much cheaper per message than any server it drives, or the benchmark would
 * measure itself: it does a fixed handshake, sends one prebuilt masked frame, and for every
 * echo it counts (from frame headers only) it writes the same bytes again, batched per chunk.
 *
 *   node dist/bench/load.js --port P --connections 100 --inflight 8 --size 64 --type text
 *                           [--warmup 1000] [--duration 5000] [--raw]
 *
 * --raw skips the handshake, for the plain TCP echo that sends our frames straight back.
 * Prints its output (see load-output.ts) on stdout; on any failure prints to stderr and exits 1.
 */
import net from 'node:net';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { FrameCounter } from './frame-counter.js';
import { maskedClientFrame, opcodeOf, type MessageType } from './client-frame.js';
import { WINDOW_END, WINDOW_START, type LoadResult } from './load-output.js';

interface LoadOptions {
  port: number;
  connections: number;
  inflight: number;
  size: number;
  type: MessageType;
  warmupMs: number;
  durationMs: number;
  raw: boolean;
}

const HANDSHAKE_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const MAX_RESPONSE_HEAD = 16 * 1024;
const CONNECT_TIMEOUT_MS = 10_000;
const EXIT_MARGIN_MS = 5_000;

let received = 0;
let stopping = false;

function abort(error: Error): never {
  console.error(`load: ${error.message}`);
  process.exit(1);
}

function wholeNumber(name: string, value: string | undefined, fallback?: number): number {
  const n = value === undefined ? fallback : Number(value);
  if (n === undefined || !Number.isInteger(n) || n < 0) abort(new Error(`--${name} needs a non-negative integer`));
  return n;
}

function parseOptions(): LoadOptions {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      connections: { type: 'string' },
      inflight: { type: 'string' },
      size: { type: 'string' },
      type: { type: 'string' },
      warmup: { type: 'string' },
      duration: { type: 'string' },
      raw: { type: 'boolean', default: false },
    },
  });
  if (values.type !== 'text' && values.type !== 'binary') abort(new Error('--type must be text or binary'));
  return {
    port: wholeNumber('port', values.port),
    connections: wholeNumber('connections', values.connections),
    inflight: wholeNumber('inflight', values.inflight),
    size: wholeNumber('size', values.size),
    type: values.type,
    warmupMs: wholeNumber('warmup', values.warmup, 1000),
    durationMs: wholeNumber('duration', values.duration, 5000),
    raw: values.raw ?? false,
  };
}

function handshakeRequest(port: number): string {
  return (
    'GET / HTTP/1.1\r\n' +
    `Host: 127.0.0.1:${port}\r\n` +
    'Upgrade: websocket\r\n' +
    'Connection: Upgrade\r\n' +
    `Sec-WebSocket-Key: ${HANDSHAKE_KEY}\r\n` +
    'Sec-WebSocket-Version: 13\r\n\r\n'
  );
}

/** The frame repeated K times, so re-sending any n <= K echoes is one write of a slice. */
function repeated(frame: Buffer, times: number): Buffer {
  return Buffer.concat(Array.from({ length: times }, () => frame));
}

function resend(socket: net.Socket, burst: Buffer, frameLength: number, inflight: number, count: number): void {
  for (let left = count; left > 0; left -= inflight) {
    socket.write(burst.subarray(0, Math.min(left, inflight) * frameLength));
  }
}

/** Opens one connection; resolves once it is echoing. Any failure aborts the whole run. */
function openConnection(options: LoadOptions, burst: Buffer, frameLength: number): Promise<net.Socket> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port: options.port });
    socket.setNoDelay(true);
    const counter = new FrameCounter(opcodeOf(options.type), options.size);
    let head: Buffer | null = options.raw ? null : Buffer.alloc(0);
    const start = (): void => {
      socket.write(burst);
      resolve(socket);
    };

    socket.once('connect', () => (options.raw ? start() : socket.write(handshakeRequest(options.port))));
    socket.on('data', (chunk: Buffer) => {
      if (head !== null) {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) {
          if (head.length > MAX_RESPONSE_HEAD) abort(new Error('handshake response head too large'));
          return;
        }
        const statusLine = head.toString('latin1', 0, head.indexOf('\r\n'));
        if (!/^HTTP\/1\.1 101 /.test(statusLine)) abort(new Error(`handshake refused: ${statusLine}`));
        chunk = head.subarray(end + 4);
        head = null;
        start();
      }
      const echoed = counter.push(chunk);
      if (counter.mismatched > 0) abort(new Error('echo did not match the sent frame (type, size or fragmentation)'));
      if (counter.closed) abort(new Error('server sent a close frame'));
      if (echoed === 0) return;
      received += echoed;
      resend(socket, burst, frameLength, options.inflight, echoed);
    });
    socket.on('error', (error) => {
      if (!stopping) abort(error);
    });
    socket.on('close', () => {
      if (!stopping) abort(new Error('connection closed by the server'));
    });
  });
}

async function main(): Promise<void> {
  const options = parseOptions();
  const limit = setTimeout(
    () => abort(new Error('overran its time limit')),
    CONNECT_TIMEOUT_MS + options.warmupMs + options.durationMs + EXIT_MARGIN_MS,
  );
  limit.unref();

  const frame = maskedClientFrame(options.type, options.size);
  const burst = repeated(frame, options.inflight);
  const connecting = Array.from({ length: options.connections }, () =>
    openConnection(options, burst, frame.length),
  );
  const connectLimit = setTimeout(() => abort(new Error('connections did not all open in time')), CONNECT_TIMEOUT_MS);
  const sockets = await Promise.all(connecting);
  clearTimeout(connectLimit);

  await sleep(options.warmupMs);
  const startCount = received;
  const startTime = process.hrtime.bigint();
  const startCpu = process.cpuUsage();
  console.log(WINDOW_START);
  await sleep(options.durationMs);
  const messages = received - startCount;
  const cpu = process.cpuUsage(startCpu);
  const seconds = Number(process.hrtime.bigint() - startTime) / 1e9;
  console.log(WINDOW_END);

  stopping = true;
  for (const socket of sockets) socket.destroy();
  const result: LoadResult = {
    messages,
    seconds,
    messagesPerSecond: messages / seconds,
    megabytesPerSecond: (messages * options.size) / seconds / 1e6,
    loadCpu: (cpu.user + cpu.system) / 1e6 / seconds,
  };
  console.log(JSON.stringify(result));
}

main().catch((error: unknown) => abort(error instanceof Error ? error : new Error(String(error))));
