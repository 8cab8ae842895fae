import type { DropReason } from './wire/drop.js';
import { later, spanSeconds } from './time.js';

/** Counters of one run (BSD ipstat/tcpstat analogues live here, never in module state). */
export class Stats {
  frames = 0;
  /** Captured bytes (sum of caplen). */
  bytes = 0;
  /** Bytes on the wire (sum of origLen). */
  wireBytes = 0;
  /** Frames per LINKTYPE value. */
  readonly linktypes: Record<number, number> = {};
  /** Frames per protocol met while decoding (a frame counts once per layer: ipv4 and tcp). */
  private readonly others: Record<string, number> = {};
  /** The hot protocols get plain fields (a keyed increment per packet costs more than decoding). */
  ipv4 = 0;
  ipv6 = 0;
  tcp = 0;
  udp = 0;
  /** Counted drops by reason (DESIGN.md channel 1). */
  readonly drops: Partial<Record<DropReason, number>> = {};
  /** Conditions worth counting that do not drop the packet (bad checksums taken anyway, padding...). */
  readonly notes: Record<string, number> = {};
  /**
   * Earliest and latest capture timestamps (timestamps may go backwards in a file), as their frames'
   * headers gave them: seconds and nanoseconds, none before the first frame.
   */
  private firstSec = Infinity;
  private firstNsec = 0;
  private lastSec = -Infinity;
  private lastNsec = 0;

  /** A frame captured at `sec` seconds and `nsec` nanoseconds. */
  at(sec: number, nsec: number): void {
    if (later(sec, nsec, this.firstSec, this.firstNsec)) {
      this.firstSec = sec;
      this.firstNsec = nsec;
    }
    if (later(this.lastSec, this.lastNsec, sec, nsec)) {
      this.lastSec = sec;
      this.lastNsec = nsec;
    }
  }

  /** The earliest timestamp as seconds (Infinity before any frame), and the latest (-Infinity). */
  get firstTs(): number {
    return this.firstSec + this.firstNsec / 1e9;
  }

  get lastTs(): number {
    return this.lastSec + this.lastNsec / 1e9;
  }

  /** Seconds from the earliest timestamp to the latest, exactly (spanSeconds); 0 before any frame. */
  get duration(): number {
    return this.firstSec === Infinity ? 0 : spanSeconds(this.firstSec, this.firstNsec, this.lastSec, this.lastNsec);
  }

  drop(reason: DropReason): void {
    this.drops[reason] = (this.drops[reason] ?? 0) + 1;
  }

  note(what: string): void {
    this.notes[what] = (this.notes[what] ?? 0) + 1;
  }

  proto(name: string): void {
    this.others[name] = (this.others[name] ?? 0) + 1;
  }

  /** Frames per protocol, the hot counters included. */
  get protocols(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const k of ['ipv4', 'ipv6', 'tcp', 'udp'] as const) if (this[k]) out[k] = this[k];
    return Object.assign(out, this.others);
  }

}
