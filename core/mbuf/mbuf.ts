/**
 * Mbufs: the one data shape that travels through sockcap, from capture to socket buffer to output.
 *
 * BSD: sys/mbuf.h. An Mbuf is a window (`off`, `len`) onto a byte array it does not own. Capture
 * bytes are never mutated and never copied: trimming changes `off`/`len`, splitting makes a second
 * Mbuf over the same bytes. `next` chains the pieces of one packet or stream; `nextpkt` links packets
 * in a queue. The packet header (BSD m_pkthdr) is kept only on the first Mbuf of a packet.
 */

/** Packet header: what the capture said about a frame (BSD struct pkthdr, plus capture metadata). */
export interface PktHdr {
  /** Bytes captured (caplen). */
  caplen: number;
  /** Bytes on the wire (origlen); larger than caplen when the snaplen cut the frame. */
  origLen: number;
  /** Timestamp, whole seconds since the epoch, as the capture stored it. */
  tsSec: number;
  /** Timestamp, nanoseconds part, as stored (not normalised: invalid values survive a round trip). */
  tsNsec: number;
  /** LINKTYPE_* of the interface the frame was captured on. */
  linktype: number;
  /** Global interface index (unique across files and pcapng sections of one run). */
  ifidx: number;
  /** 1-based frame number over the whole run, as Wireshark numbers frames. */
  frameNo: number;
  /** Splices this data went through (OpenBSD m_pkthdr.ph_loopcnt); absent means 0. */
  loopcnt?: number;
  /**
   * Tunnels the packet was carried in (1: decapsulated once), for the header of a packet taken
   * out of a tunnel (net/tunnel.ts); absent for a captured frame.
   */
  tunnel?: number;
  /**
   * For a tunnel's packet inside one captured frame: where it starts in that frame (`at` bytes
   * after the frame's first byte, which is `at` bytes before this packet's in the same memory) and
   * the outer headers' length and checksum fields, outermost first, as (kind, offset in the frame,
   * argument) triples (net/tunnel.ts ENCAP_*): what sending on the same path must set again
   * (HeaderTemplate). Absent when the packet was made contiguous out of IP fragments.
   */
  encap?: { readonly at: number; readonly fix: readonly number[] };
  /** A datagram IP reassembly put together from fragments: its bytes are no captured frame's. */
  reassembled?: boolean;
  /**
   * For such a datagram: its first fragment's frame's Ethernet destination and source addresses
   * (12 bytes, copied), when that frame had them (etherAddrs).
   */
  etherAddrs?: Uint8Array;
}

/**
 * A packet header made by the readers, one per frame. A class, not an object literal, on purpose:
 * V8 tracks where literals are made and, when a scavenge finds most of one site's objects alive,
 * makes that site's objects in the old generation from then on. A scavenge in the middle of a
 * batch finds all of its headers alive (the batch holds them: 8,192 of 8,192), so the readers'
 * literal was pretenured, and from then on every frame's header was made in old space and died
 * there: on the 100,000-flow benchmark about 80 MB of them, which grew the heap until a full
 * collection and put peak RSS at 410 MiB in two runs of five (320 in the others). Objects made by
 * `new` are not pretenured by site.
 */
export class PacketHeader implements PktHdr {
  constructor(
    public caplen: number,
    public origLen: number,
    public tsSec: number,
    public tsNsec: number,
    public linktype: number,
    public ifidx: number,
    public frameNo: number,
  ) {}
}

/**
 * External storage shared by many Mbufs (BSD m_ext with its reference count, ext_count): a read
 * chunk of a capture file that a ChunkZone may reuse. `refs` counts the references held past the
 * batch a frame came in: socket buffers, TCP and IP reassembly queues (m_pin/m_unpin, sbappendstream
 * and sbdrop), output sinks and file writes in flight (until written), the splice model's kept
 * frames. Frames in flight through one batch are not counted, because a chunk is reused only
 * between batches, after the reader has moved past it. Whatever lets go of an Mbuf without
 * unpinning only keeps the chunk from being reused; unpinning what was never pinned is the bug.
 */
export class Ext {
  /** References held past a batch (BSD ext_count, without the frames of the batch being processed). */
  refs = 0;
  /** The reader has moved past this chunk: no new frame will be cut from it (ChunkZone). */
  retired = false;
}

/** A window onto bytes that belong to capture memory (or to a small freshly emitted header). */
export class Mbuf {
  /** Next piece of the same packet or stream (BSD m_next). */
  next: Mbuf | null = null;
  /** Next packet in a queue (BSD m_nextpkt). */
  nextpkt: Mbuf | null = null;
  /** Packet header, on the first Mbuf of a packet only (BSD M_PKTHDR). */
  hdr: PktHdr | null;

