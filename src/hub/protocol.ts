// The hub's wire contract (docs/protocol.md): JSON envelopes, the same on every transport. Parsing is
// strict, and a malformed envelope becomes an error the caller answers without dropping the client.
import type { HubMessage, PresenceMember } from './engine.js';

export const MAX_CHANNEL_LENGTH = 128;
// Letters, digits and _ - : @ = /, in segments separated by dots; '*' and '>' are left to patterns.
const CHANNEL = /^[A-Za-z0-9_\-:@=/]+(\.[A-Za-z0-9_\-:@=/]+)*$/;

export function isValidChannel(name: unknown): name is string {
  return typeof name === 'string' && name.length > 0 && name.length <= MAX_CHANNEL_LENGTH && CHANNEL.test(name);
}

export type ErrorCode =
  | 'bad_request'
  | 'invalid_channel'
  | 'unauthorized'
  | 'forbidden'
  | 'too_large'
  | 'rate_limited'
  | 'too_many_subscriptions'
  | 'not_subscribed'
  | 'unavailable';

export type ClientId = string | number;

export type ClientMessage =
  | { type: 'subscribe'; channel: string; since?: number; presence?: unknown; presenceEvents?: boolean; id?: ClientId }
  | { type: 'unsubscribe'; channel: string; id?: ClientId }
  | { type: 'publish'; channel: string; data: unknown; id?: ClientId }
  | { type: 'presence'; channel: string; id?: ClientId };

export type Parsed =
  | { ok: true; message: ClientMessage }
  | { ok: false; code: ErrorCode; message: string; id?: ClientId };

function isId(value: unknown): value is ClientId {
  return (typeof value === 'string' && value.length <= 128) || (typeof value === 'number' && Number.isFinite(value));
}

/** Reads one client envelope; never throws. */
export function parseClientMessage(text: string): Parsed {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, code: 'bad_request', message: 'the message is not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, code: 'bad_request', message: 'the message must be a JSON object' };
  }
  const v = value as Record<string, unknown>;
  const id = v.id;
  if (id !== undefined && !isId(id)) return { ok: false, code: 'bad_request', message: 'id must be a string or a number' };
  const fail = (code: ErrorCode, message: string): Parsed => (id === undefined ? { ok: false, code, message } : { ok: false, code, message, id });
  const type = v.type;
  if (type !== 'subscribe' && type !== 'unsubscribe' && type !== 'publish' && type !== 'presence') {
    return fail('bad_request', `unknown type ${JSON.stringify(type)}: expected subscribe, unsubscribe, publish or presence`);
  }
  if (!isValidChannel(v.channel)) {
    return fail('invalid_channel', `channel must be 1-${MAX_CHANNEL_LENGTH} characters of letters, digits, _ - : @ = / in dot-separated segments`);
  }
  const base = { channel: v.channel, ...(id === undefined ? {} : { id }) };
  switch (type) {
    case 'subscribe': {
      const since = v.since;
      if (since !== undefined && !(Number.isSafeInteger(since) && (since as number) >= 0)) {
        return fail('bad_request', 'since must be a non-negative integer offset');
      }
      if (v.presenceEvents !== undefined && typeof v.presenceEvents !== 'boolean') {
        return fail('bad_request', 'presenceEvents must be true or false');
      }
      return {
        ok: true,
        message: {
          type, ...base,
          ...(since === undefined ? {} : { since: since as number }),
          ...(v.presence === undefined ? {} : { presence: v.presence }),
          ...(v.presenceEvents === true ? { presenceEvents: true } : {}),
        },
      };
    }
    case 'publish':
      if (!('data' in v)) return fail('bad_request', 'publish needs data');
      return { ok: true, message: { type, ...base, data: v.data } };
    default:
      return { ok: true, message: { type, ...base } };
  }
}

const withId = (id: ClientId | undefined) => (id === undefined ? {} : { id });

export function subscribedEnvelope(channel: string, offset: number, recovered: boolean | undefined, id?: ClientId): string {
  return JSON.stringify({ type: 'subscribed', channel, offset, ...(recovered === undefined ? {} : { recovered }), ...withId(id) });
}

export function unsubscribedEnvelope(channel: string, id?: ClientId): string {
  return JSON.stringify({ type: 'unsubscribed', channel, ...withId(id) });
}

export function messageEnvelope(m: HubMessage): string {
  return JSON.stringify({
    type: 'message', channel: m.channel, offset: m.offset, data: m.data, time: m.time,
    ...(m.publisher === undefined ? {} : { publisher: m.publisher }),
  });
}

export function ackEnvelope(id: ClientId, offset: number): string {
  return JSON.stringify({ type: 'ack', id, offset });
}

export function presenceEventEnvelope(channel: string, event: 'join' | 'leave', member: PresenceMember): string {
  return JSON.stringify({ type: 'presence', channel, event, ...member });
}

export function presenceListEnvelope(channel: string, members: PresenceMember[], id?: ClientId): string {
  return JSON.stringify({ type: 'presence', channel, members, ...withId(id) });
}

export function errorEnvelope(code: ErrorCode, message: string, id?: ClientId): string {
  return JSON.stringify({ type: 'error', code, message, ...withId(id) });
}
