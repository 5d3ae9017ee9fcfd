/**
 * File transfer over TCP (`duplex file`): the sender streams a file and hashes it as it reads; the
 * receiver writes NAME.part, hashing what it receives, and gives the file its name only once its
 * SHA-256 equals the sender's. The wire format is in file-protocol.ts.
 *
 * The hash comes at the end rather than in the header: hashing first would mean reading the file
 * twice, and both ends hash at the same time as they move bytes, each on its own core.
 *
 * Resuming: the receiver answers the header with the length of NAME.part and the hash of those
 * bytes; the sender hashes the same prefix of its file and goes on from there if the two agree,
 * from 0 otherwise. Both ends need the prefix in their running hash anyway, so checking it costs
 * no extra pass. A side that is busy with its disk (hashing a prefix, syncing) sends keep-alive
 * bytes so that the other's idle timeout measures silence, not work.
 */
import { createHash, type Hash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { constants, type Stats } from 'node:fs';
import { link, lstat, open, rename, statfs, unlink, type FileHandle } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import {
  encodeAccept, encodeDone, encodeHeader, encodeRefuse, encodeStart, encodeTrailer, FileProtocolError, KEEP,
  nameProblem, PART_SUFFIX, REASONS, ReceiverMessageParser, SenderStreamParser, type Header, type ReceiverMessage,
  type RefusalReason, type SenderStreamHandler,
} from './file-protocol.js';
import { FileReader, OrderedWriter } from './file-io.js';
import { ReadSlabs, readIntoSlabs } from './read-slabs.js';

export type FileTransferErrorCode =
  | RefusalReason
  /** The sender cannot read its file. */
  | 'file'
  | 'connect'
  | 'interrupted'
  | 'timeout'
  | 'aborted'
  | 'file-changed';

export class FileTransferError extends Error {
  override name = 'FileTransferError';
  constructor(readonly code: FileTransferErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export const DEFAULT_TIMEOUT_MS = 30_000;
const KEEPALIVE_MS = 1000;
/** How long a refused sender gets to read the refusal before the receiver drops it. */
const REFUSAL_GRACE_MS = 5000;

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory',
  ELOOP: 'is a symbolic link',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EIO: 'input/output error',
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by peer',
  EPIPE: 'connection closed by peer',
};

const errnoOf = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | null)?.code;

function errnoText(err: unknown): string {
  const code = errnoOf(err);
  if (code !== undefined && code in ERRNO_TEXT) return ERRNO_TEXT[code]!;
  return err instanceof Error ? err.message : String(err);
}

const isReason = (code: string): code is RefusalReason => (REASONS as readonly string[]).includes(code);

/** Hashes the first `length` bytes of `file`; fails if it is shorter. */
async function hashPrefix(file: FileHandle, length: number): Promise<Hash> {
  const hash = createHash('sha256');
  // Two buffers: one being hashed, one being read.
  const reader = new FileReader(file, 0, length, 2);
  let read = 0;
  for (let chunk = await reader.next(); chunk !== undefined; chunk = await reader.next()) {
    hash.update(chunk);
    read += chunk.length;
    reader.release(chunk);
  }
  if (read !== length) throw new FileTransferError('file-changed', `the file shrank to ${read} bytes while being hashed`);
  return hash;
}

/** Runs `work` while telling the peer every second that we are still there. */
async function keepAliveWhile<T>(socket: net.Socket, work: Promise<T>): Promise<T> {
  const timer = setInterval(() => {
    if (socket.writable) socket.write(KEEP);
  }, KEEPALIVE_MS);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// Sender

export interface SendFileOptions {
  host: string;
  port: number;
  path: string;
  /** The name on the receiver; the file's own name by default. */
  name?: string;
  /** Replace a file of that name on the receiver. */
  overwrite?: boolean;
  /** Give up after this long without any sign of the receiver. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Once the receiver has accepted: where the body starts (above 0 when resuming). */
  onStart?(info: { name: string; size: number; offset: number }): void;
  /** After each chunk handed to the socket: how far into the file we are. */
  onProgress?(position: number): void;
}

export interface SendResult {
  name: string;
  size: number;
  /** Bytes the receiver already had: the transfer resumed from here. */
  offset: number;
  /** Bytes sent in this transfer, size − offset. */
  sent: number;
  /** Hex SHA-256 of the whole file, as both ends computed it. */
  sha256: string;
  /** From connecting to the receiver's confirmation. */
  durationMs: number;
}

/** Sends a file to a receiver; resolves once the receiver has it under its name, verified. */
export async function sendFile(options: SendFileOptions): Promise<SendResult> {
  const name = options.name ?? path.basename(options.path);
  const file = await openSource(options.path);
  try {
    const size = (await file.stat()).size;
    const startedAt = performance.now();
    const link = await ReceiverLink.connect(options);
    try {
      return { ...(await transfer(link, file, { name, size, overwrite: options.overwrite === true }, options)), durationMs: performance.now() - startedAt };
    } finally {
      link.close();
    }
  } finally {
    await file.close();
  }
}

async function openSource(filePath: string): Promise<FileHandle> {
  let file: FileHandle;
  try {
    file = await open(filePath, 'r');
  } catch (err) {
    throw new FileTransferError('file', `cannot read ${filePath}: ${errnoText(err)}`, { cause: err });
  }
  if (!(await file.stat()).isFile()) {
    await file.close();
    throw new FileTransferError('file', `cannot send ${filePath}: not a regular file`);
  }
  return file;
}

async function transfer(
  link: ReceiverLink,
  file: FileHandle,
  header: Header,
  options: SendFileOptions,
): Promise<Omit<SendResult, 'durationMs'>> {
  const { name, size } = header;
  link.socket.write(encodeHeader(header));
  const answer = await link.next();
  if (answer.type !== 'accept' || answer.offset > size) throw new FileTransferError('protocol', 'unexpected answer to the header');
  const { offset, hash } = await resumePoint(link, file, answer.offset, answer.prefixSha256);
  options.onStart?.({ name, size, offset });
  link.socket.write(encodeStart(offset));
  await sendBody(link, file, offset, size, hash, options.onProgress);
  const sha256 = hash.digest();
  link.socket.write(encodeTrailer(sha256));
  const verdict = await link.next();
  if (verdict.type !== 'done' || !verdict.sha256.equals(sha256)) {
    throw new FileTransferError('protocol', 'the receiver confirmed a different SHA-256');
  }
  return { name, size, offset, sent: size - offset, sha256: sha256.toString('hex') };
}

/** Continues after the receiver's bytes if they are the start of our file, else from 0. */
async function resumePoint(link: ReceiverLink, file: FileHandle, offered: number, theirs: Buffer): Promise<{ offset: number; hash: Hash }> {
  if (offered === 0) return { offset: 0, hash: createHash('sha256') };
  const ours = await keepAliveWhile(link.socket, hashPrefix(file, offered));
  if (ours.copy().digest().equals(theirs)) return { offset: offered, hash: ours };
  return { offset: 0, hash: createHash('sha256') };
}

async function sendBody(
  link: ReceiverLink,
  file: FileHandle,
  offset: number,
  size: number,
  hash: Hash,
  onProgress: ((position: number) => void) | undefined,
): Promise<void> {
  let position = offset;
  // Reading stops at the size announced in the header, even if the file has grown since.
  // The reader's few buffers are the backpressure: a read waits for the socket to take a chunk.
  const reader = new FileReader(file, offset, size);
  for (let chunk = await link.unlessFailed(reader.next()); chunk !== undefined; chunk = await link.unlessFailed(reader.next())) {
    hash.update(chunk);
    position += chunk.length;
    const sent = chunk;
    link.socket.write(chunk, () => reader.release(sent));
    onProgress?.(position);
  }
  if (position !== size) {
    throw new FileTransferError('file-changed', `the file shrank while being sent: ${position} of ${size} bytes`);
  }
}

/** The sender's socket: receiver messages in order, and the first failure. */
class ReceiverLink {
  private readonly parser = new ReceiverMessageParser();
  private readonly queue: ReceiverMessage[] = [];
  private readonly waiters = new Set<() => void>();
  private failure: FileTransferError | undefined;
  private readonly failed: Promise<never>;
  private rejectFailed!: (err: FileTransferError) => void;

  private constructor(readonly socket: net.Socket) {
    this.failed = new Promise<never>((_, reject) => (this.rejectFailed = reject));
    // Only awaited while sending the body; a failure at another time is reported through until().
    this.failed.catch(() => {});
  }

  static async connect({ host, port, timeoutMs = DEFAULT_TIMEOUT_MS, signal }: SendFileOptions): Promise<ReceiverLink> {
    const link = new ReceiverLink(net.connect({ host, port }));
    const { socket } = link;
    const where = `${host}:${port}`;
    socket.setNoDelay(true);
    socket.setTimeout(timeoutMs, () => {
      link.fail(new FileTransferError('timeout', `no sign of the receiver at ${where} for ${timeoutMs} ms`));
    });
    let connected = false;
    socket.on('connect', () => {
      connected = true;
      link.notify();
    });
    socket.on('data', (chunk: Buffer) => link.receive(chunk));
    socket.on('error', (err) => {
      const code = connected ? 'interrupted' : 'connect';
      const what = connected ? 'connection to the receiver lost' : `cannot connect to ${where}`;
      link.fail(new FileTransferError(code, `${what}: ${errnoText(err)}`, { cause: err }));
    });
    socket.on('close', () => link.fail(new FileTransferError('interrupted', 'the receiver closed the connection')));
    if (signal?.aborted) link.fail(new FileTransferError('aborted', 'transfer aborted'));
    signal?.addEventListener('abort', () => link.fail(new FileTransferError('aborted', 'transfer aborted')), { once: true });
    await link.until(() => (connected ? true : undefined));
    return link;
  }

  next(): Promise<ReceiverMessage> {
    return this.until(() => this.queue.shift());
  }

  /** `work`, unless the link fails first (a refusal may arrive while we send): then its failure. */
  unlessFailed<T>(work: Promise<T>): Promise<T> {
    return Promise.race([this.failed, work]);
  }

  close(): void {
    this.failure ??= new FileTransferError('aborted', 'closed');
    this.socket.end();
  }

  private receive(chunk: Buffer): void {
    let messages: ReceiverMessage[];
    try {
      messages = this.parser.push(chunk);
    } catch (err) {
      return this.fail(new FileTransferError('protocol', `the receiver broke the protocol: ${errnoText(err)}`));
    }
    for (const message of messages) {
      if (message.type === 'refuse') return this.fail(new FileTransferError(message.reason, message.message));
      if (message.type !== 'keep') this.queue.push(message);
    }
    this.notify();
  }

  private fail(err: FileTransferError): void {
    if (this.failure) return;
    this.failure = err;
    this.rejectFailed(err);
    this.socket.destroy();
    this.notify();
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  private until<T>(ready: () => T | undefined): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const value = this.failure ? undefined : ready();
        if (!this.failure && value === undefined) return;
        this.waiters.delete(check);
        if (this.failure) reject(this.failure);
        else resolve(value!);
      };
      this.waiters.add(check);
      check();
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Receiver

export interface FileReceiverOptions {
  /** Where files land; it must exist. */
  dir: string;
  /** Drop a sender silent for this long; what it sent stays in NAME.part. */
  timeoutMs?: number;
}

export interface TransferInfo {
  name: string;
  size: number;
  /** Bytes already there from an earlier attempt. */
  offset: number;
  /** The sender's address and port. */
  remote: string;
}

export interface ReceivedInfo extends TransferInfo {
  sha256: string;
  durationMs: number;
}

export interface FailureInfo {
  remote: string;
  /** Absent when the sender failed before naming its file. */
  name?: string;
  code: FileTransferErrorCode;
  message: string;
  /** Bytes left in NAME.part for a later resume. */
  kept?: number;
}

export interface FileReceiver {
  on(event: 'transfer', listener: (info: TransferInfo) => void): this;
  on(event: 'received', listener: (info: ReceivedInfo) => void): this;
  on(event: 'failed', listener: (info: FailureInfo) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
}

/**
 * Accepts files into one directory, any number of senders at a time but one per name. Emits
 * 'transfer' when a body starts, 'received' once a file has its name, 'failed' for every refusal
 * or interruption.
 */
export class FileReceiver extends EventEmitter {
  readonly dir: string;
  readonly timeoutMs: number;
  /** Names being received: a second sender of the same name is refused as busy. */
  readonly names = new Set<string>();
  private readonly server: net.Server;
  private readonly incoming = new Set<Incoming>();

  constructor(options: FileReceiverOptions) {
    super();
    this.dir = path.resolve(options.dir);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    // Paused: each connection's reads switch to slabs before the first byte (see read-slabs.ts).
    this.server = net.createServer({ pauseOnConnect: true }, (accepted) => {
      const incoming = new Incoming(accepted, this);
      this.incoming.add(incoming);
      void incoming.finished.then(() => this.incoming.delete(incoming));
    });
  }

  listen(port = 0, host = '127.0.0.1'): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        this.server.on('error', (err) => this.emit('error', err));
        resolve(this.address());
      });
    });
  }

  address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  /** Stops listening and drops transfers in progress (keeping their NAME.part); resolves once all are closed. */
  async close(): Promise<void> {
    this.server.close();
    for (const incoming of this.incoming) incoming.abort();
    await Promise.all([...this.incoming].map((incoming) => incoming.finished));
  }
}

