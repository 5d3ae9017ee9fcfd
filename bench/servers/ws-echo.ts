/**
 * Echo server on the `ws` package: text stays text, binary stays binary.
 * Whether ws uses bufferutil is chosen by the environment (WS_NO_BUFFER_UTIL=1 turns it off).
 */
import { WebSocketServer } from 'ws';
import { announceReady, exitWithParent, portArgument } from './lifecycle.js';

exitWithParent();
const wss = new WebSocketServer({ host: '127.0.0.1', port: portArgument(), perMessageDeflate: false });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
wss.on('listening', () => announceReady(wss.address()));
