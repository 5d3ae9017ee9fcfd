// permessage-deflate (RFC 7692): the negotiation, as pure functions for both roles, and MessageCodec,
// which compresses the messages one side sends and inflates those it receives, on node:zlib.
import { constants, createDeflateRaw, createInflateRaw, type DeflateRaw, type InflateRaw } from 'node:zlib';
import { CloseCode } from './close.js';
import { formatExtensions, parseExtensions, type ExtensionOffer } from './extensions.js';
import { HandshakeError } from './handshake-error.js';

export const EXTENSION_NAME = 'permessage-deflate';
export const DEFAULT_THRESHOLD = 1024;
export const DEFAULT_CONCURRENCY = 10;
/**
 * The compressor's zlib settings (the measurements: docs/architecture.md, permessage-deflate options).
 * A 13-bit window rather than the 15 negotiated by default: with many connections each keeping its
 * context, deflate is bound by cache misses on its per-stream state; the smaller window about halves
 * the CPU per message and cuts that state from about 230 to 130 KiB of RSS, for 6-9% more bytes. A
 * sender may always use a smaller window than agreed, so the peer sees no difference. Level and
 * memLevel stay zlib's defaults: memLevel changed neither speed, size nor RSS measurably, and a lower
 * level trades 10-20% more bytes for CPU, which is the application's call.
 */
export const DEFAULT_COMPRESSION_WINDOW_BITS = 13;
export const DEFAULT_LEVEL = 6;
export const DEFAULT_MEM_LEVEL = 8;

export interface PerMessageDeflateOptions {
  /** Server: always ask for it (a client's request for it is accepted anyway). Client: offer it. */
  serverNoContextTakeover?: boolean;
  /** Server: ask the client for it (a client's offer of it is accepted anyway). Client: offer it, and use it. */
  clientNoContextTakeover?: boolean;
  /**
   * 8..15, negotiated. Server: the largest window it may compress with. Client: the largest it lets
   * the server use.
   */
  serverMaxWindowBits?: number;
  /**
   * 8..15. Server: the largest window it lets the client use; offers that do not let it say so are
   * declined. Client: offer client_max_window_bits with this value, or without one for `true`.
   */
  clientMaxWindowBits?: number | true;
  /** Messages shorter than this many bytes are sent uncompressed. Default 1024. */
  threshold?: number;
  /**
   * 8..15: the window our compressor uses, capped at what was negotiated for what we send. Not
   * negotiated: the peer inflates with the window it agreed to, which covers any smaller one. Our
   * inflater always uses the negotiated window. Default 13 (DEFAULT_COMPRESSION_WINDOW_BITS).
   */
  compressionWindowBits?: number;
  /** The compressor's zlib level (-1..9, where -1 is zlib's default, 6). Default 6. */
  level?: number;
  /** The compressor's zlib memLevel (1..9). Default 8. */
  memLevel?: number;
  /** Most zlib jobs in flight at once over all codecs with the same value. Default 10. */
  concurrency?: number;
}

/** What was agreed. Window bits are 15 when the response left them out; the flags say who resets its window. */
export interface DeflateParams {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number;
  clientMaxWindowBits: number;
}

type Params = ExtensionOffer['params'];

// ---------------------------------------------------------------------------------------------
// Negotiation

/** RFC 7692 section 7.1.2: a decimal integer from 8 to 15 without leading zeros. */
const WINDOW_BITS = /^(?:8|9|1[0-5])$/;

function windowBits(value: string | true): number | null {
  return value !== true && WINDOW_BITS.test(value) ? Number(value) : null;
}

/**
 * Server side: the first permessage-deflate offer we can accept, and our response to it; null when
 * there is none. An offer is declined, and the next one considered, when it has a parameter that is
 * unknown, repeated or has an invalid value (RFC 7692 section 7), or when it cannot meet our options
 * (only a clientMaxWindowBits below 15 can fail to: we may only ask for it if the client offered
 * client_max_window_bits). Throws HandshakeError (400) when the header is malformed.
 */
