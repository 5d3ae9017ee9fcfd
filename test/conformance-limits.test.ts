// Autobahn categories 9 (large messages, reduced to at most 1 MiB so the file stays fast) and 10
// (fragmentation and limits: a message over maxPayload fails with 1009), plus the framing cases
// Autobahn's client cannot produce: unmasked frames, bogus 64-bit lengths, one byte per TCP write,
// and many frames in a single TCP write.
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { Op, chunks, encodeFrame, type FrameSpec, type Message, type RawClient } from './support/rawclient.js';
import {
  assertMessage,
  binary,
  closeNormally,
  conformanceCase,
  expectEcho,
  expectFailure,
  expectPong,
  text,
  useEchoServer,
} from './support/conformance-case.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const LARGE_WAIT_MS = 10_000;

/** Valid UTF-8 of exactly `size` bytes, with multi-byte characters that frame and chunk cuts will split. */
function textPayload(size: number): Buffer {
  const unit = Buffer.from('κόσμε-€-😀-', 'utf8');
  const out = Buffer.alloc(size, '*');
  for (let at = 0; at + unit.length <= size; at += unit.length) unit.copy(out, at);
  return out;
}

function binaryPayload(size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + (i >> 8)) & 0xff;
  return out;
}

const kinds = [
  { name: 'text', opcode: Op.Text, payload: textPayload, message: (b: Buffer): Message => text(b) },
  { name: 'binary', opcode: Op.Binary, payload: binaryPayload, message: binary },
] as const;

function fragmented(opcode: number, payload: Buffer, frameSize: number): FrameSpec[] {
  const pieces = chunks(payload, frameSize);
  return pieces.map((piece, i) => ({
    opcode: i === 0 ? opcode : Op.Continuation,
    payload: piece,
    fin: i === pieces.length - 1,
  }));
}

function label(size: number): string {
  return size >= MiB ? `${size / MiB} MiB` : size >= KiB ? `${size / KiB} KiB` : `${size} B`;
}

describe('9 large messages (reduced)', () => {
  const server = useEchoServer();
  kinds.forEach((kind, k) => {
    [64 * KiB, 256 * KiB, MiB].forEach((size, i) => {
      conformanceCase(server, `9.${1 + k}.${i + 1} ${kind.name} message of ${label(size)} in one frame`, async (c) => {
        const payload = kind.payload(size);
        await c.send({ opcode: kind.opcode, payload });
        await expectEcho(c, kind.message(payload), LARGE_WAIT_MS);
        await closeNormally(c);
      });
    });
    [
      [256 * KiB, 64],
      [MiB, 4 * KiB],
      [MiB, 64 * KiB],
    ].forEach(([size, frameSize], i) => {
      const name = `9.${3 + k}.${i + 1} ${kind.name} message of ${label(size!)} in frames of ${label(frameSize!)}`;
      conformanceCase(server, name, async (c) => {
        const payload = kind.payload(size!);
        await c.sendAll(fragmented(kind.opcode, payload, frameSize!));
        await expectEcho(c, kind.message(payload), LARGE_WAIT_MS);
        await closeNormally(c);
      });
    });
    [
      [256 * KiB, 64],
      [MiB, 4 * KiB],
    ].forEach(([size, chunkSize], i) => {
      const name = `9.${5 + k}.${i + 1} ${kind.name} message of ${label(size!)} in writes of ${label(chunkSize!)}`;
      conformanceCase(server, name, async (c) => {
        const payload = kind.payload(size!);
        await c.sendChunked({ opcode: kind.opcode, payload }, chunkSize!);
        await expectEcho(c, kind.message(payload), LARGE_WAIT_MS);
        await closeNormally(c);
      });
    });
    [
      [200, 16],
      [100, 4 * KiB],
    ].forEach(([count, size], i) => {
      conformanceCase(server, `9.${7 + k}.${i + 1} ${count} ${kind.name} round trips of ${label(size!)}`, async (c) => {
        for (let n = 0; n < count!; n++) {
          const payload = Buffer.concat([Buffer.from(String(n % 10)), kind.payload(size! - 1)]);
          await c.send({ opcode: kind.opcode, payload });
          await expectEcho(c, kind.message(payload));
        }
        await closeNormally(c);
      });
    });
  });
});

describe('10.1 fragmented echo', () => {
  const server = useEchoServer();
  conformanceCase(server, '10.1.1 text message of 64 KiB in frames of 1300 bytes', async (c) => {
    const payload = textPayload(64 * KiB);
    await c.sendAll(fragmented(Op.Text, payload, 1300));
    await expectEcho(c, text(payload));
    await closeNormally(c);
  });
});

