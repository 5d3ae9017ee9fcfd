/**
 * The opening handshake as the raw load generators do it: one fixed request (a fixed key is fine, the
 * server cannot tell), and a check of the response head: 101 and the accept value for that key.
 */
import { createHash } from 'node:crypto';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const ACCEPT = createHash('sha1').update(`${KEY}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
const MAX_RESPONSE_HEAD = 16 * 1024;
const STATUS_101 = /^HTTP\/1\.1 101 /;

/** What browsers offer: context takeover both ways, and any client window the server likes. */
export const DEFLATE_OFFER = 'permessage-deflate; client_max_window_bits';

export function upgradeRequest(port: number, extensions?: string): Buffer {
  return Buffer.from(
    'GET / HTTP/1.1\r\n' +
      `Host: 127.0.0.1:${port}\r\n` +
      'Upgrade: websocket\r\n' +
      'Connection: Upgrade\r\n' +
      `Sec-WebSocket-Key: ${KEY}\r\n` +
      'Sec-WebSocket-Version: 13\r\n' +
      (extensions === undefined ? '' : `Sec-WebSocket-Extensions: ${extensions}\r\n`) +
      '\r\n',
    'latin1',
  );
}

export interface UpgradeResponse {
  /** The response head, without the blank line. */
  head: string;
  /** Bytes after the head: the first frames. */
  rest: Buffer;
}

/**
 * The response once `received` holds its whole head, null while it does not. Throws when the head
 * is too large, not a 101, or does not accept our key.
 */
export function readUpgradeResponse(received: Buffer): UpgradeResponse | null {
  const end = received.indexOf('\r\n\r\n');
  if (end === -1) {
    if (received.length > MAX_RESPONSE_HEAD) throw new Error('handshake response head too large');
    return null;
  }
  const head = received.toString('latin1', 0, end);
  if (!STATUS_101.test(head)) throw new Error(`handshake refused: ${head.slice(0, head.indexOf('\r\n'))}`);
  if (!head.includes(ACCEPT)) throw new Error('handshake response without the right Sec-WebSocket-Accept');
  return { head, rest: received.subarray(end + 4) };
}

/** A header's value in a response head ('' when absent); header names are case-insensitive. */
export function headerValue(head: string, name: string): string {
  const wanted = `${name.toLowerCase()}:`;
  const line = head.split('\r\n').find((l) => l.toLowerCase().startsWith(wanted));
  return line === undefined ? '' : line.slice(wanted.length).trim();
}
