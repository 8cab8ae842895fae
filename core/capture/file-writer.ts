import type { Worker } from 'node:worker_threads';
import { builtin } from '../builtin.js';

/**
 * The worker's program, as text (the CLI is one bundle; a second file would need a path of its
 * own). For each write: open the file (created and truncated the first time, reopened after),
 * write the bytes at their offset, close it. It keeps nothing between writes, no descriptor
 * either: the files it gets are written once or twice each. After the first failure it writes
 * nothing more and reports that failure (the main thread stops the run on it).
 */
const PROGRAM = `
const { parentPort } = require('node:worker_threads');
const { openSync, writeSync, closeSync } = require('node:fs');
let failed = null;
parentPort.on('message', (m) => {
  const ops = m.ops;
  const data = m.data;
  for (let i = 0; i < ops.length && !failed; i += 4) {
    const path = m.paths[i / 4], pos = ops[i], off = ops[i + 1], len = ops[i + 2], create = ops[i + 3];
    let fd = -1;
    try {
      fd = openSync(path, create ? 'w' : 'r+');
      for (let done = 0; done < len; ) done += writeSync(fd, data, off + done, len - done, pos + done);
      closeSync(fd);
    } catch (e) {
      failed = { path, message: e.message };
      if (fd >= 0) try { closeSync(fd); } catch {}
    }
  }
  // the buffer goes back to be filled again (a transferred one would wait for this thread's GC)
  parentPort.postMessage({ failed, data }, [data.buffer]);
});
`;

/** Bytes a batch of writes is first given room for (it grows to hold any chunk). */
const STAGE = 1 << 20;

/** A failure the worker reported: the file, and what went wrong. */
export interface WriterFailure {
  path: string;
  message: string;
}

/**
 * Files written by a worker thread, for extract's small flows. Writing a few hundred bytes is
 * cheap; creating, opening and closing the file is not, and on 100,000 short flows those system
 * calls (300,000 files: open, write, close) took most of extract's main thread, which meanwhile
 * did no TCP. Here the main thread copies each chunk it is handed (views of capture memory; the
 * one copy of stream bytes in sockcap's output path, 1-2 KB a flow, where the system calls around
 * it cost ~10 µs) into a staging buffer with where it goes, and posts the batch's buffer to the
 * worker (transferred, not cloned), which makes the system calls on the other CPU.
 *
 * Writes of one file are in order (one worker, messages in order). `backlog` counts the staging
 * buffers posted and not yet handed back; the caller waits on `below()` between batches so that
 * it stays bounded.
 */
export class SmallFileWriter {
  private readonly worker: Worker;
  private data: Uint8Array<ArrayBuffer> = new Uint8Array(STAGE);
  /** Staging buffers the worker has handed back, to fill again. */
  private readonly free: Array<Uint8Array<ArrayBuffer>> = [];
  private used = 0;
  /** Per write: file offset, offset in `data`, length, create (1) or reopen (0). */
  private ops = new Float64Array(4 * 4096);
  private nops = 0;
  private paths: string[] = [];
  /** The paths of the batches posted and not yet answered, oldest first (answers come in order). */
  private readonly posted: string[][] = [];
  /** Bytes of buffers posted and not yet handed back (written, or being written). */
  backlog = 0;
  /** Stream bytes copied into staging buffers: the one copy of stream bytes on extract's output path. */
  copied = 0;
  /** Batches posted and not yet answered. */
  private pending = 0;
  private waiters: Array<() => void> = [];
  /** The first failure the worker reported, or the worker's own death. */
  failure: WriterFailure | null = null;

  constructor() {
    // worker_threads is loaded by the first writer (extract)
    const threads = builtin<typeof import('node:worker_threads')>('node:worker_threads');
    // its program is a loop of system calls: 8 MiB of code range, not V8's default 128 (under a
    // `ulimit -v` that reservation, which V8 cannot fail gracefully, killed the process)
    this.worker = new threads.Worker(PROGRAM, { eval: true, resourceLimits: { codeRangeSizeMb: 8 } });
    // the worker never keeps the process alive on its own; settle() is what waits for it
    this.worker.unref();
    this.worker.on('message', (r: { failed: WriterFailure | null; data: Uint8Array<ArrayBuffer> }) => {
      if (r.data.buffer.byteLength === STAGE && this.free.length < 4) this.free.push(new Uint8Array(r.data.buffer));
      this.backlog -= r.data.buffer.byteLength;
      this.pending--;
      this.posted.shift();
      if (r.failed && !this.failure) this.failure = r.failed;
      this.wake();
    });
    this.worker.on('error', (e) => {
      this.failure ??= { path: '(file writer thread)', message: e.message };
      this.pending = 0;
      this.posted.length = 0;
      this.backlog = 0;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Write `n` bytes of `views` (copied now) at `pos` of the file at `path`, creating it when `create`. */
  write(path: string, views: readonly Uint8Array[], n: number, pos: number, create: boolean): void {
    if (this.used + n > this.data.length) this.flush(n);
    const off = this.used;
    let at = off;
    for (const v of views) {
      this.data.set(v, at);
      at += v.length;
    }
    this.used = at;
    this.copied += n;
    if (4 * this.nops === this.ops.length) {
      const more = new Float64Array(2 * this.ops.length);
      more.set(this.ops);
      this.ops = more;
    }
    const o = this.ops;
    const i = 4 * this.nops++;
    o[i] = pos;
    o[i + 1] = off;
    o[i + 2] = n;
    o[i + 3] = create ? 1 : 0;
    this.paths.push(path);
  }

  /**
   * A write to `path` is staged or posted and not yet answered: the file may not exist yet. A
   * linear search, for the rare question (FlowFiles asks it of a name its filter cannot rule out).
   */
  writing(path: string): boolean {
    if (this.paths.includes(path)) return true;
    for (const p of this.posted) if (p.includes(path)) return true;
    return false;
  }

  /** Post what is staged (the end of a batch), leaving room for at least `need` bytes. */
  flush(need = 0): void {
    if (need > STAGE) {
      // a chunk larger than a staging buffer gets one of its own
      const big = new Uint8Array(need);
      if (this.nops) this.post(big);
      else {
        if (this.data.length === STAGE) this.free.push(this.data);
        this.data = big;
      }
    } else if (this.nops) this.post(this.free.pop() ?? new Uint8Array(STAGE));
  }

  /** Transfer the staged writes to the worker and stage into `next` from now on. */
  private post(next: Uint8Array<ArrayBuffer>): void {
    const data = this.data.subarray(0, this.used);
    const ops = this.ops.slice(0, 4 * this.nops);
    // counted whole (the buffer is held whatever part of it is used), and before the transfer
    // detaches it here
    this.backlog += data.buffer.byteLength;
    this.pending++;
    this.worker.postMessage({ paths: this.paths, ops, data }, [data.buffer, ops.buffer]);
    this.posted.push(this.paths);
    this.data = next;
    this.used = 0;
    this.nops = 0;
    this.paths = [];
  }

  /** Post what is staged, then wait until at most `limit` bytes are still to be written. */
  async below(limit: number): Promise<void> {
    this.flush();
    while (this.pending > 0 && this.backlog > limit) await new Promise<void>((r) => this.waiters.push(r));
  }

  /** Post what is staged, wait until every write is done, and stop the worker. */
  async settle(): Promise<void> {
    this.flush();
    while (this.pending > 0) await new Promise<void>((r) => this.waiters.push(r));
    await this.worker.terminate();
  }
}
