// Frames built by hand, for inputs our encoder would refuse to make.
import { maskInPlace } from '../../src/protocol/mask.js';

/** A raw frame with full control over every header field, for inputs the encoder would refuse to make. */
export function rawFrame(o: { fin?: boolean; rsv?: number; opcode: number; payload?: Buffer; mask?: Buffer | null; length?: number; lengthForm?: 7 | 16 | 64 }): Buffer {
  const payload = o.payload ?? Buffer.alloc(0);
  const length = o.length ?? payload.length;
  const form = o.lengthForm ?? (length < 126 ? 7 : length < 65536 ? 16 : 64);
  const head = [((o.fin ?? true) ? 0x80 : 0) | ((o.rsv ?? 0) << 4) | o.opcode];
  const maskBit = o.mask ? 0x80 : 0;
  const parts: Buffer[] = [];
  if (form === 7) head.push(maskBit | length);
  else if (form === 16) head.push(maskBit | 126, length >> 8, length & 0xff);
  else {
    head.push(maskBit | 127);
    const ext = Buffer.alloc(8);
    ext.writeBigUInt64BE(BigInt(length));
    parts.push(ext);
  }
  const masked = Buffer.from(payload);
  if (o.mask) maskInPlace(masked, o.mask);
  return Buffer.concat([Buffer.from(head), ...parts, ...(o.mask ? [o.mask] : []), masked]);
}

export const KEY = Buffer.from([0x12, 0x34, 0x56, 0x78]);