type Phase = 'header' | 'preparing' | 'ready' | 'body' | 'finishing' | 'over';

/** One sender: header checks, the resume offer, writing NAME.part, the verdict. */
class Incoming implements SenderStreamHandler {
  readonly finished: Promise<void>;
  private settle!: () => void;
  private phase: Phase = 'header';
  private readonly parser = new SenderStreamParser(this);
  private readonly socket: net.Socket;
  private readonly slabs: ReadSlabs;
  private readonly remote: string;
  private readonly startedAt = performance.now();
  private bytesIn = 0;
  private announced: Header | undefined;
  private holdsName = false;
  private part = '';
  private file: FileHandle | undefined;
  private writer: OrderedWriter | undefined;
  private preparing: Promise<void> | undefined;
  private hash = createHash('sha256');
  private offered = 0;
  private offset = 0;

  constructor(accepted: net.Socket, private readonly receiver: FileReceiver) {
    this.finished = new Promise((resolve) => (this.settle = resolve));
    // Bytes queued for the disk keep their slab until written: memory stays at a few slabs.
    this.slabs = new ReadSlabs(() => this.writer?.released ?? 0);
    const socket = readIntoSlabs(accepted, this.slabs, (bytes) => this.receive(bytes));
    this.socket = socket;
    this.remote = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.setTimeout(receiver.timeoutMs, () => this.lost(new FileTransferError('timeout', `the sender was silent for ${receiver.timeoutMs} ms`)));
    socket.on('error', (err) => this.lost(new FileTransferError('interrupted', `connection lost: ${errnoText(err)}`, { cause: err })));
    socket.on('close', () => this.lost(new FileTransferError('interrupted', 'the sender closed the connection')));
  }

