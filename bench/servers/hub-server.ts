/**
 * Our hub as `duplex serve` runs it (src/hub/hub.ts, heartbeat on), for the hub benchmarks. The
 * settings that differ from `duplex serve`'s defaults are ones its flags set too:
 *
 *   HUB_BENCH_SECRET   → --auth-secret: clients present tokens (the fan-out benchmarks grant
 *                        subscribers and the publisher only what their role needs)
 *   HUB_BENCH_HISTORY  → --history (messages kept per channel)
 *   HUB_BENCH_REDIS    → --redis: the Redis engine on that URL, so several of these processes are
 *                        nodes of one hub (docs/fanout-redis.md); the in-memory engine without it
 *   always             → --publish-rate 1000000:1000000, so the one benchmark publisher is never
 *                        rate-limited
 *
 *   node dist/bench/servers/hub-server.js [port]
 */
import { Hub } from '../../src/hub/hub.js';
import { RedisEngine } from '../../src/hub/redis-engine.js';
import { announceReady, exitWithParent, portArgument } from './lifecycle.js';

exitWithParent();
// An orderly exit on SIGTERM, so `node --cpu-prof` gets to write its profile.
process.on('SIGTERM', () => process.exit(0));

const secret = process.env.HUB_BENCH_SECRET;
const history = process.env.HUB_BENCH_HISTORY;
const redis = process.env.HUB_BENCH_REDIS;
// The same bounds `duplex serve` hands either engine.
const historySize = history ? Number(history) : undefined;
// Losing Redis mid-run shows in the harness's error message, which carries our stderr.
const engine = redis
  ? await RedisEngine.connect(
    { url: redis, ...(historySize === undefined ? {} : { historySize }) },
    (message, fields) => console.error(`redis engine: ${message} ${JSON.stringify(fields)}`),
  )
  : undefined;
const hub = new Hub({
  port: portArgument(),
  host: '127.0.0.1',
  ...(engine ? { engine } : {}),
  ...(secret ? { authSecret: secret } : {}),
  ...(historySize === undefined ? {} : { historySize }),
  limits: { publishRate: { rate: 1_000_000, burst: 1_000_000 } },
});
announceReady(await hub.listen());
