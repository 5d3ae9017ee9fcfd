import crypto from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { parseExtensions } from './extensions.js';
import { HandshakeError } from './handshake-error.js';
import { isFieldValue, isToken, trimOws } from './http.js';

// The opening handshake of RFC 6455 section 4, both roles, as pure functions: request checks
// and response heads for the server, request head and response checks for the client.
// Heads are returned as strings meant to be written as UTF-8 (the default of socket.write).

export { HandshakeError };

export const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** A Sec-WebSocket-Key: the base64 encoding of 16 bytes is 22 characters and "==". */
const KEY = /^[A-Za-z0-9+/]{22}==$/;

// crypto.hash (Node 20.12 and later) makes no Hash object: for input this short, a third of the cost.
const sha1Base64: (text: string) => string = typeof crypto.hash === 'function'
  ? (text) => crypto.hash('sha1', text, 'base64')
  : (text) => crypto.createHash('sha1').update(text).digest('base64');

export function acceptKey(key: string): string {
  return sha1Base64(key + WS_GUID);
}

export function generateKey(): string {
  return crypto.randomBytes(16).toString('base64');
}

type Headers = Record<string, string | string[] | undefined>;

/** What the server needs of a parsed request; http.IncomingMessage fits. Header names are lowercase. */
export interface UpgradeRequest {
  method?: string;
  httpVersion: string;
  url?: string;
  headers: Headers;
}

export type UpgradeCheck =
  | { ok: true; key: string; protocols: string[]; extensions: string | undefined; origin: string | undefined }
  | { ok: false; status: number; reason: string; headers?: Record<string, string> };

/**
 * Validates a client's opening handshake (RFC 6455 section 4.2.1). Decisions beyond the RFC:
 * - HTTP/1.0 gets 400, not 505: 505 means the major version is unsupported, and 1.0 shares it.
 * - A missing Sec-WebSocket-Version gets 400 while a wrong one gets 426. 426 (section 4.4) is
 *   the version negotiation for clients that announce another version; a request without the
 *   header is simply not an RFC 6455 handshake (hixie-76 clients, which would not understand
 *   426 anyway), and section 4.2.1 answers malformed handshakes with 400.
 * - The 426 answer also carries Upgrade: websocket, which RFC 7231 6.5.15 requires of a 426.
 */
export function checkUpgradeRequest(req: UpgradeRequest): UpgradeCheck {
  const h = req.headers;
  if (req.method !== 'GET') {
    return fail(405, `Method ${req.method ?? '(none)'} not allowed: the WebSocket handshake requires GET`, { Allow: 'GET' });
  }
  if (!isHttp11OrLater(req.httpVersion)) {
    return fail(400, `HTTP version ${req.httpVersion} not supported: the WebSocket handshake requires HTTP/1.1 or later`);
  }
  if (Array.isArray(h.host) && h.host.length > 1) return fail(400, 'Multiple Host headers');
  if (!joined(h.host)) return fail(400, 'Missing or empty Host header');
  if (!hasToken(h.upgrade, 'websocket')) {
    return fail(400, `Invalid Upgrade header ${describe(h.upgrade)}: it must contain the token "websocket"`);
  }
  if (!hasToken(h.connection, 'upgrade')) {
    return fail(400, `Invalid Connection header ${describe(h.connection)}: it must contain the token "upgrade"`);
  }
  const version = joined(h['sec-websocket-version']);
  if (version === undefined) return fail(400, 'Missing Sec-WebSocket-Version header');
  if (trimOws(version) !== '13') {
    return fail(426, `Unsupported Sec-WebSocket-Version ${JSON.stringify(version)}: only 13 is supported`, {
      'Sec-WebSocket-Version': '13',
      Upgrade: 'websocket',
    });
  }
  const key = readKey(h['sec-websocket-key']);
  if (typeof key !== 'string') return fail(400, key.reason);
  const protocols = parseTokenList(h['sec-websocket-protocol']);
  if (protocols === null) {
    return fail(400, `Invalid Sec-WebSocket-Protocol header ${describe(h['sec-websocket-protocol'])}: it must be a comma-separated list of tokens`);
  }
  const duplicate = protocols.find((p, i) => protocols.indexOf(p) !== i);
  if (duplicate !== undefined) return fail(400, `Duplicate subprotocol "${duplicate}" in Sec-WebSocket-Protocol header`);
  return {
    ok: true,
    key,
    protocols,
    extensions: joined(h['sec-websocket-extensions']),
    origin: joined(h.origin),
  };
}

