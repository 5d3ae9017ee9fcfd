#!/usr/bin/env node
// The `duplex` command. Each subcommand resolves with the process exit status; this file is the single
// place that exits, after stdout and stderr have been flushed.
//
// Start-up time is most of what a short command costs, so nothing is loaded before it is needed: the
// definition of the command being run (its options and their parsers), and its implementation only
// once commander has parsed the arguments and calls its action.
import { Command } from 'commander';
import { reportError } from './errors.js';
import { packageVersion } from './version.js';

type Define = (program: Command, setExit: (code: number) => void) => void;

// In the order `duplex --help` lists them.
const DEFINITIONS: Record<string, () => Promise<Define>> = {
  echo: async () => (await import('./echo-command.js')).defineEcho,
  connect: async () => (await import('./connect-command.js')).defineConnect,
  serve: async () => (await import('./serve-command.js')).defineServe,
  publish: async () => (await import('./publish-command.js')).definePublish,
  subscribe: async () => (await import('./subscribe-command.js')).defineSubscribe,
  token: async () => (await import('./token-command.js')).defineToken,
  device: async () => (await import('./device-command.js')).defineDevice,
  tcp: async () => (await import('./tcp-command.js')).defineTcp,
  udp: async () => (await import('./udp-command.js')).defineUdp,
  file: async () => (await import('./file-command.js')).defineFile,
};

async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  const program = new Command('duplex')
    .description('Full-duplex real-time communication over sockets: WebSocket tools and a real-time hub.')
    .version(packageVersion())
    .showSuggestionAfterError(false);

  // If the first argument names a command, commander runs that command: it cannot be the value of an
  // option, since the program's own (-V, -h) take none. Then only that definition is needed; anything
  // else (help, --version, a typo) may need every command defined.
  const first = argv[2] ?? '';
  const names = Object.hasOwn(DEFINITIONS, first) ? [first] : Object.keys(DEFINITIONS);
  const setExit = (code: number): void => {
    exitCode = code;
  };
  for (const define of await Promise.all(names.map((name) => DEFINITIONS[name]!()))) define(program, setExit);

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
