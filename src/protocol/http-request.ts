import { HandshakeError } from './handshake-error.js';
import { isFieldValue, isOws, isToken, trimOws } from './http.js';

// The request side of HTTP/1.1 message syntax (RFC 9112) for a server that reads the opening
// handshake itself: a bounded, incremental parser for the request head. Errors are HandshakeErrors
// whose status is the one to answer with: 400 for bad syntax, 431 beyond the limits, 505 for an
// HTTP major version other than 1.

export interface HttpRequestHead {
  method: string;
  /** The request-target as sent; for a WebSocket client the path and query (origin-form). */
  url: string;
  /** "1.1" or "1.0" (any 1.x). */
  httpVersion: string;
  /**
   * Lowercase names; repeated lines joined with ", " (Cookie lines with "; ", RFC 6265 5.4);
   * values decoded as latin1 (one char per byte), optional whitespace trimmed.
   */
  headers: Record<string, string>;
  /** Names and values as received, alternating: [name, value, name, value, …]. */
  rawHeaders: string[];
}

export interface HttpRequestLimits {
  /** Largest head in bytes, request line to blank line, empty lines before it included; default 16 KiB. */
  maxHeadSize?: number;
  /** Most header lines; default 100. */
  maxHeaderCount?: number;
}

const CR = 0x0d;

/** Method, one SP, a request-target of visible ASCII, one SP, the version (RFC 9112 3). */
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) HTTP\/(\d)\.(\d)$/;
/** What the beginning of a request line can look like before it is complete: a method, or a CR of an empty line. */
const REQUEST_LINE_START = /^(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?: |$)|\r$)/;

/**
 * Incremental parser for the head of a client's request.
 *
 * Line ends must be CRLF: a bare LF or a bare CR is an error (RFC 9112 2.2 lets a recipient choose
 * between tolerating a bare LF and refusing it; refusing keeps the end of the head unambiguous
 * between parsers). Empty lines before the request line are skipped, as RFC 9112 2.2 asks.
 * Line folding (obs-fold) and whitespace between a header name and its colon are refused (RFC 9112
 * 5.1, 5.2), and so is a second Host line (RFC 9112 3.2).
 *
 * Each line is checked as soon as it is complete, so nothing beyond maxHeadSize bytes is ever
 * buffered and the header lines are counted as they come; input that does not start like a request
 * line (a TLS hello on a plain port, say) fails at once instead of waiting for a blank line that
 * may never come. The bytes are read as latin1 (one char per byte), so string offsets are byte offsets.
 */
export class HttpRequestParser {
  private readonly maxHeadSize: number;
  private readonly maxHeaderCount: number;
  private size = 0;
  /** The beginning of the current line, when it started in an earlier chunk. */
  private carry = '';
  /** Empty until the request line has been read. */
  private method = '';
  private url = '';
  private httpVersion = '';
  private readonly headers: Record<string, string> = {};
  private readonly rawHeaders: string[] = [];
  private finished = false;

  constructor(limits: HttpRequestLimits = {}) {
    this.maxHeadSize = limits.maxHeadSize ?? 16 * 1024;
    this.maxHeaderCount = limits.maxHeaderCount ?? 100;
  }

  /** Bytes of the head received so far. */
  get received(): number {
    return this.size;
  }

  /**
   * Feeds bytes. Returns null until the head is complete, then the head and `rest`, a view of the
   * bytes of this chunk that follow the head (WebSocket frames a client sent right behind it).
   * Later bytes are not the parser's business: it accepts no input after that, nor after it has thrown.
   */
  push(chunk: Buffer): { head: HttpRequestHead; rest: Buffer } | null {
    if (this.finished) throw new Error('HttpRequestParser: no input is accepted after the head or an error');
    try {
      return this.scan(chunk);
    } catch (err) {
      this.finished = true;
      throw err;
    }
  }

