import { Mbuf } from '../mbuf/mbuf.js';

/**
 * A socket buffer: a chain of Mbufs (still referencing capture memory) with byte accounting.
 * BSD: struct sockbuf (sb_mb, sb_mbtail, sb_cc, sb_hiwat, sb_lowat).
 */
export class Sockbuf {
  /** First Mbuf of the chain (BSD sb_mb). */
  mb: Mbuf | null = null;
  /** Last Mbuf (BSD sb_mbtail), for O(1) appends. */
  mbtail: Mbuf | null = null;
  /** Bytes in the buffer (BSD sb_cc). */
  cc = 0;
  /** Total bytes ever appended (the stream offset of the byte after the buffer's last). */
  total = 0;

  constructor(
    /** High-water mark (BSD sb_hiwat): the space a receiver advertises. */
    public hiwat = 65536,
    /** Low-water mark (BSD sb_lowat): readers wake when this much is there. */
    public lowat = 1,
  ) {}

  /** As new, for a recycled connection (empty: the caller checked that it holds nothing). */
  reset(): void {
    this.mb = null;
    this.mbtail = null;
    this.cc = 0;
    this.total = 0;
    this.hiwat = 65536;
    this.lowat = 1;
  }
}

/**
 * BSD sbappendstream(): append a chain to a stream socket buffer. No bytes are copied; the buffer
 * holds a reference to each piece's storage (Ext) until sbdrop lets it go.
 */
export function sbappendstream(sb: Sockbuf, m: Mbuf | null): void {
  for (; m; ) {
    const next: Mbuf | null = m.next;
    if (m.len > 0) {
      m.next = null;
      m.nextpkt = null;
      if (sb.mbtail) sb.mbtail.next = m;
      else sb.mb = m;
      sb.mbtail = m;
      sb.cc += m.len;
      sb.total += m.len;
      if (m.ext) m.ext.refs++;
    }
    m = next;
  }
}

const NO_BYTES = new Uint8Array(0);

/** Spare payload Mbufs kept at most (sbdrop's `spare`): what one drained reassembly run gives back. */
export const SPARE_MBUFS = 1024;

/**
 * BSD sbdrop(): discard `len` bytes from the front (what a reader consumed). With `spare`, a reader
 * that consumed without looking (DrainApp's drain): each Mbuf dropped whole that has no packet
 * header (tcp_input made it for the payload; nothing else holds one once it is appended: the
 * reassembly queue lets go of its chains first) goes there, up to SPARE_MBUFS, for tcp_input to
 * make its next ones of (BSD m_freem gives mbufs back to their zone), holding no reference to
 * capture memory.
 */
export function sbdrop(sb: Sockbuf, len: number, spare: Mbuf[] | null = null): void {
  if (len > sb.cc) throw new RangeError(`sbdrop ${len} > cc ${sb.cc}`);
  sb.cc -= len;
  let m = sb.mb;
  while (m && len > 0) {
    if (m.len <= len) {
      len -= m.len;
      if (m.ext) m.ext.refs--;
      const next: Mbuf | null = m.next;
      if (spare !== null && m.hdr === null && spare.length < SPARE_MBUFS) {
        m.next = null;
        m.buf = NO_BYTES;
        m.ext = null;
        spare.push(m);
      }
      m = next;
    } else {
      // a fresh Mbuf over the remaining bytes (it takes over the reference): Mbufs handed out by
      // soreceive stay intact
      const rest = new Mbuf(m.buf, m.off + len, m.len - len, null, m.ext);
      rest.next = m.next;
      m = rest;
      len = 0;
    }
  }
  sb.mb = m;
  if (!m) sb.mbtail = null;
  else if (!m.next) sb.mbtail = m;
}

/** BSD sbspace(): free space below the high-water mark (may be negative). */
export function sbspace(sb: Sockbuf): number {
  return sb.hiwat - sb.cc;
}

/** SOCKBUF_DEBUG sbcheck(): the byte count equals the chain's length and the tail is the tail. */
export function sbcheck(sb: Sockbuf): void {
  let n = 0;
  let last: Mbuf | null = null;
  for (let m = sb.mb; m; m = m.next) {
    n += m.len;
    last = m;
  }
  if (n !== sb.cc) throw new Error(`sbcheck: cc ${sb.cc} but chain holds ${n}`);
  if (last !== sb.mbtail) throw new Error('sbcheck: mbtail is not the last mbuf');
}
