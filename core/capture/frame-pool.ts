import { type Ext, Mbuf, PacketHeader, type PktHdr } from '../mbuf/mbuf.js';
import type { Batch } from './session.js';

/**
 * The readers' frames, made from the objects of frames their consumer is done with (BSD: an mbuf
 * goes back to its zone once input has consumed it; until now every frame here was a new Mbuf and
 * PacketHeader that the garbage collector found dead a batch later). On the benchmark's 100,000
 * short flows those two objects were 201 MB of the 527 MB replay allocated, so 38% of what the
 * scavenger had to sweep up.
 *
 * A frame given back with recycle() must be referenced by nothing that outlives its batch: a
 * consumer that keeps one (IP reassembly's first fragment) keeps a copy of it. Only runPipeline
 * gives frames back, and only for commands whose stack keeps none (no hooks, no output frames:
 * Stack.keepsFrames); -w writes a batch's frames within it, as views of their bytes, so its frames
 * come back too. A library reader (open()) never does, so its frames stay its own.
 */
export class FramePool {
  private readonly spare: Mbuf[] = [];
  /** Frames made from recycled objects (for tests and reports). */
  reused = 0;

  constructor(
    /** Spare frames kept at most (the readers' batch size: frames come back a batch at a time). */
    private readonly keep: number,
  ) {}

  /** A frame of `caplen` bytes at `off` of `buf` with its packet header: recycled objects when any are spare. */
  frame(buf: Uint8Array, off: number, caplen: number, ext: Ext | null, origLen: number, tsSec: number, tsNsec: number, linktype: number, ifidx: number, frameNo: number): Mbuf {
    const m = this.spare.pop();
    if (m === undefined) return new Mbuf(buf, off, caplen, new PacketHeader(caplen, origLen, tsSec, tsNsec, linktype, ifidx, frameNo), ext);
    m.buf = buf;
    m.off = off;
    m.len = caplen;
    m.next = null;
    m.nextpkt = null;
    m.ext = ext;
    const h = m.hdr as PacketHeader;
    h.caplen = caplen;
    h.origLen = origLen;
    h.tsSec = tsSec;
    h.tsNsec = tsNsec;
    h.linktype = linktype;
    h.ifidx = ifidx;
    h.frameNo = frameNo;
    this.reused++;
    return m;
  }

  /**
   * The consumer is done with these frames (every one a frame this pool made): their objects make
   * later frames, up to a batch's worth kept. A frame whose header was replaced or marked (a
   * splice's loop count) is left to the collector.
   */
  recycle(batch: Batch): void {
    for (let i = 0; i < batch.length && this.spare.length < this.keep; i++) {
      const m = batch[i]!;
      const h = m.hdr;
      if (h instanceof PacketHeader && (h as PktHdr).loopcnt === undefined) this.spare.push(m);
    }
  }
}