  abort(): void {
    this.lost(new FileTransferError('aborted', 'the receiver is shutting down'));
  }

  header(header: Header): void {
    this.announced = header;
    this.phase = 'preparing';
    this.preparing = this.prepare(header).catch((err) => this.refuse(err));
  }

  start(offset: number): void {
    if (this.phase !== 'ready') throw new FileProtocolError('protocol', 'START before the answer to the header');
    if (offset !== 0 && offset !== this.offered) throw new FileProtocolError('protocol', `START at ${offset}, offered ${this.offered}`);
    this.phase = 'body';
    this.offset = offset;
    // A sender whose file starts differently restarts from 0: our bytes go before any new one is written.
    const restart = offset === 0 && this.offered > 0;
    if (restart) this.hash = createHash('sha256');
    const ready = restart ? this.file!.truncate(0) : Promise.resolve();
    this.writer = new OrderedWriter(this.file!, offset, ready, () => this.socket.resume(), (err) => this.refuse(err));
    const { name, size } = this.announced!;
    this.receiver.emit('transfer', { name, size, offset, remote: this.remote } satisfies TransferInfo);
  }

  body(chunk: Buffer): void {
    if (this.phase !== 'body') return;
    this.hash.update(chunk);
    const room = this.writer!.write(chunk);
    this.slabs.hold(this.writer!.accepted);
    if (!room) this.socket.pause();
  }

