// `duplex file receive` and `duplex file send` as a user runs them: spawned processes on 127.0.0.1.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { bounded, CLI_PATH, killAll, runCli, startServerCli, type CliProcess } from './support/cli.js';
import { Proxy, randomFile, sha256File, smallTmpfs, tempDir } from './support/file-transfer.js';

const MiB = 1 << 20;
const TEST_TIMEOUT = { timeout: 60_000 };

const cleanups: (() => unknown)[] = [];
after(async () => {
  killAll();
  for (const cleanup of cleanups.reverse()) await cleanup();
});

function scratch(prefix: string): string {
  const { dir, remove } = tempDir(prefix);
  cleanups.push(remove);
  return dir;
}

/** Exactly one line on stderr, with no stack trace. */
function assertOneLine(stderr: string, pattern: RegExp): void {
  assert.match(stderr, /^duplex: [^\n]*\n$/, `expected one line, got ${JSON.stringify(stderr)}`);
  assert.match(stderr, pattern);
}

async function startReceiverCli(dir: string, ...args: string[]): Promise<{ cli: CliProcess; address: string }> {
  const { cli, url } = await startServerCli(['file', 'receive', '--port', '0', '--dir', dir, ...args]);
  cleanups.push(() => cli.signal('SIGKILL'));
  return { cli, address: url };
}

async function sendCli(...args: string[]) {
  return runCli(['file', 'send', ...args]).exited(30_000);
}

const FINAL_LINE = /^sent (\S+): [\d.]+ MB \((\d+) bytes\)(?:, resumed at (\d+))? in [\d.]+ s, [\d.]+ MB\/s, sha256 ([0-9a-f]{64}) verified\n$/;

