import { SockcapError } from '../errors.js';
import type { Mbuf } from '../mbuf/mbuf.js';
import { le32 } from '../wire/bytes.js';

import { timeToTicks } from './pcapng-time.js';
import { PCAPNG_SHB } from './pcapng-reader.js';
import { pcapFileHeader } from './pcap-reader.js';
import type { Iface } from './session.js';
import type { ByteSink } from './sink.js';

/**
 * Small fresh buffers for record headers, carved from 64 KiB slabs: headers are the only bytes an
 * output capture writes anew; payload views are pushed as they are.
 */
class HeaderSlab {
  private slab = new Uint8Array(0);
  private used = 0;

  take(n: number): Uint8Array {
    if (this.used + n > this.slab.length) {
      this.slab = new Uint8Array(Math.max(65536, n));
      this.used = 0;
    }
    const v = this.slab.subarray(this.used, this.used + n);
    this.used += n;
    return v;
  }
}

const ZEROS = new Uint8Array(4);

/** Write little-endian u32 (both writers emit host order x86: little-endian). */
function le32put(b: Uint8Array, o: number, v: number): void {
  b[o] = v;
  b[o + 1] = v >>> 8;
  b[o + 2] = v >>> 16;
  b[o + 3] = v >>> 24;
}

/** Something frames can be written to: a capture file format over a ByteSink. */
export interface FrameWriter {
  /** Append one frame (the chain's bytes, with its packet header's timestamp and lengths). */
  writeFrame(m: Mbuf): void;
  readonly sink: ByteSink;
  /** Frames written. */
  readonly frames: number;
}

function pushChain(sink: ByteSink, m: Mbuf | null): void {
  for (; m; m = m.next) if (m.len > 0) sink.push(m.buf.subarray(m.off, m.off + m.len), m.ext);
}

/**
 * Push one record: `head` (its header as the writer makes it, in the writer's scratch buffer), the
 * frame's `caplen` bytes, `pad` zero bytes and, when `trail` >= 0, that 32-bit trailer (pcapng's
 * block length). A frame read from a capture of this format lies in its chunk right after header
 * bytes that may be these very ones (and before that padding and trailer): the record is then
 * pushed as it lies, one range, and consecutive records join into one (no header made, no view per
 * frame). Decided by comparing the bytes, so a frame from anywhere else simply misses and the
 * record is made.
 */
function pushRecord(sink: ByteSink, slab: HeaderSlab, head: Uint8Array, m: Mbuf, caplen: number, pad: number, trail: number): void {
  const b = m.buf;
  const n = head.length;
  const at = m.off - n;
  const end = m.off + caplen + pad;
  const total = end + (trail >= 0 ? 4 : 0) - at;
  if (m.next === null && at >= 0 && at + total <= b.length && (trail < 0 || le32(b, end) === trail >>> 0)) {
    let same = true;
    for (let i = 0; i < n && same; i++) same = b[at + i] === head[i];
    for (let i = end - pad; i < end && same; i++) same = b[i] === 0;
    if (same) return sink.pushRange(b, at, total, m.ext);
  }
  const h = slab.take(n);
  h.set(head);
  sink.push(h);
  pushChain(sink, m);
  if (pad) sink.push(ZEROS.subarray(0, pad));
  if (trail >= 0) {
    const t = slab.take(4);
    le32put(t, 0, trail);
    sink.push(t);
  }
}

/** The snapshot length a classic pcap header declares once a record outgrew the input's (libpcap's MAXIMUM_SNAPLEN). */
const MAX_SNAPLEN = 262144;

/**
 * A record of `caplen` bytes outgrew the snapshot length `was` a header declares (`head`, pushed
 * at output offset `at`, the field at `field` in it): readers that hold records to their header
 * refuse longer ones (gopacket: "capture length exceeds snap length"; others: "packet exceeds
 * interface snap length"), so it declares MAX_SNAPLEN (or `caplen`) instead, returned. In place
 * while the header is still unsent, else written into the file at close; a stream's header has
 * gone, which is an error naming frame `frameNo` (`what`: which header, and what to do instead),
 * never a file some readers cannot read.
 */
function raiseSnaplen(sink: ByteSink, head: Uint8Array, at: number, field: number, was: number, caplen: number, frameNo: number, what: string): number {
  const snaplen = Math.max(caplen, MAX_SNAPLEN);
  if (sink.written <= at) {
    le32put(head, field, snaplen);
    return snaplen;
  }
  const b = new Uint8Array(4);
  le32put(b, 0, snaplen);
  if (!sink.patchAt(at + field, b))
    throw new SockcapError('ERR_OUTPUT_FORMAT', `frame ${frameNo} has ${caplen} bytes, more than the snapshot length (${was}) ${what}`);
  return snaplen;
}

/** Classic pcap (little-endian, µs or ns). One link type per file. */
export class PcapWriter implements FrameWriter {
  frames = 0;
  private readonly slab = new HeaderSlab();
  /** The record header being made (pushRecord copies it out when the frame's own is not it). */
  private readonly scratch = new Uint8Array(16);
  /** The file header, and the snapshot length it declares: no record may be longer. */
  private readonly head: Uint8Array;
  private snaplen: number;

  constructor(
    readonly sink: ByteSink,
    private readonly linktype: number,
    snaplen: number,
    private readonly nanos: boolean,
  ) {
    this.snaplen = snaplen;
    this.head = pcapFileHeader(linktype, snaplen, nanos);
    sink.push(this.head);
  }