/**
 * Whether a request asks to switch protocols at all (RFC 9110 7.8): an Upgrade header, and the token
 * "upgrade" in Connection. The test Node's http.Server applies before it emits 'upgrade'; a server
 * that reads requests itself answers the others as plain requests, and the rest go to checkUpgradeRequest.
 */
export function requestsUpgrade(headers: Headers): boolean {
  return headers.upgrade !== undefined && hasToken(headers.connection, 'upgrade');
}

function fail(status: number, reason: string, headers?: Record<string, string>): UpgradeCheck {
  return headers === undefined ? { ok: false, status, reason } : { ok: false, status, reason, headers };
}

function isHttp11OrLater(version: string): boolean {
  const match = /^(\d+)\.(\d+)$/.exec(version);
  if (match === null) return false;
  const [major, minor] = [Number(match[1]), Number(match[2])];
  return major > 1 || (major === 1 && minor >= 1);
}

/** The key, when the header holds exactly one base64-encoded 16-byte value. */
function readKey(value: string | string[] | undefined): string | { reason: string } {
  if (value === undefined) return { reason: 'Missing Sec-WebSocket-Key header' };
  const key = trimOws(joined(value));
  // Node joins repeated lines with ", "; base64 has no comma, so a comma means several keys.
  if ((Array.isArray(value) && value.length > 1) || key.includes(',')) return { reason: 'Multiple Sec-WebSocket-Key headers' };
  if (!KEY.test(key)) {
    return { reason: `Invalid Sec-WebSocket-Key header ${describe(value)}: it must be the base64 encoding of 16 bytes` };
  }
  return key;
}