export function acceptOffer(
  header: string | string[] | undefined,
  options: PerMessageDeflateOptions,
): { params: DeflateParams; response: string } | null {
  checkDeflateOptions(options);
  for (const offer of readOffers(Array.isArray(header) ? header.join(', ') : header ?? '')) {
    if (offer.name !== EXTENSION_NAME || offer.repeats) continue;
    const accepted = acceptParams(offer.params, options);
    if (accepted !== null) return accepted;
  }
  return null;
}

function acceptParams(offer: Params, options: PerMessageDeflateOptions): { params: DeflateParams; response: string } | null {
  let serverNoContextTakeover = options.serverNoContextTakeover === true;
  // Offered, it is the client's promise to reset its window (7.1.1.2): we confirm it.
  let clientNoContextTakeover = options.clientNoContextTakeover === true;
  let serverBits: number | undefined;
  let clientBits: number | true | undefined;
  for (const [name, value] of Object.entries(offer)) {
    const bits = windowBits(value);
    if (name === 'server_no_context_takeover' && value === true) serverNoContextTakeover = true;
    else if (name === 'client_no_context_takeover' && value === true) clientNoContextTakeover = true;
    else if (name === 'server_max_window_bits' && bits !== null) serverBits = bits;
    else if (name === 'client_max_window_bits' && (value === true || bits !== null)) clientBits = bits ?? true;
    else return null;
  }

  // Ours may be smaller than the client's limit, never larger (7.1.2.1); without a limit from the client, ours stands.
  const ownServerBits = options.serverMaxWindowBits;
  const serverAnswer = serverBits === undefined ? ownServerBits : Math.min(serverBits, ownServerBits ?? 15);
  // client_max_window_bits may only be answered if offered (7.1.2.2), with at most the offered value;
  // a value offered is the client's promise to stay within it even if we do not answer.
  const ownClientBits = typeof options.clientMaxWindowBits === 'number' ? options.clientMaxWindowBits : undefined;
  let clientAnswer: number | undefined;
  if (clientBits === undefined) {
    if (ownClientBits !== undefined && ownClientBits < 15) return null;
  } else if (clientBits === true) {
    clientAnswer = ownClientBits;
  } else {
    clientAnswer = Math.min(clientBits, ownClientBits ?? 15);
  }

  const params: DeflateParams = {
    serverNoContextTakeover,
    clientNoContextTakeover,
    serverMaxWindowBits: serverAnswer ?? 15,
    clientMaxWindowBits: clientAnswer ?? 15,
  };
  const response: Params = {};
  if (serverNoContextTakeover) response.server_no_context_takeover = true;
  if (clientNoContextTakeover) response.client_no_context_takeover = true;
  if (serverAnswer !== undefined) response.server_max_window_bits = String(serverAnswer);
  if (clientAnswer !== undefined) response.client_max_window_bits = String(clientAnswer);
  return { params, response: formatExtensions([{ name: EXTENSION_NAME, params: response }]) };
}

/**
 * parseExtensions, except that an offer repeating a parameter is marked instead of failing the whole
 * header: RFC 7692 section 7 has the server decline such an offer and go on, while parseExtensions
 * takes a repeat for a malformed header. As a quoted value must hold a token, "," and ";" only ever
 * separate, so when the header fails to parse it is re-read with every repeat split off into an offer
 * of its own: that text is well-formed exactly when the header is well-formed but for its repeats.
 */
function readOffers(text: string): Array<ExtensionOffer & { repeats: boolean }> {
  try {
    return parseExtensions(text).map((offer) => ({ ...offer, repeats: false }));
  } catch (malformed) {
    const elements = text.split(',').filter((element) => !/^[ \t]*$/.test(element)).map(splitRepeats);
    let parsed: ExtensionOffer[];
    try {
      parsed = parseExtensions(elements.flat().join(','));
    } catch {
      throw malformed;
    }
    let next = 0;
    return elements.map((groups) => {
      const offer = parsed[next]!;
      next += groups.length;
      return { ...offer, repeats: groups.length > 1 };
    });
  }
}

