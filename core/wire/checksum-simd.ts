/**
 * The internet checksum (RFC 1071) in WebAssembly SIMD, for verifying every TCP segment of a
 * capture. JavaScript has no way to sum memory faster than a DataView loop (~3 GB/s here, bound by
 * one 32-bit load per step); a 128-bit SIMD loop sums the same bytes about 5× faster. WebAssembly
 * can only read its own memory. A ChunkZone reads the capture into such memory (an arena, see
 * `simdArena`), and the sum runs there in place, as a NIC's checksum offload reads the DMA buffer
 * the frame arrived in; any other memory (fresh chunks, a record straddling two chunks, live slabs)
 * is mirrored into the engine's own memory with one memcpy per window of a read chunk and summed
 * there. The mirror is scratch for verification only: socket buffers keep referencing capture
 * memory, nothing else reads it.
 *
 * No library fits (an internet checksum over foreign memory is a dozen instructions), so the
 * module is assembled here, byte by byte, from the WebAssembly binary format. Its one function:
 *
 *   sum(p: i32, n: i32) -> i32
 *     the one's-complement sum of the little-endian 16-bit words of memory [p, p+n), folded to
 *     16 bits (an odd last byte counts as a low byte). Little-endian words sum to the byte-swapped
 *     big-endian sum (RFC 1071 §2(B)), so the caller swaps the result's bytes.
 *
 * The loop adds 16 bytes a step with i32x4.extadd_pairwise_i16x8_u into four 32-bit lanes; a lane
 * gains at most 2 × 0xffff per step, so n must stay under 512 KiB (the caller splits larger runs).
 */

const leb = (n: number): number[] => {
  const o: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    o.push(b);
  } while (n);
  return o;
};

const sleb = (n: number): number[] => {
  const o: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(b & 0x40)) || (n === -1 && b & 0x40)) {
      o.push(b);
      return o;
    }
    o.push(b | 0x80);
  }
};

const section = (id: number, body: number[]): number[] => [id, ...leb(body.length), ...body];
const name = (s: string): number[] => [s.length, ...Array.from(s, (ch) => ch.charCodeAt(0))];

// locals: 0 p (param), 1 n (param), 2 end: i32, 3 acc: v128, 4 s: i64
const get = (i: number) => [0x20, i];
const set = (i: number) => [0x21, i];
const i32c = (v: number) => [0x41, ...sleb(v)];
const i64c = (v: number) => [0x42, ...sleb(v)];
const I32_ADD = 0x6a, I32_AND = 0x71, I32_LT_U = 0x49, I32_GT_U = 0x4b, I32_GE_U = 0x4f;
const I64_ADD = 0x7c, I64_AND = 0x83, I64_SHR_U = 0x88, I64_EXTEND_I32_U = 0xad, I32_WRAP_I64 = 0xa7;
const I64_LOAD8_U = 0x31, I64_LOAD16_U = 0x33;
const BLOCK = 0x02, LOOP = 0x03, IF = 0x04, END = 0x0b, BR = 0x0c, BR_IF = 0x0d, VOID = 0x40;
const V128_LOAD = [0xfd, 0x00], EXTADD_PAIRWISE_I16X8_U = [0xfd, 0x7f], I32X4_ADD = [0xfd, 0xae, 0x01];
const lane = (k: number) => [0xfd, 0x1b, k, I64_EXTEND_I32_U]; // i32x4.extract_lane k, widened
/** s = (s & 0xffff) + (s >> 16) */
const fold = [...get(4), ...i64c(0xffff), I64_AND, ...get(4), ...i64c(16), I64_SHR_U, I64_ADD, ...set(4)];

