import { SockcapError } from './errors.js';
import type { FuseRecord, TcpFuse } from './tcp/tcp-fuse.js';

/** The `fuse` result: stable JSON shape. */
export interface FuseSummary {
  /** One record per connection, sorted by stream: the first FUSE_RECORDS to leave the table. */
  connections: FuseRecord[];
  /** Connections past those, counted in fusedConnections but not listed (0 when all are). */
  connectionsOmitted: number;
  /** True when every segment written for a fused connection while fused was SYN/FIN/RST-only. */
  onlySynFin: boolean;
  /** The first segment that broke that claim, if one did. */
  violation: string | null;
  fusedConnections: number;
  /** Segments written for fused connections while they were fused. */
  fusedSegments: number;
  /** Work a fusing stack does not do: segments built and checksummed, tcp_input calls. */
  saved: { segments: number; payloadBytes: number; checksums: number; tcpInputCalls: number };
  framesIn: number;
  framesOut: number;
}

export function fuseSummary(f: TcpFuse, framesIn: number, framesOut: number): FuseSummary {
  const connections = [...f.records].sort((a, b) => a.stream - b.stream);
  return {
    connections,
    connectionsOmitted: f.omitted,
    onlySynFin: f.violation === null,
    violation: f.violation,
    fusedConnections: f.fusedConnections,
    fusedSegments: f.fusedFrames,
    saved: { segments: f.saved.segments, payloadBytes: f.saved.bytes, checksums: f.saved.segments, tcpInputCalls: f.saved.segments },
    framesIn,
    framesOut,
  };
}

/** The error a run ends with when the report's SYN/FIN claim did not hold (exit 8), or null. */
export function fuseClaimError(s: FuseSummary): SockcapError | null {
  return s.onlySynFin ? null : new SockcapError('ERR_CLAIM', `a fused connection sent more than SYN/FIN segments: ${s.violation}`);
}

const num = (n: number) => n.toLocaleString('en-US');

export const FUSE_HEADER = `${'stream'.padEnd(6)}  ${'client'.padEnd(22)}  ${'server'.padEnd(22)}  ${'fused'.padEnd(5)}  ${'why'.padEnd(28)}  ${'segments'.padStart(11)}  ${'c2s fused'.padStart(11)}  ${'s2c fused'.padStart(11)}`;

export function formatFuseRow(c: FuseRecord): string {
  const why = c.unfused ? `${c.reason}; unfused: ${c.unfused}` : c.reason;
  return `${String(c.stream).padEnd(6)}  ${c.client.padEnd(22)}  ${c.server.padEnd(22)}  ${(c.fused ? 'yes' : 'no').padEnd(5)}  ${why.padEnd(28)}  ${`${c.segmentsBefore} -> ${c.segmentsAfter}`.padStart(11)}  ${num(c.delivered.c2s).padStart(11)}  ${num(c.delivered.s2c).padStart(11)}${c.net === undefined ? '' : `  ${c.net}`}`;
}

/** The text report: the table, then the claim (which holds only if it is true) and the work saved. */
export function formatFuseSummary(s: FuseSummary): string {
  return [FUSE_HEADER, ...s.connections.map(formatFuseRow), '', ...formatFuseTotals(s)].join('\n');
}

/** The lines after the table: connections not listed, the claim, the work saved, the frames. */
export function formatFuseTotals(s: FuseSummary): string[] {
  const lines: string[] = [];
  if (s.connectionsOmitted)
    lines.push(`(${num(s.connectionsOmitted)} more connections left the table after the first ${num(s.connections.length)} and are counted, not listed)`);
  lines.push(s.onlySynFin
    ? `fused connections emitted only SYN/FIN segments: yes (${s.fusedConnections} connections, ${s.fusedSegments} segments)`
    : `fused connections emitted only SYN/FIN segments: NO: ${s.violation}`);
  lines.push(`work saved: ${num(s.saved.segments)} segments not built, ${num(s.saved.checksums)} checksums not computed (${num(s.saved.payloadBytes)} payload bytes), ${num(s.saved.tcpInputCalls)} tcp_input calls avoided`);
  lines.push(`frames: ${num(s.framesIn)} in, ${num(s.framesOut)} out`);
  return lines;
}
