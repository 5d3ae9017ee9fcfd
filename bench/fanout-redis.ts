/**
 * Fan-out through Redis: one publisher, N WebSocket subscribers on one channel, served by two hub
 * nodes on the Redis engine (subscribers split half and half, the publisher on node 1) against one
 * node on the in-memory engine, in the same run, on the same machine.
 *
 *   node dist/bench/fanout-redis.js [--quick] [--rounds N] [--subscribers 1000,10000]
 *        [--rate R] [--profile DIR]
 *
 * Each sample is fresh processes: the node(s) and, for the Redis contender, a fresh redis-server,
 * all on CPU 0, and the load generator on CPU 1 (hub-nodes-run.ts). The load generator connects
 * the subscribers and searches for the highest publish rate the hub sustains, as in fanout.ts (same
 * search, same rule for a sustained step); it measures the CPU of every server process per window.
 * Rounds alternate the contenders (the order rotated each round); per contender the median over
 * rounds is reported, and the ratio Redis / in-memory. --rate R publishes R messages per second
 * in one step with a 5 s window instead of searching (for profiles: the window then outweighs
 * connecting); with --profile DIR every node runs under `node --cpu-prof`.
 * Method and results: docs/fanout-redis.md.
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { alternatingRounds } from './alternating-rounds.js';
import {
  checkDescriptorLimit, fanoutTokens, QUICK_REFINE, REFINE, sampleTimeLimitMs, SEARCH_MAX, SEARCH_START, fanoutArgs,
} from './fanout.js';
import { MAX_P99_MS, SUSTAINED_SHARE, type FanoutLoadResult, type FanoutStep } from './hub-fanout-result.js';
import { runPinnedNodes, type HubNodes } from './hub-nodes-run.js';
import { lastJsonLine } from './hub-pinned-run.js';
import { detectPinning, type Pinning } from './pinning.js';
import { redisServerVersion, type CommandStat } from './redis-server.js';
import { decimal, integer, machineDescription, percent, table, writeResults } from './report-format.js';
import { median } from './stats.js';

export interface FanoutRedisOptions {
  quick: boolean;
  rounds?: number;
  subscribers?: number[];
  /** One step at this many publishes per second instead of the search (for profiles). */
  rate?: number;
  /** Directory for CPU profiles of every node (node --cpu-prof). */
  profileDir?: string;
}

interface Plan {
  warmupMs: number;
  windowMs: number;
  refine: number;
  pinning: Pinning;
  rate?: number;
}

interface Contender extends HubNodes {
  name: string;
}

export interface FanoutRedisSample {
  round: number;
  nodePids: number[];
  connectMs?: number;
  steps: FanoutStep[];
  best?: number;
  /** From the end of connecting to the end of the search (before the subscribers leave). */
  redisCommands?: CommandStat[];
  redisCpuSeconds?: number;
  error?: string;
}

/** CPU of a step split between the nodes (together) and redis-server, in fractions of one core. */
interface CpuSplit {
  nodes?: number;
  redis?: number;
}

export interface AtLoad {
  offered: number;
  p50: number;
  p99: number;
  nodeCpu: number;
  redisCpu?: number;
  /** CPU microseconds per delivery: nodes and redis-server together. */
  usPerDelivery: number;
  messagesPerRead: number;
  rounds: number;
}

export interface FanoutRedisContenderSummary {
  name: string;
  nodes: number;
  samples: FanoutRedisSample[];
  bestDeliveries: number[];
  medianBestDeliveries: number;
  cutShort: number;
  /** Medians over the samples of the figures of each one's best step. */
  medianAtBest: {
    publishes: number; messagesPerRead: number; p50: number; p99: number; nodeCpu: number; redisCpu?: number;
    nodeUsPerDelivery: number; redisUsPerDelivery?: number; loadCpu: number; otherCpu: number;
  };
  atLoad: AtLoad[];
  /** Redis's command time, summed over the samples, the largest first. */
  redisCommands?: CommandStat[];
  /** Redis's CPU seconds over the same spans. */
  redisCpuSeconds?: number;
}

export interface FanoutRedisScenario {
  subscribers: number;
  contenders: FanoutRedisContenderSummary[];
  /** Median best deliveries/s of the Redis contender over that of the in-memory one. */
  ratio: number | null;
}

export interface FanoutRedisReport {
  date: string;
  machine: string;
  node: string;
  redis: string;
  pinning: string;
  rounds: number;
  warmupMs: number;
  windowMs: number;
  search: { start: number; max: number; refine: number } | { rate: number };
  scenarios: FanoutRedisScenario[];
}

