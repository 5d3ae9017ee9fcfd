/** Echo server on our own WebSocketServer: text stays text, binary stays binary. */
import { WebSocketServer } from '../../src/websocket/server.js';
import { announceReady, exitWithParent, portArgument } from './lifecycle.js';

exitWithParent();
const wss = new WebSocketServer({ host: '127.0.0.1', port: portArgument() });
wss.on('connection', (ws) => {
  ws.on('message', (ev) => ws.send(ev.rawData, { binary: ev.isBinary }));
});
wss.on('listening', () => announceReady(wss.address()));
