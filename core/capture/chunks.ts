import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { Ext } from '../mbuf/mbuf.js';
import type { ChunkZone } from './zone.js';
import { builtin } from '../builtin.js';

/** Size of the fresh chunks files are read in. Records are views into them. */
export const CHUNK_SIZE = 4 << 20;

/**
 * Chunks read ahead of the one being processed: one (double buffering). Three removed the main
 * thread's waits for reads but ran slower over all (measured in one process, alternating: the
 * chunk being parsed was read longer ago, out of cache by then).
 */
export const READ_AHEAD = 1;

/**
 * Read a file in chunks: fresh ones (Mbufs keep pointing into them), or, with a zone, chunks the
 * zone hands out again once nothing references them (then `chunkSize` is the zone's).
 */
export async function* fileChunks(path: string, chunkSize = CHUNK_SIZE, ahead = READ_AHEAD, zone: ChunkZone | null = null): AsyncGenerator<Buffer> {
  const fh = await open(path, 'r');
  if (zone) chunkSize = zone.size;
  // a pipe (`<(tcpdump -w -)`, a FIFO) or a device cannot be read at an offset (ESPIPE): it is
  // read in order instead, one read after another (two in the thread pool at once could
  // return their bytes out of order), each chunk filled until the writer closes its end (a
  // pipe hands over at most its buffer per read, 64 KiB on Linux)
  let inOrder: Promise<unknown> | null = null;
  try {
    if (!(await fh.stat()).isFile()) inOrder = Promise.resolve();
  } catch (e) {
    await fh.close();
    throw e;
  }
  const fillInOrder = async (buf: Buffer): Promise<Buffer> => {
    let n = 0;
    for (let r; n < chunkSize && (r = await fh.read(buf, n, chunkSize - n, null)).bytesRead > 0; ) n += r.bytesRead;
    return buf.subarray(0, n);
  };
  const readAt = (at: number) => {
    const buf = zone ? zone.alloc() : Buffer.allocUnsafeSlow(chunkSize);
    if (inOrder) {
      const p = inOrder.then(() => fillInOrder(buf));
      inOrder = p.catch(() => undefined);
      return p;
    }
    return fh.read(buf, 0, chunkSize, at).then((r) => buf.subarray(0, r.bytesRead));
  };
  // read-ahead: the next chunks are read (in libuv's thread pool) while this one is processed;
  // more than one in flight rides over a read that a busy machine delays
  const queue: Array<Promise<Buffer>> = [];
  let pos = 0; // where the next read starts
  const fill = () => {
    for (; queue.length < ahead; pos += chunkSize) queue.push(readAt(pos));
  };
  // a read never handed out (past the end, or abandoned) gives its chunk back to the zone
  const unused = (b: Buffer | undefined) => {
    if (b && zone) zone.retire(b);
  };
  const drain = async () => {
    for (const q of queue.splice(0)) unused(await q.catch(() => undefined));
  };
  try {
    let at = 0; // file offset of the chunk at the head of the queue
    fill();
    for (;;) {
      const cur: Buffer = await queue.shift()!;
      if (cur.length === 0) return unused(cur);
      at += cur.length;
      if (cur.length < chunkSize) {
        // short read: the end of the file (or a file still being written). Read on right after it,
        // but only once this chunk is handed over: the reader has moved past it then, so a zone
        // can give it back for that read (one chunk for a small file, not two)
        await drain();
        pos = at;
        yield cur;
        fill();
        continue;
      }
      fill();
      yield cur;
    }
  } finally {
    await drain();
    await fh.close();
  }
}

/** Chunks of any byte stream (stdin, a socket), as Buffers. */
export async function* streamChunks(stream: AsyncIterable<Uint8Array | string>): AsyncGenerator<Buffer> {
  for await (const c of stream) {
    if (typeof c === 'string') yield Buffer.from(c, 'latin1');
    else yield Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
  }
}