/** Several header lines as one value, the way HTTP defines their combination. */
function joined(value: string | string[]): string;
function joined(value: string | string[] | undefined): string | undefined;
function joined(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

function describe(value: string | string[] | undefined): string {
  return value === undefined ? '(missing)' : JSON.stringify(joined(value));
}

function hasToken(value: string | string[] | undefined, token: string): boolean {
  return parseTokenList(value)?.some((t) => t.toLowerCase() === token) ?? false;
}

/**
 * Parses a comma-separated list of RFC 7230 tokens (several lines are joined); null when an
 * element is not a token. Empty elements are skipped, as RFC 7230 section 7 asks of list parsers.
 */
export function parseTokenList(value: string | string[] | undefined): string[] | null {
  if (value === undefined) return [];
  const tokens: string[] = [];
  for (const element of joined(value).split(',')) {
    const item = trimOws(element);
    if (item === '') continue;
    if (!isToken(item)) return null;
    tokens.push(item);
  }
  return tokens;
}

/**
 * The 101 response head. An empty protocol or extensions string means none, matching the
 * browser's convention for WebSocket#protocol. Throws TypeError on a header name that is not a
 * token, a value with CR, LF or another control character, or an extra header that would
 * duplicate one the handshake itself sets.
 */
export function acceptResponse(o: { key: string; protocol?: string; extensions?: string; headers?: Record<string, string> }): string {
  const fields: Array<[string, string]> = [
    ['Upgrade', 'websocket'],
    ['Connection', 'Upgrade'],
    ['Sec-WebSocket-Accept', acceptKey(o.key)],
  ];
  if (o.protocol) {
    if (!isToken(o.protocol)) throw new TypeError(`Invalid subprotocol ${JSON.stringify(o.protocol)}`);
    fields.push(['Sec-WebSocket-Protocol', o.protocol]);
  }
  if (o.extensions) fields.push(['Sec-WebSocket-Extensions', o.extensions]);
  return head('HTTP/1.1 101 Switching Protocols', fields, ACCEPT_FIELDS, o.headers);
}

const ACCEPT_FIELDS = ['upgrade', 'connection', 'sec-websocket-accept', 'sec-websocket-protocol', 'sec-websocket-extensions'];

/**
 * A complete plain-text error response, body included; the connection is to be closed after it.
 * Content-Length counts the UTF-8 bytes of `reason`. When the extra headers include Upgrade (as
 * a 426 does), Connection also lists "Upgrade", as RFC 7230 6.7 requires. Throws RangeError on a
 * status outside 300-599 and TypeError on headers as acceptResponse does.
 */
export function rejectResponse(status: number, reason: string, headers: Record<string, string> = {}): string {
  if (!Number.isInteger(status) || status < 300 || status > 599) {
    throw new RangeError(`Invalid status ${status} for a rejected handshake: expected 300-599`);
  }
  const upgrade = Object.keys(headers).some((name) => name.toLowerCase() === 'upgrade');
  const fields: Array<[string, string]> = [
    ['Connection', upgrade ? 'close, Upgrade' : 'close'],
    ['Content-Type', 'text/plain; charset=utf-8'],
    ['Content-Length', String(Buffer.byteLength(reason))],
  ];
  return head(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`, fields, REJECT_FIELDS, headers) + reason;
}

// Transfer-Encoding would contradict Content-Length about where the body ends.
const REJECT_FIELDS = ['connection', 'content-type', 'content-length', 'transfer-encoding'];

/**
 * The client's request head; empty extensions or origin strings mean none. Throws SyntaxError, as the browser's WebSocket constructor does,
 * on a subprotocol that is not a token or appears twice; TypeError on an invalid path, host or
 * key, and on headers as acceptResponse does.
 */
export function clientRequest(o: {
  host: string;
  path: string;
  key: string;
  protocols?: string[];
  extensions?: string;
  origin?: string;
  headers?: Record<string, string>;
}): string {
  // Visible ASCII only: a space or a control character would end the request-target early.
  if (!/^[\x21-\x7e]+$/.test(o.path)) throw new TypeError(`Invalid request path ${JSON.stringify(o.path)}`);
  if (!/^[\x21-\x7e]+$/.test(o.host)) throw new TypeError(`Invalid host ${JSON.stringify(o.host)}`);
  if (!KEY.test(o.key)) throw new TypeError(`Invalid Sec-WebSocket-Key ${JSON.stringify(o.key)}: expected base64 of 16 bytes`);
  const protocols = o.protocols ?? [];
  protocols.forEach((protocol, i) => {
    if (!isToken(protocol)) throw new DOMException(`The subprotocol ${JSON.stringify(protocol)} is invalid`, 'SyntaxError');
    if (protocols.indexOf(protocol) !== i) throw new DOMException(`The subprotocol ${JSON.stringify(protocol)} is duplicated`, 'SyntaxError');
  });
  const fields: Array<[string, string]> = [
    ['Host', o.host],
    ['Upgrade', 'websocket'],
    ['Connection', 'Upgrade'],
    ['Sec-WebSocket-Key', o.key],
    ['Sec-WebSocket-Version', '13'],
  ];
  if (protocols.length > 0) fields.push(['Sec-WebSocket-Protocol', protocols.join(', ')]);
  if (o.extensions) fields.push(['Sec-WebSocket-Extensions', o.extensions]);
  if (o.origin) fields.push(['Origin', o.origin]);
  return head(`GET ${o.path} HTTP/1.1`, fields, REQUEST_FIELDS, o.headers);
}

const REQUEST_FIELDS = [
  'host',
  'upgrade',
  'connection',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-protocol',
  'sec-websocket-extensions',
  'origin',
];

/**
 * Serialises a head. `reserved` names the headers the caller's extra headers may not repeat:
 * a second Upgrade, Sec-WebSocket-Accept or Content-Length would make the message ambiguous.
 */
function head(startLine: string, fields: Array<[string, string]>, reserved: string[], extra: Record<string, string> = {}): string {
  for (const name of Object.keys(extra)) {
    if (reserved.includes(name.toLowerCase())) {
      throw new TypeError(`Header ${name} is set by the handshake itself and cannot be given as an extra header`);
    }
  }
  let text = `${startLine}\r\n`;
  for (const [name, value] of [...fields, ...Object.entries(extra)]) {
    if (!isToken(name)) throw new TypeError(`Invalid header name ${JSON.stringify(name)}`);
    if (typeof value !== 'string' || !isFieldValue(value)) {
      throw new TypeError(`Invalid value for header ${name}: ${JSON.stringify(value)}`);
    }
    text += `${name}: ${value}\r\n`;
  }
  return `${text}\r\n`;
}

/**
 * Checks the server's 101 response (RFC 6455 section 4.1, last steps). `res.headers` has
 * lowercase names, as HttpResponseParser produces them; `offeredExtensions` are the names of the
 * extensions offered. Returns the selected subprotocol ('' for none) and the server's
 * Sec-WebSocket-Extensions value ('' for none), for the extension negotiation to interpret.
 * Extensions are only checked generically here: known names, syntax, and no name accepted twice.
 */
export function verifyServerResponse(
  res: { statusCode: number; headers: Record<string, string> },
  key: string,
  offeredProtocols: string[],
  offeredExtensions: string[],
): { protocol: string; extensions: string } {
  if (res.statusCode !== 101) throw new HandshakeError(`Unexpected server response: ${res.statusCode}`, res.statusCode);
  const h: Record<string, string | undefined> = res.headers;
  if (h.upgrade === undefined || trimOws(h.upgrade).toLowerCase() !== 'websocket') {
    throw new HandshakeError(`Invalid Upgrade header in the server response ${describe(h.upgrade)}: expected "websocket"`);
  }
  if (!hasToken(h.connection, 'upgrade')) {
    throw new HandshakeError(`Invalid Connection header in the server response ${describe(h.connection)}: expected the token "upgrade"`);
  }
  const accept = h['sec-websocket-accept'];
  if (accept === undefined) throw new HandshakeError('Missing Sec-WebSocket-Accept header in the server response');
  if (trimOws(accept) !== acceptKey(key)) {
    throw new HandshakeError(`Invalid Sec-WebSocket-Accept header ${JSON.stringify(accept)}: it does not match the key sent`);
  }
  return {
    protocol: selectedProtocol(h['sec-websocket-protocol'], offeredProtocols),
    extensions: acceptedExtensions(h['sec-websocket-extensions'], offeredExtensions),
  };
}

function selectedProtocol(value: string | undefined, offered: string[]): string {
  if (value === undefined) return '';
  const protocol = trimOws(value);
  if (offered.length === 0) throw new HandshakeError(`Server selected subprotocol ${JSON.stringify(protocol)} but none was offered`);
  if (!offered.includes(protocol)) {
    throw new HandshakeError(`Server selected subprotocol ${JSON.stringify(protocol)}, which was not offered`);
  }
  return protocol;
}

function acceptedExtensions(value: string | undefined, offered: string[]): string {
  const header = trimOws(value ?? '');
  let names: string[];
  try {
    names = parseExtensions(header).map((extension) => extension.name);
  } catch (err) {
    // Without parseExtensions' 400: on this side the status is the server's, and it sent 101.
    throw new HandshakeError(`${(err as Error).message} in the server response`);
  }
  names.forEach((name, i) => {
    if (!offered.includes(name)) throw new HandshakeError(`Server accepted extension "${name}", which was not offered`);
    if (names.indexOf(name) !== i) throw new HandshakeError(`Server accepted extension "${name}" more than once`);
  });
  return header;
}
