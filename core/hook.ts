import type { Mbuf, PktHdr } from './mbuf/mbuf.js';
import type { Connection } from './net/in-pcb.js';
import type { NetNames } from './net/net-names.js';
import type { Segment } from './tcp/tcp-input.js';

/** Where a TCP segment sits in the frame that carried it (offsets from `m.off`). Valid during the call only. */
export interface SegmentFrame {
  readonly m: Mbuf;
  readonly ipOff: number;
  readonly thOff: number;
  readonly ipv: 4 | 6;
  /** TCP header length. */
  readonly hlen: number;
}

/**
 * What a hook may do with the output capture: the stack writes every input frame through unless
 * a hook consumes it, and hooks emit frames of their own (segments the modelled stack sends).
 */
export interface Output {
  /** The frame being processed is not written as captured (a hook emits what replaces it, if anything). */
  consume(): void;
  /** Write a frame now, after what was written before it. Returns its output frame number (1-based). */
  emit(m: Mbuf): number;
  /** The packet header of the frame being processed (its timestamp is "now"). */
  readonly hdr: PktHdr;
  /** Capture time of the frame being processed, seconds. */
  readonly now: number;
  /** The memory captured frames live in (bytes sent from anywhere else were copied). */
  readonly memory: WeakSet<ArrayBufferLike>;
  /** Run `task` once the current frame has been processed and written (BSD softnet task queue). */
  sched(task: () => void): void;
  /** The run's network names (a selector that names a network is matched against them). */
  readonly nets?: NetNames;
}

/**
 * Something that models what the stack does beyond input (fusing, splicing): it sees every
 * connection come and go and every TCP segment after tcp_input ran, and shapes the output.
 */
export interface StackHook {
  attach?(conn: Connection, out: Output): void;
  /** After tcp_input: `c2s` is the segment's direction; `seg.m` may have been trimmed, use `f`. */
  segment(conn: Connection, c2s: boolean, seg: Segment, f: SegmentFrame, out: Output): void;
  /** Capture time moved to `now` (before the frame at that time is processed). */
  tick?(now: number, out: Output): void;
  /** The connection leaves the table (its readers have been drained). */
  detach?(conn: Connection, out: Output): void;
  /** End of input, after every connection left. */
  finish?(out: Output): void;
}
