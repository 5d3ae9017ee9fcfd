// The Server-Sent Events fallback: one GET /sse stream per channel (the hub's streams carry one
// channel each), read through fetch rather than EventSource, which Node lacks and which would resume
// on its own behind the client's back. A stream opens with a `subscribed` event, then one `message`
// event per message. A stream that does not say `subscribed` within connectTimeoutMs (a proxy that
// buffers the response, say) counts as failed.
import { HubError } from './hub-error.js';
import { type FeedEvents, HttpSession } from './http-session.js';
import { parseObject } from './hub-http.js';
import { readSse, type SseEvent } from './sse-reader.js';
import type { HubMessage, Transport, WireSubscription } from './session.js';

export class SseSession extends HttpSession {
  readonly transport: Transport = 'sse';

  protected async feed(subscription: WireSubscription, signal: AbortSignal, events: FeedEvents): Promise<void> {
    const { channel, since } = subscription;
    const url = this.env.urls.http('sse', { channel, since });
    let subscribed = false;
    const controller = new AbortController();
    const stop = () => controller.abort();
    signal.addEventListener('abort', stop, { once: true });
    const timer = setTimeout(stop, this.env.connectTimeoutMs);
    const onEvent = (event: SseEvent) => {
      const envelope = parseObject(event.data, channel);
      if (event.event === 'subscribed') {
        subscribed = true;
        clearTimeout(timer);
        events.subscribed(Number(envelope.offset), typeof envelope.recovered === 'boolean' ? envelope.recovered : undefined);
      } else if (event.event === 'message' && subscribed && typeof envelope.offset === 'number') {
        events.message(envelope as unknown as HubMessage);
      }
    };
    try {
      await this.http.request(url, { headers: { Accept: 'text/event-stream' } }, { channel, signal: controller.signal, timeoutMs: null }, async (response) => {
        const type = response.headers.get('content-type') ?? '';
        if (!type.startsWith('text/event-stream')) throw new HubError('protocol', `expected an event stream, got ${type || 'no Content-Type'}`, { channel });
        if (!response.body) throw new HubError('protocol', 'this fetch cannot stream a response body', { channel });
        await readSse(response.body.getReader(), onEvent);
      });
    } catch (err) {
      if (!subscribed && controller.signal.aborted && !signal.aborted) {
        throw new HubError('timeout', `the event stream did not start within ${this.env.connectTimeoutMs} ms`, { channel });
      }
      throw err;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', stop);
    }
  }
}
