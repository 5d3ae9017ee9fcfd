// What every transport of the hub shares.
import type { Auth } from './auth.js';
import type { Engine } from './engine.js';
import type { Feeds } from './feed.js';
import type { HubMetrics } from './metrics.js';
import type { RateOptions } from './rate-limit.js';

export interface HubLimits {
  /** Largest envelope (WebSocket) or body (HTTP) a client may send, in bytes. */
  maxMessageSize: number;
  /** Publishes per connection. */
  publishRate: RateOptions;
  /** Channels one connection may subscribe to. */
  maxSubscriptions: number;
}

export const DEFAULT_LIMITS: HubLimits = {
  maxMessageSize: 64 * 1024,
  publishRate: { rate: 100, burst: 200 },
  maxSubscriptions: 100,
};

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type Log = (level: LogLevel, message: string, fields?: Record<string, unknown>) => void;

export interface HubContext {
  engine: Engine;
  feeds: Feeds;
  auth: Auth;
  metrics: HubMetrics;
  limits: HubLimits;
  log: Log;
}
