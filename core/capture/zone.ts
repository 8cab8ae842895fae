import { Ext } from '../mbuf/mbuf.js';
import { simdArena } from '../wire/checksum-simd.js';

/**
 * Retired chunks a zone keeps track of at most: chunks still referenced by queues past this many
 * are forgotten (the garbage collector frees them once their last Mbuf is gone). Sleeping readers
 * with SO_RCVLOWAT pin up to LOWAT_WAIT_BYTES (32 MiB) of capture, 8 chunks of 4 MiB.
 */
export const ZONE_KEEP = 32;

/**
 * Chunks a zone places in WebAssembly memory the checksum reads in place (simdArena): at most 16,
 * each its own memory of one chunk, made when the zone first needs that many chunks at once
 * (replay uses 2-3, extract up to ~12 while readers sleep). Chunks past these come from ordinary
 * memory and are mirrored for the checksum as before.
 */
export const ARENA_CHUNKS = 16;

/** A zone's counters (replay's `chunks`). */
export interface ChunkStats {
  /** Bytes per chunk. */
  size: number;
  /** Chunks allocated fresh, and handed out again. */
  allocated: number;
  reused: number;
  /** The most retired chunks still referenced by queues at once. */
  peakPinned: number;
  /** Chunks left to the garbage collector while still referenced. */
  forgotten: number;
  /**
   * Chunks the zone may place in WebAssembly memory (the checksum reads them in place; fewer when
   * the runtime would give no more), and how many it did.
   */
  arenaSlots: number;
  arenaChunks: number;
}

/**
 * A zone of read chunks (BSD: a UMA zone of mbuf clusters whose ext_count says when one is free).
 *
 * Why: a fresh 4 MiB chunk per read is fresh anonymous memory; the kernel faults in and zeroes
 * every page of it, and glibc unmaps it again when the garbage collector frees it. On the 1 GiB
 * benchmark capture that was about 1 s of system time per run, more than reading the file (a bare
 * record walker: 1.2-1.5 s with fresh chunks, 0.2-0.3 s with two reused ones). A zone hands out a
 * chunk again once the reader has moved past it (`retire`) and nothing holds a reference to it
 * (Ext.refs, counted by whatever keeps an Mbuf or a view past its batch: socket buffers, TCP and
 * IP reassembly queues, output sinks, FlowFiles' writes in flight, the splice model's kept frames).
 *
 * Only for consumers that keep no other view of capture memory past the batch it came in: the
 * commands (their readers drain, hash, render text or write with references held). A library user
 * whose streams hand out views (open()) keeps the default, fresh chunks.
 *
 * The first chunks (ARENA_CHUNKS) are arena slots, each a WebAssembly memory of its own, so the
 * TCP checksum is computed where the frames were read (no mirror copy: ~4% of replay's time on
 * bulk flows). A slot is made only when no chunk made before is free: V8 counts a memory's whole
 * size as external memory from the start, and one arena of all 16 slots (64 MiB, past V8's 64 MB
 * soft limit) cost bulk replay two scavenges and a mark-compact before its first frame, ~10-18 ms.
 * A memory cannot give its pages back, so a slot is never forgotten, only reused.
 */
export class ChunkZone {
  /** Chunks the reader has moved past, oldest first, with their references. */
  private readonly retired: Array<{ buf: Buffer; ext: Ext }> = [];
  /** The Ext of each chunk's memory, for its current life (a reused chunk gets a new one). */
  private readonly exts = new WeakMap<ArrayBufferLike, Ext>();
  /** The arena slots made (their memories), and whether the runtime refused one (then no more are asked for). */
  private readonly arenas = new Set<ArrayBufferLike>();
  private refused = false;
  /** Chunks allocated fresh, and handed out again. */
  allocated = 0;
  reused = 0;
  /**
   * The most retired chunks still referenced at once, seen when a chunk was wanted: what queues
   * held back from reuse (DESIGN: count the chunk bytes retained Mbufs pin), at most `keep`.
   */
  peakPinned = 0;
  /** Chunks the zone stopped tracking while still referenced (over `keep`): left to the garbage collector. */
  forgotten = 0;

  constructor(
    /** Size of every chunk. */
    readonly size: number,
    /** Retired chunks tracked at most (ZONE_KEEP). */
    private readonly keep = ZONE_KEEP,
    /** Chunks placed in an arena the checksum reads in place (ARENA_CHUNKS; 0: none). */
    private readonly slots = ARENA_CHUNKS,
  ) {}

  /** A chunk to read into: a retired one no queue references, else fresh memory (an arena slot while any is left). */
  alloc(): Buffer {
    const r = this.retired;
    let pinned = 0;
    for (const c of r) if (c.ext.refs !== 0) pinned++;
    if (pinned > this.peakPinned) this.peakPinned = pinned;
    for (let i = 0; i < r.length; i++) {
      const c = r[i]!;
      if (c.ext.refs !== 0) continue;
      r.splice(i, 1);
      // a new life: Mbufs of the old one (garbage now) can never count against this one
      this.exts.set(c.buf.buffer, new Ext());
      this.reused++;
      return c.buf;
    }
    let ab: ArrayBuffer | null = null;
    if (this.arenas.size < this.slots && !this.refused) {
      ab = simdArena(this.size);
      if (ab) this.arenas.add(ab);
      else this.refused = true;
    }
    const buf = ab ? Buffer.from(ab, 0, this.size) : Buffer.allocUnsafeSlow(this.size);
    this.exts.set(buf.buffer, new Ext());
    this.allocated++;
    return buf;
  }

  /** Arena slots made so far (for checks and reports). */
  get arenaChunks(): number {
    return this.arenas.size;
  }

  /** What the zone did, for reports. */
  stats(): ChunkStats {
    return { size: this.size, allocated: this.allocated, reused: this.reused, peakPinned: this.peakPinned, forgotten: this.forgotten, arenaSlots: this.refused ? this.arenas.size : this.slots, arenaChunks: this.arenas.size };
  }

  /** The Exts of the retired chunks tracked (for checks). */
  retiredExts(): Ext[] {
    return this.retired.map((c) => c.ext);
  }

  /** Take a reference to the chunk of every view that is one of the zone's (ext_release lets go). */
  hold(views: readonly Uint8Array[]): Ext[] {
    const held: Ext[] = [];
    for (const v of views) {
      const x = this.extOf(v);
      if (x) {
        x.refs++;
        held.push(x);
      }
    }
    return held;
  }

  /** The Ext of the chunk `buf` is a view of, or null for memory that is not the zone's. */
  extOf(buf: Uint8Array): Ext | null {
    return this.exts.get(buf.buffer) ?? null;
  }

  /**
   * The reader has moved past the chunk `buf` views, and every batch cut from it has been
   * processed: it may be reused once no queue references it.
   */
  retire(buf: Uint8Array): void {
    const ext = this.extOf(buf);
    if (!ext || ext.retired) return;
    ext.retired = true;
    const r = this.retired;
    r.push({ buf: Buffer.from(buf.buffer, 0, this.size), ext });
    if (r.length > this.keep) {
      // the oldest chunk of ordinary memory goes; an arena slot is never forgotten (its memory
      // cannot be given back, and there are fewer slots than `keep` allows)
      const i = r.findIndex((c) => !this.arenas.has(c.buf.buffer));
      if (i >= 0 && r.splice(i, 1)[0]!.ext.refs !== 0) this.forgotten++;
    }
  }
}