export const SUBSCRIBER_COUNTS = [1_000, 10_000];
const MEMORY = 'in-memory, 1 node';
const REDIS = 'Redis, 2 nodes';
const PROFILE_WINDOW_MS = 5000;
/** The load generator prints these once set up and once done measuring; Redis's command statistics count between them. */
const CONNECTED = 'CONNECTED';
const MEASURED = 'MEASURED';

const here = (relative: string): string => fileURLToPath(new URL(relative, import.meta.url));

function contenders(secret: string, profileDir: string | undefined): Contender[] {
  const server = {
    script: here('./servers/hub-server.js'),
    env: { ...process.env, HUB_BENCH_SECRET: secret },
    ...(profileDir ? { nodeOptions: ['--cpu-prof', '--cpu-prof-dir', profileDir] } : {}),
  };
  return [{ name: MEMORY, nodes: 1, server }, { name: REDIS, nodes: 2, server }];
}

async function takeSample(contender: Contender, subscribers: number, round: number, plan: Plan, secret: string): Promise<FanoutRedisSample> {
  const tokens = fanoutTokens(secret);
  const [startRate, maxRate] = plan.rate === undefined ? [SEARCH_START / subscribers, SEARCH_MAX / subscribers] : [plan.rate, plan.rate];
  const args = (ports: number[], serverPids: number[]): string[] => [
    '--port', ports.join(','),
    '--server-pid', serverPids.join(','),
    '--subscribers', String(subscribers),
    '--start-rate', String(startRate),
    '--max-rate', String(maxRate),
    '--refine', String(plan.refine),
    '--warmup', String(plan.warmupMs),
    '--window', String(plan.windowMs),
    '--subscriber-auth', `Bearer ${tokens.subscriber}`,
    '--publisher-auth', `Bearer ${tokens.publisher}`,
  ];
  const load = { script: here('./hub-fanout-load.js'), args, timeLimitMs: sampleTimeLimitMs(plan.warmupMs, plan.windowMs), countFrom: CONNECTED, countTo: MEASURED };
  let nodePids: number[] = [];
  try {
    const output = await runPinnedNodes(contender, load, plan.pinning);
    nodePids = output.nodePids;
    const result = lastJsonLine<FanoutLoadResult>(output.stdout);
    const steps = result.steps;
    const sustained = steps.filter((s) => s.sustained);
    const best = sustained.length === 0 ? undefined
      : steps.indexOf(sustained.reduce((a, b) => (b.deliveriesPerSecond > a.deliveriesPerSecond ? b : a)));
    return {
      round, nodePids, connectMs: result.connectMs, steps,
      ...(best === undefined ? {} : { best }),
      ...(output.redisCommands ? { redisCommands: output.redisCommands } : {}),
      ...(output.redisCpuSeconds === undefined ? {} : { redisCpuSeconds: output.redisCpuSeconds }),
      ...(result.error ? { error: result.error } : {}),
    };
  } catch (error) {
    return { round, nodePids, steps: [], error: error instanceof Error ? error.message : String(error) };
  }
}

/** The server PIDs are the nodes', then redis-server's: split the per-process CPU accordingly. */
function cpuSplit(step: FanoutStep, nodes: number): CpuSplit {
  if (nodes === 1) return step.serverCpu === undefined ? {} : { nodes: step.serverCpu };
  const each = step.serverCpus;
  if (each === undefined || each.length !== nodes + 1) return {};
  return { nodes: each.slice(0, nodes).reduce((a, b) => a + b, 0), redis: each[nodes]! };
}

const perDelivery = (cpu: number | undefined, step: FanoutStep): number | undefined =>
  cpu === undefined || step.deliveriesPerSecond === 0 ? undefined : (cpu / step.deliveriesPerSecond) * 1e6;

const defined = (values: (number | undefined)[]): number[] => values.filter((v): v is number => v !== undefined);
/** The median of the values there are; undefined when there are none. */
const medianOf = (values: (number | undefined)[]): number | undefined => {
  const known = defined(values);
  return known.length === 0 ? undefined : median(known);
};

