// The hub's metrics: a small registry that writes the Prometheus text exposition format 0.0.4 (for
// GET /metrics) and the same numbers as JSON (for the dashboard), and the hub's metric set.
// Our own rather than prom-client to keep runtime dependencies few; only counters and gauges are
// needed. Pure: no I/O and no timers. Values that live elsewhere (engine stats, process memory) are
// read by collect callbacks when a scrape asks for them.

import { performance } from 'node:perf_hooks';
import type { EngineStats } from './engine.js';
import { RateSeries } from './rate-series.js';

export { RateSeries };

export type Labels = Readonly<Record<string, string>>;
/** Called at scrape time; returns the metric's series as they are now. */
export type Collect = () => Iterable<readonly [Labels, number]>;
export type MetricType = 'counter' | 'gauge';

/** The Content-Type header for `Registry.text()`. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
// Names starting with "__" are reserved for Prometheus' own use.
const LABEL_NAME = /^(?!__)[a-zA-Z_][a-zA-Z0-9_]*$/;

export interface Sample {
  labels: Record<string, string>;
  value: number;
}

export interface MetricJson {
  type: MetricType;
  help: string;
  values: Sample[];
}

export interface Series {
  /** Label values in `labelNames` order. */
  readonly values: readonly string[];
  value: number;
}

