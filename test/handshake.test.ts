import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { WebSocket as WsClient, WebSocketServer as WsServer } from 'ws';
import {
  acceptKey,
  acceptResponse,
  checkUpgradeRequest,
  clientRequest,
  generateKey,
  HandshakeError,
  parseTokenList,
  rejectResponse,
  verifyServerResponse,
  WS_GUID,
  type UpgradeCheck,
  type UpgradeRequest,
} from '../src/protocol/handshake.js';
import { HttpResponseParser, type HttpResponseHead } from '../src/protocol/http.js';

const SAMPLE_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const SAMPLE_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

// Compile-time check: what Node's http server hands to 'upgrade' listeners fits UpgradeRequest.
const _incomingMessageFits: (req: http.IncomingMessage) => UpgradeRequest = (req) => req;
void _incomingMessageFits;

describe('keys', () => {
  test('acceptKey on the RFC 6455 sample', () => {
    assert.equal(WS_GUID, '258EAFA5-E914-47DA-95CA-C5AB0DC85B11');
    assert.equal(acceptKey(SAMPLE_KEY), SAMPLE_ACCEPT);
  });

  test('generateKey: base64 of 16 random bytes', () => {
    const keys = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const key = generateKey();
      assert.match(key, /^[A-Za-z0-9+/]{22}==$/);
      assert.equal(Buffer.from(key, 'base64').length, 16);
      keys.add(key);
    }
    assert.equal(keys.size, 100);
  });
});

/** The request Chrome sends, as Node's http parser presents it. */
function chromeRequest(headers: Record<string, string | string[] | undefined> = {}, rest: Partial<UpgradeRequest> = {}): UpgradeRequest {
  return {
    method: 'GET',
    httpVersion: '1.1',
    url: '/chat',
    headers: {
      host: 'server.example.com',
      connection: 'Upgrade',
      upgrade: 'websocket',
      origin: 'http://example.com',
      'sec-websocket-version': '13',
      'sec-websocket-key': SAMPLE_KEY,
      'sec-websocket-extensions': 'permessage-deflate; client_max_window_bits',
      ...headers,
    },
    ...rest,
  };
}

function assertFails(check: UpgradeCheck, status: number, reason: RegExp, headers?: Record<string, string>): void {
  assert.equal(check.ok, false, 'expected the request to be refused');
  if (check.ok) return;
  assert.equal(check.status, status, check.reason);
  assert.match(check.reason, reason);
  assert.deepEqual(check.headers, headers);
}

