import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Connection, type ConnectionHandler, type Role } from '../src/protocol/connection.js';
import { FrameParser, Opcode } from '../src/protocol/frame.js';
import { KEY, rawFrame } from './support/frames.js';

/** A connection with a recording handler, and a parser that decodes what it writes. */
function harness(role: Role = 'server', options: { maxPayload?: number; maxFragments?: number } = {}) {
  const log: string[] = [];
  const messages: Array<{ data: Buffer; isBinary: boolean }> = [];
  const written: Array<{ opcode: number; payload: Buffer }> = [];
  let opcode = 0;
  const pieces: Buffer[] = [];
  const decoder = new FrameParser({
    frameStart: (_fin, _rsv1, op) => ((opcode = op), true),
    framePayload: (data) => (pieces.push(Buffer.from(data)), true),
    frameEnd: () => (written.push({ opcode, payload: Buffer.concat(pieces.splice(0)) }), true),
    frameError: (code, message) => assert.fail(`our own output is invalid: ${code} ${message}`),
  }, { expectMasked: role === 'client' });
  const handler: ConnectionHandler = {
    message: (data, isBinary) => {
      messages.push({ data: Buffer.from(data), isBinary });
      log.push(`message ${isBinary ? 'binary' : 'text'} ${data.length}`);
    },
    ping: (data) => log.push(`ping ${data.toString()}`),
    pong: (data) => log.push(`pong ${data.toString()}`),
    closeReceived: (code, reason) => log.push(`close ${code} ${reason}`),
    failed: (code) => log.push(`failed ${code}`),
    write: (bytes) => decoder.push(Buffer.from(bytes)),
  };
  const connection = new Connection(handler, { role, ...options });
  const mask = role === 'server' ? KEY : null;
  const frame = (o: Parameters<typeof rawFrame>[0]) => rawFrame({ mask, ...o });
  const closeCodeSent = () => {
    const close = written.find((w) => w.opcode === Opcode.CLOSE);
    return close && close.payload.length >= 2 ? close.payload.readUInt16BE(0) : undefined;
  };
  return { connection, log, messages, written, frame, closeCodeSent };
}

const text = (s: string) => Buffer.from(s);

describe('message assembly', () => {
  test('a fragmented text message with control frames between the fragments', () => {
    const h = harness();
    h.connection.receive(Buffer.concat([
      h.frame({ opcode: 1, fin: false, payload: text('Hel') }),
      h.frame({ opcode: 9, payload: text('p1') }),
      h.frame({ opcode: 0, fin: false, payload: text('lo, ') }),
      h.frame({ opcode: 10, payload: text('p2') }),
      h.frame({ opcode: 0, fin: true, payload: text('world') }),
    ]));
    assert.deepEqual(h.log, ['ping p1', 'pong p2', 'message text 12']);
    assert.equal(h.messages[0]!.data.toString(), 'Hello, world');
    assert.deepEqual(h.written.map((w) => [w.opcode, w.payload.toString()]), [[Opcode.PONG, 'p1']]);
  });

  test('many fragments, including empty ones, one byte at a time', () => {
    const h = harness();
    const parts = [h.frame({ opcode: 2, fin: false, payload: Buffer.alloc(0) })];
    for (let i = 0; i < 100; i++) parts.push(h.frame({ opcode: 0, fin: false, payload: Buffer.from([i]) }));
    parts.push(h.frame({ opcode: 0, fin: true, payload: Buffer.alloc(0) }));
    const all = Buffer.concat(parts);
    for (let i = 0; i < all.length; i++) h.connection.receive(all.subarray(i, i + 1));
    assert.equal(h.messages.length, 1);
    assert.deepEqual([...h.messages[0]!.data], Array.from({ length: 100 }, (_, i) => i));
    assert.equal(h.messages[0]!.isBinary, true);
  });

  test('continuation without a message to continue → 1002', () => {
    const h = harness();
    h.connection.receive(h.frame({ opcode: 0, payload: text('x') }));
    assert.deepEqual(h.log, ['failed 1002']);
    assert.equal(h.closeCodeSent(), 1002);
  });

  test('a new message inside an unfinished one → 1002', () => {
    const h = harness();
    h.connection.receive(Buffer.concat([
      h.frame({ opcode: 1, fin: false, payload: text('a') }),
      h.frame({ opcode: 1, fin: true, payload: text('b') }),
    ]));
    assert.deepEqual(h.log, ['failed 1002']);
  });

  test('nothing is read after a failure', () => {
    const h = harness();
    h.connection.receive(Buffer.concat([h.frame({ opcode: 3 }), h.frame({ opcode: 1, payload: text('late') })]));
    h.connection.receive(h.frame({ opcode: 1, payload: text('later') }));
    assert.deepEqual(h.log, ['failed 1002']);
    assert.equal(h.written.length, 1);
  });
});

