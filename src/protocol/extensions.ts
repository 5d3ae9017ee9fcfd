import { HandshakeError } from './handshake-error.js';
import { isToken } from './http.js';

// Sec-WebSocket-Extensions (RFC 6455 section 9.1), the grammar RFC 7692 negotiates with:
//   extension-list = 1#extension
//   extension      = extension-token *( ";" extension-param )
//   extension-param = token [ "=" ( token / quoted-string ) ]   ; unquoted value must be a token
// Whitespace is allowed around every separator. Empty list elements ("a, , b") are skipped,
// as RFC 7230 section 7 asks of list parsers, so that joined header lines parse.

export interface ExtensionOffer {
  name: string;
  params: Record<string, string | true>;
}

/** Sticky lexemes: optional whitespace, then a token, a quoted-string or a separator. */
const WHITESPACE = /[ \t]*/y;
const TOKEN = /[!#$%&'*+\-.^_`|~0-9A-Za-z]+/y;
const QUOTED = /"((?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*)"/y;

/** Parses the header (several lines are joined); throws HandshakeError (status 400) when malformed. */
export function parseExtensions(header: string | string[] | undefined): ExtensionOffer[] {
  const text = Array.isArray(header) ? header.join(', ') : header ?? '';
  let pos = 0;

  const fail = (expected: string): never => {
    throw new HandshakeError(
      `Invalid Sec-WebSocket-Extensions header: expected ${expected} at offset ${pos} of ${JSON.stringify(text)}`,
      400,
    );
  };
  const take = (re: RegExp): RegExpExecArray | null => {
    re.lastIndex = pos;
    const match = re.exec(text);
    if (match !== null) pos = re.lastIndex;
    return match;
  };
  const skip = (separator: string): boolean => {
    take(WHITESPACE);
    if (text[pos] !== separator) return false;
    pos += 1;
    take(WHITESPACE);
    return true;
  };
  const value = (): string => {
    const token = take(TOKEN);
    if (token !== null) return token[0];
    const quoted = take(QUOTED);
    if (quoted === null) return fail('a token or a quoted-string');
    const unquoted = quoted[1].replace(/\\(.)/gs, '$1');
    return isToken(unquoted) ? unquoted : fail('a quoted-string holding a token');
  };

  const offers: ExtensionOffer[] = [];
  for (;;) {
    while (skip(','));
    if (pos === text.length) return offers;
    const name = take(TOKEN)?.[0] ?? fail('an extension name');
    const params = new Map<string, string | true>();
    while (skip(';')) {
      const param = take(TOKEN)?.[0] ?? fail('a parameter name');
      if (params.has(param)) fail(`no second "${param}" parameter in the "${name}" offer`);
      params.set(param, skip('=') ? value() : true);
    }
    take(WHITESPACE);
    if (pos < text.length && text[pos] !== ',') fail('"," or ";"');
    // fromEntries defines own properties, so a parameter named "__proto__" stays a parameter.
    offers.push({ name, params: Object.fromEntries(params) });
  }
}

/** The header value for `offers`; throws TypeError when a name or value is not a token. */
export function formatExtensions(offers: ExtensionOffer[]): string {
  return offers.map(formatOffer).join(', ');
}

function formatOffer({ name, params }: ExtensionOffer): string {
  if (!isToken(name)) throw new TypeError(`Invalid extension name ${JSON.stringify(name)}`);
  const parts = [name];
  for (const [param, value] of Object.entries(params)) {
    if (!isToken(param)) throw new TypeError(`Invalid parameter name ${JSON.stringify(param)} in extension ${name}`);
    if (value === true) {
      parts.push(param);
    } else if (typeof value === 'string' && isToken(value)) {
      parts.push(`${param}=${value}`);
    } else {
      throw new TypeError(`Invalid value ${JSON.stringify(value)} for parameter ${param} of extension ${name}`);
    }
  }
  return parts.join('; ');
}
