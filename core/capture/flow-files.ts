import { closeSync, openSync, readFileSync, statSync, unlinkSync, writev } from 'node:fs';
import { join } from 'node:path';
import { sha256 } from '../sha256.js';
import { SockcapError } from '../errors.js';
import { O_REOPEN, openMaking, outputFileError, viewsAfter, viewsBefore, writeAllSync, zeroViews } from './sink.js';
import type { Connection, Dir } from '../net/in-pcb.js';
import type { Gap, Tcpcb } from '../tcp/tcpcb.js';
import { type GapEntry, gapEntry } from '../tcp/summary.js';
import { type Ext, ext_release } from '../mbuf/mbuf.js';
import type { ChunkZone } from './zone.js';
import { SmallFileWriter } from './file-writer.js';
import { NameFilter } from './name-filter.js';
import { FdList } from './fd-list.js';
import { CREATED, FileSlots, type OpenFile, SMALL, USED } from './file-slots.js';
import { flowName, safePath, usesTokens } from './flow-name.js';
import { etherAddrs } from '../net/ether-addrs.js';
import type { Mbuf } from '../mbuf/mbuf.js';
import type { NetNames } from '../net/net-names.js';

/** The slot of a direction of the connection whose pair of slots is `p` (on conn.app). */
const slotOf = (p: number, d: Dir): number => 2 * p + (d === 'c2s' ? 0 : 1);

/** What the index says of one written direction. */
export interface FlowIndexEntry {
  stream: number;
  dir: Dir;
  src: string;
  dst: string;
  file: string;
  bytes: number;
  /** The VLAN stack or tunnel the connection came in (as connection summaries name it), when it did. */
  net?: string;
  sha256?: string;
  /**
   * Holes that never filled, [offset in the file, length] (absent when none): where the bytes
   * after each follow at once (the default), or, with zero-filled gaps, the zeros standing in for it.
   */
  gaps?: GapEntry[];
}

/**
 * Writes of at least this much go to libuv's thread pool, so the kernel copies them into the file
 * on another CPU while the stack goes on with the next batch (their callbacks run between
 * batches); smaller ones are synchronous (a pool round trip costs more than the write: measured,
 * 300,000 short flows). Bulk extract: 2.0-2.2 s against 2.6 s all synchronous. At most
 * INFLIGHT_BYTES (and as many writes as the descriptor limit allows) are in flight; beyond that
 * writes are synchronous, so what they pin stays bounded.
 */
const ASYNC_MIN = 4 << 10;
const INFLIGHT_BYTES = 32 << 20;
/** Most views in one writev (Linux IOV_MAX is 1024). */
const IOV_MAX = 1024;

/** The soft limit on open descriptors (Linux /proc/self/limits), or Infinity when unknown. */
function openFileLimit(): number {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (m) return Number(m[1]);
  } catch {
    // not Linux: EMFILE tells
  }
  return Infinity;
}

/**
 * Writes every direction of every connection to its own file in `dir` (tcpflow's layout), in one
 * pass: each chunk a reader hands over (views of capture memory) goes to one positioned writev at
 * once, so the kernel copies it straight into the file. Chunks of 4 KiB or more are written in
 * libuv's thread pool (ASYNC_MIN; they stay pinned until their write ends, at most INFLIGHT_BYTES
 * of them), smaller ones synchronously: a pool request per small write cost more than the write
 * (2.4x slower on 48,000 short flows, session 3). With `smallFiles` (extract), a file whose first
 * write is small goes to a SmallFileWriter thread instead, which creates, writes and closes it on
 * the other CPU from a copy of its bytes (the open and close cost ~10 µs; the copy of a short
 * flow's 1-2 KB is nothing next to them): extract on 100,000 short flows, 11.7-14.3 s -> 7.7-8.6 s.
 * Feed it from a DrainApp with a low-water mark (SO_RCVLOWAT, as extract does): chunks are then
 * 64 KiB, a receive timeout's worth or a connection's last bytes, not one segment each.
 * Directions with no bytes get no file. A name that repeats (the same 4-tuple reused by a later
 * stream) gets `-c<stream>` (see make(): nothing is kept per name).
 */
