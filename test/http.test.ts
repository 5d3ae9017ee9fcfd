import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HandshakeError } from '../src/protocol/handshake-error.js';
import { HttpResponseParser, isFieldValue, isToken, trimOws, type HttpResponseHead } from '../src/protocol/http.js';

const HEAD =
  'HTTP/1.1 101 Switching Protocols\r\n' +
  'Upgrade: websocket\r\n' +
  'Connection: Upgrade\r\n' +
  'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n' +
  'Sec-WebSocket-Extensions: permessage-deflate\r\n' +
  'X-Multi: a\r\n' +
  'x-multi: b\r\n' +
  '\r\n';

const EXPECTED: HttpResponseHead = {
  statusCode: 101,
  statusMessage: 'Switching Protocols',
  httpVersion: '1.1',
  headers: {
    upgrade: 'websocket',
    connection: 'Upgrade',
    'sec-websocket-accept': 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=',
    'sec-websocket-extensions': 'permessage-deflate',
    'x-multi': 'a, b',
  },
};

/** An unmasked text frame "hi" followed by a ping, as a server might send right after the head. */
const FRAMES = Buffer.from([0x81, 0x02, 0x68, 0x69, 0x89, 0x00]);

/** Feeds the chunks in order; returns the head and every byte after it (rest plus unconsumed chunks). */
function feed(chunks: Buffer[], maxHeadSize?: number): { head: HttpResponseHead; after: Buffer } | null {
  const parser = new HttpResponseParser(maxHeadSize);
  for (let i = 0; i < chunks.length; i++) {
    const result = parser.push(chunks[i]!);
    if (result !== null) return { head: result.head, after: Buffer.concat([result.rest, ...chunks.slice(i + 1)]) };
  }
  return null;
}

function parse(text: string): HttpResponseHead {
  const result = new HttpResponseParser().push(Buffer.from(text, 'latin1'));
  assert.ok(result, 'head should be complete');
  return result.head;
}

function assertRejected(text: string, pattern: RegExp): void {
  assert.throws(
    () => new HttpResponseParser().push(Buffer.from(text, 'latin1')),
    (err: unknown) => err instanceof HandshakeError && pattern.test(err.message),
    `expected ${JSON.stringify(text)} to be rejected with ${pattern}`,
  );
}

