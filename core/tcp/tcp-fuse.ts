import type { Output, SegmentFrame, StackHook } from '../hook.js';
import { m_captured, Mbuf } from '../mbuf/mbuf.js';
import { type Connection, wordsAt } from '../net/in-pcb.js';
import { HeaderTemplate } from '../net/ip-output.js';
import type { NetNames } from '../net/net-names.js';
import { be16 } from '../wire/bytes.js';
import { TH_ACK, TH_FIN, TH_PUSH, TH_RST, TH_SYN, TH_URG } from '../wire/tcp.js';
import { seqAdd, seqDiff, seqGeq } from './seq.js';
import type { Segment } from './tcp-input.js';
import type { Tcpcb } from './tcpcb.js';
import { capturedOptions, shiftSack, tcpHeader } from './tcp-output.js';

/**
 * Sequence numbers of a fused connection. `freeze` (FreeBSD tcp_loopfuse, the default): fused
 * bytes take no sequence space, only SYN and FIN move the numbers. `advance` (Solaris
 * tcp_fuse_output): they advance by the bytes moved, so a FIN carries ISN+1+bytes.
 */
export type FuseSeq = 'freeze' | 'advance';

export interface FuseOptions {
  /** Addresses of this host besides loopback (4 or 16 bytes each): both ends local fuses. */
  readonly local?: readonly Uint8Array[];
  readonly seq?: FuseSeq;
  /** Connections that asked not to fuse (a per-socket opt-out; the option is ours, not FreeBSD's). */
  readonly packetize?: (conn: Connection, nets: NetNames | null) => boolean;
  /** Records kept for the report, at most (FUSE_RECORDS); the rest are counted only. */
  readonly maxRecords?: number;
  /** Given each connection's record as it leaves the table, instead of keeping it (a report that writes them as it goes). */
  readonly onRecord?: (r: FuseRecord) => void;
}

/**
 * Per-connection records a report keeps at most: the first 100,000 connections to leave the table
 * (~200 bytes each, 20 MB). Past that they are counted, not kept, so that a capture of millions of
 * loopback connections (or of SYNs) does not grow the report without bound. `sockcap fuse` takes
 * each record as it comes instead (onRecord) and keeps none.
 */
export const FUSE_RECORDS = 100_000;

/** What fusing did with one connection. */
export interface FuseRecord {
  stream: number;
  client: string;
  server: string;
  fused: boolean;
  /** Why it fused, or why not. */
  reason: string;
  /** What unfused it (urgent data, RST), if anything did. */
  unfused: string | null;
  /** Segments the capture carried, and segments written for it. */
  segmentsBefore: number;
  segmentsAfter: number;
  /** Payload bytes each socket received by fusing (placed straight into its so.rcv). */
  delivered: { c2s: number; s2c: number };
  /** The VLAN stack or tunnel the connection came in (as connection summaries name it), when it did. */
  net?: string;
}

type Phase = 'pending' | 'fused' | 'unfused' | 'never';

/** Per-connection fusing state (Solaris keeps it in the tcp_t: tcp_fused, tcp_loopback_peer). */
class FuseState {
  phase: Phase = 'pending';
  reason = '';
  unfused: string | null = null;
  ipOptions = false;
  segsIn = 0;
  segsOut = 0;
  /** What only a connection that fused needs (most never do: ~110 bytes of heap each saved, test/tcp/adversarial.test.ts). */
  fu: Fused | null = null;
}

/** The state of a connection that fused: per direction, client (or c2s) 0 and server (s2c) 1. */
class Fused {
  /** Stream bytes each end (client 0, server 1) sent while fused that take no sequence space. */
  readonly shift = [0, 0];
  /** rcv.total of the receiving sockets (c2s 0, s2c 1) when the connection fused. */
  readonly base: readonly [number, number];
  readonly delivered = [0, 0];
  /** The first ACK of each end's FIN has been written. */
  readonly finAcked = [false, false];

  constructor(c2sBase: number, s2cBase: number) {
    this.base = [c2sBase, s2cBase];
  }
}

