// The `echo` command's definition; its server (echo.ts) is loaded only when the command runs.
import type { Command } from 'commander';
import { parsePort } from './options.js';

export function defineEcho(program: Command, setExit: (code: number) => void): void {
  program
    .command('echo')
    .description('run a WebSocket echo server')
    .option('-p, --port <port>', 'port to listen on (0 picks a free one)', parsePort, 9001)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--broadcast', 'send each message to every other client instead of echoing it')
    .option('--deflate', 'accept permessage-deflate compression (RFC 7692)')
    .action(async (options) => {
      const { runEcho } = await import('./echo.js');
      setExit(await runEcho(options));
    });
}
