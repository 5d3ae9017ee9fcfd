/**
 * UTF-8 validation for text messages (RFC 6455 §8.1: invalid text fails the connection with 1007).
 *
 * Node's native `isUtf8` (simdutf) checks the bulk of each chunk; a chunk that is whole, valid text
 * costs exactly one call. Only the bytes around chunk boundaries, where a code point may be cut, go
 * through a byte-level state machine: the rest of a sequence carried over from the previous chunk,
 * and an incomplete sequence at the end of this one.
 * Running the machine on that tail rather than holding it back is what makes the check fail-fast at
 * the byte: `F4 90` is refused at the `90` even when nothing follows yet.
 */
import { isUtf8 } from 'node:buffer';

/**
 * A bulk that is only part of a chunk and shorter than this goes through the state machine too:
 * making a view for isUtf8 and the call's fixed cost (~80 ns together) outweigh ~1-2 ns a byte.
 */
const NATIVE_MIN_LENGTH = 48;

/** Whole-buffer check: true when `data` is complete, well-formed UTF-8. */
export function isValidUtf8(data: Uint8Array): boolean {
  return isUtf8(data);
}

export class Utf8Validator {
  /** Continuation bytes still expected by the sequence in progress; 0 at a code point boundary. */
  private pending = 0;
  /** Allowed range of the next continuation byte; narrower than 80..BF only right after E0, ED, F0, F4. */
  private low = 0x80;
  private high = 0xbf;
  private invalid = false;

  /** Feeds the next bytes of the message; false as soon as any byte so far cannot be part of valid UTF-8. */
  push(data: Uint8Array): boolean {
    if (this.invalid) return false;
    const length = data.length;
    let start = 0;
    while (this.pending > 0 && start < length) {
      if (!this.step(data[start])) return false;
      start++;
    }
    const tail = incompleteTailStart(data, start);
    if (start === 0 && tail === length) return isUtf8(data) || this.fail();
    let next = start;
    if (tail - start >= NATIVE_MIN_LENGTH) {
      if (!isUtf8(new Uint8Array(data.buffer, data.byteOffset + start, tail - start))) return this.fail();
      next = tail;
    }
    for (; next < length; next++) {
      if (!this.step(data[next])) return false;
    }
    return true;
  }

  /** True if all input since the last end() or reset() is valid and ends on a code point boundary; then resets. */
  end(): boolean {
    const complete = !this.invalid && this.pending === 0;
    this.reset();
    return complete;
  }

  reset(): void {
    this.pending = 0;
    this.low = 0x80;
    this.high = 0xbf;
    this.invalid = false;
  }

  /** Advances the state machine by one byte (RFC 3629 §4 table); false and sticky once invalid. */
  private step(byte: number): boolean {
    if (this.pending > 0) {
      if (byte < this.low || byte > this.high) return this.fail();
      this.pending--;
      this.low = 0x80;
      this.high = 0xbf;
      return true;
    }
    if (byte < 0x80) return true;
    if (byte < 0xc2) return this.fail(); // stray continuation byte, or overlong C0/C1 lead
    if (byte < 0xe0) {
      this.pending = 1;
    } else if (byte < 0xf0) {
      this.pending = 2;
      if (byte === 0xe0) this.low = 0xa0; // overlong below U+0800
      else if (byte === 0xed) this.high = 0x9f; // UTF-16 surrogates U+D800..U+DFFF
    } else if (byte < 0xf5) {
      this.pending = 3;
      if (byte === 0xf0) this.low = 0x90; // overlong below U+10000
      else if (byte === 0xf4) this.high = 0x8f; // beyond U+10FFFF
    } else {
      return this.fail();
    }
    return true;
  }

  private fail(): false {
    this.invalid = true;
    return false;
  }
}

/**
 * Index where the last sequence of `data[from..]` starts if that sequence is cut short by the end
 * of the chunk, else data.length. Only the last 3 bytes can hold such a start; when they are all
 * continuation bytes, they either end a sequence inside the bulk or are invalid there, and isUtf8
 * judges both.
 */
function incompleteTailStart(data: Uint8Array, from: number): number {
  const length = data.length;
  for (let i = length - 1; i >= from && i >= length - 3; i--) {
    const byte = data[i];
    if ((byte & 0xc0) !== 0x80) {
      const needed = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
      return length - i < needed ? i : length;
    }
  }
  return length;
}