/** "x; a; b; a=1" becomes ["x; a; b", "x; a=1"]: groups of parameters without repeats. */
function splitRepeats(element: string): string[] {
  const [name, ...params] = element.split(';');
  const paramName = (param: string): string => param.split('=')[0]!.trim();
  const groups: string[][] = [[]];
  for (const param of params) {
    if (groups.at(-1)!.some((other) => paramName(other) === paramName(param))) groups.push([]);
    groups.at(-1)!.push(param);
  }
  return groups.map((group) => [name, ...group].join(';'));
}

/** Client side: the Sec-WebSocket-Extensions value offering permessage-deflate as the options say. */
export function makeOffer(options: PerMessageDeflateOptions): string {
  checkDeflateOptions(options);
  const params: Params = {};
  if (options.serverNoContextTakeover) params.server_no_context_takeover = true;
  if (options.clientNoContextTakeover) params.client_no_context_takeover = true;
  if (options.serverMaxWindowBits !== undefined) params.server_max_window_bits = String(options.serverMaxWindowBits);
  if (options.clientMaxWindowBits !== undefined) {
    params.client_max_window_bits = options.clientMaxWindowBits === true ? true : String(options.clientMaxWindowBits);
  }
  return formatExtensions([{ name: EXTENSION_NAME, params }]);
}

/**
 * Client side: what the server's Sec-WebSocket-Extensions (as verifyServerResponse returns it)
 * agreed to, given the offer makeOffer(options) made; null when the server did not accept
 * permessage-deflate. Throws HandshakeError on what RFC 7692 has the client fail on: a malformed
 * header, permessage-deflate accepted twice, a parameter unknown, repeated or with an invalid value,
 * client_max_window_bits without our offering it, and a server window not within the one we offered.
 */
export function acceptResponse(header: string, options: PerMessageDeflateOptions): DeflateParams | null {
  checkDeflateOptions(options);
  let extensions: ExtensionOffer[];
  try {
    extensions = parseExtensions(header);
  } catch (err) {
    throw new HandshakeError(`${(err as Error).message} in the server response`);
  }
  const accepted = extensions.filter((extension) => extension.name === EXTENSION_NAME);
  if (accepted.length === 0) return null;
  if (accepted.length > 1) throw new HandshakeError(`Server accepted ${EXTENSION_NAME} more than once`);
  const response = accepted[0]!.params;
  const fail = (reason: string): never => {
    throw new HandshakeError(`Invalid ${EXTENSION_NAME} response ${JSON.stringify(header)}: ${reason}`);
  };
  const flag = (name: string): boolean => {
    if (!Object.hasOwn(response, name)) return false;
    return response[name] === true || fail(`${name} takes no value`);
  };
  const bits = (name: string): number | undefined => {
    if (!Object.hasOwn(response, name)) return undefined;
    return windowBits(response[name]!) ?? fail(`${name} must be a number from 8 to 15 without leading zeros`);
  };

  const known = ['server_no_context_takeover', 'client_no_context_takeover', 'server_max_window_bits', 'client_max_window_bits'];
  const unknown = Object.keys(response).find((name) => !known.includes(name));
  if (unknown !== undefined) fail(`unknown parameter ${unknown}`);

  const serverBits = bits('server_max_window_bits');
  const offeredServerBits = options.serverMaxWindowBits;
  // The server accepts a server_max_window_bits offer by answering it (7.1.2.1); silence would leave its window unbounded.
  if (offeredServerBits !== undefined && serverBits === undefined) fail(`server_max_window_bits=${offeredServerBits} was offered but not answered`);
  if (offeredServerBits !== undefined && serverBits! > offeredServerBits) {
    fail(`server_max_window_bits=${serverBits} exceeds the ${offeredServerBits} offered`);
  }

  const clientBits = bits('client_max_window_bits');
  if (clientBits !== undefined && options.clientMaxWindowBits === undefined) fail('client_max_window_bits was not offered');
  // A value we offered is our promise to stay within it whatever the answer (7.1.2.2).
  const offeredClientBits = typeof options.clientMaxWindowBits === 'number' ? options.clientMaxWindowBits : 15;

  return {
    serverNoContextTakeover: flag('server_no_context_takeover'),
    // We may always reset our own window; offering to is a promise to (7.1.1.2).
    clientNoContextTakeover: flag('client_no_context_takeover') || options.clientNoContextTakeover === true,
    serverMaxWindowBits: serverBits ?? 15,
    clientMaxWindowBits: Math.min(clientBits ?? 15, offeredClientBits),
  };
}

