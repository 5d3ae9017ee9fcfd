/**
 * What every echo server script shares with the harness: the port argument, the READY line it
 * waits for, and exiting when the harness goes away.
 */
import type { AddressInfo } from 'node:net';

/** argv[2]; 0 (the default) lets the OS pick a free port, reported in the READY line. */
export function portArgument(): number {
  const port = Number(process.argv[2] ?? 0);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`bad port: ${process.argv[2]}`);
    process.exit(2);
  }
  return port;
}

export function announceReady(address: AddressInfo | string | null): void {
  if (address === null || typeof address === 'string') throw new Error('server is not listening on TCP');
  console.log(`READY ${address.port}`);
}

/**
 * The harness keeps our stdin as a pipe; it reaches end-of-file when the harness exits, even
 * when it is killed with SIGKILL and cannot clean up, so a server is never left behind.
 */
export function exitWithParent(): void {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}
