// The `connect` command's definition; its client (connect.ts) is loaded only when the command runs.
import type { Command } from 'commander';
import { collect, collectHeader, parseMilliseconds } from './options.js';

export function defineConnect(program: Command, setExit: (code: number) => void): void {
  program
    .command('connect')
    .description('talk to a WebSocket server: stdin lines go out as messages, received messages are printed')
    .argument('<url>', 'ws:// or wss:// URL')
    .option('--protocol <name>', 'offer a subprotocol (repeatable)', collect)
    .option('-H, --header <header>', "add a request header, 'Name: value' (repeatable)", collectHeader)
    .option('--wait', 'at the end of stdin keep the connection open until the server closes it')
    .option('--binary', 'send each line as a binary message (its UTF-8 bytes)')
    .option('--deflate', 'offer permessage-deflate compression (RFC 7692)')
    .option('--handshake-timeout <ms>', 'give up if the opening handshake takes longer', parseMilliseconds, 10000)
    .addHelpText(
      'after',
      '\nReceived text prints as is, binary as one line of base64; on a terminal lines are marked "<" and ">".\n' +
        'Exit status: 0 if the connection ends with close code 1000, 1001 or 1005, otherwise 1.',
    )
    .action(async (url: string, options) => {
      const { runConnect } = await import('./connect.js');
      setExit(await runConnect(url, options));
    });
}
