// `duplex file receive` and `duplex file send HOST:PORT PATH`: file transfer over TCP, resumable and
// verified by SHA-256 (src/sockets/file-transfer.ts). The sender shows a progress bar when stderr is
// a terminal and ends with one line: size, time, rate and the hash both ends agree on.
//
// Exit status: 0 once the receiver confirmed the file; 1 for any failure, reported in one line;
// 128 + signal number when interrupted by Ctrl-C or SIGTERM (what was sent stays for a resume).
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { FileReceiver, FileTransferError, sendFile, type FailureInfo, type ReceivedInfo, type TransferInfo } from '../sockets/file-transfer.js';
import { CliError, describeFailure } from './errors.js';
import type { Target } from './file-command.js';
import { MB, megabytes } from './megabytes.js';
import { closeWithin, shutdownSignal } from './shutdown.js';

export interface ReceiveOptions {
  port: number;
  host: string;
  dir: string;
  timeout: number;
}

export interface SendOptions {
  name?: string;
  overwrite?: boolean;
  timeout: number;
}

/** How long transfers in progress get to save what they have when the receiver is stopped. */
const CLOSE_GRACE_MS = 5000;

export async function runFileReceive({ port, host, dir, timeout }: ReceiveOptions): Promise<number> {
  await checkDirectory(dir);
  const receiver = new FileReceiver({ dir, timeoutMs: timeout });
  receiver.on('transfer', (info: TransferInfo) => {
    const resumed = info.offset > 0 ? `, resuming at ${info.offset}` : '';
    process.stdout.write(`receiving ${info.name} from ${info.remote}: ${sizeText(info.size)}${resumed}\n`);
  });
  receiver.on('received', (info: ReceivedInfo) => {
    process.stdout.write(`received ${info.name} from ${info.remote}: ${summary(info.size, info.size - info.offset, info.offset, info.durationMs, info.sha256)}\n`);
  });
  receiver.on('failed', (info: FailureInfo) => {
    // A refused name is quoted in the message already, and may hold anything.
    const what = info.name === undefined || info.code === 'name-refused' ? info.remote : `${info.name} from ${info.remote}`;
    const kept = info.kept === undefined ? '' : `; ${info.kept} bytes kept in ${info.name}.part`;
    process.stderr.write(`duplex: ${what}: ${info.message}${kept}\n`);
  });
  let address;
  try {
    address = await receiver.listen(port, host);
  } catch (err) {
    throw new CliError(`cannot listen on ${host}:${port}: ${describeFailure(err)}`);
  }
  // Listen for signals before announcing the address: whoever reads it may signal us right away.
  const stop = shutdownSignal();
  const shown = address.address.includes(':') ? `[${address.address}]` : address.address;
  process.stdout.write(`listening on ${shown}:${address.port}\nsaving files to ${receiver.dir}\n`);
  await stop;
  if (!(await closeWithin((done) => void receiver.close().then(done), CLOSE_GRACE_MS))) {
    process.stderr.write('duplex: some transfers did not finish saving; exiting anyway\n');
  }
  return 0;
}

async function checkDirectory(dir: string): Promise<void> {
  try {
    if (!(await stat(dir)).isDirectory()) throw new CliError(`cannot receive into ${dir}: not a directory`);
    await access(dir, constants.W_OK);
  } catch (err) {
    if (err instanceof CliError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(`cannot receive into ${dir}: ${code === 'ENOENT' ? 'no such directory' : describeFailure(err)}`);
  }
}

export async function runFileSend(target: Target, path: string, options: SendOptions): Promise<number> {
  // Only a terminal shows the bar, so only then is its library loaded.
  const bar = process.stderr.isTTY ? new (await import('./transfer-bar.js')).TransferBar() : undefined;
  const abort = new AbortController();
  let signal: NodeJS.Signals | undefined;
  void shutdownSignal().then((received) => {
    signal = received;
    abort.abort();
  });
  try {
    const result = await sendFile({
      host: target.host,
      port: target.port,
      path,
      name: options.name,
      overwrite: options.overwrite === true,
      timeoutMs: options.timeout,
      signal: abort.signal,
      onStart: (info) => bar?.start(info.name, info.size, info.offset),
      onProgress: (position) => bar?.update(position),
    });
    bar?.stop();
    process.stdout.write(`sent ${result.name}: ${summary(result.size, result.sent, result.offset, result.durationMs, result.sha256)}\n`);
    return 0;
  } catch (err) {
    bar?.stop();
    if (signal !== undefined) {
      process.stderr.write(`duplex: interrupted by ${signal}; run the same command again to resume\n`);
      return 128 + osConstants.signals[signal];
    }
    throw new CliError(failureText(err));
  }
}

const RESUMABLE = new Set(['interrupted', 'timeout']);

function failureText(err: unknown): string {
  if (!(err instanceof FileTransferError)) return describeFailure(err);
  if (err.code === 'connect') return err.message.replace(/: .*$/, `: ${describeFailure(err.cause)}`);
  if (err.code === 'exists') return `${err.message} (--overwrite replaces it)`;
  if (RESUMABLE.has(err.code)) return `${err.message}; run the same command again to resume`;
  return err.message;
}

function sizeText(bytes: number): string {
  return `${megabytes(bytes)} MB (${bytes} bytes)`;
}

/** "104.9 MB (104857600 bytes) in 0.61 s, 171.9 MB/s, sha256 …": the rate counts the bytes sent this time. */
function summary(size: number, sent: number, offset: number, durationMs: number, sha256: string): string {
  const seconds = durationMs / 1000;
  const resumed = offset > 0 ? `, resumed at ${offset}` : '';
  return `${sizeText(size)}${resumed} in ${seconds.toFixed(2)} s, ${(sent / MB / seconds).toFixed(1)} MB/s, sha256 ${sha256} verified`;
}
