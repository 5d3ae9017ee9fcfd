/**
 * Pre-compressed client frames for the permessage-deflate benchmark, so the load generator spends no
 * time in zlib: each payload is compressed once, on its own (empty window), with a sync flush.
 *
 * A message compressed from an empty window never refers back to earlier messages, so a server may
 * inflate it whether or not it keeps its inflate context between messages (RFC 7692 allows a sender
 * with context takeover not to use the window). The frames therefore suit the negotiation browsers
 * make, with context takeover, and one with client_no_context_takeover alike.
 */
import { randomBytes } from 'node:crypto';
import { constants, deflateRawSync } from 'node:zlib';

const FIN = 0x80;
const RSV1 = 0x40;
const OPCODE_TEXT = 0x1;
const MASK_BIT = 0x80;
/** The empty stored block a sync flush ends with; RFC 7692 section 7.2.1 has the sender remove it. */
const FLUSH_TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

function header(size: number): Buffer {
  const first = FIN | RSV1 | OPCODE_TEXT;
  if (size < 126) return Buffer.from([first, MASK_BIT | size]);
  if (size < 0x10000) {
    const h = Buffer.from([first, MASK_BIT | 126, 0, 0]);
    h.writeUInt16BE(size, 2);
    return h;
  }
  const h = Buffer.from([first, MASK_BIT | 127, 0, 0, 0, 0, 0, 0, 0, 0]);
  h.writeUInt32BE(size, 6);
  return h;
}

/** One text message as a masked, compressed (RSV1) frame, compressed with a 15-bit window. */
export function compressedClientFrame(payload: Buffer): Buffer {
  const deflated = deflateRawSync(payload, { finishFlush: constants.Z_SYNC_FLUSH, windowBits: 15 });
  if (!deflated.subarray(-FLUSH_TAIL.length).equals(FLUSH_TAIL)) throw new Error('sync flush did not end with 00 00 ff ff');
  const body = Buffer.from(deflated.subarray(0, -FLUSH_TAIL.length));
  const key = randomBytes(4);
  for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3]!;
  return Buffer.concat([header(body.length), key, body]);
}

/**
 * Frames laid out twice in a row, so that any run of up to `size` consecutive frames, starting at any
 * of them and wrapping around, is one slice: one write for a whole batch of resends.
 */
export class FrameRing {
  readonly size: number;
  private readonly bytes: Buffer;
  private readonly offsets: number[] = [0];

  constructor(frames: Buffer[]) {
    this.size = frames.length;
    const twice = [...frames, ...frames];
    for (const frame of twice) this.offsets.push(this.offsets.at(-1)! + frame.length);
    this.bytes = Buffer.concat(twice);
  }

  /** Frames start, start+1, … (count of them, count <= size), as one buffer. */
  slice(start: number, count: number): Buffer {
    return this.bytes.subarray(this.offsets[start]!, this.offsets[start + count]!);
  }
}
