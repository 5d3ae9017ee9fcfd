// Autobahn categories 3 (reserved bits) and 4 (reserved opcodes): with no extension negotiated,
// any of them must fail the connection with 1002, after echoing whatever valid message came first
// and without answering anything sent after the offending frame.
import { describe } from 'node:test';
import { Op, encodeFrame, type FrameSpec, type RawClient } from './support/rawclient.js';
import {
  conformanceCase,
  expectEcho,
  expectFailure,
  sendChopped,
  text,
  useEchoServer,
  type Chop,
} from './support/conformance-case.js';

const server = useEchoServer();

/** Autobahn's 3.2–3.4 and 4.x.3–5: a valid message, the bad frame, then a ping that must stay unanswered. */
async function validThenBad(c: RawClient, bad: FrameSpec, chop: Chop): Promise<void> {
  await sendChopped(c, [{ opcode: Op.Text, payload: 'Hello, world!' }, bad, { opcode: Op.Ping }], chop);
  await expectEcho(c, text('Hello, world!'));
  await expectFailure(c, 1002);
}

describe('3 reserved bits', () => {
  conformanceCase(server, '3.1 text frame with RSV = 1', async (c) => {
    await c.send({ opcode: Op.Text, payload: 'Hello, world!', rsv: 1 });
    await expectFailure(c, 1002);
  });
  conformanceCase(server, '3.2 text, text with RSV = 2, ping', (c) =>
    validThenBad(c, { opcode: Op.Text, payload: 'Hello, world!', rsv: 2 }, 'one write'),
  );
  conformanceCase(server, '3.3 text, text with RSV = 3, ping, frame-wise writes', (c) =>
    validThenBad(c, { opcode: Op.Text, payload: 'Hello, world!', rsv: 3 }, 'frame-wise'),
  );
  conformanceCase(server, '3.4 text, text with RSV = 4, ping, octet-wise writes', (c) =>
    validThenBad(c, { opcode: Op.Text, payload: 'Hello, world!', rsv: 4 }, 'octet-wise'),
  );
  conformanceCase(server, '3.5 binary frame with RSV = 5', async (c) => {
    await c.send({ opcode: Op.Binary, payload: Buffer.from([0x00, 0xff, 0xfe, 0xfd]), rsv: 5 });
    await expectFailure(c, 1002);
  });
  conformanceCase(server, '3.6 ping with RSV = 6', async (c) => {
    await c.send({ opcode: Op.Ping, payload: 'Hello, world!', rsv: 6 });
    await expectFailure(c, 1002);
  });
  conformanceCase(server, '3.7 close with RSV = 7', async (c) => {
    await c.write(encodeFrame({ opcode: Op.Close, payload: Buffer.from([0x03, 0xe8]), rsv: 7 }));
    await expectFailure(c, 1002);
  });
});

for (const [group, opcodes] of [
  ['4.1 reserved non-control opcodes', [3, 4, 5, 6, 7]],
  ['4.2 reserved control opcodes', [11, 12, 13, 14, 15]],
] as const) {
  describe(group, () => {
    const id = group.slice(0, 3);
    conformanceCase(server, `${id}.1 frame with opcode ${opcodes[0]}`, async (c) => {
      await c.send({ opcode: opcodes[0] });
      await expectFailure(c, 1002);
    });
    conformanceCase(server, `${id}.2 frame with opcode ${opcodes[1]} and a payload`, async (c) => {
      await c.send({ opcode: opcodes[1], payload: 'reserved opcode payload' });
      await expectFailure(c, 1002);
    });
    for (const i of [2, 3, 4]) {
      const payload = i === 2 ? undefined : 'reserved opcode payload';
      const chop: Chop = i === 4 ? 'octet-wise' : 'one write';
      conformanceCase(server, `${id}.${i + 1} text, frame with opcode ${opcodes[i]}, ping (${chop})`, (c) =>
        validThenBad(c, { opcode: opcodes[i]!, payload }, chop),
      );
    }
  });
}