export class FlowFiles {
  /** Names given in this run, as a filter of fixed size (see make()). */
  private readonly names: NameFilter;
  /** The template has %c or %C: a name given before takes the next count (see make()). */
  private readonly counted: boolean;
  /**
   * With %E/%e in the template: each open connection's Ethernet addresses, as its first frame in
   * each direction had them (c2s's source and destination at 0, s2c's at 12; byte 24 has bit 1
   * once c2s's frame was seen, bit 2 for s2c's). Kept until the connection closes.
   */
  private readonly links: Map<Connection, Uint8Array> | null;
  /**
   * For the Stack's frameSeen when the template has %E/%e (else null: nothing is looked at per
   * frame): records each direction's addresses from its first frame.
   */
  readonly frameSeen: ((c: Connection, c2s: boolean, m: Mbuf) => void) | null;
  /** The file system's time when the run began (nanoseconds): a file modified since is this run's. */
  private readonly since: bigint;
  /** Names that the filter could not rule out and that had to be looked up (stat). */
  nameLookups = 0;
  /** Bytes written. */
  written = 0;
  filesWritten = 0;
  /** The first write failure (kept: writes happen inside the stack's input). */
  failure: SockcapError | null = null;
  /** Open descriptors, least recently used first (opening a file costs more than writing 64 KiB). */
  private readonly fds = new FdList<OpenFile>();
  /** Every direction's file state. */
  private readonly slots: FileSlots;
  /** The directory with a trailing separator (path.join per file cost 0.3 µs, measured). */
  private readonly prefix: string;
  /** Writes in the thread pool, their bytes and the most allowed; called when none is left. */
  private inflight = 0;
  private inflightBytes = 0;
  private readonly maxInflight: number;
  private idle: (() => void) | null = null;
  /** The small-file writer, started when the first file goes to it. */
  private sfw: SmallFileWriter | null = null;
  /**
   * Stream bytes copied on their way out: those of the small files, into the writer thread's
   * ring. Everything else goes to writev as views of capture memory (the kernel copies), those of
   * the small files made on this thread when the ring was full too.
   */
  get copiedBytes(): number {
    return this.sfw?.copied ?? 0;
  }
  /** Writes in the thread pool now. */
  get writesInFlight(): number {
    return this.inflight;
  }
  /** Most descriptors kept open (the process limit less a reserve); lowered again on EMFILE. */
  private maxOpen: number;
  /**
   * The run's network names (the Stack's), for the template's %V%v: a connection in a VLAN or a
   * tunnel gets its network in its name. Without them every connection is named as if it had none.
   */
  nets: NetNames | null = null;

  constructor(
    dir: string,
    private readonly template: string,
    private readonly hash: boolean,
    /** Each finished direction, for the index. */
    private readonly onFile: (e: FlowIndexEntry) => void,
    /**
     * The zone the capture's chunks come from, if any: a write in the thread pool holds a
     * reference to the chunks its views are in until it ends (synchronous writes are done with
     * them on return).
     */
    private readonly zone: ChunkZone | null = null,
    /**
     * Give files whose first write is small (under ASYNC_MIN: short flows, and flows a receive
     * timeout reads early) to a SmallFileWriter thread, which creates, writes and closes them on
     * another CPU. Their bytes are copied once for it; everything else stays as it was.
     */
    private readonly smallFiles = false,
    /** log2 of the name filter's bits (tests make it tiny, so every name is looked up). */
    filterBits = 25,
    /**
     * Leave each gap (a hole that never filled) in the file as zeros, so every byte stays at its
     * stream offset as tcpflow writes it (a sparse file: the position moves past the hole), instead
     * of the bytes after it following at once. Either way the index lists the gaps.
     */
    private readonly zeroGaps = false,
  ) {
    this.prefix = join(dir, '/');
    this.slots = new FileSlots(hash);
    this.names = new NameFilter(filterBits);
    this.counted = usesTokens(template, 'cC');
    this.links = usesTokens(template, 'Ee') ? new Map() : null;
    this.frameSeen = this.links ? (c, c2s, m) => this.linkSeen(c, c2s, m) : null;
    this.since = fsNow(this.prefix);
    // descriptors released while their writes run stay open until those end: at most one per write
    const room = Math.min(4096 + 256, openFileLimit() - 32);
    this.maxInflight = Math.max(0, Math.min(256, Math.floor(room / 4)));
    this.maxOpen = Math.max(8, room - this.maxInflight);
  }