  trailer(sha256: Buffer): void {
    if (this.phase !== 'body') return;
    this.phase = 'finishing';
    this.finish(sha256).catch((err) => this.refuse(err));
  }

  private receive(chunk: Buffer): void {
    this.bytesIn += chunk.length;
    // After a refusal, input is read and dropped so that the sender gets our answer, not a reset.
    if (this.phase === 'over') return;
    try {
      this.parser.push(chunk);
    } catch (err) {
      this.refuse(err);
    }
  }

  private async prepare(header: Header): Promise<void> {
    const { name, size, overwrite } = header;
    const problem = nameProblem(name);
    if (problem !== undefined) throw new FileTransferError('name-refused', `the name ${JSON.stringify(name)} is refused: ${problem}`);
    if (this.receiver.names.has(name)) throw new FileTransferError('busy', `${name} is already being received from another sender`);
    this.receiver.names.add(name);
    this.holdsName = true;
    const target = path.join(this.receiver.dir, name);
    this.part = target + PART_SUFFIX;
    const existing = await lstatIfAny(target);
    if (existing !== undefined && (!overwrite || existing.isDirectory())) {
      throw new FileTransferError('exists', `${name} already exists on the receiver`);
    }
    // Checked before NAME.part is touched, so that a refusal leaves nothing behind.
    const partSize = (await lstatIfAny(this.part))?.size ?? 0;
    await ensureSpace(this.receiver.dir, partSize <= size ? size - partSize : size);
    // O_NOFOLLOW: a symbolic link planted as NAME.part must not redirect our writes.
    this.file = await open(this.part, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW);
    const offered = await keepAliveWhile(this.socket, this.resumable(size));
    // Lost meanwhile: wrapUp(), which waits for us, closes the file.
    if (this.phase !== 'preparing') return;
    this.offered = offered;
    this.phase = 'ready';
    this.socket.write(encodeAccept(offered, this.hash.copy().digest()));
  }

