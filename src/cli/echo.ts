// `duplex echo`: a WebSocket echo (or broadcast) server, the simplest peer for testing clients.
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type MessageEvent, type WebSocket } from '../index.js';
import { listenUrl } from './address.js';
import { listening } from './listening.js';
import { closeWithin, shutdownSignal } from './shutdown.js';

export interface EchoOptions {
  port: number;
  host: string;
  broadcast?: boolean;
  /** Accept permessage-deflate (RFC 7692) offers. */
  deflate?: boolean;
}

/** How long clients get to answer our 1001 close before we exit anyway. */
const CLOSE_GRACE_MS = 3000;

export async function runEcho({ port, host, broadcast, deflate }: EchoOptions): Promise<number> {
  const wss = new WebSocketServer({ port, host, perMessageDeflate: deflate === true });
  await listening(wss, `${host}:${port}`);
  wss.on('connection', (ws: WebSocket) => {
    ws.on('message', (ev: MessageEvent) => {
      // rawData + isBinary keep a text message text and a binary one binary without decoding them.
      if (broadcast) wss.broadcast(ev.rawData, { except: ws, binary: ev.isBinary });
      else ws.send(ev.rawData, { binary: ev.isBinary });
    });
  });
  // Listen for signals before announcing the URL: whoever reads it may signal us right away.
  const stop = shutdownSignal();
  process.stdout.write(`listening on ${listenUrl('ws', wss.address() as AddressInfo)}\n`);
  await stop;
  if (!(await closeWithin((done) => wss.close(done), CLOSE_GRACE_MS))) {
    process.stderr.write('duplex: some clients did not finish closing; exiting anyway\n');
  }
  return 0;
}