  /** The file's name (see FileSlots.names). */
  private nameOf(c: Connection, d: Dir, s: number): string {
    return this.slots.names.get(s) ?? flowName(this.template, c, d, this.netOf(c), 0, this.linkOf(c, d));
  }

  /** A frame of `c`: the first of its direction gives that direction's Ethernet addresses (tcpflow's %E/%e). */
  private linkSeen(c: Connection, c2s: boolean, m: Mbuf): void {
    let l = this.links!.get(c);
    if (l === undefined) this.links!.set(c, (l = new Uint8Array(25)));
    const bit = c2s ? 1 : 2;
    if (l[24]! & bit) return;
    l[24]! |= bit;
    // the captured frame's Ethernet header (zeros for other link types)
    const ea = etherAddrs(m);
    if (!ea) return;
    const at = c2s ? 0 : 12;
    l.set(ea.subarray(6, 12), at); // source
    l.set(ea.subarray(0, 6), at + 6); // destination
  }

  /** The direction's Ethernet addresses (source, then destination), or null when the template has none. */
  private linkOf(c: Connection, d: Dir): Uint8Array | null {
    const l = this.links?.get(c);
    if (l === undefined) return null;
    return d === 'c2s' ? l.subarray(0, 12) : l.subarray(12, 24);
  }

  /** The connection's network as file names carry it ('' for none). */
  private netOf(c: Connection): string {
    return c.vlan === 0 || !this.nets ? '' : this.nets.token(c.vlan);
  }

  data(c: Connection, d: Dir, chunk: readonly Uint8Array[]): void {
    let n = 0;
    for (const v of chunk) n += v.length;
    // a direction gets its file (and its name) with its first byte
    if (n === 0) return;
    // the connection's slots are on it (DrainApp leaves conn.app to its sink): no table of them
    const t = this.slots;
    if (c.app === null) c.app = t.alloc();
    const s = slotOf(c.app as number, d);
    // the file's name, made when a write needs it (a new file's is made once, for its first write too)
    let name: string | null = null;
    if (!(t.flags[s]! & USED)) name = this.make(c, d, s);
    if (this.zeroGaps) {
      const gaps = receiver(c, d).gaps;
      if (t.gi[s]! < gaps.length && this.pastGaps(s, gaps, n)) {
        // a gap inside this chunk: the bytes before it, then the rest (after the hole)
        const k = gaps[t.gi[s]!]![0] - t.bytes[s]!;
        this.data(c, d, viewsBefore(chunk, k));
        this.data(c, d, viewsAfter(chunk, k));
        return;
      }
    }
    const hash = this.hash ? t.hash[s]! : null;
    if (hash) for (const v of chunk) hash.update(v);
    t.bytes[s]! += n;
    if (this.failure) return;
    const pos = t.pos[s]!;
    let fl = t.flags[s]!;
    if (!(fl & CREATED) && this.smallFiles && n < ASYNC_MIN) fl |= SMALL;
    try {
      if (fl & SMALL) {
        t.ring[s] = this.writer().write(name ?? this.nameOf(c, d, s), chunk, n, pos, !(fl & CREATED), t.ring[s]);
        if (!(fl & CREATED)) this.filesWritten++;
        t.flags[s] = fl | CREATED;
      } else {
        let o = t.open.get(s);
        if (!o) o = this.open(s, (name ??= this.nameOf(c, d, s)));
        else this.fds.touch(o); // most recently used
        // an async write names its file now: by its end the connection may be another one
        if (n >= ASYNC_MIN && chunk.length <= IOV_MAX && this.inflight < this.maxInflight && this.inflightBytes < INFLIGHT_BYTES) this.writeAsync(o, (name ??= this.nameOf(c, d, s)), chunk, n, pos);
        else writeAllSync(o.fd, chunk, n, pos);
      }
    } catch (e) {
      this.failure = e instanceof SockcapError ? e : outputFileError(this.prefix + (name ?? this.nameOf(c, d, s)), e);
      return;
    }
    t.pos[s] = pos + n;
    this.written += n;
  }

  /**
   * Zero-filled gaps: move the file's position past the gaps at its current stream offset (the
   * hash takes their zeros). True when the next gap falls inside the `n` bytes about to be written.
   */
  private pastGaps(s: number, gaps: readonly Gap[], n: number): boolean {
    const t = this.slots;
    const hash = this.hash ? t.hash[s]! : null;
    for (; t.gi[s]! < gaps.length; t.gi[s]!++) {
      const [at, len] = gaps[t.gi[s]!]!;
      if (at > t.bytes[s]!) return at < t.bytes[s]! + n;
      t.pos[s]! += len;
      if (hash) for (const z of zeroViews(len)) hash.update(z);
    }
    return false;
  }

