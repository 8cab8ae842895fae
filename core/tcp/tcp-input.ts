import { m_adj, m_unpin, type Mbuf } from '../mbuf/mbuf.js';
import { socantrcvmore, soappend, sorwakeup } from '../socket/socket.js';
import { TH_ACK, TH_FIN, TH_RST, TH_SYN, TH_URG, type SynOptions } from '../wire/tcp.js';
import { seqAdd, seqDiff, seqGeq, seqGt, seqLt } from './seq.js';
import { type ReassCtx, tcp_flush_queue, tcp_reass_insert, tcp_skip_gap } from './tcp-reass.js';
import type { Tcpcb } from './tcpcb.js';

/** A received segment, decoded once by the stack. The payload references capture memory. */
export interface Segment {
  seq: number;
  ack: number;
  flags: number;
  win: number;
  /** Captured payload (null when none was captured). */
  m: Mbuf | null;
  /** Payload bytes captured. */
  plen: number;
  /** Payload bytes on the wire (more than plen when the snaplen cut the frame). */
  wlen: number;
  /** Options, read for SYN segments only. */
  opts: SynOptions | null;
  /** Urgent pointer (meaningful with TH_URG). */
  urp: number;
}

/** What tcp_input needs from the stack beyond reassembly. */
export interface TcpCtx extends ReassCtx {
  /** Most captured bytes one connection direction may hold out of order. */
  readonly reassLimit: number;
  /** Most segments one direction may hold out of order (BSD net.inet.tcp.reass.maxqueuelen). */
  readonly reassSegs: number;
  note(what: string): void;
}

/** The next sequence number this receiver expects: its stream offset rcvOff in sequence space. */
export function rcvNxt(tp: Tcpcb): number {
  return seqAdd(tp.irs + 1, tp.rcvOff % 4294967296);
}

/**
 * BSD tcp_input(), for the endpoint `rx` receiving `seg` from its peer `tx`. Both ends are modelled:
 * the sender's observed send state is updated first (tcpOutputSeen), then the receiver runs the
 * RFC 793 "SEGMENT ARRIVES" steps: RST, SYN, ACK, data (tcp_reass), FIN. Windows are not enforced
 * (a passive observer cannot know them for sure); checksums were judged by the caller.
 */
export function tcp_input(ctx: TcpCtx, rx: Tcpcb, tx: Tcpcb, seg: Segment): void {
  rx.rcvTotal++;
  tcpOutputSeen(tx, seg);
  // the ACK is tx's, for what it received: a hole in tx's queue it passes was the capture's loss
  if (seg.flags & TH_ACK && tx.q.length > 0) ackedHole(ctx, tx, seg.ack, rx.rcvTotal + tx.rcvTotal);
  if (seg.flags & TH_RST) return processRst(ctx, rx, tx, seg);
  if (seg.flags & TH_SYN) processSyn(ctx, rx, tx, seg);
  else if (!rx.rcvKnown) {
    // a segment without payload says little about where the stream starts (captures can be out
    // of order): remember a FIN by its sequence number and wait for data or a SYN
    if (seg.wlen === 0) {
      if (seg.flags & TH_FIN) rx.finSeqEarly = seg.seq;
      if (seg.flags & TH_ACK) processAck(rx, seg.ack);
      return;
    }
    pickUpMidstream(rx, seg);
  }
  if (seg.flags & TH_ACK) processAck(rx, seg.ack);
  const dataSeq = seg.flags & TH_SYN ? seqAdd(seg.seq, 1) : seg.seq;
  if (seg.wlen > 0 && rx.isns && rx.isns.length > 1 && rx.rcvOff === 0 && rx.q.length === 0) chooseIsn(rx, dataSeq);
  if (rx.finSeqEarly >= 0) {
    rx.finOff = Math.max(0, rx.rcvOff + seqDiff(rx.finSeqEarly, rcvNxt(rx)));
    rx.finSeqEarly = -1;
  }
  const off = rx.rcvOff + seqDiff(dataSeq, rcvNxt(rx));
  if (seg.flags & TH_URG && seg.urp > 0 && seg.wlen > 0) processUrg(rx, off, seg.urp);
  if (seg.wlen > 0) processData(ctx, rx, off, seg);
  if (seg.flags & TH_FIN && rx.finOff < 0 && !rx.finRcvd) rx.finOff = Math.max(off + seg.wlen, rx.rcvOff);
  processFin(rx);
}

