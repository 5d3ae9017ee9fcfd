// The `file` command's definitions; the transfers (file.ts) are loaded only when one runs.
import { Command, InvalidArgumentError } from 'commander';
import { DEFAULT_TIMEOUT_MS } from '../sockets/file-transfer.js';
import type { ReceiveOptions, SendOptions } from './file.js';
import { parseMilliseconds, parsePort } from './options.js';

export interface Target {
  host: string;
  port: number;
}

/** HOST:PORT, with IPv6 addresses in brackets: 127.0.0.1:9002, localhost:9002, [::1]:9002. */
export function parseTarget(value: string): Target {
  const match = /^(?:\[([^\]\s]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  if (!match || port < 1 || port > 65535) {
    throw new InvalidArgumentError('expected HOST:PORT, e.g. 127.0.0.1:9002 or [::1]:9002.');
  }
  return { host: match[1] ?? match[2]!, port };
}

export function defineFile(program: Command, setExitCode: (code: number) => void): void {
  const file = new Command('file').description('send a file over TCP, or receive files into a directory (resumable, SHA-256 verified)');
  file
    .command('receive')
    .description('receive files into a directory until interrupted')
    .option('-p, --port <port>', 'port to listen on (0 picks a free one)', parsePort, 9002)
    .option('--host <host>', 'address to listen on (0.0.0.0 for every interface)', '127.0.0.1')
    .option('-d, --dir <dir>', 'directory the files go to (it must exist)', '.')
    .option('--timeout <ms>', 'drop a sender silent for this long', parseMilliseconds, DEFAULT_TIMEOUT_MS)
    .addHelpText(
      'after',
      '\nA file is written to NAME.part and renamed to NAME once its SHA-256 matches the sender\'s. What an\n' +
        'interrupted sender sent stays in NAME.part; sending the same file again resumes from there.\n' +
        'Names are plain file names: paths (../x, /etc/x, a/b) are refused. An existing file is only\n' +
        'replaced when the sender asks with --overwrite.',
    )
    .action(async (options: ReceiveOptions) => {
      const { runFileReceive } = await import('./file.js');
      setExitCode(await runFileReceive(options));
    });
  file
    .command('send')
    .description('send one file to a `duplex file receive`')
    .argument('<host:port>', 'the receiver, e.g. 127.0.0.1:9002', parseTarget)
    .argument('<path>', 'the file to send')
    .option('--name <name>', 'name on the receiver (default: the file\'s own name)')
    .option('--overwrite', 'replace a file of that name on the receiver')
    .option('--timeout <ms>', 'give up after this long without a sign of the receiver', parseMilliseconds, DEFAULT_TIMEOUT_MS)
    .addHelpText('after', '\nAfter an interruption, run the same command again: the transfer resumes where it stopped.')
    .action(async (target: Target, path: string, options: SendOptions) => {
      const { runFileSend } = await import('./file.js');
      setExitCode(await runFileSend(target, path, options));
    });
  program.addCommand(file);
}
