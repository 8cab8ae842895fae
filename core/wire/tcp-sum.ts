import { fold16, sum16, sumDv } from './checksum.js';
import { MIRROR_WINDOW, type SimdSum } from './checksum-simd.js';
import { IPPROTO_TCP } from './ipv4.js';

/**
 * tcp_input's checksum verification (BSD in_cksum over the pseudo-header and the segment): the
 * WebAssembly SIMD sum where the runtime has it, reading an arena chunk in place or a mirror of
 * any other memory, else a DataView loop. Keeps what it learnt about the chunk it last summed in.
 */
export class TcpSum {
  /** The DataView of the buffer the DataView sum last read. */
  private dv: DataView | null = null;
  private dvBuf: ArrayBufferLike | null = null;
  /**
   * The read chunk last summed in, and whether the SIMD sum reads it in place (an arena): the
   * frames of a chunk share one, so the engine is asked once per chunk, not per segment (asking,
   * b.buffer and a range check, was ~3% of bulk replay).
   */
  private chunk: Uint8Array | null = null;
  private inPlace = false;

  constructor(
    /** WebAssembly SIMD sums (null: the DataView sum only). */
    private readonly simd: SimdSum | null,
  ) {}

  /** A batch begins: live slabs are written between batches, so no mirror outlives the batch it was made for. */
  batch(): void {
    this.simd?.drop();
    this.chunk = null;
  }

  /**
   * True when the TCP checksum of the segment [o, o+len) of `b`, whose IP header is at `ipO`, is
   * wrong.
   */
  bad(b: Uint8Array, ipO: number, ipv: 4 | 6, o: number, len: number): boolean {
    const w = this.simd;
    const base = b.byteOffset;
    if (w !== null) {
      if (b !== this.chunk) {
        this.chunk = b;
        this.inPlace = w.inPlace(b.buffer);
      }
      const from = base + ipO;
      const to = base + o + len;
      // any other memory: the mirror takes the next window of the chunk at once (one copy per window, not per frame)
      if (this.inPlace || (to - from <= w.capacity && (w.has(b.buffer, from, to) || w.load(b.buffer, from, Math.min(b.buffer.byteLength, Math.max(to, from + MIRROR_WINDOW)))))) {
        // the pseudo-header's addresses in JavaScript (a call into WebAssembly costs more than 4-16 words)
        let s = sum16(b, ipO + (ipv === 4 ? 12 : 8), ipv === 4 ? 8 : 32, IPPROTO_TCP + len) + w.sum(base + o, len);
        s = (s & 0xffff) + (s >>> 16);
        s = (s & 0xffff) + (s >>> 16);
        return s !== 0xffff;
      }
    }
    if (b.buffer !== this.dvBuf) {
      this.dvBuf = b.buffer;
      this.dv = new DataView(b.buffer);
    }
    const acc = ipv === 4 ? sumDv(this.dv!, base + ipO + 12, 8, IPPROTO_TCP + len) : sumDv(this.dv!, base + ipO + 8, 32, IPPROTO_TCP + len);
    return fold16(sumDv(this.dv!, base + o, len, acc)) !== 0xffff;
  }
}