/**
 * Loopback socket fusing (FreeBSD tcp_loopfuse, 2010; Solaris tcp_fusion.c). A connection whose two
 * ends live on this host fuses once both are ESTABLISHED: from then on what one end writes goes
 * straight into its peer's so.rcv, whole Mbufs, no segments. The capture tells what each end wrote;
 * its segments reconstruct those writes (tcp_input and reassembly run as for any connection, so
 * each socket receives every byte), and the output shows what a fusing stack would have sent: the
 * handshake, then only FIN, RST and the ACKs of FINs, carrying the captured ISNs and options.
 * Urgent data and RST unfuse; from then on segments go out as captured, renumbered so that fused
 * bytes took no sequence space (`freeze`).
 */
export class TcpFuse implements StackHook {
  private readonly conns = new Map<Connection, FuseState>();
  private readonly local: number[][];
  private readonly freeze: boolean;
  /** Records of connections that left the table, in that order: the first maxRecords of them. */
  readonly records: FuseRecord[] = [];
  /** Connections that left the table and fused (all of them), and those with no record kept. */
  fusedConnections = 0;
  omitted = 0;
  private readonly maxRecords: number;
  /** Work a fusing stack saves: segments neither built nor checksummed, nor run through tcp_input. */
  readonly saved = { segments: 0, bytes: 0 };
  /** Output frames of fused connections while fused, and the first one that is not SYN/FIN-only. */
  fusedFrames = 0;
  violation: string | null = null;

  constructor(private readonly opts: FuseOptions = {}) {
    this.local = (opts.local ?? []).map((a) => wordsAt(a, 0, a.length));
    this.freeze = (opts.seq ?? 'freeze') === 'freeze';
    this.maxRecords = opts.maxRecords ?? FUSE_RECORDS;
  }

  attach(conn: Connection, out?: Output): void {
    const st = new FuseState();
    const [ok, why] = this.eligibility(conn, out?.nets ?? null);
    st.reason = why;
    if (!ok) st.phase = 'never';
    this.conns.set(conn, st);
  }

  /** Whether both ends of a connection are local to this host, and why (or why not). */
  private eligibility(conn: Connection, nets: NetNames | null): [boolean, string] {
    if (this.opts.packetize?.(conn, nets)) return [false, 'opted out (--packetize)'];
    if (conn.guessed) return [false, 'handshake not captured'];
    const local = (w: number[]) => isLoopback(w) || this.local.some((l) => sameWords(l, w));
    if (isLoopback(conn.cw) && isLoopback(conn.sw)) return [true, 'loopback'];
    if (sameWords(conn.cw, conn.sw)) return [true, 'same address on both ends'];
    if (local(conn.cw) && local(conn.sw)) return [true, 'both ends local (--local)'];
    return [false, 'not local'];
  }

  segment(conn: Connection, c2s: boolean, seg: Segment, f: SegmentFrame, out: Output): void {
    const st = this.conns.get(conn);
    if (!st) return;
    st.segsIn++;
    const was = st.phase;
    if (was === 'pending') this.pending(conn, st, seg, f);
    if (was === 'pending' || st.phase === 'never') {
      st.segsOut++;
      return;
    }
    if (st.phase === 'unfused') return this.rewrite(conn, c2s, seg, f, st, true, out);
    this.fused(conn, c2s, seg, f, st, out);
  }

  /** Before fusing: watch the handshake; fuse when it completes with nothing sent yet. */
  private pending(conn: Connection, st: FuseState, seg: Segment, f: SegmentFrame): void {
    if (f.thOff - f.ipOff > (f.ipv === 4 ? 20 : 40)) st.ipOptions = true;
    const c = conn.client;
    const s = conn.server;
    if (c.state !== 'ESTABLISHED' || s.state !== 'ESTABLISHED') {
      if (seg.wlen > 0) this.never(st, 'data before the handshake completed');
      return;
    }
    if (!c.sentSyn || !s.sentSyn) return this.never(st, 'handshake not captured');
    if (st.ipOptions) return this.never(st, 'IP options or extension headers');
    if (c.so.rcv.total || s.so.rcv.total || c.q.length || s.q.length) return this.never(st, 'data before the handshake completed');
    st.phase = 'fused';
    conn.fused = true;
    st.fu = new Fused(s.so.rcv.total, c.so.rcv.total);
  }