export abstract class Metric {
  abstract readonly type: MetricType;
  readonly labelNames: readonly string[];
  private readonly stored = new Map<string, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
    labelNames: readonly string[] = [],
    private readonly collector?: Collect,
  ) {
    if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name ${JSON.stringify(name)}`);
    for (const label of labelNames) {
      if (!LABEL_NAME.test(label)) throw new Error(`${name}: invalid label name ${JSON.stringify(label)}`);
    }
    if (new Set(labelNames).size !== labelNames.length) throw new Error(`${name}: duplicate label names`);
    this.labelNames = [...labelNames];
    // An unlabelled metric has exactly one series, so it reads 0 from the start instead of being
    // absent until its first change (which would hide it from rate() and from the dashboard).
    if (this.labelNames.length === 0 && !collector) this.series({});
  }

  /** The value of one series; 0 for a label set never seen. */
  get(labels: Labels = {}): number {
    const key = seriesKey(this.labelValues(labels));
    if (!this.collector) return this.stored.get(key)?.value ?? 0;
    return this.collect().find((series) => seriesKey(series.values) === key)?.value ?? 0;
  }

  /** The series as a scrape sees them, in the order they were first created (or collected). */
  samples(): Sample[] {
    const series = this.collector ? this.collect() : [...this.stored.values()];
    return series.map(({ values, value }) => ({ labels: this.labelObject(values), value }));
  }

  protected series(labels: Labels): Series {
    if (this.collector) throw new Error(`${this.name} is collected at scrape time and cannot be changed`);
    const values = this.labelValues(labels);
    const key = seriesKey(values);
    let series = this.stored.get(key);
    if (!series) {
      series = { values, value: 0 };
      this.stored.set(key, series);
    }
    return series;
  }

  private collect(): Series[] {
    // Keyed so that a collector reporting one label set twice yields one series (the last): a
    // duplicate series would make Prometheus reject the whole scrape.
    const byKey = new Map<string, Series>();
    for (const [labels, value] of this.collector!()) {
      const values = this.labelValues(labels);
      byKey.set(seriesKey(values), { values, value });
    }
    return [...byKey.values()];
  }

  private labelValues(labels: Labels): string[] {
    // Written as plain loops: this runs on every labelled increment, on the hub's hot path.
    const names = this.labelNames;
    const values = new Array<string>(names.length);
    for (let i = 0; i < names.length; i++) {
      const value = Object.hasOwn(labels, names[i]!) ? labels[names[i]!] : undefined;
      if (typeof value !== 'string') throw new Error(`${this.name}: label ${names[i]} is missing`);
      values[i] = value;
    }
    let given = 0;
    for (const label in labels) if (Object.hasOwn(labels, label)) given++;
    if (given !== names.length) {
      const unknown = Object.keys(labels).filter((label) => !names.includes(label));
      throw new Error(`${this.name}: unknown label ${unknown.join(', ')}`);
    }
    return values;
  }

  private labelObject(values: readonly string[]): Record<string, string> {
    const labels: Record<string, string> = {};
    this.labelNames.forEach((label, i) => (labels[label] = values[i]!));
    return labels;
  }
}

function seriesKey(values: readonly string[]): string {
  // One value is its own key (the common case, and the cheap one); several need an unambiguous join.
  return values.length === 1 ? values[0]! : JSON.stringify(values);
}

/** A value that only goes up (until the process restarts). */
export class Counter extends Metric {
  readonly type = 'counter';

  inc(value?: number): void;
  inc(labels: Labels, value?: number): void;
  inc(labelsOrValue?: Labels | number, value = 1): void {
    const [labels, amount] = typeof labelsOrValue === 'number' ? [{}, labelsOrValue] : [labelsOrValue ?? {}, value];
    addToCounter(this.series(labels), amount, this.name);
  }

  /** A handle on one series, for hot paths: no label lookup per increment. */
  with(labels: Labels): BoundCounter {
    const target = this.series(labels);
    return {
      inc: (value = 1) => addToCounter(target, value, this.name),
      get: () => target.value,
    };
  }
}

export interface BoundCounter {
  inc(value?: number): void;
  get(): number;
}

function addToCounter(series: Series, value: number, name: string): void {
  if (!(value >= 0) || !Number.isFinite(value)) throw new RangeError(`${name}: a counter only goes up, not by ${value}`);
  series.value += value;
}

/** A value that goes up and down, set by the code or collected at scrape time. */
export class Gauge extends Metric {
  readonly type = 'gauge';

  set(value: number): void;
  set(labels: Labels, value: number): void;
  set(labelsOrValue: Labels | number, value?: number): void {
    const [labels, amount] = typeof labelsOrValue === 'number' ? [{}, labelsOrValue] : [labelsOrValue, value!];
    this.series(labels).value = amount;
  }

  inc(value?: number): void;
  inc(labels: Labels, value?: number): void;
  inc(labelsOrValue?: Labels | number, value = 1): void {
    const [labels, amount] = typeof labelsOrValue === 'number' ? [{}, labelsOrValue] : [labelsOrValue ?? {}, value];
    this.series(labels).value += amount;
  }

  dec(value?: number): void;
  dec(labels: Labels, value?: number): void;
  dec(labelsOrValue?: Labels | number, value = 1): void {
    const [labels, amount] = typeof labelsOrValue === 'number' ? [{}, labelsOrValue] : [labelsOrValue ?? {}, value];
    this.series(labels).value -= amount;
  }

  /** A handle on one series, for hot paths: no label lookup per change. */
  with(labels: Labels): BoundGauge {
    const target = this.series(labels);
    return {
      set: (value) => void (target.value = value),
      inc: (value = 1) => void (target.value += value),
      dec: (value = 1) => void (target.value -= value),
      get: () => target.value,
    };
  }
}

export interface BoundGauge {
  set(value: number): void;
  inc(value?: number): void;
  dec(value?: number): void;
  get(): number;
}

export class Registry {
  private readonly metrics = new Map<string, Metric>();

  counter(name: string, help: string, labelNames: readonly string[] = [], collect?: Collect): Counter {
    return this.register(new Counter(name, help, labelNames, collect));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = [], collect?: Collect): Gauge {
    return this.register(new Gauge(name, help, labelNames, collect));
  }

  register<M extends Counter | Gauge>(metric: M): M {
    if (this.metrics.has(metric.name)) throw new Error(`metric ${metric.name} is already registered`);
    this.metrics.set(metric.name, metric);
    return metric;
  }

  /** Prometheus text exposition format 0.0.4, metrics in registration order. */
  text(): string {
    let out = '';
    for (const metric of this.metrics.values()) {
      out += `# HELP ${metric.name} ${escapeHelp(metric.help)}\n# TYPE ${metric.name} ${metric.type}\n`;
      for (const { labels, value } of metric.samples()) {
        out += `${metric.name}${formatLabels(labels)} ${formatValue(value)}\n`;
      }
    }
    return out;
  }

  /** The same numbers for the dashboard (JSON.stringify writes NaN and infinities as null). */
  json(): Record<string, MetricJson> {
    const out: Record<string, MetricJson> = {};
    for (const metric of this.metrics.values()) {
      out[metric.name] = { type: metric.type, help: metric.help, values: metric.samples() };
    }
    return out;
  }
}

