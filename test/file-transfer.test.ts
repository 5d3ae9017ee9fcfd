// File transfer over TCP: the wire codec, then sender and receiver on 127.0.0.1 with real files.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import {
  encodeAccept, encodeDone, encodeHeader, encodeRefuse, encodeStart, encodeTrailer, FileProtocolError, KEEP,
  MAGIC, nameProblem, ReceiverMessageParser, SenderStreamParser, type Header, type ReceiverMessage,
} from '../src/sockets/file-protocol.js';
import {
  FileReceiver, FileTransferError, sendFile, type FailureInfo, type FileReceiverOptions, type ReceivedInfo,
  type SendFileOptions,
} from '../src/sockets/file-transfer.js';
import { bounded } from './support/cli.js';
import { Proxy, randomFile, RawSender, sha256File, smallTmpfs, tempDir } from './support/file-transfer.js';

const MiB = 1 << 20;
const WAIT_MS = 10_000;
const EMPTY_SHA256 = createHash('sha256').digest();

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

function scratch(prefix: string): string {
  const { dir, remove } = tempDir(prefix);
  cleanups.push(remove);
  return dir;
}

/** The events a parser produced, with body bytes joined, so that different chunkings compare equal. */
function parseSenderStream(stream: Buffer, chunkSize: number): unknown[] {
  const events: unknown[] = [];
  const parser = new SenderStreamParser({
    header: (header) => events.push({ header }),
    start: (offset) => events.push({ start: offset }),
    body: (chunk) => {
      const last = events.at(-1) as { body?: Buffer } | undefined;
      if (last?.body) last.body = Buffer.concat([last.body, chunk]);
      else events.push({ body: Buffer.from(chunk) });
    },
    trailer: (sha256) => events.push({ trailer: sha256 }),
  });
  for (let at = 0; at < stream.length; at += chunkSize) parser.push(stream.subarray(at, at + chunkSize));
  return events;
}

function parseReceiverMessages(stream: Buffer, chunkSize: number): ReceiverMessage[] {
  const parser = new ReceiverMessageParser();
  const messages: ReceiverMessage[] = [];
  for (let at = 0; at < stream.length; at += chunkSize) messages.push(...parser.push(stream.subarray(at, at + chunkSize)));
  return messages;
}

function protocolError(stream: Buffer, reason: string): void {
  assert.throws(() => parseSenderStream(stream, stream.length), (err: unknown) => {
    assert.ok(err instanceof FileProtocolError);
    assert.equal(err.reason, reason);
    return true;
  });
}

