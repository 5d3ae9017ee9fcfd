// Autobahn category 5: fragmentation. Control frames may sit between the fragments of a message
// and must be answered before it completes; control frames may not be fragmented; a continuation
// needs a started message and a started message needs continuations.
import { describe } from 'node:test';
import { Op, type FrameSpec } from './support/rawclient.js';
import {
  closeNormally,
  conformanceCase,
  expectEcho,
  expectFailure,
  expectPong,
  sendChopped,
  text,
  useEchoServer,
} from './support/conformance-case.js';

const server = useEchoServer();

const frag = (opcode: number, payload: string, fin: boolean): FrameSpec => ({ opcode, payload, fin });

describe('5 fragmentation', () => {
  conformanceCase(server, '5.1 ping fragmented into 2 frames', async (c) => {
    await c.sendAll([frag(Op.Ping, 'fragment1', false), frag(Op.Continuation, 'fragment2', true)]);
    await expectFailure(c, 1002);
  });
  conformanceCase(server, '5.2 pong fragmented into 2 frames', async (c) => {
    await c.sendAll([frag(Op.Pong, 'fragment1', false), frag(Op.Continuation, 'fragment2', true)]);
    await expectFailure(c, 1002);
  });

  const twoFragments = [frag(Op.Text, 'fragment1', false), frag(Op.Continuation, 'fragment2', true)];
  (['one write', 'octet-wise', 'frame-wise'] as const).forEach((chop, i) => {
    conformanceCase(server, `5.${3 + i} text message in 2 fragments (${chop})`, async (c) => {
      await sendChopped(c, twoFragments, chop);
      await expectEcho(c, text('fragment1fragment2'));
      await closeNormally(c);
    });
  });

  const withPing = [twoFragments[0]!, { opcode: Op.Ping, payload: 'ping payload' }, twoFragments[1]!];
  (['one write', 'octet-wise', 'frame-wise'] as const).forEach((chop, i) => {
    conformanceCase(server, `5.${6 + i} text message in 2 fragments with a ping between (${chop})`, async (c) => {
      await sendChopped(c, withPing, chop);
      await expectPong(c, 'ping payload');
      await expectEcho(c, text('fragment1fragment2'));
      await closeNormally(c);
    });
  });

  const orphan = (fin: boolean): FrameSpec[] => [
    frag(Op.Continuation, 'non-continuation payload', fin),
    { opcode: Op.Text, payload: 'Hello, world!' },
  ];
  for (const [first, fin] of [
    [9, true],
    [12, false],
  ] as const) {
    (['one write', 'octet-wise', 'frame-wise'] as const).forEach((chop, i) => {
      const name = `5.${first + i} continuation (FIN = ${fin}) with nothing to continue, then text (${chop})`;
      conformanceCase(server, name, async (c) => {
        await sendChopped(c, orphan(fin), chop);
        await expectFailure(c, 1002);
      });
    });
  }

  conformanceCase(server, '5.15 text in 2 fragments, then an orphan continuation (FIN = 0), then text', async (c) => {
    await c.sendAll([...twoFragments, frag(Op.Continuation, 'fragment3', false), frag(Op.Text, 'fragment4', true)]);
    await expectEcho(c, text('fragment1fragment2'));
    await expectFailure(c, 1002);
  });
  for (const [id, fin] of [
    [16, false],
    [17, true],
  ] as const) {
    const name = `5.${id} twice: orphan continuation (FIN = ${fin}), then text in 2 fragments`;
    conformanceCase(server, name, async (c) => {
      const round = [
        frag(Op.Continuation, 'fragment1', fin),
        frag(Op.Text, 'fragment2', false),
        frag(Op.Continuation, 'fragment3', true),
      ];
      await c.sendAll([...round, ...round]);
      await expectFailure(c, 1002);
    });
  }
  conformanceCase(server, '5.18 text message in 2 fragments, both with opcode text', async (c) => {
    await c.sendAll([frag(Op.Text, 'fragment1', false), frag(Op.Text, 'fragment2', true)]);
    await expectFailure(c, 1002);
  });

  for (const [id, chop] of [
    [19, 'one write'],
    [20, 'frame-wise'],
  ] as const) {
    const name = `5.${id} text in 5 fragments with pings between, answered mid-message (${chop})`;
    conformanceCase(server, name, async (c) => {
      // The first pong must come back while the message is still open: that is what proves
      // control frames are handled as they arrive rather than after the message completes.
      const ping1 = { opcode: Op.Ping, payload: 'pongme 1!' };
      const ping2 = { opcode: Op.Ping, payload: 'pongme 2!' };
      await sendChopped(c, [frag(Op.Text, 'fragment1', false), frag(Op.Continuation, 'fragment2', false), ping1], chop);
      await expectPong(c, 'pongme 1!');
      const middle = [frag(Op.Continuation, 'fragment3', false), frag(Op.Continuation, 'fragment4', false), ping2];
      await sendChopped(c, middle, chop);
      await expectPong(c, 'pongme 2!');
      await c.send(frag(Op.Continuation, 'fragment5', true));
      await expectEcho(c, text('fragment1fragment2fragment3fragment4fragment5'));
      await closeNormally(c);
    });
  }

  conformanceCase(server, '5.extra text fragment, then a new binary message instead of its continuation', async (c) => {
    await c.sendAll([frag(Op.Text, 'fragment1', false), { opcode: Op.Binary, payload: Buffer.from([1, 2, 3]) }]);
    await expectFailure(c, 1002);
  });
});
