// A cross-section of the conformance cases against the `duplex echo` command itself, so the CLI's
// wiring (its echo handler, its socket options) is held to the protocol too. The full suites run
// against it with DUPLEX_CONFORMANCE_SERVER=cli.
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { Op, closePayload, encodeFrame } from './support/rawclient.js';
import { startCliEchoServer } from './support/echo-servers.js';
import {
  binary,
  closeNormally,
  conformanceCase,
  expectEcho,
  expectFailure,
  expectPong,
  text,
  useEchoServer,
} from './support/conformance-case.js';

describe('duplex echo (CLI) conformance cross-section', () => {
  const server = useEchoServer({}, startCliEchoServer);

  conformanceCase(server, '1.1.3 text message of 126 bytes', async (c) => {
    const payload = Buffer.alloc(126, '*');
    await c.send({ opcode: Op.Text, payload });
    await expectEcho(c, text(payload));
    await closeNormally(c);
  });
  conformanceCase(server, '1.2.8 binary message of 65536 bytes in chunks of 997 bytes', async (c) => {
    const payload = Buffer.alloc(65536, 0xfe);
    await c.sendChunked({ opcode: Op.Binary, payload }, 997);
    await expectEcho(c, binary(payload));
    await closeNormally(c);
  });
  conformanceCase(server, '2.4 ping with a 125-byte payload', async (c) => {
    const payload = Buffer.alloc(125, 0xfe);
    await c.send({ opcode: Op.Ping, payload });
    await expectPong(c, payload);
    await closeNormally(c);
  });
  conformanceCase(server, '3.1 text frame with RSV = 1', async (c) => {
    await c.send({ opcode: Op.Text, payload: 'Hello, world!', rsv: 1 });
    await expectFailure(c, 1002);
  });
  conformanceCase(server, '5.6 text in 2 fragments with a ping between', async (c) => {
    await c.sendAll([
      { opcode: Op.Text, payload: 'fragment1', fin: false },
      { opcode: Op.Ping, payload: 'ping payload' },
      { opcode: Op.Continuation, payload: 'fragment2', fin: true },
    ]);
    await expectPong(c, 'ping payload');
    await expectEcho(c, text('fragment1fragment2'));
    await closeNormally(c);
  });
  conformanceCase(server, '6.4.3 invalid UTF-8 fails before the rest of the frame is sent', async (c) => {
    const parts = [Buffer.from('κόσμε'), Buffer.from('f4908080', 'hex'), Buffer.from('edited')];
    const payload = Buffer.concat(parts);
    const frame = encodeFrame({ opcode: Op.Text, payload });
    const cut = frame.length - payload.length + parts[0]!.length + parts[1]!.length;
    await c.write(frame.subarray(0, cut));
    const reply = await c.nextFrame();
    assert.equal(reply.opcode, Op.Close, c.summary());
    assert.equal(c.closeReceived?.code, 1007);
    await c.write(frame.subarray(cut));
    await c.waitForServerTcpClose();
  });
  conformanceCase(server, '7.9.3 close with code 1004', async (c) => {
    await c.send({ opcode: Op.Close, payload: closePayload(1004) });
    await expectFailure(c, 1002);
  });
  conformanceCase(server, '9.1.3 text message of about 1 MiB', async (c) => {
    const payload = Buffer.from('κόσμε'.repeat(105_000));
    await c.send({ opcode: Op.Text, payload });
    await expectEcho(c, text(payload), 10_000);
    await closeNormally(c);
  });
});
