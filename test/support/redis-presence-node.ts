// A hub node in a process of its own, for tests that need a node to die without saying goodbye: it
// joins one member through a RedisEngine, prints `joined`, and keeps refreshing it until it is killed.
// Arguments: Redis URL, key prefix, channel, client id, presence TTL in ms.
import { RedisEngine } from '../../src/hub/redis-engine.js';

const [url, prefix, channel, clientId, presenceTtl] = process.argv.slice(2);
if (!url || !prefix || !channel || !clientId || !presenceTtl) {
  process.stderr.write('usage: redis-presence-node URL PREFIX CHANNEL CLIENT_ID PRESENCE_TTL_MS\n');
  process.exit(2);
}
const engine = await RedisEngine.connect({ url, prefix, presenceTtl: Number(presenceTtl) });
await engine.join(channel, { clientId, info: { pid: process.pid } });
// The engine's open connections keep this process alive until the test kills it.
process.stdout.write('joined\n');