describe('checkUpgradeRequest', () => {
  test('accepts the request of a browser', () => {
    assert.deepEqual(checkUpgradeRequest(chromeRequest()), {
      ok: true,
      key: SAMPLE_KEY,
      protocols: [],
      extensions: 'permessage-deflate; client_max_window_bits',
      origin: 'http://example.com',
    });
    // Firefox: Connection lists keep-alive too; no extensions, no origin.
    const firefox = chromeRequest({ connection: 'keep-alive, Upgrade', 'sec-websocket-extensions': undefined, origin: undefined });
    assert.deepEqual(checkUpgradeRequest(firefox), { ok: true, key: SAMPLE_KEY, protocols: [], extensions: undefined, origin: undefined });
  });

  test('method must be GET', () => {
    for (const method of ['POST', 'HEAD', 'get', undefined]) {
      assertFails(checkUpgradeRequest(chromeRequest({}, { method })), 405, /requires GET/, { Allow: 'GET' });
    }
  });

  test('HTTP/1.1 or later', () => {
    assert.ok(checkUpgradeRequest(chromeRequest({}, { httpVersion: '1.2' })).ok);
    assert.ok(checkUpgradeRequest(chromeRequest({}, { httpVersion: '2.0' })).ok);
    for (const httpVersion of ['1.0', '0.9', '', '1', '1.1.1', 'x']) {
      assertFails(checkUpgradeRequest(chromeRequest({}, { httpVersion })), 400, /requires HTTP\/1\.1 or later/);
    }
  });

  test('Host is required', () => {
    assertFails(checkUpgradeRequest(chromeRequest({ host: undefined })), 400, /Missing or empty Host header/);
    assertFails(checkUpgradeRequest(chromeRequest({ host: '' })), 400, /Missing or empty Host header/);
    assertFails(checkUpgradeRequest(chromeRequest({ host: ['a', 'b'] })), 400, /Multiple Host headers/);
  });

  test('Upgrade must contain the token "websocket"', () => {
    for (const upgrade of ['websocket', 'WebSocket', 'foo, WebSocket', 'h2c,websocket', ['foo', 'websocket']]) {
      assert.ok(checkUpgradeRequest(chromeRequest({ upgrade })).ok, JSON.stringify(upgrade));
    }
    for (const upgrade of [undefined, '', 'h2c', 'websockets', 'web socket', 'websocket/13', 'websocket;', 'foo bar, websocket']) {
      assertFails(checkUpgradeRequest(chromeRequest({ upgrade })), 400, /Upgrade header .*"websocket"/);
    }
  });

  test('Connection must contain the token "upgrade"', () => {
    for (const connection of ['Upgrade', 'upgrade', 'keep-alive, Upgrade', 'Upgrade,keep-alive', ['keep-alive', 'UPGRADE']]) {
      assert.ok(checkUpgradeRequest(chromeRequest({ connection })).ok, JSON.stringify(connection));
    }
    for (const connection of [undefined, '', 'keep-alive', 'upgrades', 'keep-alive Upgrade', 'close']) {
      assertFails(checkUpgradeRequest(chromeRequest({ connection })), 400, /Connection header .*"upgrade"/);
    }
  });

  test('Sec-WebSocket-Version must be 13: 426 when another, 400 when missing', () => {
    assert.ok(checkUpgradeRequest(chromeRequest({ 'sec-websocket-version': ' 13 ' })).ok);
    assertFails(checkUpgradeRequest(chromeRequest({ 'sec-websocket-version': undefined })), 400, /Missing Sec-WebSocket-Version/);
    for (const version of ['8', '', '13, 8', ['13', '13'], '013', '14']) {
      assertFails(checkUpgradeRequest(chromeRequest({ 'sec-websocket-version': version })), 426, /Unsupported Sec-WebSocket-Version/, {
        'Sec-WebSocket-Version': '13',
        Upgrade: 'websocket',
      });
    }
  });

  test('Sec-WebSocket-Key: one base64 encoding of 16 bytes', () => {
    const key = 'AAECAwQFBgcICQoLDA0ODw==';
    assert.equal(checkUpgradeRequest(chromeRequest({ 'sec-websocket-key': [key] })).ok, true);
    const check = checkUpgradeRequest(chromeRequest({ 'sec-websocket-key': ` ${key}\t` }));
    assert.ok(check.ok && check.key === key);
    assertFails(checkUpgradeRequest(chromeRequest({ 'sec-websocket-key': undefined })), 400, /Missing Sec-WebSocket-Key/);
    assertFails(checkUpgradeRequest(chromeRequest({ 'sec-websocket-key': [key, key] })), 400, /Multiple Sec-WebSocket-Key/);
    // How Node presents two Sec-WebSocket-Key lines.
    assertFails(checkUpgradeRequest(chromeRequest({ 'sec-websocket-key': `${key}, ${key}` })), 400, /Multiple Sec-WebSocket-Key/);
    for (const bad of [
      '',
      'abc',
      'AAECAwQFBgcICQoLDA0ODw', // unpadded
      'AAECAwQFBgcICQoLDA0ODxA=', // 17 bytes
      'AAECAwQFBgcICQoLDA0O', // 15 bytes
      'AAECAwQFBgcICQoLDA0ODw=', // broken padding
      'AAECAwQFBgcICQoLDA0OD-==', // base64url alphabet
      'AAECAwQF BgcICQoLDA0ODw==',
      'AAECAwQFBgcICQoLDA0ODw==AAAA',
    ]) {
      assertFails(checkUpgradeRequest(chromeRequest({ 'sec-websocket-key': bad })), 400, /Invalid Sec-WebSocket-Key .*base64 encoding of 16 bytes/);
    }
  });

  test('Sec-WebSocket-Protocol: a list of distinct tokens', () => {
    const protocols = (value: string | string[]): string[] => {
      const check = checkUpgradeRequest(chromeRequest({ 'sec-websocket-protocol': value }));
      assert.ok(check.ok, JSON.stringify(value));
      return check.protocols;
    };
    assert.deepEqual(protocols('chat'), ['chat']);
    assert.deepEqual(protocols('chat, superchat'), ['chat', 'superchat']);
    assert.deepEqual(protocols(' chat ,\tsuperchat '), ['chat', 'superchat']);
    assert.deepEqual(protocols(['chat', 'v2.json, mqtt']), ['chat', 'v2.json', 'mqtt']);
    assert.deepEqual(protocols('chat, , mqtt,'), ['chat', 'mqtt']);
    assert.deepEqual(protocols('Chat, chat'), ['Chat', 'chat']); // case-sensitive
    for (const bad of ['ch at', 'a/b', 'chat;q=1', '"chat"', 'é', 'a\0']) {
      assertFails(checkUpgradeRequest(chromeRequest({ 'sec-websocket-protocol': bad })), 400, /Invalid Sec-WebSocket-Protocol header/);
    }
    assertFails(checkUpgradeRequest(chromeRequest({ 'sec-websocket-protocol': 'chat, mqtt, chat' })), 400, /Duplicate subprotocol "chat"/);
    assertFails(checkUpgradeRequest(chromeRequest({ 'sec-websocket-protocol': ['chat', 'chat'] })), 400, /Duplicate subprotocol "chat"/);
  });

  test('several header lines are joined', () => {
    const check = checkUpgradeRequest(chromeRequest({ 'sec-websocket-extensions': ['a', 'b; x=1'], origin: ['http://a'] }));
    assert.ok(check.ok);
    assert.equal(check.extensions, 'a, b; x=1');
    assert.equal(check.origin, 'http://a');
  });
});

