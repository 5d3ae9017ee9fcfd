// `duplex file send`'s progress bar, shown when stderr is a terminal.
import { SingleBar } from 'cli-progress';
import { MB, megabytes } from './megabytes.js';

/** The terminal's progress bar: percentage, bytes, rate since the start, ETA. */
export class TransferBar {
  private readonly bar = new SingleBar({
    format: '{name} [{bar}] {percentage}% | {done} of {whole} MB | {rate} MB/s | ETA {eta_formatted}',
    stream: process.stderr,
    hideCursor: true,
    clearOnComplete: true,
    // We handle signals ourselves; the library's handler would keep Ctrl-C from ending the process.
    gracefulExit: false,
    etaBuffer: 50,
  });
  private offset = 0;
  private startedAt = 0;

  start(name: string, size: number, offset: number): void {
    this.offset = offset;
    this.startedAt = performance.now();
    this.bar.start(size, offset, { name, done: megabytes(offset), whole: megabytes(size), rate: '0.0' });
  }

  update(position: number): void {
    const seconds = (performance.now() - this.startedAt) / 1000;
    const rate = seconds > 0 ? ((position - this.offset) / MB / seconds).toFixed(1) : '0.0';
    this.bar.update(position, { done: megabytes(position), rate });
  }

  stop(): void {
    this.bar.stop();
  }
}
