/**
 * Spawning benchmark processes so that none is ever left running: every child is tracked and
 * killed when this process exits or is interrupted, every wait has a timeout, and each child's
 * stdin is a pipe it can watch to notice that we are gone even after a SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process';

const STDERR_TAIL = 2000;
const live = new Set<ChildProcess>();
let cleanupInstalled = false;

function killAll(): void {
  for (const child of live) child.kill('SIGKILL');
}

function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on('exit', killAll);
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.on(signal, () => {
      killAll();
      process.exit(code);
    });
  }
}

export interface Child {
  process: ChildProcess;
  /** The last stderr output, for error messages. */
  stderr(): string;
}

export function spawnChild(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Child {
  installCleanup();
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
  live.add(child);
  child.once('exit', () => live.delete(child));
  // A failed spawn (e.g. missing command) is reported through the 'exit'-based waits below.
  child.on('error', () => live.delete(child));
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => {
    stderr = (stderr + text).slice(-STDERR_TAIL);
  });
  return { process: child, stderr: () => stderr.trim() };
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function describeExit(child: Child): string {
  const { exitCode, signalCode } = child.process;
  const how = signalCode ? `signal ${signalCode}` : `code ${exitCode}`;
  const stderr = child.stderr();
  return stderr ? `exited with ${how}: ${stderr}` : `exited with ${how}`;
}

/** Resolves with the match of the first stdout line that matches; rejects on exit or timeout. */
export function waitForLine(child: Child, pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let pending = '';
    const stdout = child.process.stdout!;
    const done = (settle: () => void): void => {
      clearTimeout(timer);
      stdout.off('data', onData);
      child.process.off('close', onClose);
      child.process.off('error', onError);
      settle();
    };
    const onData = (text: string): void => {
      pending += text;
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        const match = line.trim().match(pattern);
        if (match) return done(() => resolve(match));
      }
    };
    const onClose = (): void => done(() => reject(new Error(describeExit(child))));
    const onError = (error: Error): void => done(() => reject(error));
    const timer = setTimeout(
      () => done(() => reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms`))),
      timeoutMs,
    );
    stdout.setEncoding('utf8');
    stdout.on('data', onData);
    child.process.once('close', onClose);
    child.process.once('error', onError);
  });
}

/**
 * Waits for the child to finish and returns its stdout, passing each line to `onLine` as it
 * arrives; kills the child and rejects on timeout or failure.
 */
export function collectOutput(
  child: Child,
  timeoutMs: number,
  onLine: (line: string) => void = () => {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let scanned = 0;
    child.process.stdout!.setEncoding('utf8');
    child.process.stdout!.on('data', (text: string) => {
      stdout += text;
      for (let end = stdout.indexOf('\n', scanned); end !== -1; end = stdout.indexOf('\n', scanned)) {
        onLine(stdout.slice(scanned, end).trim());
        scanned = end + 1;
      }
    });
    const timer = setTimeout(() => {
      child.process.kill('SIGKILL');
      reject(new Error(`did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.process.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.process.once('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(new Error(describeExit(child)));
    });
  });
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, timeoutMs);
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

/** SIGTERM by PID, then SIGKILL if it lingers; bounded either way. */
export async function stopChild(child: Child, timeoutMs: number): Promise<void> {
  const proc = child.process;
  if (exited(proc) || proc.pid === undefined) return;
  proc.kill('SIGTERM');
  if (await waitForExit(proc, timeoutMs)) return;
  proc.kill('SIGKILL');
  await waitForExit(proc, timeoutMs);
}
