// Opening a client connection: URL rules, TCP or TLS connect, the handshake request and the checks on the
// server's answer. The bytes of the handshake come from src/protocol; this file only moves them.
import net from 'node:net';
import tls from 'node:tls';
import { clientRequest, generateKey, HandshakeError, verifyServerResponse } from '../protocol/handshake.js';
import { HttpResponseParser } from '../protocol/http.js';
import { acceptResponse, makeOffer, type DeflateParams, type PerMessageDeflateOptions } from '../protocol/permessage-deflate.js';

export interface ClientOptions {
  /** Extra request headers, e.g. Authorization. */
  headers?: Record<string, string>;
  origin?: string;
  /** Milliseconds from the TCP connect attempt to the server's 101; default 10 s. */
  handshakeTimeout?: number;
  /** Largest response head accepted; default 16 KiB. */
  maxHandshakeSize?: number;
  // TLS (wss://)
  ca?: tls.SecureContextOptions['ca'];
  cert?: tls.SecureContextOptions['cert'];
  key?: tls.SecureContextOptions['key'];
  rejectUnauthorized?: boolean;
  servername?: string;
  /** permessage-deflate (RFC 7692): a client offers it, a server accepts offers; off unless given. */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
}

export interface OpenedHandshake {
  socket: net.Socket;
  /** Bytes that followed the response head: the server's first frames. */
  head: Buffer;
  protocol: string;
  extensions: string;
  /** The permessage-deflate parameters agreed on, if any. */
  deflate: DeflateParams | null;
}

/** Parses a WebSocket URL as the browser does; http(s) URLs are accepted and mean ws(s). */
export function parseWebSocketUrl(input: string | URL): URL {
  let url: URL;
  try {
    url = new URL(String(input));
  } catch {
    throw new DOMException(`Invalid URL: ${String(input)}`, 'SyntaxError');
  }
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new DOMException(`The URL's scheme must be ws or wss, not ${url.protocol.slice(0, -1)}`, 'SyntaxError');
  }
  if (url.href.includes('#')) throw new DOMException('The URL contains a fragment identifier', 'SyntaxError');
  return url;
}

/**
 * Connects and performs the opening handshake; `done` is called exactly once unless the returned abort
 * function is called first.
 */
export function openHandshake(
  url: URL, protocols: string[], options: ClientOptions, done: (err: Error | null, opened?: OpenedHandshake) => void,
): () => void {
  const secure = url.protocol === 'wss:';
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = Number(url.port) || (secure ? 443 : 80);
  const key = generateKey();
  // Like browsers, offer client_max_window_bits so that a server short of memory can pick a smaller window.
  const pmd = options.perMessageDeflate ? { clientMaxWindowBits: true as const, ...(options.perMessageDeflate === true ? {} : options.perMessageDeflate) } : null;
  const offer = pmd ? makeOffer(pmd) : '';
  const request = clientRequest({
    host: url.host,
    path: url.pathname + url.search,
    key,
    protocols,
    extensions: offer,
    ...(options.origin !== undefined ? { origin: options.origin } : {}),
    ...(options.headers ? { headers: options.headers } : {}),
  });
  const parser = new HttpResponseParser(options.maxHandshakeSize ?? 16 * 1024);
  const socket = secure
    ? tls.connect({
        host,
        port,
        servername: options.servername ?? (net.isIP(host) ? undefined : host),
        ca: options.ca,
        cert: options.cert,
        key: options.key,
        rejectUnauthorized: options.rejectUnauthorized ?? true,
        ALPNProtocols: ['http/1.1'],
      })
    // Half-open, so that the server's FIN does not drop data still being read (see WebSocket's 'end' handler).
    : net.connect({ host, port, allowHalfOpen: true });

  let finished = false;
  const finish = (err: Error | null, opened?: OpenedHandshake) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('error', onError);
    socket.off('close', onClose);
    if (err) {
      socket.destroy();
      done(err);
    } else {
      done(null, opened);
    }
  };
  const onData = (chunk: Buffer) => {
    try {
      const parsed = parser.push(chunk);
      if (!parsed) return;
      const agreed = verifyServerResponse(parsed.head, key, protocols, offer ? ['permessage-deflate'] : []);
      const deflate = pmd && agreed.extensions ? acceptResponse(agreed.extensions, pmd) : null;
      finish(null, { socket, head: parsed.rest, ...agreed, deflate });
    } catch (err) {
      finish(err instanceof Error ? err : new HandshakeError(String(err)));
    }
  };
  const onError = (err: Error) => finish(err);
  const onClose = () => finish(new HandshakeError('the server closed the connection before the handshake completed'));
  const timeout = options.handshakeTimeout ?? 10_000;
  const timer = setTimeout(() => finish(new HandshakeError(`opening handshake timed out after ${timeout} ms`)), timeout);

  socket.once(secure ? 'secureConnect' : 'connect', () => {
    if (finished) return;
    socket.setNoDelay(true);
    socket.write(request);
  });
  socket.on('data', onData);
  socket.on('error', onError);
  socket.on('close', onClose);
  return () => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    socket.destroy();
  };
}
