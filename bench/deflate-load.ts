/**
 * permessage-deflate echo load generator: N raw TCP connections that negotiate permessage-deflate,
 * each keeping K compressed text messages in flight.
 *
 * It stays far cheaper per message than the servers it drives: its frames are compressed and masked
 * once, before the run (deflate-frames.ts), and the server's compressed echoes are counted from their
 * headers, never inflated. Every echo it counts is answered with the next frame of the pool, batched
 * into one write per received chunk.
 *
 *   node dist/bench/deflate-load.js --port P --connections 50 --inflight 4 --kind json --size 1100
 *                                   [--pool 64] [--offer '<Sec-WebSocket-Extensions>']
 *                                   [--warmup 1000] [--duration 5000]
 *
 * Prints WINDOW start / WINDOW end around the measured window, then one JSON line (DeflateLoadResult);
 * on any failure prints to stderr and exits 1.
 */
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { CompressedEchoCounter } from './compressed-echo-counter.js';
import { compressedClientFrame, FrameRing } from './deflate-frames.js';
import { payloadPool, type PayloadKind } from './deflate-payloads.js';
import { WINDOW_END, WINDOW_START, type LoadResult } from './load-output.js';
import { DEFLATE_OFFER, headerValue, readUpgradeResponse, upgradeRequest } from './upgrade-request.js';

export interface DeflateLoadResult extends LoadResult {
  /** Mean uncompressed payload of the messages sent, in bytes. */
  payloadBytes: number;
  /** Mean payload of the server's compressed echoes, in bytes. */
  echoBytes: number;
  /** The server's Sec-WebSocket-Extensions answer. */
  extensions: string;
}

interface Options {
  port: number;
  connections: number;
  inflight: number;
  kind: PayloadKind;
  size: number;
  pool: number;
  offer: string;
  warmupMs: number;
  durationMs: number;
}

const CONNECT_TIMEOUT_MS = 10_000;
const EXIT_MARGIN_MS = 5_000;

let received = 0;
let stopping = false;
let extensions = '';
const counters: CompressedEchoCounter[] = [];

function abort(error: Error): never {
  console.error(`deflate-load: ${error.message}`);
  process.exit(1);
}

function positive(name: string, value: string | undefined, fallback?: number): number {
  const n = value === undefined ? fallback : Number(value);
  if (n === undefined || !Number.isInteger(n) || n < 1) abort(new Error(`--${name} needs a positive integer`));
  return n;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      connections: { type: 'string' },
      inflight: { type: 'string' },
      kind: { type: 'string' },
      size: { type: 'string' },
      pool: { type: 'string' },
      offer: { type: 'string' },
      warmup: { type: 'string' },
      duration: { type: 'string' },
    },
  });
  if (values.kind !== 'json' && values.kind !== 'text') abort(new Error('--kind must be json or text'));
  const options: Options = {
    port: positive('port', values.port),
    connections: positive('connections', values.connections),
    inflight: positive('inflight', values.inflight),
    kind: values.kind,
    size: positive('size', values.size),
    pool: positive('pool', values.pool, 64),
    offer: values.offer ?? DEFLATE_OFFER,
    warmupMs: positive('warmup', values.warmup, 1000),
    durationMs: positive('duration', values.duration, 5000),
  };
  if (options.inflight > options.pool) abort(new Error('--inflight may not exceed --pool'));
  return options;
}

/** The frames were compressed with a 15-bit window: a server asking for less could not inflate them. */
function checkAccepted(answer: string): void {
  if (!answer.startsWith('permessage-deflate')) abort(new Error(`server did not accept permessage-deflate (answer: "${answer}")`));
  const bits = /client_max_window_bits=(\d+)/.exec(answer);
  if (bits && Number(bits[1]) < 15) abort(new Error(`server limited the client window: ${answer}`));
}

/** Opens one connection, resolving once it is echoing; any failure aborts the run. */
function openConnection(options: Options, ring: FrameRing, first: number): Promise<net.Socket> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port: options.port });
    socket.setNoDelay(true);
    const counter = new CompressedEchoCounter();
    counters.push(counter);
    let next = first;
    let head: Buffer | null = Buffer.alloc(0);

    const send = (count: number): void => {
      for (let left = count; left > 0; left -= ring.size) {
        const batch = Math.min(left, ring.size);
        socket.write(ring.slice(next, batch));
        next = (next + batch) % ring.size;
      }
    };

    socket.once('connect', () => socket.write(upgradeRequest(options.port, options.offer)));
    socket.on('data', (chunk: Buffer) => {
      if (head !== null) {
        head = Buffer.concat([head, chunk]);
        let response;
        try {
          response = readUpgradeResponse(head);
        } catch (error) {
          abort(error as Error);
        }
        if (response === null) return;
        extensions = headerValue(response.head, 'sec-websocket-extensions');
        checkAccepted(extensions);
        chunk = response.rest;
        head = null;
        send(options.inflight);
        resolve(socket);
      }
      const echoed = counter.push(chunk);
      if (counter.mismatched > 0) abort(new Error('an echo was not one compressed text frame (uncompressed or fragmented)'));
      if (counter.closed) abort(new Error('server sent a close frame'));
      if (echoed === 0) return;
      received += echoed;
      send(echoed);
    });
    socket.on('error', (error) => {
      if (!stopping) abort(error);
    });
    socket.on('close', () => {
      if (!stopping) abort(new Error('connection closed by the server'));
    });
  });
}

const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / values.length;
const echoBytesSoFar = (): number => counters.reduce((sum, c) => sum + c.echoBytes, 0);

async function main(): Promise<void> {
  const options = parseOptions();
  const limit = setTimeout(
    () => abort(new Error('overran its time limit')),
    CONNECT_TIMEOUT_MS + options.warmupMs + options.durationMs + EXIT_MARGIN_MS,
  );
  limit.unref();

  const payloads = payloadPool(options.kind, options.size, options.pool);
  const ring = new FrameRing(payloads.map(compressedClientFrame));
  const connectLimit = setTimeout(() => abort(new Error('connections did not all open in time')), CONNECT_TIMEOUT_MS);
  // Connections start at different frames of the pool, so the server sees a mix at every moment.
  const sockets = await Promise.all(
    Array.from({ length: options.connections }, (_, i) => openConnection(options, ring, (i * 7) % ring.size)),
  );
  clearTimeout(connectLimit);

  await sleep(options.warmupMs);
  const startCount = received;
  const startEchoBytes = echoBytesSoFar();
  const startTime = process.hrtime.bigint();
  const startCpu = process.cpuUsage();
  console.log(WINDOW_START);
  await sleep(options.durationMs);
  const messages = received - startCount;
  const echoBytes = echoBytesSoFar() - startEchoBytes;
  const cpu = process.cpuUsage(startCpu);
  const seconds = Number(process.hrtime.bigint() - startTime) / 1e9;
  console.log(WINDOW_END);

  stopping = true;
  for (const socket of sockets) socket.destroy();
  const payloadBytes = mean(payloads.map((p) => p.length));
  const result: DeflateLoadResult = {
    messages,
    seconds,
    messagesPerSecond: messages / seconds,
    megabytesPerSecond: (messages * payloadBytes) / seconds / 1e6,
    loadCpu: (cpu.user + cpu.system) / 1e6 / seconds,
    payloadBytes,
    echoBytes: messages > 0 ? echoBytes / messages : 0,
    extensions,
  };
  console.log(JSON.stringify(result));
}

main().catch((error: unknown) => abort(error instanceof Error ? error : new Error(String(error))));
