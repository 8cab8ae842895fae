import test from 'ava';

/**
 * `test` when the condition holds, otherwise `test.skip` with the reason in the title, so a
 * skipped test always says why in AVA's output (never a silent skip).
 */
export function when(cond: boolean, reason: string): typeof test {
  if (cond) return test;
  const skip = ((title: string, ...rest: unknown[]) =>
    (test.skip as (t: string, ...r: unknown[]) => void)(`${title} [skipped: ${reason}]`, ...rest)) as unknown as typeof test;
  return skip;
}
