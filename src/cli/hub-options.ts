// Option values only the hub commands take (serve, publish, subscribe), parsed for commander as in
// options.ts. Apart from these, the commands' options are the general ones of options.ts.
import { InvalidArgumentError } from 'commander';
import { isValidChannel, MAX_CHANNEL_LENGTH } from '../hub/protocol.js';
import type { RateOptions } from '../hub/rate-limit.js';

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
