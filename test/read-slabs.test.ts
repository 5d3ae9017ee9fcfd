// Socket reads into reused slabs: no room handed out overlaps bytes still held, memory stays at a
// few slabs, a server connection switched to slabs delivers every byte, and the file protocol's
// parser copes with input whose memory is reused after each push.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { encodeHeader, encodeStart, encodeTrailer, SenderStreamParser } from '../src/sockets/file-protocol.js';
import { READ_BYTES, ReadSlabs, readIntoSlabs, SLAB_BYTES } from '../src/sockets/read-slabs.js';
import { bounded } from './support/cli.js';

const WAIT_MS = 10_000;

/** A small deterministic generator (xorshift32), so that every run reads the same sizes. */
function sizes(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/** Reads into the current slab up to its end; returns the slab that the next read goes to. */
function fillSlab(slabs: ReadSlabs): ArrayBufferLike {
  for (let filled = 0; filled <= SLAB_BYTES; ) {
    const room = slabs.next();
    // A room at offset 0 after some filling: the slab was replaced, possibly by itself.
    if (room.byteOffset === 0 && filled > 0) return room.buffer;
    slabs.filled(room.length);
    filled += room.length;
  }
  throw new Error('the slab never filled up');
}

interface Held {
  buffer: ArrayBufferLike;
  start: number;
  end: number;
  /** Free once `released` reaches this. */
  until: number;
}

describe('read slabs', () => {
  test('no room overlaps held bytes, and a consumer that keeps up needs few slabs', () => {
    // A writer that takes what is read and writes it with a lag of up to 6 MiB, like the receiver's.
    const random = sizes(7);
    let accepted = 0;
    let released = 0;
    const slabs = new ReadSlabs(() => released);
    const held: Held[] = [];
    for (let read = 0; read < 5000; read++) {
      const room = slabs.next();
      assert.ok(room.length > 0 && room.length <= READ_BYTES);
      for (const h of held) {
        if (h.until <= released || h.buffer !== room.buffer) continue;
        const overlaps = room.byteOffset < h.end && h.start < room.byteOffset + room.length;
        assert.ok(!overlaps, `read ${read} was handed bytes still held`);
      }
      // Short reads most of the time, sometimes a full one; some reads are protocol bytes, not held.
      const bytes = random() < 0.2 ? room.length : Math.max(1, Math.floor(random() * room.length * 0.3));
      slabs.filled(bytes);
      if (random() < 0.9) {
        accepted += bytes;
        slabs.hold(accepted);
        held.push({ buffer: room.buffer, start: room.byteOffset, end: room.byteOffset + bytes, until: accepted });
      }
      released = Math.max(released, accepted - Math.floor(random() * (6 << 20)));
      while (held.length > 0 && held[0]!.until <= released) held.shift();
    }
    // Under 6 MiB are held at any time, within two slabs at most, plus the one being filled.
    assert.ok(slabs.count <= 3, `${slabs.count} slabs of ${SLAB_BYTES} bytes`);
  });

  test('a held slab waits for its release, one nobody holds is used again at once', () => {
    let released = 0;
    const slabs = new ReadSlabs(() => released);
    const first = slabs.next().buffer;
    slabs.filled(1000);
    slabs.hold(100);
    const second = fillSlab(slabs);
    assert.notEqual(second, first);
    assert.equal(fillSlab(slabs), second);
    released = 100;
    assert.equal(fillSlab(slabs), first);
    assert.equal(slabs.count, 2);
  });

  test("a server's connection read into slabs gets every byte, pauses, and closes", async () => {
    const total = 24 << 20;
    const expected = createHash('sha256');
    const received = createHash('sha256');
    let bytesIn = 0;
    let paused = false;
    let socket: net.Socket | undefined;
    const closed = new Promise<void>((resolve) => {
      const server = net.createServer({ pauseOnConnect: true }, (accepted) => {
        let released = 0;
        const slabs = new ReadSlabs(() => released);
        socket = readIntoSlabs(accepted, slabs, (bytes) => {
          received.update(bytes);
          bytesIn += bytes.length;
          // Held until the next turn of the event loop, as a disk write would hold them.
          const until = bytesIn;
          slabs.hold(until);
          setImmediate(() => (released = Math.max(released, until)));
          if (!paused && bytesIn > total / 2) {
            paused = true;
            socket!.pause();
            setTimeout(() => socket!.resume(), 50);
          }
        });
        socket.on('end', () => {
          socket!.end();
          server.close(() => resolve());
        });
      });
      server.listen(0, '127.0.0.1', async () => {
        const client = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
        await once(client, 'connect');
        const random = sizes(11);
        for (let sent = 0; sent < total; ) {
          const chunk = Buffer.alloc(Math.min(total - sent, 1 + Math.floor(random() * (3 << 20))), sent & 0xff);
          chunk.writeUInt32BE(sent >>> 0, 0);
          expected.update(chunk);
          sent += chunk.length;
          if (!client.write(chunk)) await once(client, 'drain');
        }
        client.end();
      });
    });
    // The server's 'close' needs its count of connections back at 0.
    await bounded(closed, WAIT_MS, () => `the server did not close; ${bytesIn} bytes in`);
    assert.equal(bytesIn, total);
    assert.equal(received.digest('hex'), expected.digest('hex'));
  });
});

describe('file protocol on reused memory', () => {
  test('a sender stream parses the same when its input buffer is overwritten after each push', () => {
    const body = Buffer.from(Array.from({ length: 300 }, (_, i) => i & 0xff));
    const sha256 = createHash('sha256').update(body).digest();
    const header = { name: 'name split across reads.bin', size: body.length, overwrite: false };
    const stream = Buffer.concat([encodeHeader(header), encodeStart(0), body, encodeTrailer(sha256)]);
    for (const size of [1, 2, 3, 7, 33]) {
      const events: unknown[] = [];
      const bodyHash = createHash('sha256');
      const parser = new SenderStreamParser({
        header: (h) => events.push({ header: h }),
        start: (offset) => events.push({ start: offset }),
        body: (chunk) => bodyHash.update(chunk),
        trailer: (trailer) => events.push({ trailer }),
      });
      const reused = Buffer.alloc(size);
      for (let at = 0; at < stream.length; at += size) {
        const n = stream.copy(reused, 0, at, at + size);
        parser.push(reused.subarray(0, n));
        reused.fill(0xee);
      }
      assert.deepEqual(events, [{ header }, { start: 0 }, { trailer: sha256 }], `pushes of ${size}`);
      assert.deepEqual(bodyHash.digest(), sha256);
    }
  });
});
