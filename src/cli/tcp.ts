// `duplex tcp listen | connect | echo`: netcat-like TCP tools. Without --lines or --frames they are raw
// byte pipes; with them, stdin and stdout carry one message per line, framed on the wire.
import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
// The modules themselves rather than the sockets index, which would load file transfer and UDP too.
import { formatEndpoint, type Endpoint } from '../sockets/endpoint.js';
import { FramedSocket } from '../sockets/framed-socket.js';
import {
  DEFAULT_MAX_FRAME_SIZE, DEFAULT_MAX_LINE_LENGTH, FramingError, lengthPrefixed, LineDecoder, lines, rawBytes, RawDecoder,
  type Codec, type Decoder,
} from '../sockets/framing.js';
import { connectTcp } from '../sockets/tcp-client.js';
import { TcpServer } from '../sockets/tcp-server.js';
import { CliError, describeFailure } from './errors.js';
import { listening } from './listening.js';
import { closeWithin, shutdownSignal } from './shutdown.js';

type Message = Buffer | string;
type Connection = FramedSocket<Message, Message>;

export interface ModeOptions {
  lines?: boolean;
  frames?: boolean;
  /** Largest line or frame, in bytes. */
  maxSize?: number;
}

/** How long a connection gets to finish closing when we stop: our FIN out, the peer's in. */
const CLOSE_TIMEOUT_MS = 3000;
/** Peers that simply hang up are not worth a line on stderr. */
const ORDINARY_HANGUPS = new Set(['ECONNRESET', 'EPIPE']);

/**
 * What goes on the wire, and how stdin and stdout map to messages: raw chunks both ways; or a message
 * per stdin line, and a line of stdout per message received.
 */
interface Mode {
  codec: Codec<Message, Message>;
  input(): Decoder<Message>;
  output(message: Message): Message;
}

function modeOf(options: ModeOptions): Mode {
  const newline = Buffer.from('\n');
  if (options.lines) {
    const maxLineLength = options.maxSize ?? DEFAULT_MAX_LINE_LENGTH;
    return {
      codec: lines({ maxLineLength }) as Codec<Message, Message>,
      input: () => new LineDecoder(maxLineLength),
      output: (line) => `${line as string}\n`,
    };
  }
  if (options.frames) {
    const maxFrameSize = options.maxSize ?? DEFAULT_MAX_FRAME_SIZE;
    return {
      codec: lengthPrefixed({ maxFrameSize }),
      input: () => new LineDecoder(maxFrameSize),
      output: (payload) => Buffer.concat([payload as Buffer, newline]),
    };
  }
  return { codec: rawBytes(), input: () => new RawDecoder(), output: (chunk) => chunk };
}

/**
 * Full duplex between stdio and a connection: stdin goes out while what arrives is printed, each
 * side paced by the other's backpressure. The end of stdin half-closes the connection; the peer's end
 * ends it. Resolves with the exit status.
 */
function pipe(connection: Connection, mode: Mode, stop: Promise<unknown>): Promise<number> {
  return new Promise((resolve) => {
    const { stdin, stdout } = process;
    const input = mode.input();
    let failure: string | undefined;

    const send = (message: Message): void => {
      if (!connection.send(message)) stdin.pause();
    };
    const hangUp = (reason: string): void => {
      failure ??= reason;
      stdin.pause();
      void connection.close();
    };
    connection.on('drain', () => stdin.resume());
    stdin.on('data', (chunk: Buffer) => {
      try {
        input.push(chunk, send);
      } catch (err) {
        hangUp(`stdin: ${describeFailure(err)}`);
      }
    });
    stdin.on('end', () => {
      try {
        input.end(send);
      } catch (err) {
        failure ??= `stdin: ${describeFailure(err)}`;
      }
      connection.end();
    });
    stdin.on('error', (err) => hangUp(`stdin: ${describeFailure(err)}`));

    connection.on('message', (message) => {
      if (stdout.write(mode.output(message))) return;
      connection.pause();
      stdout.once('drain', () => connection.resume());
    });
    connection.on('close', (err) => {
      stdin.pause();
      if (err) failure ??= err instanceof FramingError ? `closed the connection: ${err.message}` : `connection error: ${describeFailure(err)}`;
      if (failure !== undefined) process.stderr.write(`duplex: ${failure}\n`);
      resolve(failure === undefined ? 0 : 1);
    });
    void stop.then(() => connection.close());
  });
}

