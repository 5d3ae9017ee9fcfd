import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatExtensions, parseExtensions, type ExtensionOffer } from '../src/protocol/extensions.js';
import { HandshakeError } from '../src/protocol/handshake-error.js';

function assertMalformed(header: string | string[], pattern: RegExp = /Invalid Sec-WebSocket-Extensions header/): void {
  assert.throws(
    () => parseExtensions(header),
    (err: unknown) => err instanceof HandshakeError && err.status === 400 && pattern.test(err.message),
    `expected ${JSON.stringify(header)} to be rejected`,
  );
}

describe('parseExtensions', () => {
  test('offers sent by real browsers', () => {
    // Chrome and Safari
    assert.deepEqual(parseExtensions('permessage-deflate; client_max_window_bits'), [
      { name: 'permessage-deflate', params: { client_max_window_bits: true } },
    ]);
    // Firefox
    assert.deepEqual(parseExtensions('permessage-deflate'), [{ name: 'permessage-deflate', params: {} }]);
  });

  test('several offers with parameters (RFC 7692 section 5.1 style)', () => {
    assert.deepEqual(
      parseExtensions('permessage-deflate; client_max_window_bits, permessage-deflate; server_max_window_bits=10'),
      [
        { name: 'permessage-deflate', params: { client_max_window_bits: true } },
        { name: 'permessage-deflate', params: { server_max_window_bits: '10' } },
      ],
    );
    assert.deepEqual(
      parseExtensions('permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=15; client_max_window_bits=15'),
      [
        {
          name: 'permessage-deflate',
          params: { server_no_context_takeover: true, client_no_context_takeover: true, server_max_window_bits: '15', client_max_window_bits: '15' },
        },
      ],
    );
  });

  test('whitespace around every separator', () => {
    assert.deepEqual(parseExtensions(' \tfoo ; a = 1 ;\tb , bar\t; c="x" '), [
      { name: 'foo', params: { a: '1', b: true } },
      { name: 'bar', params: { c: 'x' } },
    ]);
  });

  test('quoted-string values are unquoted and must hold a token', () => {
    assert.deepEqual(parseExtensions('x; bits="10"'), [{ name: 'x', params: { bits: '10' } }]);
    assert.deepEqual(parseExtensions('x; bits="1\\0"'), [{ name: 'x', params: { bits: '10' } }]);
    assertMalformed('x; bits="1 0"', /quoted-string holding a token/);
    assertMalformed('x; bits=""', /quoted-string holding a token/);
    assertMalformed('x; bits="a\\"b"', /quoted-string holding a token/);
    assertMalformed('x; bits="10', /a token or a quoted-string/);
    assertMalformed('x; bits="1\r0"');
  });

  test('absent, empty and joined headers', () => {
    assert.deepEqual(parseExtensions(undefined), []);
    assert.deepEqual(parseExtensions(''), []);
    assert.deepEqual(parseExtensions(' , ,'), []);
    assert.deepEqual(parseExtensions(['a; x', 'b']), [
      { name: 'a', params: { x: true } },
      { name: 'b', params: {} },
    ]);
    assert.deepEqual(parseExtensions('a, , b,'), [
      { name: 'a', params: {} },
      { name: 'b', params: {} },
    ]);
  });

  test('a duplicate parameter within one offer is an error, across offers it is not', () => {
    assertMalformed('permessage-deflate; client_max_window_bits; client_max_window_bits=10', /second "client_max_window_bits"/);
    assertMalformed('a; x=1; x=1', /second "x"/);
    assert.equal(parseExtensions('a; x, a; x').length, 2);
    // Parameter names are case-sensitive tokens.
    assert.deepEqual(parseExtensions('a; x; X'), [{ name: 'a', params: { x: true, X: true } }]);
  });

  test('malformed headers', () => {
    for (const header of [
      'a b',
      ';a',
      'a;',
      'a;;b',
      'a; =1',
      'a; b=',
      'a; b=1=2',
      'a; b=1 2',
      'a; b c',
      'a/b',
      'per message',
      'é',
      'a; b=é',
      '"a"',
      'a\r\n; b',
      'a; b\0',
    ]) {
      assertMalformed(header);
    }
  });

  test('the error names the offset', () => {
    assert.throws(() => parseExtensions('abc; =1'), /at offset 5 of "abc; =1"/);
  });

  test('parameter names that are Object.prototype keys stay plain parameters', () => {
    const [offer] = parseExtensions('a; __proto__=1; constructor; toString');
    assert.ok(offer);
    assert.deepEqual(Object.keys(offer.params), ['__proto__', 'constructor', 'toString']);
    assert.equal(Object.getOwnPropertyDescriptor(offer.params, '__proto__')?.value, '1');
    assert.equal(Object.getPrototypeOf(offer.params), Object.prototype);
  });
});

describe('formatExtensions', () => {
  test('formats offers and parameters', () => {
    const offers: ExtensionOffer[] = [
      { name: 'permessage-deflate', params: { client_max_window_bits: true } },
      { name: 'permessage-deflate', params: { server_max_window_bits: '10', server_no_context_takeover: true } },
    ];
    const text = 'permessage-deflate; client_max_window_bits, permessage-deflate; server_max_window_bits=10; server_no_context_takeover';
    assert.equal(formatExtensions(offers), text);
    assert.deepEqual(parseExtensions(text), offers);
    assert.equal(formatExtensions([]), '');
    assert.equal(formatExtensions([{ name: 'x', params: {} }]), 'x');
  });

  test('refuses what the grammar cannot carry', () => {
    assert.throws(() => formatExtensions([{ name: 'a b', params: {} }]), TypeError);
    assert.throws(() => formatExtensions([{ name: '', params: {} }]), TypeError);
    assert.throws(() => formatExtensions([{ name: 'a', params: { 'b c': true } }]), TypeError);
    assert.throws(() => formatExtensions([{ name: 'a', params: { b: '1 0' } }]), TypeError);
    assert.throws(() => formatExtensions([{ name: 'a', params: { b: '' } }]), TypeError);
    assert.throws(() => formatExtensions([{ name: 'a', params: { b: '1\r\nX: y' } }]), TypeError);
    assert.throws(() => formatExtensions([{ name: 'a', params: { b: 10 as unknown as string } }]), TypeError);
  });
});
