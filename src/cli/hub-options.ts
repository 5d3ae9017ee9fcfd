// Option values of the hub commands (serve, publish, subscribe, token), parsed for commander so that a
// bad value, from a flag or from an environment variable, is commander's one-line "invalid" error.
// Lists (from repeated flags or from one comma-separated environment variable) are split on commas.
import { InvalidArgumentError } from 'commander';
import { isValidPattern } from '../hub/auth.js';
import { isValidChannel, MAX_CHANNEL_LENGTH } from '../hub/protocol.js';
import type { RateOptions } from '../hub/rate-limit.js';

/** The longest delay node's timers take. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/;
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE = /^(\d+)(b|k|kb|kib|m|mb|mib)?$/i;
const SIZE_UNITS: Record<string, number> = { b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2 };
const MAX_SIZE = 1024 ** 3;

/** A duration with a unit (500ms, 30s, 5m, 24h, 7d) or a bare number of seconds; returns milliseconds. */
export function durationParser(max: number): (value: string) => number {
  return (value) => {
    const match = DURATION.exec(value.trim());
    const ms = match ? Math.round(Number(match[1]) * DURATION_UNITS[match[2] ?? 's']!) : NaN;
    if (!(ms >= 1 && ms <= max)) {
      throw new InvalidArgumentError(`expected a duration such as 30s, 5m, 24h or a number of seconds, up to ${formatDuration(max)}.`);
    }
    return ms;
  };
}

export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = DURATION_UNITS[unit]!;
    // A day reads better as 24h; days are for longer spans.
    if (ms >= (unit === 'd' ? 2 * size : size) && ms % size === 0) return `${ms / size}${unit}`;
  }
  return ms >= 1000 ? `${ms / 1000}s` : `${ms}ms`;
}

/** Bytes, bare or with a binary unit (64k, 64KiB, 1m, 1MiB). */
export function parseSize(value: string): number {
  const match = SIZE.exec(value.trim());
  const bytes = match ? Number(match[1]) * SIZE_UNITS[(match[2] ?? 'b').toLowerCase()]! : NaN;
  if (!(bytes >= 1 && bytes <= MAX_SIZE)) throw new InvalidArgumentError('expected a size in bytes such as 65536, 64KiB or 1MiB, up to 1GiB.');
  return bytes;
}

export function formatSize(bytes: number): string {
  if (bytes >= 1024 ** 2 && bytes % 1024 ** 2 === 0) return `${bytes / 1024 ** 2} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} bytes`;
}

export function countParser(min: 0 | 1): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(min === 0 ? 'expected a whole number, 0 or more.' : 'expected a whole number, 1 or more.');
    }
    return n;
  };
}

/** Publishes per second per connection, optionally with the burst after a colon (100 or 100:200). */
export function parseRate(value: string): RateOptions {
  const [rateText = '', burstText, extra] = value.trim().split(':');
  const rate = Number(rateText);
  const burst = burstText === undefined ? Math.max(1, Math.round(rate * 2)) : Number(burstText);
  if (extra !== undefined || rateText === '' || !(rate > 0 && Number.isFinite(rate)) || !(Number.isSafeInteger(burst) && burst >= 1)) {
    throw new InvalidArgumentError('expected messages per second, optionally with a burst size: 100 or 100:200.');
  }
  return { rate, burst };
}

/** For repeatable list options: each value may itself be a comma-separated list; an empty one adds nothing. */
export function listCollector<T>(parse: (item: string) => T): (value: string, previous?: T[]) => T[] {
  return (value, previous = []) => {
    const items = value.split(',').map((item) => item.trim()).filter((item) => item !== '');
    return [...previous, ...items.map(parse)];
  };
}

/**
 * What a browser sends as Origin: scheme://host[:port], nothing after. http(s) origins are normalized
 * (lowercase host, default port dropped) the way browsers write them, so a typed "HTTP://Example.com:80/"
 * still matches.
 */
export function parseOrigin(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(`${JSON.stringify(value)} is not an origin: expected scheme://host[:port], e.g. https://example.com.`);
  }
  if (!/^[a-z][a-z0-9+.-]*:\/\/[^/?#]+\/?$/i.test(value) || url.username !== '' || url.password !== '') {
    throw new InvalidArgumentError(`${JSON.stringify(value)} is not an origin: expected scheme://host[:port] with no path, e.g. https://example.com.`);
  }
  return url.origin !== 'null' ? url.origin : value.replace(/\/$/, '');
}

export function parseChannel(value: string): string {
  if (!isValidChannel(value)) {
    throw new InvalidArgumentError(`expected 1-${MAX_CHANNEL_LENGTH} characters of letters, digits, _ - : @ = / in dot-separated segments.`);
  }
  return value;
}

export function parsePattern(value: string): string {
  if (!isValidPattern(value)) {
    throw new InvalidArgumentError(`${JSON.stringify(value)} is not a channel pattern: use dot-separated segments, '*' only as a whole segment (chat.*, *).`);
  }
  return value;
}

/**
 * Secrets, keys and tokens from flags or variables: empty means unset, since compose files and CI
 * leave variables defined but empty.
 */
export function nonEmpty(value: string | undefined): string | undefined {
  return value === '' ? undefined : value;
}

/** A Redis URL: redis:// or rediss:// (TLS), with a host. */
export function parseRedisUrl(value: string): string {
  let url: URL | undefined;
  try {
    url = new URL(value.trim());
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'redis:' && url.protocol !== 'rediss:') || url.hostname === '') {
    throw new InvalidArgumentError('expected a Redis URL such as redis://localhost:6379 or rediss://user:password@host:6380/0.');
  }
  return value.trim();
}