describe('parseTokenList', () => {
  test('valid lists', () => {
    assert.deepEqual(parseTokenList(undefined), []);
    assert.deepEqual(parseTokenList(''), []);
    assert.deepEqual(parseTokenList(' a ,\tb '), ['a', 'b']);
    assert.deepEqual(parseTokenList('a,,b'), ['a', 'b']);
    assert.deepEqual(parseTokenList(['a', 'b, c']), ['a', 'b', 'c']);
    assert.deepEqual(parseTokenList('a, a'), ['a', 'a']);
  });

  test('malformed lists', () => {
    for (const bad of ['a b', 'a;b', 'a/b', 'é', 'a\r\nb', '"a"', ['a', 'b c']]) assert.equal(parseTokenList(bad), null, JSON.stringify(bad));
  });
});

describe('acceptResponse', () => {
  test('the RFC 6455 sample', () => {
    assert.equal(
      acceptResponse({ key: SAMPLE_KEY }),
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${SAMPLE_ACCEPT}\r\n\r\n`,
    );
  });

  test('protocol, extensions and extra headers', () => {
    assert.equal(
      acceptResponse({
        key: SAMPLE_KEY,
        protocol: 'chat',
        extensions: 'permessage-deflate; client_max_window_bits=15',
        headers: { 'Set-Cookie': 'a=b; Path=/', 'X-Server': 'duplex café' },
      }),
      'HTTP/1.1 101 Switching Protocols\r\n' +
        'Upgrade: websocket\r\n' +
        'Connection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${SAMPLE_ACCEPT}\r\n` +
        'Sec-WebSocket-Protocol: chat\r\n' +
        'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=15\r\n' +
        'Set-Cookie: a=b; Path=/\r\n' +
        'X-Server: duplex café\r\n' +
        '\r\n',
    );
    assert.equal(acceptResponse({ key: SAMPLE_KEY, protocol: '', extensions: '' }), acceptResponse({ key: SAMPLE_KEY }));
  });

  test('refuses CR, LF and other control characters instead of writing them', () => {
    const bad: Array<Parameters<typeof acceptResponse>[0]> = [
      { key: SAMPLE_KEY, protocol: 'chat\r\nX-Injected: 1' },
      { key: SAMPLE_KEY, protocol: 'a b' },
      { key: SAMPLE_KEY, extensions: 'permessage-deflate\r\n\r\n<html>' },
      { key: SAMPLE_KEY, extensions: 'x\n' },
      { key: SAMPLE_KEY, headers: { 'X-A': 'b\r\nX-Injected: 1' } },
      { key: SAMPLE_KEY, headers: { 'X-A': 'b\rc' } },
      { key: SAMPLE_KEY, headers: { 'X-A': 'b\nc' } },
      { key: SAMPLE_KEY, headers: { 'X-A': 'b\0c' } },
      { key: SAMPLE_KEY, headers: { 'X-A\r\nX-Injected': '1' } },
      { key: SAMPLE_KEY, headers: { 'X A': '1' } },
      { key: SAMPLE_KEY, headers: { 'X-A:': '1' } },
      { key: SAMPLE_KEY, headers: { '': '1' } },
      { key: SAMPLE_KEY, headers: { 'X-A': 1 as unknown as string } },
    ];
    for (const options of bad) assert.throws(() => acceptResponse(options), TypeError, JSON.stringify(options));
  });

  test('refuses extra headers that repeat the handshake headers', () => {
    for (const name of ['Upgrade', 'connection', 'Sec-WebSocket-Accept', 'SEC-WEBSOCKET-PROTOCOL', 'Sec-WebSocket-Extensions']) {
      assert.throws(() => acceptResponse({ key: SAMPLE_KEY, headers: { [name]: 'x' } }), /set by the handshake itself/, name);
    }
  });
});