  writeFrame(m: Mbuf): void {
    const hdr = m.hdr!;
    if (hdr.linktype !== this.linktype)
      throw new SockcapError('ERR_OUTPUT_FORMAT',
        `frame ${hdr.frameNo} has link type ${hdr.linktype} but a classic pcap file holds one link type (${this.linktype}): write pcapng instead (--out-format pcapng)`);
    let caplen = 0;
    for (let p: Mbuf | null = m; p; p = p.next) caplen += p.len;
    // a longer record (a later input captured with a larger snaplen): see raiseSnaplen
    if (caplen > this.snaplen) this.snaplen = raiseSnaplen(this.sink, this.head, 0, 16, this.snaplen, caplen, hdr.frameNo,
      'this pcap stream\'s header declared and sent: write a file, or pcapng (--out-format pcapng)');
    const h = this.scratch;
    le32put(h, 0, hdr.tsSec);
    le32put(h, 4, this.nanos ? hdr.tsNsec : Math.floor(hdr.tsNsec / 1000));
    le32put(h, 8, caplen);
    le32put(h, 12, Math.max(hdr.origLen, caplen));
    pushRecord(this.sink, this.slab, h, m, caplen, 0, -1);
    this.frames++;
  }
}

/** An interface of a pcapng output (see PcapngWriter.out). */
interface OutIface {
  id: number;
  k: number;
  idb: Uint8Array;
  at: number;
  snaplen: number;
}

/** pcapng: one section, one IDB per input interface (written before its first packet), EPBs. */
export class PcapngWriter implements FrameWriter {
  frames = 0;
  private readonly slab = new HeaderSlab();
  /** The EPB's header being made (see PcapWriter.scratch). */
  private readonly scratch = new Uint8Array(28);
  /**
   * Global ifidx → output interface id, its decimal resolution, and its IDB: the bytes, where they
   * went in the output, and the snapshot length they declare (0: none).
   */
  private readonly out = new Map<number, OutIface>();

  constructor(
    readonly sink: ByteSink,
    private readonly ifaces: readonly Iface[],
  ) {
    const shb = new Uint8Array(28);
    le32put(shb, 0, PCAPNG_SHB);
    le32put(shb, 4, 28);
    le32put(shb, 8, 0x1a2b3c4d);
    shb[12] = 1;
    shb.fill(0xff, 16, 24);
    le32put(shb, 24, 28);
    sink.push(shb);
  }

  private iface(ifidx: number): OutIface {
    let o = this.out.get(ifidx);
    if (o) return o;
    const src = this.ifaces[ifidx]!;
    const k = src.tsresol & 0x80 || src.tsresol > 9 ? 9 : src.tsresol;
    const name = src.name ? new TextEncoder().encode(src.name) : null;
    const nameLen = name ? 4 + ((name.length + 3) & ~3) : 0;
    const len = 20 + 8 + nameLen + 4 + (src.tsoffset ? 12 : 0);
    const b = new Uint8Array(len);
    le32put(b, 0, 1);
    le32put(b, 4, len);
    b[8] = src.linktype;
    b[9] = src.linktype >>> 8;
    le32put(b, 12, src.snaplen);
    let p = 16;
    b[p] = 9; b[p + 2] = 1; b[p + 4] = k;
    p += 8;
    if (name) {
      b[p] = 2; b[p + 2] = name.length; b[p + 3] = name.length >>> 8;
      b.set(name, p + 4);
      p += nameLen;
    }
    if (src.tsoffset) {
      b[p] = 14; b[p + 2] = 8;
      le32put(b, p + 4, src.tsoffset >>> 0);
      le32put(b, p + 8, Math.floor(src.tsoffset / 4294967296));
      p += 12;
    }
    p += 4; // opt_endofopt
    le32put(b, p, len);
    o = { id: this.out.size, k, idb: b, at: this.sink.position, snaplen: src.snaplen };
    this.out.set(ifidx, o);
    this.sink.push(b);
    return o;
  }

  writeFrame(m: Mbuf): void {
    const hdr = m.hdr!;
    const o = this.iface(hdr.ifidx);
    const { id, k } = o;
    let caplen = 0;
    for (let p: Mbuf | null = m; p; p = p.next) caplen += p.len;
    if (o.snaplen !== 0 && caplen > o.snaplen) o.snaplen = raiseSnaplen(this.sink, o.idb, o.at, 12, o.snaplen, caplen, hdr.frameNo,
      'its interface block declared and sent on this pcapng stream: write a file');
    const pad = (4 - (caplen & 3)) & 3;
    const len = 32 + caplen + pad;
    const src = this.ifaces[hdr.ifidx]!;
    const [hi, lo] = timeToTicks(hdr.tsSec - src.tsoffset, hdr.tsNsec, k);
    // an EPB read from a pcapng (this byte order, interface id and resolution, no options) may be
    // the very block this one is: pushRecord then pushes it as it lies
    const h = this.scratch;
    le32put(h, 0, 6);
    le32put(h, 4, len);
    le32put(h, 8, id);
    le32put(h, 12, hi);
    le32put(h, 16, lo);
    le32put(h, 20, caplen);
    le32put(h, 24, Math.max(hdr.origLen, caplen));
    pushRecord(this.sink, this.slab, h, m, caplen, pad, len);
    this.frames++;
  }
}


