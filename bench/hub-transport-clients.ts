/**
 * One subscriber of the hub per transport, as a plain client would be written, each exposing the
 * TCP socket it uses so that bytes can be counted where they meet the wire:
 *
 *   websocket     GET /ws, a subscribe envelope, then message frames (pings answered)
 *   sse           GET /sse?channel=C, then one event per message
 *   long-polling  GET /poll?channel=C&since=N, again as soon as each answer arrives
 *   polling       GET /api/channels/C/history?since=N&limit=1000 every POLL_INTERVAL_MS (again at
 *                 once when an answer is a full page)
 *
 * The HTTP clients use node's http module over one keep-alive connection, so they send what a
 * small client sends (Host, Connection: keep-alive); a browser adds a few hundred bytes of
 * headers to every request (see docs/transports.md).
 */
import http from 'node:http';
import net from 'node:net';
import { nowMicros } from './hub-timed-data.js';
import { ServerFrameReader, textFrame, upgradeRequest, UpgradeResponse } from './hub-wire.js';

export const TRANSPORTS = ['websocket', 'sse', 'long-polling', 'polling'] as const;
export type Transport = (typeof TRANSPORTS)[number];

export const POLL_INTERVAL_MS = 1000;
const PAGE = 1000;
const CONNECT_TIMEOUT_MS = 10_000;

/** Called for every message, with its offset, its send time and when it was read, in µs. */
export type OnMessage = (offset: number, sentMicros: number, receivedMicros: number) => void;

export interface TransportClient {
  /** Resolves once the client is listening: subscribed, or its first request is answered or held. */
  open(): Promise<void>;
  /** Every TCP socket the client has used, the current one last. */
  readonly sockets: readonly net.Socket[];
  close(): void;
}

export function transportClient(transport: Transport, port: number, channel: string, onMessage: OnMessage, onError: (reason: string) => void): TransportClient {
  switch (transport) {
    case 'websocket': return new WebSocketClient(port, channel, onMessage, onError);
    case 'sse': return new SseClient(port, channel, onMessage, onError);
    case 'long-polling': return new LongPollClient(port, channel, onMessage, onError);
    case 'polling': return new PollClient(port, channel, onMessage, onError);
  }
}

/** A message as the hub sends it, with the timed data the benchmark publishes (hub-timed-data.ts). */
interface TimedMessage {
  type?: string;
  offset: number;
  data: { sent: number };
}

function readEnvelope(text: string, receivedMicros: number, onMessage: OnMessage): void {
  const envelope = JSON.parse(text) as TimedMessage;
  if (envelope.type === 'message') onMessage(envelope.offset, envelope.data.sent, receivedMicros);
}

class WebSocketClient implements TransportClient {
  readonly sockets: net.Socket[] = [];
  private closed = false;

  constructor(
    private readonly port: number,
    private readonly channel: string,
    private readonly onMessage: OnMessage,
    private readonly onError: (reason: string) => void,
  ) {}

  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port: this.port });
      this.sockets.push(socket);
      socket.setNoDelay(true);
      const response = new UpgradeResponse();
      let state: 'handshake' | 'subscribing' | 'live' = 'handshake';
      let receivedAt = 0;
      const fail = (reason: string): void => {
        if (state === 'live') {
          if (!this.closed) this.onError(`websocket: ${reason}`);
        } else {
          reject(new Error(`websocket: ${reason}`));
          socket.destroy();
        }
      };
      const reader = new ServerFrameReader({
        message: (payload) => {
          const text = payload!.toString();
          if (state === 'live') return readEnvelope(text, receivedAt, this.onMessage);
          if (!text.includes('"type":"subscribed"')) return fail(`subscribe refused: ${text.slice(0, 200)}`);
          state = 'live';
          resolve();
        },
        failed: fail,
        reply: (frame) => socket.write(frame),
      }, true);
      const timer = setTimeout(() => fail('not subscribed in time'), CONNECT_TIMEOUT_MS);
      socket.once('connect', () => socket.write(upgradeRequest(this.port)));
      socket.on('data', (chunk: Buffer) => {
        receivedAt = nowMicros();
        let rest: Buffer | null = chunk;
        if (state === 'handshake') {
          try {
            rest = response.push(chunk);
          } catch (error) {
            return fail((error as Error).message);
          }
          if (rest === null) return;
          clearTimeout(timer);
          state = 'subscribing';
          socket.write(textFrame(`{"type":"subscribe","channel":"${this.channel}"}`));
        }
        reader.push(rest, 0, rest.length);
      });
      socket.on('error', (error) => fail(error.message));
      socket.on('close', () => fail('closed by the hub'));
    });
  }

  close(): void {
    this.closed = true;
    for (const socket of this.sockets) socket.destroy();
  }
}

/** What the HTTP clients share: one keep-alive connection, its sockets remembered for counting. */
abstract class HttpClient implements TransportClient {
  readonly sockets: net.Socket[] = [];
  protected closed = false;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

