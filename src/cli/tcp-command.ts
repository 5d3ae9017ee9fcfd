// The `tcp` command's definitions; the tools themselves (tcp.ts) are loaded only when one runs.
import { Command, Option } from 'commander';
import type { Endpoint } from '../sockets/endpoint.js';
import { DEFAULT_MAX_FRAME_SIZE, DEFAULT_MAX_LINE_LENGTH } from '../sockets/framing.js';
import { countParser, formatSize, parseEndpointOption, parseMilliseconds, parsePort, parseSize } from './options.js';
import type { ConnectOptions, EchoOptions, ListenOptions } from './tcp.js';

function modeOptions(command: Command): Command {
  return command
    .addOption(new Option('--lines', 'one message per line: UTF-8 text ended by \\n (\\r\\n accepted)').conflicts('frames'))
    .addOption(new Option('--frames', 'length-prefixed messages (u32 big-endian length, then payload); a line of stdin each'))
    .addOption(
      new Option('--max-size <size>', `largest line or frame (default: ${formatSize(DEFAULT_MAX_LINE_LENGTH)} lines, ${formatSize(DEFAULT_MAX_FRAME_SIZE)} frames)`)
        .argParser(parseSize),
    );
}

/** The `tcp` command and its subcommands; `setExit` receives each one's exit status. */
export function defineTcp(program: Command, setExit: (code: number) => void): void {
  const tcp = new Command('tcp').description('TCP like netcat, with message framing: listen, connect, echo');

  modeOptions(
    tcp
      .command('listen')
      .description('wait for one connection, then pipe stdin to it and it to stdout, both at once')
      .requiredOption('-p, --port <port>', 'port to listen on (0 picks a free one)', parsePort)
      .option('--host <host>', 'address to listen on', '127.0.0.1'),
  ).action(async (options: ListenOptions) => {
    const { runTcpListen } = await import('./tcp.js');
    setExit(await runTcpListen(options));
  });

  modeOptions(
    tcp
      .command('connect')
      .description('connect, then pipe stdin to the connection and it to stdout, both at once')
      .argument('<host:port>', 'where to connect, e.g. 127.0.0.1:7000 or [::1]:7000', parseEndpointOption)
      .option('--connect-timeout <ms>', 'give up if connecting takes longer', parseMilliseconds, 10000),
  )
    .addHelpText(
      'after',
      '\nThe end of stdin half-closes the connection (output keeps printing until the peer closes);\n' +
        'the peer closing ends the command. Exit status: 0 unless the connection failed.',
    )
    .action(async (endpoint: Endpoint, options: ConnectOptions) => {
      const { runTcpConnect } = await import('./tcp.js');
      setExit(await runTcpConnect(endpoint, options));
    });

  modeOptions(
    tcp
      .command('echo')
      .description('run an echo server: every message goes back to its sender; many clients at once')
      .requiredOption('-p, --port <port>', 'port to listen on (0 picks a free one)', parsePort)
      .option('--host <host>', 'address to listen on', '127.0.0.1')
      .option('--upper', 'answer in upper case (ASCII letters; any letter with --lines)')
      .option('--max-connections <n>', 'refuse clients beyond this many', countParser(1))
      .option('--idle-timeout <ms>', 'close connections quiet for this long', parseMilliseconds),
  ).action(async (options: EchoOptions) => {
    const { runTcpEcho } = await import('./tcp.js');
    setExit(await runTcpEcho(options));
  });

  program.addCommand(tcp);
}
