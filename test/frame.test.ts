import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFrame, encodeHeader, FrameParser, Opcode, type FrameSink } from '../src/protocol/frame.js';
import { KEY, rawFrame } from './support/frames.js';

interface Seen {
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  length: number;
  payload: Buffer;
}

function collect(expectMasked: boolean, allowRsv1 = false) {
  const frames: Seen[] = [];
  const errors: Array<{ code: number; message: string }> = [];
  let current: Seen | null = null;
  const pieces: Buffer[] = [];
  const sink: FrameSink = {
    frameStart(fin, rsv1, opcode, length) {
      current = { fin, rsv1, opcode, length, payload: Buffer.alloc(0) };
      return true;
    },
    framePayload(data) {
      pieces.push(Buffer.from(data));
      return true;
    },
    frameEnd() {
      current!.payload = Buffer.concat(pieces);
      pieces.length = 0;
      frames.push(current!);
      return true;
    },
    frameError(code, message) {
      errors.push({ code, message });
    },
  };
  return { frames, errors, parser: new FrameParser(sink, { expectMasked, allowRsv1 }) };
}


describe('frame encoder', () => {
  test('7-, 16- and 64-bit length forms', () => {
    for (const [length, headerSize] of [[0, 2], [125, 2], [126, 4], [65535, 4], [65536, 10], [70000, 10]] as const) {
      const frame = encodeFrame(Opcode.BINARY, Buffer.alloc(length, 1), { mask: false });
      assert.equal(frame.length, headerSize + length);
      assert.equal(frame[0], 0x82);
      const c = collect(false);
      c.parser.push(frame);
      assert.equal(c.frames[0]!.length, length);
    }
  });

  test('server frames are unmasked, client frames masked with a fresh key each time', () => {
    const server = encodeFrame(Opcode.TEXT, 'hello', { mask: false });
    assert.deepEqual(server, Buffer.from([0x81, 5, ...Buffer.from('hello')]));
    const a = encodeFrame(Opcode.TEXT, 'hello', { mask: true });
    const b = encodeFrame(Opcode.TEXT, 'hello', { mask: true });
    assert.equal(a[1]! & 0x80, 0x80);
    assert.notDeepEqual(a.subarray(2, 6), b.subarray(2, 6));
    const c = collect(true);
    c.parser.push(a);
    assert.equal(c.frames[0]!.payload.toString(), 'hello');
  });

  test('the caller\'s payload is not modified by masking', () => {
    const payload = Buffer.from('unchanged payload');
    encodeFrame(Opcode.BINARY, payload, { mask: true });
    assert.equal(payload.toString(), 'unchanged payload');
  });

  test('strings are written as UTF-8 with the byte length', () => {
    const frame = encodeFrame(Opcode.TEXT, 'é€😀', { mask: false });
    assert.equal(frame[1], 9);
    assert.equal(frame.subarray(2).toString(), 'é€😀');
  });

  test('fin and rsv1 flags, header-only encoding', () => {
    assert.equal(encodeFrame(Opcode.TEXT, 'a', { mask: false, fin: false })[0], 0x01);
    assert.equal(encodeFrame(Opcode.TEXT, 'a', { mask: false, rsv1: true })[0], 0xc1);
    assert.deepEqual(encodeHeader(Opcode.BINARY, 300), Buffer.from([0x82, 126, 1, 44]));
  });
});

