import { CaptureFormatError } from '../errors.js';
import type { Mbuf } from '../mbuf/mbuf.js';
import { be16, be32, le16, le32 } from '../wire/bytes.js';
import type { ChunkCursor } from './chunks.js';
import { ticksToTime } from './pcapng-time.js';
import { MAX_RECORD } from './pcap-reader.js';
import { type Batch, batchFrames, type BatchFrames, type CaptureSession, type FileInfo, type Iface, takeBatch } from './session.js';

export const PCAPNG_SHB = 0x0a0d0d0a;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
const IDB = 1;
const OPB = 2;
const SPB = 3;
const EPB = 6;
/** Custom blocks (copiable and not): Wireshark shows them as frames, so they take a frame number. */
const CB_COPY = 0x00000bad;
const CB_NOCOPY = 0x40000bad;

/** Per-section decoding state. */
interface Section {
  le: boolean;
  ifaces: Iface[];
}

/**
 * pcapng walker: SHB (both byte orders, several sections), IDB (link type, snaplen, if_tsresol,
 * if_tsoffset, if_name), EPB, SPB and OPB; every other block is skipped. Yields batches, then throws
 * a CaptureFormatError (with the block's byte offset) at the first structural problem.
 */
export async function* walkPcapng(cur: ChunkCursor, info: FileInfo, session: CaptureSession): AsyncGenerator<Batch> {
  Object.assign(info, { format: 'pcapng', sections: 0 });
  const state = batchFrames();
  try {
    yield* blocks(cur, info, session, state);
  } catch (e) {
    // every complete record before the problem is delivered first
    if (state.n) yield takeBatch(state);
    throw e;
  }
}

async function* blocks(cur: ChunkCursor, info: FileInfo, session: CaptureSession, state: BatchFrames): AsyncGenerator<Batch> {
  let sec: Section | null = null;
  for (;;) {
    if (cur.avail() < 12) {
      if (state.n) yield takeBatch(state);
      if (!(await cur.ensure(12))) {
        if (cur.avail() === 0) return;
        throw err(info, 'ERR_TRUNCATED_RECORD', cur.abs, `block header truncated (${cur.avail()} of 12 bytes)`);
      }
    }
    const type0 = le32(cur.buf, cur.pos);
    if (type0 === PCAPNG_SHB) sec = readShbOrder(cur, info);
    else if (!sec) throw err(info, 'ERR_BAD_MAGIC', 0, 'not a pcapng file (first block is not a section header)');
    const len = blockLen(cur, sec, info);
    if (cur.avail() < len) {
      if (state.n) yield takeBatch(state);
      if (!(await cur.ensure(len)))
        throw err(info, 'ERR_TRUNCATED_RECORD', cur.abs, `block truncated (${cur.avail()} of ${len} bytes)`);
    }
    const u32 = sec.le ? le32 : be32;
    if (u32(cur.buf, cur.pos + len - 4) !== len)
      throw err(info, 'ERR_BAD_BLOCK', cur.abs, `block trailer length ${u32(cur.buf, cur.pos + len - 4)} differs from ${len}`);
    const type = u32(cur.buf, cur.pos);
    if (type === PCAPNG_SHB) sec = startSection(cur, len, sec, info);
    else if (type === IDB) sec.ifaces.push(readIdb(cur, len, sec, info, session));
    else if (type === EPB || type === SPB || type === OPB) {
      // read first: `out[n++] = f()` would count n before f throws (a corrupt block)
      const m = readPacket(cur, len, type, sec, info, session);
      state.out[state.n++] = m;
      info.frames++;
    } else if (type === CB_COPY || type === CB_NOCOPY) {
      session.frames++;
      info.customBlocks++;
    }
    cur.advance(len);
    if (state.n >= state.max) yield takeBatch(state);
  }
}

function err(info: FileInfo, code: 'ERR_TRUNCATED_RECORD' | 'ERR_BAD_MAGIC' | 'ERR_BAD_BLOCK' | 'ERR_BAD_VERSION', off: number, msg: string) {
  return new CaptureFormatError(code, info.name, off, msg);
}

function readShbOrder(cur: ChunkCursor, info: FileInfo): Section {
  const m = le32(cur.buf, cur.pos + 8);
  if (m === BYTE_ORDER_MAGIC) return { le: true, ifaces: [] };
  if (be32(cur.buf, cur.pos + 8) === BYTE_ORDER_MAGIC) return { le: false, ifaces: [] };
  throw err(info, 'ERR_BAD_MAGIC', cur.abs + 8, `bad pcapng byte-order magic 0x${m.toString(16)}`);
}

function blockLen(cur: ChunkCursor, sec: Section, info: FileInfo): number {
  const len = (sec.le ? le32 : be32)(cur.buf, cur.pos + 4);
  if (len < 12 || len % 4 !== 0 || len > MAX_RECORD)
    throw err(info, 'ERR_BAD_BLOCK', cur.abs, `block length ${len} is ${len % 4 ? 'not a multiple of 4' : len < 12 ? 'too small' : 'absurd'}`);
  return len;
}

