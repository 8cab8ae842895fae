import type { Hash } from 'node:crypto';

/** FileSlots.flags: the direction has had bytes (it has a file, and an index entry when it ends). */
export const USED = 1;
/** The file exists (created once; later opens keep its bytes). */
export const CREATED = 2;
/** The small-file writer thread writes it (decided at its first write). */
export const SMALL = 4;

/** A typed array of `n` elements that begins with `a`'s. */
function grown<T extends Float64Array | Int32Array | Uint32Array | Uint8Array>(a: T, n: number): T {
  const b = new (a.constructor as new (n: number) => T)(n);
  b.set(a);
  return b;
}

/** An open descriptor of a direction's file (only while open: at most the descriptor limit of them). */
export interface OpenFile {
  /** The direction's slot. */
  readonly slot: number;
  fd: number;
  /** Its writes in libuv's thread pool, and descriptors released while they run (closed after). */
  inflight: number;
  closeAfter: number[] | null;
  /** Neighbours in the list of open descriptors (least recently used first). */
  older: OpenFile | null;
  newer: OpenFile | null;
}

/**
 * The state of every direction's file, in arrays indexed by the direction's slot (a file table: BSD
 * keeps a process's open files as an array of pointers its descriptors index). A connection with
 * files holds two slots, c2s at 2p and s2c at 2p + 1, and only `p` (a small integer on conn.app);
 * pairs are reused once their connection is done. Per direction 25 bytes of typed arrays, where
 * an object per direction and one per connection held ~210 bytes a connection: 21 MB of
 * extract's heap with 100,000 connections open at once.
 */
export class FileSlots {
  /** Bytes written so far: the file offset of the next write (past zero-filled gaps). */
  pos = new Float64Array(0);
  /** Stream bytes taken so far. */
  bytes = new Float64Array(0);
  /** With zero-filled gaps: the direction's gaps the file position has moved past so far. */
  gi = new Int32Array(0);
  flags = new Uint8Array(0);
  /** A small file's place in the writer thread's ring after its last write (SmallFileWriter.write). */
  ring = new Uint32Array(0);
  /** The open descriptors by slot (at most the descriptor limit of them: not an array as long as the slots). */
  readonly open = new Map<number, OpenFile>();
  /** SHA-256 of what was written (with hashes only). */
  hash: Array<Hash | null> = [];
  /**
   * A file's name when it is not the template's (a name given before gets `-c<stream>`): rare, so
   * kept apart; a template's name is made again from the connection when wanted.
   */
  readonly names = new Map<number, string>();
  /** Pairs free for reuse, and the pairs made so far. */
  private readonly freePairs: number[] = [];
  private pairs = 0;

  constructor(
    /** Keep a hash per slot. */
    private readonly hashes: boolean,
  ) {}

  /** A pair of slots for a connection, every field as new: its index p (slots 2p and 2p + 1). */
  alloc(): number {
    const p = this.freePairs.pop() ?? this.pairs++;
    if (2 * p + 2 > this.flags.length) this.grow(Math.max(1024, 2 * this.flags.length));
    return p;
  }

  /** Give a pair back (its descriptors closed, its names and hashes taken by then). */
  free(p: number): void {
    for (let s = 2 * p; s < 2 * p + 2; s++) {
      this.pos[s] = this.bytes[s] = this.gi[s] = this.flags[s] = this.ring[s] = 0;
      if (this.hashes) this.hash[s] = null;
      this.names.delete(s);
    }
    this.freePairs.push(p);
  }

  private grow(n: number): void {
    this.pos = grown(this.pos, n);
    this.bytes = grown(this.bytes, n);
    this.gi = grown(this.gi, n);
    this.flags = grown(this.flags, n);
    this.ring = grown(this.ring, n);
    if (this.hashes) for (let s = this.hash.length; s < n; s++) this.hash.push(null);
  }
}
