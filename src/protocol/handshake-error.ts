/**
 * A failed opening handshake. `status` is the HTTP status involved: on the server side the
 * one to answer with, on the client side the one the server sent (when that was the problem).
 *
 * It lives in its own file so that http.ts and extensions.ts can throw it without importing
 * handshake.ts, which itself imports them.
 */
export class HandshakeError extends Error {
  override readonly name = 'HandshakeError';

  constructor(message: string, readonly status?: number) {
    super(message);
  }
}
