import fc from 'fast-check';
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

/** A mutation: bit flips, a length field set to an edge value, or a truncation. */
export const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ kind: fc.constant('u32' as const), at: fc.nat(), value: fc.constantFrom(0, 1, 2, 0x7fffffff, 0x80000000, 0xffffffff, 65535, 65536) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
);

export function mutate(seed: Buffer, ms: Array<{ kind: 'flip' | 'u32' | 'cut'; at: number; bit?: number; value?: number }>): Buffer {
  let b = Buffer.from(seed);
  for (const m of ms) {
    const at = m.at % b.length;
    if (m.kind === 'flip') b[at]! ^= 1 << m.bit!;
    else if (m.kind === 'u32' && at + 4 <= b.length) b.writeUInt32LE(m.value! >>> 0, at);
    else if (m.kind === 'cut') b = b.subarray(0, at);
  }
  return b;
}
