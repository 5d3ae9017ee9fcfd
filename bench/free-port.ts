// A port of 127.0.0.1 that was free a moment ago, for a server the benchmark starts.
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

const ATTEMPTS = 20;
const RETRY_MS = 250;

function tryFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Retried, since other load on the machine may use up ephemeral ports for a while. */
export async function freePort(): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await tryFreePort();
    } catch (err) {
      if (attempt >= ATTEMPTS) throw err;
      await sleep(RETRY_MS);
    }
  }
}