function progress(sample: FanoutRedisSample, nodes: number): string {
  const best = sample.best === undefined ? undefined : sample.steps[sample.best]!;
  let text = 'no sustained step';
  if (best) {
    const cpu = cpuSplit(best, nodes);
    const redis = cpu.redis === undefined ? '' : `, Redis CPU ${percent(cpu.redis)}`;
    text = `best sustained ${integer(best.deliveriesPerSecond)} deliveries/s (${decimal(best.publishedPerSecond, 0)} publishes/s, ` +
      `${decimal(best.messagesPerRead, 1)} msgs/read, p50 ${decimal(best.latency.p50, 1)} ms, p99 ${decimal(best.latency.p99, 1)} ms, ` +
      `node CPU ${percent(cpu.nodes)}${redis}, load CPU ${percent(best.loadCpu)})`;
  }
  const last = sample.steps.at(-1);
  if (last && !last.sustained) {
    text += `; last step, not sustained: ${integer(last.offeredPerSecond)} offered, ${integer(last.deliveriesPerSecond)} delivered/s, ` +
      `p99 ${decimal(last.latency.p99, 0)} ms${last.drained ? '' : ', backlog not drained'}` +
      `${last.disturbed ? `, DISTURBED (other CPU ${decimal(last.otherCpu, 2)})` : ''}`;
  }
  return sample.error ? `${text}; ERROR ${sample.error}` : text;
}

function summarize(contender: Contender, samples: FanoutRedisSample[]): FanoutRedisContenderSummary {
  const bestSteps = samples.flatMap((s) => (s.best === undefined ? [] : [s.steps[s.best]!]));
  const bestDeliveries = samples.map((s) => (s.best === undefined ? 0 : s.steps[s.best]!.deliveriesPerSecond));
  const splits = bestSteps.map((s) => cpuSplit(s, contender.nodes));
  const redisCpu = medianOf(splits.map((c) => c.redis));
  const redisUsPerDelivery = medianOf(bestSteps.map((s, i) => perDelivery(splits[i]!.redis, s)));
  return {
    name: contender.name,
    nodes: contender.nodes,
    samples,
    bestDeliveries,
    medianBestDeliveries: median(bestDeliveries),
    cutShort: samples.filter((s) => s.steps.some((step) => step.disturbed === true && !step.sustained)).length,
    medianAtBest: {
      publishes: median(bestSteps.map((s) => s.publishedPerSecond)),
      messagesPerRead: median(bestSteps.map((s) => s.messagesPerRead)),
      p50: median(bestSteps.map((s) => s.latency.p50)),
      p99: median(bestSteps.map((s) => s.latency.p99)),
      nodeCpu: medianOf(splits.map((c) => c.nodes)) ?? Number.NaN,
      ...(redisCpu === undefined ? {} : { redisCpu }),
      nodeUsPerDelivery: medianOf(bestSteps.map((s, i) => perDelivery(splits[i]!.nodes, s))) ?? Number.NaN,
      ...(redisUsPerDelivery === undefined ? {} : { redisUsPerDelivery }),
      loadCpu: median(bestSteps.map((s) => s.loadCpu)),
      otherCpu: medianOf(bestSteps.map((s) => s.otherCpu)) ?? Number.NaN,
    },
    atLoad: atLoad(samples, contender.nodes),
    ...redisTotals(samples),
  };
}

/** Per offered load of the doubling steps (the same for both contenders): medians over the samples that sustained it. */
function atLoad(samples: FanoutRedisSample[], nodes: number): AtLoad[] {
  const byOffered = new Map<number, FanoutStep[]>();
  for (const step of samples.flatMap((s) => s.steps)) {
    const doublings = Math.log2(step.offeredPerSecond / SEARCH_START);
    if (!step.sustained || Math.abs(doublings - Math.round(doublings)) > 1e-9) continue;
    const offered = Math.round(step.offeredPerSecond);
    byOffered.set(offered, [...(byOffered.get(offered) ?? []), step]);
  }
  return [...byOffered].sort(([a], [b]) => a - b).map(([offered, steps]) => {
    const splits = steps.map((s) => cpuSplit(s, nodes));
    const redisCpu = medianOf(splits.map((c) => c.redis));
    return {
      offered,
      p50: median(steps.map((s) => s.latency.p50)),
      p99: median(steps.map((s) => s.latency.p99)),
      nodeCpu: medianOf(splits.map((c) => c.nodes)) ?? Number.NaN,
      ...(redisCpu === undefined ? {} : { redisCpu }),
      usPerDelivery: medianOf(steps.map((s, i) => perDelivery((splits[i]!.nodes ?? Number.NaN) + (splits[i]!.redis ?? 0), s))) ?? Number.NaN,
      messagesPerRead: median(steps.map((s) => s.messagesPerRead)),
      rounds: steps.length,
    };
  });
}