/**
 * Throws a RangeError for a bad setting. Servers and clients check at construction, so a mistake
 * is the caller's exception, not a refused handshake; the handshake checks again for direct callers.
 */
export function checkDeflateOptions(options: PerMessageDeflateOptions): void {
  for (const name of ['serverMaxWindowBits', 'clientMaxWindowBits'] as const) {
    const value = options[name];
    if (value !== undefined && !(value === true && name === 'clientMaxWindowBits') && !isIntegerIn(value, 8, 15)) {
      throw new RangeError(`Invalid ${name} ${String(value)}: expected an integer from 8 to 15`);
    }
  }
  checkCompressorOptions(options);
}

function checkCompressorOptions(options: Pick<PerMessageDeflateOptions, 'compressionWindowBits' | 'level' | 'memLevel'>): void {
  checkOptionalInteger('compressionWindowBits', options.compressionWindowBits, 8, 15);
  checkOptionalInteger('level', options.level, -1, 9);
  checkOptionalInteger('memLevel', options.memLevel, 1, 9);
}

function checkOptionalInteger(name: string, value: number | undefined, min: number, max: number): void {
  if (value !== undefined && !isIntegerIn(value, min, max)) {
    throw new RangeError(`Invalid ${name} ${String(value)}: expected an integer from ${min} to ${max}`);
  }
}

function isIntegerIn(value: unknown, min: number, max: number): boolean {
  return Number.isInteger(value) && (value as number) >= min && (value as number) <= max;
}

// ---------------------------------------------------------------------------------------------
// The process-wide limiter

/**
 * A FIFO semaphore over zlib jobs: each job runs on libuv's threadpool, which is small (4 threads by
 * default) and shared with fs and dns, so many connections compressing at once must queue here
 * rather than there.
 */
export class ZlibLimiter {
  private active = 0;
  private readonly queue: Array<() => void> = [];

  constructor(readonly concurrency: number) {
    if (!isIntegerIn(concurrency, 1, Number.MAX_SAFE_INTEGER)) {
      throw new RangeError(`Invalid concurrency ${concurrency}: expected a positive integer`);
    }
  }

  /** Jobs running now. */
  get running(): number {
    return this.active;
  }

  /** Jobs waiting for their turn. */
  get waiting(): number {
    return this.queue.length;
  }

  /** Runs `job` once fewer than `concurrency` jobs are running, after those that asked before. */
  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.active >= this.concurrency) await new Promise<void>((resolve) => this.queue.push(resolve));
    else this.active += 1;
    try {
      return await job();
    } finally {
      // The slot passes straight to the next in line, so a newcomer cannot overtake it.
      const next = this.queue.shift();
      if (next) next();
      else this.active -= 1;
    }
  }
}

const limiters = new Map<number, ZlibLimiter>();

/** The limiter all codecs created with this concurrency share. */
export function sharedLimiter(concurrency = DEFAULT_CONCURRENCY): ZlibLimiter {
  let limiter = limiters.get(concurrency);
  if (limiter === undefined) {
    limiter = new ZlibLimiter(concurrency);
    limiters.set(concurrency, limiter);
  }
  return limiter;
}

// ---------------------------------------------------------------------------------------------
// The codec

/** A received message that cannot be inflated; closeCode is the close code to fail the connection with. */
export class DeflateError extends Error {
  override readonly name = 'DeflateError';

  constructor(message: string, readonly closeCode: number) {
    super(message);
  }
}

/** The empty stored block that ends every flushed message (RFC 7692 section 7.2.1). */
const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);

export interface MessageCodecOptions
  extends Pick<PerMessageDeflateOptions, 'threshold' | 'compressionWindowBits' | 'level' | 'memLevel' | 'concurrency'> {
  /** Largest inflated message; beyond it decompress rejects with DeflateError 1009. */
  maxPayload: number;
}