const body = [
  4, 1, 0x7f, 1, 0x7b, 1, 0x7e, 1, 0x7b,
  // end = p + (n & ~63); while (p < end) { 64 bytes into two accumulators (3 and 5); p += 64 }
  ...get(0), ...get(1), ...i32c(-64), I32_AND, I32_ADD, ...set(2),
  BLOCK, VOID, LOOP, VOID,
  ...get(0), ...get(2), I32_GE_U, BR_IF, 1,
  ...get(3), ...get(0), ...V128_LOAD, 0, 0, ...EXTADD_PAIRWISE_I16X8_U, ...I32X4_ADD, ...set(3),
  ...get(5), ...get(0), ...V128_LOAD, 0, 16, ...EXTADD_PAIRWISE_I16X8_U, ...I32X4_ADD, ...set(5),
  ...get(3), ...get(0), ...V128_LOAD, 0, 32, ...EXTADD_PAIRWISE_I16X8_U, ...I32X4_ADD, ...set(3),
  ...get(5), ...get(0), ...V128_LOAD, 0, 48, ...EXTADD_PAIRWISE_I16X8_U, ...I32X4_ADD, ...set(5),
  ...get(0), ...i32c(64), I32_ADD, ...set(0),
  BR, 0,
  END, END,
  // end = p + (n & 48); the 16-byte blocks left, into accumulator 3
  ...get(0), ...get(1), ...i32c(48), I32_AND, I32_ADD, ...set(2),
  BLOCK, VOID, LOOP, VOID,
  ...get(0), ...get(2), I32_GE_U, BR_IF, 1,
  ...get(3), ...get(0), ...V128_LOAD, 0, 0, ...EXTADD_PAIRWISE_I16X8_U, ...I32X4_ADD, ...set(3),
  ...get(0), ...i32c(16), I32_ADD, ...set(0),
  BR, 0,
  END, END,
  ...get(3), ...get(5), ...I32X4_ADD, ...set(3),
  // s = acc lanes, widened to 64 bits
  ...get(3), ...lane(0), ...get(3), ...lane(1), I64_ADD, ...get(3), ...lane(2), I64_ADD, ...get(3), ...lane(3), I64_ADD, ...set(4),
  // the last 0..15 bytes: end = p + (n & 15); 16-bit words while two bytes remain
  ...get(1), ...i32c(15), I32_AND, ...get(0), I32_ADD, ...set(2),
  BLOCK, VOID, LOOP, VOID,
  ...get(0), ...i32c(2), I32_ADD, ...get(2), I32_GT_U, BR_IF, 1,
  ...get(4), ...get(0), I64_LOAD16_U, 1, 0, I64_ADD, ...set(4),
  ...get(0), ...i32c(2), I32_ADD, ...set(0),
  BR, 0,
  END, END,
  // an odd last byte
  ...get(0), ...get(2), I32_LT_U, IF, VOID, ...get(4), ...get(0), I64_LOAD8_U, 0, 0, I64_ADD, ...set(4), END,
  // s < 2^40: four folds bring it to 16 bits
  ...fold, ...fold, ...fold, ...fold,
  ...get(4), I32_WRAP_I64, END,
];

/**
 * Pages (64 KiB) of the mirror: 4 MiB, a read chunk's size (a load takes a 256 KiB window, or one
 * longer frame; a frame longer than the mirror is summed by the DataView loop).
 */
const PAGES = 64;
const PAGE = 64 << 10;

/**
 * How much of a read chunk one load mirrors: 256 KiB, so the copy and the sums that follow stay in
 * a core's L2 cache (whole 4 MiB chunks measured no faster and spill it).
 */
export const MIRROR_WINDOW = 256 << 10;

const MODULE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  ...section(1, [1, 0x60, 2, 0x7f, 0x7f, 1, 0x7f]), // type 0: (i32, i32) -> i32
  ...section(2, [1, ...name('env'), ...name('mem'), 0x02, 0x00, 1]), // imports a memory of 1 page or more
  ...section(3, [1, 0]), // function 0 has type 0
  ...section(7, [1, ...name('sum'), 0x00, 0]),
  ...section(10, [1, ...leb(body.length), ...body]),
]);

/**
 * The compiled module, made once: code only, shared by every SimdSum (each instance has its own
 * memory, so two Stacks still share no state). Null where WebAssembly SIMD is missing.
 */
let module: WebAssembly.Module | null | undefined;
function compiled(): WebAssembly.Module | null {
  if (module === undefined) {
    try {
      module = typeof WebAssembly === 'object' && WebAssembly.validate(MODULE) ? new WebAssembly.Module(MODULE) : null;
    } catch {
      module = null;
    }
  }
  return module;
}

type SumFn = (p: number, n: number) => number;

/** An instance of the module over `mem`: its sum function. */
const instantiate = (mod: WebAssembly.Module, mem: WebAssembly.Memory): SumFn =>
  (new WebAssembly.Instance(mod, { env: { mem } }).exports as { sum: SumFn }).sum;

/**
 * `pages` of WebAssembly memory that never grows, or null where it cannot be had: V8 reserves
 * ~10 GiB of address space for each memory, more than a `ulimit -v` may leave (or many alive).
 */
function memory(pages: number): WebAssembly.Memory | null {
  try {
    return new WebAssembly.Memory({ initial: pages, maximum: pages });
  } catch {
    return null;
  }
}

/** Arenas (their ArrayBuffers), each with the sum function of an instance over its memory. */
const arenas = new WeakMap<ArrayBufferLike, SumFn>();

