import { constants } from 'node:os';

/**
 * Resolves on the first SIGINT or SIGTERM so that a command can close cleanly. A second signal means
 * the user is done waiting: exit at once with the shell's usual 128 + signal number.
 */
export function shutdownSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let received = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (received) process.exit(128 + constants.signals[signal]);
      received = true;
      resolve(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

/** Waits for `close` to call back, but never longer than `ms`: shutting down must not hang on a peer. */
export function closeWithin(close: (done: () => void) => void, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    close(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}
