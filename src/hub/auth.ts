// Who may do what on the hub: HS256 JSON Web Tokens (RFC 7519 signed as in RFC 7515), API keys for the
// HTTP publish API, and the channel patterns that tokens grant. Pure code: no I/O, no clock unless the
// caller leaves `now` out.
//
// Channel patterns. A channel name is segments separated by '.' ('chat.room1'). A pattern is a channel
// name in which a whole segment may be '*':
//   - a final '*' matches one or more segments: 'chat.*' matches 'chat.room1' and 'chat.room1.typing'
//     (but not 'chat' itself), and the pattern '*' matches every channel;
//   - a '*' anywhere else matches exactly one segment: 'chat.*.typing' matches 'chat.room1.typing' only;
//   - any other segment matches itself, case-sensitively.
// A trailing '*' takes the rest because a grant of 'chat.*' reads as "everything under chat" and '*' as
// "everything", which is what `duplex token --subscribe '*'` has to mean. '*' inside a segment ('chat*')
// is no wildcard: signToken refuses such a pattern and matchChannel matches nothing with it, so a typo
// can narrow a grant but never widen it.
//
// Tokens. Only the header {"alg":"HS256"}, optionally with "typ":"JWT", is accepted: 'none', the other
// HMACs and every public-key algorithm are refused, so a token never chooses how it is checked. Every
// token must carry `exp`: the hub keeps no revocation list, so a token without one would stay valid until
// the secret changes. exp and nbf get CLOCK_LEEWAY_SECONDS of slack for clocks that disagree between the
// machine that minted the token and the hub.
//
// Credentials in a request (header names in lowercase, as node gives them), at most one per request:
//   Authorization: Bearer <jwt>              HTTP requests and WebSocket upgrades from non-browsers
//   Sec-WebSocket-Protocol: bearer.<jwt>     browser WebSockets, which cannot set headers:
//                                            new WebSocket(url, ['duplex.v1', 'bearer.' + jwt]);
//                                            the server answers with Auth#selectProtocol
//   ?token=<jwt>                             clients that cannot set headers (a browser's EventSource);
//                                            it ends up in access logs, so our client library never uses it
//   Authorization: ApiKey <key>, X-API-Key   backends on the HTTP API only, refused on an upgrade
// Two credentials in one request are refused rather than ranked, since whichever rank we chose, a client
// would sooner or later be judged by the one it did not mean.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export interface Claims {
  sub: string;
  exp?: number;
  iat?: number;
  nbf?: number;
  /** Channel patterns this token may publish to. */
  publish?: string[];
  /** Channel patterns this token may subscribe to and read the history of. */
  subscribe?: string[];
  /** Channel patterns whose presence this token may see; without the claim, those of `subscribe`. */
  presence?: string[];
  /** Carried to presence and to the application; the hub does not read it. */
  info?: unknown;
}

export type VerifyResult =
  | { ok: true; claims: Claims }
  | { ok: false; reason: 'malformed' | 'bad-signature' | 'expired' | 'not-yet-valid' | 'unsupported-alg'; message: string };

export type Action = 'publish' | 'subscribe' | 'history' | 'presence';

export interface Identity {
  /** The token's sub, 'anonymous' on an open hub, or 'apikey:<n>' (the key's 1-based place in the configuration). */
  id: string;
  claims?: Claims;
  apiKey?: boolean;
  open?: boolean;
}

export interface AuthOptions {
  /** The HS256 secret; without one the hub is open. */
  secret?: string;
  /** Keys for the HTTP API; they need a secret, since without one everyone may publish anyway. */
  apiKeys?: string[];
}

export interface AuthRequest {
  headers: Record<string, string | string[] | undefined>;
  url: string;
}

export type AuthResult =
  | { ok: true; identity: Identity }
  | { ok: false; status: 401; code: 4401; message: string };

export const CLOCK_LEEWAY_SECONDS = 30;
/** Lifetime of a token minted without exp or expiresInSeconds. */
export const DEFAULT_TOKEN_LIFETIME_SECONDS = 60 * 60;
/** RFC 7518 3.2: an HS256 key must be at least as long as the hash. */
export const MIN_SECRET_BYTES = 32;
/** The value of WWW-Authenticate for a 401 (RFC 7235 asks for one). */
export const CHALLENGE = 'Bearer realm="duplex"';
/** The Sec-WebSocket-Protocol entry that carries a token: bearer.<jwt>. */
export const BEARER_PROTOCOL_PREFIX = 'bearer.';
/** The subprotocol a client may offer next to its bearer entry, so the server has something else to echo. */
export const HUB_SUBPROTOCOL = 'duplex.v1';