  private never(st: FuseState, why: string): void {
    st.phase = 'never';
    st.reason = why;
  }

  /** A segment of a fused connection: only FIN, RST and the ACK of a FIN go out; urgent data unfuses. */
  private fused(conn: Connection, c2s: boolean, seg: Segment, f: SegmentFrame, st: FuseState, out: Output): void {
    const i = c2s ? 0 : 1;
    const fu = st.fu!;
    const tx = c2s ? conn.client : conn.server;
    const rx = c2s ? conn.server : conn.client;
    if (seg.flags & TH_SYN) return this.check(conn, st, tx, seg.seq, 0, out, null); // a handshake retransmission
    if (!m_captured(f.m) && seg.wlen > 0 && this.violation === null)
      this.violation = `captured frame ${out.hdr.frameNo} (stream ${conn.stream}): a segment that came in IP fragments, whose first fragments were written as captured`;
    const off = seqDiff(seg.seq, seqAdd(tx.iss, 1));
    const urgent = (seg.flags & TH_URG) !== 0 && seg.wlen > 0;
    if (urgent || seg.flags & TH_RST) {
      if (this.freeze && (urgent || seg.wlen > 0)) fu.shift[i] = Math.max(fu.shift[i]!, off + (urgent ? 0 : seg.wlen));
      this.delivered(conn, fu, urgent ? i : -1, seg);
      st.phase = 'unfused';
      conn.fused = false;
      st.unfused = urgent ? 'urgent data' : 'RST';
      return this.rewrite(conn, c2s, seg, f, st, urgent, out);
    }
    if (this.freeze && seg.wlen > 0) fu.shift[i] = Math.max(fu.shift[i]!, off + seg.wlen);
    const acksFin = seg.wlen === 0 && seg.flags & TH_ACK && rx.sentFin && !fu.finAcked[1 - i] && seqGeq(seg.ack, rx.sndMax);
    if (seg.flags & TH_FIN || acksFin) {
      if (seg.flags & TH_ACK && rx.sentFin && seqGeq(seg.ack, rx.sndMax)) fu.finAcked[1 - i] = true;
      return this.rewrite(conn, c2s, seg, f, st, false, out);
    }
    out.consume();
    this.saved.segments++;
    this.saved.bytes += seg.wlen;
  }

  /** Bytes delivered by fusing so far (the segment `skip` direction's own bytes not counted). */
  private delivered(conn: Connection, fu: Fused, skip: number, seg: Segment): void {
    const now = [conn.server.so.rcv.total - fu.base[0], conn.client.so.rcv.total - fu.base[1]];
    for (const i of [0, 1]) fu.delivered[i] = Math.max(fu.delivered[i]!, now[i]! - (i === skip ? seg.plen : 0));
  }