/**
 * One connection's compression, for one role. The promises settle in call order per direction;
 * compress and decompress run independently. zlib reads the buffer given to compress on the
 * threadpool: it must not change until the promise settles.
 *
 * Memory: zlib streams exist only while needed. A direction without context takeover resets its
 * stream between queued messages and frees it once its queue is empty, so an idle connection holds
 * none. With context takeover the stream is kept for the window: the deflate side keeps its whole
 * state, about 2^(bits+2) + 2^(memLevel+9) bytes (160 KiB at the default 13 bits and memLevel 8,
 * 256 KiB at 15); the inflate side about 2^bits + 7 KiB, with the negotiated bits.
 */
export class MessageCodec {
  private readonly sending: Direction;
  private readonly receiving: Direction;
  private readonly threshold: number;
  private readonly maxPayload: number;

  constructor(params: DeflateParams, role: 'client' | 'server', options: MessageCodecOptions) {
    for (const name of ['serverMaxWindowBits', 'clientMaxWindowBits'] as const) {
      if (!isIntegerIn(params[name], 8, 15)) throw new RangeError(`Invalid ${name} ${params[name]}: expected an integer from 8 to 15`);
    }
    if (!(options.maxPayload >= 0)) throw new RangeError(`Invalid maxPayload ${options.maxPayload}`);
    this.maxPayload = options.maxPayload;
    this.threshold = options.threshold ?? DEFAULT_THRESHOLD;
    checkCompressorOptions(options);
    const level = options.level ?? DEFAULT_LEVEL;
    const memLevel = options.memLevel ?? DEFAULT_MEM_LEVEL;

    const limiter = sharedLimiter(options.concurrency);
    const server = role === 'server';
    const negotiatedSendBits = server ? params.serverMaxWindowBits : params.clientMaxWindowBits;
    const sendBits = Math.min(negotiatedSendBits, options.compressionWindowBits ?? DEFAULT_COMPRESSION_WINDOW_BITS);
    const receiveBits = server ? params.clientMaxWindowBits : params.serverMaxWindowBits;
    // zlib refuses 8 bits for raw deflate. 9 is safe for a peer that inflates with 8: zlib's deflate never
    // reaches back further than the window minus 262 bytes, which at 9 bits is 250 bytes, within 256.
    this.sending = new Direction(
      () => createDeflateRaw({ flush: constants.Z_SYNC_FLUSH, windowBits: Math.max(sendBits, 9), level, memLevel }),
      !(server ? params.serverNoContextTakeover : params.clientNoContextTakeover),
      limiter,
      (err) => err,
    );
    this.receiving = new Direction(
      () => createInflateRaw({ flush: constants.Z_SYNC_FLUSH, windowBits: receiveBits }),
      !(server ? params.clientNoContextTakeover : params.serverNoContextTakeover),
      limiter,
      (err) => new DeflateError(`Invalid compressed data: ${err.message}`, CloseCode.INVALID_PAYLOAD),
    );
  }

  /** Whether a message of `length` bytes is worth compressing. */
  shouldCompress(length: number): boolean {
    return length >= this.threshold;
  }

  /** One whole message to the payload to send with RSV1 set. */
  async compress(data: Buffer): Promise<Buffer> {
    const output = await this.sending.run(data, Infinity);
    // A flush with nothing new to flush writes nothing; a single 0x00 is what the empty stored block
    // RFC 7692 section 7.2.1 then asks for leaves once its last four bytes are removed.
    return output.length === 0 ? Buffer.alloc(1) : output.subarray(0, output.length - TRAILER.length);
  }

  /**
   * One whole received payload (RSV1 set) to the message. Rejects with DeflateError 1009 as soon as
   * the output exceeds maxPayload, 1007 on corrupt data, and an Error once closed.
   */
  decompress(data: Buffer): Promise<Buffer> {
    // Copying the payload costs less than a second trip to the threadpool for the trailer.
    return this.receiving.run(Buffer.concat([data, TRAILER]), this.maxPayload);
  }

  /** zlib streams held now, 0 to 2: what the codec costs beyond a few objects. */
  get zlibStreams(): number {
    return Number(this.sending.holdsStream) + Number(this.receiving.holdsStream);
  }

  /** Frees the zlib streams; promises not yet settled reject. */
  close(): void {
    this.sending.close();
    this.receiving.close();
  }
}

