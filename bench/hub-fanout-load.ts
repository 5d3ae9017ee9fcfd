/**
 * Fan-out load generator: N subscribers on one channel and one publisher, in this one process,
 * searching for the highest publish rate the hub sustains.
 *
 *   node dist/bench/hub-fanout-load.js --port P[,P2…] --subscribers N --start-rate 25 --max-rate 12000
 *        [--refine 3] [--warmup 500] [--window 2000] [--subscriber-auth 'Bearer …']
 *        [--publisher-auth 'Bearer …'] [--server-pid PID[,PID2…]]
 *
 * Rates are publishes per second; hub-rate-search.ts chooses the steps between them. With several
 * ports (the nodes of one hub sharing an engine), subscriber i connects to port i mod the number of
 * ports and the publisher to the first. With several server PIDs (the nodes, and the engine's
 * process), the hub's CPU is their sum, and each one's is reported too.
 *
 * Subscribers must cost far less per delivery than the hub: each is a raw socket read into one
 * shared buffer (net's `onread`, no stream machinery, no allocation per read) whose frames are
 * counted from their headers. Only SAMPLED_SUBSCRIBERS of them, spread evenly over the connection
 * order (the first and the last included, as a hub serves them in that order), copy their payloads
 * to read the send time for latency.
 *
 * Each step: publish at the step's rate, warm up, measure a window (deliveries counted at the
 * subscribers, latency of the messages sent in the window), stop publishing, then wait until every
 * subscriber has every message, so late deliveries still count in the latency and no step leaks
 * into the next. A step is not sustained with fewer than SUSTAINED_SHARE of the offered deliveries
 * per second, a p99 over MAX_P99_MS, a backlog that does not drain, or a lost subscriber (which
 * ends the search). With the hub's PIDs, each window's CPU is measured (the hub's,
 * ours, the rest of the machine's), and a step that other work on the machine disturbed is run
 * again, up to MAX_ATTEMPTS times.
 *
 * Stdout: `CONNECTED` once every subscriber and the publisher are in, and `MEASURED` after the
 * last step, before anyone disconnects (a harness may read its own counters there), a
 * `STEP {json}` line per step, and a last line with the whole result as JSON.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { FANOUT_CHANNEL, FANOUT_DATA_SIZE, MAX_P99_MS, SUSTAINED_SHARE, type FanoutLoadResult, type FanoutStep } from './hub-fanout-result.js';
import { LatencyRecorder } from './hub-latency.js';
import { PacedPublisher } from './hub-publisher.js';
import { searchRate } from './hub-rate-search.js';
import { nowMicros, sentMicrosIn } from './hub-timed-data.js';
import { ServerFrameReader, textFrame, upgradeRequest, UpgradeResponse } from './hub-wire.js';
import { WindowCpuMeter } from './hub-window-cpu.js';
import { QUIET_THRESHOLD, waitForQuiet } from './quiet.js';

const SAMPLED_SUBSCRIBERS = 10;
const CONNECT_CONCURRENCY = 200;
const CONNECT_TIMEOUT_MS = 120_000;
const DRAIN_TIMEOUT_MS = 10_000;
const DRAIN_POLL_MS = 10;
const SETTLE_MS = 300;
const MAX_ATTEMPTS = 4;
const QUIET_WAIT_MS = 60_000;
/** Ephemeral ports per local address we allow ourselves before moving to the next 127.0.0.x. */
const PORTS_PER_ADDRESS = 20_000;

interface Options {
  /** Subscriber i connects to ports[i % ports.length]; the publisher to ports[0]. */
  ports: number[];
  subscribers: number;
  startRate: number;
  maxRate: number;
  refine: number;
  warmupMs: number;
  windowMs: number;
  subscriberAuth?: string;
  publisherAuth?: string;
  /** The hub's processes, to measure their CPU in each window. */
  serverPids: number[];
}

// Counters shared by every subscriber: one process, one thread, no contention.
let delivered = 0;
// Socket reads by subscribers: deliveries per read show how many messages the hub's writes carry.
let reads = 0;
let failure: string | null = null;
const latencies = { recorder: new LatencyRecorder(), from: Infinity, to: Infinity };

const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

function fail(reason: string): void {
  failure ??= reason;
}

