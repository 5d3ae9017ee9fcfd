/**
 * What presence costs when a channel fills up: N clients subscribe to one channel one after the
 * other, without and then with join/leave events (`presenceEvents`), against an in-process hub.
 *
 *   node dist/bench/presence-join.js [--clients 1000]
 *
 * With events, every join goes to every member already there: N(N−1)/2 frames, which the run waits
 * for (at most two minutes). Hub and clients share this process, so the times include the clients'
 * parsing; the point is the shape (linear without events), not a rate.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { WebSocket } from '../src/index.js';
import { Hub } from '../src/hub/hub.js';

const WAIT_LIMIT_MS = 120_000;

async function run(clients: number, events: boolean): Promise<{ ms: number; frames: number; expected: number }> {
  const hub = new Hub({ port: 0, host: '127.0.0.1', heartbeat: false });
  const { port } = await hub.listen();
  const sockets: WebSocket[] = [];
  let frames = 0;
  const start = performance.now();
  try {
    for (let i = 0; i < clients; i++) {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
      sockets.push(ws);
      await new Promise((resolve) => ws.once('open', resolve));
      const subscribed = new Promise<void>((resolve) => ws.on('message', (ev) => {
        const m = JSON.parse(ev.data as string) as { type: string };
        if (m.type === 'subscribed') resolve();
        else if (m.type === 'presence') frames++;
      }));
      ws.send(JSON.stringify({ type: 'subscribe', channel: 'bench.presence', presence: { i }, ...(events ? { presenceEvents: true } : {}), id: i }));
      await subscribed;
    }
    const expected = events ? (clients * (clients - 1)) / 2 : 0;
    const deadline = Date.now() + WAIT_LIMIT_MS;
    while (frames < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return { ms: performance.now() - start, frames, expected };
  } finally {
    for (const ws of sockets) ws.terminate();
    await hub.close();
  }
}

const { values } = parseArgs({ options: { clients: { type: 'string', default: '1000' } } });
const clients = Number(values.clients);
if (!Number.isInteger(clients) || clients < 2 || clients > 20_000) throw new Error('--clients needs a whole number from 2 to 20000');
for (const events of [false, true]) {
  const r = await run(clients, events);
  console.log(`${clients} clients, presence events ${events ? 'on ' : 'off'}: ${(r.ms / 1000).toFixed(1)} s, ${r.frames} presence frames (expected ${r.expected})`);
}