  /**
   * Write the segment renumbered (fused bytes take no sequence space), with its payload (`keep`,
   * minus any fused bytes it repeats) or without. Unchanged segments are written as captured.
   */
  private rewrite(conn: Connection, c2s: boolean, seg: Segment, f: SegmentFrame, st: FuseState, keep: boolean, out: Output): void {
    const i = c2s ? 0 : 1;
    const tx = c2s ? conn.client : conn.server;
    const rx = c2s ? conn.server : conn.client;
    const fu = st.fu!;
    const sTx = fu.shift[i]!;
    const sRx = fu.shift[1 - i]!;
    const off = seqDiff(seg.seq, seqAdd(tx.iss, 1));
    const trim = keep ? Math.min(Math.max(sTx - off, 0), seg.plen) : 0;
    const plen = keep ? seg.plen - trim : 0;
    const seq = seqAdd(tx.iss, 1 + Math.max(0, keep ? off - sTx : off + seg.wlen - sTx));
    let ack = seg.ack;
    if (seg.flags & TH_ACK && rx.sentSyn) ack = seqAdd(rx.iss, 1 + Math.max(0, seqDiff(seg.ack, seqAdd(rx.iss, 1)) - sRx));
    if (keep && trim === 0 && seq === seg.seq && ack === seg.ack) return this.check(conn, st, tx, seq, plen, out, null);
    const b = f.m.buf;
    const o = f.m.off + f.thOff;
    const tpl = HeaderTemplate.of(f.m, f.ipOff, f.thOff, f.ipv);
    if (!tpl) return this.check(conn, st, tx, seg.seq, seg.plen, out, null); // reassembled fragments: written as captured
    const opts = capturedOptions(b, o, f.hlen);
    shiftSack(opts, sRx);
    const flags = keep ? seg.flags : seg.flags & ~(TH_PUSH | TH_URG);
    const urp = flags & TH_URG ? Math.max(0, be16(b, o + 18) - trim) : 0;
    const th = tcpHeader({ sport: be16(b, o), dport: be16(b, o + 2), seq, ack, flags, win: seg.win, urp, opts });
    const payload = plen > 0 ? new Mbuf(b, o + f.hlen + trim, plen, null, f.m.ext) : null;
    out.consume();
    this.check(conn, st, tx, seq, plen, out, tpl.frame(th, payload, plen, out.hdr, 'keep'));
  }

  /**
   * Write `m` (or let the captured frame through when null) and, while the connection is fused,
   * prove the claim: no payload, and (freeze) a sequence number of ISN, ISN+1 or ISN+2.
   */
  private check(conn: Connection, st: FuseState, tx: Tcpcb, seq: number, plen: number, out: Output, m: Mbuf | null): void {
    const n = m ? out.emit(m) : -1;
    st.segsOut++;
    if (st.phase !== 'fused') return;
    this.fusedFrames++;
    const d = seqDiff(seq, tx.iss);
    if (this.violation === null && (plen > 0 || (this.freeze && (d < 0 || d > 2))))
      this.violation = `${m ? `output frame ${n}` : `captured frame ${out.hdr.frameNo}`} (stream ${conn.stream}): seq ISN+${d}, ${plen} payload bytes`;
  }

  detach(conn: Connection, out?: Output): void {
    const st = this.conns.get(conn);
    if (!st) return;
    this.conns.delete(conn);
    const fu = st.fu;
    if (st.phase === 'fused') {
      fu!.delivered[0] = conn.server.so.rcv.total - fu!.base[0];
      fu!.delivered[1] = conn.client.so.rcv.total - fu!.base[1];
    }
    const fused = st.phase === 'fused' || st.phase === 'unfused';
    if (fused) this.fusedConnections++;
    if (!this.opts.onRecord && this.records.length >= this.maxRecords) {
      this.omitted++;
      return;
    }
    const r: FuseRecord = {
      stream: conn.stream,
      client: conn.clientName,
      server: conn.serverName,
      fused,
      reason: st.phase === 'pending' ? 'handshake not completed' : st.reason,
      unfused: st.unfused,
      segmentsBefore: st.segsIn,
      segmentsAfter: st.segsOut,
      delivered: { c2s: fu ? fu.delivered[0]! : 0, s2c: fu ? fu.delivered[1]! : 0 },
    };
    if (conn.vlan !== 0 && out?.nets) r.net = out.nets.get(conn.vlan);
    if (this.opts.onRecord) this.opts.onRecord(r);
    else this.records.push(r);
  }
}

function sameWords(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** 127.0.0.0/8 or ::1 (and ::ffff:127.0.0.0/104). */
export function isLoopback(w: readonly number[]): boolean {
  if (w.length === 1) return w[0]! >>> 24 === 127;
  if (w[0] !== 0 || w[1] !== 0) return false;
  if (w[2] === 0 && w[3] === 1) return true;
  return w[2] === 0xffff && w[3]! >>> 24 === 127;
}
