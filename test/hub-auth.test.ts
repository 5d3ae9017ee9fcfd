import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import {
  Auth, CLOCK_LEEWAY_SECONDS, DEFAULT_TOKEN_LIFETIME_SECONDS, isValidPattern, isWeakSecret, matchChannel,
  signToken, verifyToken, type AuthRequest, type Identity,
} from '../src/hub/auth.js';

const SECRET = 'a-test-secret-that-is-32-bytes-long!';
const NOW = 1_700_000_000;

const b64 = (text: string | Buffer) => Buffer.from(text).toString('base64url');

/** A token built by hand, for headers and payloads that signToken would never produce. */
function forge(header: unknown, payload: unknown, secret = SECRET): string {
  const input = `${b64(JSON.stringify(header))}.${b64(JSON.stringify(payload))}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

function reason(token: string, now = NOW, secret = SECRET): string {
  const result = verifyToken(token, secret, now);
  return result.ok ? 'ok' : result.reason;
}

/** Runs a snippet in the system python (not ours to trust: it is the independent implementation). */
function python(code: string, ...args: string[]): string {
  return execFileSync('/usr/bin/python3', ['-c', code, ...args], { encoding: 'utf8', timeout: 10_000 }).trim();
}

const PY_SIGN = `
import base64, hashlib, hmac, sys
sig = hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha256).digest()
print(base64.urlsafe_b64encode(sig).rstrip(b'=').decode())`;

const PY_MINT = `
import base64, hashlib, hmac, json, sys
enc = lambda b: base64.urlsafe_b64encode(b).rstrip(b'=').decode()
header = enc(json.dumps({"typ": "JWT", "alg": "HS256"}).encode())
payload = enc(json.dumps(json.loads(sys.argv[2])).encode())
sig = enc(hmac.new(sys.argv[1].encode(), (header + "." + payload).encode(), hashlib.sha256).digest())
print(header + "." + payload + "." + sig)`;

describe('signToken and verifyToken', () => {
  test('round trip keeps the claims and adds iat and a default exp', () => {
    const token = signToken({ sub: 'alice', publish: ['chat.*'], subscribe: ['*'], info: { name: 'Alice' } }, SECRET, { now: NOW });
    const result = verifyToken(token, SECRET, NOW);
    assert.deepEqual(result, {
      ok: true,
      claims: { sub: 'alice', publish: ['chat.*'], subscribe: ['*'], info: { name: 'Alice' }, iat: NOW, exp: NOW + DEFAULT_TOKEN_LIFETIME_SECONDS },
    });
    const header = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString());
    assert.deepEqual(header, { alg: 'HS256', typ: 'JWT' });
  });

  test('expiresInSeconds, explicit exp, explicit iat', () => {
    const a = verifyToken(signToken({ sub: 'a' }, SECRET, { now: NOW, expiresInSeconds: 60 }), SECRET, NOW);
    assert.ok(a.ok && a.claims.exp === NOW + 60 && a.claims.iat === NOW);
    const b = verifyToken(signToken({ sub: 'b', exp: NOW + 5, iat: NOW - 5 }, SECRET, { now: NOW }), SECRET, NOW);
    assert.ok(b.ok && b.claims.exp === NOW + 5 && b.claims.iat === NOW - 5);
  });

  test('signToken refuses what verifyToken would refuse, and ambiguous lifetimes', () => {
    assert.throws(() => signToken({ sub: 'a' }, ''), TypeError);
    assert.throws(() => signToken({ sub: '' }, SECRET), /sub/);
    assert.throws(() => signToken({ sub: 'a', exp: NOW }, SECRET, { expiresInSeconds: 5 }), /not both/);
    for (const bad of [0, -1, Number.NaN, Infinity]) {
      assert.throws(() => signToken({ sub: 'a' }, SECRET, { expiresInSeconds: bad }), /expiresInSeconds/);
    }
    assert.throws(() => signToken({ sub: 'a', publish: ['chat*'] }, SECRET), /pattern/);
    assert.throws(() => signToken({ sub: 'a', subscribe: ['a..b'] }, SECRET), /pattern/);
    assert.throws(() => signToken({ sub: 'a', presence: [''] }, SECRET), /pattern/);
    assert.throws(() => signToken({ sub: 'a', publish: 'chat.*' as unknown as string[] }, SECRET), /publish/);
  });

  test('a wrong secret, a tampered payload or signature: bad-signature', () => {
    const token = signToken({ sub: 'alice', publish: ['chat.*'] }, SECRET, { now: NOW });
    const [h, p, s] = token.split('.') as [string, string, string];
    assert.equal(reason(token, NOW, 'another-secret'), 'bad-signature');

    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    const escalated = b64(JSON.stringify({ ...claims, publish: ['*'] }));
    assert.equal(reason(`${h}.${escalated}.${s}`), 'bad-signature');

    const flipped = (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
    assert.equal(reason(`${h}.${p}.${flipped}`), 'bad-signature');
    assert.equal(reason(`${h}.${p}.${s.slice(0, -3)}`), 'bad-signature');
    assert.equal(reason(`${h}.${p}.`), 'bad-signature');
    const sig = Buffer.from(s, 'base64url');
    assert.equal(reason(`${h}.${p}.${b64(Buffer.concat([sig, sig]))}`), 'bad-signature');
  });

  test('alg none and every other alg are refused, even with a valid HMAC', () => {
    const payload = { sub: 'mallory', subscribe: ['*'], exp: NOW + 60 };
    for (const alg of ['none', 'None', 'NONE', 'HS512', 'HS384', 'RS256', 'ES256', 'PS256', 'hs256']) {
      const token = forge({ alg, typ: 'JWT' }, payload);
      assert.equal(reason(token), 'unsupported-alg', alg);
      const [h, p] = token.split('.');
      assert.equal(reason(`${h}.${p}.`), 'unsupported-alg', `${alg} unsigned`);
    }
    assert.equal(reason(forge({ alg: null }, payload)), 'unsupported-alg');
    assert.equal(reason(forge({ typ: 'JWT' }, payload)), 'malformed');
  });

  test('the header: typ optional and case-insensitive, nothing else allowed', () => {
    const payload = { sub: 'a', exp: NOW + 60 };
    assert.equal(reason(forge({ alg: 'HS256' }, payload)), 'ok');
    assert.equal(reason(forge({ typ: 'jwt', alg: 'HS256' }, payload)), 'ok');
    assert.equal(reason(forge({ alg: 'HS256', typ: 'JOSE' }, payload)), 'malformed');
    assert.equal(reason(forge({ alg: 'HS256', typ: 1 }, payload)), 'malformed');
    assert.equal(reason(forge({ alg: 'HS256', kid: 'k1' }, payload)), 'malformed');
    assert.equal(reason(forge({ alg: 'HS256', crit: ['exp'] }, payload)), 'malformed');
    assert.equal(reason(forge(['HS256'], payload)), 'malformed');
  });

  test('exp is required and honoured with the leeway', () => {
    const exp = NOW + 100;
    const token = signToken({ sub: 'a', exp }, SECRET, { now: NOW });
    assert.equal(reason(token, exp - 1), 'ok');
    assert.equal(reason(token, exp), 'ok');
    assert.equal(reason(token, exp + CLOCK_LEEWAY_SECONDS - 1), 'ok');
    assert.equal(reason(token, exp + CLOCK_LEEWAY_SECONDS), 'expired');
    assert.equal(reason(token, exp + 3600), 'expired');
    const expired = verifyToken(token, SECRET, exp + 3600);
    assert.ok(!expired.ok && /expired at 2023-11-14T/.test(expired.message));

    const forever = forge({ alg: 'HS256', typ: 'JWT' }, { sub: 'a', iat: NOW });
    const result = verifyToken(forever, SECRET, NOW);
    assert.ok(!result.ok && result.reason === 'malformed' && /exp/.test(result.message));
  });

  test('nbf with the leeway', () => {
    const nbf = NOW + 100;
    const token = signToken({ sub: 'a', nbf, exp: NOW + 1000 }, SECRET, { now: NOW });
    assert.equal(reason(token, nbf - CLOCK_LEEWAY_SECONDS - 1), 'not-yet-valid');
    assert.equal(reason(token, nbf - CLOCK_LEEWAY_SECONDS), 'ok');
    assert.equal(reason(token, nbf), 'ok');
  });

  test('verifyToken defaults to the real clock', () => {
    assert.ok(verifyToken(signToken({ sub: 'a' }, SECRET), SECRET).ok);
    assert.equal(verifyToken(signToken({ sub: 'a' }, SECRET, { now: NOW }), SECRET).ok, false);
  });

  test('malformed: segment count, base64url, JSON, claims', () => {
    const good = signToken({ sub: 'a' }, SECRET, { now: NOW });
    const [h, p, s] = good.split('.') as [string, string, string];
    for (const token of ['', 'abc', `${h}.${p}`, `${h}.${p}.${s}.${s}`, `${h}..${s}.`]) {
      assert.equal(reason(token), 'malformed', JSON.stringify(token));
    }
    // Characters outside base64url, padding, and spare bits that Buffer would silently accept.
    assert.equal(reason(`${h}=.${p}.${s}`), 'malformed');
    assert.equal(reason(`${h.replace(/.$/, '+')}.${p}.${s}`), 'malformed');
    assert.equal(reason(`${h}.${p}.${s.replace(/.$/, '/')}`), 'malformed');
    assert.equal(reason(`${h}.${p}.${s} `), 'malformed');
    assert.equal(reason(`${h}.${p}.${s}=`), 'malformed');
    const last = s.at(-1)!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const sameBytes = alphabet[alphabet.indexOf(last) ^ 1]!; // a 256-bit signature leaves 2 spare bits in 43 characters
    assert.equal(reason(`${h}.${p}.${s.slice(0, -1)}${sameBytes}`), 'malformed');

    const sign = (header: string, payload: string) =>
      `${header}.${payload}.${createHmac('sha256', SECRET).update(`${header}.${payload}`).digest('base64url')}`;
    assert.equal(reason(sign(b64('not json'), p)), 'malformed');
    assert.equal(reason(sign(h, b64('not json'))), 'malformed');
    assert.equal(reason(sign(h, b64('[1,2]'))), 'malformed');
    assert.equal(reason(sign(h, b64('null'))), 'malformed');
    assert.equal(reason(sign(h, b64(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])))), 'malformed');

    const claims: Array<Record<string, unknown>> = [
      { exp: NOW + 60 },
      { sub: '', exp: NOW + 60 },
      { sub: 7, exp: NOW + 60 },
      { sub: 'a', exp: String(NOW + 60) },
      { sub: 'a', exp: NOW + 60, nbf: 'soon' },
      { sub: 'a', exp: NOW + 60, iat: null },
      { sub: 'a', exp: NOW + 60, publish: 'chat.*' },
      { sub: 'a', exp: NOW + 60, subscribe: ['a', 1] },
      { sub: 'a', exp: NOW + 60, presence: {} },
    ];
    for (const payload of claims) assert.equal(reason(forge({ alg: 'HS256', typ: 'JWT' }, payload)), 'malformed', JSON.stringify(payload));
  });

  test('an invalid pattern in a signed token is kept but grants nothing', () => {
    const token = forge({ alg: 'HS256' }, { sub: 'a', exp: NOW + 60, publish: ['chat*'] });
    const result = verifyToken(token, SECRET, NOW);
    assert.ok(result.ok);
    assert.equal(matchChannel('chat*', 'chatroom'), false);
  });

  test('the secret must be a non-empty string', () => {
    assert.throws(() => verifyToken('a.b.c', ''), TypeError);
    assert.equal(isWeakSecret('S'), true);
    assert.equal(isWeakSecret(SECRET), false);
  });
});

describe('interoperability with an independent HS256 (python hmac)', () => {
  test('python computes the same signature over our signing input', () => {
    const secret = 'clé secrète ✓';
    const token = signToken({ sub: 'ünïcødé', subscribe: ['*'], info: { emoji: '🙂' } }, secret, { now: NOW });
    const [h, p, s] = token.split('.') as [string, string, string];
    assert.equal(python(PY_SIGN, secret, `${h}.${p}`), s);
  });

  test('we accept a token minted by python, with its own JSON spacing and key order', () => {
    const claims = { sub: 'bob', publish: ['chat.*'], exp: NOW + 60, iat: NOW, info: { n: 1 } };
    const token = python(PY_MINT, SECRET, JSON.stringify(claims));
    assert.ok(token.startsWith(b64('{"typ": "JWT", "alg": "HS256"}')));
    assert.deepEqual(verifyToken(token, SECRET, NOW), { ok: true, claims });
    assert.equal(reason(token, NOW, SECRET + 'x'), 'bad-signature');
  });

  test('the published jwt.io example: signature accepted, then refused for having no exp', () => {
    const token = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c';
    const result = verifyToken(token, 'your-256-bit-secret', NOW);
    assert.ok(!result.ok && result.reason === 'malformed' && /no exp/.test(result.message));
    assert.equal(reason(token, NOW, 'your-256-bit-secreT'), 'bad-signature');
    const [h, p, s] = token.split('.') as [string, string, string];
    assert.equal(python(PY_SIGN, 'your-256-bit-secret', `${h}.${p}`), s);
  });
});

describe('matchChannel', () => {
  const table: Array<[string, string, boolean]> = [
    ['chat.room1', 'chat.room1', true],
    ['chat.room1', 'chat.room2', false],
    ['chat.room1', 'Chat.room1', false],
    ['chat.room1', 'chat.room1.typing', false],
    ['chat.room1', 'chat', false],
    ['chat.*', 'chat.room1', true],
    ['chat.*', 'chat.room1.typing', true],
    ['chat.*', 'chat', false],
    ['chat.*', 'chatroom', false],
    ['chat.*', 'chatter.room1', false],
    ['chat.*', 'news.chat.room1', false],
    ['*', 'chat', true],
    ['*', 'chat.room1', true],
    ['*', 'a.b.c.d.e', true],
    ['*', '', false],
    ['*.typing', 'room1.typing', true],
    ['*.typing', 'chat.room1.typing', false],
    ['*.typing', 'typing', false],
    ['chat.*.typing', 'chat.room1.typing', true],
    ['chat.*.typing', 'chat.room1.x.typing', false],
    ['chat.*.typing', 'chat.room1', false],
    ['chat.*.*', 'chat.a.b', true],
    ['chat.*.*', 'chat.a.b.c', true],
    ['chat.*.*', 'chat.a', false],
    ['user.alice.*', 'user.alice.inbox', true],
    ['user.alice.*', 'user.alicex.inbox', false],
    // Channels with empty segments are invalid; no wildcard reaches them.
    ['*', 'chat..room', false],
    ['chat.*', 'chat.', false],
    ['*.room', '.room', false],
    // '*' inside a segment is no wildcard, and such a pattern matches nothing.
    ['chat*', 'chat*', false],
    ['chat*', 'chatroom', false],
    ['c*.room', 'chat.room', false],
    ['', '', false],
    ['chat.', 'chat.', false],
    ['**', 'chat', false],
  ];
  for (const [pattern, channel, expected] of table) {
    test(`${JSON.stringify(pattern)} ${expected ? 'matches' : 'does not match'} ${JSON.stringify(channel)}`, () => {
      assert.equal(matchChannel(pattern, channel), expected);
    });
  }

  test('isValidPattern', () => {
    for (const p of ['*', 'chat', 'chat.*', '*.x', 'a.*.b', 'a:b.c-d_e@f=g/h']) assert.equal(isValidPattern(p), true, p);
    for (const p of ['', '.', 'a.', '.a', 'a..b', 'chat*', '**', 'a.*b', '*a']) assert.equal(isValidPattern(p), false, p);
  });
});

describe('Auth#selectProtocol', () => {
  for (const auth of [new Auth(), new Auth({ secret: SECRET })]) {
    const kind = auth.open ? 'open hub' : 'secured hub';
    test(`${kind}: duplex.v1 wins over the bearer entry`, () => {
      assert.equal(auth.selectProtocol(['bearer.x.y.z', 'duplex.v1']), 'duplex.v1');
      assert.equal(auth.selectProtocol(['duplex.v1', 'bearer.x.y.z']), 'duplex.v1');
      assert.equal(auth.selectProtocol(['duplex.v1']), 'duplex.v1');
    });
    test(`${kind}: a bearer entry alone is echoed, since a browser needs one of its offers back`, () => {
      assert.equal(auth.selectProtocol(['bearer.x.y.z']), 'bearer.x.y.z');
      assert.equal(auth.selectProtocol(['other', 'bearer.x.y.z']), 'bearer.x.y.z');
    });
    test(`${kind}: nothing to select`, () => {
      assert.equal(auth.selectProtocol([]), false);
      assert.equal(auth.selectProtocol(['other', 'Bearer.x']), false);
    });
  }
});

describe('Auth', () => {
  const request = (headers: AuthRequest['headers'] = {}, url = '/ws'): AuthRequest => ({ headers, url });
  const token = (claims: { sub: string; publish?: string[]; subscribe?: string[]; presence?: string[] } = { sub: 'alice' }) =>
    signToken(claims, SECRET);
  const identityOf = (auth: Auth, req: AuthRequest): Identity => {
    const result = auth.authenticate(req);
    assert.ok(result.ok, result.ok ? '' : result.message);
    return result.identity;
  };
  const denial = (auth: Auth, req: AuthRequest): string => {
    const result = auth.authenticate(req);
    assert.ok(!result.ok, 'expected a denial');
    assert.equal(result.status, 401);
    assert.equal(result.code, 4401);
    return result.message;
  };

  describe('open hub', () => {
    const auth = new Auth();
    test('anyone is anonymous and may do anything, whatever they send', () => {
      assert.equal(auth.open, true);
      for (const req of [request(), request({ authorization: 'Bearer garbage' }), request({}, '/ws?token=x&token=y')]) {
        assert.deepEqual(auth.authenticate(req), { ok: true, identity: { id: 'anonymous', open: true } });
      }
      const anonymous = identityOf(auth, request());
      for (const action of ['publish', 'subscribe', 'history', 'presence'] as const) {
        assert.equal(auth.can(anonymous, action, 'any.channel'), true);
      }
      assert.equal(auth.expiresAt(anonymous), undefined);
    });
  });

  test('configuration mistakes are refused', () => {
    assert.throws(() => new Auth({ secret: '' }), TypeError);
    assert.throws(() => new Auth({ apiKeys: ['k'] }), /secret/);
    assert.throws(() => new Auth({ secret: SECRET, apiKeys: [''] }), TypeError);
    assert.equal(new Auth({ secret: SECRET }).open, false);
  });

  describe('with a secret', () => {
    const auth = new Auth({ secret: SECRET, apiKeys: ['first-key', 'second-key'] });

    test('a token from Authorization: Bearer, any case of the scheme', () => {
      for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
        const id = identityOf(auth, request({ authorization: `${scheme} ${token()}` }));
        assert.equal(id.id, 'alice');
        assert.equal(id.claims?.sub, 'alice');
      }
    });

    test('a token from the token query parameter', () => {
      const id = identityOf(auth, request({}, `/sse?channel=chat.a&token=${encodeURIComponent(token({ sub: 'bob' }))}`));
      assert.equal(id.id, 'bob');
    });

    test('a token from a bearer.<token> subprotocol entry, among others or in a repeated header', () => {
      const t = token({ sub: 'carol' });
      assert.equal(identityOf(auth, request({ upgrade: 'websocket', 'sec-websocket-protocol': `duplex.v1, bearer.${t}` })).id, 'carol');
      assert.equal(identityOf(auth, request({ upgrade: 'websocket', 'sec-websocket-protocol': `bearer.${t}` })).id, 'carol');
      assert.equal(identityOf(auth, request({ 'sec-websocket-protocol': ['duplex.v1', ` bearer.${t} `] })).id, 'carol');
    });

    test('no credential, a bad or expired token: 401 / 4401 with the reason', () => {
      assert.match(denial(auth, request()), /authentication required/);
      assert.match(denial(auth, request({ 'sec-websocket-protocol': 'duplex.v1' })), /authentication required/);
      assert.match(denial(auth, request({ authorization: 'Bearer' })), /Authorization.*three/);
      assert.match(denial(auth, request({ authorization: `Bearer ${signToken({ sub: 'a' }, 'other-secret')}` })), /signature/);
      assert.match(denial(auth, request({}, `/ws?token=${signToken({ sub: 'a', exp: 1000 }, SECRET, { now: 0 })}`)), /\?token.*expired/);
      assert.match(denial(auth, request({ 'sec-websocket-protocol': 'bearer.x' })), /Sec-WebSocket-Protocol/);
      const none = forge({ alg: 'none' }, { sub: 'mallory', subscribe: ['*'], exp: 9_999_999_999 }).replace(/[^.]*$/, '');
      assert.match(denial(auth, request({ authorization: `Bearer ${none}` })), /only HS256/);
    });

    test('every denial fits a WebSocket close reason, even with a hostile token', () => {
      const long = 'x'.repeat(500);
      const tokens = [
        forge({ alg: long }, { sub: 'a', exp: 9_999_999_999 }),
        forge({ alg: 'HS256', [long]: 1 }, { sub: 'a', exp: 9_999_999_999 }),
        forge({ alg: 'HS256', typ: '✓'.repeat(200) }, { sub: 'a', exp: 9_999_999_999 }),
      ];
      for (const t of tokens) assert.ok(Buffer.byteLength(denial(auth, request({ authorization: `Bearer ${t}` }))) <= 123);
      const everything = request(
        { authorization: `Bearer ${token()}`, 'x-api-key': 'k', 'sec-websocket-protocol': `bearer.${token()}` },
        `/ws?token=a&token=b&token=c`,
      );
      const message = denial(auth, everything);
      assert.match(message, /not 6 \(Authorization, X-API-Key, Sec-WebSocket-Protocol, \?token\)/);
      assert.ok(Buffer.byteLength(message) <= 123);
      assert.ok(Buffer.byteLength(denial(auth, request())) <= 123);
    });

    test('more than one credential is refused, even when each is valid', () => {
      const t = token();
      assert.match(denial(auth, request({ authorization: `Bearer ${t}` }, `/ws?token=${t}`)), /one credential/);
      assert.match(denial(auth, request({}, `/ws?token=${t}&token=${t}`)), /one credential/);
      assert.match(denial(auth, request({ 'sec-websocket-protocol': `bearer.${t}, bearer.${t}x` })), /one credential/);
      assert.match(denial(auth, request({ 'x-api-key': 'first-key', authorization: 'ApiKey first-key' })), /one credential/);
    });

    test('Authorization schemes that are not ours are ignored', () => {
      const basic = `Basic ${Buffer.from('proxy:pass').toString('base64')}`;
      assert.equal(identityOf(auth, request({ authorization: basic }, `/ws?token=${token()}`)).id, 'alice');
      assert.match(denial(auth, request({ authorization: basic })), /authentication required/);
    });

    test('API keys from X-API-Key and Authorization: ApiKey, HTTP only', () => {
      assert.deepEqual(identityOf(auth, request({ 'x-api-key': 'first-key' }, '/publish')), { id: 'apikey:1', apiKey: true });
      assert.deepEqual(identityOf(auth, request({ authorization: 'ApiKey second-key' }, '/publish')), { id: 'apikey:2', apiKey: true });
      assert.deepEqual(identityOf(auth, request({ authorization: 'apikey second-key' }, '/publish')), { id: 'apikey:2', apiKey: true });
      for (const wrong of ['first', 'first-key2', 'FIRST-KEY', 'second-key.', 'x']) {
        assert.match(denial(auth, request({ 'x-api-key': wrong })), /unknown API key/, wrong);
      }
      assert.match(denial(auth, request({ authorization: 'ApiKey' })), /unknown API key/);
      assert.match(denial(auth, request({ upgrade: 'websocket', 'x-api-key': 'first-key' })), /HTTP API/);
      assert.match(denial(auth, request({ upgrade: 'WebSocket', authorization: 'ApiKey first-key' })), /HTTP API/);
      assert.match(denial(auth, request({}, '/publish?apikey=first-key')), /authentication required/);
    });

    test('can(): granted and denied patterns', () => {
      const alice = identityOf(auth, request({ authorization: `Bearer ${token({ sub: 'alice', publish: ['chat.*'], subscribe: ['*'] })}` }));
      assert.equal(auth.can(alice, 'publish', 'chat.room1'), true);
      assert.equal(auth.can(alice, 'publish', 'chat.room1.typing'), true);
      assert.equal(auth.can(alice, 'publish', 'chat'), false);
      assert.equal(auth.can(alice, 'publish', 'news.today'), false);
      assert.equal(auth.can(alice, 'subscribe', 'news.today'), true);
      assert.equal(auth.can(alice, 'history', 'news.today'), true);
      assert.equal(auth.can(alice, 'presence', 'news.today'), true, 'presence follows subscribe when absent');
    });

    test('can(): no grants, explicit presence, several patterns', () => {
      const nobody = identityOf(auth, request({ authorization: `Bearer ${token({ sub: 'nobody' })}` }));
      for (const action of ['publish', 'subscribe', 'history', 'presence'] as const) assert.equal(auth.can(nobody, action, 'chat.a'), false);

      const dave = identityOf(auth, request({
        authorization: `Bearer ${token({ sub: 'dave', subscribe: ['chat.*', 'user.dave.*'], presence: ['chat.lobby'] })}`,
      }));
      assert.equal(auth.can(dave, 'subscribe', 'user.dave.inbox'), true);
      assert.equal(auth.can(dave, 'subscribe', 'user.erin.inbox'), false);
      assert.equal(auth.can(dave, 'history', 'user.erin.inbox'), false);
      assert.equal(auth.can(dave, 'presence', 'chat.lobby'), true);
      assert.equal(auth.can(dave, 'presence', 'chat.other'), false);
      assert.equal(auth.can(dave, 'publish', 'chat.lobby'), false);

      const hidden = identityOf(auth, request({ authorization: `Bearer ${token({ sub: 'h', subscribe: ['*'], presence: [] })}` }));
      assert.equal(auth.can(hidden, 'presence', 'chat.lobby'), false);
    });

    test('can(): an API key publishes and reads history anywhere, nothing else', () => {
      const key = identityOf(auth, request({ 'x-api-key': 'first-key' }));
      assert.equal(auth.can(key, 'publish', 'anything.at.all'), true);
      assert.equal(auth.can(key, 'history', 'anything.at.all'), true);
      assert.equal(auth.can(key, 'subscribe', 'anything.at.all'), false);
      assert.equal(auth.can(key, 'presence', 'anything.at.all'), false);
    });

    test('can(): an identity the secured hub did not issue gets nothing', () => {
      assert.equal(auth.can({ id: 'anonymous', open: true }, 'publish', 'chat.a'), false);
      assert.equal(auth.can({ id: 'x' }, 'subscribe', 'chat.a'), false);
    });

    test('expiresAt: the moment the token stops verifying', () => {
      const exp = Math.floor(Date.now() / 1000) + 120;
      const id = identityOf(auth, request({ authorization: `Bearer ${signToken({ sub: 'a', exp }, SECRET)}` }));
      assert.equal(auth.expiresAt(id), (exp + CLOCK_LEEWAY_SECONDS) * 1000);
      assert.equal(auth.expiresAt(identityOf(auth, request({ 'x-api-key': 'first-key' }))), undefined);
    });
  });
});
