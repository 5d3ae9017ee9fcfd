/**
 * UTF-8 validation throughput: Utf8Validator on whole messages and on messages cut in 3 pieces
 * (cuts fall inside code points for multi-byte text), against one bare isUtf8 call.
 * Run: npx tsc -p tsconfig.json && node dist/bench/utf8.js
 */
import { isUtf8 } from 'node:buffer';
import { Utf8Validator } from '../src/protocol/utf8.js';
import { formatRate, measureThroughput } from './support/measure-throughput.js';

function textOfLength(unit: string, length: number): Buffer {
  const text = Buffer.from(unit.repeat(Math.ceil(length / Buffer.byteLength(unit))));
  let end = length;
  while ((text[end]! & 0xc0) === 0x80) end--; // stay on a code point boundary
  return text.subarray(0, end);
}

function threePieces(message: Buffer): Buffer[] {
  const third = Math.floor(message.length / 3);
  return [message.subarray(0, third + 1), message.subarray(third + 1, 2 * third + 2), message.subarray(2 * third + 2)];
}

const MESSAGES: [string, Buffer][] = [
  ['64 B ASCII', textOfLength('The quick brown fox jumps over the lazy dog. ', 64)],
  ['64 B multi-byte', textOfLength('κόσμε Grüße € 😀 ', 64)],
  ['16 KiB ASCII', textOfLength('The quick brown fox jumps over the lazy dog. ', 16384)],
  ['16 KiB multi-byte', textOfLength('κόσμε Grüße € 😀 ', 16384)],
];

const validator = new Utf8Validator();
console.log('message              isUtf8   whole  3 pieces   (MB/s)');
for (const [label, message] of MESSAGES) {
  const pieces = threePieces(message);
  const bare = measureThroughput(() => isUtf8(message), message.length);
  const whole = measureThroughput(() => {
    if (!validator.push(message) || !validator.end()) throw new Error('valid text refused');
  }, message.length);
  const split = measureThroughput(() => {
    for (const piece of pieces) if (!validator.push(piece)) throw new Error('valid text refused');
    if (!validator.end()) throw new Error('valid text refused');
  }, message.length);
  console.log(`${label.padEnd(18)} ${formatRate(bare)} ${formatRate(whole)} ${formatRate(split)}`);
}