describe('rejectResponse', () => {
  test('a complete plain-text response', () => {
    assert.equal(
      rejectResponse(400, 'Missing Sec-WebSocket-Key header'),
      'HTTP/1.1 400 Bad Request\r\n' +
        'Connection: close\r\n' +
        'Content-Type: text/plain; charset=utf-8\r\n' +
        'Content-Length: 32\r\n' +
        '\r\n' +
        'Missing Sec-WebSocket-Key header',
    );
    assert.equal(
      rejectResponse(405, 'GET only', { Allow: 'GET' }),
      'HTTP/1.1 405 Method Not Allowed\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 8\r\nAllow: GET\r\n\r\nGET only',
    );
  });

  test('Content-Length counts UTF-8 bytes', () => {
    const reason = 'origine refusée ✓ 🚫';
    const response = rejectResponse(403, reason);
    assert.match(response, new RegExp(`\r\nContent-Length: ${Buffer.byteLength(reason)}\r\n`));
    assert.notEqual(Buffer.byteLength(reason), reason.length);
    assert.ok(response.endsWith(`\r\n\r\n${reason}`));
    assert.equal(rejectResponse(400, '').split('\r\n\r\n')[1], '');
  });

  test('a 426 with Upgrade lists upgrade in Connection too', () => {
    assert.equal(
      rejectResponse(426, 'v13', { 'Sec-WebSocket-Version': '13', Upgrade: 'websocket' }),
      'HTTP/1.1 426 Upgrade Required\r\n' +
        'Connection: close, Upgrade\r\n' +
        'Content-Type: text/plain; charset=utf-8\r\n' +
        'Content-Length: 3\r\n' +
        'Sec-WebSocket-Version: 13\r\n' +
        'Upgrade: websocket\r\n' +
        '\r\n' +
        'v13',
    );
  });

  test('status without standard text', () => {
    assert.ok(rejectResponse(499, 'x').startsWith('HTTP/1.1 499 \r\n'));
  });

  test('refuses bad statuses and bad headers', () => {
    for (const status of [101, 200, 299, 600, 400.5, NaN]) assert.throws(() => rejectResponse(status, 'x'), RangeError, String(status));
    for (const name of ['Content-Length', 'content-type', 'Connection', 'Transfer-Encoding']) {
      assert.throws(() => rejectResponse(400, 'x', { [name]: '1' }), /set by the handshake itself/, name);
    }
    assert.throws(() => rejectResponse(400, 'x', { 'X-A': 'a\r\nb' }), TypeError);
    assert.throws(() => rejectResponse(400, 'x', { 'X\nA': 'a' }), TypeError);
  });
});

