// A Server-Sent Events reader over fetch, for tests: it parses the stream as the EventSource spec does
// (fields id, event, data, retry; comment lines kept so tests can see keep-alives) and hands out events
// one at a time, every wait bounded.

export interface SseEvent {
  /** 'message' unless the event named itself. */
  event: string;
  data: string;
  id?: string;
  retry?: number;
}

export type SseItem = { kind: 'event'; event: SseEvent } | { kind: 'comment'; text: string };

export class SseClient {
  readonly status: number;
  readonly headers: Headers;
  /** The last retry field the server sent. */
  retry: number | undefined;
  private readonly items: SseItem[] = [];
  private waiter: (() => void) | null = null;
  private ended = false;
  private failure: unknown = null;

  private constructor(response: Response, private readonly controller: AbortController) {
    this.status = response.status;
    this.headers = response.headers;
    if (response.body) void this.pump(response.body);
    else this.ended = true;
  }

  static async open(url: string, headers: Record<string, string> = {}, timeoutMs = 5000): Promise<SseClient> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error(`no response from ${url} in ${timeoutMs} ms`)), timeoutMs);
    try {
      const response = await fetch(url, { headers: { Accept: 'text/event-stream', ...headers }, signal: controller.signal });
      return new SseClient(response, controller);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The next item (event or comment) that `accept` takes, skipping others; rejects after `timeoutMs`. */
  async next(accept: (item: SseItem) => boolean = () => true, timeoutMs = 5000): Promise<SseItem> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.items.length > 0) {
        const item = this.items.shift()!;
        if (accept(item)) return item;
      }
      if (this.failure !== null) throw this.failure;
      if (this.ended) throw new Error('the stream ended');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching SSE item within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.waiter = null;
          resolve();
        }, left);
        this.waiter = () => {
          clearTimeout(timer);
          this.waiter = null;
          resolve();
        };
      });
    }
  }

  /** The next event (comments skipped), optionally only of one type. */
  async event(type?: string, timeoutMs = 5000): Promise<SseEvent> {
    const item = await this.next((i) => i.kind === 'event' && (type === undefined || i.event.event === type), timeoutMs);
    return (item as Extract<SseItem, { kind: 'event' }>).event;
  }

  /** Resolves once the server has ended the stream (or it failed), within `timeoutMs`. */
  async closed(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended && this.failure === null) {
      if (Date.now() >= deadline) throw new Error(`the stream stayed open for ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  close(): void {
    this.controller.abort();
  }

  private async pump(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = '';
    let current: SseEvent = { event: 'message', data: '' };
    let hasData = false;
    try {
      for await (const chunk of body) {
        buffer += decoder.decode(chunk, { stream: true });
        let newline;
        while ((newline = buffer.search(/\r\n|\r|\n/)) !== -1) {
          const line = buffer.slice(0, newline);
          buffer = buffer.slice(newline + (buffer.startsWith('\r\n', newline) ? 2 : 1));
          if (line === '') {
            if (hasData) this.push({ kind: 'event', event: current });
            current = { event: 'message', data: '' };
            hasData = false;
          } else if (line.startsWith(':')) {
            this.push({ kind: 'comment', text: line.slice(1).trim() });
          } else {
            const colon = line.indexOf(':');
            const field = colon === -1 ? line : line.slice(0, colon);
            let value = colon === -1 ? '' : line.slice(colon + 1);
            if (value.startsWith(' ')) value = value.slice(1);
            if (field === 'data') {
              current.data = hasData ? `${current.data}\n${value}` : value;
              hasData = true;
            } else if (field === 'event') current.event = value;
            else if (field === 'id') current.id = value;
            else if (field === 'retry') this.retry = current.retry = Number(value);
          }
        }
      }
      this.ended = true;
    } catch (err) {
      this.failure = err;
    }
    this.waiter?.();
  }

  private push(item: SseItem): void {
    this.items.push(item);
    this.waiter?.();
  }
}
