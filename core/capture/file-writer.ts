import type { Worker } from 'node:worker_threads';
import { builtin } from '../builtin.js';
import { closeSync, openSync } from 'node:fs';
import { O_MAKE, O_REOPEN, openMaking, outputFileError, viewsAfter, viewsBefore, writeAllSync } from './sink.js';
import { SockcapError } from '../errors.js';

/** The ring's control words (an Int32Array over its own SharedArrayBuffer). */
const HEAD = 0; // bytes published by the main thread (a uint32 counter, wrapping)
const TAIL = 1; // bytes the worker is done with
const SEQ = 2; // bumped with every publish and at stop: what the worker sleeps on
const STOP = 3; // set once: write what is published, then end
const DEAD = 4; // set by the worker if its loop itself failed (it then consumes nothing more)
/** A record: u32 length (a multiple of REC), u32 name bytes, u32 data bytes, u32 flags, f64 file offset; then the name, the data. */
const REC = 32;
const CREATE = 1;
/** A record that only fills the ring's end (the next one did not fit there). */
const SKIP = 2;

/**
 * The worker's program, as text (the CLI is one bundle; a second file would need a path of its
 * own). It takes records off the ring in order: for each, open the file (created and truncated
 * the first time, reopened after), write the bytes at their offset, close it. It keeps nothing
 * between records, no descriptor either: the files it gets are written once or twice each. After
 * the first failure it writes nothing more but goes on consuming (so the main thread never waits
 * on a full ring for nothing) and reports that failure; a record that is not one (a bug) ends its
 * loop with DEAD set, which the main thread checks whenever it waits.
 */
const PROGRAM = `
const { parentPort, workerData } = require('node:worker_threads');
const { openSync, writeSync, closeSync, mkdirSync } = require('node:fs');
const { dirname } = require('node:path');
const { ctl: c, ring: r, prefix, make, reopen } = workerData;
const ctl = new Int32Array(c), ring = Buffer.from(r), u32 = new Uint32Array(r), f64 = new Float64Array(r);
const mask = ring.length - 1;
let failed = false, t = 0;
try {
  for (;;) {
    const seq = Atomics.load(ctl, ${SEQ});
    const h = Atomics.load(ctl, ${HEAD}) >>> 0;
    let since = 0;
    while (t !== h) {
      const at = t & mask, len = u32[at >> 2], nb = u32[(at >> 2) + 1], n = u32[(at >> 2) + 2], flags = u32[(at >> 2) + 3];
      if (len < ${REC} || len % ${REC} || at + len > ring.length || ${REC} + nb + n > len || flags > 3) throw new Error('corrupt record at ' + at);
      if (!(flags & ${SKIP}) && !failed) {
        const path = prefix + ring.toString('utf8', at + ${REC}, at + ${REC} + nb);
        const pos = f64[(at >> 3) + 2], off = at + ${REC} + nb;
        let fd = -1;
        try {
          try {
            fd = openSync(path, flags & ${CREATE} ? make : reopen);
          } catch (e) {
            // a name with directories (a template with '/'): made at its first file, as openMaking does
            if (e.code !== 'ENOENT' || !(flags & ${CREATE})) throw e;
            mkdirSync(dirname(path), { recursive: true });
            fd = openSync(path, make);
          }
          for (let done = 0; done < n; ) done += writeSync(fd, ring, off + done, n - done, pos + done);
          closeSync(fd);
        } catch (e) {
          failed = true;
          parentPort.postMessage({ path, message: e.message, code: e.code });
          if (fd >= 0) try { closeSync(fd); } catch {}
        }
      }
      t = (t + len) >>> 0;
      if ((since += len) >= ${64 << 10}) {
        Atomics.store(ctl, ${TAIL}, t | 0);
        Atomics.notify(ctl, ${TAIL});
        since = 0;
      }
    }
    Atomics.store(ctl, ${TAIL}, t | 0);
    Atomics.notify(ctl, ${TAIL});
    if (Atomics.load(ctl, ${STOP}) && Atomics.load(ctl, ${HEAD}) >>> 0 === t) break;
    Atomics.wait(ctl, ${SEQ}, seq);
  }
} catch (e) {
  Atomics.store(ctl, ${DEAD}, 1);
  Atomics.notify(ctl, ${TAIL});
  parentPort.postMessage({ path: '(file writer thread)', message: e.message });
}
`;

/**
 * Bytes of the ring (a power of two): what the main thread may be ahead of the worker by. On
 * 100,000 short flows the worker is the slower thread whatever the size: with 8 MiB 122,000 of the
 * 400,000 writes were made on the main thread because the ring was full, with 2 MiB 141,000, in
 * the same time, and the peak RSS 7 MiB lower (the ring's pages, and the copies waiting in them).
 */
export const RING_BYTES = 2 << 20;

/** Atomics.waitAsync (in Node since 16; its type is in ES2024's library, newer than this project's target). */
type WaitAsync = (a: Int32Array<SharedArrayBuffer>, i: number, v: number, ms: number) => { async: boolean; value: Promise<string> | string };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

