/**
 * Echo server on the `ws` package with permessage-deflate (with bufferutil unless WS_NO_BUFFER_UTIL=1).
 * The threshold is ws's default, given to make plain that it matches duplex-deflate-echo.ts.
 */
import { WebSocketServer } from 'ws';
import { announceReady, exitWithParent, portArgument } from './lifecycle.js';

exitWithParent();
const wss = new WebSocketServer({ host: '127.0.0.1', port: portArgument(), perMessageDeflate: { threshold: 1024 } });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }));
});
wss.on('listening', () => announceReady(wss.address()));