describe('clientRequest', () => {
  test('the minimal request', () => {
    assert.equal(
      clientRequest({ host: 'server.example.com', path: '/chat', key: SAMPLE_KEY }),
      'GET /chat HTTP/1.1\r\n' +
        'Host: server.example.com\r\n' +
        'Upgrade: websocket\r\n' +
        'Connection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${SAMPLE_KEY}\r\n` +
        'Sec-WebSocket-Version: 13\r\n' +
        '\r\n',
    );
  });

  test('protocols, extensions, origin and extra headers', () => {
    assert.equal(
      clientRequest({
        host: '[::1]:8080',
        path: '/chat?room=1',
        key: SAMPLE_KEY,
        protocols: ['chat', 'superchat'],
        extensions: 'permessage-deflate; client_max_window_bits',
        origin: 'http://example.com',
        headers: { Authorization: 'Bearer x', 'User-Agent': 'duplex' },
      }),
      'GET /chat?room=1 HTTP/1.1\r\n' +
        'Host: [::1]:8080\r\n' +
        'Upgrade: websocket\r\n' +
        'Connection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${SAMPLE_KEY}\r\n` +
        'Sec-WebSocket-Version: 13\r\n' +
        'Sec-WebSocket-Protocol: chat, superchat\r\n' +
        'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n' +
        'Origin: http://example.com\r\n' +
        'Authorization: Bearer x\r\n' +
        'User-Agent: duplex\r\n' +
        '\r\n',
    );
    const minimal = clientRequest({ host: 'h', path: '/', key: SAMPLE_KEY });
    assert.equal(clientRequest({ host: 'h', path: '/', key: SAMPLE_KEY, protocols: [], extensions: '', origin: '' }), minimal);
  });

  test('subprotocols must be distinct tokens (SyntaxError, like the browser)', () => {
    for (const protocols of [['a b'], [''], ['a,b'], ['chat', 'é'], ['x\r\nY: z'], ['chat', 'mqtt', 'chat']]) {
      assert.throws(
        () => clientRequest({ host: 'h', path: '/', key: SAMPLE_KEY, protocols }),
        (err: unknown) => err instanceof DOMException && err.name === 'SyntaxError',
        JSON.stringify(protocols),
      );
    }
    assert.throws(() => clientRequest({ host: 'h', path: '/', key: SAMPLE_KEY, protocols: ['a', 'a'] }), /"a" is duplicated/);
  });

  test('refuses CR/LF and whatever else would break the head', () => {
    const base = { host: 'h', path: '/', key: SAMPLE_KEY };
    const bad: Array<Parameters<typeof clientRequest>[0]> = [
      { ...base, path: '' },
      { ...base, path: '/a b' },
      { ...base, path: '/\r\nX: y' },
      { ...base, path: '/é' },
      { ...base, host: '' },
      { ...base, host: 'h\r\nX: y' },
      { ...base, host: 'h h' },
      { ...base, key: 'short' },
      { ...base, key: `${SAMPLE_KEY}\r\nX: y` },
      { ...base, extensions: 'a\r\nX: y' },
      { ...base, origin: 'http://a\nX: y' },
      { ...base, headers: { 'X-A': 'b\r\nX-Injected: 1' } },
      { ...base, headers: { 'X-A': 'b\0' } },
      { ...base, headers: { 'X-A\r\n': 'b' } },
      { ...base, headers: { 'X A': 'b' } },
    ];
    for (const options of bad) assert.throws(() => clientRequest(options), TypeError, JSON.stringify(options));
  });

  test('refuses extra headers that repeat the handshake headers', () => {
    for (const name of ['Host', 'upgrade', 'Connection', 'Sec-WebSocket-Key', 'Sec-WebSocket-Version', 'Sec-WebSocket-Protocol', 'Sec-WebSocket-Extensions', 'Origin']) {
      assert.throws(() => clientRequest({ host: 'h', path: '/', key: SAMPLE_KEY, headers: { [name]: 'x' } }), /set by the handshake itself/, name);
    }
  });
});

