// The car that `duplex device` simulates; hub-device.ts puts it on the hub.

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