  private scan(chunk: Buffer): { head: HttpRequestHead; rest: Buffer } | null {
    const room = this.maxHeadSize - this.size;
    const n = Math.min(chunk.length, room);
    const text = chunk.toString('latin1', 0, n);
    let from = 0;
    for (let lf = text.indexOf('\n'); lf !== -1; lf = text.indexOf('\n', from)) {
      let line: string;
      if (this.carry === '') {
        if (lf === from || text.charCodeAt(lf - 1) !== CR) throw bareLf(this.size + lf);
        line = text.slice(from, lf - 1);
      } else {
        const whole = this.carry + text.slice(from, lf);
        if (whole.charCodeAt(whole.length - 1) !== CR) throw bareLf(this.size + lf);
        line = whole.slice(0, -1);
        this.carry = '';
      }
      from = lf + 1;
      if (this.line(line)) {
        this.finished = true;
        const head = { method: this.method, url: this.url, httpVersion: this.httpVersion, headers: this.headers, rawHeaders: this.rawHeaders };
        return { head, rest: chunk.subarray(from) };
      }
    }
    if (from < n) this.carry += text.slice(from);
    if (this.method === '' && this.carry !== '' && !REQUEST_LINE_START.test(this.carry)) {
      throw new HandshakeError('Invalid request: not an HTTP request line', 400);
    }
    if (n === room) throw new HandshakeError(`Request head larger than ${this.maxHeadSize} bytes`, 431);
    this.size += n;
    return null;
  }

  /** Takes one complete line, without its CRLF; true when it is the blank line that ends the head. */
  private line(line: string): boolean {
    if (this.method === '') {
      if (line !== '') this.requestLine(line);
      return false;
    }
    if (line === '') return true;
    if (this.rawHeaders.length >= 2 * this.maxHeaderCount) {
      throw new HandshakeError(`More than ${this.maxHeaderCount} request header lines`, 431);
    }
    this.field(line);
    return false;
  }

  private requestLine(line: string): void {
    const parts = REQUEST_LINE.exec(line);
    if (parts === null) throw new HandshakeError(`Invalid request line: ${quote(line)}`, 400);
    if (parts[3] !== '1') {
      throw new HandshakeError(`HTTP version ${parts[3]}.${parts[4]} not supported: the WebSocket handshake is HTTP/1.1`, 505);
    }
    this.method = parts[1]!;
    this.url = parts[2]!;
    this.httpVersion = `1.${parts[4]}`;
  }

  private field(line: string): void {
    const [name, value] = parseField(line);
    this.rawHeaders.push(name, value);
    const key = name.toLowerCase();
    const headers = this.headers;
    const previous = Object.hasOwn(headers, key) ? headers[key] : undefined;
    if (previous === undefined) {
      // A plain assignment to "__proto__" would set the prototype instead.
      if (key === '__proto__') Object.defineProperty(headers, key, { value, enumerable: true, writable: true, configurable: true });
      else headers[key] = value;
    } else if (key === 'host') {
      throw new HandshakeError('Invalid request: more than one Host header line', 400);
    } else {
      headers[key] = `${previous}${key === 'cookie' ? '; ' : ', '}${value}`;
    }
  }
}

function bareLf(offset: number): HandshakeError {
  return new HandshakeError(`Invalid request: bare LF line end at byte ${offset}`, 400);
}

function parseField(line: string): [name: string, value: string] {
  if (isOws(line.charCodeAt(0))) {
    throw new HandshakeError(`Invalid request header: obsolete line folding in ${quote(line)}`, 400);
  }
  const colon = line.indexOf(':');
  const name = colon < 0 ? '' : line.slice(0, colon);
  if (!isToken(name)) throw new HandshakeError(`Invalid request header line: ${quote(line)}`, 400);
  const value = trimOws(line.slice(colon + 1));
  if (!isFieldValue(value)) throw new HandshakeError(`Invalid character in the value of request header ${name}`, 400);
  return [name, value];
}

/** A line for an error message, which the server sends back: not the whole of a 16 KiB line. */
function quote(line: string): string {
  return JSON.stringify(line.length > 80 ? `${line.slice(0, 80)}…` : line);
}
