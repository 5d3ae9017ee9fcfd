/**
 * Fan-out: one publisher, N WebSocket subscribers on one channel (N = 1,000 and 10,000), our hub
 * against a naive hub on `ws`, in the same run, on the same machine.
 *
 *   node dist/bench/fanout.js [--quick] [--rounds N] [--subscribers 1000,10000] [--profile DIR]
 *
 * Each sample is a fresh hub process on CPU 0 and a fresh load generator on CPU 1 that connects
 * the subscribers and then searches for the highest publish rate the hub sustains
 * (hub-fanout-load.ts, hub-rate-search.ts). A sample's score is its best sustained step. Rounds
 * alternate the contenders (the order rotated each round); per contender the median over rounds
 * is reported. --profile runs our hub under `node --cpu-prof` into DIR.
 * The method and the latest results are in docs/fanout.md.
 */
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { signToken } from '../src/hub/auth.js';
import { alternatingRounds } from './alternating-rounds.js';
import { FANOUT_CHANNEL, MAX_P99_MS, SUSTAINED_SHARE, type FanoutLoadResult, type FanoutStep } from './hub-fanout-result.js';
import { lastJsonLine, runPinned, type HubServer } from './hub-pinned-run.js';
import { detectPinning, type Pinning } from './pinning.js';
import { decimal, integer, machineDescription, percent, table, writeResults } from './report-format.js';
import { median } from './stats.js';

export interface FanoutOptions {
  quick: boolean;
  rounds?: number;
  /** Subscriber counts to run; SUBSCRIBER_COUNTS by default. */
  subscribers?: number[];
  /** Directory for CPU profiles of our hub (node --cpu-prof); none when unset. */
  profileDir?: string;
}

interface Plan {
  warmupMs: number;
  windowMs: number;
  refine: number;
  pinning: Pinning;
}

interface Contender {
  name: string;
  server: HubServer;
  /** Authorization headers for the subscribers and the publisher; the naive hub ignores them. */
  subscriberAuth?: string;
  publisherAuth?: string;
}

/** One sample: the whole search against one fresh server. */
export interface FanoutSample {
  round: number;
  connectMs?: number;
  steps: FanoutStep[];
  /** The best sustained step, if any step was sustained. */
  best?: number;
  error?: string;
}

export interface FanoutContenderSummary {
  name: string;
  samples: FanoutSample[];
  /** Per sample, its best sustained deliveries per second (0 when none was). */
  bestDeliveries: number[];
  medianBestDeliveries: number;
  /** Samples with a failed step that other work on the machine disturbed: their best may be too low. */
  cutShort: number;
  /** Medians, over the samples, of the figures of each sample's best step. */
  medianAtBest: {
    publishes: number; messagesPerRead: number; p50: number; p99: number; serverCpu: number; loadCpu: number; otherCpu: number;
  };
  /** Per offered deliveries/s of the doubling steps (the same for every contender): medians over the samples that sustained it. */
  atLoad: { offered: number; p50: number; p99: number; serverCpu: number; messagesPerRead: number }[];
}

export interface FanoutScenarioSummary {
  subscribers: number;
  contenders: FanoutContenderSummary[];
  /** Median best deliveries/s of duplex over that of the naive hub. */
  ratio: number | null;
}

export interface FanoutReport {
  date: string;
  machine: string;
  node: string;
  pinning: string;
  rounds: number;
  warmupMs: number;
  windowMs: number;
  /** Offered deliveries per second of the first step, the highest allowed, and the bisections after doubling. */
  search: { start: number; max: number; refine: number };
  scenarios: FanoutScenarioSummary[];
}

export const SUBSCRIBER_COUNTS = [1_000, 10_000];
const DUPLEX = 'duplex hub';
const NAIVE = 'naive ws hub';
/** The search for the best rate, in offered deliveries per second: doubling from START up to at most MAX, then REFINE bisections. */
export const SEARCH_START = 25_000;
export const SEARCH_MAX = SEARCH_START * 2 ** 9;
export const REFINE = 3;
export const QUICK_REFINE = 2;
const CONNECT_ALLOWANCE_MS = 150_000;
/** Per step beyond warm-up and window: draining (at most 10 s), waiting for a quiet machine (60 s), settling. */
const STEP_ALLOWANCE_MS = 72_000;
/** Runs of one step at most (hub-fanout-load.ts repeats disturbed ones). */
const MAX_ATTEMPTS = 4;
/** Steps of one search at most: doublings, the one that fails, the bisections. */
const MAX_STEPS = Math.log2(SEARCH_MAX / SEARCH_START) + 2 + REFINE;
/** How long one sample (connecting, then a whole search) may take before it is killed. */
export const sampleTimeLimitMs = (warmupMs: number, windowMs: number): number =>
  CONNECT_ALLOWANCE_MS + MAX_STEPS * MAX_ATTEMPTS * (warmupMs + windowMs + STEP_ALLOWANCE_MS);