function startSection(cur: ChunkCursor, len: number, sec: Section, info: FileInfo): Section {
  const u16 = sec.le ? le16 : be16;
  if (len < 28) throw err(info, 'ERR_BAD_BLOCK', cur.abs, `section header block too small (${len} bytes)`);
  const major = u16(cur.buf, cur.pos + 12);
  const minor = u16(cur.buf, cur.pos + 14);
  if (major !== 1 || minor > 2)
    throw err(info, 'ERR_BAD_VERSION', cur.abs + 12, `unsupported pcapng section version ${major}.${minor}`);
  walkOptions(cur, 24, len, sec, info, () => {});
  if (info.sections === 0) info.bigEndian = !sec.le;
  info.sections++;
  return sec;
}

/** Walk a block's options from `start`; `f` sees each (code, value offset, length). */
function walkOptions(cur: ChunkCursor, start: number, len: number, sec: Section, info: FileInfo,
  f: (code: number, off: number, olen: number) => void): void {
  const u16 = sec.le ? le16 : be16;
  const end = cur.pos + len - 4;
  let p = cur.pos + start;
  while (p + 4 <= end) {
    const code = u16(cur.buf, p);
    const olen = u16(cur.buf, p + 2);
    if (code === 0) return;
    if (p + 4 + olen > end)
      throw err(info, 'ERR_BAD_BLOCK', cur.abs + (p - cur.pos), `option ${code} of length ${olen} runs past the end of its block`);
    f(code, p + 4, olen);
    p += 4 + ((olen + 3) & ~3);
  }
}

/**
 * Interfaces a run's pcapng sections may describe, all sections and files together. The format
 * sets no limit, but each interface is kept for the whole run (packets name them by number, -w
 * writes them) at a few hundred bytes: a file of nothing but interface blocks, or of sections of
 * one interface each, would turn 20-48 bytes of input into ~500 of memory, a million of them
 * into 500 MiB. Real captures have a handful.
 */
export const MAX_IFACES = 65536;

function readIdb(cur: ChunkCursor, len: number, sec: Section, info: FileInfo, session: CaptureSession): Iface {
  if (len < 20) throw err(info, 'ERR_BAD_BLOCK', cur.abs, `interface description block too small (${len} bytes)`);
  if (session.ifaces.length >= MAX_IFACES)
    throw err(info, 'ERR_BAD_BLOCK', cur.abs, `more than ${MAX_IFACES.toLocaleString('en-US')} interfaces in the run (interface description blocks of every section and file)`);
  const b = cur.buf;
  const u16 = sec.le ? le16 : be16;
  const u32 = sec.le ? le32 : be32;
  let tsresol = 6;
  let tsoffset = 0;
  let name: string | undefined;
  walkOptions(cur, 16, len, sec, info, (code, off, olen) => {
    // the name is kept for the run and only shown: its first 256 bytes (an option may hold 64 KiB)
    if (code === 2) name = b.toString('utf8', off, off + Math.min(olen, 256)).replace(/\0+$/, '');
    else if (code === 9 && olen >= 1) tsresol = b[off]!;
    else if (code === 14 && olen >= 8) {
      const hi = sec.le ? u32(b, off + 4) | 0 : u32(b, off) | 0;
      const lo = sec.le ? u32(b, off) : u32(b, off + 4);
      tsoffset = hi * 4294967296 + lo;
    }
  });
  const snaplen = u32(b, cur.pos + 12);
  // the file's: the smallest of its interfaces' (0 is none, pcapng's "no limit")
  if (snaplen && (info.snaplen === null || snaplen < info.snaplen)) info.snaplen = snaplen;
  return session.addIface({
    linktype: u16(b, cur.pos + 8), snaplen, tsresol, tsoffset,
    bigEndian: !sec.le, name, file: info.name,
  });
}

function readPacket(cur: ChunkCursor, len: number, type: number, sec: Section, info: FileInfo, session: CaptureSession): Mbuf {
  const b = cur.buf;
  const p = cur.pos;
  const u32 = sec.le ? le32 : be32;
  let ifid: number, hi: number, lo: number, caplen: number, origLen: number, dataOff: number;
  if (type === SPB) {
    if (len < 16) throw err(info, 'ERR_BAD_BLOCK', cur.abs, `simple packet block too small (${len} bytes)`);
    ifid = 0; hi = 0; lo = 0;
    origLen = u32(b, p + 8);
    dataOff = 12;
    const snap = sec.ifaces[0]?.snaplen || Infinity;
    caplen = Math.min(origLen, snap, len - 16);
  } else {
    if (len < 32) throw err(info, 'ERR_BAD_BLOCK', cur.abs, `packet block too small (${len} bytes)`);
    ifid = type === EPB ? u32(b, p + 8) : (sec.le ? le16 : be16)(b, p + 8);
    hi = u32(b, p + 12); lo = u32(b, p + 16);
    caplen = u32(b, p + 20); origLen = u32(b, p + 24);
    dataOff = 28;
    if (caplen > len - 32)
      throw err(info, 'ERR_BAD_BLOCK', cur.abs, `captured length ${caplen} runs past the end of its ${len}-byte block`);
  }
  const iface = sec.ifaces[ifid];
  if (!iface) throw err(info, 'ERR_BAD_BLOCK', cur.abs, `packet refers to interface ${ifid}, which the section has not described`);
  const m = session.pool.frame(b, p + dataOff, caplen, cur.ext, origLen, 0, 0, iface.linktype, iface.ifidx, ++session.frames);
  if (type !== SPB) ticksToTime(hi, lo, iface.tsresol, iface.tsoffset, m.hdr!);
  return m;
}