/** A failure the worker reported: the file, and what went wrong. */
export interface WriterFailure {
  path: string;
  message: string;
  /** The system error's code, when it was one (ENOSPC, ELOOP, ...). */
  code?: string;
}

/**
 * Files written by a worker thread, for extract's small flows. Writing a few hundred bytes is
 * cheap; creating, opening and closing the file is not, and on 100,000 short flows those system
 * calls (300,000 files: open, write, close) took most of extract's main thread, which meanwhile
 * did no TCP. Here the main thread copies each chunk it is handed (views of capture memory; the
 * one copy of stream bytes in sockcap's output path, 1-2 KB a flow, where the system calls around
 * it cost ~10 µs) with the file's name and offset into a ring of shared memory, and the worker
 * makes the system calls on the other CPU.
 *
 * The ring is single-producer, single-consumer: the main thread advances HEAD (publishing at the
 * end of each batch, and whenever it must wait), the worker TAIL. Its size bounds what the writer
 * holds. When it is full, a file with none of its writes left in it (a new file, or one whose
 * last record the worker has passed) is written on the main thread (direct()), so the two threads
 * share the system calls when the worker is the slower; any other write waits (Atomics.wait) for
 * the worker to make room.
 * Before, each batch went to the worker as a transferred 1 MiB buffer plus a cloned array of
 * paths; the buffers the main thread did not keep came back to the allocator, which on 100,000
 * short flows left ~40 MiB of malloc heap at the peak (and paths in the old generation).
 *
 * Writes of one file are in order (one worker, records in order).
 */
export class SmallFileWriter {
  private readonly worker: Worker;
  private readonly ctl: Int32Array<SharedArrayBuffer>;
  private readonly ring: Buffer;
  private readonly u32: Uint32Array<SharedArrayBuffer>;
  private readonly f64: Float64Array<SharedArrayBuffer>;
  private readonly mask: number;
  /** Bytes the main thread has put in the ring (a uint32 counter), and of those published. */
  private head = 0;
  private published = 0;
  /** Stream bytes copied into the ring: the one copy of stream bytes on extract's output path. */
  copied = 0;
  /** Files made, and later writes made, on the main thread because the ring was full (direct()). */
  directFiles = 0;
  directWrites = 0;
  /** The first failure the worker reported, or the worker's own death. */
  failure: WriterFailure | null = null;
  private exited: Promise<void>;

  constructor(
    /** Prepended to every name (the output directory, with its separator). */
    private readonly prefix: string,
    /** The ring's size, a power of two of at least 4 KiB (tests make it small). */
    private readonly ringBytes = RING_BYTES,
  ) {
    if (ringBytes < 4096 || (ringBytes & (ringBytes - 1)) !== 0) throw new RangeError(`ring size ${ringBytes} is not a power of two of at least 4096`);
    // worker_threads is loaded by the first writer (extract)
    const threads = builtin<typeof import('node:worker_threads')>('node:worker_threads');
    const ctl = new SharedArrayBuffer(64);
    const ring = new SharedArrayBuffer(ringBytes);
    this.ctl = new Int32Array(ctl);
    this.ring = Buffer.from(ring);
    this.u32 = new Uint32Array(ring);
    this.f64 = new Float64Array(ring);
    this.mask = ringBytes - 1;
    // its program is a loop of system calls: 8 MiB of code range, not V8's default 128 (under a
    // `ulimit -v` that reservation, which V8 cannot fail gracefully, killed the process), and a
    // young generation of 1 MiB (its garbage is a path string per file; a --max-semi-space-size
    // set in the process when the worker starts wins over it: the executable sets its own back to
    // V8's default as it starts, cmd/heap-flags.ts)
    this.worker = new threads.Worker(PROGRAM, {
      eval: true,
      workerData: { ctl, ring, prefix, make: O_MAKE, reopen: O_REOPEN },
      resourceLimits: { codeRangeSizeMb: 8, maxYoungGenerationSizeMb: 1 },
    });
    // the worker never keeps the process alive on its own; settle() is what waits for it
    this.worker.unref();
    this.worker.on('message', (f: WriterFailure) => {
      this.failure ??= f;
    });
    this.worker.on('error', (e) => {
      this.failure ??= { path: '(file writer thread)', message: e.message };
      Atomics.store(this.ctl, DEAD, 1);
    });
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
  }

  /** Bytes in the ring the worker has not finished with (written or not yet published). */
  get backlog(): number {
    return (this.head - Atomics.load(this.ctl, TAIL)) >>> 0;
  }

