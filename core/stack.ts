import type { Batch, CaptureSession, Iface } from './capture/session.js';
import type { Ctx, InputOptions } from './ctx.js';
import type { Mbuf } from './mbuf/mbuf.js';
import { if_input } from './net/if.js';
import { Stats } from './stats.js';
import { checkTcp } from './wire/tcp.js';

/** Options of a Stack; every field has a default. */
export type StackOptions = Readonly<Partial<InputOptions>>;

/**
 * The userland network stack one run drives: it owns the counters, the interface table (shared
 * with the capture session) and, as layers land, the pcb table and limits. No module-level state:
 * two Stacks never share anything.
 */
export class Stack implements Ctx {
  readonly stats = new Stats();
  readonly opts: InputOptions;

  constructor(
    readonly session: CaptureSession,
    opts: StackOptions = {},
  ) {
    this.opts = { verifyChecksums: opts.verifyChecksums ?? false };
  }

  get ifaces(): readonly Iface[] {
    return this.session.ifaces;
  }

  /** Run a batch of frames through if_input, synchronously. */
  input(batch: Batch): void {
    const st = this.stats;
    for (let i = 0; i < batch.length; i++) {
      const m = batch[i]!;
      const h = m.hdr!;
      st.frames++;
      st.bytes += h.caplen;
      st.wireBytes += h.origLen;
      st.linktypes[h.linktype] = (st.linktypes[h.linktype] ?? 0) + 1;
      const t = h.tsSec + h.tsNsec / 1e9;
      if (t < st.firstTs) st.firstTs = t;
      if (t > st.lastTs) st.lastTs = t;
      if_input(this, m);
    }
  }

  /** End of input: flush what is pending (connections, reassembly queues). */
  finish(): void {}

  ipReass(_m: Mbuf, _ipOff: number, _ipv: 4 | 6, _capLen: number, _totalLen: number): void {
    this.stats.note('ip.fragments-not-reassembled');
  }

  tcpInput(m: Mbuf, _ipOff: number, thOff: number, _ipv: 4 | 6, end: number, _wireEnd: number): void {
    const r = checkTcp(m.buf, m.off + thOff, end - thOff);
    if (typeof r === 'string') this.stats.drop(r);
  }
}
