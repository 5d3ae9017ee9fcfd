// `duplex udp listen | send`: print the datagrams arriving on a port; send one datagram.
import { Command, InvalidArgumentError } from 'commander';
import { lookup } from 'node:dns/promises';
import { isIPv6 } from 'node:net';
import { bindUdp, formatEndpoint, formatPeer, MAX_DATAGRAM_SIZE, type Endpoint, type UdpSocket } from '../sockets/index.js';
import { CliError, describeFailure } from './errors.js';
import { parseEndpointOption, parsePort } from './options.js';
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

function parseDatagramSize(value: string): number {
  const size = Number(value);
  if (!/^\d+$/.test(value) || size < 1 || size > MAX_DATAGRAM_SIZE.udp6) {
    throw new InvalidArgumentError(`expected a number of bytes from 1 to ${MAX_DATAGRAM_SIZE.udp6}.`);
  }
  return size;
}

/** The `udp` command and its subcommands; `setExit` receives each one's exit status. */
export function udpCommand(setExit: (code: number) => void): Command {
  const udp = new Command('udp')
    .description('UDP datagrams: listen, send')
    .addHelpText('after', '\nDatagrams may be lost, duplicated or reordered on the way; UDP itself never tells.');

  udp
    .command('listen')
    .description('print each datagram that arrives as one line of stdout')
    .requiredOption('-p, --port <port>', 'port to listen on (0 picks a free one)', parsePort)
    .option('--host <host>', 'address to listen on (::1 or :: for IPv6)', '127.0.0.1')
    .option('--from', "start each line with the sender's address")
    .option('--max-size <bytes>', 'drop datagrams larger than this (default: 65507 over IPv4, 65527 over IPv6)', parseDatagramSize)
    .action(async (options: UdpListenOptions) => setExit(await runUdpListen(options)));

  udp
    .command('send')
    .description('send MESSAGE as one datagram')
    .argument('<host:port>', 'destination, e.g. 127.0.0.1:7000 or [::1]:7000', parseEndpointOption)
    .argument('<message>', 'the datagram, as UTF-8')
    .option('--max-size <bytes>', 'refuse to send a larger datagram (default: the protocol maximum)', parseDatagramSize)
    .action(async (endpoint: Endpoint, message: string, options: { maxSize?: number }) =>
      setExit(await runUdpSend(endpoint, message, options)),
    );

  return udp;
}
