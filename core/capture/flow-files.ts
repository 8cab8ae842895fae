import { closeSync, open as openAsync, writevSync } from 'node:fs';
import { join } from 'node:path';
import { createHash, type Hash } from 'node:crypto';
import { SockcapError } from '../errors.js';
import { viewsAfter } from './sink.js';
import type { Connection, Dir } from '../net/in-pcb.js';

/** One direction's file: the bytes gathered for its next write. */
interface FlowFile {
  path: string;
  name: string;
  /** Bytes waiting to be written (copied out of capture memory; see FlowFiles). */
  buf: Buffer | null;
  used: number;
  bytes: number;
  opened: boolean;
  hash: Hash | null;
  /** Views waiting for the file to be opened. */
  queued: Uint8Array[];
  opening: boolean;
  /** The connection closed: close the descriptor once the last bytes are written. */
  done: boolean;
}

/** What the index says of one written direction. */
export interface FlowIndexEntry {
  stream: number;
  dir: Dir;
  src: string;
  dst: string;
  file: string;
  bytes: number;
  sha256?: string;
}

/** A direction's bytes are written when this much has gathered, or when its connection closes. */
const FLUSH_AT = 32 << 10;
/** All directions' buffers together: with many live directions each flushes earlier (down to 4 KiB). */
const BUFFERS_MAX = 24 << 20;
/** Files being opened at once (more only queue up in the kernel: creates in one directory serialise). */
const OPENS_IN_FLIGHT = 32;
/** Files that may wait for an open slot before the capture waits too. */
const WAITING_MAX = 2048;
/** Bytes that may wait for files being opened before the capture waits too. */
const QUEUED_MAX = 16 << 20;

function pad4(addr: string): string {
  const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+):(\d+)$/.exec(addr);
  if (v4) return `${v4.slice(1, 5).map((x) => x.padStart(3, '0')).join('.')}.${v4[5]!.padStart(5, '0')}`;
  const v6 = /^\[(.*)\]:(\d+)$/.exec(addr)!;
  return `${v6[1]!.replace(/:/g, '.')}.${v6[2]!.padStart(5, '0')}`;
}

function splitPadded(p: string): [string, string] {
  const i = p.lastIndexOf('.');
  return [p.slice(0, i), p.slice(i + 1)];
}

/**
 * Expand a file-name template: %A/%a source address/port, %B/%b destination (tcpflow's, zero
 * padded so names sort), %# stream index, %d direction (c2s or s2c), %T start time (epoch s), %%.
 */
