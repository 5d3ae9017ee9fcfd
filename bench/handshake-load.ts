/**
 * Handshake load generator: K slots, each opening a raw TCP connection, sending the upgrade request,
 * checking the 101 response (status and accept value) and destroying the socket at once, then
 * starting over, for a warm-up and a measured window. Destroying (no close frame) keeps the cycle to
 * the opening handshake and TCP setup and teardown, the same for every server.
 *
 *   node dist/bench/handshake-load.js --port P --concurrency 50 [--warmup 1000] [--duration 5000]
 *
 * Prints WINDOW start / WINDOW end around the window, then one JSON line (HandshakeLoadResult); on any
 * failure (refused handshake, socket error) prints to stderr and exits 1.
 */
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { WINDOW_END, WINDOW_START } from './load-output.js';
import { readUpgradeResponse, upgradeRequest } from './upgrade-request.js';

export interface HandshakeLoadResult {
  /** Handshakes completed (101 checked) in the window. */
  handshakes: number;
  seconds: number;
  handshakesPerSecond: number;
  /** CPU time of the load generator in the window, as a fraction of one core. */
  loadCpu: number;
}

const EXIT_MARGIN_MS = 10_000;

let completed = 0;
let stopping = false;

function abort(error: Error): never {
  console.error(`handshake-load: ${error.message}`);
  process.exit(1);
}

function positive(name: string, value: string | undefined, fallback?: number): number {
  const n = value === undefined ? fallback : Number(value);
  if (n === undefined || !Number.isInteger(n) || n < 1) abort(new Error(`--${name} needs a positive integer`));
  return n;
}

/** One slot: handshakes back to back until the run stops; resolves when its last socket is gone. */
function slot(port: number, request: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const next = (): void => {
      if (stopping) return resolve();
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.setNoDelay(true);
      socket.write(request);
      let received: Buffer = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
        let response;
        try {
          response = readUpgradeResponse(received);
        } catch (error) {
          abort(error as Error);
        }
        if (response === null) return;
        completed++;
        socket.destroy();
        next();
      });
      socket.on('error', (error) => abort(error));
      socket.on('end', () => abort(new Error('server closed the connection before the 101 response')));
    };
    next();
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { port: { type: 'string' }, concurrency: { type: 'string' }, warmup: { type: 'string' }, duration: { type: 'string' } },
  });
  const port = positive('port', values.port);
  const concurrency = positive('concurrency', values.concurrency);
  const warmupMs = positive('warmup', values.warmup, 1000);
  const durationMs = positive('duration', values.duration, 5000);
  setTimeout(() => abort(new Error('overran its time limit')), warmupMs + durationMs + EXIT_MARGIN_MS).unref();

  const request = upgradeRequest(port);
  const slots = Array.from({ length: concurrency }, () => slot(port, request));
  await sleep(warmupMs);
  const startCount = completed;
  const startTime = process.hrtime.bigint();
  const startCpu = process.cpuUsage();
  console.log(WINDOW_START);
  await sleep(durationMs);
  const handshakes = completed - startCount;
  const cpu = process.cpuUsage(startCpu);
  const seconds = Number(process.hrtime.bigint() - startTime) / 1e9;
  console.log(WINDOW_END);
  stopping = true;
  await Promise.all(slots);

  const result: HandshakeLoadResult = {
    handshakes,
    seconds,
    handshakesPerSecond: handshakes / seconds,
    loadCpu: (cpu.user + cpu.system) / 1e6 / seconds,
  };
  console.log(JSON.stringify(result));
}

main().catch((error: unknown) => abort(error instanceof Error ? error : new Error(String(error))));
