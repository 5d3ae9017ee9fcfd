// The long-polling fallback: per channel, one GET /poll at a time, each sending as `since` the last
// offset the client has, and the hub holding it until there is something after it (or pollTimeoutMs
// passes). Before the first poll, the channel's history position (GET …/history?limit=0) tells where
// the channel stands, so a subscription is confirmed at once rather than at the first message.
import { channelPath } from './endpoints.js';
import { type FeedEvents, HttpSession } from './http-session.js';
import { parseObject } from './hub-http.js';
import type { HubMessage, Transport, WireSubscription } from './session.js';

export class PollSession extends HttpSession {
  readonly transport: Transport = 'poll';

  protected async feed(subscription: WireSubscription, signal: AbortSignal, events: FeedEvents): Promise<void> {
    const { channel, since } = subscription;
    const query = since === undefined ? '?limit=0' : `?limit=0&since=${since}`;
    const position = await this.http.json(channelPath(channel, 'history') + query, {}, { channel, signal });
    events.subscribed(Number(position.offset), since === undefined ? undefined : position.recovered === true);
    const { pollTimeoutMs, requestTimeoutMs } = this.env;
    for (;;) {
      const url = this.env.urls.http('poll', { channel, since: events.resumeFrom(), timeout: pollTimeoutMs });
      const answer = await this.http.request(url, {}, { channel, signal, timeoutMs: pollTimeoutMs + requestTimeoutMs }, async (response) => parseObject(await response.text(), channel));
      const messages = Array.isArray(answer.messages) ? (answer.messages as HubMessage[]) : [];
      for (const message of messages) if (typeof message?.offset === 'number') events.message(message);
      if (typeof answer.offset === 'number') events.rewind(answer.offset);
    }
  }
}