  /** How much of NAME.part can count: all of it, hashed into this.hash, unless it is longer than the file. */
  private async resumable(size: number): Promise<number> {
    const stat = await this.file!.stat();
    if (!stat.isFile()) throw new FileTransferError('io-error', `${path.basename(this.part)} is not a regular file`);
    if (stat.size > size) {
      await this.file!.truncate(0);
      return 0;
    }
    this.hash = await hashPrefix(this.file!, stat.size);
    return stat.size;
  }

  private async finish(expected: Buffer): Promise<void> {
    const { name, size, overwrite } = this.announced!;
    const actual = this.hash.digest();
    await keepAliveWhile(this.socket, this.closeFile(true));
    if (!actual.equals(expected)) {
      await unlink(this.part);
      throw new FileTransferError('hash-mismatch', `SHA-256 mismatch for ${name}: received ${actual.toString('hex')}, sent ${expected.toString('hex')}; nothing kept`);
    }
    await keepAliveWhile(this.socket, publish(this.part, path.join(this.receiver.dir, name), overwrite));
    this.phase = 'over';
    if (this.socket.writable) this.socket.end(encodeDone(actual));
    this.release();
    const info: ReceivedInfo = { name, size, offset: this.offset, remote: this.remote, sha256: actual.toString('hex'), durationMs: performance.now() - this.startedAt };
    this.receiver.emit('received', info);
    this.settle();
  }