/** File descriptors the load generator needs beyond one per subscriber. */
const SPARE_FDS = 100;

const here = (relative: string): string => fileURLToPath(new URL(relative, import.meta.url));

/** Tokens for the subscribers and the publisher of our hub, signed with `secret`. */
export function fanoutTokens(secret: string): { subscriber: string; publisher: string } {
  const expiresInSeconds = 24 * 3600;
  return {
    // Subscribers join the channel's presence, as every hub client does, without asking for others'
    // join and leave events (docs/fanout.md tells what those would cost).
    subscriber: signToken({ sub: 'subscriber', subscribe: [FANOUT_CHANNEL] }, secret, { expiresInSeconds }),
    // 'publisher' is as long as the naive hub's 'anonymous', so both send envelopes of the same size.
    publisher: signToken({ sub: 'publisher', publish: [FANOUT_CHANNEL] }, secret, { expiresInSeconds }),
  };
}

function contenders(profileDir: string | undefined): Contender[] {
  const secret = randomBytes(32).toString('base64url');
  const { subscriber, publisher } = fanoutTokens(secret);
  const ws = { ...process.env };
  delete ws.WS_NO_BUFFER_UTIL;
  return [
    {
      name: DUPLEX,
      server: {
        script: here('./servers/hub-server.js'),
        env: { ...process.env, HUB_BENCH_SECRET: secret },
        ...(profileDir ? { nodeOptions: ['--cpu-prof', '--cpu-prof-dir', profileDir] } : {}),
      },
      subscriberAuth: `Bearer ${subscriber}`,
      publisherAuth: `Bearer ${publisher}`,
    },
    { name: NAIVE, server: { script: here('./servers/naive-ws-hub.js'), env: ws } },
  ];
}

/** The load generator needs a descriptor per subscriber; the soft limit is what it inherits. */
export function checkDescriptorLimit(subscribers: number): void {
  const probe = spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8', timeout: 5000 });
  const limit = Number(probe.stdout?.trim());
  if (Number.isFinite(limit) && limit < subscribers + SPARE_FDS) {
    throw new Error(`ulimit -n is ${limit}; ${subscribers} subscribers need at least ${subscribers + SPARE_FDS} (raise it: ulimit -n ${subscribers * 2})`);
  }
}

async function takeSample(contender: Contender, subscribers: number, round: number, plan: Plan): Promise<FanoutSample> {
  const args = (port: string, serverPid: number): string[] => [
    '--port', port,
    '--server-pid', String(serverPid),
    '--subscribers', String(subscribers),
    '--start-rate', String(SEARCH_START / subscribers),
    '--max-rate', String(SEARCH_MAX / subscribers),
    '--refine', String(plan.refine),
    '--warmup', String(plan.warmupMs),
    '--window', String(plan.windowMs),
    ...(contender.subscriberAuth ? ['--subscriber-auth', contender.subscriberAuth] : []),
    ...(contender.publisherAuth ? ['--publisher-auth', contender.publisherAuth] : []),
  ];
  const timeLimitMs = sampleTimeLimitMs(plan.warmupMs, plan.windowMs);
  try {
    const output = await runPinned(contender.server, { script: here('./hub-fanout-load.js'), args, timeLimitMs }, plan.pinning);
    const result = lastJsonLine<FanoutLoadResult>(output);
    const steps = result.steps;
    const sustained = steps.filter((s) => s.sustained);
    const best = sustained.length === 0 ? undefined
      : steps.indexOf(sustained.reduce((a, b) => (b.deliveriesPerSecond > a.deliveriesPerSecond ? b : a)));
    return {
      round, connectMs: result.connectMs, steps,
      ...(best === undefined ? {} : { best }),
      ...(result.error ? { error: result.error } : {}),
    };
  } catch (error) {
    return { round, steps: [], error: error instanceof Error ? error.message : String(error) };
  }
}

function progress(sample: FanoutSample): string {
  const best = sample.best === undefined ? undefined : sample.steps[sample.best]!;
  const last = sample.steps.at(-1);
  const bestText = best
    ? `best sustained ${integer(best.deliveriesPerSecond)} deliveries/s (${decimal(best.rate, 1)} publishes/s, ${decimal(best.messagesPerRead, 1)} msgs/read, ` +
      `p50 ${decimal(best.latency.p50, 1)} ms, p99 ${decimal(best.latency.p99, 1)} ms, hub CPU ${percent(best.serverCpu)}, load CPU ${percent(best.loadCpu)})`
    : 'no sustained step';
  const stop = last && !last.sustained
    ? `; last step, not sustained: ${integer(last.offeredPerSecond)} offered, ${integer(last.deliveriesPerSecond)} delivered/s, ` +
      `p99 ${decimal(last.latency.p99, 0)} ms, hub CPU ${percent(last.serverCpu)}${last.drained ? '' : ', backlog not drained'}` +
      `${last.disturbed ? `, DISTURBED (other CPU ${decimal(last.otherCpu, 2)})` : ''}`
    : '';
  const error = sample.error ? `; ERROR ${sample.error}` : '';
  return `${bestText}${stop}${error}`;
}