/**
 * Segments of the connection to wait, once an ACK first showed a hole lost by the capture, before
 * a later ACK that shows it again skips it: the wait lets a capture's own reordering (an ACK
 * timestamped before the data it acknowledges, as multi-queue NICs and merged captures make) put
 * the bytes in first. Three, as TCP's duplicate-ACK threshold waits out reordering on the wire.
 */
export const ACKED_HOLE_WAIT = 3;

/**
 * `ack`, from tp's own end, acknowledges bytes past the start of the data tp holds after the hole
 * at tp.rcvOff: the receiving host had the hole's bytes, so its sender will never send them again,
 * and only the capture missed them. The hole is skipped (recorded as a gap, the data after it
 * delivered; counted as tcp.reass.acked) when an ACK shows it again ACKED_HOLE_WAIT or more
 * segments of the connection (`now`) after the first did, instead of when the connection ends or
 * its queue is full: a lossy capture's streams keep flowing, and the data behind the hole is not
 * held. tshark's follow does the same at the first such ACK; Zeek's reassembly also moves on
 * ACKs. A hole the ACK does not pass entirely (ack inside it) may still fill: it waits.
 */
function ackedHole(ctx: TcpCtx, tp: Tcpcb, ack: number, now: number): void {
  if (!tp.rcvKnown) return;
  const ackOff = tp.rcvOff + seqDiff(ack, rcvNxt(tp));
  if (ackOff <= tp.q[0]!.off) return;
  if (tp.ackedHole !== tp.rcvOff) return tp.holeAcked(tp.rcvOff, now);
  if (now - tp.ackedHoleSeg < ACKED_HOLE_WAIT) return;
  tcp_skip_holes(tp, ctx, () => tp.q.length > 0 && tp.q[0]!.off < ackOff, 'tcp.reass.acked');
}

/**
 * Skip tp's holes while `more()` holds (tcp_skip_gap: each recorded as a gap, the data after it
 * delivered; counted as `note` when given), then wake the reader once and take a FIN that waited
 * behind them: what a skip outside tcp_input's own segment needs (the receiver's ACKs, the
 * stack's global budget). tcp_input's per-direction limits skip inline, before its processFin.
 */
export function tcp_skip_holes(tp: Tcpcb, ctx: TcpCtx, more: () => boolean, note: string | null): void {
  let skipped = false;
  while (more() && tcp_skip_gap(tp, ctx)) {
    if (note) ctx.note(note);
    skipped = true;
  }
  if (!skipped) return;
  sorwakeup(tp.so);
  processFin(tp);
}

/** The sender's side: what it sent tells its ISS, state (SYN_SENT, FIN_WAIT_1...) and window. */
function tcpOutputSeen(tx: Tcpcb, seg: Segment): void {
  const f = seg.flags;
  if (f & TH_RST) return;
  if (f & TH_SYN) {
    tx.iss = seg.seq;
    tx.sentSyn = true;
    if (!(f & TH_ACK) && (tx.state === 'CLOSED' || tx.state === 'LISTEN')) tx.state = 'SYN_SENT';
    else if (f & TH_ACK && tx.state === 'CLOSED') tx.state = 'SYN_RECEIVED';
  } else if (tx.state === 'CLOSED' && !tx.sentFin) {
    tx.state = 'ESTABLISHED';
    tx.so.connected = true;
  }
  const end = seqAdd(seg.seq, seg.wlen + (f & TH_SYN ? 1 : 0) + (f & TH_FIN ? 1 : 0));
  if (f & TH_SYN || !tx.sndKnown) {
    // the first segment seen from this end (or its SYN) anchors the send sequence space
    if (!tx.sndKnown || f & TH_SYN) tx.sndUna = seg.seq;
    tx.sndMax = end;
    tx.sndKnown = true;
  } else if (seqGt(end, tx.sndMax)) tx.sndMax = end;
  if (f & TH_FIN && !tx.sentFin) {
    tx.sentFin = true;
    tx.so.cantSendMore = true;
    if (tx.state === 'ESTABLISHED' || tx.state === 'SYN_RECEIVED') tx.state = 'FIN_WAIT_1';
    else if (tx.state === 'CLOSE_WAIT') tx.state = 'LAST_ACK';
  }
  tx.window = f & TH_SYN || tx.wscale < 0 ? seg.win : seg.win << tx.wscale;
}

