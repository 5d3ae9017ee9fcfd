// The disk side of a file transfer: the reader's reused buffers and its end, the writer's count of
// bytes it no longer refers to.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { setImmediate as turn } from 'node:timers/promises';
import { CHUNK_BYTES, FileReader, OrderedWriter } from '../src/sockets/file-io.js';
import { randomFile, tempDir } from './support/file-transfer.js';

const { dir, remove } = tempDir('file-io');
after(remove);

describe('file reader', () => {
  test('reads a range in order, in chunks of at most CHUNK_BYTES', async () => {
    const file = path.join(dir, 'range.bin');
    await randomFile(file, 2 * CHUNK_BYTES + 12345);
    const whole = readFileSync(file);
    const handle = await open(file, 'r');
    try {
      const start = 777;
      const end = whole.length - 5;
      const reader = new FileReader(handle, start, end);
      const hash = createHash('sha256');
      let chunks = 0;
      for (let chunk = await reader.next(); chunk !== undefined; chunk = await reader.next()) {
        assert.ok(chunk.length <= CHUNK_BYTES);
        hash.update(chunk);
        chunks++;
        reader.release(chunk);
      }
      assert.equal(chunks, Math.ceil((end - start) / CHUNK_BYTES));
      assert.deepEqual(hash.digest(), createHash('sha256').update(whole.subarray(start, end)).digest());
    } finally {
      await handle.close();
    }
  });

  test('stops where a file shorter than the range ends', async () => {
    const file = path.join(dir, 'short.bin');
    writeFileSync(file, Buffer.alloc(CHUNK_BYTES + 10, 1));
    const handle = await open(file, 'r');
    try {
      const reader = new FileReader(handle, 0, 3 * CHUNK_BYTES);
      let read = 0;
      for (let chunk = await reader.next(); chunk !== undefined; chunk = await reader.next()) {
        read += chunk.length;
        reader.release(chunk);
      }
      assert.equal(read, CHUNK_BYTES + 10);
    } finally {
      await handle.close();
    }
  });

  test('waits for a released buffer once the consumer holds them all, and reuses it', async () => {
    const file = path.join(dir, 'held.bin');
    await randomFile(file, 3 * CHUNK_BYTES);
    const handle = await open(file, 'r');
    try {
      const reader = new FileReader(handle, 0, 3 * CHUNK_BYTES, 2);
      const first = (await reader.next())!;
      const second = (await reader.next())!;
      let third: Buffer | undefined;
      const waiting = reader.next().then((chunk) => (third = chunk));
      // Both buffers are out: no read can start, however long we wait.
      for (let i = 0; i < 20; i++) await turn();
      assert.equal(third, undefined);
      assert.notEqual(first.buffer, second.buffer);
      reader.release(first);
      await waiting;
      assert.equal(third!.buffer, first.buffer);
      assert.deepEqual(third, readFileSync(file).subarray(2 * CHUNK_BYTES));
      assert.equal(await reader.next(), undefined);
    } finally {
      await handle.close();
    }
  });
});

describe('ordered writer', () => {
  test('counts what it no longer refers to: written bytes, or everything after a failure', async () => {
    const file = path.join(dir, 'written.bin');
    const handle = await open(file, 'w+');
    try {
      const writer = new OrderedWriter(handle, 0, Promise.resolve(), () => {}, () => {});
      writer.write(Buffer.alloc(1000, 1));
      writer.write(Buffer.alloc(24, 2));
      assert.equal(writer.accepted, 1024);
      await writer.flushed();
      assert.equal(writer.released, 1024);
    } finally {
      await handle.close();
    }
    const readOnly = await open(file, 'r');
    try {
      let failure: unknown;
      const writer = new OrderedWriter(readOnly, 0, Promise.resolve(), () => {}, (err) => (failure = err));
      writer.write(Buffer.alloc(10));
      await assert.rejects(writer.flushed());
      assert.ok(failure);
      writer.write(Buffer.alloc(5));
      assert.equal(writer.released, writer.accepted);
      assert.equal(writer.accepted, 15);
    } finally {
      await readOnly.close();
    }
  });
});
