// The `token` command's definition; the signing (token.ts) is loaded only when the command runs.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { isValidPattern } from '../hub/auth.js';
import { durationParser, listCollector, nonEmpty } from './options.js';

export function defineToken(program: Command, setExit: (code: number) => void): void {
  program
    .command('token')
    .description("mint a client token for a hub run with --auth-secret; prints it")
    .addOption(new Option('--secret <secret>', "the hub's auth secret").env('DUPLEX_AUTH_SECRET'))
    .requiredOption('--sub <name>', 'who the token is for (shown in presence and as the publisher)')
    .option('--publish <pattern>', "channels it may publish to: chat.room1, chat.*, * (repeatable, or comma-separated)", listCollector(parsePattern))
    .option('--subscribe <pattern>', 'channels it may subscribe to and read the history of (same forms)', listCollector(parsePattern))
    .option('--presence <pattern>', 'channels whose presence it may see (default: those of --subscribe)', listCollector(parsePattern))
    .addOption(new Option('--ttl <duration>', 'lifetime (3600, 30m, 1h, 7d)').argParser(durationParser(Number.MAX_SAFE_INTEGER)).default(3_600_000, '1h'))
    .option('--info <json>', 'JSON the hub passes on in presence, e.g. {"name":"Ada"}', parseJson)
    .action(async (options) => {
      const { runToken } = await import('./token.js');
      setExit(runToken({ ...options, secret: nonEmpty(options.secret) }));
    });
}

/** A channel pattern, as the hub's grants take it (chat.room1, chat.*, *). */
function parsePattern(value: string): string {
  if (!isValidPattern(value)) {
    throw new InvalidArgumentError(`${JSON.stringify(value)} is not a channel pattern: use dot-separated segments, '*' only as a whole segment (chat.*, *).`);
  }
  return value;
}

function parseJson(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    throw new InvalidArgumentError('expected JSON.');
  }
}