describe('verifyServerResponse', () => {
  const ok = (headers: Record<string, string> = {}): { statusCode: number; headers: Record<string, string> } => ({
    statusCode: 101,
    headers: { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-accept': SAMPLE_ACCEPT, ...headers },
  });
  const without = (name: string): { statusCode: number; headers: Record<string, string> } => {
    const res = ok();
    delete res.headers[name];
    return res;
  };
  const assertRefused = (fn: () => unknown, message: RegExp): void => {
    assert.throws(fn, (err: unknown) => err instanceof HandshakeError && message.test(err.message), String(message));
  };

  test('accepts a plain 101', () => {
    assert.deepEqual(verifyServerResponse(ok(), SAMPLE_KEY, [], []), { protocol: '', extensions: '' });
    assert.deepEqual(verifyServerResponse(ok({ upgrade: 'WebSocket', connection: 'keep-alive, upgrade' }), SAMPLE_KEY, [], []), {
      protocol: '',
      extensions: '',
    });
  });

  test('status other than 101', () => {
    for (const statusCode of [200, 400, 404, 426, 500]) {
      assert.throws(
        () => verifyServerResponse({ statusCode, headers: {} }, SAMPLE_KEY, [], []),
        (err: unknown) => err instanceof HandshakeError && err.message === `Unexpected server response: ${statusCode}` && err.status === statusCode,
      );
    }
  });

  test('Upgrade and Connection', () => {
    assertRefused(() => verifyServerResponse(without('upgrade'), SAMPLE_KEY, [], []), /Invalid Upgrade header .*\(missing\)/);
    assertRefused(() => verifyServerResponse(ok({ upgrade: 'h2c' }), SAMPLE_KEY, [], []), /Invalid Upgrade header .*"h2c"/);
    assertRefused(() => verifyServerResponse(ok({ upgrade: 'websocket, h2c' }), SAMPLE_KEY, [], []), /Invalid Upgrade header/);
    assertRefused(() => verifyServerResponse(without('connection'), SAMPLE_KEY, [], []), /Invalid Connection header/);
    assertRefused(() => verifyServerResponse(ok({ connection: 'keep-alive' }), SAMPLE_KEY, [], []), /Invalid Connection header .*"keep-alive"/);
  });

  test('Sec-WebSocket-Accept', () => {
    assertRefused(() => verifyServerResponse(without('sec-websocket-accept'), SAMPLE_KEY, [], []), /Missing Sec-WebSocket-Accept/);
    assertRefused(() => verifyServerResponse(ok(), generateKey(), [], []), /Invalid Sec-WebSocket-Accept .*does not match/);
    assertRefused(() => verifyServerResponse(ok({ 'sec-websocket-accept': `${SAMPLE_ACCEPT}, ${SAMPLE_ACCEPT}` }), SAMPLE_KEY, [], []), /Invalid Sec-WebSocket-Accept/);
  });

  test('subprotocol', () => {
    assert.equal(verifyServerResponse(ok({ 'sec-websocket-protocol': 'mqtt' }), SAMPLE_KEY, ['chat', 'mqtt'], []).protocol, 'mqtt');
    assert.equal(verifyServerResponse(ok(), SAMPLE_KEY, ['chat', 'mqtt'], []).protocol, '');
    assertRefused(() => verifyServerResponse(ok({ 'sec-websocket-protocol': 'chat' }), SAMPLE_KEY, [], []), /"chat" but none was offered/);
    assertRefused(() => verifyServerResponse(ok({ 'sec-websocket-protocol': 'xmpp' }), SAMPLE_KEY, ['chat'], []), /"xmpp", which was not offered/);
    assertRefused(() => verifyServerResponse(ok({ 'sec-websocket-protocol': 'Chat' }), SAMPLE_KEY, ['chat'], []), /not offered/);
    assertRefused(() => verifyServerResponse(ok({ 'sec-websocket-protocol': 'chat, mqtt' }), SAMPLE_KEY, ['chat', 'mqtt'], []), /not offered/);
    assertRefused(() => verifyServerResponse(ok({ 'sec-websocket-protocol': '' }), SAMPLE_KEY, ['chat'], []), /not offered/);
  });

  test('extensions', () => {
    const deflate = 'permessage-deflate; client_max_window_bits=15';
    assert.deepEqual(verifyServerResponse(ok({ 'sec-websocket-extensions': deflate }), SAMPLE_KEY, [], ['permessage-deflate']), {
      protocol: '',
      extensions: deflate,
    });
    assertRefused(
      () => verifyServerResponse(ok({ 'sec-websocket-extensions': 'x-webkit-deflate-frame' }), SAMPLE_KEY, [], ['permessage-deflate']),
      /extension "x-webkit-deflate-frame", which was not offered/,
    );
    assertRefused(() => verifyServerResponse(ok({ 'sec-websocket-extensions': 'permessage-deflate' }), SAMPLE_KEY, [], []), /not offered/);
    assertRefused(
      () => verifyServerResponse(ok({ 'sec-websocket-extensions': 'permessage-deflate, permessage-deflate' }), SAMPLE_KEY, [], ['permessage-deflate']),
      /more than once/,
    );
    assert.throws(
      () => verifyServerResponse(ok({ 'sec-websocket-extensions': 'permessage-deflate;' }), SAMPLE_KEY, [], ['permessage-deflate']),
      (err: unknown) => err instanceof HandshakeError && err.status === undefined && /in the server response$/.test(err.message),
    );
  });

  test('round trip with acceptResponse and HttpResponseParser', () => {
    const text = acceptResponse({ key: SAMPLE_KEY, protocol: 'chat', extensions: 'permessage-deflate' });
    const parsed = new HttpResponseParser().push(Buffer.from(text));
    assert.ok(parsed);
    assert.deepEqual(verifyServerResponse(parsed.head, SAMPLE_KEY, ['chat'], ['permessage-deflate']), {
      protocol: 'chat',
      extensions: 'permessage-deflate',
    });
  });
});

// Against real peers over 127.0.0.1: Node's own request parser and the `ws` package.

const TIMEOUT_MS = 5000;

function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Sends `request` on a raw socket; resolves with the response head and the bytes that followed
 * it, once `minRest` of them arrived or the server ended the connection.
 */
async function rawHandshake(port: number, request: string, minRest = Infinity): Promise<{ head: HttpResponseHead; rest: Buffer }> {
  const socket = net.connect(port, '127.0.0.1');
  try {
    return await within(
      new Promise((resolve, reject) => {
        const parser = new HttpResponseParser();
        let result: { head: HttpResponseHead; rest: Buffer } | null = null;
        socket.on('error', reject);
        socket.on('end', () => (result === null ? reject(new Error('connection ended before the head')) : resolve(result)));
        socket.on('data', (chunk: Buffer) => {
          try {
            if (result === null) result = parser.push(chunk);
            else result.rest = Buffer.concat([result.rest, chunk]);
          } catch (err) {
            reject(err);
          }
          if (result !== null && result.rest.length >= minRest) resolve(result);
        });
        socket.write(request);
      }),
      'raw handshake',
    );
  } finally {
    socket.destroy();
  }
}

/** An http server whose upgrades are answered by checkUpgradeRequest / acceptResponse / rejectResponse. */
async function startHandshakeServer(): Promise<{ port: number; requests: http.IncomingMessage[]; stop: () => Promise<void> }> {
  const requests: http.IncomingMessage[] = [];
  // Upgraded sockets are no longer the http server's to close, yet close() waits for them.
  const upgraded = new Set<net.Socket>();
  const server = http.createServer((_req, res) => res.writeHead(426).end());
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
    requests.push(req);
    upgraded.add(socket);
    const check = checkUpgradeRequest(req);
    if (!check.ok) {
      socket.end(rejectResponse(check.status, check.reason, check.headers));
      return;
    }
    const protocol = check.protocols.find((p) => p === 'chat');
    socket.write(acceptResponse({ key: check.key, protocol }));
    // An unmasked text frame "hi" in the same write as the head, then a normal close (1000).
    socket.end(Buffer.from([0x81, 0x02, 0x68, 0x69, 0x88, 0x02, 0x03, 0xe8]));
  });
  server.listen(0, '127.0.0.1');
  await within(once(server, 'listening'), 'listen');
  const stop = (): Promise<void> => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    for (const socket of upgraded) socket.destroy();
    return within(closed, 'server close');
  };
  return { port: (server.address() as AddressInfo).port, requests, stop };
}

