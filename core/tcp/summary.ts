import type { Connection, Dir } from '../net/in-pcb.js';
import type { NetNames } from '../net/net-names.js';
import type { Gap, RcvStats, Tcpcb, TcpState } from './tcpcb.js';

/**
 * A hole in a report (the JSON summaries, extract's index): [offset, length], with a third element
 * "snaplen" when its bytes were on the wire but the snaplen cut them from frames that were
 * captured (capture again with a larger snaplen); without it, segments that were never captured.
 */
export type GapEntry = [number, number] | [number, number, 'snaplen'];

/** A recorded Gap as a report lists it, at `at` (its offset, or where a file has it). */
export function gapEntry(g: Gap, at = g[0]): GapEntry {
  return g[2] ? [at, g[1], 'snaplen'] : [at, g[1]];
}

/** One direction of a connection in the report. */
export interface DirSummary {
  src: string;
  dst: string;
  /** Bytes delivered to the receiving socket (what a reader got). */
  bytes: number;
  sha256?: string;
  /** Holes skipped: [offset in the delivered bytes, length], "snaplen" third when the snaplen cut them. */
  gaps: GapEntry[];
  segments: number;
  /** Bytes received again (complete and partial duplicates). */
  retransmitted: number;
  outOfOrder: number;
  overlapBytes: number;
  overlapConflicts: number;
}

/** One connection in the report (stable JSON shape). */
export interface ConnSummary {
  stream: number;
  client: string;
  server: string;
  /** The network the connection was in, when not the capture's own: its VLAN stack and tunnels ("vlan 100 vxlan vni 5001"). */
  net?: string;
  /** RESET, CLOSED (both FINs), HALF_CLOSED, ESTABLISHED, SYN_SENT, SYN_RECEIVED. */
  state: string;
  states: { client: TcpState; server: TcpState };
  /** True when no SYN was seen and the client was guessed from the ports. */
  clientGuessed: boolean;
  frames: number;
  start: number;
  duration: number;
  c2s: DirSummary;
  s2c: DirSummary;
}

/** The state a report gives a connection (ConnSummary.state). */
export function connState(c: Connection): string {
  if (c.reset) return 'RESET';
  if (c.client.sentFin && c.server.sentFin) return 'CLOSED';
  if (c.client.sentFin || c.server.sentFin) return 'HALF_CLOSED';
  if (c.client.so.connected && c.server.so.connected) return 'ESTABLISHED';
  return c.client.state === 'SYN_SENT' ? 'SYN_SENT' : c.server.state === 'SYN_RECEIVED' ? 'SYN_RECEIVED' : 'ESTABLISHED';
}

/** Where a summary gets the hash of a direction from: the socket reader, when it hashes. */
export type Digest = (c: Connection, dir: Dir) => string | null | undefined;

function dirSummary(c: Connection, dir: Dir, rx: Tcpcb, digest?: Digest): DirSummary {
  const s = rx.rcvStats;
  const out: DirSummary = {
    src: dir === 'c2s' ? c.clientName : c.serverName,
    dst: dir === 'c2s' ? c.serverName : c.clientName,
    bytes: rx.so.rcv.total,
    gaps: rx.gaps.map((g) => gapEntry(g)),
    segments: rx.rcvTotal,
    retransmitted: retransmitted(s),
    outOfOrder: s.oooSegs,
    overlapBytes: s.overlapBytes,
    overlapConflicts: s.overlapConflicts,
  };
  const h = digest?.(c, dir);
  if (h) out.sha256 = h;
  return out;
}

/** The name of the network a connection is in, when it is not the capture's own (ConnSummary.net). */
export function connNet(c: Connection, nets?: NetNames): string | undefined {
  return c.vlan !== 0 && nets ? nets.get(c.vlan) : undefined;
}

/** Summarise a connection that has left the table (its readers have read everything). */
export function connSummary(c: Connection, digest?: Digest, nets?: NetNames): ConnSummary {
  const net = connNet(c, nets);
  return {
    stream: c.stream,
    client: c.clientName,
    server: c.serverName,
    ...(net === undefined ? {} : { net }),
    state: connState(c),
    states: { client: c.client.state, server: c.server.state },
    clientGuessed: c.guessed,
    frames: c.frames,
    start: c.firstTs,
    duration: c.duration,
    c2s: dirSummary(c, 'c2s', c.server, digest),
    s2c: dirSummary(c, 's2c', c.client, digest),
  };
}

/** netstat -s style counters, named after BSD tcpstat fields where one exists. */
export type Tcpstat = Record<'connections' | 'rcvtotal' | 'rcvbyte' | 'rcvdupbyte' | 'rcvoopack' | 'overlapbytes' |
  'overlapconflicts' | 'gaps' | 'gapbytes' | 'snaplenbytes' | 'resets' | 'midstream', number>;

export function newTcpstat(): Tcpstat {
  return { connections: 0, rcvtotal: 0, rcvbyte: 0, rcvdupbyte: 0, rcvoopack: 0, overlapbytes: 0, overlapconflicts: 0,
    gaps: 0, gapbytes: 0, snaplenbytes: 0, resets: 0, midstream: 0 };
}

/** Bytes received again: complete and partial duplicates. */
export function retransmitted(s: Readonly<RcvStats>): number {
  return s.dupBytes + s.partDupBytes;
}

/**
 * Add one finished connection to the counters: the same numbers its summary has (read from the
 * connection, so that counting needs no summary).
 */
export function addTcpstat(t: Tcpstat, c: Connection): void {
  t.connections++;
  addDir(t, c.server);
  addDir(t, c.client);
  if (c.reset) t.resets++;
  if (c.guessed) t.midstream++;
}

/** One direction: what `rx` received. */
function addDir(t: Tcpstat, rx: Tcpcb): void {
  const s = rx.rcvStats;
  t.rcvtotal += rx.rcvTotal;
  t.rcvbyte += rx.so.rcv.total;
  t.rcvdupbyte += retransmitted(s);
  t.rcvoopack += s.oooSegs;
  t.overlapbytes += s.overlapBytes;
  t.overlapconflicts += s.overlapConflicts;
  t.gaps += rx.gaps.length;
  const gaps = rx.gaps;
  // indexed: a for-of made an iterator for every direction of every connection, gaps or not
  for (let i = 0; i < gaps.length; i++) {
    const g = gaps[i]!;
    t.gapbytes += g[1];
    if (g[2]) t.snaplenbytes += g[1];
  }
}
