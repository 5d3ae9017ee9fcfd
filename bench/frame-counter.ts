/**
 * Counts complete WebSocket frames in a byte stream by reading frame headers only.
 *
 * The load generator must stay far cheaper per message than any server it measures, so
 * payloads are skipped by length and never copied or unmasked; only a header split across
 * chunks is copied (at most 14 bytes). Masked frames are accepted too, because the raw TCP
 * echo sends our own masked client frames straight back.
 */

const MAX_HEADER = 14;
const OPCODE_CLOSE = 0x8;
const FIRST_CONTROL_OPCODE = 0x8;

function headerLength(secondByte: number): number {
  const len7 = secondByte & 0x7f;
  const extended = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
  return 2 + extended + (secondByte & 0x80 ? 4 : 0);
}

export class FrameCounter {
  /** Data frames that did not look like an echo of what was sent (wrong opcode, size or fragmented). */
  mismatched = 0;
  /** True once the peer sent a close frame: the echo has stopped. */
  closed = false;

  private readonly partial = Buffer.alloc(MAX_HEADER);
  private partialLength = 0;
  private remaining = 0;
  private inPayload = false;
  private opcode = 0;
  private fin = false;
  private payloadLength = 0;

  constructor(
    private readonly expectedOpcode: number,
    private readonly expectedLength: number,
  ) {}

  /** Feeds one chunk; returns how many expected echo frames it completed. */
  push(chunk: Buffer): number {
    let completed = 0;
    let i = 0;
    const end = chunk.length;
    while (i < end) {
      if (this.inPayload) {
        const take = Math.min(this.remaining, end - i);
        this.remaining -= take;
        i += take;
        if (this.remaining === 0) completed += this.finishFrame();
        continue;
      }
      if (this.partialLength === 0 && end - i >= 2) {
        const length = headerLength(chunk[i + 1]);
        if (end - i >= length) {
          this.startFrame(chunk, i);
          i += length;
          if (this.remaining === 0) completed += this.finishFrame();
          continue;
        }
      }
      i = this.collectPartialHeader(chunk, i);
      if (this.partialLength >= 2 && this.partialLength === headerLength(this.partial[1])) {
        this.partialLength = 0;
        this.startFrame(this.partial, 0);
        if (this.remaining === 0) completed += this.finishFrame();
      }
    }
    return completed;
  }

  /** Copies header bytes only up to the end of the header, so no payload byte is consumed. */
  private collectPartialHeader(chunk: Buffer, at: number): number {
    const target = this.partialLength < 2 ? 2 : headerLength(this.partial[1]);
    const take = Math.min(target - this.partialLength, chunk.length - at);
    chunk.copy(this.partial, this.partialLength, at, at + take);
    this.partialLength += take;
    return at + take;
  }

  private startFrame(header: Buffer, at: number): void {
    const first = header[at];
    const len7 = header[at + 1] & 0x7f;
    this.fin = (first & 0x80) !== 0;
    this.opcode = first & 0x0f;
    if (len7 === 126) this.payloadLength = header.readUInt16BE(at + 2);
    else if (len7 === 127) this.payloadLength = header.readUInt32BE(at + 2) * 2 ** 32 + header.readUInt32BE(at + 6);
    else this.payloadLength = len7;
    this.remaining = this.payloadLength;
    this.inPayload = true;
  }

  private finishFrame(): number {
    this.inPayload = false;
    if (this.opcode >= FIRST_CONTROL_OPCODE) {
      if (this.opcode === OPCODE_CLOSE) this.closed = true;
      return 0;
    }
    if (!this.fin || this.opcode !== this.expectedOpcode || this.payloadLength !== this.expectedLength) {
      this.mismatched++;
      return 0;
    }
    return 1;
  }
}
