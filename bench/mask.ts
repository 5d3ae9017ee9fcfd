/**
 * Masking throughput: maskInPlace against a naive byte loop and the bufferutil native addon.
 * Run: npx tsc -p tsconfig.json && node dist/bench/mask.js
 */
import { createRequire } from 'node:module';
import { maskInPlace } from '../src/protocol/mask.js';
import { formatRate, measureThroughput } from './support/measure-throughput.js';

interface BufferUtil {
  unmask(buffer: Buffer, mask: Buffer): void;
}
const bufferutil = createRequire(import.meta.url)('bufferutil') as BufferUtil;
const native = bufferutil.unmask.toString().includes('[native code]');

function naiveMask(data: Uint8Array, key: Uint8Array): void {
  for (let i = 0; i < data.length; i++) data[i] ^= key[i & 3]!;
}

const key = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
const SIZES: [string, number][] = [['16 B', 16], ['125 B', 125], ['1 KiB', 1024], ['16 KiB', 16384], ['1 MiB', 1 << 20]];

console.log(`bufferutil: ${native ? 'native addon' : 'JS fallback (prebuild not loaded)'}`);
console.log('size      offset      naive  ours    bufferutil  ours/naive  ours/bufferutil   (MB/s)');
for (const [label, size] of SIZES) {
  for (const offset of [0, 1]) {
    const data = Buffer.alloc(size + 8).subarray(offset, offset + size);
    const naive = measureThroughput(() => naiveMask(data, key), size);
    const ours = measureThroughput(() => maskInPlace(data, key), size);
    const addon = measureThroughput(() => bufferutil.unmask(data, key), size);
    console.log(
      `${label.padEnd(8)}  ${offset === 0 ? 'aligned  ' : 'unaligned'} ${formatRate(naive)} ${formatRate(ours)} ${formatRate(addon)}` +
        `      ${(ours / naive).toFixed(2).padStart(6)}x     ${(ours / addon).toFixed(2).padStart(6)}x`,
    );
  }
}

// Equal sizes in a row let maskInPlace reuse its scratch view; alternating sizes show the cost without it.
const alternating = [Buffer.alloc(16384 + 1).subarray(1), Buffer.alloc(16383 + 1).subarray(1)];
let turn = 0;
const varied = measureThroughput(() => maskInPlace(alternating[turn++ & 1]!, key), 16383.5);
const variedAddon = measureThroughput(() => bufferutil.unmask(alternating[turn++ & 1]!, key), 16383.5);
console.log(`16 KiB and 16 KiB-1 alternating, unaligned: ours ${formatRate(varied)}, bufferutil ${formatRate(variedAddon)}, ours/bufferutil ${(varied / variedAddon).toFixed(2)}x`);
