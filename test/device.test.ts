// `duplex device`: the simulated car on its own (pure), and as a spawned process on a hub in this
// process, driven over the hub's HTTP API the way the web console drives it over the hub client.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Car, COMMANDS } from '../src/cli/device.js';
import { signToken } from '../src/hub/auth.js';
import { Hub } from '../src/hub/hub.js';
import { killAll, runCli, type CliProcess } from './support/cli.js';
import { TcpProxy } from './support/tcp-proxy.js';

const TEST_TIMEOUT = { timeout: 30_000 };
const WAIT_MS = 10_000;
const POLL_MS = 25;

after(killAll);

describe('Car', () => {
  test('drives along its heading at its speed, forwards and back, until stopped', () => {
    const car = new Car();
    assert.deepEqual(car.apply('forward', []), { ok: true, message: 'driving forward at 50 %' });
    car.advance(1);
    assert.deepEqual([car.x, car.y], [0, 1]); // 50 % of 2 m/s, due north
    assert.equal(car.apply('right', []).ok, true);
    assert.equal(car.apply('right', []).ok, true);
    assert.equal(car.apply('right', []).ok, true);
    assert.equal(car.apply('right', []).ok, true);
    assert.equal(car.apply('right', []).ok, true);
    assert.equal(car.apply('right', []).ok, true);
    assert.equal(car.heading, 90);
    car.advance(2);
    assert.ok(Math.abs(car.x - 2) < 1e-9 && Math.abs(car.y - 1) < 1e-9, `at ${car.x}, ${car.y}`);
    car.apply('back', []);
    car.advance(1);
    assert.ok(Math.abs(car.x - 1) < 1e-9, `at ${car.x}`);
    car.apply('stop', []);
    const stopped = car.telemetry();
    car.advance(10);
    assert.equal(car.telemetry().x, stopped.x);
    assert.equal(car.telemetry().motion, 'stopped');
  });

  test('turns wrap around north, and speed, camera and lights keep to their ranges', () => {
    const car = new Car();
    car.apply('left', []);
    assert.equal(car.heading, 345);
    assert.equal(car.apply('speed', ['80']).message, 'speed 80 %');
    for (const bad of [[], ['101'], ['-1'], ['fast'], ['1e2']]) {
      assert.equal(car.apply('speed', bad).ok, false, `speed ${bad.join(' ')}`);
    }
    assert.equal(car.speed, 80);
    for (let i = 0; i < 10; i++) car.apply('camera', ['right']);
    assert.equal(car.camera.pan, 90);
    for (let i = 0; i < 10; i++) car.apply('camera', ['down']);
    assert.equal(car.camera.tilt, -30);
    car.apply('camera', ['center']);
    assert.deepEqual(car.camera, { pan: 0, tilt: 0 });
    assert.equal(car.apply('camera', ['sideways']).ok, false);
    assert.equal(car.apply('lights', ['on']).message, 'lights on');
    assert.equal(car.apply('lights', []).message, 'lights off');
    assert.equal(car.apply('lights', ['dim']).ok, false);
  });

  test('an empty battery stops the car where it ran out, until it charges', () => {
    const car = new Car();
    car.battery = 0.25; // 1 s of driving at 50 %
    car.apply('forward', []);
    car.advance(10);
    assert.equal(car.motion, 'stopped');
    assert.equal(car.battery, 0);
    assert.ok(Math.abs(car.y - 1) < 1e-9, `stopped at ${car.y}`);
    assert.equal(car.apply('forward', []).ok, false);
    assert.equal(car.apply('charge', []).ok, true);
    car.advance(30);
    assert.equal(car.battery, 100);
    assert.equal(car.charging, false);
    assert.equal(car.apply('forward', []).ok, true);
  });

  test('an unknown command is refused with the list of known ones', () => {
    const outcome = new Car().apply('fly', []);
    assert.equal(outcome.ok, false);
    assert.match(outcome.message, /unknown command "fly"/);
    for (const command of COMMANDS) assert.ok(outcome.message.includes(command));
  });
});

interface HistoryMessage {
  offset: number;
  data: Record<string, unknown>;
}

/** A hub in this process, and the HTTP calls the tests make to it. */
class TestHub {
  readonly hub = new Hub({ port: 0, host: '127.0.0.1' });
  url = '';

  async start(): Promise<void> {
    const { port } = await this.hub.listen();
    this.url = `http://127.0.0.1:${port}`;
  }

