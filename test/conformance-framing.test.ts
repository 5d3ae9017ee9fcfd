// Autobahn categories 1 (framing: payload lengths at every length-encoding boundary) and
// 2 (pings and pongs), against the duplex echo server.
import { describe } from 'node:test';
import { Op } from './support/rawclient.js';
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

const server = useEchoServer();
const LENGTHS = [0, 125, 126, 127, 128, 65535, 65536];

describe('1.1 text messages', () => {
  LENGTHS.forEach((length, i) => {
    conformanceCase(server, `1.1.${i + 1} text message of ${length} bytes`, async (c) => {
      const payload = Buffer.alloc(length, '*');
      await c.send({ opcode: Op.Text, payload });
      await expectEcho(c, text(payload));
      await closeNormally(c);
    });
  });
  conformanceCase(server, '1.1.8 text message of 65536 bytes written in chunks of 997 bytes', async (c) => {
    const payload = Buffer.alloc(65536, '*');
    await c.sendChunked({ opcode: Op.Text, payload }, 997);
    await expectEcho(c, text(payload));
    await closeNormally(c);
  });
});

describe('1.2 binary messages', () => {
  LENGTHS.forEach((length, i) => {
    conformanceCase(server, `1.2.${i + 1} binary message of ${length} bytes`, async (c) => {
      const payload = Buffer.alloc(length, 0xfe);
      await c.send({ opcode: Op.Binary, payload });
      await expectEcho(c, binary(payload));
      await closeNormally(c);
    });
  });
  conformanceCase(server, '1.2.8 binary message of 65536 bytes written in chunks of 997 bytes', async (c) => {
    const payload = Buffer.alloc(65536, 0xfe);
    await c.sendChunked({ opcode: Op.Binary, payload }, 997);
    await expectEcho(c, binary(payload));
    await closeNormally(c);
  });
});

describe('2 pings and pongs', () => {
  const smallBinary = Buffer.from([0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff]);

  conformanceCase(server, '2.1 ping without payload is answered by an empty pong', async (c) => {
    await c.send({ opcode: Op.Ping });
    await expectPong(c, '');
    await closeNormally(c);
  });
  conformanceCase(server, '2.2 ping with a small text payload', async (c) => {
    await c.send({ opcode: Op.Ping, payload: 'Hello, world!' });
    await expectPong(c, 'Hello, world!');
    await closeNormally(c);
  });
  conformanceCase(server, '2.3 ping with a small binary payload', async (c) => {
    await c.send({ opcode: Op.Ping, payload: smallBinary });
    await expectPong(c, smallBinary);
    await closeNormally(c);
  });
  conformanceCase(server, '2.4 ping with a 125-byte payload', async (c) => {
    const payload = Buffer.alloc(125, 0xfe);
    await c.send({ opcode: Op.Ping, payload });
    await expectPong(c, payload);
    await closeNormally(c);
  });
  conformanceCase(server, '2.5 ping with a 126-byte payload fails the connection', async (c) => {
    await c.send({ opcode: Op.Ping, payload: Buffer.alloc(126, 0xfe) });
    await expectFailure(c, 1002);
  });
  conformanceCase(server, '2.6 ping with a 125-byte payload written one byte at a time', async (c) => {
    const payload = Buffer.alloc(125, 0xfe);
    await c.sendChunked({ opcode: Op.Ping, payload }, 1);
    await expectPong(c, payload);
    await closeNormally(c);
  });
  conformanceCase(server, '2.7 unsolicited pong without payload is ignored', async (c) => {
    await c.send({ opcode: Op.Pong });
    await closeNormally(c);
  });
  conformanceCase(server, '2.8 unsolicited pong with payload is ignored', async (c) => {
    await c.send({ opcode: Op.Pong, payload: 'unsolicited pong payload' });
    await closeNormally(c);
  });
  conformanceCase(server, '2.9 unsolicited pong, then ping: only the ping is answered', async (c) => {
    await c.send({ opcode: Op.Pong, payload: 'unsolicited pong payload' });
    await c.send({ opcode: Op.Ping, payload: 'ping payload' });
    await expectPong(c, 'ping payload');
    await closeNormally(c);
  });
  const tenPings = Array.from({ length: 10 }, (_, i) => ({ opcode: Op.Ping, payload: `payload-${i}` }));
  conformanceCase(server, '2.10 ten pings in a row get ten pongs in order', async (c) => {
    await c.sendAll(tenPings);
    for (const ping of tenPings) await expectPong(c, ping.payload);
    await closeNormally(c);
  });
  conformanceCase(server, '2.11 ten pings written one byte at a time get ten pongs in order', async (c) => {
    for (const ping of tenPings) await c.sendChunked(ping, 1);
    for (const ping of tenPings) await expectPong(c, ping.payload);
    await closeNormally(c);
  });
});
