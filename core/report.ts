import { linktypeName } from './capture/linktypes.js';
import type { SockcapError } from './errors.js';
import type { Stack } from './stack.js';
import type { ConnSummary } from './tcp/summary.js';

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
  /** TCP connections, by stream index. */
  connections: ConnSummary[];
  /** Kernel-style TCP counters over every connection (netstat -s, named after tcpstat fields). */
  tcpstat: Record<string, number>;
  error?: { code: string; message: string; file?: string; offset?: number };
}

function tcpstat(conns: readonly ConnSummary[], stack: Stack): Record<string, number> {
  const t: Record<string, number> = {
    connections: conns.length, rcvtotal: 0, rcvbyte: 0, rcvdupbyte: 0, rcvoopack: 0,
    overlapbytes: 0, overlapconflicts: 0, gaps: 0, gapbytes: 0, resets: 0, midstream: 0,
  };
  for (const c of conns) {
    for (const d of [c.c2s, c.s2c]) {
      t.rcvtotal! += d.segments;
      t.rcvbyte! += d.bytes;
      t.rcvdupbyte! += d.retransmitted;
      t.rcvoopack! += d.outOfOrder;
      t.overlapbytes! += d.overlapBytes;
      t.overlapconflicts! += d.overlapConflicts;
      t.gaps! += d.gaps.length;
      for (const g of d.gaps) t.gapbytes! += g[1];
    }
    if (c.state === 'RESET') t.resets!++;
    if (c.clientGuessed) t.midstream!++;
  }
  t.copiedbytes = 0;
  t.straddlebytes = stack.session.straddleBytes;
  return t;
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
    connections: [],
    tcpstat: {},
  };
  out.connections = [...stack.finished].sort((a, b) => a.stream - b.stream);
  out.tcpstat = tcpstat(out.connections, stack);
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
  if (s.connections.length) lines.push('', formatConnections(s.connections), '', formatTcpstat(s.tcpstat));
  return lines.join('\n');
}

/** The per-connection table. */
export function formatConnections(conns: readonly ConnSummary[]): string {
  const rows = [['stream', 'client', 'server', 'state', 'c2s bytes', 's2c bytes', 'retx', 'ooo', 'overlap', 'gaps', 'duration']];
  for (const c of conns)
    rows.push([String(c.stream), c.client + (c.clientGuessed ? '?' : ''), c.server, c.state, num(c.c2s.bytes), num(c.s2c.bytes),
      num(c.c2s.retransmitted + c.s2c.retransmitted), num(c.c2s.outOfOrder + c.s2c.outOfOrder),
      num(c.c2s.overlapBytes + c.s2c.overlapBytes), String(c.c2s.gaps.length + c.s2c.gaps.length), `${c.duration.toFixed(3)}s`]);
  const hashes = conns.some((c) => c.c2s.sha256);
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((x, i) => (i >= 4 ? x.padStart(w[i]!) : x.padEnd(w[i]!))).join('  ').trimEnd());
  if (hashes) for (const c of conns) lines.push(`stream ${c.stream} sha256 c2s ${c.c2s.sha256} s2c ${c.s2c.sha256}`);
  return lines.join('\n');
}

/** netstat -s style counters. */
export function formatTcpstat(t: Record<string, number>): string {
  return ['tcp:', ...Object.entries(t).map(([k, v]) => `\t${num(v)} ${k}`)].join('\n');
}