const WILDCARD = '*';
const HEADER = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
const BASE64URL = /^[A-Za-z0-9_-]*$/;
const SIGNATURE_BYTES = 32;

// ---- channel patterns ----

export function isValidPattern(pattern: string): boolean {
  if (pattern === '') return false;
  return pattern.split('.').every((segment) => segment !== '' && (segment === WILDCARD || !segment.includes(WILDCARD)));
}

export function matchChannel(pattern: string, channel: string): boolean {
  if (!isValidPattern(pattern)) return false;
  const want = pattern.split('.');
  const have = channel.split('.');
  const last = want.length - 1;
  if (want[last] === WILDCARD ? have.length < want.length : have.length !== want.length) return false;
  if (have.some((segment) => segment === '')) return false;
  return want.every((segment, i) => segment === WILDCARD || segment === have[i]);
}

// ---- tokens ----

export function signToken(
  claims: Omit<Claims, 'iat'> & { iat?: number },
  secret: string,
  options: { expiresInSeconds?: number; now?: number } = {},
): string {
  requireSecret(secret);
  const now = options.now ?? nowSeconds();
  const { expiresInSeconds } = options;
  if (claims.exp !== undefined && expiresInSeconds !== undefined) {
    throw new TypeError('give either claims.exp or expiresInSeconds, not both');
  }
  if (expiresInSeconds !== undefined && !(Number.isFinite(expiresInSeconds) && expiresInSeconds > 0)) {
    throw new TypeError(`expiresInSeconds must be a positive number, not ${String(expiresInSeconds)}`);
  }
  const full: Claims = {
    ...claims,
    iat: claims.iat ?? now,
    exp: claims.exp ?? now + (expiresInSeconds ?? DEFAULT_TOKEN_LIFETIME_SECONDS),
  };
  const problem = claimsProblem(full);
  if (problem) throw new TypeError(problem);
  const badPattern = [...(full.publish ?? []), ...(full.subscribe ?? []), ...(full.presence ?? [])]
    .find((p) => !isValidPattern(p));
  if (badPattern !== undefined) {
    throw new TypeError(`invalid channel pattern ${JSON.stringify(badPattern)}: use dot-separated segments, '*' only as a whole segment`);
  }
  const input = `${HEADER}.${base64url(JSON.stringify(full))}`;
  return `${input}.${hmac(secret, input).toString('base64url')}`;
}

/** Checks a token against the secret and the clock; `now` is in seconds since the epoch. Never throws on the token. */
export function verifyToken(token: string, secret: string, now: number = nowSeconds()): VerifyResult {
  requireSecret(secret);
  const parts = token.split('.');
  if (parts.length !== 3) return malformed(`a token has three dot-separated parts, this one has ${parts.length}`);
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
  const header = decodeJson(headerPart, 'header');
  if (typeof header === 'string') return malformed(header);
  const headerProblem = checkHeader(header);
  if (headerProblem) return headerProblem;

  const signature = decode(signaturePart);
  if (signature === null) return malformed('the signature is not base64url');
  const expected = hmac(secret, `${headerPart}.${payloadPart}`);
  if (signature.length !== SIGNATURE_BYTES || !timingSafeEqual(signature, expected)) {
    return { ok: false, reason: 'bad-signature', message: 'the signature does not match' };
  }

  // Only now, with the signature good, is the payload worth reading.
  const payload = decodeJson(payloadPart, 'payload');
  if (typeof payload === 'string') return malformed(payload);
  const problem = claimsProblem(payload);
  if (problem) return malformed(problem);
  const claims = payload as unknown as Claims;
  if (claims.exp === undefined) return malformed('the token has no exp claim; hub tokens must expire');
  if (now >= claims.exp + CLOCK_LEEWAY_SECONDS) {
    return { ok: false, reason: 'expired', message: `the token expired at ${isoTime(claims.exp)}` };
  }
  if (claims.nbf !== undefined && now < claims.nbf - CLOCK_LEEWAY_SECONDS) {
    return { ok: false, reason: 'not-yet-valid', message: `the token is not valid before ${isoTime(claims.nbf)}` };
  }
  return { ok: true, claims };
}