  constructor(
    /** The backing bytes; shared, never written through an Mbuf that references capture memory. */
    public buf: Uint8Array,
    /** Offset of the first byte of this Mbuf in `buf`. */
    public off: number,
    /** Number of bytes. */
    public len: number,
    hdr: PktHdr | null = null,
    /** The shared storage `buf` belongs to, when it may be reused (a read chunk of a ChunkZone). */
    public ext: Ext | null = null,
  ) {
    this.hdr = hdr;
  }

  /** BSD mtod(): a view (never a copy) of this Mbuf's bytes. */
  data(): Uint8Array {
    return this.buf.subarray(this.off, this.off + this.len);
  }
}

/** BSD m_length(): total bytes in a chain. */
export function m_length(m: Mbuf | null): number {
  let n = 0;
  for (; m; m = m.next) n += m.len;
  return n;
}

/**
 * BSD m_adj(): trim `req` bytes from the head of the chain (req > 0) or from the tail (req < 0).
 * Only `off`/`len` change; emptied Mbufs stay in the chain with len 0, as in BSD.
 */
export function m_adj(m: Mbuf, req: number): void {
  if (req >= 0) {
    for (let p: Mbuf | null = m; p && req > 0; p = p.next) {
      const k = Math.min(p.len, req);
      p.off += k;
      p.len -= k;
      req -= k;
    }
    return;
  }
  let keep = m_length(m) + req;
  for (let p: Mbuf | null = m; p; p = p.next) {
    if (keep >= p.len) keep -= p.len;
    else {
      p.len = Math.max(0, keep);
      keep = 0;
    }
  }
}

/**
 * BSD m_split(): split the chain at byte `len0`; returns the tail (a new chain sharing the same
 * bytes), or null when `len0` is beyond the end. The head keeps `len0` bytes.
 */
export function m_split(m: Mbuf, len0: number): Mbuf | null {
  let p: Mbuf | null = m;
  let left = len0;
  while (p && left > p.len) {
    left -= p.len;
    p = p.next;
  }
  if (!p) return null;
  const tail = new Mbuf(p.buf, p.off + left, p.len - left, null, p.ext);
  tail.next = p.next;
  p.len = left;
  p.next = null;
  return tail;
}

/** BSD m_copym(): a new chain referencing bytes [off, off+len) of `m` (references, not bytes). */
export function m_copym(m: Mbuf | null, off: number, len: number): Mbuf | null {
  let head: Mbuf | null = null;
  let tail: Mbuf | null = null;
  for (; m && len > 0; m = m.next) {
    if (off >= m.len) {
      off -= m.len;
      continue;
    }
    const k = Math.min(m.len - off, len);
    const n = new Mbuf(m.buf, m.off + off, k, null, m.ext);
    if (tail) tail.next = n;
    else head = n;
    tail = n;
    len -= k;
    off = 0;
  }
  return head;
}

/** A queue takes a reference to the storage of every Mbuf of chain `m` (BSD: the count an m_copym adds). */
export function m_pin(m: Mbuf | null): void {
  for (; m; m = m.next) if (m.ext) m.ext.refs++;
}

/** A queue lets go of chain `m` (BSD m_freem's ext_free): its storage may be reused once nothing else holds it. */
export function m_unpin(m: Mbuf | null): void {
  for (; m; m = m.next) if (m.ext) m.ext.refs--;
}

/** Let go of references taken one per entry (a sink's or a file write's, once written). */
export function ext_release(exts: readonly Ext[]): void {
  for (const x of exts) x.refs--;
}

/** BSD m_cat(): append chain `n` to chain `m`. */
export function m_cat(m: Mbuf, n: Mbuf | null): void {
  let p = m;
  while (p.next) p = p.next;
  p.next = n;
}

/**
 * BSD m_copydata(): copy bytes [off, off+len) of the chain into `out` at `outOff`.
 * This one does copy: it is for callers that need contiguous bytes (hashing is not one of them).
 */
export function m_copydata(m: Mbuf | null, off: number, len: number, out: Uint8Array, outOff = 0): void {
  for (; m && len > 0; m = m.next) {
    if (off >= m.len) {
      off -= m.len;
      continue;
    }
    const k = Math.min(m.len - off, len);
    out.set(m.buf.subarray(m.off + off, m.off + off + k), outOff);
    outOff += k;
    len -= k;
    off = 0;
  }
}

/**
 * `m` is a frame as it was captured, or a tunnel's packet inside one (PktHdr.encap), whose headers
 * the models may send again: not a datagram IP reassembly put together (a chain, or one small
 * enough to fit its first Mbuf: its header says so), no packet header, nor a tunnel's packet made
 * contiguous out of fragments.
 */
export function m_captured(m: Mbuf): boolean {
  const h = m.hdr;
  return h !== null && m.next === null && h.reassembled !== true && (h.tunnel === undefined || h.encap !== undefined);
}

/** Views of every non-empty piece of a chain, in order (for hashing and writing without copies). */
export function m_views(m: Mbuf | null): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (; m; m = m.next) if (m.len > 0) out.push(m.buf.subarray(m.off, m.off + m.len));
  return out;
}
