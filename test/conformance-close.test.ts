// Autobahn category 7: the closing handshake. After a close the server sends nothing but its own
// close and then closes TCP; close payloads are checked (length, code, UTF-8 reason).
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { Op, closePayload } from './support/rawclient.js';
import {
  assertMessage,
  closeNormally,
  conformanceCase,
  expectCloseReply,
  expectEcho,
  expectFailure,
  text,
  useEchoServer,
} from './support/conformance-case.js';

const server = useEchoServer();
const close1000 = { opcode: Op.Close, payload: closePayload(1000) };

describe('7.1 basic close behaviour', () => {
  conformanceCase(server, '7.1.1 echo a message, then close normally', async (c) => {
    await c.send({ opcode: Op.Text, payload: 'Hello World!' });
    await expectEcho(c, text('Hello World!'));
    await closeNormally(c);
  });
  conformanceCase(server, '7.1.2 two close frames: one reply, then TCP closed', async (c) => {
    await c.sendAll([close1000, close1000]);
    await expectCloseReply(c);
  });
  conformanceCase(server, '7.1.3 close, then ping: the ping is ignored', async (c) => {
    await c.sendAll([close1000, { opcode: Op.Ping, payload: 'Hello World!' }]);
    await expectCloseReply(c);
  });
  conformanceCase(server, '7.1.4 close, then text: the text is not echoed', async (c) => {
    await c.sendAll([close1000, { opcode: Op.Text, payload: 'Hello World!' }]);
    await expectCloseReply(c);
  });
  conformanceCase(server, '7.1.5 text fragment, close, final fragment: nothing echoed', async (c) => {
    await c.sendAll([
      { opcode: Op.Text, payload: 'fragment1', fin: false },
      close1000,
      { opcode: Op.Continuation, payload: 'fragment2', fin: true },
    ]);
    await expectCloseReply(c);
  });
  conformanceCase(server, '7.1.6 256 KiB message, close and ping back to back', async (c) => {
    // Whether the echo is written before the close reply is the implementation's choice (as in
    // Autobahn); if it is, it must be complete, and the ping after the close must stay unanswered.
    const payload = Buffer.alloc(256 * 1024, 'BAsd7&jh23');
    await c.sendAll([{ opcode: Op.Text, payload }, close1000, { opcode: Op.Ping, payload: 'Hello World!' }]);
    const { close, before } = await c.nextClose();
    if (before.length > 0) {
      assert.ok(before.at(-1)!.fin, `an echo cut short by the close; ${c.summary()}`);
      assertMessage({ opcode: before[0]!.opcode, data: Buffer.concat(before.map((f) => f.payload)) }, text(payload));
    }
    assert.equal(close.code, 1000);
    await c.waitForServerTcpClose();
  });
});

describe('7.3 close frame payloads', () => {
  conformanceCase(server, '7.3.1 close with an empty payload', async (c) => {
    await c.send({ opcode: Op.Close });
    await expectCloseReply(c, [null, 1000]);
  });
  conformanceCase(server, '7.3.2 close with a 1-byte payload', async (c) => {
    await c.send({ opcode: Op.Close, payload: Buffer.from([0x03]) });
    await expectFailure(c, 1002);
  });
  conformanceCase(server, '7.3.3 close 1000 without reason', async (c) => {
    await closeNormally(c);
  });
  conformanceCase(server, '7.3.4 close 1000 with a reason', async (c) => {
    await closeNormally(c, 1000, 'Hello World!');
  });
  conformanceCase(server, '7.3.5 close 1000 with a 123-byte reason (the maximum)', async (c) => {
    await closeNormally(c, 1000, '*'.repeat(123));
  });
  conformanceCase(server, '7.3.6 close 1000 with a 124-byte reason (control frame too long)', async (c) => {
    await c.send({ opcode: Op.Close, payload: closePayload(1000, '*'.repeat(124)) });
    await expectFailure(c, 1002);
  });
});

describe('7.5 close reason UTF-8', () => {
  conformanceCase(server, '7.5.1 close 1000 with an invalid UTF-8 reason', async (c) => {
    const reason = Buffer.concat([Buffer.from('κόσμε'), Buffer.from('eda080', 'hex'), Buffer.from('edited')]);
    await c.send({ opcode: Op.Close, payload: closePayload(1000, reason) });
    await expectFailure(c, 1007);
  });
  conformanceCase(server, '7.5.2 close 1000 with a reason cut inside a character', async (c) => {
    const reason = Buffer.from('κόσμε').subarray(0, 3);
    await c.send({ opcode: Op.Close, payload: closePayload(1000, reason) });
    await expectFailure(c, 1007);
  });
});

describe('7.7 valid close codes are answered normally or echoed', () => {
  const valid = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999];
  valid.forEach((code, i) => {
    conformanceCase(server, `7.7.${i + 1} close with code ${code}`, async (c) => {
      await closeNormally(c, code, '', [1000, code]);
    });
  });
});

describe('7.9 invalid close codes fail the connection', () => {
  const invalid = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535];
  invalid.forEach((code, i) => {
    conformanceCase(server, `7.9.${i + 1} close with code ${code}`, async (c) => {
      await c.send({ opcode: Op.Close, payload: closePayload(code) });
      await expectFailure(c, 1002);
    });
  });
});
