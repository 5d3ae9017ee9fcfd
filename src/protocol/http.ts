import { HandshakeError } from './handshake-error.js';

// HTTP/1.1 message syntax (RFC 7230) as far as the opening handshake needs it: the token and
// field-value grammar, and a bounded parser for the response head a client receives.

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Control characters other than HTAB: never allowed in a field value (this covers CR, LF, NUL). */
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;

/** RFC 7230 token: one or more tchar. */
export function isToken(value: string): boolean {
  return TOKEN.test(value);
}

/** True when `value` may be written as a header value without changing the message's framing. */
export function isFieldValue(value: string): boolean {
  return !CONTROL.test(value);
}

/** Strips optional whitespace (SP / HTAB only, as RFC 7230 OWS; String#trim strips more). */
export function trimOws(value: string): string {
  let from = 0;
  let to = value.length;
  while (from < to && isOws(value.charCodeAt(from))) from++;
  while (to > from && isOws(value.charCodeAt(to - 1))) to--;
  return from === 0 && to === value.length ? value : value.slice(from, to);
}

/** SP or HTAB. */
export function isOws(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

export interface HttpResponseHead {
  statusCode: number;
  statusMessage: string;
  httpVersion: string;
  /** Lowercase names; repeated headers joined with ", "; values decoded as latin1 (one char per byte). */
  headers: Record<string, string>;
}

const CR = 0x0d;
const LF = 0x0a;
const PREFIX = Buffer.from('HTTP/');
const STATUS_LINE = /^HTTP\/(\d\.\d) ([1-9]\d\d)(?: (.*))?$/;

/**
 * Incremental parser for the head of the server's handshake response.
 *
 * Line ends must be CRLF: a bare LF or a bare CR is an error, not a line end. Every WebSocket
 * server speaks HTTP/1.1, whose grammar requires CRLF; tolerating bare LF (which RFC 7230 3.5
 * only permits) would make the end of the head ambiguous between parsers, and a head using it
 * would otherwise only fail once maxHeadSize bytes have arrived, with a misleading message.
 *
 * Nothing beyond maxHeadSize bytes is ever buffered, and input that does not start with
 * "HTTP/" fails at once instead of waiting for a blank line that may never come.
 */
export class HttpResponseParser {
  private readonly parts: Buffer[] = [];
  private size = 0;
  /** How many bytes of the terminating CR LF CR LF the input seen so far ends with. */
  private matched = 0;
  private finished = false;

  constructor(private readonly maxHeadSize = 16384) {}

  /**
   * Feeds bytes. Returns null until the head is complete, then the head and `rest`, a view of
   * the bytes of this chunk that follow the head (the first WebSocket frames, if any).
   * Bytes of later chunks are not the parser's business: it accepts no input after that, nor
   * after it has thrown.
   */
  push(chunk: Buffer): { head: HttpResponseHead; rest: Buffer } | null {
    if (this.finished) throw new Error('HttpResponseParser: no input is accepted after the head or an error');
    try {
      return this.scan(chunk);
    } catch (err) {
      this.finished = true;
      throw err;
    }
  }

  private scan(chunk: Buffer): { head: HttpResponseHead; rest: Buffer } | null {
    const room = this.maxHeadSize - this.size;
    const n = Math.min(chunk.length, room);
    for (let i = 0; i < n; i++) {
      if (this.step(chunk[i], this.size + i)) {
        this.finished = true;
        this.parts.push(chunk.subarray(0, i + 1));
        return { head: parseHead(Buffer.concat(this.parts)), rest: chunk.subarray(i + 1) };
      }
    }
    if (n === room) {
      throw new HandshakeError(`Response head larger than ${this.maxHeadSize} bytes`);
    }
    // A copy, because the caller may reuse its buffer once push() has returned.
    this.parts.push(Buffer.from(chunk));
    this.size += n;
    return null;
  }

  /** Advances over one byte at `offset` of the head; true when it completes the head. */
  private step(byte: number, offset: number): boolean {
    if (offset < PREFIX.length && byte !== PREFIX[offset]) {
      throw new HandshakeError('Invalid response: not an HTTP/1.x response');
    }
    const afterCr = this.matched === 1 || this.matched === 3;
    if (afterCr && byte !== LF) throw new HandshakeError(`Invalid response: CR not followed by LF at byte ${offset}`);
    if (byte === CR) {
      this.matched = this.matched === 2 ? 3 : 1;
    } else if (byte === LF) {
      if (!afterCr) throw new HandshakeError(`Invalid response: bare LF line end at byte ${offset}`);
      this.matched += 1;
    } else {
      this.matched = 0;
    }
    return this.matched === 4;
  }
}

/** Parses a complete head ending in CR LF CR LF, whose line ends are known to be CRLF. */
function parseHead(bytes: Buffer): HttpResponseHead {
  const [statusLine, ...fieldLines] = bytes.toString('latin1', 0, bytes.length - 4).split('\r\n');
  const status = STATUS_LINE.exec(statusLine);
  if (status === null || !isFieldValue(status[3] ?? '')) {
    throw new HandshakeError(`Invalid response status line: ${JSON.stringify(statusLine)}`);
  }
  const headers = new Map<string, string>();
  for (const line of fieldLines) {
    const [name, value] = parseField(line);
    const previous = headers.get(name);
    headers.set(name, previous === undefined ? value : `${previous}, ${value}`);
  }
  return {
    httpVersion: status[1],
    statusCode: Number(status[2]),
    statusMessage: status[3] ?? '',
    // fromEntries defines own properties, so names like "__proto__" survive as headers.
    headers: Object.fromEntries(headers),
  };
}

function parseField(line: string): [name: string, value: string] {
  if (line.startsWith(' ') || line.startsWith('\t')) {
    throw new HandshakeError(`Invalid response header: obsolete line folding in ${JSON.stringify(line)}`);
  }
  const colon = line.indexOf(':');
  const name = line.slice(0, colon);
  if (colon < 0 || !isToken(name)) {
    throw new HandshakeError(`Invalid response header line: ${JSON.stringify(line)}`);
  }
  const value = trimOws(line.slice(colon + 1));
  if (!isFieldValue(value)) {
    throw new HandshakeError(`Invalid character in the value of response header ${name}`);
  }
  return [name.toLowerCase(), value];
}
