// `duplex serve`: the real-time hub (channels, history, presence; WebSocket at /ws, SSE, long-polling,
// the HTTP API, /healthz, /metrics) on the in-memory engine, or on Redis shared with other nodes, with
// the web app at "/".
//
// Settings come from flags, else from DUPLEX_* environment variables (commander does the precedence),
// else from the defaults in serve-command.ts. The effective configuration is printed at start, with
// the secret and the API keys shown only as "set" or counted. Logs go to stdout: human-readable on a
// terminal, JSON lines otherwise.
import type { AddressInfo } from 'node:net';
import { isWeakSecret, MIN_SECRET_BYTES } from '../hub/auth.js';
import type { Engine } from '../hub/engine.js';
import { Hub } from '../hub/hub.js';
import { redactUrl } from '../hub/redis-url.js';
import type { RateOptions } from '../hub/rate-limit.js';
import { webRoutes } from '../hub/web-routes.js';
import { listenUrl } from './address.js';
import { CliError, describeFailure, reportError } from './errors.js';
import { Logger, type LogFormat } from './log.js';
import { formatDuration, formatSize } from './options.js';
import { closeWithin, shutdownSignal } from './shutdown.js';
import { packageVersion } from './version.js';

export interface ServeOptions {
  port: number;
  host: string;
  /** Messages of history kept per channel. */
  history: number;
  /** Milliseconds a message stays in history. */
  historyTtl: number;
  /** Redis URL: the Redis engine instead of the in-memory one. */
  redis?: string;
  /** With Redis: milliseconds after which a dead node's members leave presence. */
  presenceTtl: number;
  authSecret?: string;
  apiKey?: string[];
  origins?: string[];
  maxMessageSize: number;
  publishRate: RateOptions;
  maxSubscriptions: number;
  /** Milliseconds a long-poll request is held open. */
  pollTimeout: number;
  log: LogFormat;
}

/** How long clients get to answer the hub's 1001 close before the process exits anyway. */
const CLOSE_GRACE_MS = 5000;
// Hosts that mean "every interface": the URL to print for them is this machine's loopback name.
const ANY_HOST = new Set(['0.0.0.0', '::', '[::]']);

export async function runServe(options: ServeOptions): Promise<number> {
  const logger = new Logger({ format: options.log, out: process.stdout, level: process.env.DUPLEX_DEBUG === '1' ? 'debug' : 'info' });
  if (options.apiKey?.length && options.authSecret === undefined) {
    throw new CliError('--api-key needs --auth-secret: without a secret the hub is open to everyone anyway');
  }
  showConfig(logger, options);
  if (options.authSecret !== undefined && isWeakSecret(options.authSecret)) {
    logger.warn(`the auth secret is shorter than ${MIN_SECRET_BYTES} bytes; use a longer random one (openssl rand -base64 32)`);
  }

  let engine: Engine | undefined;
  if (options.redis !== undefined) {
    // Loaded only when asked for: the Redis client is most of what every other command would load.
    const { RedisEngine } = await import('../hub/redis-engine.js');
    try {
      engine = await RedisEngine.connect(
        { url: options.redis, historySize: options.history, historyTtl: options.historyTtl, presenceTtl: options.presenceTtl },
        (message, fields) => logger.log('warn', message, fields),
      );
    } catch (err) {
      throw new CliError(describeFailure(err));
    }
  }

  const web = webRoutes({ hub: () => hub });
  const hub = new Hub({
    ...(engine ? { engine } : {}),
    port: options.port,
    host: options.host,
    historySize: options.history,
    historyTtl: options.historyTtl,
    ...(options.authSecret !== undefined ? { authSecret: options.authSecret } : {}),
    ...(options.apiKey?.length ? { apiKeys: options.apiKey } : {}),
    ...(options.origins?.length ? { origins: options.origins } : {}),
    limits: {
      maxMessageSize: options.maxMessageSize,
      publishRate: options.publishRate,
      maxSubscriptions: options.maxSubscriptions,
    },
    pollTimeout: options.pollTimeout,
    routes: web,
    log: logger.log,
  });

  let address: AddressInfo;
  try {
    address = await hub.listen();
  } catch (err) {
    await hub.close().catch(() => {});
    throw new CliError(`cannot listen on ${options.host}:${options.port}: ${describeFailure(err)}`);
  }
  // After listening an error leaves a server we cannot trust: say so in one line and stop.
  hub.server.on('error', (err) => {
    reportError(new CliError(`server error: ${describeFailure(err)}`));
    process.exit(1);
  });

  // Listen for signals before announcing the URL: whoever reads it may signal us right away.
  const stop = shutdownSignal();
  const url = publicUrl(options.host, address);
  logger.notice([`listening on ${url}`], 'listening', { url });

  const signal = await stop;
  logger.info('shutting down', { signal });
  if (!(await closeWithin((done) => void hub.close().then(done, done), CLOSE_GRACE_MS))) {
    logger.warn('some clients did not finish closing; exiting anyway');
  }
  return 0;
}

/**
 * The URL to give people: a host name as they typed it ("localhost" may be ::1 or 127.0.0.1, and the
 * name works for either), the loopback name for a wildcard address, otherwise the address bound.
 */
function publicUrl(host: string, address: AddressInfo): string {
  if (ANY_HOST.has(host)) return `http://localhost:${address.port}`;
  if (/[a-z]/i.test(host) && !host.includes(':')) return `http://${host}:${address.port}`;
  return listenUrl('http', address);
}

/** The effective settings. The secret and the keys are only ever said to be set, or counted. */
function showConfig(logger: Logger, o: ServeOptions): void {
  const version = packageVersion();
  const keys = o.apiKey?.length ?? 0;
  const origins = o.origins?.length ? o.origins : undefined;
  const { rate, burst } = o.publishRate;
  const auth = o.authSecret === undefined
    ? 'off: anyone may subscribe and publish'
    : `secret set, ${keys === 0 ? 'no' : keys} API key${keys === 1 ? '' : 's'}`;
  logger.notice(
    [
      `duplex ${version} hub`,
      o.redis === undefined
        ? `  engine    memory: ${o.history} messages per channel, kept ${formatDuration(o.historyTtl)}`
        : `  engine    redis at ${redactUrl(o.redis)}: ${o.history} messages per channel, kept ${formatDuration(o.historyTtl)}; presence expires ${formatDuration(o.presenceTtl)} after a node dies`,
      `  auth      ${auth}`,
      `  origins   ${origins ? origins.join(', ') : 'any'}`,
      `  limits    ${formatSize(o.maxMessageSize)} per message, ${rate} publishes/s (burst ${burst}), ${o.maxSubscriptions} subscriptions per connection`,
      `  polling   requests held up to ${formatDuration(o.pollTimeout)}`,
    ],
    'config',
    {
      version,
      port: o.port,
      host: o.host,
      engine: o.redis === undefined ? 'memory' : 'redis',
      ...(o.redis === undefined ? {} : { redis: redactUrl(o.redis), presenceTtl: formatDuration(o.presenceTtl) }),
      history: o.history,
      historyTtl: formatDuration(o.historyTtl),
      authSecret: o.authSecret === undefined ? 'unset' : 'set',
      apiKeys: keys,
      origins: origins ?? 'any',
      maxMessageSize: o.maxMessageSize,
      publishRate: rate,
      publishBurst: burst,
      maxSubscriptions: o.maxSubscriptions,
      pollTimeout: formatDuration(o.pollTimeout),
    },
  );
}
