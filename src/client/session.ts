// What HubClient and its three transports (ws-session.ts, sse-session.ts, poll-session.ts) agree on,
// and the few browser types they use. tsconfig has no DOM library and this code must run in browsers
// and in Node alike, so the platform objects are described here by the members actually used.
import type { HubError } from './hub-error.js';

export type Transport = 'websocket' | 'sse' | 'poll';

/** A message of a channel, as the hub delivers it. */
export interface HubMessage {
  channel: string;
  /** 1, 2, 3 … per channel; resuming after an offset never skips or repeats one. */
  offset: number;
  data: unknown;
  /** When the hub accepted it, ISO 8601. */
  time: string;
  /** The publisher's identity (a token's sub, apikey:<n>, anonymous). */
  publisher?: string;
}

export interface Member {
  clientId: string;
  user?: string;
  info?: unknown;
}

export interface PresenceEvent {
  channel: string;
  event: 'join' | 'leave';
  member: Member;
}

// ---- the platform ----

/** The part of the browser's WebSocket (and of duplex's) that the client uses. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  // `any`: each implementation has its own event classes; only `data`, `code` and `reason` are read.
  onopen: ((ev: any) => unknown) | null;
  onmessage: ((ev: any) => unknown) | null;
  onclose: ((ev: any) => unknown) | null;
  onerror: ((ev: any) => unknown) | null;
}

export type WebSocketConstructorLike = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface FetchInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}

export interface StreamReaderLike {
  read(): Promise<{ done: boolean; value?: Uint8Array }>;
  cancel(reason?: unknown): Promise<void>;
}

export interface ResponseLike {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  readonly body: { getReader(): StreamReaderLike } | null;
  text(): Promise<string>;
}

export type FetchLike = (url: string, init?: FetchInit) => Promise<ResponseLike>;

/** What a session needs from its surroundings; built once per client. */
export interface SessionEnv {
  urls: Endpoints;
  token: string | undefined;
  WebSocket: WebSocketConstructorLike | undefined;
  fetch: FetchLike | undefined;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  pollTimeoutMs: number;
}

export interface Endpoints {
  /** ws(s)://…/ws */
  readonly ws: string;
  /** An http(s) URL below the hub's base, with the query parameters that are defined. */
  http(path: string, query?: Record<string, string | number | undefined>): string;
}

// ---- client ↔ session ----

/** A subscription as a session establishes it. */
export interface WireSubscription {
  channel: string;
  /** Resume after this offset; undefined: from now on. */
  since: number | undefined;
  /** This client's presence info in the channel (WebSocket only: the fallbacks have no presence). */
  presence: unknown;
  /** Ask for others' join and leave events (WebSocket only). */
  presenceEvents: boolean;
}

export interface SessionEnd {
  error: HubError;
  /** The session had opened (as opposed to failing to). */
  opened: boolean;
  /** Retrying cannot help (bad credentials): the client must close. */
  fatal: boolean;
}

/** How a session reports to the client. Calls come only after start(), never after the session ended. */
export interface SessionHost {
  subscriptions(): WireSubscription[];
  /** The offset to resume a channel after, as it stands now (a poll loop asks before each request). */
  resumeFrom(channel: string): number | undefined;
  opened(): void;
  ended(end: SessionEnd): void;
  subscribed(channel: string, offset: number, recovered: boolean | undefined): void;
  /** The hub refused the subscription (forbidden, invalid channel …): it is over, retrying will not help. */
  refused(channel: string, error: HubError): void;
  /** After a poll answer: where the hub says the channel stands (lower after a restart of the hub). */
  rewind(channel: string, offset: number): void;
  message(message: HubMessage): void;
  presence(event: PresenceEvent): void;
  /** An error envelope that answers no request of ours. */
  error(error: HubError): void;
}

/** One attempt at a connection over one transport; a reconnect is a new session. */
export interface Session {
  readonly transport: Transport;
  start(host: SessionHost): void;
  subscribe(subscription: WireSubscription): void;
  unsubscribe(channel: string): void;
  publish(channel: string, data: unknown): Promise<{ offset: number }>;
  presence(channel: string): Promise<Member[]>;
  /** Ends the session without reporting to the host; pending requests fail with `error`. */
  close(error: HubError): void;
}
