import type { Mbuf } from '../mbuf/mbuf.js';
import { Socket, SocketRare } from '../socket/socket.js';

/**
 * A hole skipped: [offset in the delivered stream, length], and a third element, 1, when its bytes
 * were on the wire but cut by the snaplen (the frames were captured; tshark's follow marks only
 * the other kind, bytes whose segments never were).
 */
export type Gap = readonly [at: number, len: number, cut?: 1];

const NO_GAPS: readonly Gap[] = Object.freeze([]);
const NO_SEGS: readonly ReassEntry[] = Object.freeze([]);

/** RFC 793 connection states, as BSD names them (tcp_fsm.h). */
export type TcpState =
  | 'CLOSED' | 'LISTEN' | 'SYN_SENT' | 'SYN_RECEIVED' | 'ESTABLISHED' | 'FIN_WAIT_1' | 'FIN_WAIT_2'
  | 'CLOSE_WAIT' | 'CLOSING' | 'LAST_ACK' | 'TIME_WAIT';

/**
 * A reassembly queue entry (BSD struct tseg_qent): bytes [off, end) of the stream, as an Mbuf chain
 * that references capture memory; `m` null means bytes known to exist but not captured (snaplen).
 * Unlike BSD's one entry per segment, an entry is a run: segments that meet are joined into one
 * chain (tcp_reass_insert), so a retransmission over many queued pieces meets one entry.
 */
export interface ReassEntry {
  off: number;
  end: number;
  m: Mbuf | null;
  /** The chain's last Mbuf (null with `m`), so that a run grows at its end in one step. */
  tail: Mbuf | null;
  /** Mbufs in the chain; 1 for a run of cut bytes (what the segment limit counts). */
  n: number;
}

/**
 * Per-direction receive counters of what goes wrong (BSD tcpstat fields, per connection): most
 * connections never count any, so a Tcpcb makes them on the first such event.
 */
export class RcvStats {
  /** Completely duplicate segments and bytes (tcps_rcvduppack, tcps_rcvdupbyte). */
  dupSegs = 0;
  dupBytes = 0;
  /** Partly duplicate segments (tcps_rcvpartduppack) and their duplicate bytes. */
  partDupSegs = 0;
  partDupBytes = 0;
  /** Out-of-order segments and bytes (tcps_rcvoopack, tcps_rcvoobyte). */
  oooSegs = 0;
  oooBytes = 0;
  /** Bytes that overlapped queued data, and segments whose bytes differed from the queued ones they overlapped. */
  overlapBytes = 0;
  overlapConflicts = 0;
  /** Bytes after FIN or after a reset, ignored (tcps_rcvafterclose). */
  afterClose = 0;
}

const NO_STATS: Readonly<RcvStats> = Object.freeze(new RcvStats());

/**
 * What few endpoints ever need, made on first use: every field here would otherwise cost 8 bytes in
 * each of the two Tcpcbs of every connection (BSD keeps them all in struct tcpcb; with 100,000
 * connections open, memory per connection is what counts here). The embedded socket's rare fields
 * come first: one object, one pointer, for both.
 */
class TcpcbRare extends SocketRare {
  stats: RcvStats | null = null;
  /** The out-of-order queue, the captured bytes it holds and its entries' Mbufs (ReassEntry.n). */
  q: readonly ReassEntry[] = NO_SEGS;
  qBytes = 0;
  qMbufs = 0;
  /** ISNs of every SYN seen before any data, when there were several. */
  isns: number[] | null = null;
  /** Holes skipped, in the order delivered (see Gap). */
  gaps: Gap[] | null = null;
  /** Sequence number of a FIN seen before the stream's start was known (-1: none). */
  finSeq = -1;
  /** The hole at this rcvOff was acknowledged by the receiver (-1: none), first at this segment of the connection. */
  ackedHole = -1;
  ackedHoleSeg = 0;
}

/** The states, by their number in Tcpcb.bits. */
const STATES: readonly TcpState[] = [
  'CLOSED', 'LISTEN', 'SYN_SENT', 'SYN_RECEIVED', 'ESTABLISHED', 'FIN_WAIT_1', 'FIN_WAIT_2',
  'CLOSE_WAIT', 'CLOSING', 'LAST_ACK', 'TIME_WAIT',
];
const STATE_NUM: Readonly<Record<TcpState, number>> = Object.fromEntries(STATES.map((s, i) => [s, i])) as Record<TcpState, number>;
/** The state's place in the flags word (the flags below take bits 0-8, the socket's bits 20-26). */
const STATE_SHIFT = 12;
const STATE_MASK = 15 << STATE_SHIFT;

