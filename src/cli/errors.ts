/** A mistake the user can fix (bad URL, port in use, refused connection): reported as one line, no stack. */
export class CliError extends Error {
  override name = 'CliError';
}

const NETWORK_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by peer',
  ETIMEDOUT: 'timed out',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'temporary DNS failure',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'address not available on this machine',
  EACCES: 'permission denied',
};

/** A short human phrase for a socket or handshake failure, on one line. */
export function describeFailure(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code in NETWORK_ERRORS) return NETWORK_ERRORS[code]!;
  const message = err instanceof Error ? err.message : String(err);
  return oneLine(message) || 'unknown error';
}

export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/**
 * The last word on any error reaching the top level. Internal errors show their stack only with
 * DUPLEX_DEBUG=1 so that users never face a trace for what is usually an environment problem.
 */
export function reportError(err: unknown): void {
  if (err instanceof CliError) {
    process.stderr.write(`duplex: ${oneLine(err.message)}\n`);
  } else if (process.env.DUPLEX_DEBUG === '1') {
    process.stderr.write(`duplex: internal error\n${err instanceof Error ? err.stack : String(err)}\n`);
  } else {
    process.stderr.write(`duplex: internal error: ${describeFailure(err)} (DUPLEX_DEBUG=1 shows details)\n`);
  }
}
