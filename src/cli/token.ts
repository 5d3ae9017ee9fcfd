// `duplex token`: mints a client token for a hub started with the same --auth-secret, e.g. for a
// browser page or `duplex subscribe --token`. Prints only the token, so `$(duplex token …)` captures it.
import { isWeakSecret, MIN_SECRET_BYTES, signToken, type Claims } from '../hub/auth.js';
import { CliError } from './errors.js';

export interface TokenOptions {
  secret?: string;
  sub: string;
  publish?: string[];
  subscribe?: string[];
  presence?: string[];
  /** Milliseconds until the token expires. */
  ttl: number;
  info?: unknown;
}

export function runToken(options: TokenOptions): number {
  const { secret } = options;
  if (secret === undefined) throw new CliError('a secret is required: --secret or DUPLEX_AUTH_SECRET, the same as the hub\'s --auth-secret');
  if (isWeakSecret(secret)) {
    process.stderr.write(`duplex: warning: the secret is shorter than ${MIN_SECRET_BYTES} bytes; use a longer random one (openssl rand -base64 32)\n`);
  }
  const claims: Omit<Claims, 'iat'> = {
    sub: options.sub,
    ...(options.publish ? { publish: options.publish } : {}),
    ...(options.subscribe ? { subscribe: options.subscribe } : {}),
    ...(options.presence ? { presence: options.presence } : {}),
    ...(options.info !== undefined ? { info: options.info } : {}),
  };
  let token: string;
  try {
    token = signToken(claims, secret, { expiresInSeconds: Math.ceil(options.ttl / 1000) });
  } catch (err) {
    throw new CliError(`cannot sign the token: ${err instanceof Error ? err.message : String(err)}`);
  }
  process.stdout.write(`${token}\n`);
  return 0;
}