/**
 * One endpoint's TCP control block. The capture shows both directions, so each endpoint's
 * receive state is driven by what it received and its send state by what it was seen to send.
 * BSD struct tcpcb, with stream offsets (64-bit safe numbers) alongside sequence numbers so that
 * reassembly never compares across a wrap.
 *
 * The endpoint's socket is embedded: a Tcpcb is its Socket, and `tp.so` is the tcpcb seen as its
 * socket (use the socket's fields through `so`, never through the tcpcb). FreeBSD 14 embeds the
 * inpcb in the tcpcb and Solaris allocates conn_t and tcp_t together for the same reason: one
 * allocation, no pointer between them. Here a Socket object of its own cost 48 bytes more an
 * endpoint (its header, the pointer to it, a second pointer to rare fields and a second flags
 * word): 9.6 MB with 100,000 connections open.
 */
export class Tcpcb extends Socket {
  /*
   * Sequence numbers are kept as signed 32-bit integers (x | 0) and read back unsigned through the
   * accessors below: V8 stores a field that ever held a number of 2^31 or more as a boxed double in
   * every instance (a 16-byte object each), and half of all sequence numbers are that large. Ten
   * such boxes made up 13% of a connection's heap and a third of its objects for the collector.
   */
  private irs_ = 0;
  private iss_ = 0;
  private sndMax_ = 0;
  private sndUna_ = 0;
  /** Receive side: the stream offset of the next expected byte (rcvNxt()); irs below. */
  rcvOff = 0;
  /** Stream offset of the peer's FIN, once seen (it may be ahead of a hole). */
  finOff = -1;
  /** Segments that reached this endpoint (tcps_rcvtotal). */
  rcvTotal = 0;
  /** SYN options: MSS in bits 0-15, window scale + 1 in bits 16-19 (0: none announced). */
  private synOpts = 0;
  /** Last window this endpoint advertised (scaled when both sides agreed on scaling). */
  window = 0;

  /**
   * As new, for a recycled connection (BSD: a tcpcb back from its uma zone). The caller checked that
   * nothing is queued; arrays handed out (gaps) are dropped, not emptied: a summary may hold them.
   */
  override reset(): void {
    super.reset();
    this.irs_ = 0;
    this.iss_ = 0;
    this.sndMax_ = 0;
    this.sndUna_ = 0;
    this.rcvOff = 0;
    this.finOff = -1;
    this.rcvTotal = 0;
    this.synOpts = 0;
    this.window = 0;
  }

  /** The socket (BSD tp->t_inpcb->inp_socket): this tcpcb's own fields. */
  get so(): Socket {
    return this;
  }

  /**
   * Counters of what went wrong, the reassembly queue, ISNs, gaps, an early FIN, with the socket's
   * rare fields: made on first use, by either.
   */
  protected override makeRare(): TcpcbRare {
    return new TcpcbRare();
  }

  /** The rare fields if made (always a TcpcbRare: makeRare). */
  private get trare(): TcpcbRare | null {
    return this.rare as TcpcbRare | null;
  }

  /** The rare fields, made now if they were not (setting a field to its default makes nothing). */
  private town(): TcpcbRare {
    return this.own() as TcpcbRare;
  }

  /** Nothing is left in its buffers or its queue: it may be recycled without unpinning anything. */
  get empty(): boolean {
    const so = this.so;
    return so.rcv.mb === null && (so.sndIfMade?.mb ?? null) === null && this.q.length === 0;
  }

  /**
   * Out-of-order queue, sorted by offset, non-overlapping (BSD t_segq). Read it here; change it
   * through `segq()` (most connections never queue anything: an empty one is shared).
   */
  get q(): readonly ReassEntry[] {
    return this.trare?.q ?? NO_SEGS;
  }

  /** The queue, to change. */
  segq(): ReassEntry[] {
    const r = this.town();
    return (r.q === NO_SEGS ? (r.q = []) : r.q) as ReassEntry[];
  }

  /** Empty the queue (its bytes are the caller's to account for). */
  clearq(): void {
    const r = this.trare;
    if (r) {
      r.q = NO_SEGS;
      r.qMbufs = 0;
    }
  }

  /** Captured bytes held in `q`. */
  get qBytes(): number {
    return this.trare?.qBytes ?? 0;
  }
  set qBytes(n: number) {
    if (n !== 0 || this.rare) this.town().qBytes = n;
  }

  /** Mbufs held in `q` (each entry's `n`): what the queue's segment limit bounds. */
  get qMbufs(): number {
    return this.trare?.qMbufs ?? 0;
  }
  set qMbufs(n: number) {
    if (n !== 0 || this.rare) this.town().qMbufs = n;
  }

  /** Holes skipped, in the order delivered (see Gap). */
  get gaps(): readonly Gap[] {
    return this.trare?.gaps ?? NO_GAPS;
  }

  /**
   * Record a hole of `len` bytes skipped at delivered offset `at` (BSD has no such list: ours),
   * `cut` when the snaplen cut them from frames that were captured.
   */
  addGap(at: number, len: number, cut = false): void {
    (this.town().gaps ??= []).push(cut ? [at, len, 1] : [at, len]);
  }

