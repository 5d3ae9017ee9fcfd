/**
 * Opens N WebSocket connections (raw TCP, the fixed handshake, 101 checked),
 * at most a few hundred handshakes at a time, prints `OPEN <n>` once all are open, then keeps them
 * idle until its stdin closes or it is killed. Any failure prints to stderr and exits 1.
 *
 *   node dist/bench/idle-clients.js --port P --connections N [--local-address 127.0.0.2] [--deflate]
 *
 * Without --local-address the kernel picks the source port at connect time, which is fast and may
 * reuse ports in TIME_WAIT (loopback); binding a local address is much slower to set up (every bind
 * searches the port range), so it is only for more connections than one address has ports.
 * --deflate offers permessage-deflate as browsers do and checks that the server accepted it.
 */
import net from 'node:net';
import { parseArgs } from 'node:util';
import { DEFLATE_OFFER, headerValue, readUpgradeResponse, upgradeRequest } from './upgrade-request.js';

const OPENING_AT_ONCE = 200;
const OPEN_TIMEOUT_MS = 60_000;

function abort(error: Error): never {
  console.error(`idle-clients: ${error.message}`);
  process.exit(1);
}

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    connections: { type: 'string' },
    'local-address': { type: 'string' },
    deflate: { type: 'boolean', default: false },
  },
});
const port = Number(values.port);
const total = Number(values.connections);
if (!Number.isInteger(port) || port < 1 || !Number.isInteger(total) || total < 1) abort(new Error('--port and --connections need positive integers'));
const localAddress = values['local-address'];
const deflate = values.deflate ?? false;
const request = upgradeRequest(port, deflate ? DEFLATE_OFFER : undefined);
let opened = false;

/** Resolves once the handshake of one connection is done; the socket then stays open, idle. */
function openOne(): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port, ...(localAddress === undefined ? {} : { localAddress }) });
    socket.write(request);
    let received: Buffer | null = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      if (received === null) return;
      received = Buffer.concat([received, chunk]);
      let response;
      try {
        response = readUpgradeResponse(received);
      } catch (error) {
        abort(error as Error);
      }
      if (response === null) return;
      received = null;
      if (deflate && !headerValue(response.head, 'sec-websocket-extensions').startsWith('permessage-deflate')) {
        abort(new Error('server did not accept permessage-deflate'));
      }
      resolve();
    });
    socket.on('error', (error) => abort(error));
    socket.on('close', () => abort(new Error(opened ? 'the server closed an idle connection' : 'a connection closed during its handshake')));
  });
}

async function openAll(): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total) {
      next++;
      await openOne();
    }
  };
  await Promise.all(Array.from({ length: Math.min(OPENING_AT_ONCE, total) }, worker));
}

const openLimit = setTimeout(() => abort(new Error(`connections not all open within ${OPEN_TIMEOUT_MS} ms`)), OPEN_TIMEOUT_MS);
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
await openAll();
clearTimeout(openLimit);
opened = true;
console.log(`OPEN ${total}`);
