import * as Flags from '@oclif/core/flags';
import { SockcapError } from '../core/errors.js';
import { parseSelector, type Selector } from '../core/selector.js';
import type { SpliceSpec } from '../core/splice-model.js';
import { parseDuration } from '../core/splice-report.js';

/** A selector that names a direction (a splice moves one direction of a flow). */
function directed(text: string, what: string): Selector {
  const s = parseSelector(text);
  if (!s.dir && !s.from) throw new SockcapError('ERR_USAGE', `${what} '${text}' needs a direction: append :c2s or :s2c, or write A>B`);
  return s;
}

export const spliceOptionFlags = {
  max: Flags.integer({ summary: 'splice at most this many bytes, then EFBIG (the rest stays readable in the source)', min: 0 }),
  idle: Flags.string({ summary: 'end the splice with ETIMEDOUT after this much capture time without a move (500ms, 1.5s, 2m)' }),
  close: Flags.option({ options: ['fin', 'keep'] as const, default: 'fin' as const, summary: 'when the splice ends: shut the drain down (FIN) or keep it open' })(),
  at: Flags.string({ summary: 'set the splice up before this frame number, or at this capture time after the first frame (3s)' }),
  until: Flags.string({ summary: 'unsplice (SO_SPLICE with fd -1) before this frame number, or at this capture time after the first frame' }),
  oobinline: Flags.boolean({ allowNo: true, default: true, summary: 'SO_OOBINLINE on the source: urgent bytes are spliced as urgent data (--no-oobinline: tcp_input pulls them out, the splice drops them)' }),
};

/** `--at`/`--until`: a frame number or a capture time. */
function when(text: string | undefined, flag: string): SpliceSpec['at'] {
  if (text === undefined) return undefined;
  if (/^\d+$/.test(text)) return { frame: Number(text) };
  const time = parseDuration(text);
  if (time === null) throw new SockcapError('ERR_USAGE', `${flag} '${text}' is neither a frame number nor a time (3s)`);
  return { time };
}

/**
 * `--until` no later than `--at` (both frame numbers, or both times) would dissolve the splice as
 * it is made: a usage error, not a splice that moves only what was buffered. A frame number and a
 * time cannot be compared before the capture is read.
 */
function order(at: SpliceSpec['at'], until: SpliceSpec['at'], f: { at?: string; until?: string }): void {
  if (!at || !until) return;
  const a = at.frame ?? at.time;
  const u = until.frame ?? until.time;
  if ((at.frame === undefined) !== (until.frame === undefined) || a === undefined || u === undefined || u > a) return;
  throw new SockcapError('ERR_USAGE', `--until ${f.until} is not after --at ${f.at}: the splice would be dissolved as it is made`);
}

/** Splice specs from `--from/--to` and repeatable `--splice FROM=TO`, with the shared options. */
export function spliceSpecs(f: { from?: string; to?: string; splice?: string[]; max?: number; idle?: string; close: 'fin' | 'keep'; at?: string; until?: string; oobinline: boolean }): SpliceSpec[] {
  const idle = f.idle === undefined ? undefined : parseDuration(f.idle);
  if (idle === null) throw new SockcapError('ERR_USAGE', `--idle '${f.idle}' is not a duration (500ms, 1.5s, 2m)`);
  const at = when(f.at, '--at');
  const until = when(f.until, '--until');
  order(at, until, f);
  const pairs: Array<[string, string]> = (f.splice ?? []).map((p) => {
    const i = p.indexOf('=');
    if (i < 0) throw new SockcapError('ERR_USAGE', `--splice '${p}': expected FROM=TO`);
    return [p.slice(0, i), p.slice(i + 1)];
  });
  if (f.from !== undefined || f.to !== undefined) {
    if (f.from === undefined || f.to === undefined) throw new SockcapError('ERR_USAGE', '--from and --to go together');
    pairs.unshift([f.from, f.to]);
  }
  return pairs.map(([a, b]) => ({ from: directed(a, 'source'), to: directed(b, 'drain'), max: f.max, idle, close: f.close, at, until, oobinline: f.oobinline }));
}
