/**
 * Raw TCP echo: the ceiling of what the load generator and the loopback can do, with no
 * WebSocket work at all. The load generator sends it the same frames (without a handshake).
 */
import net from 'node:net';
import { announceReady, exitWithParent, portArgument } from './lifecycle.js';

exitWithParent();
const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  socket.on('error', () => socket.destroy());
  socket.pipe(socket);
});
server.listen(portArgument(), '127.0.0.1', () => announceReady(server.address()));
