/**
 * Echo server on our own WebSocketServer with permessage-deflate: messages arrive compressed and their
 * echoes go back compressed. The threshold is given although it is the default, to make plain that it
 * matches ws-deflate-echo.ts.
 */
import { WebSocketServer } from '../../src/websocket/server.js';
import { announceReady, exitWithParent, portArgument } from './lifecycle.js';

exitWithParent();
const wss = new WebSocketServer({ host: '127.0.0.1', port: portArgument(), perMessageDeflate: { threshold: 1024 } });
wss.on('connection', (ws) => {
  ws.on('message', (ev) => ws.send(ev.rawData, { binary: ev.isBinary }));
});
wss.on('listening', () => announceReady(wss.address()));
