// Server-Sent Events over a fetch body, parsed as the HTML spec's EventSource does: lines end with
// CRLF, LF or CR (also split across chunks); `data` fields join with newlines; an empty line
// dispatches; comment lines (keep-alives) are skipped; an event without data is dropped. `retry` is
// ignored: reconnecting is the client's business, with its own backoff.
import type { StreamReaderLike } from './session.js';

export interface SseEvent {
  /** 'message' unless the event named itself. */
  event: string;
  data: string;
  id: string | undefined;
}

export class SseParser {
  private rest = '';
  // A chunk ended in CR: a LF opening the next one belongs to the same line end.
  private afterCr = false;
  private data: string[] = [];
  private event = '';
  private id: string | undefined;

  constructor(private readonly onEvent: (event: SseEvent) => void) {}

  push(text: string): void {
    let chunk = text;
    if (this.afterCr && chunk.startsWith('\n')) chunk = chunk.slice(1);
    this.afterCr = false;
    const buffer = this.rest + chunk;
    let start = 0;
    // What was left over holds no line end: scan only the new text.
    let end = lineEnd(buffer, this.rest.length);
    while (end !== -1) {
      this.line(buffer.slice(start, end));
      start = end + 1;
      if (buffer.charCodeAt(end) === CR) {
        if (start === buffer.length) this.afterCr = true;
        else if (buffer.charCodeAt(start) === LF) start++;
      }
      end = lineEnd(buffer, start);
    }
    this.rest = buffer.slice(start);
  }

  private line(line: string): void {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.id = value;
  }

  private dispatch(): void {
    const data = this.data;
    const event = this.event || 'message';
    this.data = [];
    this.event = '';
    if (data.length === 0) return;
    this.onEvent({ event, data: data.join('\n'), id: this.id });
  }
}

const CR = 13;
const LF = 10;

function lineEnd(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === LF || c === CR) return i;
  }
  return -1;
}

/** Reads the stream to its end, handing each event to `onEvent`; rejects when the stream breaks. */
export async function readSse(reader: StreamReaderLike, onEvent: (event: SseEvent) => void): Promise<void> {
  const decoder = new TextDecoder();
  const parser = new SseParser(onEvent);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (value) parser.push(decoder.decode(value, { stream: true }));
  }
  parser.push(decoder.decode());
}
