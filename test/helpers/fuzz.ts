/**
 * Run counts for the fuzz tests: the numbers in the tests are for `npm test` (bounded time in CI);
 * `npm run fuzz` sets FUZZ_SCALE (default there: 50) to multiply them, and FUZZ_SEED to replay a
 * failure that fast-check reported.
 */
const scale = Number(process.env.FUZZ_SCALE ?? 1);
const seed = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);

export function runs(n: number): { numRuns: number; seed?: number } {
  return { numRuns: Math.max(1, Math.round(n * scale)), ...(seed === undefined ? {} : { seed }) };
}
