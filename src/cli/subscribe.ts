// `duplex subscribe URL CHANNEL`: prints a channel's messages as they arrive, over the hub's WebSocket
// protocol, with our own client.
//
// Output: one line per message. Piped, the line is the message's data as JSON, undecorated (or, with
// --json, the whole envelope with its offset and time); on a terminal the data follows a dimmed offset.
// Status and warnings go to stderr.
//
// A dropped connection (the hub restarting, a network blip, a silent peer caught by the heartbeat) is
// reopened with `since` set to the last offset seen, so nothing is printed twice and nothing is lost
// while history still holds it; when it does not, a warning says so. Refusals (bad token, forbidden
// channel) end the command with status 1; Ctrl-C or SIGTERM end it with status 0.
import { WebSocket, type CloseEvent, type ErrorEvent, type MessageEvent } from '../index.js';
import { describeFailure, oneLine } from './errors.js';
import type { HubUrl } from './hub-url.js';
import { shutdownSignal } from './shutdown.js';

export interface SubscribeOptions {
  since?: number;
  token?: string;
  json?: boolean;
  reconnect: boolean;
  handshakeTimeout: number;
}

const SUBSCRIBE_ID = 'subscribe';
/** Closes after which trying again may succeed: going away, abnormal, server error, restart, try later. */
const RETRY_CODES = new Set([1001, 1006, 1011, 1012, 1013, 1014]);
const NORMAL_CODES = new Set([1000, 1001, 1005]);
const FIRST_RETRY_MS = 250;
const MAX_RETRY_MS = 5000;
const CLOSE_TIMEOUT_MS = 2000;
const DIM = '\x1b[2m';
const RESET = '\x1b[0m';

interface Envelope {
  type?: unknown;
  channel?: unknown;
  offset?: unknown;
  recovered?: unknown;
  data?: unknown;
  code?: unknown;
  message?: unknown;
  id?: unknown;
}

export function runSubscribe(hub: HubUrl, channel: string, options: SubscribeOptions): Promise<number> {
  return new Promise((resolve) => new Subscriber(hub, channel, options, resolve).start());
}

class Subscriber {
  private ws: WebSocket | null = null;
  /** The offset to resume after: the last message printed, or where the subscription started. */
  private position: number | undefined;
  /** Once a subscription has worked, failures to reconnect are outages to wait out, not usage errors. */
  private everSubscribed = false;
  private retryDelay = FIRST_RETRY_MS;
  private retryTimer: NodeJS.Timeout | undefined;
  private closeTimer: NodeJS.Timeout | undefined;
  private failure: string | undefined;
  /** The exit status once our own close completes; set when we decide to stop. */
  private stopping: number | undefined;
  private finished = false;
  private readonly decorated = process.stdout.isTTY === true;
  private readonly color = this.decorated && !process.env.NO_COLOR;
  private readonly chatty = process.stderr.isTTY === true;

  constructor(
    private readonly hub: HubUrl,
    private readonly channel: string,
    private readonly options: SubscribeOptions,
    private readonly done: (exitCode: number) => void,
  ) {
    this.position = options.since;
  }

  start(): void {
    void shutdownSignal().then(() => this.stop(0));
    this.connect();
  }

