import type { Mbuf } from '../mbuf/mbuf.js';
import type { ChunkZone } from './zone.js';
import { FramePool } from './frame-pool.js';
import type { CaptureFilter } from './bpf.js';

/** One capture interface: a classic pcap file, or one pcapng IDB. */
export interface Iface {
  /** Global index over the run (files and sections in order). */
  readonly ifidx: number;
  readonly linktype: number;
  readonly snaplen: number;
  /** pcapng if_tsresol byte (6 = µs, 9 = ns, bit 7 set = power of 2); classic pcap: 6 or 9. */
  readonly tsresol: number;
  /** pcapng if_tsoffset, seconds. */
  readonly tsoffset: number;
  /** Byte order of the file or section (NULL link headers are in it). */
  readonly bigEndian: boolean;
  /** Interface name (pcapng if_name), when the capture gave one. */
  readonly name: string | undefined;
  /** The file the interface came from. */
  readonly file: string;
}

/** What one input file turned out to be. */
export interface FileInfo {
  readonly name: string;
  /** null until the magic bytes said which (and for good when they named neither). */
  format: 'pcap' | 'pcapng' | null;
  gzip: boolean;
  nanos: boolean;
  bigEndian: boolean;
  sections: number;
  frames: number;
  /**
   * The snaplen the capture declares (pcap's header; pcapng: the smallest of its interfaces'),
   * null when it declares none (pcapng interfaces with 0) or the file is not a capture.
   */
  snaplen: number | null;
  /** pcapng custom blocks: not packets, but they take a frame number as in Wireshark. */
  customBlocks: number;
  /** Frames the capture filter rejected (only when the run has one). */
  filtered?: number;
}

/** A batch of frames: each an Mbuf over capture memory with its packet header set. */
export type Batch = Mbuf[];

/** Largest batch a reader yields (bounds latency and the memory of one batch). */
export const MAX_BATCH = 8192;

/**
 * A batch being read: its frames written by index into one array the walker reuses for every
 * batch of its file (`n` of them so far), handed on by takeBatch as an exact copy. Pushing into
 * a new array per batch grew its store again and again (16 → 24 → ... → 4,096 slots for a
 * chunk's 2,800 frames, each growth a new store and a copy): 18 of the 42 MB bulk replay
 * allocated. Entries past `n` are frames of earlier batches, overwritten by later ones: until
 * then they keep their chunks referenced, at most a batch's worth beyond what is in flight.
 */
export interface BatchFrames {
  readonly out: Batch;
  n: number;
  /** The most frames the batch being read may take: FIRST_BATCH, doubled by each takeBatch up to MAX_BATCH. */
  max: number;
}

/**
 * A file's first batch holds at most this many frames, and each batch may hold twice as many as
 * the one before, up to MAX_BATCH (64, 128, ..., 8,192: eight sizes). V8 compiles the per-frame
 * path while the first batches run, and small first batches let it do so sooner: with them every
 * per-batch function (the walker's record loop, the stack's input loop) has returned a few times
 * before it is compiled, and in --trace-opt the input loop and the connection lookup were
 * optimized 50-100 ms sooner (the deoptimizations were not fewer: the rest is not pinned down). Measured
 * against MAX_BATCH from the start (medians of alternating runs): bulk replay 936 -> 844 ms (10
 * runs each), its first 258 MB 471 -> 442 ms (10) and 522 -> 475 with 16 (12), the loopback
 * capture 454 -> 429 ms, the short flows 2.00 -> 1.96 s, smtp.pcap 159 -> 155 ms (6-10 runs); 4, 16,
 * 64 and 256 were alike.
 */
export const FIRST_BATCH = 64;

/** A batch builder for one file: empty, its first batch FIRST_BATCH frames at most. */
export function batchFrames(): BatchFrames {
  return { out: [], n: 0, max: FIRST_BATCH };
}

/** The frames read so far, as a batch of their own; the builder starts again at 0, and may take twice as many. */
export function takeBatch(f: BatchFrames): Batch {
  const batch = f.out.slice(0, f.n);
  f.n = 0;
  f.max = Math.min(MAX_BATCH, f.max * 2);
  return batch;
}

/**
 * State shared by the readers of one run: interfaces seen, frame numbering, byte counters.
 * Readers of several files in one run share it, so frame numbers and interface indices continue.
 */
export class CaptureSession {
  readonly ifaces: Iface[] = [];
  readonly files: FileInfo[] = [];
  /** Frames read so far (also the last frame number handed out). */
  frames = 0;
  /**
   * The memory frames live in (read chunks, straddle copies, live slabs): what the models check to
   * count bytes they copied (anything they send from elsewhere was copied).
   */
  readonly memory = new WeakSet<ArrayBufferLike>();
  /**
   * Where file readers take their chunks: null (the default) for fresh ones, which stay valid as
   * long as anything views them; a ChunkZone reuses them, for consumers that keep no views.
   */
  zone: ChunkZone | null = null;
  /**
   * The capture filter file readers apply (tcpdump's language; null: every frame is read). Frames it
   * rejects keep their frame numbers, so the numbers are the file's, as Wireshark shows them.
   */
  filter: CaptureFilter | null = null;
  /** Where file readers make their frames (objects of frames given back are made again). */
  readonly pool = new FramePool(MAX_BATCH);
  /** Bytes copied because a record straddled two read chunks (the one copy file input makes). */
  straddleBytes = 0;
  /** Bytes of input consumed (decompressed), over all finished files. */
  bytesRead = 0;
  /** Bytes consumed so far including the file being read (for progress; compressed inputs count decompressed bytes). */
  bytesInFlight = 0;

  addIface(i: Omit<Iface, 'ifidx'>): Iface {
    const iface: Iface = { ...i, ifidx: this.ifaces.length };
    this.ifaces.push(iface);
    return iface;
  }
}
