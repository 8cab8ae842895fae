import { once } from 'node:events';
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { constants, mkdirSync, openSync, writevSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Writable } from 'node:stream';
import { SockcapError } from '../errors.js';
import { type Ext, ext_release } from '../mbuf/mbuf.js';

/** Bytes gathered before a flush is worth it. */
const FLUSH_BYTES = 4 << 20;
/** Views per writev call (IOV_MAX is 1024 on Linux). */
const IOV_MAX = 1024;

/**
 * Where output bytes go. Writers push views (payload views still reference capture memory, so
 * nothing is copied); `flush()` hands them to the file or stream with writev and honours
 * backpressure; `close()` flushes and closes. A view of a zone's chunk holds a reference to it
 * (its Ext) until it has been written.
 */
export abstract class ByteSink {
  protected pending: Uint8Array[] = [];
  protected pendingBytes = 0;
  /** The storage the pending views hold references to (one entry per reference). */
  private exts: Ext[] = [];
  /**
   * The run of bytes pushRange() is extending: [runStart, runEnd) of runBuf's memory (offsets in
   * its ArrayBuffer), under runExt's reference. Made a view only when the run ends.
   */
  private runBuf: Uint8Array | null = null;
  private runStart = 0;
  private runEnd = 0;
  private runExt: Ext | null = null;
  /** Bytes written so far. */
  written = 0;

  /** Bytes pushed so far: the offset in the output of the next byte pushed. */
  get position(): number {
    return this.written + this.pendingBytes;
  }

  push(v: Uint8Array, ext: Ext | null = null): void {
    if (this.runBuf) this.endRun();
    this.pending.push(v);
    this.pendingBytes += v.length;
    if (ext) {
      ext.refs++;
      this.exts.push(ext);
    }
  }

  /**
   * Bytes [off, off+len) of `b`, under the reference `ext`: the same as push(b.subarray(...)), but
   * bytes that continue the last range pushed, in the same memory under the same reference, extend
   * it instead of making a view and an iovec of their own. A replay's -w of a classic pcap pushes
   * each record as it lies in the read chunk, header and frame: consecutive records are one range.
   */
  pushRange(b: Uint8Array, off: number, len: number, ext: Ext | null): void {
    const start = b.byteOffset + off;
    this.pendingBytes += len;
    if (this.runBuf !== null && start === this.runEnd && b.buffer === this.runBuf.buffer && ext === this.runExt) {
      this.runEnd = start + len;
      return;
    }
    if (this.runBuf) this.endRun();
    this.runBuf = b;
    this.runStart = start;
    this.runEnd = start + len;
    this.runExt = ext;
    if (ext) {
      ext.refs++;
      this.exts.push(ext);
    }
  }

  /** The run pushRange() was extending becomes a pending view (its bytes were counted as pushed). */
  private endRun(): void {
    const b = this.runBuf!;
    this.pending.push(new Uint8Array(b.buffer, this.runStart, this.runEnd - this.runStart));
    this.runBuf = null;
    this.runExt = null;
  }

  /** Flush only when enough has gathered: call once per batch. */
  async maybeFlush(): Promise<void> {
    if (this.pendingBytes >= FLUSH_BYTES) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.runBuf) this.endRun();
    if (this.pending.length === 0) return;
    const views = this.pending;
    const exts = this.exts;
    this.pending = [];
    this.exts = [];
    this.written += this.pendingBytes;
    this.pendingBytes = 0;
    try {
      await this.writeViews(views);
    } finally {
      ext_release(exts);
    }
  }

  /**
   * Overwrite `bytes` at offset `at` of what was written already (a header field that grew), when
   * the sink can: a file, at close. False for a stream (its bytes are gone).
   */
  patchAt(_at: number, _bytes: Uint8Array): boolean {
    return false;
  }

  protected abstract writeViews(views: Uint8Array[]): Promise<void>;
  abstract close(): Promise<void>;
}

/** A file written with FileHandle.writev. */
export class FileSink extends ByteSink {
  /** Bytes to overwrite at close, in order. */
  private readonly patches: Array<[number, Uint8Array]> = [];

  private constructor(
    private readonly fh: FileHandle,
    readonly path: string,
    /** A regular file, which can be written at an offset (not a FIFO or a device). */
    private readonly seekable: boolean,
  ) {
    super();
  }

  override patchAt(at: number, bytes: Uint8Array): boolean {
    if (!this.seekable) return false;
    this.patches.push([at, bytes]);
    return true;
  }

  static async open(path: string): Promise<FileSink> {
    try {
      const fh = await open(path, 'w');
      return new FileSink(fh, path, (await fh.stat()).isFile());
    } catch (e) {
      throw new SockcapError('ERR_WRITE', `${path}: cannot write: ${(e as Error).message}`, { cause: e });
    }
  }

  protected async writeViews(views: Uint8Array[]): Promise<void> {
    try {
      for (let i = 0; i < views.length; i += IOV_MAX) await writeAll(this.fh, views.slice(i, i + IOV_MAX));
    } catch (e) {
      throw new SockcapError('ERR_WRITE', `${this.path}: write failed: ${(e as Error).message}`, { cause: e });
    }
  }

