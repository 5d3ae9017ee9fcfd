// The `udp` command's definitions; the socket code (udp.ts) is loaded only when one runs.
import { Command, InvalidArgumentError } from 'commander';
import type { Endpoint } from '../sockets/endpoint.js';
import { MAX_DATAGRAM_SIZE } from '../sockets/udp.js';
import { parseEndpointOption, parsePort } from './options.js';
import type { UdpListenOptions } from './udp.js';

function parseDatagramSize(value: string): number {
  const size = Number(value);
  if (!/^\d+$/.test(value) || size < 1 || size > MAX_DATAGRAM_SIZE.udp6) {
    throw new InvalidArgumentError(`expected a number of bytes from 1 to ${MAX_DATAGRAM_SIZE.udp6}.`);
  }
  return size;
}

/** The `udp` command and its subcommands; `setExit` receives each one's exit status. */
export function defineUdp(program: Command, setExit: (code: number) => void): void {
  const udp = new Command('udp')
    .description('UDP datagrams: listen, send')
    .addHelpText('after', '\nDatagrams may be lost, duplicated or reordered on the way; UDP itself never tells.');

  udp
    .command('listen')
    .description('print each datagram that arrives as one line of stdout')
    .requiredOption('-p, --port <port>', 'port to listen on (0 picks a free one)', parsePort)
    .option('--host <host>', 'address to listen on (::1 or :: for IPv6)', '127.0.0.1')
    .option('--from', "start each line with the sender's address")
    .option('--max-size <bytes>', `drop datagrams larger than this (default: ${MAX_DATAGRAM_SIZE.udp4} over IPv4, ${MAX_DATAGRAM_SIZE.udp6} over IPv6)`, parseDatagramSize)
    .action(async (options: UdpListenOptions) => {
      const { runUdpListen } = await import('./udp.js');
      setExit(await runUdpListen(options));
    });

  udp
    .command('send')
    .description('send MESSAGE as one datagram')
    .argument('<host:port>', 'destination, e.g. 127.0.0.1:7000 or [::1]:7000', parseEndpointOption)
    .argument('<message>', 'the datagram, as UTF-8')
    .option('--max-size <bytes>', 'refuse to send a larger datagram (default: the protocol maximum)', parseDatagramSize)
    .action(async (endpoint: Endpoint, message: string, options: { maxSize?: number }) => {
      const { runUdpSend } = await import('./udp.js');
      setExit(await runUdpSend(endpoint, message, options));
    });

  program.addCommand(udp);
}
