// Helpers for the file-transfer tests: random files with their hash, a TCP proxy that cuts or
// corrupts a transfer at an exact byte, a raw protocol peer, and a tiny tmpfs for disk-full cases.
import { spawnSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ReceiverMessageParser, type ReceiverMessage } from '../../src/sockets/file-protocol.js';
import { bounded } from './cli.js';

const WAIT_MS = 10_000;

export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), `duplex-${prefix}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Writes `bytes` pseudo-random bytes, 1 MiB at a time; returns their hex SHA-256. */
export async function randomFile(file: string, bytes: number, seed = 1): Promise<string> {
  const hash = createHash('sha256');
  // AES-CTR over zeros: reproducible random-looking bytes at GB/s, from a seed.
  const key = createHash('sha256').update(`duplex-file-test:${seed}`).digest();
  const stream = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(1 << 20);
  const handle = await open(file, 'w');
  try {
    for (let written = 0; written < bytes; ) {
      const chunk = stream.update(zeros.subarray(0, Math.min(zeros.length, bytes - written)));
      await handle.write(chunk);
      hash.update(chunk);
      written += chunk.length;
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  const handle = await open(file, 'r');
  try {
    for await (const chunk of handle.createReadStream({ highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  } finally {
    await handle.close().catch(() => {});
  }
  return hash.digest('hex');
}

export interface ProxyOptions {
  /** Forward only this many bytes from the sender, then hold its connection (see `cut`). */
  cutAfter?: number;
  /** Flip the lowest bit of the sender's byte at this stream offset. */
  corruptAt?: number;
}

/**
 * A proxy between a sender and a receiver on 127.0.0.1. With `cutAfter`, the receiver gets exactly
 * that many bytes; the sender's further bytes are read and dropped until it goes away (killed,
 * or `sever()`), and then the receiver's connection is ended, as if the sender had died there.
 */
export class Proxy {
  readonly cut: Promise<void>;
  private markCut!: () => void;
  private readonly clients = new Set<net.Socket>();
  private constructor(private readonly server: net.Server, readonly port: number) {
    this.cut = new Promise((resolve) => (this.markCut = resolve));
  }

  static async start(targetPort: number, options: ProxyOptions = {}): Promise<Proxy> {
    let proxy: Proxy | undefined;
    const server = net.createServer((client) => proxy!.relay(client, targetPort, options));
    server.listen(0, '127.0.0.1');
    await bounded(once(server, 'listening'), WAIT_MS, () => 'proxy did not listen');
    proxy = new Proxy(server, (server.address() as AddressInfo).port);
    return proxy;
  }

  /** Drops the sender's connection, as if it had been killed. */
  sever(): void {
    for (const client of this.clients) client.destroy();
  }

  async close(): Promise<void> {
    this.sever();
    await bounded(new Promise<void>((resolve) => this.server.close(() => resolve())), WAIT_MS, () => 'proxy did not close');
  }

  private relay(client: net.Socket, targetPort: number, { cutAfter = Infinity, corruptAt = -1 }: ProxyOptions): void {
    this.clients.add(client);
    const upstream = net.connect(targetPort, '127.0.0.1');
    let forwarded = 0;
    client.on('data', (chunk: Buffer) => {
      const take = Math.max(0, Math.min(chunk.length, cutAfter - forwarded));
      if (take > 0) {
        const part = Buffer.from(chunk.subarray(0, take));
        if (corruptAt >= forwarded && corruptAt < forwarded + take) part[corruptAt - forwarded]! ^= 1;
        upstream.write(part);
        forwarded += take;
      }
      if (forwarded >= cutAfter) this.markCut();
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    // end() rather than destroy(): what was forwarded reaches the receiver before the FIN.
    client.on('close', () => upstream.end());
    upstream.on('close', () => client.destroy());
    client.on('error', () => {});
    upstream.on('error', () => {});
  }
}

/** A sender that speaks the protocol byte by byte, for cases the real sender never produces. */
export class RawSender {
  private readonly parser = new ReceiverMessageParser();
  private readonly messages: ReceiverMessage[] = [];
  private readonly waiters = new Set<() => void>();
  readonly closed: Promise<void>;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const message of this.parser.push(chunk)) if (message.type !== 'keep') this.messages.push(message);
      for (const wake of [...this.waiters]) wake();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.on('close', () => resolve()));
  }

  static async connect(port: number): Promise<RawSender> {
    const socket = net.connect(port, '127.0.0.1');
    await bounded(once(socket, 'connect'), WAIT_MS, () => 'cannot connect');
    return new RawSender(socket);
  }

  send(...buffers: Buffer[]): void {
    for (const buffer of buffers) this.socket.write(buffer);
  }

  next(): Promise<ReceiverMessage> {
    return bounded(
      new Promise<ReceiverMessage>((resolve) => {
        const check = (): void => {
          const message = this.messages.shift();
          if (message === undefined) return;
          this.waiters.delete(check);
          resolve(message);
        };
        this.waiters.add(check);
        check();
      }),
      WAIT_MS,
      () => 'no message from the receiver',
    );
  }

  waitClosed(): Promise<void> {
    return bounded(this.closed, WAIT_MS, () => 'the receiver kept the connection open');
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A tmpfs of `size` (e.g. '1m') on a fresh directory, or undefined where mounting is not allowed. */
export function smallTmpfs(size: string): { dir: string; unmount: () => void } | undefined {
  const { dir, remove } = tempDir('tmpfs');
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { timeout: 10_000 });
  if (mount.status !== 0) {
    remove();
    return undefined;
  }
  return {
    dir,
    unmount: () => {
      spawnSync('umount', [dir], { timeout: 10_000 });
      remove();
    },
  };
}