describe('limits', () => {
  test('maxPayload on a single frame → 1009 before the payload arrives', () => {
    const h = harness('server', { maxPayload: 100 });
    const frame = h.frame({ opcode: 2, payload: Buffer.alloc(101) });
    h.connection.receive(frame.subarray(0, 8)); // header only
    assert.deepEqual(h.log, ['failed 1009']);
    assert.equal(h.closeCodeSent(), 1009);
  });

  test('maxPayload across fragments → 1009', () => {
    const h = harness('server', { maxPayload: 100 });
    h.connection.receive(Buffer.concat([
      h.frame({ opcode: 2, fin: false, payload: Buffer.alloc(60) }),
      h.frame({ opcode: 0, fin: true, payload: Buffer.alloc(41) }),
    ]));
    assert.deepEqual(h.log, ['failed 1009']);
  });

  test('exactly maxPayload is accepted', () => {
    const h = harness('server', { maxPayload: 100 });
    h.connection.receive(h.frame({ opcode: 2, payload: Buffer.alloc(100) }));
    assert.deepEqual(h.log, ['message binary 100']);
  });

  test('more fragments than maxFragments → 1009', () => {
    const h = harness('server', { maxFragments: 10 });
    const parts = [];
    for (let i = 0; i < 11; i++) parts.push(h.frame({ opcode: i === 0 ? 2 : 0, fin: false, payload: Buffer.alloc(0) }));
    h.connection.receive(Buffer.concat(parts));
    assert.deepEqual(h.log, ['failed 1009']);
  });
});

describe('UTF-8 in text messages', () => {
  test('invalid UTF-8 → 1007 as soon as it is seen, mid-message and mid-frame', () => {
    const h = harness();
    const first = h.frame({ opcode: 1, fin: false, payload: text('κόσμε') });
    // The second fragment starts with a byte that can never begin a sequence; the rest has not arrived.
    const second = h.frame({ opcode: 0, fin: true, payload: Buffer.from([0xf8, 0x41, 0x41, 0x41]) });
    h.connection.receive(first);
    assert.deepEqual(h.log, []);
    h.connection.receive(second.subarray(0, second.length - 3));
    assert.deepEqual(h.log, ['failed 1007']);
    assert.equal(h.closeCodeSent(), 1007);
  });

  test('a code point split across fragments is valid', () => {
    const h = harness();
    const euro = Buffer.from('€');
    h.connection.receive(Buffer.concat([
      h.frame({ opcode: 1, fin: false, payload: euro.subarray(0, 1) }),
      h.frame({ opcode: 0, fin: false, payload: euro.subarray(1, 2) }),
      h.frame({ opcode: 0, fin: true, payload: euro.subarray(2) }),
    ]));
    assert.equal(h.messages[0]!.data.toString(), '€');
  });

  test('a message ending inside a sequence → 1007', () => {
    const h = harness();
    h.connection.receive(h.frame({ opcode: 1, payload: Buffer.from([0x41, 0xe2, 0x82]) }));
    assert.deepEqual(h.log, ['failed 1007']);
  });

  test('binary messages are not validated', () => {
    const h = harness();
    h.connection.receive(h.frame({ opcode: 2, payload: Buffer.from([0xff, 0xfe]) }));
    assert.deepEqual(h.log, ['message binary 2']);
  });

  test('the validator is reset between messages', () => {
    const h = harness();
    h.connection.receive(Buffer.concat([
      h.frame({ opcode: 1, payload: text('ok') }),
      h.frame({ opcode: 1, payload: text('ok again') }),
    ]));
    assert.equal(h.messages.length, 2);
  });
});

