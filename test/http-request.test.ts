// HttpRequestParser (the standalone server's request-head parser) and requestsUpgrade, as pure code:
// every split of the input, the limits, and the ways a head can be malformed.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HandshakeError } from '../src/protocol/handshake-error.js';
import { requestsUpgrade } from '../src/protocol/handshake.js';
import { HttpRequestParser, type HttpRequestHead, type HttpRequestLimits } from '../src/protocol/http-request.js';

const HEAD =
  'GET /chat?room=7 HTTP/1.1\r\n' +
  'Host: 127.0.0.1:8080\r\n' +
  'Upgrade: websocket\r\n' +
  'Connection: keep-alive, Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
  'Sec-WebSocket-Version: 13\r\n' +
  'Cookie: a=1\r\n' +
  'X-Multi: a\r\n' +
  'cookie: b=2\r\n' +
  'x-multi:  b \t\r\n' +
  '\r\n';

const EXPECTED: HttpRequestHead = {
  method: 'GET',
  url: '/chat?room=7',
  httpVersion: '1.1',
  headers: {
    host: '127.0.0.1:8080',
    upgrade: 'websocket',
    connection: 'keep-alive, Upgrade',
    'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
    'sec-websocket-version': '13',
    cookie: 'a=1; b=2',
    'x-multi': 'a, b',
  },
  rawHeaders: [
    'Host', '127.0.0.1:8080',
    'Upgrade', 'websocket',
    'Connection', 'keep-alive, Upgrade',
    'Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version', '13',
    'Cookie', 'a=1',
    'X-Multi', 'a',
    'cookie', 'b=2',
    'x-multi', 'b',
  ],
};

/** A masked text frame "hi" and a masked ping, as a client might send right behind its request. */
const FRAMES = Buffer.from([0x81, 0x82, 1, 2, 3, 4, 0x68 ^ 1, 0x69 ^ 2, 0x89, 0x80, 1, 2, 3, 4]);

/** Feeds the chunks in order; returns the head and every byte after it (rest plus unconsumed chunks). */
function feed(chunks: Buffer[], limits?: HttpRequestLimits): { head: HttpRequestHead; after: Buffer } | null {
  const parser = new HttpRequestParser(limits);
  for (let i = 0; i < chunks.length; i++) {
    const result = parser.push(chunks[i]!);
    if (result !== null) return { head: result.head, after: Buffer.concat([result.rest, ...chunks.slice(i + 1)]) };
  }
  return null;
}

function parse(text: string): HttpRequestHead {
  const result = new HttpRequestParser().push(Buffer.from(text, 'latin1'));
  assert.ok(result, 'head should be complete');
  return result.head;
}

/** Expects the head to be refused with `status`, whole and byte by byte, at the same byte. */
function assertRejected(text: string, status: number, pattern: RegExp, limits?: HttpRequestLimits): void {
  const matches = (err: unknown) => err instanceof HandshakeError && err.status === status && pattern.test(err.message);
  assert.throws(() => new HttpRequestParser(limits).push(Buffer.from(text, 'latin1')), matches, `${JSON.stringify(text)} whole`);
  assert.throws(() => feed([...Buffer.from(text, 'latin1')].map((b) => Buffer.from([b])), limits), matches, `${JSON.stringify(text)} bytewise`);
}

