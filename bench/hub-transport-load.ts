/**
 * One transport, one subscriber, one message stream: what it costs on the wire and how late the
 * messages arrive.
 *
 *   node dist/bench/hub-transport-load.js --port P --transport websocket|sse|long-polling|polling
 *        --rate 10 --messages 300 [--data-size 100] [--warmup-messages 10]
 *
 * A publisher (a WebSocket connection of its own, not counted) publishes `messages` messages of
 * `data-size` bytes of data at `rate` per second to a fresh channel; the subscriber
 * (hub-transport-clients.ts) receives them. Bytes are counted at the subscriber's sockets from the
 * moment it is listening until it holds the last message: HTTP heads, chunked encoding, SSE and
 * WebSocket framing, pongs, the requests of the pollers, everything the socket carried. The IP and
 * TCP headers of the same span come from the kernel's segment counters. Latency is publish to
 * receive on one clock (publisher and subscriber share this process), for every message but the
 * first `warmup-messages`.
 *
 * Prints one line of JSON (TransportResult).
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { LatencyRecorder, type LatencySummary } from './hub-latency.js';
import { PacedPublisher } from './hub-publisher.js';
import { IP_TCP_HEADER_BYTES, segmentsOf, type Segments } from './hub-tcp-segments.js';
import { TRANSPORTS, transportClient, type Transport, type TransportClient } from './hub-transport-clients.js';

// A channel of our own, so that nothing published before (another run on the same hub) shows up in it.
const TRANSPORT_CHANNEL = `bench.transport-${process.pid}`;

const OPEN_TIMEOUT_MS = 10_000;
/** Time allowed beyond the publishing schedule for the last message to arrive. */
const FINISH_MARGIN_MS = 15_000;

export interface Direction {
  /** Bytes the subscriber's sockets wrote (up) or read (down): HTTP and WebSocket, no IP/TCP headers. */
  bytes: number;
  /** TCP segments, ACKs included; undefined when `ss` could not tell. */
  segments?: number;
}

export interface TransportResult {
  transport: Transport;
  rate: number;
  messages: number;
  /** Bytes before the subscriber was listening: the handshake, the subscribe, the first request. */
  setup: { up: number; down: number };
  stream: { up: Direction; down: Direction; seconds: number };
  /** Per message of the stream: socket bytes, and IP/TCP header bytes from the segment counts. */
  perMessage: { up: number; down: number; ipTcp?: number };
  /** HTTP connections the subscriber opened (1 unless the hub closed one). */
  connections: number;
  duplicates: number;
  latency: LatencySummary;
  error?: string;
}

function parseOptions(): { port: number; transport: Transport; rate: number; messages: number; dataSize: number; warmup: number } {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      transport: { type: 'string' },
      rate: { type: 'string' },
      messages: { type: 'string' },
      'data-size': { type: 'string', default: '100' },
      'warmup-messages': { type: 'string', default: '0' },
    },
  });
  const transport = values.transport as Transport;
  if (!TRANSPORTS.includes(transport)) throw new Error(`--transport must be one of ${TRANSPORTS.join(', ')}`);
  const number = (name: string, text: string | undefined): number => {
    const n = Number(text);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} needs a non-negative number`);
    return n;
  };
  return {
    port: number('port', values.port),
    transport,
    rate: number('rate', values.rate),
    messages: number('messages', values.messages),
    dataSize: number('data-size', values['data-size']),
    warmup: number('warmup-messages', values['warmup-messages']),
  };
}

interface Counters {
  up: number;
  down: number;
  segments?: Segments;
  at: number;
}

function count(client: TransportClient): Counters {
  let up = 0;
  let down = 0;
  for (const socket of client.sockets) {
    up += socket.bytesWritten;
    down += socket.bytesRead;
  }
  const current = client.sockets.at(-1);
  const segments = current === undefined ? undefined : segmentsOf(current);
  return { up, down, ...(segments ? { segments } : {}), at: performance.now() };
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function main(): Promise<void> {
  const o = parseOptions();
  const publisher = await PacedPublisher.connect(o.port, {}, TRANSPORT_CHANNEL, o.dataSize);
  const seen = new Uint8Array(o.messages + 1);
  const latency = new LatencyRecorder();
  let received = 0;
  let duplicates = 0;
  let failure: string | null = null;
  let end: Counters | null = null;
  let finished: () => void = () => {};
  const done = new Promise<void>((resolve) => (finished = resolve));

  const client = transportClient(o.transport, o.port, TRANSPORT_CHANNEL, (offset, sent, receivedAt) => {
    if (offset < 1 || offset > o.messages) return;
    if (seen[offset]) {
      duplicates++;
      return;
    }
    seen[offset] = 1;
    received++;
    if (offset > o.warmup) latency.add((receivedAt - sent) / 1000);
    if (received === o.messages) {
      // Counted right here, before a poller sends its next request.
      end = count(client);
      finished();
    }
  }, (reason) => {
    failure ??= reason;
    finished();
  });

  await withTimeout(client.open(), OPEN_TIMEOUT_MS, 'opening the subscriber');
  const start = count(client);
  publisher.start(o.rate, o.messages);
  await withTimeout(done, (o.messages / o.rate) * 1000 + FINISH_MARGIN_MS, `receiving ${o.messages} messages`)
    .catch((error: Error) => (failure ??= error.message));
  publisher.close();
  client.close();

  const last: Counters = end ?? count(client);
  const segments = (pick: 'out' | 'in'): number | undefined =>
    start.segments && last.segments && client.sockets.length === 1 ? last.segments[pick] - start.segments[pick] : undefined;
  const up: Direction = { bytes: last.up - start.up, ...(segments('out') === undefined ? {} : { segments: segments('out') }) };
  const down: Direction = { bytes: last.down - start.down, ...(segments('in') === undefined ? {} : { segments: segments('in') }) };
  const ipTcp = up.segments === undefined || down.segments === undefined
    ? undefined : ((up.segments + down.segments) * IP_TCP_HEADER_BYTES) / o.messages;
  const result: TransportResult = {
    transport: o.transport,
    rate: o.rate,
    messages: received,
    setup: { up: start.up, down: start.down },
    stream: { up, down, seconds: (last.at - start.at) / 1000 },
    perMessage: { up: up.bytes / o.messages, down: down.bytes / o.messages, ...(ipTcp === undefined ? {} : { ipTcp }) },
    connections: client.sockets.length,
    duplicates,
    latency: latency.summary(),
    ...(failure === null ? {} : { error: failure }),
  };
  console.log(JSON.stringify(result));
  process.exit(0);
}

main().catch((error: unknown) => {
  console.error(`hub-transport-load: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