function notice(text: string): void {
  if (process.stderr.isTTY) process.stderr.write(`${text}\n`);
}

export interface ListenOptions extends ModeOptions {
  port: number;
  host: string;
}

/** `tcp listen`: like `nc -l`, takes one connection, then stops listening. */
export async function runTcpListen(options: ListenOptions): Promise<number> {
  const mode = modeOf(options);
  const server = createServer({ allowHalfOpen: true });
  server.listen(options.port, options.host);
  await listening(server, formatEndpoint(options.host, options.port));
  const stop = shutdownSignal();
  const address = server.address() as AddressInfo;
  // stdout carries the data, so the address goes to stderr.
  process.stderr.write(`listening on ${formatEndpoint(address.address, address.port)}\n`);
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const first = await Promise.race([accepted, stop.then(() => undefined)]);
  server.close();
  if (!first) return 0;
  const connection: Connection = new FramedSocket(first[0], mode.codec, { closeTimeout: CLOSE_TIMEOUT_MS });
  notice(`connection from ${connection.remote}`);
  return pipe(connection, mode, stop);
}

export interface ConnectOptions extends ModeOptions {
  connectTimeout: number;
}

/** `tcp connect`: like `nc HOST PORT`, with a half-close at the end of stdin (what `nc -N` does). */
export async function runTcpConnect(endpoint: Endpoint, options: ConnectOptions): Promise<number> {
  const mode = modeOf(options);
  const where = formatEndpoint(endpoint.host, endpoint.port);
  let connection: Connection;
  try {
    connection = await connectTcp({
      ...endpoint,
      codec: mode.codec,
      connectTimeout: options.connectTimeout,
      closeTimeout: CLOSE_TIMEOUT_MS,
    });
  } catch (err) {
    throw new CliError(`cannot connect to ${where}: ${describeFailure(err)}`);
  }
  notice(`connected to ${where}`);
  return pipe(connection, mode, shutdownSignal());
}

export interface EchoOptions extends ListenOptions {
  upper?: boolean;
  maxConnections?: number;
  idleTimeout?: number;
}

/** Upper case as Python's bytes.upper() does it: ASCII letters only, so any split of the stream is safe. */
function upperAscii(bytes: Buffer): Buffer {
  const out = Buffer.from(bytes);
  for (let i = 0; i < out.length; i++) {
    const byte = out[i]!;
    if (byte >= 0x61 && byte <= 0x7a) out[i] = byte - 0x20;
  }
  return out;
}

function upper(message: Message): Message {
  return typeof message === 'string' ? message.toUpperCase() : upperAscii(message);
}

/** `tcp echo`: sends every message back to its sender, many clients at once. */
export async function runTcpEcho(options: EchoOptions): Promise<number> {
  const mode = modeOf(options);
  const transform = options.upper ? upper : (message: Message) => message;
  const server = new TcpServer<Message, Message>(
    {
      codec: mode.codec,
      maxConnections: options.maxConnections,
      idleTimeout: options.idleTimeout,
      closeTimeout: CLOSE_TIMEOUT_MS,
    },
    (connection) => {
      connection.on('message', (message) => connection.send(transform(message)));
    },
  );
  server.on('clientError', (err, connection) => {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === undefined || !ORDINARY_HANGUPS.has(code)) {
      process.stderr.write(`duplex: ${connection.remote}: ${describeFailure(err)}\n`);
    }
  });
  server.on('drop', (peer) => {
    const who = formatEndpoint(peer.remoteAddress ?? 'unknown', peer.remotePort ?? 0);
    process.stderr.write(`duplex: ${who}: refused, connection limit (${options.maxConnections}) reached\n`);
  });
  let address: AddressInfo;
  try {
    address = await server.listen(options.port, options.host);
  } catch (err) {
    throw new CliError(`cannot listen on ${formatEndpoint(options.host, options.port)}: ${describeFailure(err)}`);
  }
  server.on('error', (err) => {
    process.stderr.write(`duplex: server error: ${describeFailure(err)}\n`);
    process.exit(1);
  });
  // Listen for signals before announcing the address: whoever reads it may signal us right away.
  const stop = shutdownSignal();
  process.stdout.write(`listening on ${formatEndpoint(address.address, address.port)}\n`);
  await stop;
  if (!(await closeWithin((done) => void server.close().then(done), CLOSE_TIMEOUT_MS + 1000))) {
    process.stderr.write('duplex: some clients did not finish closing; exiting anyway\n');
  }
  return 0;
}
