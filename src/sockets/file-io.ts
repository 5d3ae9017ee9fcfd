/**
 * The disk side of a file transfer: a reader that keeps one read ahead, and an ordered writer with
 * backpressure. Both work on a FileHandle without fs streams, whose destruction would close the
 * handle that the transfer still needs (for hashing a prefix first, syncing and stat-ing after).
 */
import type { FileHandle } from 'node:fs/promises';

/** Read size: large enough that per-chunk costs vanish next to hashing and copying. */
const CHUNK_BYTES = 1 << 20;
/** Queued bytes above which the writer asks its producer to pause. */
const HIGH_WATER_BYTES = 4 << 20;

async function readAt(file: FileHandle, position: number, length: number): Promise<Buffer> {
  // A fresh buffer every time: the consumer hands it to a socket that keeps it until it is sent.
  const buffer = Buffer.allocUnsafe(length);
  const { bytesRead } = await file.read(buffer, 0, length, position);
  return buffer.subarray(0, bytesRead);
}

/**
 * Bytes [start, end) of `file` in chunks, the next read already running while the consumer works
 * on the current chunk. Stops early if the file is shorter.
 */
export async function* readChunks(file: FileHandle, start: number, end: number): AsyncGenerator<Buffer> {
  let position = start;
  const next = (): Promise<Buffer> | undefined => {
    if (position >= end) return undefined;
    const read = readAt(file, position, Math.min(CHUNK_BYTES, end - position));
    // Awaited below unless the consumer stops first; then its failure no longer matters.
    read.catch(() => {});
    return read;
  };
  let pending = next();
  while (pending !== undefined) {
    const chunk = await pending;
    if (chunk.length === 0) return;
    position += chunk.length;
    pending = next();
    yield chunk;
  }
}

/**
 * Writes chunks to `file` one after the other from `position`, batching what queues up during a
 * write into one writev. Nothing is written before `ready` resolves. `write()` returns false
 * above the high-water mark, and `onDrain` is called once the queue is below it again.
 */
export class OrderedWriter {
  private queue: Buffer[] = [];
  private queued = 0;
  private writing: Promise<void> | undefined;
  private failure: unknown;

  constructor(
    private readonly file: FileHandle,
    private position: number,
    private readonly ready: Promise<void>,
    private readonly onDrain: () => void,
    private readonly onError: (err: unknown) => void,
  ) {}

  write(chunk: Buffer): boolean {
    if (this.failure === undefined) {
      this.queue.push(chunk);
      this.queued += chunk.length;
      this.writing ??= this.drainQueue();
    }
    return this.queued < HIGH_WATER_BYTES;
  }

  /** Resolves once everything queued is written; rejects with the first write error. */
  async flushed(): Promise<void> {
    while (this.writing !== undefined) await this.writing;
    await this.ready;
    if (this.failure !== undefined) throw this.failure;
  }

  private async drainQueue(): Promise<void> {
    try {
      await this.ready;
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        await this.writeAll(batch);
        const wasFull = this.queued >= HIGH_WATER_BYTES;
        this.queued -= byteLength(batch);
        if (wasFull && this.queued < HIGH_WATER_BYTES) this.onDrain();
      }
    } catch (err) {
      this.failure = err;
      this.queue = [];
      this.onError(err);
    } finally {
      this.writing = undefined;
    }
  }

  /** A short write (a disk filling up) is retried from where it stopped, so the error surfaces. */
  private async writeAll(buffers: Buffer[]): Promise<void> {
    let rest = buffers;
    while (rest.length > 0) {
      const { bytesWritten } = await this.file.writev(rest, this.position);
      if (bytesWritten === 0) throw Object.assign(new Error('the disk took no bytes'), { code: 'EIO' });
      this.position += bytesWritten;
      rest = skip(rest, bytesWritten);
    }
  }
}

function byteLength(buffers: Buffer[]): number {
  let total = 0;
  for (const buffer of buffers) total += buffer.length;
  return total;
}

function skip(buffers: Buffer[], bytes: number): Buffer[] {
  let index = 0;
  while (index < buffers.length && bytes >= buffers[index]!.length) bytes -= buffers[index++]!.length;
  if (index === buffers.length) return [];
  return [buffers[index]!.subarray(bytes), ...buffers.slice(index + 1)];
}