function redisTotals(samples: FanoutRedisSample[]): Pick<FanoutRedisContenderSummary, 'redisCommands' | 'redisCpuSeconds'> {
  const counted = samples.filter((s) => s.redisCommands !== undefined && s.redisCpuSeconds !== undefined);
  if (counted.length === 0) return {};
  const totals = new Map<string, CommandStat>();
  for (const stat of counted.flatMap((s) => s.redisCommands!)) {
    const total = totals.get(stat.command) ?? { command: stat.command, calls: 0, usec: 0 };
    total.calls += stat.calls;
    total.usec += stat.usec;
    totals.set(stat.command, total);
  }
  return {
    redisCommands: [...totals.values()].sort((a, b) => b.usec - a.usec),
    redisCpuSeconds: counted.reduce((sum, s) => sum + s.redisCpuSeconds!, 0),
  };
}

function summaryTable(scenario: FanoutRedisScenario): string[] {
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
      percent(m.nodeCpu),
      m.redisCpu === undefined ? '—' : percent(m.redisCpu),
      m.redisUsPerDelivery === undefined ? decimal(m.nodeUsPerDelivery, 2) : `${decimal(m.nodeUsPerDelivery, 2)} + ${decimal(m.redisUsPerDelivery, 2)}`,
      percent(m.loadCpu),
      `${ok.length}/${c.samples.length}`,
      String(c.cutShort),
    ];
  });
  return table(
    ['contender', 'best sustained deliveries/s (median)', 'min–max', 'publishes/s', 'messages per read', 'p50 ms', 'p99 ms',
      'node CPU', 'Redis CPU', 'CPU µs per delivery (nodes + Redis)', 'load CPU', 'rounds with a sustained step', 'cut short by other work'],
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    rows,
  );
}

function atLoadTable(scenario: FanoutRedisScenario): string[] {
  const offered = [...new Set(scenario.contenders.flatMap((c) => c.atLoad.map((l) => l.offered)))].sort((a, b) => a - b);
  const cells = (c: FanoutRedisContenderSummary, o: number): string[] => {
    const l = c.atLoad.find((x) => x.offered === o);
    if (!l) return ['—', '—', '—'];
    const cpu = l.redisCpu === undefined ? percent(l.nodeCpu) : `${percent(l.nodeCpu)} + ${percent(l.redisCpu)}`;
    return [`${decimal(l.p50, 1)} / ${decimal(l.p99, 1)}`, cpu, decimal(l.usPerDelivery, 2)];
  };
  return table(
    ['offered deliveries/s', ...scenario.contenders.flatMap((c) => [`${c.name}: p50 / p99 ms`, `${c.name}: CPU`, `${c.name}: CPU µs per delivery`])],
    ['r', ...scenario.contenders.flatMap((): ('l' | 'r')[] => ['r', 'r', 'r'])],
    offered.map((o) => [integer(o), ...scenario.contenders.flatMap((c) => cells(c, o))]),
  );
}

/** Redis's command time by command, per message published (XADD runs once per publish). */
function redisCommandTable(c: FanoutRedisContenderSummary): string[] {
  const commands = c.redisCommands ?? [];
  const publishes = commands.find((s) => s.command === 'xadd')?.calls ?? 0;
  const total = commands.reduce((sum, s) => sum + s.usec, 0);
  const lines = table(
    ['command', 'calls per publish', 'µs per call', 'share of command time'],
    ['l', 'r', 'r', 'r'],
    commands.slice(0, 8).map((s) => [
      s.command, publishes === 0 ? 'n/a' : decimal(s.calls / publishes, 2), decimal(s.usec / s.calls, 2), percent(total === 0 ? 0 : s.usec / total),
    ]),
  );
  const cpu = c.redisCpuSeconds;
  const perPublish = (seconds: number | undefined): string => (publishes === 0 || seconds === undefined ? 'n/a' : decimal((seconds * 1e6) / publishes, 1));
  lines.push('', `redis-server used ${decimal(cpu, 2)} s of CPU over these spans (from /proc), ${perPublish(cpu)} µs per publish. ` +
    `Command time is the wall-clock time spent inside commands (${decimal(total / 1e6, 2)} s, ${perPublish(total / 1e6)} µs per publish): ` +
    'on a core shared with the nodes it includes waiting for that core, so it shows proportions, not CPU.');
  return lines;
}

