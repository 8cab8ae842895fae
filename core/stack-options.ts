import type { InputOptions } from './ctx.js';
import type { StackHook } from './hook.js';
import type { SocketApp } from './socket/reader.js';
import type { ConnSummary } from './tcp/summary.js';
import type { OverlapPolicy } from './tcp/tcp-reass.js';
import type { Connection } from './net/in-pcb.js';
import type { Mbuf } from './mbuf/mbuf.js';

/** Options of a Stack; every field has a default. */
export type StackOptions = Readonly<Partial<InputOptions & {
  /** Overlapping data with different bytes: which copy wins. Default `first` (bytes already received). */
  policy: OverlapPolicy;
  /** Captured bytes one direction may hold out of order before its hole is skipped. Default 4 MiB. */
  reassLimit: number;
  /** Captured bytes all connections may hold out of order. Default: the memory budget. */
  reassTotal: number;
  /** Segments one direction may hold out of order before its hole is skipped. Default 16,384. */
  reassSegs: number;
  /** Connections in the table; the oldest is evicted beyond it. Default: what the memory budget holds. */
  maxConnections: number;
  /**
   * Bytes for queued data and connection state together (each connection counted at
   * CONN_BYTES): beyond it the oldest connection is evicted, or the growing one skips its holes.
   * Default 256 MiB.
   */
  memoryBudget: number;
  /** Compute TCP checksums to count bad ones (always on with verifyChecksums). Default true. */
  checksums: boolean;
  /**
   * Sum TCP checksums with WebAssembly SIMD where the runtime has it (else a DataView loop, which
   * is also what `false` picks: the two are tested against each other). Default true.
   */
  simd: boolean;
  /** The reader of every socket. Default: drain into nothing (DrainApp without hashing). */
  app: SocketApp;
  /**
   * Called with each connection's summary when it leaves the table. Without it the summaries are
   * kept in `stack.finished` (memory then grows with the number of connections); null makes none
   * (the counters in `stack.tcpstat` are kept either way).
   */
  onConnection: ((s: ConnSummary) => void) | null;
  /**
   * Called with each connection as it leaves the table, after its readers have finished and before
   * its objects may go back to the zone: a report that writes a connection out at once reads it
   * here, with no summary made (replay's and live's, conn-text.ts). It must not keep the
   * connection past the call. Default none.
   */
  onRetire: ((c: Connection) => void) | null;
  /**
   * Called with the frame of every TCP segment of a connection, before tcp_input takes it (true:
   * from the client). extract's %E/%e take each direction's Ethernet addresses from it.
   */
  frameSeen: ((conn: Connection, c2s: boolean, m: Mbuf) => void) | null;
  /**
   * What tells connections apart besides their 4-tuple. `separate` (default): the network too, so
   * each VLAN stack and each tunnel (VNI, GRE key, ERSPAN session, PPTP call) is a network of its
   * own and the same 4-tuple in two of them is two connections. `merge`: the 4-tuple alone, as a
   * host's stack sees it: directions that came through different VLANs, VNIs or mirror sessions
   * (asymmetric routing, a SPAN session per direction) meet in one connection. IP reassembly keeps
   * each network's fragments apart either way.
   */
  networks: 'separate' | 'merge';
  /** Seconds of capture time a closed connection's tombstone absorbs late packets. Default 60. */
  tombstoneTtl: number;
  /**
   * Reuse the objects of connections that left the table for new ones (BSD: pcbs come from a uma
   * zone and go back to it), when the app says it keeps no reference past detach (SocketApp.recycles)
   * and no hook runs. Default true; false makes every connection new.
   */
  recycle: boolean;
  /** Check the invariants of every live connection after each batch (slow; tests and --debug). */
  debug: boolean;
  /** Run TCP input (connections, reassembly). Off: decode up to the TCP header and stop. Default true. */
  tcp: boolean;
  /** Models that act beyond input (fusing, splicing); with any, the stack produces the output frames. */
  hooks: readonly StackHook[];
  /**
   * Produce output frames in `stack.out` (every input frame, minus what hooks consume, plus what
   * they emit). Without it hooks still run and count (`outFrames`), but no frame is kept.
   */
  output: boolean;
}>>;
