#!/usr/bin/env node
// The `duplex` command. Each subcommand resolves with the process exit status; this file is the single
// place that exits, after stdout and stderr have been flushed.
import { Command, InvalidArgumentError, Option } from 'commander';
import { runConnect } from './connect.js';
import { deviceCommand } from './device.js';
import { runEcho } from './echo.js';
import { reportError } from './errors.js';
import { fileCommand } from './file.js';
import {
  countParser, durationParser, listCollector, MAX_TIMER_MS, nonEmpty, parseChannel, parseOrigin, parsePattern, parseRedisUrl,
  parseRate, parseSize,
} from './hub-options.js';
import { parseHubUrl } from './hub-url.js';
import { defaultLogFormat, LOG_FORMATS } from './log.js';
import { collect, collectHeader, parseMilliseconds, parsePort } from './options.js';
import { runPublish } from './publish.js';
import { runServe, SERVE_DEFAULTS } from './serve.js';
import { runSubscribe } from './subscribe.js';
import { tcpCommand } from './tcp.js';
import { runToken } from './token.js';
import { udpCommand } from './udp.js';
import { packageVersion } from './version.js';

async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  const program = new Command('duplex')
    .description('Full-duplex real-time communication over sockets: WebSocket tools and a real-time hub.')
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
      exitCode = await runServe({
        ...options,
        authSecret: nonEmpty(options.authSecret),
        log: options.log ?? defaultLogFormat(process.stdout),
      });
    });

  program
    .command('publish')
    .description('publish one message to a hub channel over HTTP; prints its offset')
    .argument('<url>', 'the hub, e.g. http://localhost:8080', parseHubUrl)
    .argument('<channel>', 'channel name, e.g. chat.room1', parseChannel)
    .argument('<message>', 'JSON (42, {"text":"hi"}, "quoted") is sent as that value, anything else as a string')
    .addOption(new Option('--token <token>', 'a client token (see `duplex token`)').env('DUPLEX_TOKEN'))
    .addOption(new Option('--api-key <key>', 'an API key of the hub').env('DUPLEX_API_KEY').conflicts('token'))
    .option('--timeout <ms>', 'give up if the hub takes longer to answer', parseMilliseconds, 10000)
    .action(async (hub, channel: string, message: string, options) => {
      exitCode = await runPublish(hub, channel, message, { ...options, token: nonEmpty(options.token), apiKey: nonEmpty(options.apiKey) });
    });

  program
    .command('subscribe')
    .description("print a hub channel's messages as they arrive (their data as JSON, one per line)")
    .argument('<url>', 'the hub, e.g. http://localhost:8080', parseHubUrl)
    .argument('<channel>', 'channel name, e.g. chat.room1', parseChannel)
    .option('--since <offset>', 'start after this offset, replaying history (0: all of it)', countParser(0))
    .addOption(new Option('--token <token>', 'a client token (see `duplex token`)').env('DUPLEX_TOKEN'))
    .option('--json', 'print whole envelopes (channel, offset, time, data), one per line')
    .option('--no-reconnect', 'exit when the connection drops instead of resubscribing after the last offset')
    .option('--handshake-timeout <ms>', 'give up if the opening handshake takes longer', parseMilliseconds, 10000)
    .addHelpText('after', '\nCtrl-C exits with status 0; a refusal (bad token, forbidden channel) exits with 1.')
    .action(async (hub, channel: string, options) => {
      exitCode = await runSubscribe(hub, channel, { ...options, token: nonEmpty(options.token) });
    });

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
    .action((options) => {
      exitCode = runToken({ ...options, secret: nonEmpty(options.secret) });
    });

  program.addCommand(deviceCommand((code) => (exitCode = code)));
  program.addCommand(tcpCommand((code) => (exitCode = code)));
  program.addCommand(udpCommand((code) => (exitCode = code)));
  program.addCommand(fileCommand((code) => (exitCode = code)));

  await program.parseAsync(argv);
  return exitCode;
}

function parseJson(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    throw new InvalidArgumentError('expected JSON.');
  }
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