describe('file protocol', () => {
  const header: Header = { name: 'rapport été.pdf', size: 100, overwrite: true };
  const body = Buffer.from(Array.from({ length: 100 }, (_, i) => i));
  const sha256 = createHash('sha256').update(body).digest();

  test('a sender stream parses the same whatever its chunking', () => {
    const stream = Buffer.concat([encodeHeader(header), KEEP, KEEP, encodeStart(40), body.subarray(40), encodeTrailer(sha256)]);
    const expected = [{ header }, { start: 40 }, { body: body.subarray(40) }, { trailer: sha256 }];
    for (const size of [1, 2, 3, 7, 64, stream.length]) {
      assert.deepEqual(parseSenderStream(stream, size), expected, `chunks of ${size}`);
    }
  });

  test('an empty body goes straight to the trailer', () => {
    const stream = Buffer.concat([encodeHeader({ ...header, size: 0 }), encodeStart(0), encodeTrailer(EMPTY_SHA256)]);
    assert.deepEqual(parseSenderStream(stream, 1), [{ header: { ...header, size: 0 } }, { start: 0 }, { trailer: EMPTY_SHA256 }]);
  });

  test('receiver messages parse the same whatever their chunking', () => {
    const stream = Buffer.concat([
      encodeAccept(12345, sha256), KEEP, encodeDone(sha256), encodeRefuse('disk-full', 'no space: 5 bytes left'), encodeRefuse('busy', ''),
    ]);
    const expected: ReceiverMessage[] = [
      { type: 'accept', offset: 12345, prefixSha256: sha256 },
      { type: 'keep' },
      { type: 'done', sha256 },
      { type: 'refuse', reason: 'disk-full', message: 'no space: 5 bytes left' },
      { type: 'refuse', reason: 'busy', message: '' },
    ];
    for (const size of [1, 2, 5, stream.length]) assert.deepEqual(parseReceiverMessages(stream, size), expected, `chunks of ${size}`);
  });

  test('malformed sender streams are protocol errors with the reason to answer', () => {
    const good = encodeHeader(header);
    protocolError(Buffer.concat([Buffer.from('GET / HTTP/1.1\r\n\r\n')]), 'protocol');
    const version2 = Buffer.from(good);
    version2[MAGIC.length] = 2;
    protocolError(version2, 'unsupported-version');
    const flags = Buffer.from(good);
    flags[MAGIC.length + 1] = 0x80;
    protocolError(flags, 'protocol');
    const huge = Buffer.from(good);
    huge.writeBigUInt64BE(2n ** 60n, 6);
    protocolError(huge, 'protocol');
    const badName = encodeHeader({ ...header, name: 'ab' });
    badName[badName.length - 1] = 0xff;
    protocolError(badName, 'name-refused');
    protocolError(Buffer.concat([good, encodeStart(101)]), 'protocol');
    protocolError(Buffer.concat([good, Buffer.from('X'), Buffer.alloc(8)]), 'protocol');
    protocolError(Buffer.concat([good, encodeStart(100), body, encodeTrailer(sha256), Buffer.of(0)]), 'protocol');
    protocolError(Buffer.concat([good, encodeStart(100), body, Buffer.alloc(33)]), 'protocol');
  });

  test('an unknown receiver message is a protocol error', () => {
    assert.throws(() => new ReceiverMessageParser().push(Buffer.from('HTTP/1.1 400 Bad Request\r\n')), FileProtocolError);
  });

  test('only plain file names are accepted', () => {
    const refused = [
      '', '.', '..', '../escape', '../../etc/passwd', '/etc/passwd', 'sub/file', 'sub\\file', '..\\escape', 'C:evil',
      'c:\\windows', 'nul\0byte', 'line\nbreak', 'bell\x07', 'del\x7f', 'file.part', 'é'.repeat(128),
    ];
    for (const name of refused) assert.notEqual(nameProblem(name), undefined, JSON.stringify(name));
    const accepted = ['report.pdf', '.hidden', 'a..b', '...', 'ünïcødé 文件.txt', 'x'.repeat(255), 'part', 'file.part.txt', '-dash'];
    for (const name of accepted) assert.equal(nameProblem(name), undefined, JSON.stringify(name));
  });
});

interface Running {
  receiver: FileReceiver;
  port: number;
  dir: string;
  /** Resolves with the next 'failed' (or 'received') event. */
  nextFailure(): Promise<FailureInfo>;
  nextReceived(): Promise<ReceivedInfo>;
}

async function startReceiver(dir: string, options: Partial<FileReceiverOptions> = {}): Promise<Running> {
  const receiver = new FileReceiver({ dir, ...options });
  const { port } = await receiver.listen(0, '127.0.0.1');
  cleanups.push(() => bounded(receiver.close(), WAIT_MS, () => 'receiver did not close'));
  const next = <T>(event: string) => (): Promise<T> =>
    bounded(once(receiver, event).then(([info]) => info as T), WAIT_MS, () => `no '${event}' event`);
  return { receiver, port, dir, nextFailure: next('failed'), nextReceived: next('received') };
}

