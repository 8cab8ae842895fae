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
 * Session 24 lowered it to 15: extract on 100,000 short flows peaked at 203-206 MiB at 30 and
 * 194-197 MiB at 15 (4 interleaved runs each; 20 gave 198-200, 10 the same as 15). It costs two
 * more full collections there (8 instead of 6), and times were within the noise: the short
 * extract's median 5.44 against 5.39 s, bulk extract and bulk replay the same, and the short
 * replay 3-4% slower in the medians of 7 runs (2.61 against 2.55 s at the fastest).
 */
export const HEAP_GROWING_PERCENT = 15;

/**
 * The most MiB of each of the young generation's two semi-spaces, which the `sockcap` executable
 * gives node on its first line (`#!/usr/bin/env -S node --max-semi-space-size=4`; `npm start`
 * gives it too): V8 sizes the young generation when it makes the heap, before any script runs, so
 * the CLI cannot set it itself. V8's default lets it grow to 16 MiB each, 32 MiB of every peak.
 * Measured (medians of 5-8 interleaved runs, the benchmark captures): peak RSS of bulk replay 113
 * -> 92 MiB and bulk extract 180 -> 160, replay of 100,000 short flows 197 -> 182 and their extract
 * 226 -> 212; times the same on bulk replay, 3-5% more on the short flows and bulk extract (the
 * scavenger runs four times as often), within the machine's noise. At 2 MiB the short flows'
 * objects that live (connection state, bytes waiting for a reader) are promoted sooner and the
 * old generation holds more: 190 and 220 MiB.
 */
export const SEMI_SPACE_MB = 4;

/** True when the user gave node this flag (on its command line or in NODE_OPTIONS; - or _ alike). */
function given(name: string, execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  const re = new RegExp(`^--${name.replace(/-/g, '[-_]')}\\b`);
  return [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].some((a) => re.test(a));
}

/** The V8 flag to set at start-up, or null when the user set the growth themselves. */
export function heapFlag(execArgv: readonly string[], nodeOptions: string | undefined): string | null {
  return given('heap-growing-percent', execArgv, nodeOptions) ? null : `--heap-growing-percent=${HEAP_GROWING_PERCENT}`;
}

/**
 * The semi-space flag to set at start-up when node was started without one (`node dist/cmd/run.cjs`,
 * as the tests and a library's user run it). Set then it cannot size the young generation (made
 * already); it keeps V8's flag hash, which a code cache is checked against, the hash of a run
 * the executable started: both then use one dist/sockcap.cjs.v8cache instead of each rejecting
 * and rewriting the other's.
 */
export function semiSpaceFlag(execArgv: readonly string[], nodeOptions: string | undefined): string | null {
  return given('max-semi-space-size', execArgv, nodeOptions) ? null : `--max-semi-space-size=${SEMI_SPACE_MB}`;
}
