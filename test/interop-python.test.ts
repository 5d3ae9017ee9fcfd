// Interop with Python's `websockets` (Debian's python3-websockets, asyncio API) in both
// directions: a scripted Python client against duplex's WebSocketServer, and duplex's
// WebSocket against a Python echo server. The scripts are in test/support/python and report
// over stdout as JSON lines.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer, type MessageEvent } from '../src/index.js';
import {
  BINARY_SAMPLE,
  BURST,
  DuplexSide,
  Inbox,
  JSON_SAMPLE,
  LENGTH_BOUNDARIES,
  LONGEST_REASON,
  MIB,
  TEXT_SAMPLES,
  WAIT_MS,
  binaryPattern,
  summarize,
  textPattern,
  within,
} from './support/interop.js';

// Debian's interpreter: the python3 first on PATH may not have the websockets module.
const PYTHON = '/usr/bin/python3';
const SCRIPTS = new URL('../../test/support/python/', import.meta.url);
const PROCESS_MS = 15_000;
const TEST_OPTIONS = { timeout: 20_000 };
const SERVER_PROTOCOLS = ['chat.v2', 'chat.v1'];
const CLIENT_PROTOCOLS = ['chat.v1', 'chat.v2'];

type Line = Record<string, any>;

const children = new Set<ChildProcess>();