  async close(): Promise<void> {
    try {
      await this.flush();
      for (const [at, b] of this.patches) await this.fh.write(b, 0, b.length, at);
    } catch (e) {
      throw e instanceof SockcapError ? e : new SockcapError('ERR_WRITE', `${this.path}: write failed: ${(e as Error).message}`, { cause: e });
    } finally {
      await this.fh.close();
    }
  }
}

async function writeAll(fh: FileHandle, views: Uint8Array[]): Promise<void> {
  let total = 0;
  for (const v of views) total += v.length;
  let { bytesWritten } = await fh.writev(views);
  // short writes are rare on files; finish the remainder
  while (bytesWritten < total) bytesWritten += (await fh.writev(viewsAfter(views, bytesWritten))).bytesWritten;
}

/** Zero bytes, shared: zeroViews hands out views of it. */
const ZEROS = new Uint8Array(64 << 10);

/** `n` zero bytes as views of one shared buffer (a hole's bytes, zero-filled), never to be written into. */
export function zeroViews(n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (; n > 0; n -= ZEROS.length) out.push(n >= ZEROS.length ? ZEROS : ZEROS.subarray(0, n));
  return out;
}

/** The first `n` bytes of `views`, as views (the pieces before viewsAfter(views, n)). */
export function viewsBefore(views: readonly Uint8Array[], n: number): Uint8Array[] {
  const head: Uint8Array[] = [];
  for (const v of views) {
    if (n <= 0) break;
    head.push(n >= v.length ? v : v.subarray(0, n));
    n -= v.length;
  }
  return head;
}

/** What is left of `views` after the first `skip` bytes (views of the same bytes: no copy). */
export function viewsAfter(views: readonly Uint8Array[], skip: number): Uint8Array[] {
  const rest: Uint8Array[] = [];
  for (const v of views) {
    if (skip >= v.length) skip -= v.length;
    else {
      rest.push(v.subarray(skip));
      skip = 0;
    }
  }
  return rest;
}

/**
 * open(2) flags for a file sockcap makes in an output directory (extract's), and for reopening
 * one. Names come from the capture, so they are predictable: a symbolic link planted under one
 * (a shared directory) is not followed (ELOOP), and a FIFO is not waited on (ENXIO with no
 * reader, ESPIPE at the positioned write): each is an error naming the file, never a write
 * elsewhere or a hang. (0 where the platform has no such flag.)
 */
const SAFE = (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);
export const O_MAKE = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | SAFE;
export const O_REOPEN = constants.O_WRONLY | SAFE;

/**
 * Create (or truncate) a file of an output directory with O_MAKE, making the directories its name
 * has first when they are missing (a template with `/`, as tcpflow's -T %A/%a/...): the first
 * open tells, so names without directories cost nothing more.
 */
export function openMaking(path: string): number {
  try {
    return openSync(path, O_MAKE);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    mkdirSync(dirname(path), { recursive: true });
    return openSync(path, O_MAKE);
  }
}

/** The error for a file of an output directory that cannot be written, with what its code means there. */
export function outputFileError(path: string, e: unknown): SockcapError {
  const code = (e as NodeJS.ErrnoException).code;
  const why = code === 'ELOOP' ? ' (a symbolic link: not followed)' : code === 'ENXIO' || code === 'ESPIPE' ? ' (not a regular file)' : '';
  return new SockcapError('ERR_WRITE', `${path}: cannot write: ${(e as Error).message}${why}`, { cause: e });
}

/** Write all of `views` (n bytes) at `pos` of `fd`: IOV_MAX views at a time, on over short writes. */
export function writeAllSync(fd: number, views: readonly Uint8Array[], n: number, pos: number): void {
  let done = writevSync(fd, views.length > IOV_MAX ? views.slice(0, IOV_MAX) : (views as Uint8Array[]), pos);
  while (done < n) done += writevSync(fd, viewsAfter(views, done).slice(0, IOV_MAX), pos + done);
}

/** A Node Writable (stdout, a socket, a test's collector), with backpressure. */
export class StreamSink extends ByteSink {
  constructor(private readonly ws: Writable, private readonly end = true) {
    super();
  }

  /**
   * Resolves once the stream has handed the last view on (its write callback), not merely buffered
   * it: the views may be of a zone's chunks, which are reused once flush() lets them go. This also
   * honours backpressure (everything before the last view is written by then). A write error
   * still reaches the stream's 'error' listeners (EPIPE on stdout ends the run quietly).
   */
  protected writeViews(views: Uint8Array[]): Promise<void> {
    const ws = this.ws;
    return new Promise<void>((resolve) => {
      ws.cork();
      for (let i = 0; i < views.length - 1; i++) ws.write(views[i]);
      ws.write(views[views.length - 1], () => resolve());
      ws.uncork();
    });
  }

  async close(): Promise<void> {
    await this.flush();
    if (this.end) {
      this.ws.end();
      await once(this.ws, 'finish');
    }
  }
}