function escapeHelp(help: string): string {
  return help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatLabels(labels: Record<string, string>): string {
  const pairs = Object.entries(labels).map(([name, value]) => `${name}="${escapeLabelValue(value)}"`);
  return pairs.length === 0 ? '' : `{${pairs.join(',')}}`;
}

function formatValue(value: number): string {
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value); // NaN, integers without a fraction, floats in the shortest exact form
}

// --- The hub's metric set -------------------------------------------------------------------------

export type Transport = 'ws' | 'sse' | 'poll';
export type PublishSource = 'ws' | 'http';
export const TRANSPORTS: readonly Transport[] = ['ws', 'sse', 'poll'];
export const PUBLISH_SOURCES: readonly PublishSource[] = ['ws', 'http'];
/** Reasons the hub drops a message; these read 0 from the start, other reasons appear on first use. */
export const DROP_REASONS = ['slow_consumer', 'rate_limit', 'too_large'] as const;
export type DropReason = (typeof DROP_REASONS)[number] | (string & {});

/** What the hub's scrape-time gauges read; a missing figure leaves its gauge without a sample. */
export interface HubState {
  engine?: EngineStats;
  subscriptions?: number;
}

export interface ProcessSample {
  residentBytes: number;
  heapUsedBytes: number;
  /** User plus system CPU time since the process started. */
  cpuSeconds: number;
}

export interface HubMetricsOptions {
  /** Reads process figures at scrape time; the running process by default. */
  process?: () => ProcessSample;
  /** When the process started, in seconds since the epoch; the running process's by default. */
  startTime?: number;
  /** How many seconds of per-second message rates the dashboard can ask for (default 300). */
  rateWindow?: number;
}

/** What the dashboard reads. */
export interface HubSnapshot {
  /** The `now` the snapshot was taken at, in ms since the epoch. */
  time: number;
  uptimeSeconds: number;
  metrics: Record<string, MetricJson>;
  /** Messages per second, oldest first, one entry per complete second before `time`. */
  rates: { messagesIn: number[]; messagesOut: number[] };
}

export class HubMetrics {
  readonly connections: Gauge;
  readonly connectionsTotal: Counter;
  readonly messagesIn: Counter;
  readonly messagesOut: Counter;
  readonly bytesIn: Counter;
  readonly bytesOut: Counter;
  readonly drops: Counter;
  readonly publishes: Counter;
  readonly errors: Counter;
  readonly channels: Gauge;
  readonly historyMessages: Gauge;
  readonly subscriptions: Gauge;
  readonly rates: { messagesIn: RateSeries; messagesOut: RateSeries };
  readonly startTime: number;
  private state: () => HubState = () => ({});
  private lastTick: { time: number; messagesIn: number; messagesOut: number } | undefined;

