// Autobahn category 6: UTF-8 handling of text messages. Valid text must come back byte-exact as
// text, however it is fragmented; invalid text must fail the connection with 1007, and as soon as
// the bytes seen so far cannot be the start of valid UTF-8, not when the message completes.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Op, encodeFrame, type FrameSpec, type RawClient } from './support/rawclient.js';
import {
  closeNormally,
  conformanceCase,
  expectEcho,
  expectFailure,
  text,
  useEchoServer,
} from './support/conformance-case.js';
import { UTF8_VECTORS } from './support/conformance-utf8-vectors.js';

const server = useEchoServer();

/** An empty opening frame, one continuation per byte, then an empty final frame: every boundary is a frame boundary. */
function perOctet(bytes: Buffer): FrameSpec[] {
  return [
    { opcode: Op.Text, payload: '', fin: false },
    ...[...bytes].map((b) => ({ opcode: Op.Continuation, payload: Buffer.from([b]), fin: false })),
    { opcode: Op.Continuation, payload: '', fin: true },
  ];
}

async function expectOutcome(c: RawClient, payload: Buffer, valid: boolean): Promise<void> {
  if (!valid) return expectFailure(c, 1007);
  await expectEcho(c, text(payload));
  await closeNormally(c);
}

describe('6.1–6.3 text payloads, whole and fragmented', () => {
  conformanceCase(server, '6.1.1 empty text message', async (c) => {
    await c.send({ opcode: Op.Text });
    await expectOutcome(c, Buffer.alloc(0), true);
  });
  conformanceCase(server, '6.1.2 text message of 3 empty fragments', async (c) => {
    await c.sendAll([
      { opcode: Op.Text, fin: false },
      { opcode: Op.Continuation, fin: false },
      { opcode: Op.Continuation, fin: true },
    ]);
    await expectOutcome(c, Buffer.alloc(0), true);
  });
  conformanceCase(server, '6.1.3 empty first and last fragments around a non-empty one', async (c) => {
    await c.sendAll([
      { opcode: Op.Text, fin: false },
      { opcode: Op.Continuation, payload: 'middle frame payload', fin: false },
      { opcode: Op.Continuation, fin: true },
    ]);
    await expectOutcome(c, Buffer.from('middle frame payload'), true);
  });

  const hello = Buffer.from('Hello-µ@ßöäüàá-UTF-8!!', 'utf8');
  conformanceCase(server, '6.2.1 valid UTF-8 in one frame', async (c) => {
    await c.send({ opcode: Op.Text, payload: hello });
    await expectOutcome(c, hello, true);
  });
  conformanceCase(server, '6.2.2 valid UTF-8 in 2 frames split on a character boundary', async (c) => {
    const cut = Buffer.from('Hello-µ@ßöä', 'utf8').length;
    await c.sendAll([
      { opcode: Op.Text, payload: hello.subarray(0, cut), fin: false },
      { opcode: Op.Continuation, payload: hello.subarray(cut), fin: true },
    ]);
    await expectOutcome(c, hello, true);
  });
  conformanceCase(server, '6.2.3 valid UTF-8 with one octet per frame', async (c) => {
    await c.sendAll(perOctet(hello));
    await expectOutcome(c, hello, true);
  });
  conformanceCase(server, '6.2.4 "κόσμε" with one octet per frame', async (c) => {
    const kosme = Buffer.from('κόσμε', 'utf8');
    await c.sendAll(perOctet(kosme));
    await expectOutcome(c, kosme, true);
  });

  const surrogate = Buffer.concat([Buffer.from('κόσμε'), Buffer.from('eda080', 'hex'), Buffer.from('edited')]);
  conformanceCase(server, '6.3.1 invalid UTF-8 (a surrogate) in one frame', async (c) => {
    await c.send({ opcode: Op.Text, payload: surrogate });
    await expectOutcome(c, surrogate, false);
  });
  conformanceCase(server, '6.3.2 invalid UTF-8 (a surrogate) with one octet per frame', async (c) => {
    await c.sendAll(perOctet(surrogate));
    await expectOutcome(c, surrogate, false);
  });
});

describe('6.4 fail fast on invalid UTF-8', () => {
  const kosme = Buffer.from('κόσμε', 'utf8');
  const edited = Buffer.from('edited');
  // [first part, the part that makes it invalid, the rest]; U+110000 is past the last code point.
  const whole: Buffer[] = [kosme, Buffer.from('f4908080', 'hex'), edited];
  const split: Buffer[] = [
    Buffer.concat([kosme, Buffer.from([0xf4])]),
    Buffer.from([0x90]),
    Buffer.concat([Buffer.from([0x80, 0x80]), edited]),
  ];

  /** The close must arrive before the rest is sent; sending the rest afterwards must change nothing. */
  async function failsBeforeRest(c: RawClient, sendRest: () => Promise<void>): Promise<void> {
    const frame = await c.nextFrame();
    assert.equal(frame.opcode, Op.Close, `expected close 1007 before the rest was sent; ${c.summary()}`);
    assert.equal(c.closeReceived?.code, 1007, `close code; ${c.summary()}`);
    await sendRest();
    await c.waitForServerTcpClose();
  }

  for (const [id, parts, how] of [
    ['6.4.1', whole, 'the invalid code point'],
    ['6.4.2', split, 'the byte that makes the sequence invalid'],
  ] as const) {
    conformanceCase(server, `${id} 3 fragments; the 2nd holds ${how}; the 3rd is held back`, async (c) => {
      await c.send({ opcode: Op.Text, payload: parts[0], fin: false });
      await c.send({ opcode: Op.Continuation, payload: parts[1], fin: false });
      await failsBeforeRest(c, () => c.send({ opcode: Op.Continuation, payload: parts[2], fin: true }));
    });
  }
  for (const [id, parts, how] of [
    ['6.4.3', whole, 'the invalid code point'],
    ['6.4.4', split, 'the byte that makes the sequence invalid'],
  ] as const) {
    const name = `${id} one frame written in 3 chunks; the 2nd holds ${how}; the 3rd is held back`;
    conformanceCase(server, name, async (c) => {
      const payload = Buffer.concat(parts);
      const frame = encodeFrame({ opcode: Op.Text, payload });
      const headerLength = frame.length - payload.length;
      const cut1 = headerLength + parts[0].length;
      const cut2 = cut1 + parts[1].length;
      await c.write(frame.subarray(0, cut1));
      await c.write(frame.subarray(cut1, cut2));
      await failsBeforeRest(c, () => c.write(frame.subarray(cut2)));
    });
  }
});

describe('6.5–6.23 UTF-8 test vectors', () => {
  test('the vectors agree with a strict decoder', () => {
    const decoder = new TextDecoder('utf-8', { fatal: true });
    for (const v of UTF8_VECTORS) {
      let valid = true;
      try {
        decoder.decode(v.bytes);
      } catch {
        valid = false;
      }
      assert.equal(valid, v.valid, `${v.id} ${v.description}`);
    }
  });

  for (const v of UTF8_VECTORS) {
    const verdict = v.valid ? 'valid' : 'invalid';
    conformanceCase(server, `${v.id} ${v.description} (${verdict}, one frame)`, async (c) => {
      await c.send({ opcode: Op.Text, payload: v.bytes });
      await expectOutcome(c, v.bytes, v.valid);
    });
    conformanceCase(server, `${v.id} ${v.description} (${verdict}, one octet per frame)`, async (c) => {
      await c.sendAll(perOctet(v.bytes));
      await expectOutcome(c, v.bytes, v.valid);
    });
  }
});
