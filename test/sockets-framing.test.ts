// The sans-I/O framing codecs: whatever way the byte stream is cut or glued, the same messages come out.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  encodeLengthPrefixed, encodeLine, FramingError, LengthPrefixedDecoder, LineDecoder, lengthPrefixed, lines,
  MAX_U32, RawDecoder, type Decoder,
} from '../src/sockets/index.js';

/** mulberry32: a small seeded generator, so that every failure can be replayed from its seed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const int = (rand: () => number, below: number): number => Math.floor(rand() * below);

/**
 * Cuts `stream` into chunks: single bytes, a few bytes (splitting headers and UTF-8 sequences), or
 * large pieces holding several messages at once, mixed at random.
 */
function randomChunks(stream: Buffer, rand: () => number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < stream.length; ) {
    const kind = rand();
    const size = kind < 0.2 ? 1 : kind < 0.6 ? 1 + int(rand, 7) : 1 + int(rand, 20_000);
    chunks.push(Buffer.from(stream.subarray(offset, offset + size)));
    offset += size;
  }
  return chunks;
}

/** Everything `decoder` emits for `chunks`, then for the end of the stream. */
function decodeAll<T>(decoder: Decoder<T>, chunks: Buffer[]): T[] {
  const out: T[] = [];
  const emit = (message: T): void => void out.push(message);
  for (const chunk of chunks) decoder.push(chunk, emit);
  decoder.end(emit);
  return out;
}

