import { linktypeName } from './capture/linktypes.js';
import type { SockcapError } from './errors.js';
import type { Stack } from './stack.js';
import type { ConnSummary } from './tcp/summary.js';
import type { ChunkStats } from './capture/zone.js';

/** The `replay` summary: stable JSON shape (scripts rely on these keys). */
export interface ReplaySummary {
  files: Array<{ name: string; format: string | null; gzip: boolean; nanos: boolean; bigEndian: boolean; sections: number; frames: number; snaplen: number | null; customBlocks: number; filtered?: number }>;
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
  /** The capture filter the files were read through, when there was one (each file's `filtered` counts what it rejected). */
  filter?: string;
  /**
   * Link types sockcap does not decode whose frames the filter could not be compiled for (libpcap:
   * "USB link-layer type filtering not implemented"): their frames were rejected, counted here.
   */
  unfilterable?: Array<{ linktype: number; frames: number; reason: string }>;
  /** The read chunks, when they came from a zone (reused once nothing references them). */
  chunks?: ChunkStats;
  /** Frames whose objects were made again from frames already processed (FramePool), with `chunks`. */
  framesReused?: number;
  /** Payload Mbufs made of drained ones (BSD m_freem to the zone), with `chunks`. */
  mbufsReused?: number;
  /** TCP connections, by stream index. */
  connections: ConnSummary[];
  /** Kernel-style TCP counters over every connection (netstat -s, named after tcpstat fields). */
  tcpstat: Record<string, number>;
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
    duration: has ? st.duration : 0,
    straddleBytes: stack.session.straddleBytes,
    ...(stack.session.filter ? { filter: stack.session.filter.expr } : {}),
    ...(stack.session.filter?.unfilterable.size
      ? { unfilterable: [...stack.session.filter.unfilterable].map(([linktype, u]) => ({ linktype, frames: u.frames, reason: u.reason })) }
      : {}),
    ...(stack.session.zone ? { chunks: stack.session.zone.stats(), framesReused: stack.session.pool.reused, mbufsReused: stack.mbufsReused } : {}),
    connections: [],
    tcpstat: {},
  };
  out.connections = [...stack.finished].sort((a, b) => a.stream - b.stream);
  // the file path copies payload in one place only: a record straddling two read chunks
  out.tcpstat = { ...stack.tcpstat, copiedbytes: stack.session.straddleBytes, straddlebytes: stack.session.straddleBytes };
  if (error) {
    const e = error as SockcapError & { file?: string; offset?: number };
    out.error = { code: e.code, message: e.message, file: e.file, offset: e.offset };
  }
  return out;
}

/**
 * An integer with thousands separators, as toLocaleString('en-US') writes it, without Intl (which
 * cost more than reassembly when the table has 100,000 rows, measured).
 */
export function thousands(n: number): string {
  if (!Number.isSafeInteger(n)) return n.toLocaleString('en-US');
  const s = String(Math.abs(n));
  let out = s.length % 3 ? s.slice(0, s.length % 3) : '';
  for (let i = s.length % 3; i < s.length; i += 3) out += (out ? ',' : '') + s.slice(i, i + 3);
  return n < 0 ? `-${out}` : out;
}

const num = thousands;

/** A size in MiB (read chunks are whole MiB) or bytes. */
const mib = (n: number): string => (n % (1 << 20) === 0 ? `${n >> 20} MiB` : `${num(n)} bytes`);

/** Text rendering of the summary, one fact per line. */
export function formatReplaySummary(s: ReplaySummary): string {
  const lines: string[] = [];
  for (const f of s.files)
    if (f.format === null) lines.push(`${f.name}: ${f.gzip ? 'gzip-compressed, ' : ''}not a pcap or pcapng capture`);
    else lines.push(`${f.name}: ${f.format}${f.gzip ? ' (gzip)' : ''}, ${f.bigEndian ? 'big' : 'little'}-endian, ${f.nanos ? 'ns' : 'µs'}${f.format === 'pcapng' ? `, ${f.sections} section(s)` : ''}${f.snaplen === null ? '' : `, snaplen ${f.snaplen}`}, ${num(f.frames)} frames${f.filtered ? `, ${num(f.filtered)} filtered out` : ''}${f.customBlocks ? ` (+${f.customBlocks} custom blocks)` : ''}`);
  if (s.filter !== undefined) lines.push(`filter: ${s.filter}`);
  for (const u of s.unfilterable ?? [])
    lines.push(`filter: ${num(u.frames)} frame${u.frames === 1 ? '' : 's'} of ${linktypeName(u.linktype)} (${u.linktype}) rejected: libpcap cannot filter that link type (tcpdump: ${u.reason})`);
  lines.push(`frames: ${num(s.frames)}   bytes: ${num(s.bytes)} captured, ${num(s.wireBytes)} on the wire   capture time: ${s.duration.toFixed(6)} s`);
  const lt = Object.entries(s.linktypes).map(([k, v]) => `${linktypeName(Number(k))} (${k}) ${num(v)}`);
  lines.push(`link types: ${lt.join(', ') || '-'}`);
  const pr = Object.entries(s.protocols).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${num(v)}`);
  lines.push(`protocols: ${pr.join(', ') || '-'}`);
  const dr = Object.entries(s.drops).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${num(v)}`);
  lines.push(`drops: ${dr.join(', ') || 'none'}`);
  const nt = Object.entries(s.notes).map(([k, v]) => `${k} ${num(v)}`);
  if (nt.length) lines.push(`noted (not dropped): ${nt.join(', ')}`);
  const ch = s.chunks;
  if (ch && ch.allocated) lines.push(`read chunks: ${num(ch.allocated)} of ${mib(ch.size)}, reused ${num(ch.reused)} time${ch.reused === 1 ? '' : 's'}, at most ${num(ch.peakPinned)} pinned after the reader moved on${ch.forgotten ? ` (${num(ch.forgotten)} left to the garbage collector)` : ''}${s.framesReused ? `; ${num(s.framesReused)} frames made from processed ones` : ''}`);
  if (s.tcpstat.connections) lines.push(formatTcpstat(s.tcpstat));
  return lines.join('\n');
}

/** netstat -s style counters. */
export function formatTcpstat(t: Record<string, number>): string {
  return ['tcp:', ...Object.entries(t).map(([k, v]) => `\t${num(v)} ${k}`)].join('\n');
}