export function flowName(template: string, c: Connection, dir: Dir): string {
  const [src, dst] = dir === 'c2s' ? [c.clientName, c.serverName] : [c.serverName, c.clientName];
  const [sa, sp] = splitPadded(pad4(src));
  const [da, dp] = splitPadded(pad4(dst));
  return template.replace(/%([AaBb#dT%])/g, (_, k: string) =>
    k === 'A' ? sa : k === 'a' ? sp : k === 'B' ? da : k === 'b' ? dp : k === '#' ? String(c.stream)
      : k === 'd' ? dir : k === 'T' ? String(Math.floor(c.firstTs)) : '%');
}

/**
 * Writes every direction of every connection to its own file in `dir` (tcpflow's layout), in one
 * pass. The bytes are copied once into a small buffer per direction (counted in `copiedBytes`):
 * held as views, a direction that fills slowly would pin read chunks across the whole file until
 * its connection closes; copied, memory is bounded by 32 KiB per live direction and 24 MiB in all
 * (beyond 384 live directions each flushes earlier, down to 4 KiB). Directions with
 * no bytes get no file. A name that repeats (the same 4-tuple reused by a later
 * stream) gets `-c<stream>`.
 */
export class FlowFiles {
  private readonly files = new Map<Connection, Partial<Record<Dir, FlowFile>>>();
  private readonly used = new Set<string>();
  written = 0;
  filesWritten = 0;
  /** Bytes copied on the way to the files (all of them: see above). */
  copiedBytes = 0;
  /** Open descriptors, least recently used first (opening a file costs more than writing 64 KiB). */
  private readonly fds = new Map<FlowFile, number>();
  /** Most descriptors kept open; lowered to what the system allows when it says EMFILE. */
  private maxOpen = 4096;
  private opening = 0;
  /** Files waiting for one of the OPENS_IN_FLIGHT slots. */
  private readonly toOpen: FlowFile[] = [];
  private toOpenHead = 0;
  /** Bytes waiting for files being opened (they pin the read chunks they view). */
  private queuedBytes = 0;
  /** Bytes of all directions' buffers (their sizes, not what they hold). */
  private bufBytes = 0;
  private readonly wakers: Array<() => void> = [];
  private failure: Error | null = null;

  constructor(
    private readonly dir: string,
    private readonly template: string,
    private readonly hash: boolean,
    /** Each finished direction, for the index. */
    private readonly onFile: (e: FlowIndexEntry) => void,
  ) {}

  data(c: Connection, d: Dir, chunk: readonly Uint8Array[]): void {
    let per = this.files.get(c);
    if (!per) this.files.set(c, (per = {}));
    const f = (per[d] ??= this.make(c, d));
    for (const v of chunk) {
      f.hash?.update(v);
      f.bytes += v.length;
      this.copiedBytes += v.length;
      let off = 0;
      while (off < v.length) {
        if (!f.buf || f.used === f.buf.length) this.grow(f, v.length - off);
        const k = Math.min(v.length - off, f.buf!.length - f.used);
        f.buf!.set(v.subarray(off, off + k), f.used);
        f.used += k;
        off += k;
        if (f.used >= this.flushAt() || this.bufBytes > BUFFERS_MAX) this.flush(f);
      }
    }
  }

  /** Where a direction's buffer is flushed: 32 KiB, less when many directions share the budget. */
  private flushAt(): number {
    return Math.max(4096, Math.min(FLUSH_AT, Math.floor(BUFFERS_MAX / Math.max(1, 2 * this.files.size))));
  }

  /** Start at the first chunk's size (most flows are short); on the next chunk go to the flush size. */
  private grow(f: FlowFile, want: number): void {
    const at = this.flushAt();
    const size = f.buf ? Math.max(at, f.used + 1) : Math.min(at, Math.max(256, want));
    const nb = Buffer.allocUnsafe(size);
    if (f.buf) nb.set(f.buf.subarray(0, f.used));
    this.bufBytes += size - (f.buf?.length ?? 0);
    f.buf = nb;
  }

  /** The connection left the table: write what is left of both directions and index them. */
  closed(c: Connection): void {
    const per = this.files.get(c);
    this.files.delete(c);
    if (!per) return;
    for (const d of ['c2s', 's2c'] as const) {
      const f = per[d];
      if (!f) continue;
      this.flush(f);
      this.drop(f);
      f.done = true;
      if (!f.opening) this.release(f);
      this.onFile({
        stream: c.stream, dir: d, src: d === 'c2s' ? c.clientName : c.serverName, dst: d === 'c2s' ? c.serverName : c.clientName,
        file: f.name, bytes: f.bytes, ...(f.hash ? { sha256: f.hash.digest('hex') } : {}),
      });
    }
  }

  private make(c: Connection, d: Dir): FlowFile {
    let name = flowName(this.template, c, d);
    if (this.used.has(name)) name = `${name}-c${c.stream}`;
    this.used.add(name);
    return { path: join(this.dir, name), name, buf: null, used: 0, bytes: 0, opened: false,
      hash: this.hash ? createHash('sha256') : null, queued: [], opening: false, done: false };
  }

  /**
   * Open a file in libuv's thread pool (creating a file is slow on some filesystems: several at a
   * time, while the capture goes on); its queued bytes are written when the descriptor arrives.
   */
  /** Queue a file for opening; next() starts it when a slot and a descriptor are free. */
  private open(f: FlowFile): void {
    f.opening = true;
    this.toOpen.push(f);
    this.next();
  }

  /**
   * Start queued opens while fewer than OPENS_IN_FLIGHT are running and the descriptor budget has
   * room (idle descriptors are closed to make it), then wake whoever waits in settle().
   */
  private next(): void {
    while (this.toOpenHead < this.toOpen.length && this.opening < OPENS_IN_FLIGHT) {
      if (this.fds.size + this.opening >= this.maxOpen) {
        if (this.fds.size === 0) break;
        this.closeOldest(Math.max(1, Math.min(this.fds.size, this.fds.size >> 4)));
        continue;
      }
      this.start(this.toOpen[this.toOpenHead++]!);
    }
    if (this.toOpenHead === this.toOpen.length) {
      this.toOpen.length = 0;
      this.toOpenHead = 0;
    }
    this.wake();
  }

  /** Open in libuv's thread pool; the queued bytes are written when the descriptor arrives. */
  private start(f: FlowFile): void {
    this.opening++;
    openAsync(f.path, f.opened ? 'a' : 'w', (err, fd) => {
      this.opening--;
      if (err && (err.code === 'EMFILE' || err.code === 'ENFILE') && this.fds.size + this.opening > 0) {
        // the system's limit is lower than ours: keep fewer open and try this one again later
        this.maxOpen = Math.max(1, this.fds.size + this.opening - 8);
        this.toOpen.splice(this.toOpenHead, 0, f);
        return this.next();
      }
      f.opening = false;
      if (err) {
        this.failure ??= new SockcapError('ERR_WRITE', `${f.path}: cannot write: ${err.message}`, { cause: err });
        return this.next();
      }
      if (!f.opened) this.filesWritten++;
      f.opened = true;
      this.fds.set(f, fd);
      try {
        const q = f.queued.splice(0);
        for (const v of q) this.queuedBytes -= v.length;
        this.writeAll(f, fd, q);
      } catch (e) {
        this.failure ??= e as Error;
      }
      if (f.done) this.release(f);
      this.next();
    });
  }

  /** writev the buffers, finishing short writes. */
  private writeAll(f: FlowFile, fd: number, views: Uint8Array[]): void {
    try {
      for (let i = 0; i < views.length; ) {
        const part = views.slice(i, i + 1024);
        let want = 0;
        for (const v of part) want += v.length;
        let done = writevSync(fd, part);
        this.written += done;
        while (done < want) {
          // a short write: write the rest
          const k = writevSync(fd, viewsAfter(part, done));
          done += k;
          this.written += k;
        }
        i += part.length;
      }
    } catch (e) {
      throw new SockcapError('ERR_WRITE', `${f.path}: cannot write: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Close a file's descriptor if it has one. */
  private release(f: FlowFile): void {
    const fd = this.fds.get(f);
    if (fd === undefined) return;
    this.fds.delete(f);
    closeSync(fd);
  }

  private wake(): void {
    for (const w of this.wakers.splice(0)) w();
  }

  /**
   * Wait while too many bytes wait for files being opened (once per batch; `all`: until every open
   * is done); rethrows a write failure.
   */
  async settle(all = false): Promise<void> {
    while (all ? this.opening > 0 || this.toOpen.length > this.toOpenHead
      : this.queuedBytes > QUEUED_MAX || this.toOpen.length - this.toOpenHead > WAITING_MAX)
      await new Promise<void>((r) => this.wakers.push(r));
    if (this.failure) throw this.failure;
  }

  private closeOldest(n: number): void {
    for (const [f, fd] of this.fds) {
      if (n-- <= 0) break;
      this.fds.delete(f);
      closeSync(fd);
    }
  }

  /** Close every descriptor (end of the run). */
  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }

  /**
   * Write what has gathered: synchronously when the file is open (a write to the page cache costs
   * less than a thread-pool round trip, and the buffer is reused at once), else hand it over to
   * the pending open.
   */
  /** Let go of a direction's buffer (its bytes are written or queued). */
  private drop(f: FlowFile): void {
    this.bufBytes -= f.buf?.length ?? 0;
    f.buf = null;
  }

  private flush(f: FlowFile): void {
    if (!f.used) return;
    const data = f.buf!.subarray(0, f.used);
    f.used = 0;
    const fd = this.fds.get(f);
    if (fd !== undefined) {
      this.fds.delete(f);
      this.fds.set(f, fd);
      this.writeAll(f, fd, [data]);
      // written: the buffer is reused for the flow's next bytes, unless buffers are over budget
      if (this.bufBytes > BUFFERS_MAX) this.drop(f);
      return;
    }
    this.drop(f); // handed over to the pending open
    f.queued.push(data);
    this.queuedBytes += data.length;
    if (!f.opening) this.open(f);
  }
}
