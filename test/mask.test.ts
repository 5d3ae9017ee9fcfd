import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { maskInPlace } from '../src/protocol/mask.js';
import { SeededRandom } from './support/seeded-random.js';

function referenceMask(data: Uint8Array, key: Uint8Array, phase: number): void {
  for (let i = 0; i < data.length; i++) data[i] ^= key[(phase + i) & 3]!;
}

/** Masks `length` bytes at `offset` inside a larger random buffer and checks the guard bytes too. */
function checkAgainstReference(rng: SeededRandom, length: number, offset: number, phase: number): void {
  const key = rng.bytes(4);
  const whole = rng.bytes(offset + length + 9);
  const expected = whole.slice();
  referenceMask(expected.subarray(offset, offset + length), key, phase);
  maskInPlace(whole.subarray(offset, offset + length), key, phase);
  assert.deepEqual(whole, expected, `length ${length}, offset ${offset}, phase ${phase}`);
}

test('matches a byte loop for every length 0..200, byteOffset 0..7 and phase 0..3', () => {
  const rng = new SeededRandom(1);
  for (let length = 0; length <= 200; length++) {
    for (let offset = 0; offset < 8; offset++) {
      for (let phase = 0; phase < 4; phase++) checkAgainstReference(rng, length, offset, phase);
    }
  }
});

test('matches a byte loop on large buffers around the chunk size', () => {
  const rng = new SeededRandom(2);
  for (const length of [1023, 16383, 16384, 16385, 32768, 65536 + 5, (1 << 20) + 3]) {
    checkAgainstReference(rng, length, rng.below(8), rng.below(4));
  }
});

test('phases beyond 3 wrap around the key', () => {
  const rng = new SeededRandom(3);
  for (const phase of [4, 5, 6, 7, 1001]) {
    for (const length of [10, 100, 20000]) checkAgainstReference(rng, length, 1, phase);
  }
});

test('piecewise masking with running phases equals one-shot masking', () => {
  const rng = new SeededRandom(4);
  for (let round = 0; round < 50; round++) {
    const key = rng.bytes(4);
    const payload = rng.bytes(rng.below(70000));
    const oneShot = payload.slice();
    maskInPlace(oneShot, key);
    const pieces = payload.slice();
    let phase = 0;
    for (let start = 0; start < pieces.length; ) {
      const end = Math.min(pieces.length, start + 1 + rng.below(round % 2 === 0 ? 40 : 20000));
      maskInPlace(pieces.subarray(start, end), key, phase);
      phase = (phase + end - start) & 3;
      start = end;
    }
    assert.deepEqual(pieces, oneShot, `round ${round}`);
  }
});

test('masking twice restores the data, also with views of a Node Buffer', () => {
  const rng = new SeededRandom(5);
  const original = Buffer.from(rng.bytes(5000));
  const data = Buffer.from(original);
  const key = Buffer.from(rng.bytes(4));
  maskInPlace(data.subarray(3), key, 2);
  assert.notDeepEqual(data, original);
  maskInPlace(data.subarray(3), key, 2);
  assert.deepEqual(data, original);
});

test('without WebAssembly (node --jitless) the byte loop gives the same results', () => {
  const moduleUrl = new URL('../src/protocol/mask.js', import.meta.url).href;
  const script = `
    import { maskInPlace } from ${JSON.stringify(moduleUrl)};
    const key = Uint8Array.of(0x9a, 0x01, 0xfe, 0x37);
    for (const length of [0, 1, 3, 63, 64, 65, 200, 17000]) {
      for (let phase = 0; phase < 4; phase++) {
        const data = new Uint8Array(length + 1).map((_, i) => i * 31).subarray(1);
        const expected = data.map((b, i) => b ^ key[(phase + i) & 3]);
        maskInPlace(data, key, phase);
        if (data.some((b, i) => b !== expected[i])) throw new Error('mismatch at length ' + length + ' phase ' + phase);
      }
    }
    console.log(typeof WebAssembly);
  `;
  const child = spawnSync(process.execPath, ['--jitless', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(child.status, 0, child.stderr);
  assert.equal(child.stdout.trim(), 'undefined', 'the child must really run without WebAssembly');
});
