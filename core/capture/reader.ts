import { CaptureFormatError, SockcapError } from '../errors.js';
import { be32, le32 } from '../wire/bytes.js';
import { ChunkCursor, fileChunks, gunzipChunks, streamChunks } from './chunks.js';
import { PCAPNG_SHB, walkPcapng } from './pcapng-reader.js';
import { PCAP_MAGIC_NS, PCAP_MAGIC_US, walkPcap } from './pcap-reader.js';
import type { Batch, CaptureSession, FileInfo } from './session.js';

/** An input: a file path, or any byte stream (stdin) with a name for messages. */
export interface CaptureInput {
  /** Shown in messages; `-` conventionally means stdin. */
  readonly name: string;
  /** Read this file (default: `name`), unless `stream` is given. */
  readonly path?: string;
  readonly stream?: AsyncIterable<Uint8Array | string>;
}

async function* prepend(first: Buffer, rest: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  yield first;
  for (;;) {
    const r = await rest.next();
    if (r.done) return;
    yield r.value;
  }
}

/**
 * Read one capture, detected by its magic bytes (pcap in either byte order and resolution, pcapng,
 * either of them gzip-compressed), as batches of frames. Frame numbers and interface indices
 * continue from `session`, so several files in one run number like one. Throws SockcapError with
 * a code: ERR_OPEN (cannot open), ERR_GZIP, or a CaptureFormatError naming file and byte offset,
 * always after yielding every complete record before the problem.
 */
export async function* readCapture(input: CaptureInput, session: CaptureSession): AsyncGenerator<Batch> {
  const name = input.name;
  const raw = input.stream ? streamChunks(input.stream) : fileChunks(input.path ?? name, undefined, undefined, session.zone);
  let first: IteratorResult<Buffer>;
  try {
    first = await raw.next();
  } catch (e) {
    throw new SockcapError('ERR_OPEN', `${name}: cannot open: ${(e as Error).message}`, { cause: e });
  }
  const info: FileInfo = { name, format: null, gzip: false, nanos: false, bigEndian: false, sections: 0, frames: 0, snaplen: null, customBlocks: 0 };
  session.files.push(info);
  if (first.done) throw new CaptureFormatError('ERR_TRUNCATED_HEADER', name, 0, 'empty file: no capture header');
  info.gzip = first.value[0] === 0x1f && first.value[1] === 0x8b;
  const chunks = prepend(first.value, raw);
  const cur = new ChunkCursor(info.gzip ? gunzipChunks(chunks) : chunks, session.memory, info.gzip ? null : session.zone);
  try {
    for await (const batch of walk(cur, info, session)) {
      session.bytesInFlight = session.bytesRead + cur.abs;
      const out = session.filter ? filtered(batch, session, info) : batch;
      if (out.length) yield out;
    }
  } catch (e) {
    // a gzip input's offsets are the walker's, in the decompressed bytes (`zcat FILE | xxd` shows them)
    if (e instanceof CaptureFormatError && info.gzip && !e.decompressed) throw new CaptureFormatError(e.code, e.file, e.offset, e.detail, true, e.hint);
    if (e instanceof SockcapError) throw e;
    const code = (e as NodeJS.ErrnoException).code ?? '';
    if (info.gzip && code.startsWith('Z_'))
      throw new CaptureFormatError('ERR_GZIP', name, cur.abs, `gzip data is corrupt or cut short (${(e as Error).message})`, true);
    throw new SockcapError('ERR_OPEN', `${name}: read failed: ${(e as Error).message}`, { cause: e });
  } finally {
    // close the file even when the walk stopped early (an error, or a consumer that broke off)
    await raw.return(undefined);
    session.straddleBytes += cur.straddleBytes;
    session.bytesRead += cur.abs;
  }
}

async function* walk(cur: ChunkCursor, info: FileInfo, session: CaptureSession): AsyncGenerator<Batch> {
  if (!(await cur.ensure(4)))
    throw new CaptureFormatError('ERR_TRUNCATED_HEADER', info.name, 0, `file too short for a capture header (${cur.avail()} bytes)`);
  const le = le32(cur.buf, cur.pos);
  const be = be32(cur.buf, cur.pos);
  if (le === PCAP_MAGIC_US || le === PCAP_MAGIC_NS || be === PCAP_MAGIC_US || be === PCAP_MAGIC_NS)
    yield* walkPcap(cur, info, session);
  else if (le === PCAPNG_SHB) yield* walkPcapng(cur, info, session);
  else {
    // (inside gzip, a command that decompresses the file would not help)
    const packed = info.gzip ? null : compressedAs(cur.buf, cur.pos, cur.avail());
    const magic = `(magic 0x${be.toString(16).padStart(8, '0')})`;
    if (packed)
      throw new CaptureFormatError('ERR_BAD_MAGIC', info.name, 0, `${packed}-compressed, not a pcap or pcapng capture ${magic}`, false,
        `sockcap decompresses gzip only: ${info.name === '-' ? `decompress it in the pipe, \`... | ${packed} -dc | sockcap replay -\`` : `pipe it in, \`${packed} -dc ${shellWord(info.name)} | sockcap replay -\``}`);
    throw new CaptureFormatError('ERR_BAD_MAGIC', info.name, 0, `not a pcap or pcapng capture ${magic}`);
  }
}

/**
 * Compressed formats Wireshark's tools read (or users meet) but Node's zlib does not decompress,
 * by their magic bytes; each is named as the command that decompresses it. gzip is read as is.
 */
const COMPRESSED: ReadonlyArray<readonly [magic: readonly number[], name: string]> = [
  [[0x28, 0xb5, 0x2f, 0xfd], 'zstd'],
  [[0x04, 0x22, 0x4d, 0x18], 'lz4'],
  [[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], 'xz'],
  [[0x42, 0x5a, 0x68], 'bzip2'],
];

/** A file name as a shell word (quoted when it needs to be). */
const shellWord = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

function compressedAs(b: Uint8Array, o: number, avail: number): string | null {
  for (const [magic, name] of COMPRESSED) if (avail >= magic.length && magic.every((x, i) => b[o + i] === x)) return name;
  return null;
}

/** Read several inputs in the order given, as one run. */
export async function* readCaptures(inputs: readonly CaptureInput[], session: CaptureSession): AsyncGenerator<Batch> {
  for (const input of inputs) yield* readCapture(input, session);
}

/** The frames of `batch` that pass the capture filter (libpcap's pcap_offline_filter); the rest counted in the file's `filtered`. */
function filtered(batch: Batch, session: CaptureSession, info: FileInfo): Batch {
  const f = session.filter!;
  const out: Batch = [];
  for (const m of batch) if (f.match(m, session.ifaces[m.hdr!.ifidx]!.bigEndian)) out.push(m);
  info.filtered = (info.filtered ?? 0) + batch.length - out.length;
  return out;
}
