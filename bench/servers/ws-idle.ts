/**
 * The `ws` package holding connections without traffic, as an application would (a message listener
 * on each), answering MEMORY requests (memory-probe.ts). `--deflate` turns on permessage-deflate.
 * Also the server of the handshake benchmark.
 */
import { WebSocketServer } from 'ws';
import { announceReady, exitWithParent, portArgument } from './lifecycle.js';
import { answerMemoryRequests } from './memory-probe.js';

exitWithParent();
const wss = new WebSocketServer({ host: '127.0.0.1', port: portArgument(), perMessageDeflate: process.argv.includes('--deflate') });
wss.on('connection', (ws) => {
  ws.on('message', () => {});
});
wss.on('listening', () => announceReady(wss.address()));
answerMemoryRequests(() => wss.clients.size);