  async publish(channel: string, data: unknown): Promise<number> {
    const res = await fetch(`${this.url}/api/channels/${channel}/publish`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(data),
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(res.status, 200);
    return ((await res.json()) as { offset: number }).offset;
  }

  async history(channel: string): Promise<HistoryMessage[]> {
    const res = await fetch(`${this.url}/api/channels/${channel}/history?since=0&limit=1000`, { signal: AbortSignal.timeout(5000) });
    return ((await res.json()) as { messages: HistoryMessage[] }).messages;
  }

  async presence(channel: string): Promise<Array<{ info?: unknown }>> {
    const res = await fetch(`${this.url}/api/channels/${channel}/presence`, { signal: AbortSignal.timeout(5000) });
    return ((await res.json()) as { members: Array<{ info?: unknown }> }).members;
  }

  /** Polls `read` until `check` accepts its value; fails after WAIT_MS with the last value seen. */
  async until<T>(read: () => Promise<T>, check: (value: T) => boolean, what: string): Promise<T> {
    const deadline = Date.now() + WAIT_MS;
    let value = await read();
    while (!check(value)) {
      if (Date.now() > deadline) assert.fail(`${what}; last seen: ${JSON.stringify(value).slice(0, 1000)}`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      value = await read();
    }
    return value;
  }

  /** The acknowledgement of command `id`, once the device has published it. */
  async ack(channel: string, id: string): Promise<{ ack: HistoryMessage; after: HistoryMessage[] }> {
    const messages = await this.until(() => this.history(channel), (m) => m.some((x) => x.data.id === id), `no ack for ${id}`);
    const index = messages.findIndex((x) => x.data.id === id);
    return { ack: messages[index]!, after: messages.slice(index + 1) };
  }
}

describe('duplex device', () => {
  const hub = new TestHub();
  before(() => hub.start());
  after(() => hub.hub.close());

  async function startDevice(name: string, url = hub.url): Promise<CliProcess> {
    const device = runCli(['device', '--url', url, '--name', name, '--interval', '100ms']);
    await device.waitFor('stderr', /connected to the hub/);
    return device;
  }

  test('acknowledges each command on the telemetry channel, then reports the change', TEST_TIMEOUT, async () => {
    const device = await startDevice('car1');
    try {
      const members = await hub.until(() => hub.presence('device.car1.cmd'), (m) => m.length === 1, 'the device is not present');
      assert.deepEqual(members[0]!.info, { role: 'device', name: 'car1' });

      await hub.publish('device.car1.cmd', { id: 'c1', action: 'forward', args: [] });
      const { ack } = await hub.ack('device.car1.telemetry', 'c1');
      assert.deepEqual(ack.data, { type: 'ack', id: 'c1', action: 'forward', ok: true, message: 'driving forward at 50 %' });
      // The reading right after the acknowledgement already shows the command's effect, and later ones the motion.
      const moved = await hub.until(
        async () => (await hub.ack('device.car1.telemetry', 'c1')).after,
        (after) => after.some((m) => m.data.type === 'telemetry' && Number(m.data.y) > 0),
        'the car never moved north',
      );
      assert.equal(moved[0]!.data.type, 'telemetry');
      assert.equal(moved[0]!.data.motion, 'forward');

      await hub.publish('device.car1.cmd', { id: 'c2', action: 'fly' });
      const refused = (await hub.ack('device.car1.telemetry', 'c2')).ack.data;
      assert.equal(refused.ok, false);
      assert.match(String(refused.message), /unknown command "fly"/);

      // Not a command: ignored, no acknowledgement; the next command is answered as usual.
      await hub.publish('device.car1.cmd', 'hello');
      await hub.publish('device.car1.cmd', { id: 'c3', action: 'SPEED', args: [70] });
      assert.deepEqual((await hub.ack('device.car1.telemetry', 'c3')).ack.data.message, 'speed 70 %');
      const acks = (await hub.history('device.car1.telemetry')).filter((m) => m.data.type === 'ack');
      assert.deepEqual(acks.map((m) => m.data.id), ['c1', 'c2', 'c3']);
      assert.match(device.stdout, /^forward: driving forward at 50 %$/m);
    } finally {
      device.signal('SIGTERM');
    }
    const exit = await device.exited();
    assert.equal(exit.code, 0, exit.stderr);
    await hub.until(() => hub.presence('device.car1.cmd'), (m) => m.length === 0, 'the device stayed present after it stopped');
  });

  test('comes back by itself after the network drops, and answers commands sent meanwhile', TEST_TIMEOUT, async () => {
    const proxy = await TcpProxy.start({ host: '127.0.0.1', port: Number(new URL(hub.url).port) });
    const device = await startDevice('car2', `http://127.0.0.1:${proxy.port}`);
    try {
      // Subscribed (the hub lists it) before the drop: only then has it a place to resume from.
      await hub.until(() => hub.presence('device.car2.cmd'), (m) => m.length === 1, 'the device is not present');
      proxy.cut();
      await device.waitFor('stderr', /lost the hub; reconnecting/);
      await hub.publish('device.car2.cmd', { id: 'while-cut', action: 'horn' });
      proxy.restore();
      await device.waitFor('stderr', /connected to the hub[\s\S]*connected to the hub/);
      const { ack } = await hub.ack('device.car2.telemetry', 'while-cut');
      assert.equal(ack.data.message, 'beep beep');
      await hub.publish('device.car2.cmd', { id: 'after', action: 'ping' });
      assert.equal((await hub.ack('device.car2.telemetry', 'after')).ack.data.message, 'pong');
    } finally {
      device.signal('SIGTERM');
      await device.exited();
      await proxy.close();
    }
  });

  test('exits with status 1 when the hub refuses it', TEST_TIMEOUT, async () => {
    const secret = 'a-device-test-secret-long-enough-for-hs256';
    const secured = new Hub({ port: 0, host: '127.0.0.1', authSecret: secret });
    const url = `http://127.0.0.1:${(await secured.listen()).port}`;
    try {
      const anonymous = await runCli(['device', '--url', url, '--name', 'car3']).exited();
      assert.equal(anonymous.code, 1);
      assert.match(anonymous.stderr, /unauthorized/);
      const chatOnly = signToken({ sub: 'bot', subscribe: ['chat.*'], publish: ['chat.*'] }, secret);
      const forbidden = await runCli(['device', '--url', url, '--name', 'car3', '--token', chatOnly]).exited();
      assert.equal(forbidden.code, 1);
      assert.match(forbidden.stderr, /cannot listen on device\.car3\.cmd: .*forbidden/);
    } finally {
      await secured.close();
    }
  });

  test('refuses a bad name or hub URL before connecting', TEST_TIMEOUT, async () => {
    const badName = await runCli(['device', '--url', hub.url, '--name', 'car.1']).exited();
    assert.notEqual(badName.code, 0);
    assert.match(badName.stderr, /--name/);
    const badUrl = await runCli(['device', '--url', 'not a url']).exited();
    assert.notEqual(badUrl.code, 0);
    assert.match(badUrl.stderr, /--url/);
  });
});
