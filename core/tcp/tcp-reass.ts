import { m_copym, m_pin, m_unpin, type Mbuf } from '../mbuf/mbuf.js';
import { soappend } from '../socket/socket.js';
import type { ReassEntry, Tcpcb } from './tcpcb.js';

/** Which copy wins where segments overlap with different data. */
export type OverlapPolicy = 'first' | 'last';

/** What the reassembly layer reports back to its owner (global limits). */
export interface ReassCtx {
  readonly policy: OverlapPolicy;
  /** Change in queued bytes, for the global budget. */
  queued(delta: number): void;
}

function piece(e: ReassEntry, a: number, b: number): ReassEntry {
  return { off: a, end: b, m: e.m ? m_copym(e.m, a - e.off, b - a) : null };
}

/** True when the two chains hold the same `len` bytes from their offsets (only run on overlaps). */
function sameBytes(a: Mbuf | null, ao: number, b: Mbuf | null, bo: number, len: number): boolean {
  while (a && ao >= a.len) { ao -= a.len; a = a.next; }
  while (b && bo >= b.len) { bo -= b.len; b = b.next; }
  while (len > 0 && a && b) {
    if (a.buf[a.off + ao] !== b.buf[b.off + bo]) return false;
    len--;
    if (++ao === a.len) { a = a.next; ao = 0; }
    if (++bo === b.len) { b = b.next; bo = 0; }
  }
  return true;
}

function bytes(e: ReassEntry): number {
  return e.m ? e.end - e.off : 0;
}

/**
 * Insert [e.off, e.end) into the out-of-order queue. Where it overlaps queued data, the policy
 * decides: `first` keeps the queued bytes (and fills only the holes), `last` lets the new segment
 * replace them; bytes that are known always replace bytes that were cut by the snaplen. The
 * queue keeps Mbufs, trimmed by reference (BSD tcp_reass with m_adj; no byte is copied).
 * BSD: OpenBSD tcp_reass trims the new segment against its predecessor but its successors against
 * the new segment (a mix of both policies); sockcap makes the choice explicit.
 */
export function tcp_reass_insert(tp: Tcpcb, e: ReassEntry, ctx: ReassCtx): void {
  const q = tp.segq();
  let lo = 0;
  let hi = q.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (q[mid]!.end <= e.off) lo = mid + 1;
    else hi = mid;
  }
  let j = lo;
  const out: ReassEntry[] = [];
  let cur = e.off;
  let delta = 0;
  for (; j < q.length && q[j]!.off < e.end; j++) {
    const old = q[j]!;
    delta -= bytes(old);
    if (old.off > cur) out.push(piece(e, cur, old.off));
    const s = Math.max(old.off, e.off);
    const t = Math.min(old.end, e.end);
    tp.counts.overlapBytes += t - s;
    if (e.m && old.m && !sameBytes(e.m, s - e.off, old.m, s - old.off, t - s)) tp.counts.overlapConflicts++;
    const newWins = old.m === null ? e.m !== null : e.m !== null && ctx.policy === 'last';
    if (newWins) {
      if (old.off < s) out.push(piece(old, old.off, s));
      out.push(piece(e, s, t));
      if (old.end > t) out.push(piece(old, t, old.end));
    } else out.push(old);
    cur = Math.max(cur, old.end);
  }
  if (cur < e.end) out.push(piece(e, cur, e.end));
  for (const p of out) {
    delta += bytes(p);
    m_pin(p.m);
  }
  // the queue holds references to what it keeps (kept entries are counted in and out alike)
  for (let k = lo; k < j; k++) m_unpin(q[k]!.m);
  q.splice(lo, j - lo, ...out);
  tp.qBytes += delta;
  ctx.queued(delta);
}

/**
 * Deliver in-order data at rcvOff: from the queue head while it is contiguous. Entries with no
 * bytes (cut by the snaplen) become recorded gaps. BSD tcp_flush_queue().
 */
export function tcp_flush_queue(tp: Tcpcb, ctx: ReassCtx): boolean {
  const q = tp.q;
  let i = 0;
  let delivered = false;
  let delta = 0;
  for (; i < q.length && q[i]!.off <= tp.rcvOff; i++) {
    const e = q[i]!;
    delta -= bytes(e);
    // before the chain is appended (sbappendstream relinks it) the queue lets go of it
    m_unpin(e.m);
    if (e.end <= tp.rcvOff) continue;
    const skip = tp.rcvOff - e.off;
    if (e.m) {
      soappend(tp.so, skip ? m_copym(e.m, skip, e.end - e.off - skip) : e.m);
      delivered = true;
    } else tp.addGap(tp.so.rcv.total, e.end - tp.rcvOff, true);
    tp.rcvOff = e.end;
  }
  if (i === q.length) tp.clearq();
  else if (i > 0) tp.segq().splice(0, i);
  tp.qBytes += delta;
  ctx.queued(delta);
  return delivered;
}

/**
 * Give up on the hole at rcvOff: record it as a gap and move on to the next queued data (the
 * policy when a connection ends or a queue limit is hit). Returns false when nothing is queued.
 */
export function tcp_skip_gap(tp: Tcpcb, ctx: ReassCtx): boolean {
  const head = tp.q[0];
  if (!head) return false;
  if (head.off > tp.rcvOff) {
    tp.addGap(tp.so.rcv.total, head.off - tp.rcvOff);
    tp.rcvOff = head.off;
  }
  tcp_flush_queue(tp, ctx);
  return true;
}