describe('closing handshake', () => {
  test('a peer close is echoed with its code and reported once', () => {
    const h = harness();
    const payload = Buffer.concat([Buffer.from([0x0f, 0xa0]), text('bye')]); // 4000
    h.connection.receive(Buffer.concat([h.frame({ opcode: 8, payload }), h.frame({ opcode: 1, payload: text('after') })]));
    assert.deepEqual(h.log, ['close 4000 bye']);
    assert.equal(h.closeCodeSent(), 4000);
    assert.ok(h.connection.closed);
    assert.equal(h.connection.send('x', false), false, 'no data after our close frame');
  });

  test('an empty close is reported as 1005 and echoed empty', () => {
    const h = harness();
    h.connection.receive(h.frame({ opcode: 8 }));
    assert.deepEqual(h.log, ['close 1005 ']);
    assert.equal(h.written[0]!.payload.length, 0);
  });

  test('we close first: data still arrives until the peer\'s close', () => {
    const h = harness('client');
    assert.equal(h.connection.close(1000, 'done'), true);
    assert.equal(h.connection.close(1000), false);
    assert.equal(h.connection.closed, false);
    h.connection.receive(Buffer.concat([
      h.frame({ opcode: 1, payload: text('late echo') }),
      h.frame({ opcode: 9, payload: text('no pong now') }),
      h.frame({ opcode: 8, payload: Buffer.from([0x03, 0xe8]) }),
    ]));
    assert.deepEqual(h.log, ['message text 9', 'ping no pong now', 'close 1000 ']);
    assert.deepEqual(h.written.map((w) => w.opcode), [Opcode.CLOSE], 'no pong and no second close after ours');
    assert.ok(h.connection.closed);
  });

  test('every close code: valid ones accepted, invalid ones → 1002', () => {
    for (let code = 0; code < 5100; code++) {
      const h = harness();
      h.connection.receive(h.frame({ opcode: 8, payload: Buffer.from([code >> 8, code & 0xff]) }));
      const valid = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
      assert.deepEqual(h.log, [valid ? `close ${code} ` : 'failed 1002'], `code ${code}`);
    }
  });

  test('a 1-byte close payload → 1002; a reason that is not UTF-8 → 1007', () => {
    const h1 = harness();
    h1.connection.receive(h1.frame({ opcode: 8, payload: Buffer.from([0x03]) }));
    assert.deepEqual(h1.log, ['failed 1002']);
    const h2 = harness();
    h2.connection.receive(h2.frame({ opcode: 8, payload: Buffer.from([0x03, 0xe8, 0xff]) }));
    assert.deepEqual(h2.log, ['failed 1007']);
  });

  test('a 123-byte reason is accepted', () => {
    const h = harness();
    h.connection.receive(h.frame({ opcode: 8, payload: Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.alloc(123, 0x61)]) }));
    assert.equal(h.log[0], `close 1000 ${'a'.repeat(123)}`);
  });
});

describe('sending', () => {
  test('clients mask, servers do not; control payloads are limited to 125 bytes', () => {
    const client = harness('client');
    client.connection.send('hi', false);
    client.connection.ping('p');
    assert.deepEqual(client.written.map((w) => [w.opcode, w.payload.toString()]), [[1, 'hi'], [9, 'p']]);
    const server = harness('server');
    server.connection.send(Buffer.from([1, 2]), true);
    assert.deepEqual(server.written.map((w) => w.opcode), [2]);
    assert.throws(() => server.connection.ping(Buffer.alloc(126)), RangeError);
  });

  test('idle reports whether a frame or message is half received', () => {
    const h = harness();
    assert.ok(h.connection.idle);
    h.connection.receive(h.frame({ opcode: 1, fin: false, payload: text('a') }));
    assert.equal(h.connection.idle, false);
    h.connection.receive(h.frame({ opcode: 0, payload: text('b') }));
    assert.ok(h.connection.idle);
  });
});
