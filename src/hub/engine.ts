// The hub's engine: where messages get their offsets, where history and presence live, and how live
// messages reach this node. The transports (WebSocket, SSE, long-polling, HTTP) only talk to this
// interface, so the in-memory engine and a Redis engine are interchangeable.

export interface HubMessage {
  channel: string;
  /** Per channel, from 1, only ever growing; no two messages of a channel share one. */
  offset: number;
  /** ISO 8601, when the engine accepted it. */
  time: string;
  data: unknown;
  /** The identity that published it. */
  publisher?: string;
}

export interface HistoryQuery {
  /** Only messages with an offset above this. */
  since?: number;
  /** At most this many, the oldest first. */
  limit?: number;
}

export interface HistoryResult {
  messages: HubMessage[];
  /** The channel's latest offset (0 before the first message). */
  offset: number;
  /**
   * False when `since` reaches further back than history still holds (messages were dropped by the
   * count or age bounds): the caller has lost messages and must be told so.
   */
  recovered: boolean;
}

export interface PresenceMember {
  clientId: string;
  /** The authenticated user, when there is one. */
  user?: string;
  info?: unknown;
}

export interface PresenceEvent {
  channel: string;
  event: 'join' | 'leave';
  member: PresenceMember;
}

export interface EngineStats {
  channels: number;
  historyMessages: number;
}

/** A node's subscription to a channel's live messages. */
export interface LiveFeed {
  /**
   * Resolves once live messages flow (an engine that subscribes over the network must first be
   * acknowledged): whatever is published after that reaches the listener.
   */
  ready: Promise<void>;
  stop(): void;
}

export interface Engine {
  publish(channel: string, data: unknown, publisher?: string): Promise<HubMessage>;
  history(channel: string, query?: HistoryQuery): Promise<HistoryResult>;
  /**
   * Live messages of a channel, in offset order. A gap in offsets (a message lost on its way to this
   * node) is the caller's to fill from history.
   */
  subscribe(channel: string, listener: (message: HubMessage) => void): LiveFeed;
  join(channel: string, member: PresenceMember): Promise<void>;
  leave(channel: string, clientId: string): Promise<void>;
  presence(channel: string): Promise<PresenceMember[]>;
  onPresence(channel: string, listener: (event: PresenceEvent) => void): () => void;
  stats(): EngineStats;
  close(): Promise<void>;
}

export class EngineError extends Error {
  constructor(message: string, readonly status = 503) {
    super(message);
  }
}
