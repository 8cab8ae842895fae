import { CaptureFormatError } from '../errors.js';
import { be16, be32, le16, le32 } from '../wire/bytes.js';
import type { ChunkCursor } from './chunks.js';
import { type Batch, batchFrames, type BatchFrames, type CaptureSession, type FileInfo, takeBatch } from './session.js';

export const PCAP_MAGIC_US = 0xa1b2c3d4;
export const PCAP_MAGIC_NS = 0xa1b23c4d;
export const PCAP_HDR_LEN = 24;
export const PCAP_REC_HDR_LEN = 16;
/** Largest caplen accepted whatever the snaplen says (Wireshark's WTAP_MAX_PACKET_SIZE_STANDARD). */
export const MAX_STANDARD_CAPLEN = 262144;
/** Absolute ceiling on any record: beyond it the length field is corrupt. */
export const MAX_RECORD = 256 << 20;

/** A classic pcap file header (version 2.4, µs or ns magic) in either byte order. */
export function pcapFileHeader(linktype: number, snaplen: number, nanos = false, bigEndian = false): Uint8Array {
  const h = new Uint8Array(PCAP_HDR_LEN);
  const dv = new DataView(h.buffer);
  dv.setUint32(0, nanos ? PCAP_MAGIC_NS : PCAP_MAGIC_US, !bigEndian);
  dv.setUint16(4, 2, !bigEndian);
  dv.setUint16(6, 4, !bigEndian);
  dv.setUint32(16, snaplen, !bigEndian);
  dv.setUint32(20, linktype, !bigEndian);
  return h;
}

/**
 * Classic pcap walker (both byte orders, µs and ns magic, version 2.x). Yields batches of frames
 * whose bytes are views into the read chunks, then throws a CaptureFormatError at the first
 * structural problem, after every complete record before it has been yielded.
 */
export async function* walkPcap(cur: ChunkCursor, info: FileInfo, session: CaptureSession): AsyncGenerator<Batch> {
  const name = info.name;
  if (!(await cur.ensure(PCAP_HDR_LEN)))
    throw new CaptureFormatError('ERR_TRUNCATED_HEADER', name, 0, `pcap file header truncated (${cur.avail()} of 24 bytes)`);
  const b = cur.buf;
  const o = cur.pos;
  const magicLe = le32(b, o);
  const le = magicLe === PCAP_MAGIC_US || magicLe === PCAP_MAGIC_NS;
  const nanos = (le ? magicLe : be32(b, o)) === PCAP_MAGIC_NS;
  const u16 = le ? le16 : be16;
  const u32 = le ? le32 : be32;
  const major = u16(b, o + 4);
  if (major !== 2)
    throw new CaptureFormatError('ERR_BAD_VERSION', name, 4, `unsupported pcap version ${major}.${u16(b, o + 6)}`);
  const snaplen = u32(b, o + 16);
  const ltField = u32(b, o + 20);
  if (ltField & 0x03ff0000)
    throw new CaptureFormatError('ERR_BAD_LINKTYPE', name, 20,
      `link type field has reserved bits set (0x${(ltField & 0x03ff0000).toString(16).padStart(8, '0')})`);
  const linktype = ltField & 0xffff;
  Object.assign(info, { format: 'pcap', nanos, bigEndian: !le, sections: 1, snaplen });
  const iface = session.addIface({
    linktype, snaplen, tsresol: nanos ? 9 : 6, tsoffset: 0, bigEndian: !le, name: undefined, file: name,
  });
  const ifidx = iface.ifidx;
  const fracMul = nanos ? 1 : 1000;
  const capLimit = Math.max(snaplen, MAX_STANDARD_CAPLEN);
  const rc: RecordCtx = { le, fracMul, capLimit, linktype, ifidx };
  cur.advance(PCAP_HDR_LEN);
  const frames = batchFrames();
  for (;;) {
    const st = records(cur, frames, rc, info, session);
    if (st === FULL) {
      yield takeBatch(frames);
      continue;
    }
    if (st === BAD_CAPLEN) {
      if (frames.n) yield takeBatch(frames);
      const caplen = u32(cur.buf, cur.pos + 8);
      throw new CaptureFormatError('ERR_BAD_CAPLEN', name, cur.abs,
        `record caplen ${caplen} is larger than ${caplen > MAX_RECORD ? 'any sane record (256 MiB)' : `the snaplen (${snaplen}) and the ${MAX_STANDARD_CAPLEN}-byte limit`}`);
    }
    // the chunk ends inside a record (or its header): hand over what is parsed, then read on
    if (frames.n) yield takeBatch(frames);
    if (st === NEED_HDR) {
      if (!(await cur.ensure(PCAP_REC_HDR_LEN))) {
        if (cur.avail() === 0) return;
        throw new CaptureFormatError('ERR_TRUNCATED_RECORD', name, cur.abs,
          `record header truncated (${cur.avail()} of 16 bytes)`);
      }
      continue;
    }
    const need = PCAP_REC_HDR_LEN + u32(cur.buf, cur.pos + 8);
    if (!(await cur.ensure(need)))
      throw new CaptureFormatError('ERR_TRUNCATED_RECORD', name, cur.abs,
        `record truncated (${cur.avail()} of ${need} bytes)`);
  }
}

/** What `records` needs to know of the file. */
interface RecordCtx {
  readonly le: boolean;
  readonly fracMul: number;
  readonly capLimit: number;
  readonly linktype: number;
  readonly ifidx: number;
}

/** Why `records` stopped: the batch is full, a record header or a record runs past the chunk, a caplen is absurd. */
const FULL = 0;
const NEED_HDR = 1;
const NEED_REC = 2;
const BAD_CAPLEN = 3;

/**
 * The per-record loop, apart from the generator (an ordinary function is optimized and inlined
 * better than an async generator's body): every whole record of the current chunk becomes an Mbuf
 * over the chunk, added to `f` (BatchFrames), until it holds `f.max` or the chunk ends inside a
 * record. The cursor is left at the first record not taken.
 */
function records(cur: ChunkCursor, f: BatchFrames, rc: RecordCtx, info: FileInfo, session: CaptureSession): number {
  const out = f.out;
  const buf = cur.buf;
  const end = buf.length;
  const ext = cur.ext;
  const start = cur.pos;
  const pool = session.pool;
  let p = start;
  const n0 = f.n;
  let n = n0;
  let st = FULL;
  const max = f.max;
  while (n < max) {
    if (end - p < PCAP_REC_HDR_LEN) {
      st = NEED_HDR;
      break;
    }
    const caplen = rc.le ? le32(buf, p + 8) : be32(buf, p + 8);
    if (caplen > MAX_RECORD || caplen > rc.capLimit) {
      st = BAD_CAPLEN;
      break;
    }
    const need = PCAP_REC_HDR_LEN + caplen;
    if (end - p < need) {
      st = NEED_REC;
      break;
    }
    const m = pool.frame(
      buf,
      p + PCAP_REC_HDR_LEN,
      caplen,
      ext,
      rc.le ? le32(buf, p + 12) : be32(buf, p + 12),
      rc.le ? le32(buf, p) : be32(buf, p),
      (rc.le ? le32(buf, p + 4) : be32(buf, p + 4)) * rc.fracMul,
      rc.linktype,
      rc.ifidx,
      ++session.frames,
    );
    out[n++] = m;
    p += need;
  }
  if (p > start) cur.advance(p - start);
  info.frames += n - n0;
  f.n = n;
  return st;
}