  constructor(
    readonly registry: Registry,
    options: HubMetricsOptions = {},
  ) {
    const r = registry;
    const sample = options.process ?? sampleProcess;
    this.startTime = options.startTime ?? performance.timeOrigin / 1000;
    const window = options.rateWindow ?? 300;
    this.rates = { messagesIn: new RateSeries(window), messagesOut: new RateSeries(window) };
    const engine = () => this.state().engine;

    this.connections = r.gauge('duplex_connections', 'Open client connections.', ['transport']);
    this.connectionsTotal = r.counter('duplex_connections_total', 'Client connections accepted.', ['transport']);
    this.messagesIn = r.counter('duplex_messages_in_total', 'Messages received from clients.', ['transport']);
    this.messagesOut = r.counter('duplex_messages_out_total', 'Messages delivered to clients.', ['transport']);
    this.bytesIn = r.counter('duplex_bytes_in_total', 'Payload bytes received from clients.', ['transport']);
    this.bytesOut = r.counter('duplex_bytes_out_total', 'Payload bytes delivered to clients.', ['transport']);
    this.drops = r.counter('duplex_drops_total', 'Messages dropped instead of delivered or accepted.', ['reason']);
    this.publishes = r.counter('duplex_publishes_total', 'Publishes accepted.', ['source']);
    this.errors = r.counter('duplex_errors_total', 'Errors answered to clients, by error code.', ['code']);
    // Totals only, never per channel: channel names are chosen by clients and unbounded, each label
    // value is a time series Prometheus keeps for hours, a top-N still churns series as channels
    // rise and fall, and channel names (user ids, document ids) would leak to whoever scrapes.
    // Per-channel figures belong to the dashboard's channel view, asked of the engine.
    this.channels = r.gauge('duplex_channels', 'Channels the engine holds.', [], () => one(engine()?.channels));
    this.historyMessages = r.gauge('duplex_history_messages', 'Messages held in history, all channels.', [], () =>
      one(engine()?.historyMessages),
    );
    this.subscriptions = r.gauge('duplex_subscriptions', 'Channel subscriptions of this node.', [], () =>
      one(this.state().subscriptions),
    );
    r.gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', [], () => one(sample().residentBytes));
    r.gauge('nodejs_heap_size_used_bytes', 'V8 heap in use, in bytes.', [], () => one(sample().heapUsedBytes));
    r.counter('process_cpu_seconds_total', 'User and system CPU time spent, in seconds.', [], () =>
      one(sample().cpuSeconds),
    );
    r.gauge('process_start_time_seconds', 'Start time of the process since the epoch, in seconds.').set(this.startTime);

    // Every known label value exists (at 0) before its first event: a series that appears later
    // makes rate() and increase() miss its first increments.
    const byTransport = [
      this.connections, this.connectionsTotal, this.messagesIn, this.messagesOut, this.bytesIn, this.bytesOut,
    ];
    for (const transport of TRANSPORTS) for (const metric of byTransport) metric.with({ transport });
    for (const reason of DROP_REASONS) this.drops.with({ reason });
    for (const source of PUBLISH_SOURCES) this.publishes.with({ source });
  }

  /** Where the scrape-time gauges (channels, history, subscriptions) read their figures. */
  collect(state: () => HubState): void {
    this.state = state;
  }

  dropped(reason: DropReason, count = 1): void {
    this.drops.inc({ reason }, count);
  }

  published(source: PublishSource): void {
    this.publishes.inc({ source });
  }

  /** `code` must come from a fixed set (the hub's error codes), never from client input. */
  error(code: string): void {
    this.errors.inc({ code });
  }

  /**
   * Feeds the dashboard's per-second rates from the message counters; the hub calls it about once
   * a second. Sampling the totals, rather than recording each message, keeps the hot path to a
   * counter increment and catches every increment whichever code made it. The first call only
   * takes the baseline.
   */
  tick(now: number): void {
    const messagesIn = total(this.messagesIn);
    const messagesOut = total(this.messagesOut);
    const last = this.lastTick;
    if (last) {
      this.rates.messagesIn.recordSpan(last.time, now, messagesIn - last.messagesIn);
      this.rates.messagesOut.recordSpan(last.time, now, messagesOut - last.messagesOut);
    }
    this.lastTick = { time: now, messagesIn, messagesOut };
  }

  /** The dashboard's view at `now` (ms): every metric plus the last `seconds` of per-second rates. */
  snapshot(now: number, seconds = 60): HubSnapshot {
    return {
      time: now,
      uptimeSeconds: Math.max(0, now / 1000 - this.startTime),
      metrics: this.registry.json(),
      rates: {
        messagesIn: this.rates.messagesIn.series(now, seconds),
        messagesOut: this.rates.messagesOut.series(now, seconds),
      },
    };
  }
}

export function hubMetrics(registry = new Registry(), options: HubMetricsOptions = {}): HubMetrics {
  return new HubMetrics(registry, options);
}

function one(value: number | undefined): Array<[Labels, number]> {
  return value === undefined ? [] : [[{}, value]];
}

function total(metric: Counter): number {
  return metric.samples().reduce((sum, sample) => sum + sample.value, 0);
}

function sampleProcess(): ProcessSample {
  const memory = process.memoryUsage();
  const cpu = process.cpuUsage();
  return { residentBytes: memory.rss, heapUsedBytes: memory.heapUsed, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}
