/**
 * The long fuzz run: the fuzzers of test/fuzz.test.ts, for much longer and with a fresh seed each time.
 * Never part of CI.
 *
 *   node dist/bench/fuzz.js [--frames N] [--seconds S] [--seed N] [--deflate-share F]
 *   node dist/bench/fuzz.js --replay SEED [--deflate]      one in-process case, with its failure report
 *   node dist/bench/fuzz.js --replay-live SEED             one attacker connection against a fresh server
 *
 * --frames: frames for the in-process fuzz (default 1,000,000; a tenth as many again with permessage-deflate).
 * --seconds: length of the live fuzz (default 60). --deflate-share: share of live attackers that negotiate
 * permessage-deflate (default 0.4). Exits 1 when an invariant broke.
 */
import { parseArgs } from 'node:util';
import { describeFailure, formatConnectionStats, fuzzConnection, FUZZ_MAX_PAYLOAD, runCase, type ConnectionFuzzStats } from '../test/support/fuzz.js';
import { attack, attackPlan, formatLiveStats, fuzzLive, startEchoServer, type LiveFuzzStats } from '../test/support/fuzz-live.js';

const { values } = parseArgs({
  options: {
    frames: { type: 'string', default: '1000000' },
    seconds: { type: 'string', default: '60' },
    seed: { type: 'string' },
    'deflate-share': { type: 'string', default: '0.4' },
    replay: { type: 'string' },
    deflate: { type: 'boolean', default: false },
    'replay-live': { type: 'string' },
  },
});

function number(name: string, text: string | undefined): number {
  const value = Number(text);
  if (text === undefined || !Number.isFinite(value) || value < 0) throw new Error(`--${name} needs a non-negative number, not ${text}`);
  return value;
}

const show = (data: unknown) => JSON.stringify(data, (_key, v) => (v && v.type === 'Buffer' ? `<${v.data.length} bytes>` : v));

async function replay(seed: number, deflate: boolean): Promise<boolean> {
  const run = await runCase(seed, deflate);
  console.log(`case seed ${seed}${run.mode ? `, permessage-deflate ${run.mode.contextTakeover ? 'with' : 'without'} context takeover` : ''}`);
  console.log(`mutations: ${run.fuzzCase.mutations.join(', ') || 'none'}`);
  console.log(`stream (${run.fuzzCase.bytes.length} bytes): ${run.fuzzCase.bytes.subarray(0, 256).toString('hex')}${run.fuzzCase.bytes.length > 256 ? ' …' : ''}`);
  console.log(`receive() calls: ${run.chunks.map((c) => c.length).join(', ')}`);
  console.log(`expected: ${show(run.expected)}`);
  console.log(`observed: ${show(run.observed)}`);
  if (!run.problem) {
    console.log('ok: every invariant holds');
    return true;
  }
  console.log(await describeFailure(run));
  return false;
}

async function replayLive(seed: number, deflateShare: number): Promise<boolean> {
  const plan = attackPlan({ seed, maxPayload: FUZZ_MAX_PAYLOAD, earlyShare: 0.2, deflateShare });
  console.log(`attacker seed ${seed}: offer ${plan.offer ?? 'none'}, mutations ${plan.fuzzCase.mutations.join(', ') || 'none'}, ${plan.abrupt ? 'drops the connection' : `expects ${show(plan.expected)}`}`);
  const { wss, port } = await startEchoServer(FUZZ_MAX_PAYLOAD);
  try {
    const result = await attack({ port, seed, maxPayload: FUZZ_MAX_PAYLOAD, earlyShare: 0.2, deflateShare });
    console.log(`ok: the server wrote ${result.written.map((f) => `opcode ${f.opcode} (${f.payload.length} bytes)`).join(', ') || 'nothing'}`);
    return true;
  } catch (err) {
    console.log(`FAILED: ${(err as Error).message}`);
    return false;
  } finally {
    for (const ws of wss.clients) ws.terminate();
    wss.close();
  }
}

async function longRun(): Promise<boolean> {
  const seed = values.seed !== undefined ? number('seed', values.seed) >>> 0 : (Date.now() ^ (process.pid << 16)) >>> 0;
  const frames = number('frames', values.frames);
  const seconds = number('seconds', values.seconds);
  const deflateShare = number('deflate-share', values['deflate-share']);
  console.log(`fuzz seed ${seed} (rerun with --seed ${seed})`);
  const progress = (label: string) => (s: ConnectionFuzzStats) =>
    console.log(`  ${label}: ${s.cases} streams, ${s.frames} frames, ${(s.ms / 1000).toFixed(0)} s`);
  let ok = true;
  for (const [label, deflate, limit] of [['in-process', false, frames], ['in-process, permessage-deflate', true, Math.ceil(frames / 10)]] as const) {
    console.log(`\n=== ${label}: ${limit} frames ===`);
    try {
      const stats = await fuzzConnection({ seed: deflate ? seed ^ 0xdef1a7e : seed, frames: limit, deflate, onProgress: progress(label), progressEveryMs: 5000 });
      console.log(formatConnectionStats(stats));
    } catch (err) {
      console.log((err as Error).message);
      ok = false;
    }
  }
  console.log(`\n=== live: ${seconds} s, ${deflateShare * 100}% of attackers with permessage-deflate ===`);
  const live = await fuzzLive({
    seed, seconds, attackers: 16, deflateShare,
    onProgress: (s: LiveFuzzStats) => console.log(`  live: ${s.connections} connections, ${s.framesSent} frames, ${s.goodMessages} echoes to the good client, RSS ${(s.maxRss / 1048576).toFixed(0)} MiB, ${(s.ms / 1000).toFixed(0)} s`),
    progressEveryMs: 5000,
  });
  console.log(formatLiveStats(live));
  return ok && live.problems.length === 0;
}

const ok = values.replay !== undefined ? await replay(number('replay', values.replay), values.deflate ?? false)
  : values['replay-live'] !== undefined ? await replayLive(number('replay-live', values['replay-live']), number('deflate-share', values['deflate-share']))
  : await longRun();
console.log(ok ? '\nno invariant broken' : '\nINVARIANTS BROKEN (see above)');
process.exitCode = ok ? 0 : 1;