  /**
   * Write `n` bytes of `views` (copied now) at `pos` of the file `name`, creating it when `create`;
   * `after` is what this returned for the file's previous write (without it, a write that is not
   * the first waits for room in a full ring). Returns the file's place in the ring after this
   * write, for its next one.
   */
  write(name: string, views: readonly Uint8Array[], n: number, pos: number, create: boolean, after = this.head): number {
    const nb = Buffer.byteLength(name);
    // a record takes at most a quarter of the ring (larger chunks go in pieces): it always fits
    const most = (this.ringBytes >> 2) - REC - nb;
    if (most < 1) throw new RangeError(`file name of ${nb} bytes is too long for a ring of ${this.ringBytes}`);
    if (n > most) {
      for (let done = 0; done < n; done += most) {
        const m = Math.min(most, n - done);
        after = this.write(name, viewsBefore(viewsAfter(views, done), m), m, pos + done, create && done === 0, after);
      }
      return after;
    }
    const len = (REC + nb + n + REC - 1) & ~(REC - 1);
    let at = this.head & this.mask;
    // a record is never split across the ring's end: the end is skipped
    const skip = at + len > this.ringBytes ? this.ringBytes - at : 0;
    const backlog = this.backlog;
    if (this.ringBytes - backlog < skip + len) {
      // the worker is behind: the file is written here, from the views, rather than waiting for
      // room, when none of its writes is in the ring (a new file's cannot be; an older file's
      // last one ended at `after`: it is done once the worker has moved past that), so the order
      // of its writes holds; other writes wait
      if (create || ((this.head - after) >>> 0) >= backlog) return this.direct(name, views, n, pos, create);
      this.room(skip + len);
    }
    if (skip) {
      this.header(at, skip, 0, 0, SKIP, 0);
      this.head = (this.head + skip) >>> 0;
      at = 0;
    }
    this.header(at, len, nb, n, create ? CREATE : 0, pos);
    this.ring.write(name, at + REC, 'utf8');
    let p = at + REC + nb;
    for (const v of views) {
      this.ring.set(v, p);
      p += v.length;
    }
    this.head = (this.head + len) >>> 0;
    this.copied += n;
    // the worker starts on a long batch before its end
    if (((this.head - this.published) >>> 0) >= this.ringBytes >> 2) this.flush();
    return this.head;
  }

  /**
   * Write the file on this thread (creating it when `create`). Returns where the worker is: none
   * of the file's writes is in the ring past that.
   */
  private direct(name: string, views: readonly Uint8Array[], n: number, pos: number, create: boolean): number {
    this.flush(); // the worker goes on with what is staged meanwhile
    const path = this.prefix + name;
    let fd = -1;
    try {
      fd = create ? openMaking(path) : openSync(path, O_REOPEN);
      writeAllSync(fd, views, n, pos);
      closeSync(fd);
    } catch (e) {
      if (fd >= 0) closeSync(fd);
      throw outputFileError(path, e);
    }
    if (create) this.directFiles++;
    else this.directWrites++;
    return (this.head - this.backlog) >>> 0;
  }

  private header(at: number, len: number, nb: number, n: number, flags: number, pos: number): void {
    const w = at >> 2;
    this.u32[w] = len;
    this.u32[w + 1] = nb;
    this.u32[w + 2] = n;
    this.u32[w + 3] = flags;
    this.f64[(at >> 3) + 2] = pos;
  }

  /** Wait (blocking: this is the middle of a batch) until `len` bytes of the ring are free. */
  private room(len: number): void {
    for (;;) {
      const tail = Atomics.load(this.ctl, TAIL);
      if (this.ringBytes - ((this.head - tail) >>> 0) >= len) return;
      this.flush();
      if (Atomics.load(this.ctl, DEAD)) throw new SockcapError('ERR_WRITE', `file writer thread stopped: ${this.failure?.message ?? 'its loop failed'}`);
      Atomics.wait(this.ctl, TAIL, tail, 100);
    }
  }

  /** Hand the worker what is in the ring (the end of a batch, or before the main thread waits or writes). */
  flush(): void {
    if (this.published === this.head) return;
    this.published = this.head;
    Atomics.store(this.ctl, HEAD, this.head | 0);
    Atomics.add(this.ctl, SEQ, 1);
    Atomics.notify(this.ctl, SEQ);
  }

  /**
   * A write to `name` is in the ring (staged or being written): the file may not exist yet. A
   * linear walk of the records, for the rare question (FlowFiles asks it of a name its filter
   * cannot rule out).
   */
  writing(name: string): boolean {
    const want = Buffer.from(name);
    for (let t = Atomics.load(this.ctl, TAIL) >>> 0; t !== this.head; ) {
      const at = t & this.mask;
      const w = at >> 2;
      const nb = this.u32[w + 1]!;
      if (!(this.u32[w + 3]! & SKIP) && nb === want.length && this.ring.compare(want, 0, nb, at + REC, at + REC + nb) === 0) return true;
      t = (t + this.u32[w]!) >>> 0;
    }
    return false;
  }

  /** Publish what is staged, wait until every write is done, and end the worker. */
  async settle(): Promise<void> {
    // waiting keeps the process alive (an unreferenced worker and Atomics.waitAsync do not)
    this.worker.ref();
    this.flush();
    for (let tail; (tail = Atomics.load(this.ctl, TAIL)) !== (this.head | 0) && !Atomics.load(this.ctl, DEAD); ) {
      const r = waitAsync(this.ctl, TAIL, tail, 100);
      if (r.async) await r.value;
    }
    Atomics.store(this.ctl, STOP, 1);
    Atomics.add(this.ctl, SEQ, 1);
    Atomics.notify(this.ctl, SEQ);
    await this.exited;
  }
}
