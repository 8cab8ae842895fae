import { createRequire } from 'node:module';

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
 *
 * Once the heap is made the flag has done its work (V8 reads it in Heap::ConfigureHeap, as each
 * isolate is made), and the executable sets it back to V8's default first thing (startFlags).
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

/** V8's flags, changed at run time. */
export interface V8Flags {
  /** v8.setFlagsFromString. */
  set(flag: string): void;
  /** v8.cachedDataVersionTag(): V8's version, the flags' hash and the CPU's features, which a code cache is checked against. */
  tag(): number;
}

/**
 * V8's flags through node's own binding (what node:v8 wraps), or through node:v8 when the binding
 * is not there. node:v8 is not loaded at start-up: loaded then it is compiled from source (the
 * flag from the first line makes node's code cache of its modules unusable, below), and a replay
 * of smtp.pcap ran 241 million instructions with it against 209 with the binding (callgrind). The binding is
 * process.binding('v8'), deprecated (DEP0111) and warning on access: the warning is held back
 * for this one access, by noDeprecation, which emitWarning reads as it is called.
 */
export function v8Flags(): V8Flags {
  type Binding = { setFlagsFromString?: (f: string) => void; cachedDataVersionTag?: () => number };
  const quiet = process.noDeprecation;
  let b: Binding | null = null;
  try {
    process.noDeprecation = true;
    b = (process as unknown as { binding?: (name: string) => Binding }).binding?.('v8') ?? null;
  } catch {
    // no binding: node:v8 below
  } finally {
    process.noDeprecation = quiet;
  }
  if (b && typeof b.setFlagsFromString === 'function' && typeof b.cachedDataVersionTag === 'function') {
    const binding = b as Required<Binding>;
    return { set: (f) => binding.setFlagsFromString(f), tag: () => binding.cachedDataVersionTag() };
  }
  const v8 = createRequire(import.meta.url)('node:v8') as typeof import('node:v8');
  return { set: (f) => v8.setFlagsFromString(f), tag: () => v8.cachedDataVersionTag() };
}

/**
 * The executable's flags, as it starts: the semi-space flag back to V8's default, and the growth
 * to set once the start-up's modules are loaded (null: the user gave their own).
 *
 * Why: node carries a code cache of its own modules, made under V8's default flags, and V8 takes a
 * code cache only when the flags' hash is the one it was made under. Any flag on node's command
 * line made node compile every module it loaded (streams, fs/promises, worker_threads) from
 * source: a replay of smtp.pcap ran 266 million instructions with the two flags on the first line,
 * 209 million with them set back at once (callgrind; ~10 ms of ~140). The growth flag is set again
 * just before the command runs, when every module is loaded (the bundle requires them all as it
 * starts), and back to the default before the bundle's own code cache is written at exit: the
 * cache is then made under the flags the next run compiles the bundle with.
 */
export function startFlags(v8: V8Flags, execArgv: readonly string[], nodeOptions: string | undefined): { growth: string | null } {
  if (given('max-semi-space-size', execArgv, nodeOptions)) v8.set('--max-semi-space-size=0');
  return { growth: heapFlag(execArgv, nodeOptions) };
}
