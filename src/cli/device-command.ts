// The `device` command's definition; the device (hub-device.ts) is loaded only when the command runs.
import { Command, InvalidArgumentError, Option } from 'commander';
import { COMMANDS } from './device.js';
import { parseHubUrl, type HubUrl } from './hub-url.js';
import { durationParser, MAX_TIMER_MS, nonEmpty } from './options.js';

const NAME = /^[A-Za-z0-9_-]{1,64}$/;

export function defineDevice(program: Command, setExit: (code: number) => void): void {
  const device = new Command('device')
    .description('run a simulated remote-controlled car on the hub, for the web console at /remote')
    .requiredOption('--url <url>', 'the hub, e.g. http://localhost:8080', parseHubUrl)
    .option('--name <name>', 'device name: it listens on device.<name>.cmd and reports on device.<name>.telemetry', parseName, 'car1')
    .addOption(
      new Option('--interval <duration>', 'time between telemetry readings (500ms, 1s)')
        .argParser(durationParser(MAX_TIMER_MS)).default(1000, '1s'),
    )
    .addOption(
      new Option('--max-age <duration>', 'refuse commands that arrive older than this')
        .argParser(durationParser(MAX_TIMER_MS)).default(5000, '5s'),
    )
    .addOption(new Option('--token <token>', 'a client token (see `duplex token`)').env('DUPLEX_TOKEN'))
    .addHelpText('after', `\nCommands: ${COMMANDS.join(', ')}. Ctrl-C stops the device.\n`)
    .action(async (options: { url: HubUrl; name: string; interval: number; maxAge: number; token?: string }) => {
      const { runDevice } = await import('./hub-device.js');
      const { url, name, interval, maxAge } = options;
      const token = nonEmpty(options.token);
      setExit(await runDevice(url, { name, interval, maxAge, ...(token === undefined ? {} : { token }) }));
    });
  program.addCommand(device);
}

function parseName(value: string): string {
  if (!NAME.test(value)) throw new InvalidArgumentError('expected 1-64 letters, digits, - or _.');
  return value;
}
