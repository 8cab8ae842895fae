/**
 * How fast the CLI lets V8's old generation grow. After a full collection V8 lets the old
 * generation grow to up to four times what survived before it collects again (less on small
 * machines), and picks the factor from how little time collections took. sockcap's old generation
 * is mostly connection state, which lives until its connection closes and is garbage at once after:
 * on 100,000 connections open at once, extract's heap grew to ~300 MB around ~120 MB that lived.
 * Growing by 30% instead: extract's peak RSS on that capture 492 -> 392 MiB and replay's 276 -> 262
 * MiB, times within the noise (5 interleaved runs each; bulk flows hold a small heap and see one more
 * full collection). Only the CLI sets it (a library does not set flags for its host process), and a
 * --heap-growing-percent the user gave node (on its command line or in NODE_OPTIONS) is theirs.
 */
export const HEAP_GROWING_PERCENT = 30;

/** The V8 flag to set at start-up, or null when the user set the growth themselves. */
export function heapFlag(execArgv: readonly string[], nodeOptions: string | undefined): string | null {
  const given = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].some((a) => /^--heap[-_]growing[-_]percent\b/.test(a));
  return given ? null : `--heap-growing-percent=${HEAP_GROWING_PERCENT}`;
}
