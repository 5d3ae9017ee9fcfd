/** The command line every benchmark suite takes: --quick for a short look, --rounds N to override. */
import { parseArgs } from 'node:util';

export interface SuiteOptions {
  quick: boolean;
  rounds?: number;
}

export function parseSuiteArgs(): SuiteOptions {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, rounds: { type: 'string' } } });
  const rounds = values.rounds === undefined ? undefined : Number(values.rounds);
  if (rounds !== undefined && (!Number.isInteger(rounds) || rounds < 1)) throw new Error('--rounds needs a positive integer');
  return { quick: values.quick ?? false, rounds };
}