function abort(message: string): never {
  console.error(`hub-fanout-load: ${message}`);
  process.exit(1);
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      subscribers: { type: 'string' },
      'start-rate': { type: 'string' },
      'max-rate': { type: 'string' },
      refine: { type: 'string', default: '3' },
      warmup: { type: 'string', default: '500' },
      window: { type: 'string', default: '2000' },
      'subscriber-auth': { type: 'string' },
      'publisher-auth': { type: 'string' },
      'server-pid': { type: 'string' },
    },
  });
  const positive = (name: string, text: string | undefined): number => {
    const n = Number(text);
    if (!Number.isFinite(n) || n <= 0) abort(`--${name} needs a positive number`);
    return n;
  };
  const list = (name: string, text: string | undefined): number[] => (text ?? '').split(',').map((part) => {
    const n = positive(name, part);
    if (!Number.isInteger(n)) abort(`--${name} needs whole numbers`);
    return n;
  });
  return {
    ports: list('port', values.port),
    subscribers: positive('subscribers', values.subscribers),
    startRate: positive('start-rate', values['start-rate']),
    maxRate: positive('max-rate', values['max-rate']),
    refine: Number(values.refine),
    warmupMs: positive('warmup', values.warmup),
    windowMs: positive('window', values.window),
    ...(values['subscriber-auth'] ? { subscriberAuth: values['subscriber-auth'] } : {}),
    ...(values['publisher-auth'] ? { publisherAuth: values['publisher-auth'] } : {}),
    serverPids: values['server-pid'] ? list('server-pid', values['server-pid']) : [],
  };
}

const authHeaders = (auth: string | undefined): Record<string, string> => (auth ? { Authorization: auth } : {});

/** Connection indexes whose payloads are read for latency: evenly spread, first and last included. */
function sampledIndexes(n: number): Set<number> {
  const count = Math.min(n, SAMPLED_SUBSCRIBERS);
  if (count === 1) return new Set([0]);
  return new Set(Array.from({ length: count }, (_, j) => Math.round((j * (n - 1)) / (count - 1))));
}

/** Opens one subscriber; resolves once the hub has confirmed the subscription. */
function subscribe(options: Options, index: number, sampled: boolean): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const response = new UpgradeResponse();
    let state: 'handshake' | 'subscribing' | 'live' = 'handshake';
    const reader: ServerFrameReader = new ServerFrameReader({
      message(payload) {
        if (state === 'subscribing') {
          if (!payload?.includes('"type":"subscribed"')) {
            return reject(new Error(`subscribe refused: ${payload?.toString().slice(0, 200)}`));
          }
          state = 'live';
          reader.capture = sampled;
          return resolve(socket);
        }
        delivered++;
        if (payload === null) return;
        const sent = sentMicrosIn(payload);
        if (sent >= latencies.from && sent <= latencies.to) latencies.recorder.add((receivedAt - sent) / 1000);
      },
      failed: (reason) => fail(`subscriber ${index}: ${reason}`),
      reply: (frame) => socket.write(frame),
    }, true);
    // The time of the current read, taken once per read and only where it is needed.
    let receivedAt = 0;
    const onRead = (length: number, buffer: Buffer): boolean => {
      if (state === 'handshake') {
        let rest: Buffer | null;
        try {
          rest = response.push(Buffer.from(buffer.subarray(0, length)));
        } catch (error) {
          reject(error as Error);
          socket.destroy();
          return false;
        }
        if (rest === null) return true;
        state = 'subscribing';
        socket.write(textFrame(`{"type":"subscribe","channel":"${FANOUT_CHANNEL}"}`));
        reader.push(rest, 0, rest.length);
        return true;
      }
      if (sampled) receivedAt = nowMicros();
      reads++;
      reader.push(buffer, 0, length);
      return true;
    };
    // Binding to a local address takes a port no other socket holds, even in TIME_WAIT, so only the
    // subscribers beyond the first block do it; the first block lets connect() pick a port.
    const block = Math.floor(index / PORTS_PER_ADDRESS);
    const port = options.ports[index % options.ports.length]!;
    const socket = net.connect({
      host: '127.0.0.1', port, onread: { buffer: READ_BUFFER, callback: onRead },
      ...(block === 0 ? {} : { localAddress: `127.0.0.${1 + block}` }),
    });
    socket.setNoDelay(true);
    socket.once('connect', () => socket.write(upgradeRequest(port, authHeaders(options.subscriberAuth))));
    socket.on('error', (error) => {
      if (state === 'live') fail(`subscriber ${index}: ${error.message}`);
      else reject(error);
    });
    socket.on('close', () => {
      if (state === 'live') fail(`subscriber ${index}: connection closed`);
      else reject(new Error(`subscriber ${index}: closed before subscribing`));
    });
  });
}