  private connect(): void {
    this.failure = undefined;
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.hub.ws, [], {
        ...(this.options.token === undefined ? {} : { headers: { Authorization: `Bearer ${this.options.token}` } }),
        handshakeTimeout: this.options.handshakeTimeout,
        // Without it a peer that vanished (no FIN) would leave us waiting forever instead of reconnecting.
        heartbeat: this.options.reconnect,
      });
    } catch (err) {
      return this.fail(`cannot connect to ${this.hub.ws}: ${describeFailure(err)}`);
    }
    this.ws = ws;
    ws.on('open', () => ws.send(JSON.stringify(this.subscribeRequest())));
    ws.on('message', (ev: MessageEvent) => this.onMessage(ev));
    ws.on('error', (ev: ErrorEvent) => {
      this.failure ??= describeFailure(ev.error);
    });
    ws.on('close', (ev: CloseEvent) => this.onClose(ev.code, ev.reason));
  }

  private subscribeRequest(): Record<string, unknown> {
    return { type: 'subscribe', channel: this.channel, id: SUBSCRIBE_ID, ...(this.position === undefined ? {} : { since: this.position }) };
  }

  private onMessage(ev: MessageEvent): void {
    if (ev.isBinary) return;
    const text = ev.rawData.toString('utf8');
    let envelope: Envelope;
    try {
      envelope = JSON.parse(text) as Envelope;
    } catch {
      return this.warn(`ignoring a message that is not JSON: ${oneLine(text).slice(0, 80)}`);
    }
    if (envelope === null || typeof envelope !== 'object') return;
    switch (envelope.type) {
      case 'subscribed':
        if (envelope.id === SUBSCRIBE_ID && typeof envelope.offset === 'number') this.onSubscribed(envelope.offset, envelope.recovered);
        return;
      case 'message':
        if (envelope.channel === this.channel && typeof envelope.offset === 'number') this.print(text, envelope, envelope.offset);
        return;
      case 'error': {
        const problem = `${String(envelope.code)}: ${oneLine(String(envelope.message))}`;
        if (envelope.id === SUBSCRIBE_ID) return this.fail(`cannot subscribe to ${this.channel}: ${problem}`);
        return this.warn(`the hub reported ${problem}`);
      }
    }
  }

  private onSubscribed(offset: number, recovered: unknown): void {
    const resumed = this.everSubscribed;
    const since = this.position;
    // The hub replays from min(since, offset): a `since` beyond its offsets (a restarted memory hub) restarts there.
    this.position = since === undefined ? offset : Math.min(since, offset);
    this.everSubscribed = true;
    this.retryDelay = FIRST_RETRY_MS;
    if (recovered === false) {
      this.warn(`history on ${this.channel} no longer reaches back to offset ${since}; messages after it were missed`);
    }
    if (this.chatty) process.stderr.write(`duplex: ${resumed ? 'resubscribed' : 'subscribed'} to ${this.channel} after offset ${since ?? offset}\n`);
  }

  private print(text: string, envelope: Envelope, offset: number): void {
    this.position = offset;
    if (this.options.json) return void process.stdout.write(`${text}\n`);
    const data = JSON.stringify(envelope.data);
    if (!this.decorated) return void process.stdout.write(`${data}\n`);
    const mark = `#${offset}`;
    process.stdout.write(`${this.color ? `${DIM}${mark}${RESET}` : mark} ${data}\n`);
  }

  private onClose(code: number, reason: string): void {
    this.ws = null;
    clearTimeout(this.closeTimer);
    if (this.stopping !== undefined) return this.finish(this.stopping);
    const why = this.describeClose(code, reason);
    if (this.options.reconnect && this.everSubscribed && (this.failure !== undefined || RETRY_CODES.has(code))) {
      return this.retry(why);
    }
    if (!this.everSubscribed) {
      process.stderr.write(`duplex: cannot subscribe to ${this.channel} at ${this.hub.ws}: ${why}\n`);
      return this.finish(1);
    }
    process.stderr.write(`duplex: ${why}\n`);
    this.finish(NORMAL_CODES.has(code) && this.failure === undefined ? 0 : 1);
  }

  private describeClose(code: number, reason: string): string {
    if (this.failure !== undefined) return this.failure;
    if (code === 4401) return `unauthorized: ${reason || 'the hub wants a token (--token)'}`;
    if (code === 1006) return 'connection lost (1006)';
    return `closed by server: ${code}${reason ? ` ${reason}` : ''}`;
  }

  private retry(why: string): void {
    this.warn(`${why}; reconnecting in ${this.retryDelay} ms`);
    this.retryTimer = setTimeout(() => this.connect(), this.retryDelay);
    this.retryDelay = Math.min(MAX_RETRY_MS, this.retryDelay * 2);
  }

  /** Ends the subscription with a refusal: one line on stderr, status 1. */
  private fail(message: string): void {
    if (this.stopping !== undefined) return;
    process.stderr.write(`duplex: ${message}\n`);
    this.stop(1);
  }

  private stop(exitCode: number): void {
    if (this.finished || this.stopping !== undefined) return;
    this.stopping = exitCode;
    clearTimeout(this.retryTimer);
    const ws = this.ws;
    if (!ws) return this.finish(exitCode);
    ws.close(ws.readyState === ws.OPEN ? 1000 : undefined);
    this.closeTimer = setTimeout(() => ws.terminate(), CLOSE_TIMEOUT_MS);
  }

  private warn(message: string): void {
    process.stderr.write(`duplex: ${message}\n`);
  }

  private finish(exitCode: number): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.closeTimer);
    this.done(exitCode);
  }
}
