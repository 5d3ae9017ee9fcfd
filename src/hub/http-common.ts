// What the hub's plain-HTTP endpoints share (the API, SSE, long-polling): CORS, error answers, the
// credential check, query parameters, and messages as JSON objects.
import type http from 'node:http';
import { CHALLENGE, type Action, type Identity } from './auth.js';
import type { HubContext } from './context.js';
import type { HubMessage } from './engine.js';
import { sendJson } from './hub.js';
import { isValidChannel, MAX_CHANNEL_LENGTH, type ErrorCode } from './protocol.js';

export type HttpErrorCode = ErrorCode | 'not_found' | 'method_not_allowed';

export const CHANNEL_RULE = `channel must be 1-${MAX_CHANNEL_LENGTH} characters of letters, digits, _ - : @ = / in dot-separated segments`;

/**
 * Lets browsers on other origins read the answer. The hub has already refused any Origin outside its
 * `origins` option before routing here, so the one that arrives is allowed and is reflected; no
 * credentials mode is granted (tokens travel in headers or the query, never in cookies).
 */
export function allowOrigin(req: http.IncomingMessage, res: http.ServerResponse): void {
  const origin = req.headers.origin;
  if (origin === undefined) return;
  res.setHeader('Access-Control-Allow-Origin', origin);
  res.setHeader('Access-Control-Expose-Headers', 'Retry-After, WWW-Authenticate');
  res.setHeader('Vary', 'Origin');
}

const HEADER_LIST = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$/;

/** Answers a CORS preflight for a path that takes `methods`. */
export function preflight(req: http.IncomingMessage, res: http.ServerResponse, methods: string): void {
  allowOrigin(req, res);
  const asked = req.headers['access-control-request-headers'];
  res.writeHead(204, {
    Allow: `${methods}, OPTIONS`,
    'Access-Control-Allow-Methods': `${methods}, OPTIONS`,
    // The origin is already vetted and no cookies are honoured, so any well-formed header list may pass.
    'Access-Control-Allow-Headers': asked && HEADER_LIST.test(asked) ? asked : 'Authorization, Content-Type, X-API-Key',
    'Access-Control-Max-Age': '600',
  });
  res.end();
}

export function fail(
  ctx: HubContext,
  res: http.ServerResponse,
  status: number,
  code: HttpErrorCode,
  message: string,
  headers: Record<string, string> = {},
): void {
  ctx.metrics.errors.inc({ code });
  if (res.headersSent) {
    res.destroy();
    return;
  }
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  sendJson(res, status, { error: code, message });
}

export function methodNotAllowed(ctx: HubContext, res: http.ServerResponse, allowed: string): void {
  fail(ctx, res, 405, 'method_not_allowed', `use ${allowed}`, { Allow: `${allowed}, OPTIONS` });
}

/** The identity behind the request if it may do `action` on `channel`; otherwise answers 401/403 and returns null. */
export function authorize(
  ctx: HubContext,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  action: Action,
  channel: string,
): Identity | null {
  const identity = authenticate(ctx, req, res);
  if (!identity) return null;
  if (!ctx.auth.can(identity, action, channel)) {
    fail(ctx, res, 403, 'forbidden', `not allowed to ${action === 'presence' ? 'see presence in' : action === 'history' ? 'read the history of' : `${action} to`} ${channel}`);
    return null;
  }
  return identity;
}

/** The identity behind the request, or null after answering 401. */
export function authenticate(ctx: HubContext, req: http.IncomingMessage, res: http.ServerResponse): Identity | null {
  const result = ctx.auth.authenticate({ headers: req.headers, url: req.url ?? '/' });
  if (result.ok) return result.identity;
  fail(ctx, res, 401, 'unauthorized', result.message, { 'WWW-Authenticate': CHALLENGE });
  return null;
}

/** The `channel` query parameter, or null after answering 400. */
export function channelParam(ctx: HubContext, res: http.ServerResponse, url: URL): string | null {
  const channel = url.searchParams.get('channel');
  if (channel === null) {
    fail(ctx, res, 400, 'bad_request', 'the channel query parameter is required');
    return null;
  }
  if (!isValidChannel(channel)) {
    fail(ctx, res, 400, 'invalid_channel', CHANNEL_RULE);
    return null;
  }
  return channel;
}

export type IntParam = { ok: true; value: number | undefined } | { ok: false };

/**
 * An optional integer in [min, max] from `text`; answers 400 naming `what` when it is something else.
 * Plain decimal digits only, so '1e3', ' 5' and '0x10' are refused rather than guessed at.
 */
export function intParam(
  ctx: HubContext,
  res: http.ServerResponse,
  what: string,
  text: string | null | undefined,
  min: number,
  max: number,
): IntParam {
  if (text === null || text === undefined) return { ok: true, value: undefined };
  const value = /^[0-9]{1,16}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    fail(ctx, res, 400, 'bad_request', `${what} must be an integer from ${min} to ${max}, not ${JSON.stringify(text.slice(0, 40))}`);
    return { ok: false };
  }
  return { ok: true, value };
}

/** The message envelope of the WebSocket protocol (protocol.ts messageEnvelope) as an object, for JSON answers. */
export function messageObject(m: HubMessage): Record<string, unknown> {
  return {
    type: 'message', channel: m.channel, offset: m.offset, data: m.data, time: m.time,
    ...(m.publisher === undefined ? {} : { publisher: m.publisher }),
  };
}
