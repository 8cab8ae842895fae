import { linktypeName } from './capture/linktypes.js';
import type { SockcapError } from './errors.js';
import type { Stack } from './stack.js';

/** The `replay` summary: stable JSON shape (scripts rely on these keys). */
export interface ReplaySummary {
  files: Array<{ name: string; format: string; gzip: boolean; nanos: boolean; bigEndian: boolean; sections: number; frames: number; customBlocks: number }>;
  frames: number;
  bytes: number;
  wireBytes: number;
  /** Frames per LINKTYPE value (keys are the numbers, as strings). */
  linktypes: Record<string, number>;
  protocols: Record<string, number>;
  drops: Record<string, number>;
  notes: Record<string, number>;
  /** First and last capture timestamps (epoch seconds) and the span between them. */
  start: number | null;
  end: number | null;
  duration: number;
  /** Bytes copied because a record straddled two read chunks. */
  straddleBytes: number;
  error?: { code: string; message: string; file?: string; offset?: number };
}

/** Build the summary of a finished run. */
export function replaySummary(stack: Stack, error: SockcapError | null): ReplaySummary {
  const st = stack.stats;
  const has = st.frames > 0 && Number.isFinite(st.firstTs);
  const out: ReplaySummary = {
    files: stack.session.files.map((f) => ({ ...f })),
    frames: st.frames,
    bytes: st.bytes,
    wireBytes: st.wireBytes,
    linktypes: { ...st.linktypes },
    protocols: { ...st.protocols },
    drops: { ...st.drops } as Record<string, number>,
    notes: { ...st.notes },
    start: has ? st.firstTs : null,
    end: has ? st.lastTs : null,
    duration: has ? st.lastTs - st.firstTs : 0,
    straddleBytes: stack.session.straddleBytes,
  };
  if (error) {
    const e = error as SockcapError & { file?: string; offset?: number };
    out.error = { code: e.code, message: e.message, file: e.file, offset: e.offset };
  }
  return out;
}

const num = (n: number) => n.toLocaleString('en-US');

/** Text rendering of the summary, one fact per line. */
export function formatReplaySummary(s: ReplaySummary): string {
  const lines: string[] = [];
  for (const f of s.files)
    lines.push(`${f.name}: ${f.format}${f.gzip ? ' (gzip)' : ''}, ${f.bigEndian ? 'big' : 'little'}-endian, ${f.nanos ? 'ns' : 'µs'}${f.format === 'pcapng' ? `, ${f.sections} section(s)` : ''}, ${num(f.frames)} frames${f.customBlocks ? ` (+${f.customBlocks} custom blocks)` : ''}`);
  lines.push(`frames: ${num(s.frames)}   bytes: ${num(s.bytes)} captured, ${num(s.wireBytes)} on the wire   capture time: ${s.duration.toFixed(6)} s`);
  const lt = Object.entries(s.linktypes).map(([k, v]) => `${linktypeName(Number(k))} (${k}) ${num(v)}`);
  lines.push(`link types: ${lt.join(', ') || '-'}`);
  const pr = Object.entries(s.protocols).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${num(v)}`);
  lines.push(`protocols: ${pr.join(', ') || '-'}`);
  const dr = Object.entries(s.drops).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${num(v)}`);
  lines.push(`drops: ${dr.join(', ') || 'none'}`);
  const nt = Object.entries(s.notes).map(([k, v]) => `${k} ${num(v)}`);
  if (nt.length) lines.push(`noted (not dropped): ${nt.join(', ')}`);
  return lines.join('\n');
}
