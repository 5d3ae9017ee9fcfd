// The running `duplex device`: a simulated car (device.ts) for the web console at /remote
// (web/README.md has the channel conventions). It subscribes to device.<name>.cmd, acts on each
// command {id, action, args} and acknowledges it on device.<name>.telemetry with
// {type: 'ack', id, action, ok, message}, and publishes its readings there too, every --interval and
// after each command. It talks to the hub through the hub client (src/client/), so a dropped
// connection is reopened and the commands sent meanwhile are resumed; commands older than --max-age
// are refused rather than acted on late, as a real vehicle should.
import { connect, type ConnectionState, type HubClient } from '../client/hub-client.js';
import { WebSocket } from '../index.js';
import { Car, type Outcome } from './device.js';
import { describeFailure } from './errors.js';
import type { HubUrl } from './hub-url.js';
import { shutdownSignal } from './shutdown.js';

export interface DeviceOptions {
  name: string;
  /** Milliseconds between telemetry readings. */
  interval: number;
  /** Commands older than this many milliseconds when they arrive are refused. */
  maxAge: number;
  token?: string;
}

/** A command as the console sends it; anything else on the channel is ignored. */
interface DeviceCommand {
  id: string | null;
  action: string;
  args: string[];
}

function readCommand(data: unknown): DeviceCommand | null {
  if (data === null || typeof data !== 'object') return null;
  const { id, action, args } = data as Record<string, unknown>;
  if (typeof action !== 'string' || action === '') return null;
  return {
    id: typeof id === 'string' ? id : null,
    action: action.toLowerCase(),
    args: Array.isArray(args) ? args.map(String) : [],
  };
}

const STATE_LINES: Record<ConnectionState, string> = {
  connecting: 'connecting to the hub',
  open: 'connected to the hub',
  reconnecting: 'lost the hub; reconnecting',
  offline: 'cannot reach the hub; still trying',
  closed: 'disconnected',
};

/** The running device: the car, its hub client, and the telemetry clock. */
class Device {
  private readonly car = new Car();
  private readonly cmdChannel: string;
  private readonly telemetryChannel: string;
  private readonly client: HubClient;
  private ticker: NodeJS.Timeout | undefined;
  private lastTick = Date.now();

  constructor(
    hub: HubUrl,
    private readonly options: DeviceOptions,
    private readonly done: (exitCode: number) => void,
  ) {
    this.cmdChannel = `device.${options.name}.cmd`;
    this.telemetryChannel = `device.${options.name}.telemetry`;
    this.client = connect(hub.base, {
      WebSocket,
      ...(options.token === undefined ? {} : { token: options.token }),
    });
  }

  start(): void {
    const { name } = this.options;
    this.client.on('state', (state) => this.say(STATE_LINES[state]));
    this.client.on('error', (err) => {
      this.say(`hub error: ${describeFailure(err)}`);
      if (this.client.state === 'closed') this.stop(1);
    });
    this.client.subscribe(this.cmdChannel, (message) => void this.onCommand(message.data, message.time), {
      presence: { role: 'device', name },
      onError: (err) => {
        this.say(`cannot listen on ${this.cmdChannel}: ${describeFailure(err)}`);
        this.stop(1);
      },
    });
    process.stdout.write(
      `duplex: device ${name} listening on ${this.cmdChannel}, reporting on ${this.telemetryChannel} every ${this.options.interval} ms\n`,
    );
    this.ticker = setInterval(() => this.tick(), this.options.interval);
    void shutdownSignal().then(() => this.stop(0));
  }

  private tick(): void {
    this.catchUp();
    // Readings taken while the hub is away would arrive late and all at once: the next one is better.
    if (this.client.state === 'open') void this.report(this.car.telemetry());
  }

  /** Moves the car on to the present. */
  private catchUp(): void {
    const now = Date.now();
    this.car.advance((now - this.lastTick) / 1000);
    this.lastTick = now;
  }

  private async onCommand(data: unknown, time: string): Promise<void> {
    const command = readCommand(data);
    if (!command) return;
    const age = Date.now() - Date.parse(time);
    // The command acts on where the car is now, not where the last reading left it.
    this.catchUp();
    const outcome: Outcome = age > this.options.maxAge
      ? { ok: false, message: `refused: the command is ${Math.round(age / 1000)} s old` }
      : this.car.apply(command.action, command.args);
    process.stdout.write(`${command.action}${command.args.length ? ` ${command.args.join(' ')}` : ''}: ${outcome.message}\n`);
    await this.report({ type: 'ack', id: command.id, action: command.action, ok: outcome.ok, message: outcome.message });
    if (outcome.ok) await this.report(this.car.telemetry());
  }

  /** Publishes on the telemetry channel; a reading lost to a dropped connection is replaced by the next. */
  private async report(data: unknown): Promise<void> {
    try {
      await this.client.publish(this.telemetryChannel, data);
    } catch (err) {
      if (this.client.state !== 'closed') this.say(`could not publish: ${describeFailure(err)}`);
    }
  }

  private stop(exitCode: number): void {
    clearInterval(this.ticker);
    this.client.close();
    this.done(exitCode);
  }

  private say(line: string): void {
    process.stderr.write(`duplex: ${line}\n`);
  }
}

export function runDevice(hub: HubUrl, options: DeviceOptions): Promise<number> {
  return new Promise((resolve) => new Device(hub, options, resolve).start());
}