function send(port: number, options: Omit<SendFileOptions, 'host' | 'port'>) {
  return sendFile({ host: '127.0.0.1', port, ...options });
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<FileTransferError> {
  let caught: unknown;
  await assert.rejects(promise, (err: unknown) => {
    caught = err;
    return err instanceof FileTransferError && err.code === code;
  });
  return caught as FileTransferError;
}

describe('file transfer', () => {
  test('a 100 MB random file arrives identical, verified by SHA-256', { timeout: 120_000 }, async () => {
    const source = path.join(scratch('src'), 'big.bin');
    const expected = await randomFile(source, 100 * MiB);
    const { port, dir, nextReceived } = await startReceiver(scratch('dst'));
    const received = nextReceived();
    const result = await send(port, { path: source });
    assert.equal(result.sha256, expected);
    assert.deepEqual([result.name, result.size, result.offset, result.sent], ['big.bin', 100 * MiB, 0, 100 * MiB]);
    assert.equal((await received).sha256, expected);
    assert.equal(await sha256File(path.join(dir, 'big.bin')), expected);
    assert.deepEqual(readdirSync(dir), ['big.bin']);
  });

  test('an interrupted transfer resumes from the bytes received and ends identical', { timeout: 60_000 }, async () => {
    const source = path.join(scratch('src'), 'resume.bin');
    const expected = await randomFile(source, 32 * MiB, 2);
    const { port, dir, nextFailure } = await startReceiver(scratch('dst'));
    const proxy = await Proxy.start(port, { cutAfter: 12 * MiB });
    cleanups.push(() => proxy.close());
    const failed = nextFailure();
    const first = send(proxy.port, { path: source });
    await bounded(proxy.cut, WAIT_MS, () => 'the proxy never cut');
    proxy.sever();
    await rejectsWith(first, 'interrupted');
    const failure = await failed;
    assert.equal(failure.code, 'interrupted');
    assert.ok(failure.kept !== undefined && failure.kept > 0 && failure.kept < 12 * MiB, `kept ${failure.kept}`);
    assert.equal(statSync(path.join(dir, 'resume.bin.part')).size, failure.kept);

    const result = await send(port, { path: source });
    assert.equal(result.offset, failure.kept);
    assert.equal(result.sent, 32 * MiB - failure.kept!);
    assert.equal(result.sha256, expected);
    assert.equal(await sha256File(path.join(dir, 'resume.bin')), expected);
    assert.deepEqual(readdirSync(dir), ['resume.bin']);
  });

  test('a partial file that matches the start of the file is kept; one that does not is rewritten', async () => {
    const source = path.join(scratch('src'), 'prefix.bin');
    const expected = await randomFile(source, 4 * MiB, 3);
    const { port, dir } = await startReceiver(scratch('dst'));

    writeFileSync(path.join(dir, 'prefix.bin.part'), readFileSync(source).subarray(0, 3 * MiB));
    const resumed = await send(port, { path: source });
    assert.equal(resumed.offset, 3 * MiB);
    assert.equal(await sha256File(path.join(dir, 'prefix.bin')), expected);

    for (const stale of [Buffer.alloc(MiB, 7), Buffer.alloc(5 * MiB, 7)]) {
      writeFileSync(path.join(dir, 'prefix.bin.part'), stale);
      const restarted = await send(port, { path: source, overwrite: true });
      assert.equal(restarted.offset, 0);
      assert.equal(await sha256File(path.join(dir, 'prefix.bin')), expected);
    }
    assert.deepEqual(readdirSync(dir), ['prefix.bin']);
  });

  test('names with a path are refused, and nothing is written anywhere', async () => {
    const parent = scratch('parent');
    const dir = path.join(parent, 'inbox');
    mkdirSync(dir);
    const source = path.join(scratch('src'), 'payload.bin');
    await randomFile(source, 1000, 4);
    const { port, nextFailure } = await startReceiver(dir);
    const names = ['../escape.bin', '../../escape.bin', path.join(parent, 'absolute.bin'), 'sub/dir.bin', '..\\escape.bin', '..', 'C:drive.bin', 'x.part'];
    for (const name of names) {
      const failed = nextFailure();
      const err = await rejectsWith(send(port, { path: source, name }), 'name-refused');
      assert.match(err.message, /refused/);
      assert.equal((await failed).code, 'name-refused');
    }
    assert.deepEqual(readdirSync(dir), []);
    assert.deepEqual(readdirSync(parent), ['inbox']);
  });

  test('an existing file is not replaced unless the sender asks', async () => {
    const source = path.join(scratch('src'), 'keep.txt');
    const expected = await randomFile(source, 2 * MiB, 5);
    const { port, dir } = await startReceiver(scratch('dst'));
    writeFileSync(path.join(dir, 'keep.txt'), 'original');
    await rejectsWith(send(port, { path: source }), 'exists');
    assert.equal(readFileSync(path.join(dir, 'keep.txt'), 'utf8'), 'original');
    assert.deepEqual(readdirSync(dir), ['keep.txt']);

    const result = await send(port, { path: source, overwrite: true });
    assert.equal(result.sha256, expected);
    assert.equal(await sha256File(path.join(dir, 'keep.txt')), expected);
  });

  test('an empty file is sent and verified', async () => {
    const source = path.join(scratch('src'), 'empty');
    writeFileSync(source, '');
    const { port, dir } = await startReceiver(scratch('dst'));
    const result = await send(port, { path: source });
    assert.equal(result.sha256, EMPTY_SHA256.toString('hex'));
    assert.equal(statSync(path.join(dir, 'empty')).size, 0);
  });

  test('a second sender of a name in transfer is refused as busy', async () => {
    const source = path.join(scratch('src'), 'busy.bin');
    await randomFile(source, 1000, 6);
    const { port } = await startReceiver(scratch('dst'));
    const first = await RawSender.connect(port);
    cleanups.push(() => first.close());
    first.send(encodeHeader({ name: 'busy.bin', size: 10, overwrite: false }));
    assert.equal((await first.next()).type, 'accept');
    await rejectsWith(send(port, { path: source }), 'busy');
    first.close();
  });

  test('bytes that do not match the trailer hash are refused and removed', async () => {
    const { port, dir, nextFailure } = await startReceiver(scratch('dst'));
    const raw = await RawSender.connect(port);
    const failed = nextFailure();
    raw.send(encodeHeader({ name: 'bad.bin', size: 1000, overwrite: false }));
    assert.deepEqual(await raw.next(), { type: 'accept', offset: 0, prefixSha256: EMPTY_SHA256 });
    raw.send(encodeStart(0), Buffer.alloc(1000, 1), encodeTrailer(createHash('sha256').update('other').digest()));
    const answer = await raw.next();
    assert.equal(answer.type === 'refuse' && answer.reason, 'hash-mismatch');
    await raw.waitClosed();
    assert.equal((await failed).code, 'hash-mismatch');
    assert.deepEqual(readdirSync(dir), []);
  });

  test('a stranger gets a one-message refusal and is disconnected', async () => {
    const { port } = await startReceiver(scratch('dst'));
    const raw = await RawSender.connect(port);
    raw.send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    const answer = await raw.next();
    assert.equal(answer.type === 'refuse' && answer.reason, 'protocol');
    raw.close();
  });

  test('a silent sender is dropped after the timeout, leaving no empty NAME.part', async () => {
    const { port, dir, nextFailure } = await startReceiver(scratch('dst'), { timeoutMs: 300 });
    const raw = await RawSender.connect(port);
    const failed = nextFailure();
    raw.send(encodeHeader({ name: 'slow.bin', size: 10, overwrite: false }));
    assert.equal((await raw.next()).type, 'accept');
    await raw.waitClosed();
    assert.equal((await failed).code, 'timeout');
    assert.deepEqual(readdirSync(dir), []);
  });

  test('a sender that hangs up right after its header leaves nothing behind', async () => {
    const { port, dir, nextFailure } = await startReceiver(scratch('dst'));
    const raw = await RawSender.connect(port);
    const failed = nextFailure();
    raw.send(encodeHeader({ name: 'gone.bin', size: 10, overwrite: false }));
    raw.socket.end();
    assert.equal((await failed).code, 'interrupted');
    assert.deepEqual(readdirSync(dir), []);
  });

  test('a sender that cannot reach the receiver or read its file fails with a clear code', async () => {
    const { port, receiver } = await startReceiver(scratch('dst'));
    await receiver.close();
    const source = path.join(scratch('src'), 'file.bin');
    writeFileSync(source, 'x');
    await rejectsWith(send(port, { path: source }), 'connect');
    await rejectsWith(send(port, { path: path.join(path.dirname(source), 'missing') }), 'file');
    await rejectsWith(send(port, { path: path.dirname(source) }), 'file');
  });
});

describe('file transfer to a full disk', () => {
  test('a file larger than the free space is refused before its body is sent', async (t) => {
    const disk = smallTmpfs('1m');
    if (!disk) return t.skip('cannot mount a tmpfs here (needs root)');
    cleanups.push(disk.unmount);
    const source = path.join(scratch('src'), 'large.bin');
    await randomFile(source, 4 * MiB, 7);
    const { port, nextFailure } = await startReceiver(disk.dir);
    const failed = nextFailure();
    const err = await rejectsWith(send(port, { path: source }), 'disk-full');
    assert.match(err.message, /space/);
    assert.equal((await failed).code, 'disk-full');
    assert.deepEqual(readdirSync(disk.dir), []);
  });

  test('a disk that fills up during the transfer ends it with disk-full', async (t) => {
    const disk = smallTmpfs('2m');
    if (!disk) return t.skip('cannot mount a tmpfs here (needs root)');
    cleanups.push(disk.unmount);
    const source = path.join(scratch('src'), 'fits.bin');
    await randomFile(source, 1.5 * MiB, 8);
    const { port, nextFailure } = await startReceiver(disk.dir);
    const failed = nextFailure();
    const fillDisk = (): void => {
      try {
        writeFileSync(path.join(disk.dir, 'filler'), Buffer.alloc(4 * MiB));
      } catch (err) {
        assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
      }
    };
    // After the receiver has checked the free space, before the body: someone else takes it all.
    await rejectsWith(send(port, { path: source, onStart: fillDisk }), 'disk-full');
    assert.equal((await failed).code, 'disk-full');
    assert.ok(!existsSync(path.join(disk.dir, 'fits.bin')));
  });
});