async function closedPort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('duplex file', () => {
  test('a file is sent and received identical; each side ends with one line', TEST_TIMEOUT, async () => {
    const source = path.join(scratch('src'), 'data.bin');
    const expected = await randomFile(source, 20 * MiB, 11);
    const dir = scratch('dst');
    const { cli: receiver, address } = await startReceiverCli(dir);

    const sent = await sendCli(address, source);
    assert.equal(sent.code, 0, sent.stderr);
    // Not a terminal: no progress bar, nothing on stderr.
    assert.equal(sent.stderr, '');
    const [, name, bytes, resumed, sha256] = sent.stdout.match(FINAL_LINE) ?? assert.fail(sent.stdout);
    assert.deepEqual([name, Number(bytes), resumed, sha256], ['data.bin', 20 * MiB, undefined, expected]);
    assert.equal(await sha256File(path.join(dir, 'data.bin')), expected);
    await receiver.waitFor('stdout', new RegExp(`^received data\\.bin from 127\\.0\\.0\\.1:\\d+: .* sha256 ${expected} verified$`, 'm'));

    receiver.signal('SIGINT');
    const stopped = await receiver.exited();
    assert.equal(stopped.code, 0);
  });

  test('a sender killed midway: the same command again resumes and ends with an identical file', TEST_TIMEOUT, async () => {
    const source = path.join(scratch('src'), 'resume.bin');
    const expected = await randomFile(source, 32 * MiB, 12);
    const dir = scratch('dst');
    const { cli: receiver, address } = await startReceiverCli(dir);
    const proxy = await Proxy.start(Number(address.split(':')[1]), { cutAfter: 10 * MiB });
    cleanups.push(() => proxy.close());

    const first = runCli(['file', 'send', `127.0.0.1:${proxy.port}`, source]);
    await bounded(proxy.cut, 20_000, () => `the proxy never cut; sender stderr=${first.stderr}`);
    first.signal('SIGKILL');
    assert.equal((await first.exited()).signal, 'SIGKILL');
    const [, kept] = await receiver.waitFor('stderr', /^duplex: resume\.bin from \S+: the sender closed the connection; (\d+) bytes kept in resume\.bin\.part$/m);
    assert.ok(Number(kept) > 0 && Number(kept) < 10 * MiB);

    const again = await sendCli(address, source);
    assert.equal(again.code, 0, again.stderr);
    const [, , , resumed, sha256] = again.stdout.match(FINAL_LINE) ?? assert.fail(again.stdout);
    assert.equal(resumed, kept);
    assert.equal(sha256, expected);
    assert.equal(await sha256File(path.join(dir, 'resume.bin')), expected);
    assert.deepEqual(readdirSync(dir), ['resume.bin']);
  });

  test('Ctrl-C stops a sender with 130 and a hint to resume', TEST_TIMEOUT, async () => {
    const source = path.join(scratch('src'), 'stop.bin');
    await randomFile(source, 16 * MiB, 13);
    const { address } = await startReceiverCli(scratch('dst'));
    // The proxy holds the rest, so the sender is surely in the middle of its transfer.
    const proxy = await Proxy.start(Number(address.split(':')[1]), { cutAfter: 4 * MiB });
    cleanups.push(() => proxy.close());
    const sender = runCli(['file', 'send', `127.0.0.1:${proxy.port}`, source]);
    await bounded(proxy.cut, 20_000, () => 'the proxy never cut');
    sender.signal('SIGINT');
    const exit = await sender.exited();
    assert.equal(exit.code, 130);
    assertOneLine(exit.stderr, /interrupted by SIGINT; run the same command again to resume/);
  });

  test('on a terminal the sender shows a progress bar with rate and ETA', TEST_TIMEOUT, async (t) => {
    if (!existsSync('/usr/bin/script')) return t.skip('script(1) is not installed');
    const source = path.join(scratch('src'), 'tty.bin');
    await randomFile(source, 8 * MiB, 14);
    const { address } = await startReceiverCli(scratch('dst'));
    const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI_PATH)} file send ${address} ${JSON.stringify(source)}`;
    const output = await new Promise<string>((resolve, reject) => {
      execFile('script', ['-qec', command, '/dev/null'], { timeout: 20_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
    });
    assert.match(output, /tty\.bin \[[=-]+\] \d+% \| [\d.]+ of 8\.4 MB \| [\d.]+ MB\/s \| ETA /);
    assert.match(output, /sent tty\.bin: 8\.4 MB .* verified/);
  });
});

describe('duplex file errors: one line, exit status 1', () => {
  test('refused connection', TEST_TIMEOUT, async () => {
    const source = path.join(scratch('src'), 'x.bin');
    writeFileSync(source, 'x');
    const port = await closedPort();
    const exit = await sendCli(`127.0.0.1:${port}`, source);
    assert.equal(exit.code, 1);
    assertOneLine(exit.stderr, new RegExp(`cannot connect to 127\\.0\\.0\\.1:${port}: connection refused`));
  });

  test('missing file', TEST_TIMEOUT, async () => {
    const { address } = await startReceiverCli(scratch('dst'));
    const missing = path.join(scratch('src'), 'missing.bin');
    const exit = await sendCli(address, missing);
    assert.equal(exit.code, 1);
    assertOneLine(exit.stderr, /cannot read .*missing\.bin: no such file or directory/);
  });

  test('name refused, and nothing written outside the directory', TEST_TIMEOUT, async () => {
    const parent = scratch('parent');
    const source = path.join(scratch('src'), 'x.bin');
    writeFileSync(source, 'x');
    const { cli: receiver, address } = await startReceiverCli(parent);
    for (const name of ['../escape.bin', '/tmp/absolute.bin']) {
      const exit = await sendCli(address, source, '--name', name);
      assert.equal(exit.code, 1);
      assertOneLine(exit.stderr, /the name ".*" is refused: contains a path separator/);
    }
    await receiver.waitFor('stderr', /absolute\.bin.*refused/);
    assert.deepEqual(readdirSync(parent), []);
    assert.ok(!existsSync(path.join(path.dirname(parent), 'escape.bin')));
  });

  test('an existing file is kept unless --overwrite', TEST_TIMEOUT, async () => {
    const source = path.join(scratch('src'), 'keep.txt');
    writeFileSync(source, 'new content');
    const dir = scratch('dst');
    writeFileSync(path.join(dir, 'keep.txt'), 'original');
    const { address } = await startReceiverCli(dir);
    const refused = await sendCli(address, source);
    assert.equal(refused.code, 1);
    assertOneLine(refused.stderr, /keep\.txt already exists on the receiver \(--overwrite replaces it\)/);
    assert.equal(readFileSync(path.join(dir, 'keep.txt'), 'utf8'), 'original');
    const replaced = await sendCli(address, source, '--overwrite');
    assert.equal(replaced.code, 0, replaced.stderr);
    assert.equal(readFileSync(path.join(dir, 'keep.txt'), 'utf8'), 'new content');
  });

  test('hash mismatch: a byte flipped on the way is caught, nothing is kept', TEST_TIMEOUT, async () => {
    const source = path.join(scratch('src'), 'flip.bin');
    await randomFile(source, 2 * MiB, 15);
    const dir = scratch('dst');
    const { cli: receiver, address } = await startReceiverCli(dir);
    const proxy = await Proxy.start(Number(address.split(':')[1]), { corruptAt: MiB });
    cleanups.push(() => proxy.close());
    const exit = await sendCli(`127.0.0.1:${proxy.port}`, source);
    assert.equal(exit.code, 1);
    assertOneLine(exit.stderr, /SHA-256 mismatch for flip\.bin: received [0-9a-f]{64}, sent [0-9a-f]{64}; nothing kept/);
    await receiver.waitFor('stderr', /flip\.bin from .*SHA-256 mismatch/);
    assert.deepEqual(readdirSync(dir), []);
  });

  test('disk full', TEST_TIMEOUT, async (t) => {
    const disk = smallTmpfs('1m');
    if (!disk) return t.skip('cannot mount a tmpfs here (needs root)');
    cleanups.push(disk.unmount);
    const source = path.join(scratch('src'), 'large.bin');
    await randomFile(source, 4 * MiB, 16);
    const { address } = await startReceiverCli(disk.dir);
    const exit = await sendCli(address, source);
    assert.equal(exit.code, 1);
    assertOneLine(exit.stderr, /not enough space on the receiver: \d+ bytes needed, \d+ available/);
  });

  test('bad arguments and a missing directory', TEST_TIMEOUT, async () => {
    const noPort = await sendCli('127.0.0.1', 'x');
    assert.equal(noPort.code, 1);
    assert.match(noPort.stderr, /expected HOST:PORT/);
    const missing = path.join(scratch('dst'), 'missing');
    const receiver = await runCli(['file', 'receive', '--port', '0', '--dir', missing]).exited();
    assert.equal(receiver.code, 1);
    assertOneLine(receiver.stderr, /cannot receive into .*missing: no such directory/);
  });
});