describe('interoperability over 127.0.0.1', () => {
  test('the ws client completes a handshake answered by acceptResponse', async () => {
    const { port, stop } = await startHandshakeServer();
    const client = new WsClient(`ws://127.0.0.1:${port}/x`, ['mqtt', 'chat']);
    try {
      const [message] = await within(once(client, 'message') as Promise<[Buffer]>, 'ws client message');
      assert.equal(client.protocol, 'chat');
      assert.equal(message.toString(), 'hi');
    } finally {
      client.terminate();
      await stop();
    }
  });

  test("Node's request parser output passes checkUpgradeRequest; refusals are readable responses", async () => {
    const { port, requests, stop } = await startHandshakeServer();
    try {
      const key = generateKey();
      const request = clientRequest({ host: `127.0.0.1:${port}`, path: '/x', key, protocols: ['chat'], origin: 'http://localhost' });
      const { head, rest } = await rawHandshake(port, request);
      assert.deepEqual(verifyServerResponse(head, key, ['chat'], []), { protocol: 'chat', extensions: '' });
      assert.deepEqual(rest, Buffer.from([0x81, 0x02, 0x68, 0x69, 0x88, 0x02, 0x03, 0xe8]));
      assert.equal(requests[0]?.headers.origin, 'http://localhost');

      const old = request.replace('Sec-WebSocket-Version: 13', 'Sec-WebSocket-Version: 8');
      const refused = await rawHandshake(port, old);
      assert.equal(refused.head.statusCode, 426);
      assert.equal(refused.head.headers['sec-websocket-version'], '13');
      assert.equal(refused.head.headers['content-length'], String(refused.rest.length));
      assert.match(refused.rest.toString(), /Unsupported Sec-WebSocket-Version "8"/);
      assert.throws(() => verifyServerResponse(refused.head, key, [], []), /Unexpected server response: 426/);

      // Node joins the two key lines; the check sees through it.
      const twoKeys = request.replace('\r\n\r\n', `\r\nSec-WebSocket-Key: ${generateKey()}\r\n\r\n`);
      const doubled = await rawHandshake(port, twoKeys);
      assert.equal(doubled.head.statusCode, 400);
      assert.match(doubled.rest.toString(), /Multiple Sec-WebSocket-Key headers/);
    } finally {
      await stop();
    }
  });

  test('clientRequest, HttpResponseParser and verifyServerResponse against a ws server', async () => {
    const wss = new WsServer({ port: 0, host: '127.0.0.1', perMessageDeflate: true });
    wss.on('connection', (ws) => ws.send('welcome'));
    try {
      await within(once(wss, 'listening'), 'ws server listening');
      const port = (wss.address() as AddressInfo).port;
      const key = generateKey();
      const request = clientRequest({
        host: `127.0.0.1:${port}`,
        path: '/',
        key,
        protocols: ['chat', 'mqtt'],
        extensions: 'permessage-deflate; client_max_window_bits',
      });
      const { head, rest } = await rawHandshake(port, request, 2);
      const { protocol, extensions } = verifyServerResponse(head, key, ['chat', 'mqtt'], ['permessage-deflate']);
      assert.equal(protocol, 'chat');
      assert.match(extensions, /^permessage-deflate\b/);
      // The first frame: FIN + text opcode (RSV1 when compressed), unmasked from a server.
      assert.equal(rest[0]! & 0x8f, 0x81);
      assert.equal(rest[1]! & 0x80, 0);
    } finally {
      for (const client of wss.clients) client.terminate();
      await within(new Promise<void>((resolve) => wss.close(() => resolve())), 'ws server close');
    }
  });
});
