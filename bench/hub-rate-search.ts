/**
 * The search for the highest rate a hub sustains, in as few steps as possible (each step is a few
 * seconds of load, and fewer steps leave less room for other work on a shared machine to get in):
 * double the rate from `start` until a step is not sustained (or `max` is passed), then bisect
 * geometrically between the last sustained rate and the first that was not, `refine` times. The
 * answer is then within a factor 2^(1/2^refine) of the true limit: 3 refinements give 9%.
 */

export type StepOutcome = 'sustained' | 'failed' | 'fatal';

export async function searchRate(
  start: number,
  max: number,
  refine: number,
  run: (rate: number) => Promise<StepOutcome>,
): Promise<void> {
  let sustained = 0;
  let failed = 0;
  for (let rate = start; rate <= max; rate *= 2) {
    const outcome = await run(rate);
    if (outcome === 'fatal') return;
    if (outcome === 'failed') {
      failed = rate;
      break;
    }
    sustained = rate;
  }
  // Nothing to narrow down: the very first step failed, or even the highest rate was sustained.
  if (sustained === 0 || failed === 0) return;
  for (let i = 0; i < refine; i++) {
    const rate = Math.sqrt(sustained * failed);
    const outcome = await run(rate);
    if (outcome === 'fatal') return;
    if (outcome === 'sustained') sustained = rate;
    else failed = rate;
  }
}
