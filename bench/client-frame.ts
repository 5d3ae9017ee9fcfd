/**
 * Builds the one masked client frame the load generator sends over and over.
 *
 * A single random mask for the whole run is fine here: masking only has to be valid for the
 * server to unmask, and reusing one prebuilt frame keeps the sender nearly free.
 */
import { randomBytes } from 'node:crypto';

export type MessageType = 'text' | 'binary';

export const OPCODE_TEXT = 0x1;
export const OPCODE_BINARY = 0x2;

export function opcodeOf(type: MessageType): number {
  return type === 'text' ? OPCODE_TEXT : OPCODE_BINARY;
}

/** Text payloads are printable ASCII so they are valid UTF-8 for every server. */
function payload(type: MessageType, size: number): Buffer {
  const bytes = randomBytes(size);
  if (type === 'text') for (let i = 0; i < size; i++) bytes[i] = 0x61 + (bytes[i] % 26);
  return bytes;
}

function header(opcode: number, size: number): Buffer {
  const MASK_BIT = 0x80;
  if (size < 126) return Buffer.from([0x80 | opcode, MASK_BIT | size]);
  if (size < 0x10000) {
    const h = Buffer.alloc(4);
    h[0] = 0x80 | opcode;
    h[1] = MASK_BIT | 126;
    h.writeUInt16BE(size, 2);
    return h;
  }
  const h = Buffer.alloc(10);
  h[0] = 0x80 | opcode;
  h[1] = MASK_BIT | 127;
  h.writeUInt32BE(Math.floor(size / 2 ** 32), 2);
  h.writeUInt32BE(size >>> 0, 6);
  return h;
}

export function maskedClientFrame(type: MessageType, size: number): Buffer {
  const key = randomBytes(4);
  const data = payload(type, size);
  for (let i = 0; i < size; i++) data[i] ^= key[i & 3];
  return Buffer.concat([header(opcodeOf(type), size), key, data]);
}
