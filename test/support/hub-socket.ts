// A hub client speaking raw JSON envelopes (docs/protocol.md) over our WebSocket, for end-to-end
// tests: it keeps every envelope it receives, remembers whether the connection ever closed, and waits
// for conditions on what it has received, every wait bounded.
import { WebSocket } from '../../src/index.js';

export interface Envelope {
  type: string;
  id?: unknown;
  channel?: string;
  offset?: number;
  data?: unknown;
  recovered?: boolean;
  event?: 'join' | 'leave';
  clientId?: string;
  info?: unknown;
  members?: Array<{ clientId: string; info?: unknown }>;
  code?: string;
  message?: string;
}

const DEFAULT_WAIT_MS = 10_000;

export class HubSocket {
  readonly received: Envelope[] = [];
  // Replies by the id of the request they answer; ids are the test's to keep unique per socket.
  private readonly replies = new Map<unknown, Envelope>();
  /** Set when the connection closed, with its close code. */
  closeCode: number | null = null;
  private readonly wakers = new Set<() => void>();

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (ev) => {
      const envelope = JSON.parse(String(ev.data)) as Envelope;
      this.received.push(envelope);
      if (envelope.id !== undefined) this.replies.set(envelope.id, envelope);
      this.wake();
    });
    ws.on('close', (ev) => {
      this.closeCode = ev.code;
      this.wake();
    });
  }

  static async open(url: string, ms = DEFAULT_WAIT_MS): Promise<HubSocket> {
    const ws = new WebSocket(url);
    const socket = new HubSocket(ws);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error(`cannot open ${url} within ${ms} ms`));
      }, ms);
      ws.on('open', () => {
        clearTimeout(timer);
        resolve();
      });
      ws.on('close', (ev) => {
        clearTimeout(timer);
        reject(new Error(`${url} closed before opening: ${ev.code}`));
      });
    });
    return socket;
  }

  send(envelope: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(envelope));
  }

  /** Sends an envelope with an id and resolves with the reply carrying that id (ack, subscribed, error …). */
  request(envelope: Record<string, unknown> & { id: string | number }, ms = DEFAULT_WAIT_MS): Promise<Envelope> {
    this.send(envelope);
    return this.reply(envelope.id, ms);
  }

  /** The reply to the request with this id, waiting for it if need be. */
  async reply(id: string | number, ms = DEFAULT_WAIT_MS): Promise<Envelope> {
    await this.until(() => this.replies.has(id), `a reply to ${String(id)}`, ms);
    return this.replies.get(id)!;
  }

  /** The first received envelope that `accept` takes, waiting for it if need be. */
  async waitFor(accept: (e: Envelope) => boolean, what: string, ms = DEFAULT_WAIT_MS): Promise<Envelope> {
    let found: Envelope | undefined;
    await this.until(() => (found = this.received.find(accept)) !== undefined, what, ms);
    return found!;
  }

  /** The message envelopes of a channel, in arrival order. */
  messages(channel: string): Envelope[] {
    return this.received.filter((e) => e.type === 'message' && e.channel === channel);
  }

  /** Waits until a message with at least this offset arrived on the channel, then returns all of them. */
  async messagesUpTo(channel: string, offset: number, ms = DEFAULT_WAIT_MS): Promise<Envelope[]> {
    await this.until(() => this.messages(channel).some((m) => (m.offset ?? 0) >= offset), `offset ${offset} on ${channel}`, ms);
    return this.messages(channel);
  }

  /** Resolves once `condition` holds, checked on every envelope; rejects after `ms` or on close. */
  until(condition: () => boolean, what: string, ms = DEFAULT_WAIT_MS): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (err?: Error): void => {
        clearTimeout(timer);
        this.wakers.delete(check);
        if (err) reject(err);
        else resolve();
      };
      const check = (): void => {
        if (condition()) done();
        else if (this.closeCode !== null) done(new Error(`closed (${this.closeCode}) while waiting for ${what}`));
      };
      const timer = setTimeout(() => done(new Error(`no ${what} within ${ms} ms (${this.received.length} envelopes received)`)), ms);
      this.wakers.add(check);
    });
  }

  close(): void {
    if (this.closeCode === null) this.ws.close();
  }

  /** Closes and waits for the close to complete. */
  async closed(ms = DEFAULT_WAIT_MS): Promise<void> {
    this.close();
    await this.until(() => this.closeCode !== null, 'the close', ms).catch(() => this.ws.terminate());
  }

  private wake(): void {
    for (const check of [...this.wakers]) check();
  }
}