  /** One write in the thread pool; the views stay referenced (pinned) until it ends. */
  private writeAsync(o: OpenFile, name: string, views: readonly Uint8Array[], n: number, pos: number): void {
    const fd = o.fd;
    const exts: Ext[] | null = this.zone ? this.zone.hold(views) : null;
    o.inflight++;
    this.inflight++;
    this.inflightBytes += n;
    writev(fd, views as Uint8Array[], pos, (e, done) => {
      try {
        if (!e && done < n) writeAllSync(fd, viewsAfter(views, done), n - done, pos + done); // a short write
      } catch (e2) {
        e = e2 as NodeJS.ErrnoException;
      }
      if (e && !this.failure) this.failure = outputFileError(this.prefix + name, e);
      if (exts) ext_release(exts);
      this.inflightBytes -= n;
      this.inflight--;
      if (--o.inflight === 0 && o.closeAfter) {
        for (const d of o.closeAfter) closeSync(d);
        o.closeAfter = null;
      }
      if (this.inflight === 0) this.idle?.();
    });
  }

  /** The connection left the table (its readers have read everything): close both files and index them. */
  closed(c: Connection): void {
    const p = c.app as number | null;
    c.app = null;
    if (p === null) {
      this.links?.delete(c);
      return;
    }
    const t = this.slots;
    for (const d of ['c2s', 's2c'] as const) {
      const s = slotOf(p, d);
      if (!(t.flags[s]! & USED)) continue;
      const o = t.open.get(s);
      if (o) this.release(o);
      const gaps = receiver(c, d).gaps;
      // one object, no spreads (each made a temporary object: ~60 MB on 200,000 connections)
      const e: FlowIndexEntry = { stream: c.stream, dir: d, src: d === 'c2s' ? c.clientName : c.serverName,
        dst: d === 'c2s' ? c.serverName : c.clientName, file: this.nameOf(c, d, s), bytes: t.bytes[s]! };
      if (c.vlan !== 0 && this.nets) e.net = this.nets.get(c.vlan);
      if (gaps.length) {
        // offsets in the file: zero-filled, each gap is after the earlier ones' zeros (one after
        // the last byte of data, cut by the snaplen, is past the end: the file ends at its data,
        // as tcpflow's does)
        let before = 0;
        e.gaps = gaps.map((g) => {
          const at = g[0] + before;
          if (this.zeroGaps) before += g[1];
          return gapEntry(g, at);
        });
      }
      if (this.hash) e.sha256 = t.hash[s]!.digest('hex');
      this.onFile(e);
    }
    t.free(p);
    this.links?.delete(c);
  }

  /**
   * A direction's file. A name given before in this run (the same 4-tuple again, in either role)
   * gets `-c<stream>` (see the loop for more). Remembering every name would grow with the
   * connections seen, so the names given go into a Bloom filter of fixed size (4 MiB), and a name
   * it cannot rule out (one the run gave, or a false positive: 45 of the short benchmark capture's
   * 300,000 names, about half of them at 20 million) is looked up where it would have gone: among
   * the small-file writer's pending writes, then in the directory, where a file modified since
   * the run began is this run's (one left by an earlier run is overwritten, as always). A lookup
   * is a stat: a full filter slows extract down, it never makes it wrong.
   */
  private make(c: Connection, d: Dir, s: number): string {
    // added at once: a name the filter may have had is looked up (given); one given gets
    // -c<stream>, and if that was given too (a template that names both directions, or several
    // streams, the same) the direction, then a count: never a file two directions share
    const net = this.netOf(c);
    const link = this.linkOf(c, d);
    const base = flowName(this.template, c, d, net, 0, link);
    // a part that is no file's (%v of a connection in no network, a template of dots): -c<stream>
    const first = safePath(base, c.stream);
    let name = first;
    // with %c or %C the template counts the connections given the name before (tcpflow): the
    // next count, while it changes the name (%C alone stops at 1); then the suffixes
    let count = this.counted ? 0 : -1;
    for (let k = first === base ? 0 : 1; this.names.add(name) && this.given(name); ) {
      const next = count >= 0 ? safePath(flowName(this.template, c, d, net, ++count, link), c.stream) : name;
      if (next !== name) {
        name = next;
        continue;
      }
      count = -1;
      // -c<stream>, then the direction, then a count (a part that was no name's has its -c<stream> already)
      name = `${first}${first === base ? `-c${c.stream}` : ''}${k === 0 ? '' : k === 1 ? `-${d}` : `-${d}-${k}`}`;
      k++;
    }
    const t = this.slots;
    t.flags[s] = USED;
    if (name !== base) t.names.set(s, name);
    if (this.hash) t.hash[s] = sha256();
    return name;
  }

