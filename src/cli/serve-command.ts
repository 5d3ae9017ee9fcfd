// The `serve` command's definition; the hub (serve.ts) is loaded only when the command runs.
import { Option, type Command } from 'commander';
import { DEFAULT_LIMITS } from '../hub/context.js';
import { parseOrigin, parseRate, parseRedisUrl } from './hub-options.js';
import { defaultLogFormat, LOG_FORMATS } from './log.js';
import { countParser, durationParser, listCollector, MAX_TIMER_MS, nonEmpty, parsePort, parseSize } from './options.js';

export const SERVE_DEFAULTS = {
  port: 8080,
  host: 'localhost',
  history: 1000,
  historyTtl: 24 * 60 * 60 * 1000,
  presenceTtl: 30_000,
  maxMessageSize: DEFAULT_LIMITS.maxMessageSize,
  publishRate: DEFAULT_LIMITS.publishRate,
  maxSubscriptions: DEFAULT_LIMITS.maxSubscriptions,
  pollTimeout: 25_000,
};

export function defineServe(program: Command, setExit: (code: number) => void): void {
  const d = SERVE_DEFAULTS;
  program
    .command('serve')
    .description('run the real-time hub: channels, history, presence over WebSocket (/ws), SSE, long-polling and HTTP')
    .addOption(new Option('-p, --port <port>', 'port to listen on (0 picks a free one)').argParser(parsePort).default(d.port).env('DUPLEX_PORT'))
    .addOption(new Option('--host <host>', 'address to listen on (0.0.0.0 for every interface)').default(d.host).env('DUPLEX_HOST'))
    .addOption(new Option('--history <n>', 'messages kept per channel (0: none)').argParser(countParser(0)).default(d.history).env('DUPLEX_HISTORY'))
    .addOption(
      new Option('--history-ttl <duration>', 'how long a message stays in history (30s, 5m, 24h, 7d)')
        .argParser(durationParser(Number.MAX_SAFE_INTEGER)).default(d.historyTtl, '24h').env('DUPLEX_HISTORY_TTL'),
    )
    .addOption(
      new Option('--redis <url>', 'share channels, history and presence with other nodes through Redis (redis://host:6379)')
        .argParser(parseRedisUrl).env('DUPLEX_REDIS'),
    )
    .addOption(
      new Option('--presence-ttl <duration>', 'with --redis: how soon the members of a node that died leave presence')
        .argParser(durationParser(MAX_TIMER_MS)).default(d.presenceTtl, '30s').env('DUPLEX_PRESENCE_TTL'),
    )
    .addOption(new Option('--auth-secret <secret>', 'HS256 secret for client tokens; without it the hub is open').env('DUPLEX_AUTH_SECRET'))
    .addOption(
      new Option('--api-key <key>', 'a key that may publish over HTTP (repeatable; the variable is comma-separated)')
        .argParser(listCollector(String)).env('DUPLEX_API_KEYS'),
    )
    .addOption(
      new Option('--origins <origin...>', 'browser origins allowed to connect, e.g. https://example.com (default: any)')
        .argParser(listCollector(parseOrigin)).env('DUPLEX_ORIGINS'),
    )
    .addOption(
      new Option('--max-message-size <size>', 'largest message a client may send (65536, 64KiB, 1MiB)')
        .argParser(parseSize).default(d.maxMessageSize, '64KiB').env('DUPLEX_MAX_MESSAGE_SIZE'),
    )
    .addOption(
      new Option('--publish-rate <rate[:burst]>', 'publishes per second per client, and the burst allowed')
        .argParser(parseRate).default(d.publishRate, `${d.publishRate.rate}:${d.publishRate.burst}`).env('DUPLEX_PUBLISH_RATE'),
    )
    .addOption(
      new Option('--max-subscriptions <n>', 'channels one connection may subscribe to')
        .argParser(countParser(1)).default(d.maxSubscriptions).env('DUPLEX_MAX_SUBSCRIPTIONS'),
    )
    .addOption(
      new Option('--poll-timeout <duration>', 'how long a long-poll request waits for messages')
        .argParser(durationParser(MAX_TIMER_MS)).default(d.pollTimeout, '25s').env('DUPLEX_POLL_TIMEOUT'),
    )
    .addOption(
      new Option('--log <format>', 'log format (default: human on a terminal, json otherwise)')
        .choices(LOG_FORMATS).env('DUPLEX_LOG'),
    )
    .addHelpText(
      'after',
      '\nFlags win over environment variables. Pass the secret in DUPLEX_AUTH_SECRET rather than as a flag,\n' +
        'which other users of the machine can see. Mint client tokens with `duplex token`.',
    )
    .action(async (options) => {
      const { runServe } = await import('./serve.js');
      setExit(
        await runServe({
          ...options,
          authSecret: nonEmpty(options.authSecret),
          log: options.log ?? defaultLogFormat(process.stdout),
        }),
      );
    });
}
