// Close codes (RFC 6455 section 7.4) and the close frame payload: a 2-byte code followed by a UTF-8 reason.
import { isValidUtf8 } from './utf8.js';

export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  /** Never on the wire: "the close frame had no code". */
  NO_STATUS: 1005,
  /** Never on the wire: "the connection dropped without a close frame". */
  ABNORMAL: 1006,
  INVALID_PAYLOAD: 1007,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  MANDATORY_EXTENSION: 1010,
  INTERNAL_ERROR: 1011,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
  BAD_GATEWAY: 1014,
} as const;

/** The longest reason that fits a control frame (125 bytes) after the 2-byte code. */
export const MAX_REASON_BYTES = 123;

/** Codes a peer may put in a close frame; 1004-1006 and 1015 are reserved and never sent. */
export function isValidWireCode(code: number): boolean {
  return (
    (code >= 1000 && code <= 1003) ||
    (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999)
  );
}

export function encodeClosePayload(code?: number, reason = ''): Buffer {
  if (code === undefined) return Buffer.alloc(0);
  const length = Buffer.byteLength(reason);
  const payload = Buffer.allocUnsafe(2 + length);
  payload.writeUInt16BE(code, 0);
  payload.write(reason, 2);
  return payload;
}

export type ParsedClose =
  | { ok: true; code: number; reason: string }
  | { ok: false; code: number; message: string };

/** Parses a received close payload; on failure `code` is what we must close with. */
export function parseClosePayload(payload: Buffer): ParsedClose {
  if (payload.length === 0) return { ok: true, code: CloseCode.NO_STATUS, reason: '' };
  if (payload.length === 1) {
    return { ok: false, code: CloseCode.PROTOCOL_ERROR, message: 'close frame with a 1-byte payload' };
  }
  const code = payload.readUInt16BE(0);
  if (!isValidWireCode(code)) {
    return { ok: false, code: CloseCode.PROTOCOL_ERROR, message: `invalid close code ${code}` };
  }
  const reasonBytes = payload.subarray(2);
  if (!isValidUtf8(reasonBytes)) {
    return { ok: false, code: CloseCode.INVALID_PAYLOAD, message: 'close reason is not valid UTF-8' };
  }
  return { ok: true, code, reason: reasonBytes.toString('utf8') };
}

/**
 * The checks the browser's `WebSocket.close(code, reason)` makes: applications may only send 1000 or
 * 3000-4999, and the reason must fit the frame. Servers also need the protocol-level codes (1001, 1008,
 * 1011, 1013 …), so `anyWireCode` widens the first rule to every code valid on the wire.
 */
export function checkApplicationClose(code?: number, reason?: string, anyWireCode = false): void {
  const allowed = code === CloseCode.NORMAL || (code !== undefined && code >= 3000 && code <= 4999) ||
    (anyWireCode && code !== undefined && isValidWireCode(code));
  if (code !== undefined && !allowed) {
    throw new DOMException(`The close code must be either 1000, or between 3000 and 4999. ${code} is neither.`, 'InvalidAccessError');
  }
  if (reason !== undefined && Buffer.byteLength(reason) > MAX_REASON_BYTES) {
    throw new DOMException(`The close reason must not be longer than ${MAX_REASON_BYTES} bytes of UTF-8.`, 'SyntaxError');
  }
}
