#!/usr/bin/env node
// The `duplex` command. Each subcommand resolves with the process exit status; this file is the single
// place that exits, after stdout and stderr have been flushed.
import { Command } from 'commander';
import { runConnect } from './connect.js';
import { runEcho } from './echo.js';
import { reportError } from './errors.js';
import { collect, collectHeader, parseMilliseconds, parsePort } from './options.js';
import { runServe } from './serve.js';
import { packageVersion } from './version.js';

async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  const program = new Command('duplex')
    .description('Full-duplex real-time communication over sockets: WebSocket tools.')
    .version(packageVersion())
    .showSuggestionAfterError(false);

  program
    .command('echo')
    .description('run a WebSocket echo server')
    .option('-p, --port <port>', 'port to listen on (0 picks a free one)', parsePort, 9001)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--broadcast', 'send each message to every other client instead of echoing it')
    .option('--deflate', 'accept permessage-deflate compression (RFC 7692)')
    .action(async (options) => {
      exitCode = await runEcho(options);
    });

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
      exitCode = await runConnect(url, options);
    });

  program
    .command('serve')
    .description('serve a test page at / with a broadcast room at /ws, and /healthz')
    .option('-p, --port <port>', 'port to listen on (0 picks a free one)', parsePort, 8080)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .action(async (options) => {
      exitCode = await runServe(options);
    });

  await program.parseAsync(argv);
  return exitCode;
}

/** Exits once what we wrote has left: on Linux pipes are synchronous, but files and TTYs may not be. */
function exit(code: number): void {
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

function fail(err: unknown): void {
  reportError(err);
  exit(1);
}

// A reader that goes away (`duplex connect … | head -1`) is an ordinary way to stop listening.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  fail(err);
});
process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);
main(process.argv).then(exit, fail);
