// Plain sockets done right: message framing over TCP, a TCP server helper, UDP datagrams.
export * from './endpoint.js';
export * from './framing.js';
export * from './framed-socket.js';
export * from './tcp-client.js';
export * from './tcp-server.js';
export * from './udp.js';