  /** The counters of duplicates, reordering and overlaps, to count one (made on first use). */
  get counts(): RcvStats {
    return (this.town().stats ??= new RcvStats());
  }

  /** The same counters, to read (all zero when nothing was ever counted). */
  get rcvStats(): Readonly<RcvStats> {
    return this.trare?.stats ?? NO_STATS;
  }

  /**
   * ISNs of every SYN seen before any data, when there were several (the first data segment picks
   * the one it follows); null while there is at most one, in irs.
   */
  get isns(): number[] | null {
    return this.trare?.isns ?? null;
  }
  set isns(v: number[] | null) {
    if (v || this.rare) this.town().isns = v;
  }

  /** RFC 793 state (BSD t_state). */
  get state(): TcpState { return STATES[(this.flags & STATE_MASK) >> STATE_SHIFT]!; }
  set state(s: TcpState) { this.flags = (this.flags & ~STATE_MASK) | (STATE_NUM[s] << STATE_SHIFT); }

  /** Options this endpoint announced on its SYN: MSS (0: none), window scale (-1: none). */
  get mss(): number { return this.synOpts & 0xffff; }
  set mss(v: number) { this.synOpts = (this.synOpts & ~0xffff) | (v & 0xffff); }
  get wscale(): number { return (this.synOpts >> 16) - 1; }
  set wscale(v: number) { this.synOpts = (this.synOpts & 0xffff) | ((Math.min(v, 14) + 1) << 16); }

  /** Receive side: initial receive sequence. */
  get irs(): number { return this.irs_ >>> 0; }
  set irs(v: number) { this.irs_ = v | 0; }
  /** Send side as observed: initial send sequence, highest sequence sent, last acknowledged. */
  get iss(): number { return this.iss_ >>> 0; }
  set iss(v: number) { this.iss_ = v | 0; }
  get sndMax(): number { return this.sndMax_ >>> 0; }
  set sndMax(v: number) { this.sndMax_ = v | 0; }
  get sndUna(): number { return this.sndUna_ >>> 0; }
  set sndUna(v: number) { this.sndUna_ = v | 0; }
  /** Sequence number of a FIN seen before the stream's start was known (-1: none). */
  get finSeqEarly(): number { return this.trare?.finSeq ?? -1; }
  set finSeqEarly(v: number) {
    if (v >= 0 || this.rare) this.town().finSeq = v;
  }

  /**
   * The receive offset at which the hole there was first seen acknowledged by this endpoint
   * (-1: none), and the connection's segment count then (see tcp-input.ts ackedHole).
   */
  get ackedHole(): number { return this.trare?.ackedHole ?? -1; }
  get ackedHoleSeg(): number { return this.trare?.ackedHoleSeg ?? 0; }
  holeAcked(at: number, seg: number): void {
    const r = this.town();
    r.ackedHole = at;
    r.ackedHoleSeg = seg;
  }

  private flag(bit: number, v: boolean): void {
    this.flags = v ? this.flags | bit : this.flags & ~bit;
  }

  /** rcvOff is meaningful (a SYN or the first data segment was seen). */
  get rcvKnown(): boolean { return (this.flags & 1) !== 0; }
  set rcvKnown(v: boolean) { this.flag(1, v); }
  /** Picked up mid-stream: no SYN was seen for this direction. */
  get midstream(): boolean { return (this.flags & 2) !== 0; }
  set midstream(v: boolean) { this.flag(2, v); }
  /** FIN processed: the peer will send no more. */
  get finRcvd(): boolean { return (this.flags & 4) !== 0; }
  set finRcvd(v: boolean) { this.flag(4, v); }
  /** An acceptable RST arrived. */
  get resetRcvd(): boolean { return (this.flags & 8) !== 0; }
  set resetRcvd(v: boolean) { this.flag(8, v); }
  /** sndMax and sndUna hold real sequence numbers (compared modulo 2^32 only once they do). */
  get sndKnown(): boolean { return (this.flags & 16) !== 0; }
  set sndKnown(v: boolean) { this.flag(16, v); }
  get sentSyn(): boolean { return (this.flags & 32) !== 0; }
  set sentSyn(v: boolean) { this.flag(32, v); }
  get sentFin(): boolean { return (this.flags & 64) !== 0; }
  set sentFin(v: boolean) { this.flag(64, v); }
  /** SYN options: SACK permitted, timestamps. */
  get sackPermitted(): boolean { return (this.flags & 128) !== 0; }
  set sackPermitted(v: boolean) { this.flag(128, v); }
  get timestamps(): boolean { return (this.flags & 256) !== 0; }
  set timestamps(v: boolean) { this.flag(256, v); }
}
