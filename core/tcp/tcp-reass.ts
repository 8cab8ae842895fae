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

/** An entry over [off, end) holding chain `m`, its tail and Mbufs counted (a run of cut bytes when null). */
function entry(off: number, end: number, m: Mbuf | null): ReassEntry {
  if (m === null) return { off, end, m, tail: null, n: 1 };
  let tail = m;
  let n = 1;
  for (; tail.next; n++) tail = tail.next;
  return { off, end, m, tail, n };
}

/** Bytes [a, b) of `e` as an entry of their own: new Mbufs over the same memory, pinned by the queue. */
function piece(e: Seg, a: number, b: number): ReassEntry {
  const m = e.m ? m_copym(e.m, a - e.off, b - a) : null;
  m_pin(m);
  return entry(a, b, m);
}

/** The new segment's bytes [a, b), when there are any, as the next entry. */
function take(out: ReassEntry[], seg: Seg, a: number, b: number): void {
  if (b > a) add(out, piece(seg, a, b));
}

/**
 * Append `p` to the entries being built, joined to the last one when it begins where that one
 * ends and both hold bytes (or both are cut): their chains linked, and where the two Mbufs that
 * meet are adjacent views of the same memory (a segment's pieces, taken apart around queued
 * data) one view made of them.
 */
function add(out: ReassEntry[], p: ReassEntry): void {
  const last = out.length > 0 ? out[out.length - 1]! : null;
  if (last === null || last.end !== p.off || (last.m === null) !== (p.m === null)) {
    out.push(p);
    return;
  }
  last.end = p.end;
  const t = last.tail;
  let m = p.m;
  if (t === null || m === null) return;
  if (t.buf === m.buf && t.off + t.len === m.off) {
    t.len += m.len;
    if (m.ext) m.ext.refs--; // the queue's reference to it, now held through t
    m = m.next;
    p.n--;
  }
  if (m === null) return;
  t.next = m;
  last.tail = p.tail;
  last.n += p.n;
}

/**
 * True when the two chains hold the same `len` bytes from their offsets (only run on overlaps).
 * Spans of 64 bytes and more are compared natively (memcmp), shorter ones byte by byte.
 */
function sameBytes(a: Mbuf | null, ao: number, b: Mbuf | null, bo: number, len: number): boolean {
  while (a && ao >= a.len) { ao -= a.len; a = a.next; }
  while (b && bo >= b.len) { bo -= b.len; b = b.next; }
  while (len > 0 && a && b) {
    const n = Math.min(a.len - ao, b.len - bo, len);
    const x = a.off + ao;
    const y = b.off + bo;
    if (n >= 64) {
      if (Buffer.compare(a.buf.subarray(x, x + n), b.buf.subarray(y, y + n)) !== 0) return false;
    } else for (let i = 0; i < n; i++) if (a.buf[x + i] !== b.buf[y + i]) return false;
    len -= n;
    if ((ao += n) === a.len) { a = a.next; ao = 0; }
    if ((bo += n) === b.len) { b = b.next; bo = 0; }
  }
  return true;
}

function bytes(e: ReassEntry): number {
  return e.m ? e.end - e.off : 0;
}

/** A segment to queue: stream bytes [off, end), `m` null when the snaplen cut them. */
export interface Seg {
  off: number;
  end: number;
  m: Mbuf | null;
}

/**
 * Insert [seg.off, seg.end) into the out-of-order queue. Where it overlaps queued data with other
 * bytes, the policy decides: `first` keeps the queued bytes (and fills only the holes), `last` lets
 * the new segment replace them; where the bytes are the same, or the queued ones were cut by the
 * snaplen, the new segment's are kept. Entries that meet are joined into one run (see ReassEntry),
 * so what a segment costs depends on the runs it overlaps, not on how many segments made them: a
 * retransmission over thousands of one-byte segments with the holes between them filled meets one
 * entry, not thousands. The queue keeps Mbufs, trimmed by reference (BSD tcp_reass with m_adj; no
 * byte is copied).
 * BSD: OpenBSD tcp_reass trims the new segment against its predecessor but frees the successors it
 * covers (a mix of both policies); sockcap makes the choice explicit. FreeBSD bounds the queue by
 * segments (net.inet.tcp.reass.maxqueuelen); sockcap by the Mbufs its runs hold (qMbufs).
 */
export function tcp_reass_insert(tp: Tcpcb, seg: Seg, ctx: ReassCtx): void {
  const q = tp.segq();
  let lo = 0;
  let hi = q.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (q[mid]!.end <= seg.off) lo = mid + 1;
    else hi = mid;
  }
  // q[lo, hi) overlap the segment; q[from, to) are replaced: those, and the entries it meets
  for (hi = lo; hi < q.length && q[hi]!.off < seg.end; hi++);
  const end = hi > lo ? Math.max(seg.end, q[hi - 1]!.end) : seg.end;
  const from = lo > 0 && q[lo - 1]!.end === seg.off ? lo - 1 : lo;
  const to = hi < q.length && q[hi]!.off === end ? hi + 1 : hi;
  let was = 0;
  let wasN = 0;
  for (let k = from; k < to; k++) {
    was += bytes(q[k]!);
    wasN += q[k]!.n;
  }
  const out = merge(tp, q, from, lo, hi, to, seg, ctx.policy);
  let now = 0;
  let nowN = 0;
  for (const p of out) {
    now += bytes(p);
    nowN += p.n;
  }
  q.splice(from, to - from, ...out);
  tp.qBytes += now - was;
  tp.qMbufs += nowN - wasN;
  ctx.queued(now - was);
}

/**
 * The entries that replace q[from, to) (the queued entries `seg` overlaps, q[lo, hi), with the
 * ones it meets before and after): pieces of the segment where it wins or fills a hole, the queued
 * entries or their pieces where they win, joined into runs. Counts the overlap and a conflict.
 * Reads q, changes only entries it joins to (the caller splices the result in).
 */
function merge(tp: Tcpcb, q: readonly ReassEntry[], from: number, lo: number, hi: number, to: number, seg: Seg, policy: OverlapPolicy): ReassEntry[] {
  const out: ReassEntry[] = from < lo ? [q[from]!] : [];
  let r = seg.off; // the segment's bytes from r on are still to be taken
  let conflicts = false;
  for (let k = lo; k < hi; k++) {
    const old = q[k]!;
    const s = Math.max(old.off, seg.off);
    const t = Math.min(old.end, seg.end);
    tp.counts.overlapBytes += t - s;
    const conflict = seg.m !== null && old.m !== null && !sameBytes(seg.m, s - seg.off, old.m, s - old.off, t - s);
    conflicts ||= conflict;
    if (seg.m !== null && (old.m === null || !conflict || policy === 'last')) {
      m_unpin(old.m);
      if (old.off < s) add(out, piece(old, old.off, s));
      if (old.end > t) {
        take(out, seg, r, t);
        add(out, piece(old, t, old.end));
        r = old.end;
      }
    } else {
      take(out, seg, r, s);
      add(out, old);
      r = Math.max(r, old.end);
    }
  }
  take(out, seg, r, seg.end);
  if (hi < to) add(out, q[hi]!);
  if (conflicts) tp.counts.overlapConflicts++;
  return out;
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
  let mbufs = 0;
  for (; i < q.length && q[i]!.off <= tp.rcvOff; i++) {
    const e = q[i]!;
    delta -= bytes(e);
    mbufs += e.n;
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
  else if (i > 0) {
    tp.segq().splice(0, i);
    tp.qMbufs -= mbufs;
  }
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