const definedValues = (values: (number | undefined)[]): number[] => values.filter((v): v is number => v !== undefined);

function summarize(name: string, samples: FanoutSample[]): FanoutContenderSummary {
  const bestSteps = samples.flatMap((s) => (s.best === undefined ? [] : [s.steps[s.best]!]));
  const bestDeliveries = samples.map((s) => (s.best === undefined ? 0 : s.steps[s.best]!.deliveriesPerSecond));
  return {
    name,
    samples,
    bestDeliveries,
    medianBestDeliveries: median(bestDeliveries),
    cutShort: samples.filter((s) => s.steps.some((step) => step.disturbed === true && !step.sustained)).length,
    medianAtBest: {
      publishes: median(bestSteps.map((s) => s.publishedPerSecond)),
      messagesPerRead: median(bestSteps.map((s) => s.messagesPerRead)),
      p50: median(bestSteps.map((s) => s.latency.p50)),
      p99: median(bestSteps.map((s) => s.latency.p99)),
      serverCpu: median(definedValues(bestSteps.map((s) => s.serverCpu))),
      loadCpu: median(bestSteps.map((s) => s.loadCpu)),
      otherCpu: median(definedValues(bestSteps.map((s) => s.otherCpu))),
    },
    atLoad: latencyAtLoad(samples),
  };
}

function latencyAtLoad(samples: FanoutSample[]): FanoutContenderSummary['atLoad'] {
  const byOffered = new Map<number, FanoutStep[]>();
  for (const step of samples.flatMap((s) => s.steps)) {
    // Only the doubling steps: bisection rates differ from sample to sample.
    const doublings = Math.log2(step.offeredPerSecond / SEARCH_START);
    if (!step.sustained || Math.abs(doublings - Math.round(doublings)) > 1e-9) continue;
    const offered = Math.round(step.offeredPerSecond);
    byOffered.set(offered, [...(byOffered.get(offered) ?? []), step]);
  }
  return [...byOffered].sort(([a], [b]) => a - b).map(([offered, steps]) => ({
    offered,
    p50: median(steps.map((s) => s.latency.p50)),
    p99: median(steps.map((s) => s.latency.p99)),
    serverCpu: median(definedValues(steps.map((s) => s.serverCpu))),
    messagesPerRead: median(steps.map((s) => s.messagesPerRead)),
  }));
}

/** p50 / p99, hub CPU and messages per read at each offered load some contender sustained; "—" where one did not. */
function atLoadTable(scenario: FanoutScenarioSummary): string[] {
  const offered = [...new Set(scenario.contenders.flatMap((c) => c.atLoad.map((l) => l.offered)))].sort((a, b) => a - b);
  const cells = (c: FanoutContenderSummary, o: number): string[] => {
    const l = c.atLoad.find((x) => x.offered === o);
    if (!l) return ['—', '—', '—'];
    return [`${decimal(l.p50, 1)} / ${decimal(l.p99, 1)}`, percent(l.serverCpu), decimal(l.messagesPerRead, 1)];
  };
  return table(
    ['offered deliveries/s', ...scenario.contenders.flatMap((c) => [`${c.name} p50 / p99 ms`, `${c.name} CPU`, `${c.name} msgs/read`])],
    ['r', ...scenario.contenders.flatMap((): ('l' | 'r')[] => ['r', 'r', 'r'])],
    offered.map((o) => [integer(o), ...scenario.contenders.flatMap((c) => cells(c, o))]),
  );
}