function checkHeader(header: Record<string, unknown>): Extract<VerifyResult, { ok: false }> | null {
  if (!('alg' in header)) return malformed('the header has no alg');
  if (header.alg !== 'HS256') {
    return { ok: false, reason: 'unsupported-alg', message: `alg ${quote(header.alg)} is refused: only HS256 is accepted` };
  }
  const extra = Object.keys(header).find((key) => key !== 'alg' && key !== 'typ');
  if (extra !== undefined) return malformed(`the header parameter ${quote(extra)} is not supported`);
  // typ is a media type, and those compare case-insensitively (RFC 7519 5.1).
  if ('typ' in header && (typeof header.typ !== 'string' || header.typ.toUpperCase() !== 'JWT')) {
    return malformed(`typ ${quote(header.typ)} is not JWT`);
  }
  return null;
}

/** What is wrong with a claims object, or null; shared by signing and verifying so both hold the same rules. */
function claimsProblem(claims: Record<string, unknown> | Claims): string | null {
  const c = claims as Record<string, unknown>;
  if (typeof c.sub !== 'string' || c.sub === '') return 'sub must be a non-empty string';
  for (const name of ['exp', 'iat', 'nbf'] as const) {
    const value = c[name];
    if (value !== undefined && !(typeof value === 'number' && Number.isFinite(value))) return `${name} must be a number of seconds`;
  }
  for (const name of ['publish', 'subscribe', 'presence'] as const) {
    const value = c[name];
    if (value !== undefined && !(Array.isArray(value) && value.every((p) => typeof p === 'string'))) {
      return `${name} must be an array of channel patterns`;
    }
  }
  return null;
}

function decodeJson(part: string, what: string): Record<string, unknown> | string {
  const bytes = decode(part);
  if (bytes === null) return `the ${what} is not base64url`;
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    return `the ${what} is not UTF-8 JSON`;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return `the ${what} is not a JSON object`;
  return value as Record<string, unknown>;
}

/**
 * Strict base64url: Buffer's decoder skips characters it does not know and ignores spare bits, so the
 * alphabet is checked first and the result must encode back to the very same text (JWS forbids padding).
 */
function decode(part: string): Buffer | null {
  if (!BASE64URL.test(part)) return null;
  const bytes = Buffer.from(part, 'base64url');
  return bytes.toString('base64url') === part ? bytes : null;
}

function base64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

function hmac(secret: string, input: string): Buffer {
  return createHmac('sha256', secret).update(input, 'ascii').digest();
}

/** A value from the token, shortened: messages end up in close frames, whose reason is small. */
function quote(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 24 ? `${text.slice(0, 20)}...` : text;
}

function malformed(message: string): Extract<VerifyResult, { ok: false }> {
  return { ok: false, reason: 'malformed', message };
}

function requireSecret(secret: string): void {
  if (typeof secret !== 'string' || secret === '') throw new TypeError('the token secret must be a non-empty string');
}

