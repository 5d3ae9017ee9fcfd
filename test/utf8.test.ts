import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isValidUtf8, Utf8Validator } from '../src/protocol/utf8.js';
import { SeededRandom } from './support/seeded-random.js';

const hex = (text: string) => Uint8Array.from(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
const show = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

function decoderAccepts(bytes: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** Index of the first byte a streaming fatal TextDecoder rejects when fed byte by byte, or -1. */
function decoderRejectsAt(bytes: Uint8Array): number {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  for (let i = 0; i < bytes.length; i++) {
    try {
      decoder.decode(bytes.subarray(i, i + 1), { stream: true });
    } catch {
      return i;
    }
  }
  return -1;
}

/** Index of the byte at which push() first returns false when fed one byte at a time, or -1. */
function validatorRejectsAt(bytes: Uint8Array): number {
  const validator = new Utf8Validator();
  for (let i = 0; i < bytes.length; i++) {
    if (!validator.push(bytes.subarray(i, i + 1))) return i;
  }
  return -1;
}

/** Pushes `bytes` in pieces ending at `cuts` and checks every push() and the end() against the expectations. */
function checkPieces(bytes: Uint8Array, cuts: number[], rejectsAt: number, valid: boolean): void {
  const validator = new Utf8Validator();
  let start = 0;
  for (const end of [...cuts, bytes.length]) {
    const expected = rejectsAt < 0 || rejectsAt >= end;
    assert.equal(validator.push(bytes.subarray(start, end)), expected, `${show(bytes)} push up to ${end} of cuts ${cuts}`);
    start = end;
  }
  assert.equal(validator.end(), valid, `${show(bytes)} end() with cuts ${cuts}`);
}

function checkEverySplit(bytes: Uint8Array): void {
  const valid = decoderAccepts(bytes);
  const rejectsAt = decoderRejectsAt(bytes);
  assert.equal(isValidUtf8(bytes), valid, show(bytes));
  assert.equal(validatorRejectsAt(bytes), rejectsAt, `fail-fast index of ${show(bytes)}`);
  checkPieces(bytes, [], rejectsAt, valid);
  for (let cut = 0; cut <= bytes.length; cut++) checkPieces(bytes, [cut], rejectsAt, valid);
}

const TRICKY_BYTES = [
  0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed,
  0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xf7, 0xf8, 0xfe, 0xff,
];
const CODE_POINT_RANGES: [number, number][] = [
  [0x00, 0x7f], [0x80, 0x7ff], [0x800, 0xfff], [0xd000, 0xd7ff], [0xe000, 0xffff], [0x10000, 0x10fff], [0x10f000, 0x10ffff],
];

/** Random strings mixing well-formed code points near range edges with tricky loose bytes. */
function randomBytes(rng: SeededRandom): Uint8Array {
  const parts: number[] = [];
  const tokens = 1 + rng.below(10);
  const looseByteChance = rng.below(4); // in quarters: 0 gives fully valid strings
  for (let t = 0; t < tokens; t++) {
    if (rng.below(4) < looseByteChance) {
      parts.push(rng.below(5) === 0 ? rng.below(256) : TRICKY_BYTES[rng.below(TRICKY_BYTES.length)]!);
    } else {
      const [low, high] = CODE_POINT_RANGES[rng.below(CODE_POINT_RANGES.length)]!;
      parts.push(...Buffer.from(String.fromCodePoint(low + rng.below(high - low + 1))));
    }
  }
  return Uint8Array.from(parts);
}

test('random byte strings agree with a fatal TextDecoder, whole, split anywhere and byte by byte', () => {
  const rng = new SeededRandom(7);
  let valid = 0;
  for (let round = 0; round < 4000; round++) {
    const bytes = randomBytes(rng);
    if (decoderAccepts(bytes)) valid++;
    checkEverySplit(bytes);
  }
  assert.ok(valid > 1000 && valid < 3000, `balanced sample: ${valid} valid of 4000`);
});

test('random long strings agree with a fatal TextDecoder when split in random pieces', () => {
  const rng = new SeededRandom(8);
  for (let round = 0; round < 300; round++) {
    const parts: Uint8Array[] = [];
    for (let p = 0; p < 50; p++) parts.push(randomBytes(rng));
    const bytes = Uint8Array.from(Buffer.concat(parts));
    const cuts = new Set<number>();
    for (let c = rng.below(8); c > 0; c--) cuts.add(rng.below(bytes.length + 1));
    checkPieces(bytes, [...cuts].sort((a, b) => a - b), decoderRejectsAt(bytes), decoderAccepts(bytes));
  }
});

const KOSME = 'cebae1bdb9cf83cebcceb5';

/** Autobahn TestSuite case groups 6.2-6.23 (UTF-8 handling); every case is also checked at every split. */
const AUTOBAHN_CASES: [string, string, boolean][] = [
  ['6.2 Hello-µ@ßöäüàá-UTF-8!!', Buffer.from('Hello-µ@ßöäüàá-UTF-8!!').toString('hex'), true],
  ['6.3.1 κόσμε', KOSME, true],
  ['6.3.2 κόσμε + surrogate + edited', `${KOSME} eda080 656469746564`, false],
  ['6.4.1 κόσμε + U+110000 + edited', `${KOSME} f4908080 656469746564`, false],
  ['6.4.3 stray continuations after 4-byte lead', `${KOSME} c0 80 80 80`, false],
  ['6.7.1 U+0000', '00', true],
  ['6.7.2 U+0080', 'c280', true],
  ['6.7.3 U+0800', 'e0a080', true],
  ['6.7.4 U+10000', 'f0908080', true],
  ['6.8.1 5-byte sequence', 'f888808080', false],
  ['6.8.2 6-byte sequence', 'fc8480808080', false],
  ['6.9.1 U+007F', '7f', true],
  ['6.9.2 U+07FF', 'dfbf', true],
  ['6.9.3 U+FFFF', 'efbfbf', true],
  ['6.9.4 U+10FFFF', 'f48fbfbf', true],
  ['6.10.1 U+1FFFFF', 'f7bfbfbf', false],
  ['6.10.2 5-byte max', 'fbbfbfbfbf', false],
  ['6.10.3 6-byte max', 'fdbfbfbfbfbf', false],
  ['6.11.1 U+D7FF', 'ed9fbf', true],
  ['6.11.2 U+E000', 'ee8080', true],
  ['6.11.3 U+FFFD', 'efbfbd', true],
  ['6.11.4 U+10FFFF', 'f48fbfbf', true],
  ['6.11.5 U+110000', 'f4908080', false],
  ['6.12.1 first continuation byte', '80', false],
  ['6.12.2 last continuation byte', 'bf', false],
  ['6.12.3 two continuation bytes', '80bf', false],
  ['6.12.6 four continuation bytes', '80bf80bf', false],
  ['6.12.8 all 64 continuation bytes', Buffer.from(Array.from({ length: 64 }, (_, i) => 0x80 + i)).toString('hex'), false],
  ['6.13.1 lonely 2-byte leads', Buffer.from(Array.from({ length: 32 }, (_, i) => [0xc0 + i, 0x20]).flat()).toString('hex'), false],
  ['6.13.2 lonely 3-byte leads', Buffer.from(Array.from({ length: 16 }, (_, i) => [0xe0 + i, 0x20]).flat()).toString('hex'), false],
  ['6.13.3 lonely 4-byte leads', Buffer.from(Array.from({ length: 8 }, (_, i) => [0xf0 + i, 0x20]).flat()).toString('hex'), false],
  ['6.13.4 lonely 5-byte leads', 'f820f920fa20fb20', false],
  ['6.13.5 lonely 6-byte leads', 'fc20fd20', false],
  ['6.14.1 C0 without continuation', 'c0', false],
  ['6.14.2 E0 80 without last', 'e080', false],
  ['6.14.3 F0 80 80 without last', 'f08080', false],
  ['6.14.6 DF without continuation', 'df', false],
  ['6.14.7 EF BF without last', 'efbf', false],
  ['6.14.8 F7 BF BF without last', 'f7bfbf', false],
  ['truncated U+20AC at the end', 'e282', false],
  ['truncated U+1F600 at the end', 'f09f98', false],
  ['6.15.1 concatenated incomplete sequences', 'c0e080f08080f8808080fc80808080dfefbff7bfbffbbfbfbffdbfbfbfbf', false],
  ['6.16.1 FE', 'fe', false],
  ['6.16.2 FF', 'ff', false],
  ['6.16.3 FE FE FF FF', 'fefeffff', false],
  ['6.17.1 overlong / (2 bytes)', 'c0af', false],
  ['6.17.2 overlong / (3 bytes)', 'e080af', false],
  ['6.17.3 overlong / (4 bytes)', 'f08080af', false],
  ['6.17.4 overlong / (5 bytes)', 'f8808080af', false],
  ['6.18.1 max overlong 2 bytes', 'c1bf', false],
  ['6.18.2 max overlong 3 bytes', 'e09fbf', false],
  ['6.18.3 max overlong 4 bytes', 'f08fbfbf', false],
  ['6.19.1 overlong NUL (2 bytes)', 'c080', false],
  ['6.19.2 overlong NUL (3 bytes)', 'e08080', false],
  ['6.19.3 overlong NUL (4 bytes)', 'f0808080', false],
  ['6.20.1 U+D800', 'eda080', false],
  ['6.20.2 U+DB7F', 'edadbf', false],
  ['6.20.3 U+DB80', 'edae80', false],
  ['6.20.4 U+DBFF', 'edafbf', false],
  ['6.20.5 U+DC00', 'edb080', false],
  ['6.20.6 U+DF80', 'edbe80', false],
  ['6.20.7 U+DFFF', 'edbfbf', false],
  ['6.21.1 U+D800 U+DC00', 'eda080edb080', false],
  ['6.21.8 U+DBFF U+DFFF', 'edafbfedbfbf', false],
  ['6.22.1 U+FFFE', 'efbfbe', true],
  ['6.22.2 U+FFFF', 'efbfbf', true],
  ['6.22.3 U+1FFFE', 'f09fbfbe', true],
  ['6.22.34 U+10FFFF', 'f48fbfbf', true],
  ['6.22 U+FDD0..U+FDEF', Buffer.from(Array.from({ length: 32 }, (_, i) => String.fromCodePoint(0xfdd0 + i)).join('')).toString('hex'), true],
  ['6.23.1 U+FFFD', 'efbfbd', true],
];

test('Autobahn 6.x UTF-8 cases, whole and split at every position', () => {
  for (const [name, bytes, valid] of AUTOBAHN_CASES) {
    const data = hex(bytes);
    assert.equal(isValidUtf8(data), valid, name);
    const validator = new Utf8Validator();
    assert.equal(validator.push(data) && validator.end(), valid, name);
    checkEverySplit(data);
  }
});

test('6.6 every prefix of κόσμε is accepted by push() and by end() only on a code point boundary', () => {
  const kosme = hex(KOSME);
  const boundaries = new Set([0, 2, 5, 7, 9, 11]);
  for (let length = 0; length <= kosme.length; length++) {
    const validator = new Utf8Validator();
    assert.equal(validator.push(kosme.subarray(0, length)), true, `prefix ${length}`);
    assert.equal(validator.end(), boundaries.has(length), `prefix ${length}`);
  }
});

/** [bytes, index of the first byte push() refuses when fed byte by byte, or -1 if none]. */
const FAIL_FAST_CASES: [string, number][] = [
  ['f4 90 80 80', 1],
  ['f4 8f bf bf f4 90', 5],
  ['ed a0 80', 1],
  ['ed 9f bf ed bf', 4],
  ['e0 80 80', 1],
  ['e0 9f bf', 1],
  ['e0 a0', -1],
  ['f0 80 80 80', 1],
  ['f0 8f bf bf', 1],
  ['f0 90', -1],
  ['c0 80', 0],
  ['c1 bf', 0],
  ['41 42 c2', -1],
  ['f5 80 80 80', 0],
  ['ff', 0],
  ['f8 88 80 80 80', 0],
  ['80', 0],
  ['41 bf', 1],
  ['c2 80 80', 2],
  ['e2 82 41', 2],
  ['e2 41', 1],
  ['f0 9f 98 f0', 3],
  ['f0 9f 98 80 80', 4],
  [`${KOSME} f4 90 80 80 65 64`, 12],
  [`${KOSME} ed a0 80`, 12],
  [`${KOSME} c0 80`, 11],
];

test('push() fails fast at the exact byte, fed one byte at a time or in two pieces', () => {
  for (const [bytes, index] of FAIL_FAST_CASES) {
    const data = hex(bytes);
    assert.equal(validatorRejectsAt(data), index, bytes);
    for (let cut = 0; cut <= data.length; cut++) checkPieces(data, [cut], index, false);
  }
});

test('a refused message stays refused until end() or reset(), then the next message is judged afresh', () => {
  const validator = new Utf8Validator();
  assert.equal(validator.push(hex('ed a0')), false);
  assert.equal(validator.push(hex('41')), false);
  assert.equal(validator.end(), false);
  assert.equal(validator.push(hex('e282')), true);
  assert.equal(validator.push(hex('ac 41')), true);
  assert.equal(validator.end(), true);

  assert.equal(validator.push(hex('ff')), false);
  validator.reset();
  assert.equal(validator.push(hex('41')), true);
  assert.equal(validator.push(hex('f0 9f')), true);
  validator.reset();
  assert.equal(validator.push(hex('80')), false, 'reset() drops a pending incomplete sequence');
  assert.equal(validator.end(), false);
  assert.equal(validator.end(), true, 'an empty message is valid');
});

test('large messages of multi-byte text pushed in odd-sized chunks', () => {
  const text = Buffer.from('κόσμε 😀 Grüße € 𝄞 '.repeat(2000));
  const rng = new SeededRandom(9);
  for (let round = 0; round < 20; round++) {
    const validator = new Utf8Validator();
    for (let start = 0; start < text.length; ) {
      const end = Math.min(text.length, start + 1 + rng.below(5000));
      assert.equal(validator.push(text.subarray(start, end)), true);
      start = end;
    }
    assert.equal(validator.end(), true);
  }
  const broken = Buffer.from(text);
  broken[broken.length - 7] = 0xff;
  const validator = new Utf8Validator();
  assert.equal(validator.push(broken.subarray(0, 30000)), true);
  assert.equal(validator.push(broken.subarray(30000)), false);
});