/** A SYN or SYN-ACK reaching rx: its ISN starts rx's receive sequence space. */
function processSyn(ctx: TcpCtx, rx: Tcpcb, tx: Tcpcb, seg: Segment): void {
  const o = seg.opts;
  if (o) {
    tx.mss = o.mss;
    tx.wscale = Math.min(o.wscale, 14); // RFC 7323 §2.3: clamp to 14
    tx.sackPermitted = o.sackPermitted;
    tx.timestamps = o.timestamps;
  }
  if (rx.rcvKnown && seg.seq === rx.irs) {
    rx.counts.dupSegs++; // a retransmitted SYN
    return;
  }
  if (rx.rcvKnown && (rx.rcvOff > 0 || rx.q.length > 0)) {
    ctx.note('tcp.syn.ignored'); // a SYN with a new ISN into a connection that has data
    return;
  }
  if (rx.rcvKnown && !rx.midstream) {
    // another SYN with another ISN before any data: remember every ISN (the first data picks one)
    const isns = (rx.isns ??= [rx.irs]);
    if (!isns.includes(seg.seq)) isns.push(seg.seq);
  }
  rx.irs = seg.seq;
  rx.rcvOff = 0;
  rx.rcvKnown = true;
  rx.midstream = false;
  if (!(seg.flags & TH_ACK)) rx.state = 'SYN_RECEIVED';
  else {
    rx.state = 'ESTABLISHED';
    rx.so.connected = true;
  }
}

/**
 * Several SYNs with different ISNs came before any data (a stale SYN-ACK retransmitted after the
 * real one, say): the stream follows the ISN closest below the first data byte.
 */
function chooseIsn(rx: Tcpcb, dataSeq: number): void {
  let best = rx.irs;
  let bestDist = Infinity;
  for (const isn of rx.isns ?? []) {
    const d = seqDiff(dataSeq, seqAdd(isn, 1));
    if (d >= 0 && d < bestDist) {
      best = isn;
      bestDist = d;
    }
  }
  rx.irs = best;
}

/** No SYN was seen: take the first data segment's sequence as the start of the stream. */
function pickUpMidstream(rx: Tcpcb, seg: Segment): void {
  rx.irs = seqAdd(seg.seq, -1);
  rx.rcvOff = 0;
  rx.rcvKnown = true;
  rx.midstream = true;
  if (rx.state === 'CLOSED') rx.state = 'ESTABLISHED';
  rx.so.connected = true;
}

/** rx's own data acknowledged: SYN_RECEIVED completes, a FIN's acknowledgement advances the close. */
function processAck(rx: Tcpcb, ack: number): void {
  if (!rx.sndKnown) {
    // acknowledged before rx was seen sending (mid-stream): the ack is where its stream stands
    rx.sndUna = rx.sndMax = ack;
    rx.sndKnown = true;
  } else if (seqGt(ack, rx.sndUna)) rx.sndUna = ack;
  if (rx.state === 'SYN_RECEIVED' && (!rx.sentSyn || seqGt(ack, rx.iss))) {
    rx.state = 'ESTABLISHED';
    rx.so.connected = true;
  }
  if (rx.sentFin && seqGeq(ack, rx.sndMax)) {
    if (rx.state === 'FIN_WAIT_1') rx.state = 'FIN_WAIT_2';
    else if (rx.state === 'CLOSING') rx.state = 'TIME_WAIT';
    else if (rx.state === 'LAST_ACK') rx.state = 'CLOSED';
  }
}

/**
 * BSD tcp_input's urgent step: the urgent pointer points one past the urgent byte (the BSD
 * reading of RFC 793, RFC 6093), so the mark is at `off + urp - 1`; a later mark replaces an
 * earlier one (so_oobmark). The mark is kept as a position in the delivered stream.
 */
function processUrg(rx: Tcpcb, off: number, urp: number): void {
  const mark = off + urp - 1;
  if (mark < rx.rcvOff) return; // already delivered
  rx.so.oobmark = rx.so.rcv.total + (mark - rx.rcvOff);
}

