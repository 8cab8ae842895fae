import type { Mbuf } from '../mbuf/mbuf.js';
import { Socket } from '../socket/socket.js';

const NO_GAPS: ReadonlyArray<readonly [number, number]> = Object.freeze([]);

/** RFC 793 connection states, as BSD names them (tcp_fsm.h). */
export type TcpState =
  | 'CLOSED' | 'LISTEN' | 'SYN_SENT' | 'SYN_RECEIVED' | 'ESTABLISHED' | 'FIN_WAIT_1' | 'FIN_WAIT_2'
  | 'CLOSE_WAIT' | 'CLOSING' | 'LAST_ACK' | 'TIME_WAIT';

/**
 * A reassembly queue entry (BSD struct tcpqent): bytes [off, end) of the stream, as an Mbuf chain
 * that references capture memory; `m` null means bytes known to exist but not captured (snaplen).
 */
export interface ReassEntry {
  off: number;
  end: number;
  m: Mbuf | null;
}

/** Per-direction receive counters (BSD tcpstat fields, per connection). */
export class RcvStats {
  /** Segments that reached this endpoint (tcps_rcvtotal). */
  segs = 0;
  /** Segments carrying data (tcps_rcvpack) and their bytes (tcps_rcvbyte). */
  dataSegs = 0;
  dataBytes = 0;
  /** Completely duplicate segments and bytes (tcps_rcvduppack, tcps_rcvdupbyte). */
  dupSegs = 0;
  dupBytes = 0;
  /** Partly duplicate segments (tcps_rcvpartduppack) and their duplicate bytes. */
  partDupSegs = 0;
  partDupBytes = 0;
  /** Out-of-order segments and bytes (tcps_rcvoopack, tcps_rcvoobyte). */
  oooSegs = 0;
  oooBytes = 0;
  /** Bytes that overlapped queued data, and overlaps whose bytes differed. */
  overlapBytes = 0;
  overlapConflicts = 0;
  /** Bytes after FIN or after a reset, ignored (tcps_rcvafterclose). */
  afterClose = 0;
}

/**
 * One endpoint's TCP control block. The capture shows both directions, so each endpoint's
 * receive state is driven by what it received and its send state by what it was seen to send.
 * BSD struct tcpcb, with stream offsets (64-bit safe numbers) alongside sequence numbers so that
 * reassembly never compares across a wrap.
 */
export class Tcpcb {
  state: TcpState = 'CLOSED';
  readonly so = new Socket();
  /** Receive side: initial receive sequence, next expected sequence, stream offset of rcvNxt. */
  irs = 0;
  rcvNxt = 0;
  rcvOff = 0;
  /** rcvNxt is meaningful (a SYN or the first data segment was seen). */
  rcvKnown = false;
  /** Picked up mid-stream: no SYN was seen for this direction. */
  midstream = false;
  /** Stream offset of the peer's FIN, once seen (it may be ahead of a hole). */
  finOff = -1;
  /** Sequence number of a FIN seen before the stream's start was known (-1: none). */
  finSeqEarly = -1;
  /**
   * ISNs of every SYN seen before any data (the first data segment picks the one it follows); null
   * until a SYN is seen (most connections have one: memory per connection matters).
   */
  isns: number[] | null = null;
  /** FIN processed: the peer will send no more. */
  finRcvd = false;
  /** An acceptable RST arrived. */
  resetRcvd = false;
  /** Out-of-order queue, sorted by offset, non-overlapping (BSD t_segq). */
  readonly q: ReassEntry[] = [];
  /** Captured bytes held in `q`. */
  qBytes = 0;
  /** Holes skipped: [offset in the delivered stream, length]; `unknown` ones were cut by the snaplen. */
  get gaps(): ReadonlyArray<readonly [number, number]> {
    return this.gapList ?? NO_GAPS;
  }

  /** Record a hole of `len` bytes skipped at delivered offset `at` (BSD has no such list: ours). */
  addGap(at: number, len: number): void {
    (this.gapList ??= []).push([at, len]);
  }

  /** Made on the first gap (most connections have none). */
  private gapList: Array<[number, number]> | null = null;
  readonly rcv = new RcvStats();
  /** Send side as observed: initial send sequence, highest sequence sent, last acknowledged. */
  iss = 0;
  /** sndMax and sndUna hold real sequence numbers (compared modulo 2^32 only once they do). */
  sndKnown = false;
  sndMax = 0;
  sndUna = 0;
  sentSyn = false;
  sentFin = false;
  /** Options this endpoint announced on its SYN. */
  mss = 0;
  wscale = -1;
  sackPermitted = false;
  timestamps = false;
  /** Last window this endpoint advertised (scaled when both sides agreed on scaling). */
  window = 0;
}