describe('frame parser', () => {
  const messages = [
    rawFrame({ opcode: 1, payload: Buffer.from('hi'), mask: KEY }),
    rawFrame({ opcode: 2, payload: Buffer.alloc(300, 9), mask: KEY }),
    rawFrame({ opcode: 9, payload: Buffer.from('ping'), mask: KEY }),
    rawFrame({ opcode: 1, fin: false, payload: Buffer.from('frag'), mask: KEY }),
    rawFrame({ opcode: 0, payload: Buffer.alloc(70000, 3), mask: KEY }),
    rawFrame({ opcode: 2, payload: Buffer.alloc(0), mask: KEY }),
  ];
  const stream = Buffer.concat(messages);

  function check(c: ReturnType<typeof collect>) {
    assert.deepEqual(c.errors, []);
    assert.deepEqual(c.frames.map((f) => [f.opcode, f.fin, f.payload.length]), [
      [1, true, 2], [2, true, 300], [9, true, 4], [1, false, 4], [0, true, 70000], [2, true, 0],
    ]);
    assert.equal(c.frames[0]!.payload.toString(), 'hi');
    assert.ok(c.frames[1]!.payload.every((b) => b === 9));
    assert.ok(c.frames[4]!.payload.every((b) => b === 3));
  }

  test('all frames in one chunk', () => {
    const c = collect(true);
    c.parser.push(Buffer.from(stream));
    check(c);
    assert.ok(c.parser.idle);
  });

  test('one byte at a time', () => {
    const c = collect(true);
    const copy = Buffer.from(stream);
    for (let i = 0; i < copy.length; i++) c.parser.push(copy.subarray(i, i + 1));
    check(c);
  });

  test('every split point of the header-heavy prefix, and random chunkings', () => {
    const prefix = stream.subarray(0, 400);
    for (let split = 1; split < prefix.length; split++) {
      const c = collect(true);
      const copy = Buffer.from(prefix);
      c.parser.push(copy.subarray(0, split));
      c.parser.push(copy.subarray(split));
      assert.equal(c.frames.length, 4, `split at ${split}`);
      assert.equal(c.frames[1]!.payload.length, 300);
    }
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    for (let round = 0; round < 50; round++) {
      const c = collect(true);
      const copy = Buffer.from(stream);
      for (let pos = 0; pos < copy.length;) {
        const size = 1 + Math.floor(rand() * 3000);
        c.parser.push(copy.subarray(pos, pos + size));
        pos += size;
      }
      check(c);
    }
  });

  function firstError(expectMasked: boolean, bytes: Buffer, allowRsv1 = false) {
    const c = collect(expectMasked, allowRsv1);
    c.parser.push(bytes);
    assert.ok(c.parser.dead, 'the parser stops after an error');
    return c.errors[0]!;
  }

  test('masking is required from clients and forbidden from servers', () => {
    assert.equal(firstError(true, rawFrame({ opcode: 1, payload: Buffer.from('x') })).code, 1002);
    assert.equal(firstError(false, rawFrame({ opcode: 1, payload: Buffer.from('x'), mask: KEY })).code, 1002);
  });

  test('reserved bits without a negotiated extension are refused', () => {
    for (const rsv of [1, 2, 4, 7]) {
      assert.equal(firstError(true, rawFrame({ opcode: 1, rsv, mask: KEY })).code, 1002, `rsv ${rsv}`);
    }
  });

  test('rsv1 is allowed on data frames only once an extension allows it', () => {
    const c = collect(true, true);
    c.parser.push(rawFrame({ opcode: 1, rsv: 4, payload: Buffer.from('x'), mask: KEY }));
    assert.equal(c.frames[0]!.rsv1, true);
    assert.equal(firstError(true, rawFrame({ opcode: 9, rsv: 4, mask: KEY }), true).code, 1002);
    assert.equal(firstError(true, rawFrame({ opcode: 1, rsv: 2, mask: KEY }), true).code, 1002);
  });

  test('unknown opcodes are refused', () => {
    for (const opcode of [3, 4, 5, 6, 7, 11, 12, 13, 14, 15]) {
      assert.equal(firstError(true, rawFrame({ opcode, mask: KEY })).code, 1002, `opcode ${opcode}`);
    }
  });

  test('control frames: at most 125 bytes and never fragmented', () => {
    assert.equal(firstError(true, rawFrame({ opcode: 9, payload: Buffer.alloc(126), mask: KEY })).code, 1002);
    assert.equal(firstError(true, rawFrame({ opcode: 8, fin: false, mask: KEY })).code, 1002);
    assert.equal(firstError(true, rawFrame({ opcode: 10, payload: Buffer.alloc(10), lengthForm: 16, mask: KEY })).code, 1002);
    const c = collect(true);
    c.parser.push(rawFrame({ opcode: 9, payload: Buffer.alloc(125), mask: KEY }));
    assert.equal(c.frames[0]!.length, 125);
  });

  test('a 64-bit length with the most significant bit set is refused', () => {
    const frame = Buffer.from([0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, ...KEY]);
    assert.equal(firstError(true, frame).code, 1002);
  });

  test('an absurd 64-bit length is refused as too big', () => {
    const frame = Buffer.from([0x82, 0xff, 0x00, 0x40, 0, 0, 0, 0, 0, 1, ...KEY]);
    assert.equal(firstError(true, frame).code, 1009);
  });

  test('non-minimal length encodings are accepted (RFC 6455 allows them when decoding)', () => {
    const c = collect(true);
    c.parser.push(rawFrame({ opcode: 2, payload: Buffer.from('abc'), lengthForm: 64, mask: KEY }));
    assert.equal(c.frames[0]!.payload.toString(), 'abc');
  });

  test('a sink returning false pauses the push; the rest can be pushed later', () => {
    let ends = 0;
    const parser = new FrameParser({
      frameStart: () => true,
      framePayload: () => true,
      frameEnd: () => ++ends !== 2,
      frameError: () => assert.fail('no error expected'),
    }, { expectMasked: true });
    const one = messages[0]!;
    const stream = Buffer.concat([one, one, one].map((b) => Buffer.from(b)));
    const used = parser.push(stream);
    assert.equal(used, one.length * 2, 'stopped right after the second frame');
    assert.equal(ends, 2);
    assert.ok(!parser.dead);
    assert.equal(parser.push(stream.subarray(used)), one.length);
    assert.equal(ends, 3);
  });
});
