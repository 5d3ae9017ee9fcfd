// The embedded engine: everything in this process's memory. Offsets, history and presence are lost on
// restart; a client resuming with an offset this process never reached is told `recovered: false`.
import type {
  Engine, EngineStats, HistoryQuery, HistoryResult, HubMessage, LiveFeed, PresenceEvent, PresenceMember,
} from './engine.js';

export interface HistoryLimits {
  /** Messages kept per channel; default 1000. */
  historySize?: number;
  /** Milliseconds a message is kept; default 24 h. */
  historyTtl?: number;
}

interface ChannelState {
  offset: number;
  history: HubMessage[];
  listeners: Set<(message: HubMessage) => void>;
  members: Map<string, PresenceMember>;
  presenceListeners: Set<(event: PresenceEvent) => void>;
}

export class MemoryEngine implements Engine {
  private readonly channels = new Map<string, ChannelState>();
  private readonly historySize: number;
  private readonly historyTtl: number;
  private historyTotal = 0;

  constructor(limits: HistoryLimits = {}, private readonly now: () => number = Date.now) {
    this.historySize = limits.historySize ?? 1000;
    this.historyTtl = limits.historyTtl ?? 24 * 60 * 60 * 1000;
  }

  async publish(channel: string, data: unknown, publisher?: string): Promise<HubMessage> {
    const state = this.state(channel);
    const now = this.now();
    const message: HubMessage = { channel, offset: ++state.offset, time: new Date(now).toISOString(), data };
    if (publisher !== undefined) message.publisher = publisher;
    if (this.historySize > 0) {
      state.history.push(message);
      this.historyTotal++;
    }
    this.trim(state, now);
    for (const listener of state.listeners) listener(message);
    return message;
  }

  async history(channel: string, query: HistoryQuery = {}): Promise<HistoryResult> {
    const state = this.channels.get(channel);
    if (!state) return { messages: [], offset: 0, recovered: query.since === undefined || query.since === 0 };
    this.trim(state, this.now());
    const since = query.since ?? 0;
    const history = state.history;
    const oldest = history.length > 0 ? history[0]!.offset : state.offset + 1;
    // Offsets since+1 … oldest-1 are gone, or `since` is beyond anything this engine has issued.
    const recovered = query.since === undefined || (since >= oldest - 1 && since <= state.offset);
    let start = Math.max(0, since - oldest + 1);
    if (since > state.offset) start = history.length;
    const end = query.limit !== undefined ? Math.min(history.length, start + query.limit) : history.length;
    return { messages: history.slice(start, end), offset: state.offset, recovered };
  }

  subscribe(channel: string, listener: (message: HubMessage) => void): LiveFeed {
    const state = this.state(channel);
    state.listeners.add(listener);
    return {
      ready: Promise.resolve(),
      stop: () => {
        state.listeners.delete(listener);
        this.forgetIfUnused(channel, state);
      },
    };
  }

  async join(channel: string, member: PresenceMember): Promise<void> {
    const state = this.state(channel);
    const known = state.members.has(member.clientId);
    state.members.set(member.clientId, member);
    if (!known) for (const listener of state.presenceListeners) listener({ channel, event: 'join', member });
  }

  async leave(channel: string, clientId: string): Promise<void> {
    const state = this.channels.get(channel);
    const member = state?.members.get(clientId);
    if (!state || !member) return;
    state.members.delete(clientId);
    for (const listener of state.presenceListeners) listener({ channel, event: 'leave', member });
    this.forgetIfUnused(channel, state);
  }

  async presence(channel: string): Promise<PresenceMember[]> {
    return [...(this.channels.get(channel)?.members.values() ?? [])];
  }

  onPresence(channel: string, listener: (event: PresenceEvent) => void): () => void {
    const state = this.state(channel);
    state.presenceListeners.add(listener);
    return () => {
      state.presenceListeners.delete(listener);
      this.forgetIfUnused(channel, state);
    };
  }

  stats(): EngineStats {
    return { channels: this.channels.size, historyMessages: this.historyTotal };
  }

  /** Per-channel figures for the dashboard. */
  channelStats(): Array<{ channel: string; offset: number; history: number; subscribers: number; members: number }> {
    return [...this.channels].map(([channel, s]) => ({
      channel, offset: s.offset, history: s.history.length, subscribers: s.listeners.size, members: s.members.size,
    }));
  }

  async close(): Promise<void> {
    this.channels.clear();
    this.historyTotal = 0;
  }

  private state(channel: string): ChannelState {
    let state = this.channels.get(channel);
    if (!state) {
      state = { offset: 0, history: [], listeners: new Set(), members: new Map(), presenceListeners: new Set() };
      this.channels.set(channel, state);
    }
    return state;
  }

  private trim(state: ChannelState, now: number): void {
    const history = state.history;
    let drop = Math.max(0, history.length - this.historySize);
    const cutoff = new Date(now - this.historyTtl).toISOString();
    while (drop < history.length && history[drop]!.time < cutoff) drop++;
    if (drop > 0) {
      history.splice(0, drop);
      this.historyTotal -= drop;
    }
  }

  /** A channel that never had a message and has nobody in it costs nothing once left. */
  private forgetIfUnused(channel: string, state: ChannelState): void {
    if (state.offset === 0 && state.listeners.size === 0 && state.members.size === 0 && state.presenceListeners.size === 0) {
      this.channels.delete(channel);
    }
  }
}
