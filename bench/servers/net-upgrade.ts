/**
 * The floor for the handshake and idle-memory benchmarks, not a WebSocket server: a raw net server
 * that answers the opening handshake with the least work (find the key, hash it, write the 101) and
 * then holds the socket, parsing nothing more. Any WebSocket server on Node's sockets costs at least
 * this. `--deflate` accepts permessage-deflate in the answer (nothing is ever inflated).
 * Answers MEMORY requests (memory-probe.ts).
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import { announceReady, exitWithParent, portArgument } from './lifecycle.js';
import { answerMemoryRequests } from './memory-probe.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const KEY_HEADER = /\r\nsec-websocket-key:[ \t]*([^\r\n]*?)[ \t]*\r\n/i;
const MAX_HEAD = 16 * 1024;
const extensions = process.argv.includes('--deflate') ? 'Sec-WebSocket-Extensions: permessage-deflate\r\n' : '';
let connections = 0;

function answer(socket: net.Socket, head: string): void {
  const key = KEY_HEADER.exec(head)?.[1];
  if (key === undefined) {
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    return;
  }
  const accept = createHash('sha1').update(key + GUID).digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n${extensions}\r\n`);
  connections++;
  socket.once('close', () => connections--);
}

exitWithParent();
const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  socket.on('error', () => socket.destroy());
  socket.on('end', () => socket.end());
  let head = '';
  const onHead = (chunk: Buffer): void => {
    head += chunk.toString('latin1');
    if (head.includes('\r\n\r\n')) {
      socket.off('data', onHead);
      answer(socket, head);
    } else if (head.length > MAX_HEAD) {
      socket.destroy();
    }
  };
  socket.on('data', onHead);
});
server.listen(portArgument(), '127.0.0.1', () => announceReady(server.address()));
answerMemoryRequests(() => connections);