function assertFramingError(fn: () => void, code: string, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof FramingError, `expected a FramingError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, pattern);
    return true;
  });
}

function randomPayload(rand: () => number): Buffer {
  const kind = rand();
  const size = kind < 0.1 ? 0 : kind < 0.5 ? int(rand, 8) : kind < 0.9 ? int(rand, 2000) : int(rand, 70_000);
  const payload = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) payload[i] = int(rand, 256);
  return payload;
}

const WORDS = ['a', 'hello', 'héllo', 'ünïcödé', '日本語', '🎉', 'x'.repeat(300), '', ' ', '\t', 'end\r mid'];

function randomLine(rand: () => number): string {
  const parts: string[] = [];
  for (let n = int(rand, 6); n > 0; n--) parts.push(WORDS[int(rand, WORDS.length)]!);
  return parts.join(' ');
}

describe('length-prefixed frames', () => {
  test('a frame is a u32 big-endian length, then the payload', () => {
    assert.deepEqual([...encodeLengthPrefixed('hi')], [0, 0, 0, 2, 0x68, 0x69]);
    assert.deepEqual([...encodeLengthPrefixed(new Uint8Array(0))], [0, 0, 0, 0]);
    assert.deepEqual([...encodeLengthPrefixed(Buffer.alloc(258, 7)).subarray(0, 4)], [0, 0, 1, 2]);
  });

  test('the same messages come out under 300 random cuts and merges of the stream', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const rand = random(seed);
      const messages = Array.from({ length: 1 + int(rand, 40) }, () => randomPayload(rand));
      const stream = Buffer.concat(messages.map((m) => encodeLengthPrefixed(m)));
      const decoder = new LengthPrefixedDecoder();
      const decoded = decodeAll(decoder, randomChunks(stream, rand));
      assert.deepEqual(decoded, messages, `seed ${seed}`);
      assert.equal(decoder.buffered, 0);
    }
  });

  test('one byte at a time, and the whole stream in one chunk', () => {
    const rand = random(42);
    const messages = Array.from({ length: 50 }, () => randomPayload(rand));
    const stream = Buffer.concat(messages.map((m) => encodeLengthPrefixed(m)));
    const bytes = Array.from(stream, (byte) => Buffer.from([byte]));
    assert.deepEqual(decodeAll(new LengthPrefixedDecoder(), bytes), messages);
    assert.deepEqual(decodeAll(new LengthPrefixedDecoder(), [stream]), messages);
  });

  test('a message decoded from a chunk is not changed by the chunks after it', () => {
    const decoder = new LengthPrefixedDecoder();
    const out: Buffer[] = [];
    const stream = Buffer.concat([encodeLengthPrefixed('first'), encodeLengthPrefixed('second')]);
    decoder.push(stream.subarray(0, 15), (m) => out.push(m));
    decoder.push(stream.subarray(15), (m) => out.push(m));
    assert.deepEqual(out.map(String), ['first', 'second']);
  });

  test('a frame over the limit fails as soon as its length is in, after the messages before it', () => {
    const decoder = new LengthPrefixedDecoder(10);
    const out: string[] = [];
    const stream = Buffer.concat([encodeLengthPrefixed('ok'), encodeLengthPrefixed('exactly10!'), Buffer.from([0, 0, 0, 11])]);
    assertFramingError(
      () => decoder.push(stream, (m) => out.push(String(m))),
      'FRAME_TOO_LARGE',
      /^frame of 11 bytes exceeds the limit of 10 bytes$/,
    );
    assert.deepEqual(out, ['ok', 'exactly10!']);
    // The decoder stays failed: the stream cannot be resynchronised.
    assertFramingError(() => decoder.push(encodeLengthPrefixed('x'), () => {}), 'FRAME_TOO_LARGE', /11 bytes/);
  });

  test('an oversize length split across chunks is caught without holding any payload', () => {
    const decoder = new LengthPrefixedDecoder(1024);
    const huge = Buffer.from([0xff, 0xff, 0xff, 0xff]);
    decoder.push(huge.subarray(0, 3), () => assert.fail('nothing is complete'));
    assert.equal(decoder.buffered, 3);
    assertFramingError(() => decoder.push(huge.subarray(3), () => {}), 'FRAME_TOO_LARGE', /4294967295 bytes/);
  });

  test('the stream ending inside a frame or its length is an error', () => {
    const inPayload = new LengthPrefixedDecoder();
    inPayload.push(encodeLengthPrefixed('hello').subarray(0, 7), () => {});
    assertFramingError(() => inPayload.end(), 'TRUNCATED', /inside a frame \(3 of 5 bytes\)/);
    const inLength = new LengthPrefixedDecoder();
    inLength.push(Buffer.from([0, 0]), () => {});
    assertFramingError(() => inLength.end(), 'TRUNCATED', /inside a frame length/);
  });

  test('the encoder refuses what the decoder would refuse', () => {
    const codec = lengthPrefixed({ maxFrameSize: 4 });
    assert.equal(codec.encode('four').length, 8);
    assert.throws(() => codec.encode('five!'), { name: 'RangeError', message: /5 bytes exceeds the frame limit of 4 bytes/ });
    assert.throws(() => lengthPrefixed({ maxFrameSize: MAX_U32 + 1 }), RangeError);
    assert.throws(() => lengthPrefixed({ maxFrameSize: -1 }), RangeError);
  });
});

describe('lines', () => {
  test('the same lines come out under 300 random cuts, with \\n and \\r\\n endings mixed', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const rand = random(seed);
      const sent = Array.from({ length: 1 + int(rand, 40) }, () => randomLine(rand));
      const stream = Buffer.from(sent.map((line) => `${line}${rand() < 0.5 ? '\r\n' : '\n'}`).join(''));
      const decoder = new LineDecoder();
      assert.deepEqual(decodeAll(decoder, randomChunks(stream, rand)), sent, `seed ${seed}`);
      assert.equal(decoder.buffered, 0);
    }
  });

  test('every cut of a short stream, including inside UTF-8 sequences and between \\r and \\n', () => {
    const stream = Buffer.from('日本\r\n🎉\n\nlast');
    for (let cut = 0; cut <= stream.length; cut++) {
      const chunks = [stream.subarray(0, cut), stream.subarray(cut)];
      assert.deepEqual(decodeAll(new LineDecoder(), chunks), ['日本', '🎉', '', 'last'], `cut at ${cut}`);
    }
  });

  test('a last line without "\\n" is delivered at the end of the stream', () => {
    assert.deepEqual(decodeAll(new LineDecoder(), [Buffer.from('a\nb')]), ['a', 'b']);
    assert.deepEqual(decodeAll(new LineDecoder(), [Buffer.from('a\n')]), ['a']);
    assert.deepEqual(decodeAll(new LineDecoder(), []), []);
  });

  test('a line of exactly the limit passes, with either ending; one byte more fails', () => {
    const max = 8;
    assert.deepEqual(decodeAll(new LineDecoder(max), [Buffer.from('12345678\n12345678\r\n')]), ['12345678', '12345678']);
    const out: string[] = [];
    assertFramingError(
      () => new LineDecoder(max).push(Buffer.from('ok\n123456789\n'), (line) => out.push(line)),
      'LINE_TOO_LONG',
      /^line longer than the limit of 8 bytes$/,
    );
    assert.deepEqual(out, ['ok']);
  });

  test('a line that never ends fails once it is too long, holding at most the limit and one byte', () => {
    const decoder = new LineDecoder(100);
    for (let i = 0; i < 10; i++) decoder.push(Buffer.from('x'.repeat(10)), () => {});
    assert.equal(decoder.buffered, 100);
    decoder.push(Buffer.from('\r'), () => {});
    assertFramingError(() => decoder.push(Buffer.from('y'), () => {}), 'LINE_TOO_LONG', /100 bytes/);
    assertFramingError(() => new LineDecoder(100).push(Buffer.alloc(64 * 1024, 0x78), () => {}), 'LINE_TOO_LONG', /100/);
  });

  test('invalid UTF-8 fails the stream', () => {
    assertFramingError(() => new LineDecoder().push(Buffer.from([0x61, 0xc3, 0x28, 0x0a]), () => {}), 'INVALID_UTF8', /not valid UTF-8/);
    assertFramingError(() => decodeAll(new LineDecoder(), [Buffer.from([0xe6, 0x97])]), 'INVALID_UTF8', /UTF-8/);
  });

  test('the encoder ends lines with \\n (or \\r\\n) and refuses lines that would not come back whole', () => {
    assert.equal(encodeLine('héllo').toString(), 'héllo\n');
    assert.equal(lines({ crlf: true }).encode('a').toString(), 'a\r\n');
    assert.throws(() => encodeLine('two\nlines'), { name: 'RangeError', message: /cannot contain "\\n"/ });
    assert.throws(() => encodeLine('cr\r'), { name: 'RangeError', message: /cannot end with "\\r"/ });
    assert.throws(() => lines({ maxLineLength: 3 }).encode('four'), { name: 'RangeError', message: /4 bytes exceeds the limit of 3 bytes/ });
  });
});

describe('raw bytes', () => {
  test('each chunk is a message as it is', () => {
    const chunks = [Buffer.from('ab'), Buffer.from('c\nd')];
    assert.deepEqual(decodeAll(new RawDecoder(), chunks), chunks);
  });
});