describe('HttpRequestParser', () => {
  test('parses a request head: names lowercase, repeated lines joined (Cookie with "; "), raw lines kept', () => {
    assert.deepEqual(feed([Buffer.from(HEAD)]), { head: EXPECTED, after: Buffer.alloc(0) });
  });

  test('frames in the same chunk as the head are left in rest', () => {
    const result = new HttpRequestParser().push(Buffer.concat([Buffer.from(HEAD), FRAMES]));
    assert.ok(result);
    assert.deepEqual(result.head, EXPECTED);
    assert.deepEqual(result.rest, FRAMES);
  });

  test('split at every byte position', () => {
    const bytes = Buffer.concat([Buffer.from(HEAD), FRAMES]);
    for (let i = 0; i <= bytes.length; i++) {
      assert.deepEqual(feed([bytes.subarray(0, i), bytes.subarray(i)]), { head: EXPECTED, after: FRAMES }, `split at ${i}`);
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

  test('one byte at a time, empty chunks in between', () => {
    const bytes = Buffer.concat([Buffer.from(HEAD), FRAMES]);
    const chunks = [...bytes].flatMap((byte) => [Buffer.from([byte]), Buffer.alloc(0)]);
    assert.deepEqual(feed(chunks), { head: EXPECTED, after: FRAMES });
  });

  test('is not disturbed when the caller reuses its buffer', () => {
    const parser = new HttpRequestParser();
    const chunk = Buffer.from(HEAD.slice(0, 40));
    assert.equal(parser.push(chunk), null);
    chunk.fill(0x41);
    assert.deepEqual(parser.push(Buffer.from(HEAD.slice(40)))?.head, EXPECTED);
  });

  test('returns null until the blank line; received counts the bytes so far', () => {
    const parser = new HttpRequestParser();
    assert.equal(parser.received, 0);
    assert.equal(parser.push(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n')), null);
    assert.equal(parser.received, 25);
    assert.equal(parser.push(Buffer.from('\r')), null);
    assert.ok(parser.push(Buffer.from('\n')));
  });

  test('empty lines before the request line are skipped (RFC 9112 2.2)', () => {
    const bytes = Buffer.from(`\r\n\r\n\r\n${HEAD}`);
    for (let i = 0; i <= bytes.length; i++) {
      assert.deepEqual(feed([bytes.subarray(0, i), bytes.subarray(i)])?.head, EXPECTED, `split at ${i}`);
    }
  });

  test('request line variants', () => {
    assert.deepEqual(parse('GET / HTTP/1.1\r\n\r\n'), { method: 'GET', url: '/', httpVersion: '1.1', headers: {}, rawHeaders: [] });
    assert.equal(parse('GET / HTTP/1.0\r\n\r\n').httpVersion, '1.0');
    assert.equal(parse('POST /x HTTP/1.1\r\n\r\n').method, 'POST');
    assert.equal(parse("M-SEARCH!#$%&'*+.^_`|~ * HTTP/1.1\r\n\r\n").method, "M-SEARCH!#$%&'*+.^_`|~");
    assert.equal(parse('GET ws://example.com/a?b=%20c HTTP/1.1\r\n\r\n').url, 'ws://example.com/a?b=%20c');
  });

  test('an HTTP major version other than 1 gets 505', () => {
    assertRejected('GET / HTTP/2.0\r\nHost: a\r\n\r\n', 505, /HTTP version 2\.0 not supported/);
    assertRejected('GET / HTTP/0.9\r\nHost: a\r\n\r\n', 505, /HTTP version 0\.9/);
  });

  test('malformed request lines get 400', () => {
    for (const line of [
      'GET  / HTTP/1.1',
      'GET /  HTTP/1.1',
      'GET / HTTP/1.1 ',
      'GET /',
      'GET / http/1.1',
      'GET / HTTP/11',
      'GET / HTTP/1.10',
      'GET /a b HTTP/1.1',
      'GET /caf\xe9 HTTP/1.1',
      'GET /\x7f HTTP/1.1',
      'GET /\ta HTTP/1.1',
      'GET',
      'G\xc9T / HTTP/1.1',
    ]) {
      assertRejected(`${line}\r\nHost: a\r\n\r\n`, 400, /Invalid request/);
    }
  });

  test('input that does not start like a request line fails at once, without waiting for a line end', () => {
    // A TLS ClientHello on the plain port.
    assert.throws(() => new HttpRequestParser().push(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00])), /not an HTTP request line/);
    const bytewise = new HttpRequestParser();
    assert.equal(bytewise.push(Buffer.from('GE')), null);
    assert.throws(() => bytewise.push(Buffer.from('{')), (err: unknown) => err instanceof HandshakeError && err.status === 400);
    assertRejected(' GET / HTTP/1.1\r\n\r\n', 400, /Invalid request/);
    assertRejected('SSH-2.0-OpenSSH_9.6\r\n', 400, /Invalid request/);
  });

  test('malformed header lines get 400', () => {
    assertRejected('GET / HTTP/1.1\r\nNoColon\r\n\r\n', 400, /Invalid request header line/);
    assertRejected('GET / HTTP/1.1\r\n: no name\r\n\r\n', 400, /Invalid request header line/);
    assertRejected('GET / HTTP/1.1\r\nBad Name: x\r\n\r\n', 400, /Invalid request header line/);
    assertRejected('GET / HTTP/1.1\r\nName : x\r\n\r\n', 400, /Invalid request header line/);
    assertRejected('GET / HTTP/1.1\r\nN\xe4me: x\r\n\r\n', 400, /Invalid request header line/);
  });

  test('error messages quote at most 80 characters of a line', () => {
    const long = `X-Long ${'a'.repeat(1000)}`;
    assert.throws(() => parse(`GET / HTTP/1.1\r\n${long}\r\n\r\n`), (err: unknown) => {
      return err instanceof HandshakeError && err.message === `Invalid request header line: ${JSON.stringify(`${long.slice(0, 80)}…`)}`;
    });
  });

  test('obs-fold is refused', () => {
    assertRejected('GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n', 400, /obsolete line folding/);
    assertRejected('GET / HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n', 400, /obsolete line folding/);
  });

  test('a second Host line is refused; other repeated names are joined', () => {
    assertRejected('GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n', 400, /more than one Host/);
    assert.equal(parse('GET / HTTP/1.1\r\nOrigin: a\r\nOrigin: b\r\n\r\n').headers.origin, 'a, b');
  });

  test('header values: OWS trimmed, empty allowed, obs-text kept as latin1', () => {
    const head = parse('GET / HTTP/1.1\r\nA:  x y \t\r\nB:\r\nC: caf\xe9\r\nD:\t \r\n\r\n');
    assert.deepEqual(head.headers, { a: 'x y', b: '', c: 'caf\xe9', d: '' });
  });

  test('header names that are Object.prototype keys are ordinary headers', () => {
    const head = parse('GET / HTTP/1.1\r\nConstructor: a\r\n__proto__: b\r\n__proto__: c\r\nToString: d\r\n\r\n');
    assert.equal(head.headers['constructor'], 'a');
    assert.equal(head.headers['tostring'], 'd');
    assert.equal(Object.getOwnPropertyDescriptor(head.headers, '__proto__')?.value, 'b, c');
    assert.equal(Object.getPrototypeOf(head.headers), Object.prototype);
  });

  test('NUL, a bare CR and other control characters inside values are refused', () => {
    assertRejected('GET / HTTP/1.1\r\nA: b\0c\r\n\r\n', 400, /Invalid character in the value of request header A/);
    assertRejected('GET / HTTP/1.1\r\nA: b\x7fc\r\n\r\n', 400, /Invalid character/);
    assertRejected('GET / HTTP/1.1\r\nA: b\x1bc\r\n\r\n', 400, /Invalid character/);
    assertRejected('GET / HTTP/1.1\r\nA: b\rc\r\n\r\n', 400, /Invalid character in the value of request header A/);
  });

  test('bare LF line ends are refused as soon as they appear', () => {
    assertRejected('GET / HTTP/1.1\nHost: a\n\n', 400, /bare LF line end at byte 14/);
    assertRejected('GET / HTTP/1.1\r\nHost: a\n\r\n', 400, /bare LF/);
    assertRejected('GET / HTTP/1.1\r\n\n', 400, /bare LF/);
    assertRejected('\nGET / HTTP/1.1\r\n\r\n', 400, /bare LF line end at byte 0/);
    assertRejected('GET / HTTP/1.1\r\r\n\r\n', 400, /Invalid request line/);
    assertRejected('\rGET / HTTP/1.1\r\n\r\n', 400, /Invalid request/);
    const parser = new HttpRequestParser();
    assert.throws(() => parser.push(Buffer.from('GET / HTTP/1.1\n')), /bare LF/);
  });

  test('a head of exactly maxHeadSize bytes is accepted, one byte more gets 431', () => {
    const max = 100;
    const start = 'GET / HTTP/1.1\r\nX: ';
    const exact = Buffer.from(`${start}${'a'.repeat(max - start.length - 4)}\r\n\r\n`);
    assert.equal(exact.length, max);
    const over = Buffer.from(`${start}${'a'.repeat(max - start.length - 3)}\r\n\r\n`);
    assert.ok(new HttpRequestParser({ maxHeadSize: max }).push(exact));
    assert.ok(feed([...exact].map((b) => Buffer.from([b])), { maxHeadSize: max }));
    assertRejected(over.toString('latin1'), 431, /Request head larger than 100 bytes/, { maxHeadSize: max });

    // Byte by byte, the error comes with byte number maxHeadSize, before anything more is buffered.
    const parser = new HttpRequestParser({ maxHeadSize: max });
    for (let i = 0; i < max - 1; i++) assert.equal(parser.push(over.subarray(i, i + 1)), null);
    assert.throws(() => parser.push(over.subarray(max - 1, max)), /larger than 100 bytes/);
  });

  test('empty lines before the request line count against maxHeadSize', () => {
    const head = 'GET / HTTP/1.1\r\n\r\n';
    assert.ok(new HttpRequestParser({ maxHeadSize: head.length + 2 }).push(Buffer.from(`\r\n${head}`)));
    assertRejected(`\r\n\r\n${head}`, 431, /larger than/, { maxHeadSize: head.length + 2 });
  });

  test('an oversized chunk fails at once with the default limit (16 KiB)', () => {
    const parser = new HttpRequestParser();
    assert.equal(parser.push(Buffer.from('GET / HTTP/1.1\r\n')), null);
    assert.throws(() => parser.push(Buffer.alloc(1 << 20, 0x61)), /Request head larger than 16384 bytes/);
  });

  test('maxHeaderCount lines are accepted; one more gets 431 as soon as it ends', () => {
    const lines = (count: number) => Array.from({ length: count }, (_, i) => `X-${i}: v\r\n`).join('');
    assert.equal(Object.keys(parse(`GET / HTTP/1.1\r\n${lines(100)}\r\n`).headers).length, 100);
    assertRejected(`GET / HTTP/1.1\r\n${lines(101)}\r\n`, 431, /More than 100 request header lines/);
    assert.equal(new HttpRequestParser({ maxHeaderCount: 3 }).push(Buffer.from(`GET / HTTP/1.1\r\n${lines(3)}\r\n`))?.head.rawHeaders.length, 6);
    // Without the blank line: the fourth line's CRLF is enough.
    assert.throws(() => new HttpRequestParser({ maxHeaderCount: 3 }).push(Buffer.from(`GET / HTTP/1.1\r\n${lines(4)}`)), /More than 3/);
  });

  test('frame bytes after a head at the size limit are not counted against it', () => {
    const max = 64;
    const head = `GET / HTTP/1.1\r\nX: ${'a'.repeat(max - 23)}\r\n\r\n`;
    assert.equal(head.length, max);
    assert.deepEqual(new HttpRequestParser({ maxHeadSize: max }).push(Buffer.concat([Buffer.from(head), FRAMES]))?.rest, FRAMES);
  });

  test('no input is accepted after the head or after an error', () => {
    const done = new HttpRequestParser();
    assert.ok(done.push(Buffer.from(HEAD)));
    assert.throws(() => done.push(FRAMES), /no input is accepted/);
    const failed = new HttpRequestParser();
    assert.throws(() => failed.push(Buffer.from('\x00')), HandshakeError);
    assert.throws(() => failed.push(Buffer.from(HEAD)), /no input is accepted/);
  });
});

describe('requestsUpgrade', () => {
  test('an Upgrade header and the token "upgrade" in Connection, in any case and position', () => {
    assert.ok(requestsUpgrade({ upgrade: 'websocket', connection: 'Upgrade' }));
    assert.ok(requestsUpgrade({ upgrade: 'h2c', connection: 'keep-alive, UPGRADE' }));
    assert.ok(requestsUpgrade({ upgrade: '', connection: 'upgrade' }));
  });

  test('anything else is a plain request', () => {
    assert.ok(!requestsUpgrade({}));
    assert.ok(!requestsUpgrade({ upgrade: 'websocket' }));
    assert.ok(!requestsUpgrade({ upgrade: 'websocket', connection: 'keep-alive' }));
    assert.ok(!requestsUpgrade({ upgrade: 'websocket', connection: 'upgraded' }));
    assert.ok(!requestsUpgrade({ connection: 'upgrade' }));
  });
});