  constructor(
    protected readonly port: number,
    protected readonly channel: string,
    protected readonly onMessage: OnMessage,
    protected readonly onError: (reason: string) => void,
  ) {}

  abstract open(): Promise<void>;

  close(): void {
    this.closed = true;
    this.agent.destroy();
    for (const socket of this.sockets) socket.destroy();
  }

  /** `sent` is called once the request is on the wire. */
  protected get(path: string, sent?: () => void): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: this.port, path, agent: this.agent }, resolve);
      req.on('socket', (socket: net.Socket) => {
        if (!this.sockets.includes(socket)) this.sockets.push(socket);
        socket.setNoDelay(true);
      });
      if (sent) req.on('finish', sent);
      req.on('error', reject);
    });
  }

  /** GET with a JSON answer; resolves with the body and when its last byte was read. */
  protected async getJson<T>(path: string, sent?: () => void): Promise<{ body: T; receivedMicros: number }> {
    const res = await this.get(path, sent);
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    const receivedMicros = nowMicros();
    if (res.statusCode !== 200) throw new Error(`${path}: HTTP ${res.statusCode}`);
    return { body: JSON.parse(Buffer.concat(chunks).toString()) as T, receivedMicros };
  }
}

class SseClient extends HttpClient {
  async open(): Promise<void> {
    const res = await this.get(`/sse?channel=${encodeURIComponent(this.channel)}`);
    if (res.statusCode !== 200) throw new Error(`sse: HTTP ${res.statusCode}`);
    res.setEncoding('utf8');
    return new Promise((resolve, reject) => {
      let pending = '';
      let subscribed = false;
      res.on('data', (text: string) => {
        const receivedAt = nowMicros();
        pending += text;
        let end: number;
        while ((end = pending.indexOf('\n\n')) !== -1) {
          const event = pending.slice(0, end);
          pending = pending.slice(end + 2);
          const type = /^event: (.*)$/m.exec(event)?.[1];
          const data = /^data: (.*)$/m.exec(event)?.[1];
          if (type === 'subscribed' && !subscribed) {
            subscribed = true;
            resolve();
          } else if (type === 'message' && data !== undefined) {
            readEnvelope(data, receivedAt, this.onMessage);
          }
        }
      });
      res.on('end', () => (subscribed ? !this.closed && this.onError('sse: stream ended') : reject(new Error('sse: ended before subscribed'))));
      res.on('error', (error) => (subscribed ? !this.closed && this.onError(`sse: ${error.message}`) : reject(error)));
    });
  }
}

interface PollAnswer {
  offset: number;
  messages: TimedMessage[];
}

function deliverAll(answer: PollAnswer, receivedMicros: number, onMessage: OnMessage): void {
  for (const m of answer.messages) onMessage(m.offset, m.data.sent, receivedMicros);
}

class LongPollClient extends HttpClient {
  private since = 0;

  /** Resolves once the first request, which the hub holds until a message comes, is on the wire. */
  open(): Promise<void> {
    return new Promise((resolve) => void this.poll(resolve));
  }

  private async poll(firstSent: () => void): Promise<void> {
    for (let sent: (() => void) | undefined = firstSent; !this.closed; sent = undefined) {
      let answer;
      try {
        answer = await this.getJson<PollAnswer>(`/poll?channel=${encodeURIComponent(this.channel)}&since=${this.since}`, sent);
      } catch (error) {
        if (!this.closed) this.onError(`long-polling: ${(error as Error).message}`);
        return;
      }
      this.since = answer.body.offset;
      deliverAll(answer.body, answer.receivedMicros, this.onMessage);
    }
  }
}

class PollClient extends HttpClient {
  private since = 0;
  private timer: NodeJS.Timeout | null = null;
  private busy = false;

  /** The first poll is answered (empty) before open() resolves; the next comes POLL_INTERVAL_MS later. */
  async open(): Promise<void> {
    await this.poll();
    this.timer = setInterval(() => void this.poll(), POLL_INTERVAL_MS);
  }

  override close(): void {
    if (this.timer) clearInterval(this.timer);
    super.close();
  }

  private async poll(): Promise<void> {
    if (this.busy || this.closed) return;
    this.busy = true;
    try {
      // A full page means more is waiting: fetch it now rather than a whole interval later.
      for (let full = true; full && !this.closed;) {
        const path = `/api/channels/${encodeURIComponent(this.channel)}/history?since=${this.since}&limit=${PAGE}`;
        const answer = await this.getJson<PollAnswer>(path);
        const messages = answer.body.messages;
        if (messages.length > 0) this.since = messages[messages.length - 1]!.offset;
        deliverAll(answer.body, answer.receivedMicros, this.onMessage);
        full = messages.length === PAGE;
      }
    } catch (error) {
      if (!this.closed) this.onError(`polling: ${(error as Error).message}`);
    } finally {
      this.busy = false;
    }
  }
}