  /** This run made a file of this name, or is about to (see make()). */
  private given(name: string): boolean {
    this.nameLookups++;
    if (this.sfw?.writing(name)) return true;
    const st = statSync(this.prefix + name, { bigint: true, throwIfNoEntry: false });
    return st !== undefined && st.mtimeNs >= this.since;
  }

  private writer(): SmallFileWriter {
    return (this.sfw ??= new SmallFileWriter(this.prefix));
  }

  /** Throw the first write failure, if there was one. */
  check(): void {
    this.takeWriterFailure();
    if (this.failure) throw this.failure;
  }

  private takeWriterFailure(): void {
    const w = this.sfw?.failure;
    if (w && !this.failure) this.failure = outputFileError(w.path, w);
  }

  /**
   * The end of a batch: hand the small-file writer what was staged. (What it holds is bounded by
   * its ring: when that is full, a write waits for the writer thread to make room.)
   */
  async drain(): Promise<void> {
    this.sfw?.flush();
  }

  /** Close a direction's descriptor (its connection is done, or the descriptor is the least recently used). */
  private release(o: OpenFile): void {
    this.fds.delete(o);
    this.slots.open.delete(o.slot);
    if (o.inflight) (o.closeAfter ??= []).push(o.fd); // closed when its writes end
    else closeSync(o.fd);
  }

  /**
   * Open a direction's file: create it the first time, later reopen it keeping its bytes (writes
   * are positioned). The least recently used descriptor is closed to stay under the limit.
   */
  private open(s: number, name: string): OpenFile {
    const t = this.slots;
    for (;;) {
      if (this.fds.size >= this.maxOpen) this.release(this.fds.oldest!);
      let fd: number;
      try {
        fd = t.flags[s]! & CREATED ? openSync(this.prefix + name, O_REOPEN) : openMaking(this.prefix + name);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if ((code === 'EMFILE' || code === 'ENFILE') && this.fds.size > 0) {
          // the system's limit is lower than ours: keep fewer open
          this.maxOpen = Math.max(1, this.fds.size - 8);
          continue;
        }
        throw outputFileError(this.prefix + name, e);
      }
      if (!(t.flags[s]! & CREATED)) this.filesWritten++;
      t.flags[s]! |= CREATED;
      const o: OpenFile = { slot: s, fd, inflight: 0, closeAfter: null, older: null, newer: null };
      t.open.set(s, o);
      this.fds.add(o);
      return o;
    }
  }

  /** Close every descriptor (end of the run), once every write has ended, the small-file writer's too. */
  async close(): Promise<void> {
    while (this.fds.oldest) this.release(this.fds.oldest);
    if (this.inflight > 0) {
      await new Promise<void>((resolve) => {
        this.idle = () => {
          this.idle = null;
          resolve();
        };
      });
    }
    await this.sfw?.settle();
    this.takeWriterFailure();
  }
}

/** The end that receives a direction's bytes: c2s bytes are the server's to receive. */
function receiver(c: Connection, d: Dir): Tcpcb {
  return d === 'c2s' ? c.server : c.client;
}


/**
 * The file system's clock now, in nanoseconds: the modification time of a file made and removed
 * in `prefix` (file times come from the kernel's coarse clock, which may be a tick behind the
 * process's own). 0 when it cannot be made there: then every existing file counts as this run's.
 */
function fsNow(prefix: string): bigint {
  const probe = `${prefix}.sockcap-clock-${process.pid}`;
  try {
    closeSync(openSync(probe, 'w'));
    const t = statSync(probe, { bigint: true }).mtimeNs;
    unlinkSync(probe);
    return t;
  } catch {
    return 0n;
  }
}
