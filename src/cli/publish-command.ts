// The `publish` command's definition; its HTTP client (publish.ts) is loaded only when the command runs.
import { Option, type Command } from 'commander';
import { parseChannel } from './hub-options.js';
import { parseHubUrl } from './hub-url.js';
import { nonEmpty, parseMilliseconds } from './options.js';

export function definePublish(program: Command, setExit: (code: number) => void): void {
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
      const { runPublish } = await import('./publish.js');
      setExit(await runPublish(hub, channel, message, { ...options, token: nonEmpty(options.token), apiKey: nonEmpty(options.apiKey) }));
    });
}
