import { CliError, describeFailure, reportError } from './errors.js';

interface Listener {
  on(event: 'listening', fn: () => void): unknown;
  on(event: 'error', fn: (err: Error) => void): unknown;
}

/**
 * Resolves once `server` listens; failing to listen (port in use, bad host) is a user error. An error
 * after that leaves a server we cannot trust, so it ends the process with one line.
 */
export function listening(server: Listener, where: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let up = false;
    server.on('listening', () => {
      up = true;
      resolve();
    });
    server.on('error', (err) => {
      if (!up) return reject(new CliError(`cannot listen on ${where}: ${describeFailure(err)}`));
      reportError(new CliError(`server error: ${describeFailure(err)}`));
      process.exit(1);
    });
  });
}
