// `duplex udp listen | send`: print the datagrams arriving on a port; send one datagram.
import { lookup } from 'node:dns/promises';
import { isIPv6 } from 'node:net';
import { formatEndpoint, type Endpoint } from '../sockets/endpoint.js';
import { bindUdp, formatPeer, MAX_DATAGRAM_SIZE, type UdpSocket } from '../sockets/udp.js';
import { CliError, describeFailure } from './errors.js';
import { shutdownSignal } from './shutdown.js';

export interface UdpListenOptions {
  port: number;
  host: string;
  from?: boolean;
  maxSize?: number;
}

/** `udp listen`: one line of stdout per datagram, until interrupted. */
export async function runUdpListen(options: UdpListenOptions): Promise<number> {
  const type = isIPv6(options.host) ? 'udp6' : 'udp4';
  const maxDatagramSize = Math.min(options.maxSize ?? Infinity, MAX_DATAGRAM_SIZE[type]);
  let socket: UdpSocket;
  try {
    socket = await bindUdp({ type, host: options.host, port: options.port, maxDatagramSize });
  } catch (err) {
    throw new CliError(`cannot listen on ${formatEndpoint(options.host, options.port)}: ${describeFailure(err)}`);
  }
  const newline = Buffer.from('\n');
  socket.on('message', (data, peer) => {
    const prefix = options.from ? Buffer.from(`${formatPeer(peer)} `) : Buffer.alloc(0);
    process.stdout.write(Buffer.concat([prefix, data, newline]));
  });
  socket.on('oversize', (size, peer) => {
    process.stderr.write(`duplex: dropped a datagram of ${size} bytes from ${formatPeer(peer)}: over the limit of ${socket.maxDatagramSize} bytes\n`);
  });
  const stop = shutdownSignal();
  const { address, port } = socket.address();
  // stdout carries the datagrams, so the address goes to stderr.
  process.stderr.write(`listening on ${formatEndpoint(address, port)}\n`);
  await stop;
  await socket.close();
  return 0;
}

/** `udp send`: one datagram, from a socket of the destination's address family. */
export async function runUdpSend(endpoint: Endpoint, message: string, options: { maxSize?: number }): Promise<number> {
  const where = formatEndpoint(endpoint.host, endpoint.port);
  let address: string;
  let family: number;
  try {
    ({ address, family } = await lookup(endpoint.host));
  } catch (err) {
    throw new CliError(`cannot send to ${where}: ${describeFailure(err)}`);
  }
  const type = family === 6 ? 'udp6' : 'udp4';
  const socket = await bindUdp({ type, host: type === 'udp6' ? '::' : '0.0.0.0', maxDatagramSize: Math.min(options.maxSize ?? Infinity, MAX_DATAGRAM_SIZE[type]) });
  try {
    await socket.send(message, { address, port: endpoint.port });
  } catch (err) {
    throw new CliError(`cannot send to ${where}: ${describeFailure(err)}`);
  } finally {
    await socket.close();
  }
  return 0;
}