/** Decompress gzip chunks (big output chunks, so few records straddle two of them). */
export async function* gunzipChunks(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  // loaded here, for gzip captures only
  const { createGunzip } = builtin<typeof import('node:zlib')>('node:zlib');
  const gz = createGunzip({ chunkSize: 1 << 20 });
  const input = Readable.from(src);
  input.on('error', (e) => gz.destroy(e));
  input.pipe(gz);
  for await (const c of gz) yield c as Buffer;
}

/**
 * A read position over a sequence of chunks. `ensure(n)` makes n bytes contiguous at `pos`:
 * inside one chunk that is free; a record straddling two chunks is the one case that copies
 * (exactly the record's bytes), counted in `straddleBytes`.
 */
export class ChunkCursor {
  buf: Buffer = Buffer.alloc(0);
  pos = 0;
  /** The shared storage `buf` belongs to (a zone's chunk), for the Mbufs cut from it; else null. */
  ext: Ext | null = null;
  /** Absolute offset (in the decompressed stream) of `buf[pos]`. */
  abs = 0;
  straddleBytes = 0;
  private after: { buf: Buffer; pos: number } | null = null;
  private done = false;

  constructor(
    private readonly it: AsyncIterator<Buffer>,
    /** Where the memory records live is registered (CaptureSession.memory). */
    private readonly memory?: WeakSet<ArrayBufferLike>,
    /**
     * The zone the chunks come from: each chunk is retired to it once the cursor has moved past
     * it. Callers process every batch before they ask for more bytes (ensure), so by then nothing
     * but the queues that count their references (Ext.refs) holds the chunk.
     */
    private readonly zone: ChunkZone | null = null,
  ) {}

  private setBuf(buf: Buffer, pos: number): void {
    this.buf = buf;
    this.pos = pos;
    this.ext = this.zone ? this.zone.extOf(buf) : null;
  }

  /** Bytes available at `pos` in the current chunk. */
  avail(): number {
    return this.buf.length - this.pos;
  }

  advance(n: number): void {
    this.pos += n;
    this.abs += n;
    if (this.pos === this.buf.length && this.after) {
      // the straddle copy is done with: go on in the chunk after it
      this.setBuf(this.after.buf, this.after.pos);
      this.after = null;
    }
  }

  private async pull(): Promise<{ buf: Buffer; pos: number } | null> {
    if (this.after) {
      const a = this.after;
      this.after = null;
      return a;
    }
    while (!this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else if (r.value.length > 0) {
        this.memory?.add(r.value.buffer);
        return { buf: r.value, pos: 0 };
      }
    }
    return null;
  }

  /**
   * Make `n` bytes contiguous at `pos`. Returns false at end of input with fewer than `n` bytes
   * left; `avail()` then tells how many there were.
   */
  async ensure(n: number): Promise<boolean> {
    for (;;) {
      const have = this.avail();
      if (have >= n) return true;
      if (have === 0) {
        this.zone?.retire(this.buf);
        const next = await this.pull();
        if (!next) return false;
        this.setBuf(next.buf, next.pos);
        continue;
      }
      return this.join(n, have);
    }
  }

  private async join(n: number, have: number): Promise<boolean> {
    const tmp = Buffer.allocUnsafe(n);
    tmp.set(this.buf.subarray(this.pos), 0);
    this.zone?.retire(this.buf);
    let filled = have;
    while (filled < n) {
      const next = await this.pull();
      if (!next) {
        this.setBuf(tmp.subarray(0, filled), 0);
        return false;
      }
      const k = Math.min(n - filled, next.buf.length - next.pos);
      tmp.set(next.buf.subarray(next.pos, next.pos + k), filled);
      filled += k;
      if (next.pos + k < next.buf.length) this.after = { buf: next.buf, pos: next.pos + k };
      else this.zone?.retire(next.buf);
    }
    this.straddleBytes += n;
    this.memory?.add(tmp.buffer);
    this.setBuf(tmp, 0);
    return true;
  }
}
