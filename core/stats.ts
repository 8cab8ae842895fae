import type { DropReason } from './wire/drop.js';

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
  /** Earliest and latest capture timestamps, seconds (timestamps may go backwards in a file). */
  firstTs = Infinity;
  lastTs = -Infinity;

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
