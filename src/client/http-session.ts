// What the two HTTP fallbacks (SSE, long-polling) share: one feed per subscribed channel, publishing
// and presence through the HTTP API, and the rules that turn a feed's failure into the session's.
//   - The session opens when a feed is live (its channel's position is known), or, with nothing
//     subscribed, when GET /api/channels answers.
//   - A feed refused for its channel (400, 403, 404) ends that subscription only; a 401 ends the
//     session for good; any other failure (network, 5xx, a stream that ends) ends the session, and
//     the client reconnects every feed from its last offset.
//   - Publishes go one at a time, so they are stored in the order publish() was called.
import { channelPath } from './endpoints.js';
import { HubError } from './hub-error.js';
import { HubHttp } from './hub-http.js';
import type { HubMessage, Member, Session, SessionEnv, SessionHost, Transport, WireSubscription } from './session.js';

/** How a feed reports; calls after the feed was stopped are ignored. */
export interface FeedEvents {
  subscribed(offset: number, recovered: boolean | undefined): void;
  /** The offset to resume after, as the client stands now. */
  resumeFrom(): number | undefined;
  message(message: HubMessage): void;
  rewind(offset: number): void;
}

export abstract class HttpSession implements Session {
  abstract readonly transport: Transport;
  protected readonly http: HubHttp;
  private host: SessionHost | null = null;
  private readonly feeds = new Map<string, AbortController>();
  private opened = false;
  private ended = false;
  // Cancels the API requests in flight when the client closes.
  private readonly requests = new AbortController();
  private publishing: Promise<unknown> = Promise.resolve();

  constructor(protected readonly env: SessionEnv) {
    this.http = new HubHttp(env);
  }

  /**
   * Runs a channel's feed until `signal` aborts (it may then return or throw anything) or it fails
   * (it throws, or returns: a feed has no natural end).
   */
  protected abstract feed(subscription: WireSubscription, signal: AbortSignal, events: FeedEvents): Promise<void>;

  start(host: SessionHost): void {
    this.host = host;
    const subscriptions = host.subscriptions();
    for (const subscription of subscriptions) this.subscribe(subscription);
    if (subscriptions.length === 0) this.probe();
  }

  subscribe(subscription: WireSubscription): void {
    if (this.ended) return;
    const { channel } = subscription;
    this.feeds.get(channel)?.abort();
    const controller = new AbortController();
    this.feeds.set(channel, controller);
    const current = () => !this.ended && !controller.signal.aborted;
    const host = this.host!;
    const events: FeedEvents = {
      subscribed: (offset, recovered) => {
        if (!current()) return;
        host.subscribed(channel, offset, recovered);
        this.open();
      },
      resumeFrom: () => host.resumeFrom(channel),
      message: (message) => {
        if (current()) host.message(message);
      },
      rewind: (offset) => {
        if (current()) host.rewind(channel, offset);
      },
    };
    this.feed(subscription, controller.signal, events).then(
      () => new HubError('connection_lost', 'the stream ended', { channel }),
      (err: unknown) => (err instanceof HubError ? err : new HubError('network', String(err), { channel })),
    ).then((error) => {
      if (current()) this.feedFailed(channel, error);
    });
  }

  unsubscribe(channel: string): void {
    this.feeds.get(channel)?.abort();
    this.feeds.delete(channel);
  }

  publish(channel: string, data: unknown): Promise<{ offset: number }> {
    const send = () => this.http.json(channelPath(channel, 'publish'), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(data),
    }, { channel, signal: this.requests.signal });
    const result = this.publishing.then(send).then((answer) => ({ offset: Number(answer.offset) }));
    this.publishing = result.catch(() => {});
    return this.guard(result);
  }

  presence(channel: string): Promise<Member[]> {
    const answer = this.http.json(channelPath(channel, 'presence'), {}, { channel, signal: this.requests.signal });
    return this.guard(answer.then((body) => (Array.isArray(body.members) ? (body.members as Member[]) : [])));
  }

  close(): void {
    if (this.ended) return;
    this.ended = true;
    this.stopFeeds();
    this.requests.abort();
  }

  /** A refused credential seen by an API request ends the session as surely as one seen by a feed. */
  private guard<T>(request: Promise<T>): Promise<T> {
    return request.catch((err: unknown) => {
      if (err instanceof HubError && err.code === 'unauthorized') this.end(err, true);
      throw err;
    });
  }

  private open(): void {
    if (this.opened || this.ended) return;
    this.opened = true;
    this.host!.opened();
  }

  /**
   * With no feed to prove the way to the hub, one cheap request does: the channel list, the one
   * endpoint that checks credentials without naming a channel.
   */
  private probe(): void {
    this.http.json('api/channels', {}, { signal: this.requests.signal }).then(
      () => this.open(),
      (err: unknown) => {
        if (this.opened) return;
        const error = err instanceof HubError ? err : new HubError('network', String(err));
        this.end(error, error.code === 'unauthorized');
      },
    );
  }

  private feedFailed(channel: string, error: HubError): void {
    if (error.code === 'unauthorized') return this.end(error, true);
    const status = error.status;
    if (status === 400 || status === 403 || status === 404) {
      this.feeds.delete(channel);
      this.host!.refused(channel, error);
      if (!this.opened && this.feeds.size === 0) this.probe();
      return;
    }
    this.end(error, false);
  }

  private end(error: HubError, fatal: boolean): void {
    if (this.ended) return;
    this.ended = true;
    this.stopFeeds();
    this.host!.ended({ error, opened: this.opened, fatal });
  }

  private stopFeeds(): void {
    for (const controller of this.feeds.values()) controller.abort();
    this.feeds.clear();
  }
}
