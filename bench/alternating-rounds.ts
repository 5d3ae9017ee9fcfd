/**
 * Rounds in which every contender runs once, the order rotated by one every round, so slow drift of
 * the machine (thermal, noisy neighbours) spreads over all contenders instead of always hitting
 * whichever runs last.
 */
export function rotate<T>(items: readonly T[], by: number): T[] {
  const shift = by % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

/** Runs `rounds` rounds; returns each contender's samples in round order. */
export async function alternatingRounds<C extends { name: string }, S>(
  contenders: readonly C[],
  rounds: number,
  run: (contender: C, round: number) => Promise<S>,
  onSample: (contender: C, round: number, sample: S) => void,
): Promise<Map<string, S[]>> {
  const samples = new Map<string, S[]>(contenders.map((c) => [c.name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const contender of rotate(contenders, round)) {
      const sample = await run(contender, round);
      onSample(contender, round, sample);
      samples.get(contender.name)!.push(sample);
    }
  }
  return samples;
}
