/** Number formats and markdown tables shared by the benchmark reports. */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

export const integer = (n: number | undefined): string =>
  n !== undefined && Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a';
export const percent = (fraction: number | undefined): string =>
  fraction !== undefined && Number.isFinite(fraction) ? `${Math.round(fraction * 100)}%` : 'n/a';
export const decimal = (n: number | undefined, digits: number): string =>
  n !== undefined && Number.isFinite(n) ? n.toFixed(digits) : 'n/a';

/** A markdown table; `align` has one entry per column, 'r' for numbers. */
export function table(header: string[], align: ('l' | 'r')[], rows: string[][]): string[] {
  const rule = align.map((a) => (a === 'r' ? '---:' : '---'));
  return [header, rule, ...rows].map((cells) => `| ${cells.join(' | ')} |`);
}

export function machineDescription(): string {
  const cpus = os.cpus();
  return `${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${os.type()} ${os.release()}`;
}

const RESULTS_DIR = fileURLToPath(new URL('../../bench/results', import.meta.url));

/** Writes the full data of a run, every sample included, to bench/results/<suite>-<date>.json. */
export function writeResults(suite: string, date: string, report: unknown): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = `${RESULTS_DIR}/${suite}-${date.replace(/[:.]/g, '-')}.json`;
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  return file;
}
