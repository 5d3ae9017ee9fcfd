// The log of `duplex serve`: one record per line, as JSON (for log collectors) or as
// `HH:MM:SS level message key=value` (for people). Our own rather than pino: a line writer is all the
// hub needs, and it keeps the runtime dependencies to commander.
import type { Log, LogLevel } from '../hub/context.js';

export type LogFormat = 'json' | 'human';
export type Fields = Record<string, unknown>;

export const LOG_FORMATS: readonly LogFormat[] = ['json', 'human'];

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const LEVEL_COLORS: Record<LogLevel, string> = { debug: '\x1b[2m', info: '\x1b[36m', warn: '\x1b[33m', error: '\x1b[31m' };
const RESET = '\x1b[0m';
// Bare words stay bare in human output; other strings are quoted so that a line splits back into fields.
const BARE = /^[\w.:/@+-]+$/;

export interface LoggerOptions {
  format: LogFormat;
  out: NodeJS.WritableStream & { isTTY?: boolean };
  /** Records below this level are dropped; default info. */
  level?: LogLevel;
  now?: () => Date;
}

/** Human on a terminal, JSON when the output goes to a file, a pipe or a log collector. */
export function defaultLogFormat(out: { isTTY?: boolean }): LogFormat {
  return out.isTTY === true ? 'human' : 'json';
}

export class Logger {
  readonly format: LogFormat;
  /** The hub's `log` option. */
  readonly log: Log;
  private readonly out: LoggerOptions['out'];
  private readonly threshold: number;
  private readonly now: () => Date;
  private readonly color: boolean;

  constructor(options: LoggerOptions) {
    this.format = options.format;
    this.out = options.out;
    this.threshold = LEVELS[options.level ?? 'info'];
    this.now = options.now ?? (() => new Date());
    this.color = options.out.isTTY === true && !process.env.NO_COLOR;
    this.log = (level, message, fields) => this.write(level, message, fields);
  }

  info(message: string, fields?: Fields): void {
    this.write('info', message, fields);
  }

  warn(message: string, fields?: Fields): void {
    this.write('warn', message, fields);
  }

  /** Something to announce (the start-up banner): plain lines for people, one info record for machines. */
  notice(lines: string[], message: string, fields: Fields): void {
    if (this.format === 'json') return this.write('info', message, fields);
    this.out.write(lines.map((line) => `${line}\n`).join(''));
  }

  write(level: LogLevel, message: string, fields: Fields = {}): void {
    if (LEVELS[level] < this.threshold) return;
    const time = this.now();
    this.out.write(this.format === 'json' ? jsonLine(time, level, message, fields) : this.humanLine(time, level, message, fields));
  }

  private humanLine(time: Date, level: LogLevel, message: string, fields: Fields): string {
    const clock = time.toTimeString().slice(0, 8);
    const tag = this.color ? `${LEVEL_COLORS[level]}${level}${RESET}` : level;
    const pairs = Object.entries(fields)
      .filter(([, value]) => value !== undefined)
      .map(([key, value]) => ` ${key}=${humanValue(value)}`)
      .join('');
    return `${clock} ${tag} ${message}${pairs}\n`;
  }
}

function jsonLine(time: Date, level: LogLevel, message: string, fields: Fields): string {
  const record: Fields = { time: time.toISOString(), level, msg: message };
  // The record's own keys win: a field named "level" must not make an error look like info.
  for (const [key, value] of Object.entries(fields)) if (!(key in record)) record[key] = value;
  return `${JSON.stringify(record, replacer)}\n`;
}

function humanValue(value: unknown): string {
  if (typeof value === 'string') return BARE.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value, replacer) ?? String(value);
}

/** JSON.stringify writes an Error as {} and throws on a bigint; a log line must never lose or throw. */
function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return value.message;
  if (typeof value === 'bigint') return value.toString();
  return value;
}