async function connectAll(options: Options): Promise<net.Socket[]> {
  const sampled = sampledIndexes(options.subscribers);
  const sockets: net.Socket[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < options.subscribers) {
      const index = next++;
      sockets.push(await subscribe(options, index, sampled.has(index)));
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONNECT_CONCURRENCY, options.subscribers) }, worker));
  return sockets;
}

async function drain(expected: () => number): Promise<{ drained: boolean; ms: number }> {
  const start = Date.now();
  while (delivered < expected() && failure === null && Date.now() - start < DRAIN_TIMEOUT_MS) {
    await sleep(DRAIN_POLL_MS);
  }
  return { drained: delivered >= expected() && failure === null, ms: Date.now() - start };
}

/** One window at one rate; assumes nothing is in flight when it starts. */
async function measureStep(options: Options, publisher: PacedPublisher, rate: number): Promise<FanoutStep> {
  const n = options.subscribers;
  latencies.recorder = new LatencyRecorder();
  latencies.from = Infinity;
  latencies.to = Infinity;
  publisher.start(rate);
  await sleep(options.warmupMs);

  latencies.from = nowMicros();
  const startDelivered = delivered;
  const startReads = reads;
  const startPublished = publisher.published;
  const meter = new WindowCpuMeter(options.serverPids);
  const startTime = performance.now();
  await sleep(options.windowMs);
  const seconds = (performance.now() - startTime) / 1000;
  const cpu = meter.read();
  const windowDelivered = delivered - startDelivered;
  const windowReads = reads - startReads;
  const windowPublished = publisher.published - startPublished;
  latencies.to = nowMicros();

  publisher.stop();
  const { drained, ms } = await drain(() => publisher.published * n);
  const latency = latencies.recorder.summary();
  const error = failure ?? publisher.error ?? undefined;
  // Deliveries of a message still on its way at either edge of the window fall outside it: one
  // message's worth of slack keeps a hub that keeps up from failing on that alone at low rates.
  const keptUp = windowDelivered + n >= SUSTAINED_SHARE * rate * seconds * n;
  return {
    rate,
    offeredPerSecond: rate * n,
    publishedPerSecond: windowPublished / seconds,
    deliveriesPerSecond: windowDelivered / seconds,
    messagesPerRead: windowReads === 0 ? 0 : windowDelivered / windowReads,
    latency,
    drained,
    drainMs: ms,
    sustained: error === undefined && drained && keptUp && latency.p99 <= MAX_P99_MS,
    ...cpu,
    attempts: 1,
    ...(error === undefined ? {} : { error }),
  };
}

/** A step, repeated (at most MAX_ATTEMPTS times) while other work on the machine disturbs it. */
async function runStep(options: Options, publisher: PacedPublisher, rate: number): Promise<FanoutStep> {
  let step = await measureStep(options, publisher, rate);
  for (let attempts = 2; attempts <= MAX_ATTEMPTS && isDisturbed(step) && step.error === undefined; attempts++) {
    await waitForQuiet(QUIET_WAIT_MS);
    step = { ...(await measureStep(options, publisher, rate)), attempts };
  }
  return isDisturbed(step) ? { ...step, disturbed: true } : step;
}

const isDisturbed = (step: FanoutStep): boolean => step.otherCpu !== undefined && step.otherCpu > QUIET_THRESHOLD;

async function main(): Promise<void> {
  const options = parseOptions();
  const connectStart = Date.now();
  const connecting = connectAll(options);
  const timeout = setTimeout(() => abort(`subscribers did not all connect within ${CONNECT_TIMEOUT_MS} ms`), CONNECT_TIMEOUT_MS);
  const sockets = await connecting;
  clearTimeout(timeout);
  const publisher = await PacedPublisher.connect(
    options.ports[0]!, authHeaders(options.publisherAuth), FANOUT_CHANNEL, FANOUT_DATA_SIZE,
  );
  const result: FanoutLoadResult = { subscribers: options.subscribers, connectMs: Date.now() - connectStart, steps: [] };
  console.log('CONNECTED');
  await sleep(SETTLE_MS);

  await searchRate(options.startRate, options.maxRate, options.refine, async (rate) => {
    const step = await runStep(options, publisher, rate);
    result.steps.push(step);
    console.log(`STEP ${JSON.stringify(step)}`);
    await sleep(SETTLE_MS);
    return step.error !== undefined ? 'fatal' : step.sustained ? 'sustained' : 'failed';
  });
  if (failure !== null) result.error = failure;
  console.log('MEASURED');
  publisher.close();
  for (const socket of sockets) socket.destroy();
  console.log(JSON.stringify(result));
  process.exit(0);
}

main().catch((error: unknown) => abort(error instanceof Error ? error.message : String(error)));