export function fanoutMarkdown(report: FanoutReport): string {
  const lines: string[] = [
    `${report.date.slice(0, 10)}, ${report.machine}, Node ${report.node}; ${report.pinning}; ` +
      `${report.rounds} rounds; each step ${report.warmupMs} ms warm-up + ${report.windowMs} ms window; ` +
      `offered deliveries/s doubled from ${integer(report.search.start)}, then ${report.search.refine} bisections.`,
    '',
  ];
  for (const scenario of report.scenarios) {
    lines.push(`${integer(scenario.subscribers)} subscribers`, '');
    const rows = scenario.contenders.map((c) => {
      const ok = c.bestDeliveries.filter((d) => d > 0);
      const m = c.medianAtBest;
      return [
        c.name,
        integer(c.medianBestDeliveries),
        ok.length ? `${integer(Math.min(...ok))}–${integer(Math.max(...ok))}` : 'n/a',
        decimal(m.publishes, 0),
        decimal(m.messagesPerRead, 1),
        decimal(m.p50, 1),
        decimal(m.p99, 1),
        percent(m.serverCpu),
        percent(m.loadCpu),
        percent(m.otherCpu),
        `${ok.length}/${c.samples.length}`,
        String(c.cutShort),
      ];
    });
    lines.push(...table(
      ['contender', 'best sustained deliveries/s (median)', 'min–max', 'publishes/s', 'messages per read', 'p50 ms', 'p99 ms', 'hub CPU', 'load CPU', 'other CPU', 'rounds with a sustained step', 'cut short by other work'],
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      rows,
    ));
    lines.push('', `duplex hub / naive ws hub: ${scenario.ratio === null ? 'n/a' : `${decimal(scenario.ratio, 2)}×`}`, '');
    lines.push('At equal offered load (the doubling steps; medians over the rounds that sustained them):', '', ...atLoadTable(scenario), '');
  }
  return lines.join('\n');
}

export async function runFanout(options: FanoutOptions): Promise<FanoutReport> {
  const rounds = options.rounds ?? (options.quick ? 2 : 3);
  const plan: Plan = {
    warmupMs: options.quick ? 500 : 1000,
    windowMs: options.quick ? 1500 : 2000,
    refine: options.quick ? QUICK_REFINE : REFINE,
    pinning: detectPinning(),
  };
  const list = contenders(options.profileDir);
  console.log(
    `fan-out benchmark: ${rounds} rounds; offered deliveries/s doubled from ${integer(SEARCH_START)}, then ${plan.refine} bisections; ` +
      `a step is sustained at ≥ ${SUSTAINED_SHARE * 100}% of offered with p99 ≤ ${MAX_P99_MS} ms; ${plan.pinning.note}`,
  );
  const scenarios: FanoutScenarioSummary[] = [];
  for (const subscribers of options.subscribers ?? SUBSCRIBER_COUNTS) {
    checkDescriptorLimit(subscribers);
    console.log(`\n${integer(subscribers)} subscribers`);
    const samples = await alternatingRounds(
      list, rounds,
      (contender, round) => takeSample(contender, subscribers, round, plan),
      (contender, round, sample) => console.log(`  round ${round + 1}/${rounds} ${contender.name.padEnd(13)} ${progress(sample)}`),
    );
    const summaries = list.map((c) => summarize(c.name, samples.get(c.name)!));
    const [ours, naive] = [DUPLEX, NAIVE].map((n) => summaries.find((s) => s.name === n)!.medianBestDeliveries);
    const ratio = ours! / naive!;
    scenarios.push({ subscribers, contenders: summaries, ratio: Number.isFinite(ratio) ? ratio : null });
  }
  const report: FanoutReport = {
    date: new Date().toISOString(),
    machine: machineDescription(),
    node: process.version,
    pinning: plan.pinning.note,
    rounds,
    warmupMs: plan.warmupMs,
    windowMs: plan.windowMs,
    search: { start: SEARCH_START, max: SEARCH_MAX, refine: plan.refine },
    scenarios,
  };
  console.log(`results written to ${writeResults('fanout', report.date, report)}`);
  console.log(`\n${fanoutMarkdown(report)}`);
  return report;
}

/**
 * The command line shared by the fan-out suites: --quick, --rounds N, --subscribers 1000,10000,
 * --profile DIR, plus a suite's own string options.
 */
export function fanoutArgs(extra: Record<string, { type: 'string' }> = {}): { options: FanoutOptions; values: Record<string, string | boolean | undefined> } {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      subscribers: { type: 'string' },
      profile: { type: 'string' },
      ...extra,
    },
  });
  const rounds = values.rounds === undefined ? undefined : Number(values.rounds);
  if (rounds !== undefined && (!Number.isInteger(rounds) || rounds < 1)) throw new Error('--rounds needs a positive integer');
  const subscribers = typeof values.subscribers === 'string' ? values.subscribers.split(',').map(Number) : undefined;
  if (subscribers?.some((n) => !Number.isInteger(n) || n < 1)) throw new Error('--subscribers needs positive integers, comma-separated');
  return {
    options: {
      quick: values.quick === true,
      ...(rounds ? { rounds } : {}),
      ...(subscribers ? { subscribers } : {}),
      ...(typeof values.profile === 'string' ? { profileDir: values.profile } : {}),
    },
    values,
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runFanout(fanoutArgs().options);
}