export function fanoutRedisMarkdown(report: FanoutRedisReport): string {
  const search = 'rate' in report.search
    ? `one step at ${report.search.rate} publishes/s`
    : `offered deliveries/s doubled from ${integer(report.search.start)}, then ${report.search.refine} bisections`;
  const lines: string[] = [
    `${report.date.slice(0, 10)}, ${report.machine}, Node ${report.node}, ${report.redis}; ${report.pinning}; ` +
      `${report.rounds} rounds; each step ${report.warmupMs} ms warm-up + ${report.windowMs} ms window; ${search}.`,
    '',
  ];
  for (const scenario of report.scenarios) {
    lines.push(`${integer(scenario.subscribers)} subscribers`, '', ...summaryTable(scenario), '');
    lines.push(`${REDIS} / ${MEMORY}: ${scenario.ratio === null ? 'n/a' : `${decimal(scenario.ratio, 2)}×`}`, '');
    lines.push('At equal offered load (the doubling steps; medians over the rounds that sustained them; CPU: nodes + Redis):', '', ...atLoadTable(scenario), '');
    for (const c of scenario.contenders.filter((x) => x.redisCommands !== undefined)) {
      lines.push(`Redis commands (${c.name}, all rounds, from the end of connecting to the end of the search):`, '', ...redisCommandTable(c), '');
    }
  }
  return lines.join('\n');
}

export async function runFanoutRedis(options: FanoutRedisOptions): Promise<FanoutRedisReport> {
  const redis = redisServerVersion();
  if (redis === undefined) throw new Error('redis-server is not installed (npm run setup installs it)');
  const rounds = options.rounds ?? (options.quick ? 2 : 3);
  const plan: Plan = {
    warmupMs: options.quick ? 500 : 1000,
    windowMs: options.rate !== undefined ? PROFILE_WINDOW_MS : options.quick ? 1500 : 2000,
    refine: options.rate !== undefined ? 0 : options.quick ? QUICK_REFINE : REFINE,
    pinning: detectPinning(),
    ...(options.rate === undefined ? {} : { rate: options.rate }),
  };
  const secret = randomBytes(32).toString('base64url');
  const list = contenders(secret, options.profileDir);
  const search = plan.rate === undefined
    ? `offered deliveries/s doubled from ${integer(SEARCH_START)}, then ${plan.refine} bisections`
    : `one step at ${plan.rate} publishes/s`;
  console.log(
    `fan-out through Redis: ${rounds} rounds; ${search}; a step is sustained at ≥ ${SUSTAINED_SHARE * 100}% of offered with ` +
      `p99 ≤ ${MAX_P99_MS} ms; ${plan.pinning.note} (every node and redis-server on the server CPU); ${redis}`,
  );
  const scenarios: FanoutRedisScenario[] = [];
  for (const subscribers of options.subscribers ?? SUBSCRIBER_COUNTS) {
    checkDescriptorLimit(subscribers);
    console.log(`\n${integer(subscribers)} subscribers`);
    const samples = await alternatingRounds(
      list, rounds,
      (contender, round) => takeSample(contender, subscribers, round, plan, secret),
      (contender, round, sample) => console.log(
        `  round ${round + 1}/${rounds} ${contender.name.padEnd(17)} ${progress(sample, contender.nodes)}` +
          `${options.profileDir ? ` [node PIDs ${sample.nodePids.join(', ')}]` : ''}`,
      ),
    );
    const summaries = list.map((c) => summarize(c, samples.get(c.name)!));
    const [memory, shared] = [MEMORY, REDIS].map((n) => summaries.find((s) => s.name === n)!.medianBestDeliveries);
    const ratio = shared! / memory!;
    scenarios.push({ subscribers, contenders: summaries, ratio: Number.isFinite(ratio) ? ratio : null });
  }
  const report: FanoutRedisReport = {
    date: new Date().toISOString(),
    machine: machineDescription(),
    node: process.version,
    redis,
    pinning: plan.pinning.note,
    rounds,
    warmupMs: plan.warmupMs,
    windowMs: plan.windowMs,
    search: plan.rate === undefined ? { start: SEARCH_START, max: SEARCH_MAX, refine: plan.refine } : { rate: plan.rate },
    scenarios,
  };
  console.log(`results written to ${writeResults('fanout-redis', report.date, report)}`);
  console.log(`\n${fanoutRedisMarkdown(report)}`);
  return report;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { options, values } = fanoutArgs({ rate: { type: 'string' } });
  const rate = values.rate === undefined ? undefined : Number(values.rate);
  if (rate !== undefined && !(Number.isFinite(rate) && rate > 0)) throw new Error('--rate needs a positive number of publishes per second');
  await runFanoutRedis({ ...options, ...(rate === undefined ? {} : { rate }) });
}