type ZlibStream = DeflateRaw | InflateRaw;

/** The message zlib is working on. */
interface Operation {
  data(chunk: Buffer): void;
  finish(err: Error | null): void;
}

/** One direction of a codec: a zlib stream made on demand, fed one message at a time, in call order. */
class Direction {
  private stream: ZlibStream | null = null;
  /** Bytes written to `stream`; zlib consuming fewer means the deflate stream ended (BFINAL). */
  private written = 0;
  private operation: Operation | null = null;
  private abort: ((err: Error) => void) | null = null;
  private tail: Promise<unknown> = Promise.resolve();
  private queued = 0;
  /** Set once closed, and when a kept window is lost: later messages could not be processed. */
  private failure: Error | null = null;

  constructor(
    private readonly create: () => ZlibStream,
    private readonly keepContext: boolean,
    private readonly limiter: ZlibLimiter,
    private readonly zlibError: (err: Error) => Error,
  ) {}

  /** Feeds `input` to zlib with a sync flush and resolves with all the output; rejects once it exceeds `limit` bytes. */
  run(input: Buffer, limit: number): Promise<Buffer> {
    this.queued += 1;
    const result = this.tail.then(() => this.turn(input, limit));
    this.tail = result.then(
      () => this.done(),
      () => this.done(),
    );
    return result;
  }

  get holdsStream(): boolean {
    return this.stream !== null;
  }

  close(): void {
    this.failure ??= new Error('The permessage-deflate codec is closed');
    this.operation?.finish(this.failure);
    this.abort?.(this.failure);
    this.discard();
  }

  /** The message's turn in this direction: it waits for the limiter, then for zlib. */
  private turn(input: Buffer, limit: number): Promise<Buffer> {
    if (this.failure !== null) return Promise.reject(this.failure);
    return new Promise<Buffer>((resolve, reject) => {
      // Lets close() reject at once a message still waiting for the limiter.
      this.abort = reject;
      this.limiter.run(() => this.process(input, limit)).then(resolve, reject);
    });
  }

  private process(input: Buffer, limit: number): Promise<Buffer> {
    // close() may have come while the message waited for the limiter.
    if (this.failure !== null) return Promise.reject(this.failure);
    const stream = (this.stream ??= this.open());
    return new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let length = 0;
      const operation: Operation = {
        data: (chunk) => {
          length += chunk.length;
          if (length > limit) {
            operation.finish(new DeflateError(`Message larger than ${limit} bytes once inflated`, CloseCode.MESSAGE_TOO_BIG));
          } else {
            chunks.push(chunk);
          }
        },
        finish: (err) => {
          if (this.operation !== operation) return;
          this.operation = null;
          if (err === null) {
            // Copied even when one chunk: a view would pin zlib's 16 KiB output buffer for as long as the message lives.
            resolve(Buffer.concat(chunks, length));
            return;
          }
          // Destroying the stream also stops zlib before its next chunk of output.
          this.discard();
          if (this.keepContext) this.failure ??= err;
          reject(err);
        },
      };
      this.operation = operation;
      this.written += input.length;
      // One write, flushed by the stream's default flush flag: one trip to the threadpool, not two.
      stream.write(input, () => {
        if (this.operation !== operation) return;
        // The peer ended its deflate stream with a BFINAL block (7.2.3.4): its next message starts a new one.
        if (stream.bytesWritten < this.written) this.discard();
        operation.finish(null);
      });
    });
  }

  private open(): ZlibStream {
    const stream = this.create();
    stream.on('data', (chunk: Buffer) => {
      if (stream === this.stream) this.operation?.data(chunk);
    });
    stream.on('error', (err: Error) => {
      if (stream === this.stream) this.operation?.finish(this.zlibError(err));
    });
    return stream;
  }

  /** After each message: without context takeover, reset for the next one, or free the stream if none waits. */
  private done(): void {
    this.queued -= 1;
    if (this.keepContext || this.stream === null) return;
    if (this.queued > 0) this.stream.reset();
    else this.discard();
  }

  private discard(): void {
    const stream = this.stream;
    this.stream = null;
    this.written = 0;
    stream?.close();
  }
}
