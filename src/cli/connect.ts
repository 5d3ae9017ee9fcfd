// `duplex connect URL`: an interactive WebSocket client (like wscat) that also behaves in a pipe.
//
// Exit status: 0 when the conversation ends with close code 1000, 1001 or 1005 (a close frame without
// a code), whoever started the closing; 1 for anything else (cannot connect, abnormal closure, other
// codes). Every close we did not ask for, and every failure, is reported on stderr in one line.
import { createInterface, type Interface } from 'node:readline';
import { WebSocket, type CloseEvent, type ErrorEvent, type MessageEvent } from '../index.js';
import { CliError, describeFailure } from './errors.js';
import { shutdownSignal } from './shutdown.js';
import { Transcript } from './transcript.js';

export interface ConnectOptions {
  protocol?: string[];
  header?: Record<string, string>;
  wait?: boolean;
  binary?: boolean;
  /** Offer permessage-deflate (RFC 7692). */
  deflate?: boolean;
  handshakeTimeout: number;
}

/** Reading stdin pauses while this many bytes wait to be written, so a huge pipe cannot fill memory. */
const HIGH_WATER_BYTES = 1 << 20;
/** How long the server gets to answer our close frame before the connection is dropped. */
const CLOSE_TIMEOUT_MS = 5000;
const NORMAL_CLOSE_CODES = new Set([1000, 1001, 1005]);

export async function runConnect(url: string, options: ConnectOptions): Promise<number> {
  let ws: WebSocket;
  try {
    ws = new WebSocket(url, options.protocol ?? [], {
      headers: options.header,
      handshakeTimeout: options.handshakeTimeout,
      perMessageDeflate: options.deflate === true,
    });
  } catch (err) {
    throw new CliError(`cannot connect to ${url}: ${describeFailure(err)}`);
  }
  return new Promise((resolve) => new Session(ws, url, options, resolve));
}

class Session {
  private readonly input: Interface;
  private readonly transcript: Transcript;
  private readonly interactive = process.stdin.isTTY === true && process.stdout.isTTY === true;
  /** Lines read before the handshake completed: sent, in order, once it does. */
  private queued: string[] = [];
  /** Bytes read from stdin and not yet handed to the socket. */
  private backlog = 0;
  private inputPaused = false;
  private opened = false;
  private inputEnded = false;
  /** We sent the close frame (or abandoned the handshake) and wait for the connection to end. */
  private closing = false;
  private closeTimer: NodeJS.Timeout | undefined;
  private finished = false;
  private failure: string | undefined;

  constructor(
    private readonly ws: WebSocket,
    private readonly url: string,
    private readonly options: ConnectOptions,
    private readonly done: (exitCode: number) => void,
  ) {
    this.input = createInterface({
      input: process.stdin,
      output: this.interactive ? process.stdout : undefined,
      terminal: this.interactive,
      prompt: '> ',
      crlfDelay: Infinity,
    });
    this.transcript = new Transcript(process.stdout, this.interactive ? this.input : undefined);

    ws.on('open', () => this.onOpen());
    ws.on('message', (ev: MessageEvent) => this.transcript.received(ev));
    ws.on('error', (ev: ErrorEvent) => {
      this.failure ??= describeFailure(ev.error);
    });
    ws.on('close', (ev: CloseEvent) => this.onClose(ev.code, ev.reason));
    this.input.on('line', (line) => this.onLine(line));
    this.input.on('close', () => this.onInputEnd());
    // On a terminal readline takes Ctrl-C itself; a second one gives up on the close handshake.
    this.input.on('SIGINT', () => (this.closing ? this.finish(130) : this.hangUp()));
    void shutdownSignal().then(() => this.hangUp());
  }

  private onOpen(): void {
    this.opened = true;
    if (process.stderr.isTTY) {
      const protocol = this.ws.protocol ? ` (protocol ${this.ws.protocol})` : '';
      process.stderr.write(`connected to ${this.url}${protocol}\n`);
    }
    for (const line of this.queued) this.send(line);
    this.queued = [];
    if (this.interactive) this.input.prompt();
    if (this.inputEnded && !this.options.wait) this.hangUp();
  }

  private onLine(line: string): void {
    if (this.closing) return;
    this.backlog += Buffer.byteLength(line);
    if (this.backlog > HIGH_WATER_BYTES && !this.inputPaused) {
      this.inputPaused = true;
      this.input.pause();
    }
    if (this.opened) this.send(line);
    else this.queued.push(line);
  }

  private send(line: string): void {
    const bytes = Buffer.byteLength(line);
    const written = (): void => {
      this.backlog -= bytes;
      if (this.inputPaused && this.backlog <= HIGH_WATER_BYTES) {
        this.inputPaused = false;
        this.input.resume();
      }
    };
    this.ws.send(this.options.binary ? Buffer.from(line) : line, written);
    this.transcript.sent(line);
  }

  private onInputEnd(): void {
    this.inputEnded = true;
    if (this.opened && !this.options.wait) this.hangUp();
  }

  /** We end the conversation: queued lines are already in the socket's write queue ahead of the close. */
  private hangUp(): void {
    if (this.closing || this.finished) return;
    this.closing = true;
    if (!this.opened) this.failure ??= 'interrupted';
    this.ws.close(this.opened ? 1000 : undefined);
    this.closeTimer = setTimeout(() => this.ws.terminate(), CLOSE_TIMEOUT_MS);
  }

  private onClose(code: number, reason: string): void {
    this.transcript.clearPrompt();
    if (!this.opened) {
      process.stderr.write(`duplex: cannot connect to ${this.url}: ${this.failure ?? `closed with code ${code}`}\n`);
      return this.finish(1);
    }
    const normal = NORMAL_CLOSE_CODES.has(code) && this.failure === undefined;
    if (!normal || !this.closing) process.stderr.write(`duplex: ${this.describeClose(code, reason)}\n`);
    this.finish(normal ? 0 : 1);
  }

  private describeClose(code: number, reason: string): string {
    if (this.failure !== undefined) return `connection error: ${this.failure} (${code})`;
    if (code === 1006) return 'connection lost (1006)';
    return `${this.closing ? 'closed' : 'closed by server'}: ${code}${reason ? ` ${reason}` : ''}`;
  }

  private finish(exitCode: number): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.closeTimer);
    this.input.close();
    this.done(exitCode);
  }
}