describe('HttpResponseParser', () => {
  test('parses a 101 head; names lowercase, repeated headers joined', () => {
    assert.deepEqual(feed([Buffer.from(HEAD)]), { head: EXPECTED, after: Buffer.alloc(0) });
  });

  test('a head followed by frame bytes in the same chunk leaves them in rest', () => {
    const result = new HttpResponseParser().push(Buffer.concat([Buffer.from(HEAD), FRAMES]));
    assert.ok(result);
    assert.deepEqual(result.head, EXPECTED);
    assert.deepEqual(result.rest, FRAMES);
  });

  test('split at every byte position', () => {
    const bytes = Buffer.concat([Buffer.from(HEAD), FRAMES]);
    for (let i = 0; i <= bytes.length; i++) {
      const result = feed([bytes.subarray(0, i), bytes.subarray(i)]);
      assert.deepEqual(result, { head: EXPECTED, after: FRAMES }, `split at ${i}`);
    }
  });

  test('split into three pieces at every pair of positions', () => {
    const bytes = Buffer.concat([Buffer.from(HEAD), FRAMES]);
    for (let i = 0; i <= bytes.length; i++) {
      for (let j = i; j <= bytes.length; j++) {
        const result = feed([bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)]);
        assert.deepEqual(result, { head: EXPECTED, after: FRAMES }, `split at ${i} and ${j}`);
      }
    }
  });

  test('one byte at a time', () => {
    const bytes = Buffer.concat([Buffer.from(HEAD), FRAMES]);
    const chunks = [...bytes].map((byte) => Buffer.from([byte]));
    assert.deepEqual(feed(chunks), { head: EXPECTED, after: FRAMES });
  });

  test('is not disturbed when the caller reuses its buffer', () => {
    const parser = new HttpResponseParser();
    const chunk = Buffer.from(HEAD.slice(0, 20));
    assert.equal(parser.push(chunk), null);
    chunk.fill(0x41);
    const result = parser.push(Buffer.from(HEAD.slice(20)));
    assert.deepEqual(result?.head, EXPECTED);
  });

  test('returns null until the blank line', () => {
    const parser = new HttpResponseParser();
    assert.equal(parser.push(Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n')), null);
    assert.equal(parser.push(Buffer.from('\r')), null);
    assert.equal(parser.push(Buffer.alloc(0)), null);
    assert.ok(parser.push(Buffer.from('\n')));
  });

  test('status line variants', () => {
    assert.deepEqual(parse('HTTP/1.1 404 Not Found\r\n\r\n'), { statusCode: 404, statusMessage: 'Not Found', httpVersion: '1.1', headers: {} });
    assert.equal(parse('HTTP/1.1 101 \r\n\r\n').statusMessage, '');
    assert.equal(parse('HTTP/1.1 101\r\n\r\n').statusMessage, '');
    assert.equal(parse('HTTP/1.0 200 OK\r\n\r\n').httpVersion, '1.0');
    assert.equal(parse('HTTP/1.1 426 Upgrade\tRequired\r\n\r\n').statusMessage, 'Upgrade\tRequired');
  });

  test('header values: OWS trimmed, empty allowed, obs-text kept as latin1', () => {
    const head = parse('HTTP/1.1 101 OK\r\nA:  x y \t\r\nB:\r\nC: caf\xe9\r\n\r\n');
    assert.deepEqual(head.headers, { a: 'x y', b: '', c: 'caf\xe9' });
  });

  test('header names that are Object.prototype keys are ordinary headers', () => {
    const head = parse('HTTP/1.1 101 OK\r\nConstructor: a\r\n__proto__: b\r\n__proto__: c\r\n\r\n');
    assert.equal(head.headers['constructor'], 'a');
    assert.equal(Object.getOwnPropertyDescriptor(head.headers, '__proto__')?.value, 'b, c');
  });

  test('malformed status lines', () => {
    for (const line of [
      'HTTP/1.1 abc OK',
      'HTTP/1.1 1010 OK',
      'HTTP/1.1 10 OK',
      'HTTP/1.1 099 OK',
      'HTTP/1.1  101 OK',
      'HTTP/1.1\t101 OK',
      'HTTP/11 101 OK',
      'HTTP/1.1',
      'HTTP/1.1 101 OK\0',
      'HTTP/1.1 101OK',
    ]) {
      assertRejected(`${line}\r\nUpgrade: websocket\r\n\r\n`, /Invalid response status line/);
    }
  });

  test('input that is not HTTP fails at once, without waiting for a blank line', () => {
    const parser = new HttpResponseParser();
    assert.throws(() => parser.push(Buffer.from('SSH-2.0-OpenSSH_9.6\r\n')), /not an HTTP\/1.x response/);
    const bytewise = new HttpResponseParser();
    assert.equal(bytewise.push(Buffer.from('HTT')), null);
    assert.throws(() => bytewise.push(Buffer.from('X')), /not an HTTP\/1.x response/);
    assertRejected('http/1.1 101 OK\r\n\r\n', /not an HTTP\/1.x response/);
  });

  test('malformed header lines', () => {
    assertRejected('HTTP/1.1 101 OK\r\nNoColon\r\n\r\n', /Invalid response header line/);
    assertRejected('HTTP/1.1 101 OK\r\n: no name\r\n\r\n', /Invalid response header line/);
    assertRejected('HTTP/1.1 101 OK\r\nBad Name: x\r\n\r\n', /Invalid response header line/);
    assertRejected('HTTP/1.1 101 OK\r\nName : x\r\n\r\n', /Invalid response header line/);
    assertRejected('HTTP/1.1 101 OK\r\nN\xe4me: x\r\n\r\n', /Invalid response header line/);
  });

  test('obs-fold is refused', () => {
    assertRejected('HTTP/1.1 101 OK\r\nA: b\r\n c\r\n\r\n', /obsolete line folding/);
    assertRejected('HTTP/1.1 101 OK\r\nA: b\r\n\tc\r\n\r\n', /obsolete line folding/);
  });

  test('NUL, CR and other control characters inside values are refused', () => {
    assertRejected('HTTP/1.1 101 OK\r\nA: b\0c\r\n\r\n', /Invalid character in the value of response header A/);
    assertRejected('HTTP/1.1 101 OK\r\nA: b\x7fc\r\n\r\n', /Invalid character/);
    assertRejected('HTTP/1.1 101 OK\r\nA: b\x1bc\r\n\r\n', /Invalid character/);
    assertRejected('HTTP/1.1 101 OK\r\nA: b\rc\r\n\r\n', /CR not followed by LF/);
  });

  test('bare LF line ends are refused as soon as they appear', () => {
    assertRejected('HTTP/1.1 101 OK\nUpgrade: websocket\n\n', /bare LF line end at byte 15/);
    assertRejected('HTTP/1.1 101 OK\r\nUpgrade: websocket\n\r\n', /bare LF/);
    assertRejected('HTTP/1.1 101 OK\r\n\n', /bare LF/);
    // Detected without the rest of the head having arrived.
    const parser = new HttpResponseParser();
    assert.throws(() => parser.push(Buffer.from('HTTP/1.1 101 OK\n')), /bare LF/);
    assertRejected('HTTP/1.1 101 OK\r\r\n\r\n', /CR not followed by LF/);
  });

  test('a head of exactly maxHeadSize bytes is accepted, one byte more is not', () => {
    const max = 100;
    const start = 'HTTP/1.1 101 OK\r\nX: ';
    const exact = Buffer.from(start + 'a'.repeat(max - start.length - 4) + '\r\n\r\n');
    assert.equal(exact.length, max);
    const over = Buffer.from(start + 'a'.repeat(max - start.length - 3) + '\r\n\r\n');

    assert.ok(new HttpResponseParser(max).push(exact));
    assert.ok(feed([...exact].map((b) => Buffer.from([b])), max));
    assert.throws(() => new HttpResponseParser(max).push(over), /Response head larger than 100 bytes/);

    // Byte by byte, the error comes with byte number maxHeadSize, before anything more is buffered.
    const parser = new HttpResponseParser(max);
    for (let i = 0; i < max - 1; i++) assert.equal(parser.push(over.subarray(i, i + 1)), null);
    assert.throws(() => parser.push(over.subarray(max - 1, max)), /larger than 100 bytes/);
  });

  test('an oversized chunk fails at once with the default limit', () => {
    const parser = new HttpResponseParser();
    assert.equal(parser.push(Buffer.from('HTTP/1.1 101 OK\r\n')), null);
    const huge = Buffer.alloc(1 << 20, 0x61);
    assert.throws(() => parser.push(huge), /Response head larger than 16384 bytes/);
  });

  test('frame bytes after a head at the size limit are not counted against it', () => {
    const max = 64;
    const head = 'HTTP/1.1 101 OK\r\nX: ' + 'a'.repeat(max - 24) + '\r\n\r\n';
    assert.equal(head.length, max);
    const result = new HttpResponseParser(max).push(Buffer.concat([Buffer.from(head), FRAMES]));
    assert.deepEqual(result?.rest, FRAMES);
  });

  test('no input is accepted after the head or after an error', () => {
    const done = new HttpResponseParser();
    assert.ok(done.push(Buffer.from(HEAD)));
    assert.throws(() => done.push(FRAMES), /no input is accepted/);
    const failed = new HttpResponseParser();
    assert.throws(() => failed.push(Buffer.from('nope')), HandshakeError);
    assert.throws(() => failed.push(Buffer.from(HEAD)), /no input is accepted/);
  });
});

describe('HTTP grammar helpers', () => {
  test('isToken', () => {
    for (const t of ['websocket', 'chat.v2', "a!#$%&'*+-.^_`|~9Z"]) assert.ok(isToken(t), t);
    for (const t of ['', 'a b', 'a,b', 'a/b', 'a;b', 'a=b', '"a"', 'é', 'a\tb', 'a:b', '(a)']) assert.ok(!isToken(t), t);
  });

  test('isFieldValue', () => {
    for (const v of ['', 'a b\tc', 'café', '"quoted"', '~']) assert.ok(isFieldValue(v), v);
    for (const v of ['a\r\nb', 'a\rb', 'a\nb', 'a\0b', 'a\x7fb', 'a\x1fb']) assert.ok(!isFieldValue(v), JSON.stringify(v));
  });

  test('trimOws trims only SP and HTAB', () => {
    assert.equal(trimOws(' \t a b \t '), 'a b');
    assert.equal(trimOws('\u00a0a\v'), '\u00a0a\v');
  });
});