/** Starts a peer script; its stdout lines (JSON after an optional READY banner) feed `onLine`. */
function spawnPeer(script: string, args: string[], env: Record<string, string>, onLine: (line: string) => void) {
  const child = spawn(PYTHON, [fileURLToPath(new URL(script, SCRIPTS)), ...args], {
    // No __pycache__ in the source tree.
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', STEP_TIMEOUT: String(WAIT_MS / 1000), ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.add(child);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  createInterface({ input: child.stdout! }).on('line', onLine);
  const exited = new Promise<number | null>((resolve) => {
    child.on('close', (code) => {
      children.delete(child);
      resolve(code);
    });
  });
  return { child, exited, stderr: () => stderr };
}

function killLeftovers(): void {
  for (const child of children) if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
}

/** Runs client.py to completion and returns every line it printed. */
function startPythonClient(url: string, steps: Line[], env: Record<string, string> = {}) {
  const lines: Line[] = [];
  const peer = spawnPeer('client.py', [url, JSON.stringify(steps)], env, (line) => lines.push(JSON.parse(line)));
  return {
    async finished(): Promise<Line[]> {
      const code = await within(peer.exited, PROCESS_MS, 'python client exit');
      assert.equal(code, 0, `python client failed: ${JSON.stringify(lines)}\n${peer.stderr()}`);
      return lines;
    },
  };
}

/** echo_server.py, with its per-connection report lines searchable by path. */
async function startPythonServer(env: Record<string, string>) {
  const lines: Line[] = [];
  const arrived = new Inbox<void>();
  let ready!: (port: number) => void;
  const peer = spawnPeer('echo_server.py', [], env, (line) => {
    const banner = /^READY (\d+)$/.exec(line);
    if (banner) ready(Number(banner[1]));
    else {
      lines.push(JSON.parse(line));
      arrived.push();
    }
  });
  // Set before any output can be read, since lines are only delivered on later ticks.
  const port = new Promise<number>((resolve, reject) => {
    ready = resolve;
    void peer.exited.then((code) => reject(new Error(`python server exited (${code}) before READY: ${peer.stderr()}`)));
  });
  const url = `ws://127.0.0.1:${await within(port, PROCESS_MS, 'python server READY')}`;
  return {
    url,
    /** The first report line for `path` with this event. */
    async report(path: string, event: string): Promise<Line> {
      const deadline = Date.now() + WAIT_MS;
      for (;;) {
        const found = lines.find((l) => l.path === path && l.event === event);
        if (found) return found;
        await arrived.next(Math.max(1, deadline - Date.now()), `python server "${event}" for ${path}; so far ${JSON.stringify(lines)}`);
      }
    },
    async stop(): Promise<void> {
      peer.child.stdin!.end();
      await within(peer.exited, WAIT_MS, 'python server exit').catch(() => peer.child.kill('SIGKILL'));
    },
  };
}

function portOf(address: AddressInfo | string | null): number {
  if (address === null || typeof address === 'string') throw new Error(`unexpected address ${address}`);
  return address.port;
}

/** The step that makes client.py send `data`, and the line it prints on receiving it back. */
const sendStep = (data: string | Buffer): Line =>
  typeof data === 'string' ? { op: 'send', text: data } : { op: 'send', base64: data.toString('base64') };
const messageLine = (data: string | Buffer): Line => ({ event: 'message', ...summarize(data) });
const closedLine = (sent: [number, string] | null, received: [number, string] | null): Line => ({
  event: 'closed',
  sent: sent && { code: sent[0], reason: sent[1] },
  received: received && { code: received[0], reason: received[1] },
});

/** The lines after "open" (whose negotiated extensions vary with the server's support). */
function afterOpen(lines: Line[], subprotocol: string | null = null): Line[] {
  assert.equal(lines[0]?.event, 'open', `first line ${JSON.stringify(lines[0])}`);
  assert.equal(lines[0]!.subprotocol, subprotocol, 'subprotocol the python client got');
  return lines.slice(1);
}

const MESSAGES: Array<string | Buffer> = [...TEXT_SAMPLES, JSON.stringify(JSON_SAMPLE), BINARY_SAMPLE, '', Buffer.alloc(0)];

after(killLeftovers);

describe('python websockets client -> duplex WebSocketServer', () => {
  let wss: WebSocketServer;
  let url: string;
  const accepted = new Inbox<DuplexSide>();

  before(async () => {
    wss = new WebSocketServer({
      port: 0,
      host: '127.0.0.1',
      selectProtocol: (offered) => SERVER_PROTOCOLS.find((p) => offered.includes(p)) ?? false,
    });
    wss.on('connection', (ws: WebSocket) => {
      const side = new DuplexSide(ws);
      ws.on('message', (ev: MessageEvent) => ws.send(ev.rawData, { binary: ev.isBinary }));
      accepted.push(side);
    });
    await within(new Promise<void>((resolve) => wss.on('listening', () => resolve())), WAIT_MS, 'duplex listening');
    url = `ws://127.0.0.1:${portOf(wss.address())}/`;
  });

  after(async () => {
    await within(new Promise<void>((resolve) => wss.close(() => resolve())), WAIT_MS, 'duplex server close');
  });

  for (const compression of ['deflate', 'none']) {
    test(`text (multi-byte UTF-8, emoji), JSON, binary and empty messages (compression offered: ${compression})`, TEST_OPTIONS, async () => {
      const steps = MESSAGES.flatMap((data) => [sendStep(data), { op: 'recv' }]);
      const client = startPythonClient(url, [...steps, { op: 'close', code: 1000, reason: '' }], { COMPRESSION: compression });
      const server = await accepted.next(WAIT_MS, 'duplex connection event');
      for (const data of MESSAGES) assert.deepEqual(await server.nextSummary(JSON.stringify(summarize(data))), summarize(data), 'what duplex received');
      const lines = afterOpen(await client.finished());
      assert.deepEqual(lines, [...MESSAGES.map(messageLine), closedLine([1000, ''], [1000, '']), { event: 'done' }]);
      assert.deepEqual(JSON.parse(lines[TEXT_SAMPLES.length]!.text), JSON_SAMPLE, 'JSON round trip');
      assert.deepEqual(await server.closed(), { code: 1000, reason: '', wasClean: true });
    });
  }

  test('1 MiB text and binary messages', TEST_OPTIONS, async () => {
    const steps = [
      { op: 'send', pattern: 'text', size: MIB },
      { op: 'recv' },
      { op: 'send', pattern: 'binary', size: MIB },
      { op: 'recv' },
      { op: 'close', code: 1000, reason: '' },
    ];
    const client = startPythonClient(url, steps);
    const server = await accepted.next(WAIT_MS, 'duplex connection event');
    assert.deepEqual(await server.nextSummary('1 MiB text'), summarize(textPattern(MIB)));
    assert.deepEqual(await server.nextSummary('1 MiB binary'), summarize(binaryPattern(MIB)));
    assert.deepEqual(afterOpen(await client.finished()), [
      messageLine(textPattern(MIB)),
      messageLine(binaryPattern(MIB)),
      closedLine([1000, ''], [1000, '']),
      { event: 'done' },
    ]);
  });

  test('fragmented text and binary messages', TEST_OPTIONS, async () => {
    const text = ['frag', 'm\u00e9nt ', '\u{1F600}', ''];
    const binary = [BINARY_SAMPLE.subarray(0, 3), Buffer.alloc(0), BINARY_SAMPLE.subarray(3)];
    const steps = [
      { op: 'send', fragments: text },
      { op: 'recv' },
      { op: 'send', fragments_base64: binary.map((part) => part.toString('base64')) },
      { op: 'recv' },
      { op: 'close', code: 1000, reason: '' },
    ];
    const client = startPythonClient(url, steps);
    const server = await accepted.next(WAIT_MS, 'duplex connection event');
    assert.deepEqual(await server.nextSummary('fragmented text'), summarize(text.join('')));
    assert.deepEqual(await server.nextSummary('fragmented binary'), summarize(BINARY_SAMPLE));
    assert.deepEqual(afterOpen(await client.finished()), [
      messageLine(text.join('')),
      messageLine(BINARY_SAMPLE),
      closedLine([1000, ''], [1000, '']),
      { event: 'done' },
    ]);
  });

  test('frame length boundaries and a burst of small messages', TEST_OPTIONS, async () => {
    const boundaries = LENGTH_BOUNDARIES.flatMap((size) => [{ op: 'send', pattern: 'binary', size }, { op: 'recv' }]);
    const burst = [...BURST.map(sendStep), ...BURST.map(() => ({ op: 'recv' }))];
    const client = startPythonClient(url, [...boundaries, ...burst, { op: 'close', code: 1000, reason: '' }]);
    const server = await accepted.next(WAIT_MS, 'duplex connection event');
    const expected = [...LENGTH_BOUNDARIES.map(binaryPattern), ...BURST];
    const got = [];
    for (const data of expected) got.push(await server.nextSummary(`${summarize(data).bytes} bytes`));
    assert.deepEqual(got, expected.map(summarize), 'what duplex received, in order');
    assert.deepEqual(afterOpen(await client.finished()), [...expected.map(messageLine), closedLine([1000, ''], [1000, '']), { event: 'done' }]);
  });

  test('server selects the subprotocol from the offered list', TEST_OPTIONS, async () => {
    const client = startPythonClient(url, [{ op: 'close', code: 1000, reason: '' }], { SUBPROTOCOLS: CLIENT_PROTOCOLS.join(',') });
    const server = await accepted.next(WAIT_MS, 'duplex connection event');
    assert.equal(server.ws.protocol, 'chat.v2');
    afterOpen(await client.finished(), 'chat.v2');
  });

  test('python closes with 4000 "bye"', TEST_OPTIONS, async () => {
    const client = startPythonClient(url, [{ op: 'close', code: 4000, reason: 'bye' }]);
    const server = await accepted.next(WAIT_MS, 'duplex connection event');
    assert.deepEqual(await server.closed(), { code: 4000, reason: 'bye', wasClean: true });
    const [closed] = afterOpen(await client.finished());
    assert.deepEqual(closed!.sent, { code: 4000, reason: 'bye' });
    assert.equal(closed!.received?.code, 4000, `duplex echoes the code: ${JSON.stringify(closed)}`);
  });

  test('duplex closes with 4000 "bye"', TEST_OPTIONS, async () => {
    const client = startPythonClient(url, [{ op: 'wait_closed' }]);
    const server = await accepted.next(WAIT_MS, 'duplex connection event');
    server.ws.close(4000, 'bye');
    assert.deepEqual(afterOpen(await client.finished()), [closedLine([4000, 'bye'], [4000, 'bye']), { event: 'done' }]);
    assert.deepEqual(await server.closed(), { code: 4000, reason: 'bye', wasClean: true }, 'python echoes code and reason');
  });

  test('1000 without a reason in both directions; no code at all from duplex', TEST_OPTIONS, async () => {
    const fromPython = startPythonClient(url, [{ op: 'close', code: 1000, reason: '' }]);
    const a = await accepted.next(WAIT_MS, 'duplex connection event');
    assert.deepEqual(await a.closed(), { code: 1000, reason: '', wasClean: true });
    assert.deepEqual(afterOpen(await fromPython.finished()), [closedLine([1000, ''], [1000, '']), { event: 'done' }]);

    const fromDuplex = startPythonClient(url, [{ op: 'wait_closed' }]);
    const b = await accepted.next(WAIT_MS, 'duplex connection event');
    b.ws.close(1000);
    assert.deepEqual(afterOpen(await fromDuplex.finished()), [closedLine([1000, ''], [1000, '']), { event: 'done' }]);
    assert.deepEqual(await b.closed(), { code: 1000, reason: '', wasClean: true });

    const bare = startPythonClient(url, [{ op: 'wait_closed' }]);
    const c = await accepted.next(WAIT_MS, 'duplex connection event');
    c.ws.close();
    assert.deepEqual(afterOpen(await bare.finished()), [closedLine([1005, ''], [1005, '']), { event: 'done' }], 'an empty close frame is 1005');
    assert.equal((await c.closed()).wasClean, true);
  });

  test('close reasons of 123 bytes of multi-byte UTF-8, both directions', TEST_OPTIONS, async () => {
    const fromPython = startPythonClient(url, [{ op: 'close', code: 4001, reason: LONGEST_REASON }]);
    const a = await accepted.next(WAIT_MS, 'duplex connection event');
    assert.deepEqual(await a.closed(), { code: 4001, reason: LONGEST_REASON, wasClean: true });
    await fromPython.finished();

    const fromDuplex = startPythonClient(url, [{ op: 'wait_closed' }]);
    const b = await accepted.next(WAIT_MS, 'duplex connection event');
    b.ws.close(4001, LONGEST_REASON);
    const [closed] = afterOpen(await fromDuplex.finished());
    assert.deepEqual(closed!.received, { code: 4001, reason: LONGEST_REASON });
  });

  test('closing the server sends 1001 to its clients', TEST_OPTIONS, async () => {
    const closing = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await within(new Promise<void>((resolve) => closing.on('listening', () => resolve())), WAIT_MS, 'duplex listening');
    const connected = new Promise((resolve) => closing.on('connection', resolve));
    const client = startPythonClient(`ws://127.0.0.1:${portOf(closing.address())}/`, [{ op: 'wait_closed' }]);
    await within(connected, WAIT_MS, 'duplex connection event');
    await within(new Promise<void>((resolve) => closing.close(() => resolve())), WAIT_MS, 'duplex server close');
    const [closed] = afterOpen(await client.finished());
    assert.equal(closed!.received?.code, 1001, JSON.stringify(closed));
  });

  test('ping and pong in both directions', TEST_OPTIONS, async () => {
    const client = startPythonClient(url, [{ op: 'ping', data: 'from python' }, { op: 'wait_closed' }]);
    const server = await accepted.next(WAIT_MS, 'duplex connection event');
    assert.equal((await server.pings.next(WAIT_MS, 'duplex ping event')).toString(), 'from python');
    server.ws.ping('from duplex');
    assert.equal((await server.pongs.next(WAIT_MS, 'duplex pong for its ping')).toString(), 'from duplex');
    server.ws.close(1000);
    assert.deepEqual(afterOpen(await client.finished()), [
      { event: 'pong', data: 'from python' },
      closedLine([1000, ''], [1000, '']),
      { event: 'done' },
    ]);
  });
});

describe('duplex WebSocket -> python websockets echo server', () => {
  let python: Awaited<ReturnType<typeof startPythonServer>>;

  before(async () => {
    python = await startPythonServer({ SUBPROTOCOLS: SERVER_PROTOCOLS.join(',') });
  });

  after(async () => {
    await python?.stop();
  });

  async function connect(path: string, protocols: string[] = []): Promise<DuplexSide> {
    const ws = new WebSocket(`${python.url}${path}`, protocols);
    const side = new DuplexSide(ws);
    const opened = new Promise<void>((resolve, reject) => {
      ws.on('open', () => resolve());
      ws.on('error', (ev: { error: Error }) => reject(ev.error));
    });
    await within(opened, WAIT_MS, `duplex client open ${path}`);
    return side;
  }

  test('text (multi-byte UTF-8, emoji), JSON, binary and empty messages', TEST_OPTIONS, async () => {
    const path = '/echo?t=messages';
    const client = await connect(path);
    for (const data of MESSAGES) {
      client.ws.send(data);
      assert.deepEqual(await client.nextSummary(`echo of ${JSON.stringify(summarize(data))}`), summarize(data));
    }
    client.ws.send(JSON.stringify(JSON_SAMPLE));
    const echo = await client.messages.next(WAIT_MS, 'JSON echo');
    assert.deepEqual(JSON.parse(echo.data as string), JSON_SAMPLE);
    client.ws.close(1000);
    assert.deepEqual(await client.closed(), { code: 1000, reason: '', wasClean: true });
    const closed = await python.report(path, 'closed');
    assert.deepEqual(closed, { path, ...closedLine([1000, ''], [1000, '']) });
  });

  test('1 MiB text and binary messages', TEST_OPTIONS, async () => {
    const client = await connect('/echo?t=large');
    for (const data of [textPattern(MIB), binaryPattern(MIB)]) {
      client.ws.send(data);
      assert.deepEqual(await client.nextSummary('1 MiB echo'), summarize(data));
    }
    client.ws.close();
    await client.closed();
  });

  test('frame length boundaries and a burst of small messages', TEST_OPTIONS, async () => {
    const client = await connect('/echo?t=burst');
    for (const data of LENGTH_BOUNDARIES.map(binaryPattern)) {
      client.ws.send(data);
      assert.deepEqual(await client.nextSummary(`echo of ${data.length} bytes`), summarize(data));
    }
    for (const text of BURST) client.ws.send(text);
    const got = [];
    for (const _ of BURST) got.push(await client.nextSummary('burst echo'));
    assert.deepEqual(got, BURST.map(summarize), 'the burst came back in order');
    client.ws.close();
    await client.closed();
  });

  test('subprotocol: duplex reports what the server selected from its offer', TEST_OPTIONS, async () => {
    const path = '/echo?t=subprotocol';
    const client = await connect(path, CLIENT_PROTOCOLS);
    assert.equal(client.ws.protocol, 'chat.v2');
    assert.equal((await python.report(path, 'open')).subprotocol, 'chat.v2');
    client.ws.close();
    await client.closed();
  });

  test('subprotocol: duplex fails the connection when the server answers with one it did not offer', TEST_OPTIONS, async () => {
    const rogue = await startPythonServer({ SUBPROTOCOLS: 'chat.v9', FORCE_SUBPROTOCOL: 'chat.v9' });
    try {
      const ws = new WebSocket(`${rogue.url}/echo`, CLIENT_PROTOCOLS);
      const side = new DuplexSide(ws);
      let opened = false;
      let errors = 0;
      ws.on('open', () => (opened = true));
      ws.on('error', () => errors++);
      const closed = await side.closed();
      assert.deepEqual({ opened, errors, code: closed.code, wasClean: closed.wasClean }, { opened: false, errors: 1, code: 1006, wasClean: false });
    } finally {
      await rogue.stop();
    }
  });

  test('python closes with 4000 "bye"', TEST_OPTIONS, async () => {
    const path = '/close?code=4000&reason=bye';
    const client = await connect(path);
    assert.deepEqual(await client.closed(), { code: 4000, reason: 'bye', wasClean: true });
    const closed = await python.report(path, 'closed');
    assert.deepEqual(closed.sent, { code: 4000, reason: 'bye' });
    assert.equal(closed.received?.code, 4000, `duplex echoes the code: ${JSON.stringify(closed)}`);
  });

  test('duplex closes with 4000 "bye"', TEST_OPTIONS, async () => {
    const path = '/echo?t=close-4000';
    const client = await connect(path);
    client.ws.close(4000, 'bye');
    assert.deepEqual(await client.closed(), { code: 4000, reason: 'bye', wasClean: true }, 'python echoes code and reason');
    assert.deepEqual(await python.report(path, 'closed'), { path, ...closedLine([4000, 'bye'], [4000, 'bye']) });
  });

  test('1000 without a reason in both directions; no code at all from duplex', TEST_OPTIONS, async () => {
    const fromPython = await connect('/close?code=1000');
    assert.deepEqual(await fromPython.closed(), { code: 1000, reason: '', wasClean: true });

    const path = '/echo?t=close-1000';
    const fromDuplex = await connect(path);
    fromDuplex.ws.close(1000);
    assert.deepEqual(await fromDuplex.closed(), { code: 1000, reason: '', wasClean: true });
    assert.deepEqual((await python.report(path, 'closed')).received, { code: 1000, reason: '' });

    const barePath = '/echo?t=close-bare';
    const bare = await connect(barePath);
    bare.ws.close();
    assert.equal((await bare.closed()).wasClean, true);
    assert.deepEqual((await python.report(barePath, 'closed')).received, { code: 1005, reason: '' }, 'an empty close frame is 1005');
  });

  test('close reasons of 123 bytes of multi-byte UTF-8, both directions', TEST_OPTIONS, async () => {
    const fromPython = await connect(`/close?code=4001&reason=${encodeURIComponent(LONGEST_REASON)}`);
    assert.deepEqual(await fromPython.closed(), { code: 4001, reason: LONGEST_REASON, wasClean: true });

    const path = '/echo?t=long-reason';
    const fromDuplex = await connect(path);
    fromDuplex.ws.close(4001, LONGEST_REASON);
    assert.equal((await fromDuplex.closed()).wasClean, true);
    assert.deepEqual((await python.report(path, 'closed')).received, { code: 4001, reason: LONGEST_REASON });
  });

  test('ping and pong in both directions', TEST_OPTIONS, async () => {
    const path = '/ping?data=from-python';
    const client = await connect(path);
    assert.equal((await client.pings.next(WAIT_MS, 'duplex ping event')).toString(), 'from-python');
    assert.deepEqual(await python.report(path, 'pong'), { event: 'pong', path, data: 'from-python' });
    client.ws.ping('from duplex');
    assert.equal((await client.pongs.next(WAIT_MS, 'duplex pong for its ping')).toString(), 'from duplex');
    client.ws.close();
    await client.closed();
  });
});