  /** Answers with a refusal, which ends the transfer; what NAME.part holds stays for a resume. */
  private refuse(err: unknown): void {
    if (this.phase === 'over') return;
    this.phase = 'over';
    const { reason, message } = refusalOf(err, this.announced?.name);
    if (this.socket.writable) this.socket.end(encodeRefuse(reason, message));
    this.socket.resume();
    setTimeout(() => this.socket.destroy(), REFUSAL_GRACE_MS).unref();
    void this.wrapUp(reason, message);
  }

  private lost(err: FileTransferError): void {
    // A sender gone after its trailer changes nothing: the file is complete and verified.
    if (this.phase === 'over' || this.phase === 'finishing') return;
    this.phase = 'over';
    this.socket.destroy();
    void this.wrapUp(err.code, err.message);
  }

  private async wrapUp(code: FileTransferErrorCode, message: string): Promise<void> {
    let kept: number | undefined;
    try {
      // Whatever the header checks opened is ours to close, and the name ours until then.
      await this.preparing;
      kept = await this.closeFile(false);
      if (kept === 0) await unlink(this.part);
    } catch {
      // The failure we report is the first one; a second, while cleaning up, adds nothing.
    }
    this.release();
    if (this.announced !== undefined || this.bytesIn > 0) {
      const info: FailureInfo = { remote: this.remote, name: this.announced?.name, code, message };
      if (kept) info.kept = kept;
      this.receiver.emit('failed', info);
    }
    this.settle();
  }

  /** Flushes and closes NAME.part (synced to disk when it is to be published); returns its size. */
  private async closeFile(sync: boolean): Promise<number | undefined> {
    const { file, writer } = this;
    if (file === undefined) return undefined;
    this.file = undefined;
    try {
      await writer?.flushed();
      if (sync) await file.sync();
      return (await file.stat()).size;
    } finally {
      await file.close();
    }
  }

  private release(): void {
    if (this.holdsName) this.receiver.names.delete(this.announced!.name);
    this.holdsName = false;
  }
}

function lstatIfAny(file: string): Promise<Stats | undefined> {
  return lstat(file).catch((err) => (errnoOf(err) === 'ENOENT' ? undefined : Promise.reject(err)));
}

async function ensureSpace(dir: string, needed: number): Promise<void> {
  const { bavail, bsize } = await statfs(dir);
  const available = bavail * bsize;
  if (needed > available) {
    throw new FileTransferError('disk-full', `not enough space on the receiver: ${needed} bytes needed, ${available} available`);
  }
}

/** NAME.part becomes NAME; without `overwrite` a file that appeared meanwhile is left alone. */
async function publish(part: string, target: string, overwrite: boolean): Promise<void> {
  if (overwrite) {
    await rename(part, target);
  } else {
    // link() fails if the target exists, where rename() would replace it.
    try {
      await link(part, target);
    } catch (err) {
      if (errnoOf(err) === 'EEXIST') {
        throw new FileTransferError('exists', `${path.basename(target)} appeared while being received; the data is kept in ${path.basename(part)}`);
      }
      throw err;
    }
    await unlink(part);
  }
  // The rename is only durable once the directory is.
  const dir = await open(path.dirname(target), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

function refusalOf(err: unknown, name: string | undefined): { reason: RefusalReason; message: string } {
  if (err instanceof FileProtocolError) return { reason: err.reason, message: err.message };
  if (err instanceof FileTransferError && isReason(err.code)) return { reason: err.code, message: err.message };
  const code = errnoOf(err);
  if (code === 'ENOSPC' || code === 'EDQUOT') return { reason: 'disk-full', message: `the receiver's disk is full (${errnoText(err)})` };
  return { reason: 'io-error', message: `the receiver cannot write ${name ?? 'the file'}: ${errnoText(err)}` };
}