/** Payload at stream offset `off`: trim what was received, deliver in order, queue the rest. */
function processData(ctx: TcpCtx, rx: Tcpcb, off: number, seg: Segment): void {
  if (rx.finRcvd || (rx.finOff >= 0 && off >= rx.finOff)) {
    rx.counts.afterClose += seg.wlen;
    return;
  }
  let wend = off + seg.wlen;
  if (rx.finOff >= 0 && wend > rx.finOff) wend = rx.finOff;
  if (wend <= rx.rcvOff) {
    const st = rx.counts;
    st.dupSegs++;
    st.dupBytes += seg.wlen;
    return;
  }
  let m = seg.m;
  let end = off + seg.plen;
  if (off < rx.rcvOff) {
    const k = rx.rcvOff - off;
    const st = rx.counts;
    st.partDupSegs++;
    st.partDupBytes += k;
    if (m && k < seg.plen) m_adj(m, k);
    else m = null;
    off = rx.rcvOff;
    end = Math.max(end, off);
  }
  if (end > wend) {
    if (m) m_adj(m, wend - end);
    end = wend;
  }
  if (off === rx.rcvOff && rx.q.length === 0) {
    if (m && end > off) soappend(rx.so, m);
    rx.rcvOff = end;
    if (wend > end) {
      rx.addGap(rx.so.rcv.total, wend - end, true);
      rx.rcvOff = wend;
    }
    sorwakeup(rx.so);
    return;
  }
  if (off > rx.rcvOff) {
    const st = rx.counts;
    st.oooSegs++;
    st.oooBytes += wend - off;
  }
  if (m && end > off) tcp_reass_insert(rx, { off, end, m }, ctx);
  if (wend > end) tcp_reass_insert(rx, { off: end, end: wend, m: null }, ctx);
  let wake = tcp_flush_queue(rx, ctx);
  while ((rx.qBytes > ctx.reassLimit || rx.qMbufs > ctx.reassSegs) && tcp_skip_gap(rx, ctx)) {
    ctx.note('tcp.reass.limit');
    wake = true;
  }
  if (wake) sorwakeup(rx.so);
}

/** The peer's FIN, once every byte before it has been delivered (BSD TCPS_HAVERCVDFIN). */
export function processFin(rx: Tcpcb): void {
  if (rx.finOff < 0 || rx.finRcvd || rx.rcvOff < rx.finOff) return;
  rx.finRcvd = true;
  if (rx.state === 'ESTABLISHED' || rx.state === 'SYN_RECEIVED') rx.state = 'CLOSE_WAIT';
  else if (rx.state === 'FIN_WAIT_1') rx.state = 'CLOSING';
  else if (rx.state === 'FIN_WAIT_2') rx.state = 'TIME_WAIT';
  socantrcvmore(rx.so);
}

/**
 * RFC 793 / RFC 5961 RST: acceptable when its sequence number is within rx's receive window (or
 * nothing is known yet). rx's socket gets ECONNRESET; data queued out of order is dropped as
 * tcp_close() would; data already in so.rcv stays readable. RST payload is ignored.
 */
function processRst(ctx: TcpCtx, rx: Tcpcb, tx: Tcpcb, seg: Segment): void {
  if (rx.rcvKnown && !rx.finRcvd) {
    const nxt = rcvNxt(rx);
    const wnd = Math.max(rx.window, 1);
    if (seqLt(seg.seq, seqAdd(nxt, -1)) || seqGeq(seg.seq, seqAdd(nxt, wnd))) {
      ctx.note('tcp.rst.outofwindow');
      return;
    }
  }
  if (seg.wlen) ctx.note('tcp.rst.withdata');
  if (rx.so.connected) rx.so.error = 'ECONNRESET';
  rx.resetRcvd = true;
  rx.state = 'CLOSED';
  tx.state = 'CLOSED';
  ctx.queued(-rx.qBytes);
  for (const e of rx.q) m_unpin(e.m);
  rx.clearq();
  rx.qBytes = 0;
  rx.finRcvd = true;
  tx.so.cantSendMore = true;
  rx.so.cantSendMore = true; // soisdisconnected(): a reset socket can send no more either
  socantrcvmore(rx.so);
}

/** End of the connection's life in this run: skip the holes left, then take a pending FIN. */
export function tcp_drain(ctx: TcpCtx, tp: Tcpcb): void {
  let wake = false;
  while (tcp_skip_gap(tp, ctx)) wake = true;
  if (wake) sorwakeup(tp.so);
  if (tp.finOff > tp.rcvOff && !tp.finRcvd) {
    tp.addGap(tp.so.rcv.total, tp.finOff - tp.rcvOff);
    tp.rcvOff = tp.finOff;
  }
  processFin(tp);
}