/**
 * Memory the checksum reads in place: `bytes` (rounded up to 64 KiB pages) of WebAssembly memory
 * with an instance of the module over it, or null where WebAssembly SIMD is missing or the memory
 * cannot be had. It never grows (growing would detach every view of it), and the kernel commits
 * its pages only as they are first written. A ChunkZone reads the capture into it.
 */
export function simdArena(bytes: number): ArrayBuffer | null {
  const mod = compiled();
  const mem = mod && bytes > 0 ? memory(Math.ceil(bytes / PAGE)) : null;
  if (!mod || !mem) return null;
  arenas.set(mem.buffer, instantiate(mod, mem));
  return mem.buffer;
}

/** Largest run one sum() call may take (see the lane bound above). */
const MAX_RUN = 256 << 10;

const swap16 = (x: number) => ((x & 0xff) << 8) | (x >>> 8);

/**
 * A mirror of part of one ArrayBuffer in WebAssembly memory, and the checksum over it. `load`
 * copies a byte range in; `sum` works on offsets of the mirrored buffer inside that range.
 */
export class SimdSum {
  /** The buffer mirrored (or the arena summed in place), and the range [lo, hi) of its bytes that are. */
  private ab: ArrayBufferLike | null = null;
  private lo = 0;
  private hi = 0;
  /** The sum over what `ab` is: the mirror's instance, or the arena's. */
  private fn: SumFn | null = null;
  /**
   * The mirror: its memory and the instance over it, made by the first load() of memory that is
   * not an arena (undefined until then; null: the runtime gave none). A replay whose chunks are
   * all arena slots never makes it: 4 MiB less external memory for V8 to count.
   */
  private own: SumFn | null | undefined = undefined;
  private mem: Uint8Array | null = null;
  /** Bytes copied into the mirror (a benchmark figure; not a copy of stream data). */
  mirrored = 0;

  private constructor(private readonly mod: WebAssembly.Module) {}

  /** The engine, or null where WebAssembly SIMD is not to be had (callers use the DataView sum). */
  static create(): SimdSum | null {
    const mod = compiled();
    return mod ? new SimdSum(mod) : null;
  }

  /** True once the mirror's memory was made (the first load() of memory that is not an arena). */
  get mirrorMade(): boolean {
    return this.own !== undefined;
  }

  /** Most bytes one mirror holds. */
  get capacity(): number {
    return PAGES * PAGE;
  }

  /** True when [from, to) of `ab` is in the mirror (or `ab` is the arena being summed in place). */
  has(ab: ArrayBufferLike, from: number, to: number): boolean {
    return ab === this.ab && from >= this.lo && to <= this.hi;
  }

  /**
   * True when `ab` is an arena: it is then what sum() reads, in place, whole (until load() or
   * inPlace() is asked about another buffer). False for other memory, which load() mirrors.
   */
  inPlace(ab: ArrayBufferLike): boolean {
    if (this.ab === ab && this.fn !== null && this.fn !== this.own) return true;
    const f = arenas.get(ab);
    if (!f) return false;
    this.ab = ab;
    this.lo = 0;
    this.hi = ab.byteLength;
    this.fn = f;
    return true;
  }

  /**
   * Make [from, to) of `ab` summable (at most `capacity` bytes; the caller checks with has()): an
   * arena is summed where it is, with no copy; any other buffer's range is mirrored. False when
   * it cannot be: the mirror's memory was not to be had (the caller sums with a DataView).
   */
  load(ab: ArrayBufferLike, from: number, to: number): boolean {
    if (this.inPlace(ab)) return true;
    if (this.own === undefined) {
      const mem = memory(PAGES);
      this.own = mem && instantiate(this.mod, mem);
      this.mem = mem && new Uint8Array(mem.buffer);
    }
    if (this.own === null) return false;
    const n = Math.min(to - from, this.mem!.length);
    this.mem!.set(new Uint8Array(ab, from, n), 0);
    this.ab = ab;
    this.lo = from;
    this.hi = from + n;
    this.fn = this.own;
    this.mirrored += n;
    return true;
  }

  /** Forget the mirror (its buffer may be written again: live slabs between batches). */
  drop(): void {
    this.ab = null;
  }

  /**
   * The big-endian one's-complement sum of [at, at+n) of the mirrored buffer (offsets in that
   * buffer), folded to 16 bits, not complemented: what sumDv computes, folded.
   */
  sum(at: number, n: number): number {
    let p = at - this.lo;
    let s = 0;
    while (n > MAX_RUN) {
      s += this.fn!(p, MAX_RUN);
      p += MAX_RUN;
      n -= MAX_RUN;
    }
    s += this.fn!(p, n);
    s = (s & 0xffff) + (s >>> 16);
    s = (s & 0xffff) + (s >>> 16);
    return swap16(s);
  }
}
