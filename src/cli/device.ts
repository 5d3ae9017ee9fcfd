// `duplex device --url URL --name car1`: a simulated remote-controlled car for the web console at
// /remote (web/README.md has the channel conventions). It subscribes to device.<name>.cmd, acts on each
// command {id, action, args} and acknowledges it on device.<name>.telemetry with
// {type: 'ack', id, action, ok, message}, and publishes its readings there too, every --interval and
// after each command. It talks to the hub through the hub client (src/client/), so a dropped
// connection is reopened and the commands sent meanwhile are resumed; commands older than --max-age
// are refused rather than acted on late, as a real vehicle should.
import { Command, InvalidArgumentError, Option } from 'commander';
import { connect, type ConnectionState, type HubClient } from '../client/hub-client.js';
import { WebSocket } from '../index.js';
import { describeFailure } from './errors.js';
import { durationParser, MAX_TIMER_MS, nonEmpty } from './hub-options.js';
import { parseHubUrl, type HubUrl } from './hub-url.js';
import { shutdownSignal } from './shutdown.js';

export interface DeviceOptions {
  name: string;
  /** Milliseconds between telemetry readings. */
  interval: number;
  /** Commands older than this many milliseconds when they arrive are refused. */
  maxAge: number;
  token?: string;
}

const NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** Metres per second at 100 % speed. */
const TOP_SPEED = 2;
const TURN_DEGREES = 15;
const PAN_STEP = 15;
const TILT_STEP = 10;
const PAN_LIMIT = 90;
const TILT_RANGE = { min: -30, max: 60 };
/** Battery percent used per second: moving at full speed, and standing. */
const DRAIN_MOVING = 0.5;
const DRAIN_IDLE = 0.01;
const CHARGE_RATE = 5;

export type Motion = 'stopped' | 'forward' | 'back';

export interface Telemetry {
  type: 'telemetry';
  /** Metres east of the start. */
  x: number;
  /** Metres north of the start. */
  y: number;
  /** Degrees clockwise from north. */
  heading: number;
  motion: Motion;
  /** Percent of top speed. */
  speed: number;
  battery: number;
  charging: boolean;
  lights: boolean;
  camera: { pan: number; tilt: number };
}

export interface Outcome {
  ok: boolean;
  message: string;
}

export const COMMANDS = ['forward', 'back', 'left', 'right', 'stop', 'speed', 'camera', 'lights', 'horn', 'ping', 'status', 'charge'];

/** The simulated car: pure state that commands change and time moves along. */
export class Car {
  x = 0;
  y = 0;
  heading = 0;
  motion: Motion = 'stopped';
  speed = 50;
  battery = 100;
  charging = false;
  lights = false;
  camera = { pan: 0, tilt: 0 };

  apply(action: string, args: readonly string[]): Outcome {
    switch (action) {
      case 'forward':
      case 'back':
        if (this.battery <= 0) return fail('the battery is empty; send "charge"');
        this.motion = action;
        this.charging = false;
        return done(`driving ${action === 'forward' ? 'forward' : 'backwards'} at ${this.speed} %`);
      case 'left':
      case 'right':
        this.heading = mod360(this.heading + (action === 'left' ? -TURN_DEGREES : TURN_DEGREES));
        return done(`turned ${action}, heading ${this.heading}°`);
      case 'stop':
        this.motion = 'stopped';
        return done('stopped');
      case 'speed': {
        const speed = Number(args[0]);
        if (!/^\d{1,3}$/.test(args[0] ?? '') || speed > 100) return fail('speed takes a percentage, 0 to 100');
        this.speed = speed;
        return done(`speed ${speed} %`);
      }
      case 'camera':
        return this.moveCamera(args[0]);
      case 'lights': {
        const want = args[0] ?? 'toggle';
        if (want !== 'on' && want !== 'off' && want !== 'toggle') return fail('lights takes on, off or toggle');
        this.lights = want === 'toggle' ? !this.lights : want === 'on';
        return done(`lights ${this.lights ? 'on' : 'off'}`);
      }
      case 'horn':
        return done('beep beep');
      case 'ping':
        return done('pong');
      case 'status':
        return done(`${this.motion}, heading ${this.heading}°, battery ${Math.round(this.battery)} %`);
      case 'charge':
        this.motion = 'stopped';
        this.charging = true;
        return done('stopped to charge');
      default:
        return fail(`unknown command "${action.slice(0, 40)}"; try ${COMMANDS.join(', ')}`);
    }
  }

  /** Moves the car on by `seconds` of simulated time. */
  advance(seconds: number): void {
    if (this.charging) {
      this.battery = Math.min(100, this.battery + CHARGE_RATE * seconds);
      if (this.battery === 100) this.charging = false;
      return;
    }
    if (this.motion === 'stopped' || this.speed === 0) {
      this.battery = Math.max(0, this.battery - DRAIN_IDLE * seconds);
      return;
    }
    // Drive only as long as the battery lasts within this step.
    const drain = (DRAIN_MOVING * this.speed) / 100;
    const driven = Math.min(seconds, this.battery / drain);
    const distance = ((TOP_SPEED * this.speed) / 100) * driven * (this.motion === 'forward' ? 1 : -1);
    const radians = (this.heading * Math.PI) / 180;
    this.x += Math.sin(radians) * distance;
    this.y += Math.cos(radians) * distance;
    this.battery = Math.max(0, this.battery - drain * driven);
    if (this.battery === 0) this.motion = 'stopped';
  }

  telemetry(): Telemetry {
    return {
      type: 'telemetry',
      x: round2(this.x),
      y: round2(this.y),
      heading: this.heading,
      motion: this.motion,
      speed: this.speed,
      battery: round2(this.battery),
      charging: this.charging,
      lights: this.lights,
      camera: { ...this.camera },
    };
  }

  private moveCamera(direction: string | undefined): Outcome {
    const { pan, tilt } = this.camera;
    switch (direction) {
      case 'left': this.camera.pan = Math.max(-PAN_LIMIT, pan - PAN_STEP); break;
      case 'right': this.camera.pan = Math.min(PAN_LIMIT, pan + PAN_STEP); break;
      case 'up': this.camera.tilt = Math.min(TILT_RANGE.max, tilt + TILT_STEP); break;
      case 'down': this.camera.tilt = Math.max(TILT_RANGE.min, tilt - TILT_STEP); break;
      case 'center': this.camera = { pan: 0, tilt: 0 }; break;
      default: return fail('camera takes up, down, left, right or center');
    }
    return done(`camera pan ${this.camera.pan}°, tilt ${this.camera.tilt}°`);
  }
}

function done(message: string): Outcome {
  return { ok: true, message };
}

function fail(message: string): Outcome {
  return { ok: false, message };
}

function mod360(degrees: number): number {
  return ((degrees % 360) + 360) % 360;
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
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
    const outcome = age > this.options.maxAge
      ? fail(`refused: the command is ${Math.round(age / 1000)} s old`)
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

/** The `device` subcommand; `setExit` receives its exit status. */
export function deviceCommand(setExit: (code: number) => void): Command {
  return new Command('device')
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
      const { url, name, interval, maxAge } = options;
      const token = nonEmpty(options.token);
      setExit(await runDevice(url, { name, interval, maxAge, ...(token === undefined ? {} : { token }) }));
    });
}

function parseName(value: string): string {
  if (!NAME.test(value)) throw new InvalidArgumentError('expected 1-64 letters, digits, - or _.');
  return value;
}
