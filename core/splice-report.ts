import type { SpliceRecord } from './splice-model.js';

const num = (n: number) => n.toLocaleString('en-US');

/** Parse a duration: `500ms`, `1.5s`, `2m`, or plain seconds. Null when it is not one. */
export function parseDuration(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) return null;
  const v = Number(m[1]);
  return m[2] === 'ms' ? v / 1000 : m[2] === 'm' ? v * 60 : m[2] === 'h' ? v * 3600 : v;
}

/** The text report of the splices of a run. */
export function formatSplices(recs: readonly SpliceRecord[]): string {
  const lines: string[] = [];
  for (const r of recs) {
    lines.push(`splice ${r.from} -> ${r.to}`);
    lines.push(`  spliced: ${num(r.spliced)} bytes in ${num(r.segments)} segments, ${num(r.copiedBytes)} bytes copied`);
    lines.push(`  ended: ${r.reason}${r.endedAt ? ` at ${r.endedAt}` : ''} (so_error ${r.soError})${r.startedAt ? `, started at ${r.startedAt}` : ''}`);
    lines.push(`  left in the source: ${num(r.remaining)} bytes`);
    lines.push(`  a read/write relay: ${num(r.userland.wakeups)} wakeups, ${num(r.userland.syscalls)} read/write calls, ${num(r.userland.copiedBytes)} bytes copied to and from userland`);
    lines.push(`  integrity: ${r.integrity === 'ok' ? `ok (the drain carries the ${num(r.outputBytes)} bytes the captured relay wrote)` : `differs: the drain carries ${num(r.outputBytes)} bytes, the captured relay wrote ${num(r.capturedBytes)}`}`);
  }
  return lines.join('\n');
}