/** Whether a secret is shorter than RFC 7518 asks for HS256; for the CLI to warn about. */
export function isWeakSecret(secret: string): boolean {
  return Buffer.byteLength(secret) < MIN_SECRET_BYTES;
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function isoTime(seconds: number): string {
  const date = new Date(seconds * 1000);
  return Number.isNaN(date.getTime()) ? String(seconds) : date.toISOString();
}

// ---- requests ----

interface Credential {
  kind: 'token' | 'apikey';
  source: string;
  value: string;
}

function credentials(input: AuthRequest): Credential[] {
  const found: Credential[] = [];
  for (const value of values(input.headers.authorization)) {
    const space = value.indexOf(' ');
    const scheme = (space === -1 ? value : value.slice(0, space)).toLowerCase();
    const rest = space === -1 ? '' : value.slice(space + 1).trim();
    // Other schemes (Basic from a proxy in front, say) are not ours to judge.
    if (scheme === 'bearer') found.push({ kind: 'token', source: 'Authorization', value: rest });
    if (scheme === 'apikey') found.push({ kind: 'apikey', source: 'Authorization', value: rest });
  }
  for (const value of values(input.headers['x-api-key'])) {
    found.push({ kind: 'apikey', source: 'X-API-Key', value: value.trim() });
  }
  for (const value of values(input.headers['sec-websocket-protocol'])) {
    for (const entry of value.split(',').map((e) => e.trim())) {
      if (entry.startsWith(BEARER_PROTOCOL_PREFIX)) {
        found.push({ kind: 'token', source: 'Sec-WebSocket-Protocol', value: entry.slice(BEARER_PROTOCOL_PREFIX.length) });
      }
    }
  }
  const q = input.url.indexOf('?');
  if (q !== -1) {
    for (const value of new URLSearchParams(input.url.slice(q + 1)).getAll('token')) {
      found.push({ kind: 'token', source: '?token', value });
    }
  }
  return found;
}

function values(header: string | string[] | undefined): string[] {
  if (header === undefined) return [];
  return Array.isArray(header) ? header : [header];
}

function isUpgrade(headers: AuthRequest['headers']): boolean {
  return values(headers.upgrade).some((v) => v.toLowerCase().includes('websocket'));
}

/** The message doubles as a WebSocket close reason, which RFC 6455 caps at 123 bytes. */
const CLOSE_REASON_BYTES = 123;

function deny(message: string): AuthResult {
  let reason = message;
  while (Buffer.byteLength(reason) > CLOSE_REASON_BYTES) reason = [...reason].slice(0, -1).join('');
  return { ok: false, status: 401, code: 4401, message: reason };
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

export class Auth {
  private readonly secret: string | undefined;
  // Digests have one length whatever the key's, so every comparison can be timingSafeEqual.
  private readonly keyDigests: Buffer[];

  constructor(options: AuthOptions = {}) {
    const { secret, apiKeys = [] } = options;
    if (secret !== undefined) requireSecret(secret);
    if (apiKeys.some((key) => typeof key !== 'string' || key.trim() === '')) throw new TypeError('API keys must be non-empty strings');
    // Keys on an open hub would look like protection while everyone may publish: refuse the setup.
    if (secret === undefined && apiKeys.length > 0) throw new TypeError('API keys need an auth secret; without one the hub is open to everyone');
    this.secret = secret;
    this.keyDigests = apiKeys.map(digest);
  }

  /** No secret configured: everyone may do everything. */
  get open(): boolean {
    return this.secret === undefined;
  }

  authenticate(input: AuthRequest): AuthResult {
    if (this.secret === undefined) return { ok: true, identity: { id: 'anonymous', open: true } };
    const found = credentials(input);
    if (found.length === 0) {
      return deny('authentication required: a token (Authorization: Bearer, ?token= or a bearer.<token> subprotocol) or an API key');
    }
    if (found.length > 1) {
      return deny(`send one credential, not ${found.length} (${[...new Set(found.map((c) => c.source))].join(', ')})`);
    }
    const credential = found[0]!;
    if (credential.kind === 'apikey') {
      if (isUpgrade(input.headers)) return deny('API keys are for the HTTP API; WebSocket clients need a token');
      const index = this.keyIndex(credential.value);
      return index === -1 ? deny('unknown API key') : { ok: true, identity: { id: `apikey:${index + 1}`, apiKey: true } };
    }
    const result = verifyToken(credential.value, this.secret);
    if (!result.ok) return deny(`invalid token in ${credential.source}: ${result.message}`);
    return { ok: true, identity: { id: result.claims.sub, claims: result.claims } };
  }

  /**
   * The subprotocol to answer an upgrade with, for WebSocketServer's `selectProtocol`. A browser that
   * offered protocols fails the connection unless the server selects one of them, so 'duplex.v1' wins
   * when offered, which keeps the token out of the response, and a client that offered only its bearer
   * entry gets that entry back. Open hubs need this too: a client cannot know the hub is open.
   */
  selectProtocol(offered: readonly string[]): string | false {
    return offered.includes(HUB_SUBPROTOCOL) ? HUB_SUBPROTOCOL : (offered.find((p) => p.startsWith(BEARER_PROTOCOL_PREFIX)) ?? false);
  }

  /**
   * Whether the identity may act on the channel. An API key may publish and read history anywhere;
   * a token's `subscribe` patterns also grant history, and stand in for `presence` when it is absent.
   */
  can(identity: Identity, action: Action, channel: string): boolean {
    if (this.open) return true;
    if (identity.apiKey) return action === 'publish' || action === 'history';
    const claims = identity.claims;
    if (!claims) return false;
    const patterns =
      action === 'publish' ? claims.publish
      : action === 'presence' ? (claims.presence ?? claims.subscribe)
      : claims.subscribe;
    return (patterns ?? []).some((pattern) => matchChannel(pattern, channel));
  }

  /**
   * When, in milliseconds since the epoch, the identity's token stops verifying; undefined when it never
   * does (open hub, API key). A long-lived connection should be closed with 4401 then.
   */
  expiresAt(identity: Identity): number | undefined {
    const exp = identity.claims?.exp;
    return exp === undefined ? undefined : (exp + CLOCK_LEEWAY_SECONDS) * 1000;
  }

  private keyIndex(key: string): number {
    const candidate = digest(key);
    let index = -1;
    // Every key is compared, so the time taken does not tell which one (if any) matched.
    this.keyDigests.forEach((known, i) => {
      if (timingSafeEqual(known, candidate) && index === -1) index = i;
    });
    return index;
  }
}
