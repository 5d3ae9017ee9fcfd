// Requests to the hub's HTTP side (docs/protocol.md, "HTTP"), as the fallback transports make them:
// every one bounded in time, every failure a HubError carrying the hub's own code when it sent one.
// Every request carries the token in an Authorization header, /sse and /poll included: the hub also
// takes ?token= there, for EventSource, which cannot set headers, but a URL ends up in proxies' and
// servers' access logs, and fetch can set headers in browsers and Node alike.
import { HubError } from './hub-error.js';
import type { FetchInit, ResponseLike, SessionEnv } from './session.js';

export interface RequestOptions {
  channel?: string;
  /** Aborts the request; it then fails with code 'closed'. */
  signal?: AbortSignal;
  /** Default: the client's requestTimeoutMs; null: no limit (a stream). */
  timeoutMs?: number | null;
}

export class HubHttp {
  constructor(private readonly env: SessionEnv) {}

  /**
   * Makes a request, with the token, and hands a 2xx answer to `read`, whose result it returns; the
   * time limit and the signal cover the reading too. Anything else becomes a HubError.
   */
  async request<T>(url: string, init: FetchInit, options: RequestOptions, read: (response: ResponseLike) => Promise<T>): Promise<T> {
    const fetch = this.env.fetch;
    if (!fetch) throw new HubError('network', 'no fetch implementation: pass the fetch option');
    const { channel } = options;
    const timeoutMs = options.timeoutMs === undefined ? this.env.requestTimeoutMs : options.timeoutMs ?? undefined;
    const token = this.env.token;
    const headers: Record<string, string> = { ...init.headers };
    if (token !== undefined) headers.Authorization = `Bearer ${token}`;
    const link = linkedController(options.signal, timeoutMs);
    try {
      const response = await fetch(url, { ...init, headers, signal: link.signal });
      if (response.status < 200 || response.status >= 300) throw await errorOf(response, channel);
      return await read(response);
    } catch (err) {
      throw link.failure(err, channel);
    } finally {
      link.dispose();
    }
  }

  /** A request to the API; resolves with the JSON object of the answer. */
  json(path: string, init: FetchInit = {}, options: RequestOptions = {}): Promise<Record<string, unknown>> {
    return this.request(this.env.urls.http(path), init, options, async (response) => parseObject(await response.text(), options.channel));
  }
}

/**
 * An AbortController that follows `parent` and gives up after `timeoutMs` (when given), and tells
 * afterwards which of the two stopped a request.
 */
export interface LinkedController {
  readonly signal: AbortSignal;
  /** Stops the timer and lets go of the parent. */
  dispose(): void;
  /** The HubError for a failed fetch or read. */
  failure(err: unknown, channel?: string): HubError;
}

export function linkedController(parent: AbortSignal | undefined, timeoutMs?: number): LinkedController {
  const controller = new AbortController();
  let timedOut = false;
  const onAbort = () => controller.abort();
  if (parent?.aborted) controller.abort();
  else parent?.addEventListener('abort', onAbort, { once: true });
  const timer = timeoutMs === undefined ? undefined : setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  return {
    signal: controller.signal,
    dispose(): void {
      clearTimeout(timer);
      parent?.removeEventListener('abort', onAbort);
    },
    failure(err: unknown, channel?: string): HubError {
      if (err instanceof HubError) return err;
      const details = channel === undefined ? {} : { channel };
      if (timedOut) return new HubError('timeout', `no answer from the hub within ${timeoutMs} ms`, details);
      if (parent?.aborted) return new HubError('closed', 'the request was cancelled', details);
      return new HubError('network', `the hub could not be reached: ${err instanceof Error ? err.message : String(err)}`, details);
    },
  };
}

/** The hub's error answer ({"error","message"}) as a HubError, or one made from the status. */
export async function errorOf(response: ResponseLike, channel?: string): Promise<HubError> {
  const status = response.status;
  const details = { status, ...(channel === undefined ? {} : { channel }) };
  let text = '';
  try {
    text = await response.text();
  } catch {
    // The status says enough.
  }
  try {
    const body = JSON.parse(text) as { error?: unknown; message?: unknown };
    if (typeof body.error === 'string') {
      return new HubError(body.error, typeof body.message === 'string' ? body.message : `HTTP ${status}`, details);
    }
  } catch {
    // Not the hub's JSON: a proxy's page, say.
  }
  return new HubError(STATUS_CODES[status] ?? 'http_error', `HTTP ${status}${text ? `: ${text.slice(0, 200)}` : ''}`, details);
}

const STATUS_CODES: Record<number, string> = {
  400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 413: 'too_large',
  429: 'rate_limited', 503: 'unavailable',
};

export function parseObject(text: string, channel?: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HubError('protocol', `expected a JSON object from the hub, got ${JSON.stringify(text.slice(0, 80))}`, channel === undefined ? {} : { channel });
  }
  return value as Record<string, unknown>;
}
