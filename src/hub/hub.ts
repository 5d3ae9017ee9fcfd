// The hub: one http server that serves the API, the fallbacks (SSE, long-polling) and the WebSocket
// endpoint, over an engine. Everything transport-specific lives in its own file; this one routes.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from '../index.js';
import { Auth } from './auth.js';
import { DEFAULT_LIMITS, type HubContext, type HubLimits, type Log } from './context.js';
import type { Engine } from './engine.js';
import { Feeds } from './feed.js';
import { handleApi } from './http-api.js';
import { MemoryEngine } from './memory-engine.js';
import { hubMetrics, PROMETHEUS_CONTENT_TYPE, Registry } from './metrics.js';
import { handlePoll } from './poll.js';
import { handleSse } from './sse.js';
import { WsSession } from './ws-session.js';

export interface HubOptions {
  port?: number;
  host?: string;
  /** Defaults to the in-memory engine with these history bounds. */
  engine?: Engine;
  historySize?: number;
  historyTtl?: number;
  /** HS256 secret for client tokens; without it the hub is open. */
  authSecret?: string;
  /** Keys that may publish over HTTP. */
  apiKeys?: string[];
  /** Allowed Origin values for browsers (WebSocket, SSE, poll, API); all when unset. */
  origins?: string[];
  limits?: Partial<HubLimits>;
  /** WebSocket liveness: ping after `interval` ms of silence, drop after `timeout` more. */
  heartbeat?: { interval: number; timeout: number } | false;
  /** Longest a long-poll request is held open, in ms. */
  pollTimeout?: number;
  /** Comment line sent on idle SSE streams, every this many ms. */
  sseKeepAlive?: number;
  /** Extra routes (the web UI): return true when the request was handled. */
  routes?: (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => boolean;
  log?: Log;
}

export class Hub {
  readonly context: HubContext;
  readonly server: http.Server;
  readonly registry = new Registry();
  private readonly wss: WebSocketServer;
  private readonly options: HubOptions;
  private readonly ticker: NodeJS.Timeout;

  constructor(options: HubOptions = {}) {
    this.options = options;
    const engine = options.engine ?? new MemoryEngine({
      ...(options.historySize !== undefined ? { historySize: options.historySize } : {}),
      ...(options.historyTtl !== undefined ? { historyTtl: options.historyTtl } : {}),
    });
    const metrics = hubMetrics(this.registry);
    this.context = {
      engine,
      feeds: new Feeds(engine),
      auth: new Auth({
        ...(options.authSecret ? { secret: options.authSecret } : {}),
        ...(options.apiKeys ? { apiKeys: options.apiKeys } : {}),
      }),
      metrics,
      limits: { ...DEFAULT_LIMITS, ...options.limits },
      log: options.log ?? (() => {}),
    };
    metrics.collect(() => ({ engine: engine.stats(), subscriptions: this.context.feeds.subscriptions }));
    // Turns the message counters into per-second rates for the dashboard.
    this.ticker = setInterval(() => metrics.tick(Date.now()), 1000);
    this.ticker.unref();
    this.server = http.createServer((req, res) => this.route(req, res));
    this.wss = new WebSocketServer({
      server: this.server,
      path: '/ws',
      // Room for the envelope around the largest data, so an oversized publish gets an error, not a 1009.
      maxPayload: this.context.limits.maxMessageSize * 4 + 4096,
      heartbeat: options.heartbeat === false ? false : (options.heartbeat ?? { interval: 25_000, timeout: 10_000 }),
      ...(options.origins ? { origins: options.origins } : {}),
      // A browser passes its token as a subprotocol; the server must then pick one of the offered ones.
      selectProtocol: (offered) => this.context.auth.selectProtocol(offered),
    });
    this.wss.on('connection', (ws, req) => this.accept(ws, req));
    this.wss.on('error', (err) => this.context.log('warn', 'websocket server error', { error: err.message }));
  }

  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port ?? 8080, this.options.host ?? 'localhost', () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /** Closes every client (1001), stops listening, and releases the engine. */
  async close(): Promise<void> {
    clearInterval(this.ticker);
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    await this.context.engine.close();
  }

  private accept(ws: WebSocket, req: http.IncomingMessage): void {
    const metrics = this.context.metrics;
    const auth = this.context.auth.authenticate({ headers: req.headers, url: req.url ?? '/' });
    if (!auth.ok) {
      // Browsers never see the status of a refused upgrade, so the refusal is a close code instead.
      ws.close(auth.code, auth.message);
      return;
    }
    metrics.connections.inc({ transport: 'ws' });
    metrics.connectionsTotal.inc({ transport: 'ws' });
    // Tokens expire: a connection does not outlive the token it was opened with.
    const expires = this.context.auth.expiresAt(auth.identity);
    const left = expires === undefined ? Infinity : Math.max(0, expires - Date.now());
    // setTimeout cannot wait longer than 2^31-1 ms (about 24 days); such tokens outlive any sane connection.
    const expiry = left < 0x7fffffff ? setTimeout(() => ws.close(4401, 'token expired'), left) : null;
    expiry?.unref();
    ws.on('close', () => {
      metrics.connections.dec({ transport: 'ws' });
      if (expiry) clearTimeout(expiry);
    });
    new WsSession(ws, auth.identity, this.context);
  }

  private route(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://hub');
    const path = url.pathname;
    if (this.options.origins && req.headers.origin && !this.options.origins.includes(req.headers.origin)) {
      return sendJson(res, 403, { error: 'forbidden', message: `origin ${req.headers.origin} is not allowed` });
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end('ok\n');
      return;
    }
    if (path === '/metrics') {
      let text: string;
      try {
        text = this.registry.text();
      } catch (err) {
        this.context.log('error', 'metrics scrape failed', { error: (err as Error).message });
        return sendJson(res, 500, { error: 'internal', message: 'metrics unavailable' });
      }
      res.writeHead(200, { 'Content-Type': PROMETHEUS_CONTENT_TYPE, 'Cache-Control': 'no-store' });
      res.end(text);
      return;
    }
    if (path === '/sse') return handleSse(this.context, req, res, url, this.options.sseKeepAlive ?? 15_000);
    if (path === '/poll') return handlePoll(this.context, req, res, url, this.options.pollTimeout ?? 25_000);
    if (path.startsWith('/api/')) return handleApi(this.context, req, res, url);
    if (this.options.routes?.(req, res, url)) return;
    sendJson(res, 404, { error: 'not_found', message: `nothing at ${path}` });
  }
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  });
  res.end(text);
}
