/**
 * What the fan-out load generator (hub-fanout-load.ts) and its harness (fanout.ts) share: the
 * channel and message size, the rule for a sustained step, and the result it prints.
 */
import type { LatencySummary } from './hub-latency.js';

export const FANOUT_CHANNEL = 'bench.fanout';
/** Serialized size of the published data; the hub's envelope around it adds about 110 bytes. */
export const FANOUT_DATA_SIZE = 100;
/** A step is sustained when at least this share of the offered deliveries per second arrived… */
export const SUSTAINED_SHARE = 0.95;
/** …with a p99 publish-to-receive latency no higher than this. */
export const MAX_P99_MS = 1000;

export interface FanoutStep {
  /** Publishes per second asked of the publisher. */
  rate: number;
  /** rate × subscribers. */
  offeredPerSecond: number;
  /** Publishes per second actually written in the window. */
  publishedPerSecond: number;
  /** Messages received by all subscribers together, per second of the window. */
  deliveriesPerSecond: number;
  /**
   * Messages per socket read at the subscribers: at least as many as each hub write carried (more
   * when the load generator fell behind and a read took several writes).
   */
  messagesPerRead: number;
  /** Of the messages published in the window, as seen by the sampled subscribers. */
  latency: LatencySummary;
  /** Every subscriber had every message soon after publishing stopped. */
  drained: boolean;
  drainMs: number;
  sustained: boolean;
  /** CPU in the window: the hub's and the load generator's as fractions of one core, the rest of the machine's in cores. */
  serverCpu?: number;
  /** With a hub of several processes: each one's CPU (fraction of a core), in the order of their PIDs; serverCpu is their sum. */
  serverCpus?: number[];
  loadCpu: number;
  otherCpu?: number;
  /** Runs of this step: one disturbed by other work on the machine is repeated. */
  attempts: number;
  /** Still disturbed after the last attempt. */
  disturbed?: boolean;
  error?: string;
}

export interface FanoutLoadResult {
  subscribers: number;
  connectMs: number;
  steps: FanoutStep[];
  error?: string;
}
