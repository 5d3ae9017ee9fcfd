/**
 * Counts the compressed echoes in a server's byte stream from frame headers alone: payloads are
 * skipped by length, never copied or inflated (only a header split across chunks is copied, at most
 * 14 bytes), so the load generator stays cheap. A compressed echo's length depends on the server's
 * compressor, so unlike FrameCounter it checks the frame's kind, not its size.
 */

const MAX_HEADER = 14;
const FIN = 0x80;
const RSV1 = 0x40;
const OPCODE_TEXT = 0x1;
const OPCODE_CLOSE = 0x8;
const FIRST_CONTROL_OPCODE = 0x8;

function headerLength(secondByte: number): number {
  const len7 = secondByte & 0x7f;
  return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (secondByte & 0x80 ? 4 : 0);
}

export class CompressedEchoCounter {
  /** Data frames that are not a whole compressed text message: an uncompressed or fragmented echo. */
  mismatched = 0;
  /** True once the server sent a close frame: the echo has stopped. */
  closed = false;
  /** Payload bytes of the compressed echoes counted: the server's compressed size. */
  echoBytes = 0;

  private readonly partial = Buffer.alloc(MAX_HEADER);
  private partialLength = 0;
  private remaining = 0;
  private inPayload = false;
  private firstByte = 0;
  private payloadLength = 0;

  /** Feeds one chunk; returns how many compressed echoes it completed. */
  push(chunk: Buffer): number {
    let completed = 0;
    let i = 0;
    while (i < chunk.length) {
      if (this.inPayload) {
        const take = Math.min(this.remaining, chunk.length - i);
        this.remaining -= take;
        i += take;
      } else if (this.partialLength === 0 && chunk.length - i >= 2 && chunk.length - i >= headerLength(chunk[i + 1]!)) {
        this.startFrame(chunk, i);
        i += headerLength(chunk[i + 1]!);
      } else {
        i = this.collectPartialHeader(chunk, i);
        if (this.partialLength < 2 || this.partialLength < headerLength(this.partial[1]!)) continue;
        this.partialLength = 0;
        this.startFrame(this.partial, 0);
      }
      if (this.inPayload && this.remaining === 0) completed += this.finishFrame();
    }
    return completed;
  }

  /** Copies header bytes only up to the end of the header, so no payload byte is consumed. */
  private collectPartialHeader(chunk: Buffer, at: number): number {
    const target = this.partialLength < 2 ? 2 : headerLength(this.partial[1]!);
    const take = Math.min(target - this.partialLength, chunk.length - at);
    chunk.copy(this.partial, this.partialLength, at, at + take);
    this.partialLength += take;
    return at + take;
  }

  private startFrame(header: Buffer, at: number): void {
    const len7 = header[at + 1]! & 0x7f;
    this.firstByte = header[at]!;
    if (len7 === 126) this.payloadLength = header.readUInt16BE(at + 2);
    else if (len7 === 127) this.payloadLength = header.readUInt32BE(at + 2) * 2 ** 32 + header.readUInt32BE(at + 6);
    else this.payloadLength = len7;
    this.remaining = this.payloadLength;
    this.inPayload = true;
  }

  private finishFrame(): number {
    this.inPayload = false;
    const opcode = this.firstByte & 0x0f;
    if (opcode >= FIRST_CONTROL_OPCODE) {
      if (opcode === OPCODE_CLOSE) this.closed = true;
      return 0;
    }
    if (this.firstByte !== (FIN | RSV1 | OPCODE_TEXT)) {
      this.mismatched++;
      return 0;
    }
    this.echoBytes += this.payloadLength;
    return 1;
  }
}