describe('10.2 maxPayload (64 KiB server)', () => {
  const limit = 64 * KiB;
  const server = useEchoServer({ maxPayload: limit });
  conformanceCase(server, '10.2.1 text message of exactly maxPayload is echoed', async (c) => {
    const payload = textPayload(limit);
    await c.send({ opcode: Op.Text, payload });
    await expectEcho(c, text(payload));
    await closeNormally(c);
  });
  conformanceCase(server, '10.2.2 binary frame of maxPayload + 1 bytes', async (c) => {
    await c.send({ opcode: Op.Binary, payload: binaryPayload(limit + 1) });
    await expectFailure(c, 1009);
  });
  conformanceCase(server, '10.2.3 text message over maxPayload in 2 frames, each under it', async (c) => {
    await c.sendAll(fragmented(Op.Text, textPayload(limit + 1), 48 * KiB));
    await expectFailure(c, 1009);
  });
  conformanceCase(server, '10.2.4 binary message over maxPayload in 1 KiB frames', async (c) => {
    await c.sendAll(fragmented(Op.Binary, binaryPayload(limit + KiB), KiB));
    await expectFailure(c, 1009);
  });
  conformanceCase(server, '10.2.5 header declaring 4 GiB fails before any payload is sent', async (c) => {
    await c.write(encodeFrame({ opcode: Op.Binary, length: 2 ** 32 }));
    await expectFailure(c, 1009);
  });
});

async function collect(c: RawClient, messages: number, pongs: number): Promise<{ got: Message[]; pongs: Buffer[] }> {
  const got: Message[] = [];
  const pongPayloads: Buffer[] = [];
  let partial: Message | null = null;
  while (got.length < messages || pongPayloads.length < pongs) {
    const frame = await c.nextFrame();
    if (frame.opcode === Op.Pong) {
      pongPayloads.push(frame.payload);
      continue;
    }
    assert.ok(frame.opcode < 0x8, `unexpected ${frame.opcode}; ${c.summary()}`);
    partial = partial
      ? { opcode: partial.opcode, data: Buffer.concat([partial.data, frame.payload]) }
      : { opcode: frame.opcode, data: frame.payload };
    if (frame.fin) {
      got.push(partial);
      partial = null;
    }
  }
  return { got, pongs: pongPayloads };
}

describe('framing beyond Autobahn', () => {
  const server = useEchoServer();
  conformanceCase(server, 'X.1 unmasked client frame', async (c) => {
    await c.send({ opcode: Op.Text, payload: 'Hello, world!', mask: false });
    await expectFailure(c, 1002);
  });
  conformanceCase(server, 'X.2 64-bit length with the most significant bit set', async (c) => {
    await c.write(encodeFrame({ opcode: Op.Binary, length: 2n ** 63n + 5n }));
    // Both readings are fair: the length is malformed (1002) and is beyond any maxPayload (1009).
    await expectFailure(c, [1002, 1009]);
  });

  const sequence: FrameSpec[] = [
    { opcode: Op.Text, payload: 'Hello-µ@ßöäüàá-UTF-8!! 😀' },
    { opcode: Op.Binary, payload: binaryPayload(300) },
    { opcode: Op.Ping, payload: 'byte by byte' },
    { opcode: Op.Text, payload: 'κό', fin: false },
    { opcode: Op.Continuation, payload: Buffer.from('σμε', 'utf8').subarray(0, 3), fin: false },
    { opcode: Op.Continuation, payload: Buffer.from('σμε', 'utf8').subarray(3), fin: true },
  ];
  conformanceCase(server, 'X.3 every byte of several messages in its own TCP write', async (c) => {
    for (const frame of sequence) await c.sendChunked(frame, 1);
    await expectEcho(c, text('Hello-µ@ßöäüàá-UTF-8!! 😀'));
    await expectEcho(c, binary(binaryPayload(300)));
    await expectPong(c, 'byte by byte');
    await expectEcho(c, text('κόσμε'));
    await c.writeChunked(encodeFrame({ opcode: Op.Close, payload: Buffer.from([0x03, 0xe8]) }), 1);
    const reply = await c.nextFrame();
    assert.equal(reply.opcode, Op.Close);
    assert.equal(c.closeReceived?.code, 1000);
    await c.waitForServerTcpClose();
  });
  conformanceCase(server, 'X.4 64-bit length header written one byte at a time', async (c) => {
    const payload = binaryPayload(70_000);
    const frame = encodeFrame({ opcode: Op.Binary, payload });
    const headerLength = frame.length - payload.length;
    await c.writeChunked(frame.subarray(0, headerLength), 1);
    await c.write(frame.subarray(headerLength));
    await expectEcho(c, binary(payload));
    await closeNormally(c);
  });
  conformanceCase(server, 'X.5 300 frames coalesced in one TCP write', async (c) => {
    // Sizes around every length-encoding boundary, text and binary alternating, a ping every tenth.
    const sizes = [0, 1, 125, 126, 127, 65535, 65536];
    const frames: FrameSpec[] = [];
    const expected: Message[] = [];
    const pings: string[] = [];
    for (let i = 0; i < 270; i++) {
      const kind = kinds[i % 2]!;
      const payload = kind.payload(sizes[i % sizes.length]! + (i % 3));
      frames.push({ opcode: kind.opcode, payload });
      expected.push(kind.message(payload));
      if (i % 9 === 8) {
        pings.push(`ping ${pings.length}`);
        frames.push({ opcode: Op.Ping, payload: pings.at(-1) });
      }
    }
    await c.sendAll(frames);
    const { got, pongs } = await collect(c, expected.length, pings.length);
    got.forEach((m, i) => assertMessage(m, expected[i]!, `message ${i}`));
    assert.deepEqual(pongs.map(String), pings);
    await closeNormally(c);
  });
});
