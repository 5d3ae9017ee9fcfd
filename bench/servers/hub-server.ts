/**
 * Our hub as `duplex serve` runs it (src/hub/hub.ts, in-memory engine, heartbeat on), for the hub
 * benchmarks. The settings that differ from `duplex serve`'s defaults are ones its flags set too:
 *
 *   HUB_BENCH_SECRET   → --auth-secret: clients present tokens (the fan-out uses this to give
 *                        subscribers no presence grant; see docs/fanout.md)
 *   HUB_BENCH_HISTORY  → --history (messages kept per channel)
 *   always             → --publish-rate 1000000:1000000, so the one benchmark publisher is never
 *                        rate-limited
 *
 *   node dist/bench/servers/hub-server.js [port]
 */
import { Hub } from '../../src/hub/hub.js';
import { announceReady, exitWithParent, portArgument } from './lifecycle.js';

exitWithParent();
// An orderly exit on SIGTERM, so `node --cpu-prof` gets to write its profile.
process.on('SIGTERM', () => process.exit(0));

const secret = process.env.HUB_BENCH_SECRET;
const history = process.env.HUB_BENCH_HISTORY;
const hub = new Hub({
  port: portArgument(),
  host: '127.0.0.1',
  ...(secret ? { authSecret: secret } : {}),
  ...(history ? { historySize: Number(history) } : {}),
  limits: { publishRate: { rate: 1_000_000, burst: 1_000_000 } },
});
announceReady(await hub.listen());
