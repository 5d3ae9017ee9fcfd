// The `subscribe` command's definition; its WebSocket client (subscribe.ts) is loaded only when the
// command runs.
import { Option, type Command } from 'commander';
import { parseChannel } from './hub-options.js';
import { parseHubUrl } from './hub-url.js';
import { countParser, nonEmpty, parseMilliseconds } from './options.js';

export function defineSubscribe(program: Command, setExit: (code: number) => void): void {
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
      const { runSubscribe } = await import('./subscribe.js');
      setExit(await runSubscribe(hub, channel, { ...options, token: nonEmpty(options.token) }));
    });
}
