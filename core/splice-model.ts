import type { Output, SegmentFrame, StackHook } from './hook.js';
import type { Connection } from './net/in-pcb.js';
import { type Selector, selectedDir, selects } from './selector.js';
import { type ProtoSw, type Socket, type SoError, sorwakeup } from './socket/socket.js';
import { soidle, somove, sosplice } from './socket/splice.js';
import { SpliceDrain, type SpliceClose } from './tcp/tcp-emu.js';
import type { Segment } from './tcp/tcp-input.js';
import { microsAfter, secondsToNanos, spanNanos } from './time.js';

/** One splice a run sets up: `from`'s received bytes onto `to`'s connection. */
export interface SpliceSpec {
  /** The source: the socket that receives this flow direction. */
  readonly from: Selector;
  /** The drain: the socket that sends this flow direction (its connection is re-synthesised). */
  readonly to: Selector;
  readonly max?: number;
  /** Idle timeout, seconds of capture time. */
  readonly idle?: number;
  readonly close?: SpliceClose;
  /** Set up the splice before this frame number, or this many seconds after the first frame. */
  readonly at?: { frame?: number; time?: number };
  /** Dissolve it (setsockopt SO_SPLICE with fd -1) before this frame, or at this time. */
  readonly until?: { frame?: number; time?: number };
  /** SO_OOBINLINE on the source (default true): urgent bytes stay in the stream and go out as urgent. */
  readonly oobinline?: boolean;
}

/** What became of one splice (the report's row; JSON keys are stable). */
export interface SpliceRecord {
  from: string;
  to: string;
  /** Bytes moved (getsockopt SO_SPLICE). */
  spliced: number;
  /** EOF, or the errno that ended it; `not started` / `active` otherwise. */
  reason: string;
  /** The source's so_error when it ended: 0 or an errno name. */
  soError: 0 | SoError;
  /** Bytes the source received that were not spliced (readable by the application). */
  remaining: number;
  /** Capture time the splice ended, `sec.frac`, or null. */
  endedAt: string | null;
  startedAt: string | null;
  /** Data segments the model sent on the drain. */
  segments: number;
  /** Payload bytes the drain sent that were not in capture memory: copied somewhere on the way (measured; 0 is zero-copy). */
  copiedBytes: number;
  /** A read/write relay moving the same data: wakeups, read+write calls, bytes copied to and from userland. */
  userland: { wakeups: number; syscalls: number; copiedBytes: number };
  /** The drain's bytes in the output against what the captured relay wrote. */
  integrity: 'ok' | 'differs';
  outputBytes: number;
  capturedBytes: number;
}

const CAPTURED_TCP: ProtoSw = { name: 'tcp', send: () => 'EOPNOTSUPP', rcvd: () => {} };

class Run {
  src: Connection | null = null;
  srcSo: Socket | null = null;
  held: Socket['upcall'] = null;
  drain: SpliceDrain | null = null;
  state: 'waiting' | 'spliced' | 'ended' | 'failed' = 'waiting';
  reason = 'not started';
  soError: 0 | SoError = 0;
  /** Nanoseconds after the run's first frame (NaN: not yet). */
  startedAt = NaN;
  endedAt = NaN;
  srcTotal = 0;
  /** `at`, `until` and `idle` in nanoseconds (NaN: not given). */
  readonly atNs: number;
  readonly untilNs: number;
  readonly idleNs: number;
  constructor(readonly spec: SpliceSpec) {
    this.atNs = spec.at?.time === undefined ? NaN : secondsToNanos(spec.at.time);
    this.untilNs = spec.until?.time === undefined ? NaN : secondsToNanos(spec.until.time);
    this.idleNs = spec.idle === undefined ? 0 : secondsToNanos(spec.idle);
  }
}

/**
 * Splicing between captured flows (OpenBSD SO_SPLICE). The source socket's application does not
 * read from the moment its connection appears (a relay that has not spliced yet keeps data in
 * so.rcv); the splice is set up once both connections are established (or at `at`), and from then
 * on sorwakeup on the source runs somove, which moves Mbufs into the drain's so.snd, from where the
 * drain's tcp_output sends them. When the splice ends the application reads what is left.
 */
export class SpliceModel implements StackHook {
  private readonly runs: Run[];
  private readonly drains = new Map<Connection, SpliceDrain[]>();
  /**
   * The run's first frame's time, as its header gave it: the model's clock counts nanoseconds from
   * it (exact integers, where capture times as seconds in one double have ~0.24 µs steps, and a
   * frame 2.3 s after the first came out 2.2999999523 s after it).
   */
  private firstSec = NaN;
  private firstNsec = 0;

  constructor(specs: readonly SpliceSpec[]) {
    this.runs = specs.map((s) => new Run(s));
  }

  attach(conn: Connection, out?: Output): void {
    const nets = out?.nets ?? null;
    for (const r of this.runs) {
      if (!r.src && selects(r.spec.from, conn, nets)) {
        r.src = conn;
        r.srcSo = selectedDir(r.spec.from, conn) === 's2c' ? conn.client.so : conn.server.so;
        r.held = r.srcSo.upcall;
        r.srcSo.upcall = null; // the relay does not read before it splices
        r.srcSo.oobinline = r.spec.oobinline ?? true;
      }
      if (!r.drain && selects(r.spec.to, conn, nets)) {
        r.drain = new SpliceDrain(conn, selectedDir(r.spec.to, conn) !== 's2c', r.spec.close ?? 'fin');
        const list = this.drains.get(conn) ?? [];
        list.push(r.drain);
        this.drains.set(conn, list);
      }
    }
  }

  /** Nanoseconds from the run's first frame to the frame being processed. */
  private clock(out: Output): number {
    const h = out.hdr;
    return spanNanos(this.firstSec, this.firstNsec, h.tsSec, h.tsNsec);
  }

  tick(_now: number, out: Output): void {
    if (Number.isNaN(this.firstSec)) {
      this.firstSec = out.hdr.tsSec;
      this.firstNsec = out.hdr.tsNsec;
    }
    const now = this.clock(out);
    const due = (w: SpliceSpec['at'], ns: number) => !!w && ((w.frame !== undefined && out.hdr.frameNo >= w.frame) || now >= ns);
    for (const r of this.runs) {
      if (r.state === 'waiting' && due(r.spec.at, r.atNs)) this.start(r, out);
      if (r.state === 'spliced' && r.srcSo && soidle(r.srcSo, now)) this.ended(r);
      if (r.state === 'spliced' && due(r.spec.until, r.untilNs)) {
        // the application unsplices: setsockopt(SO_SPLICE, fd -1), so_error untouched
        sosplice(r.srcSo!, { drain: null }, this.env(r, out));
        this.ended(r, 'unspliced');
      }
    }
  }

  segment(conn: Connection, c2s: boolean, seg: Segment, f: SegmentFrame, out: Output): void {
    const drains = this.drains.get(conn);
    if (drains) for (const d of drains) d.segment(c2s, seg, f, out);
    for (const r of this.runs) {
      if (r.state !== 'waiting' || r.spec.at || !r.src || !r.drain) continue;
      if (r.src !== conn && r.drain.conn !== conn) continue;
      const srcUp = r.srcSo!.connected;
      const relay = r.drain.conn;
      if (srcUp && relay.client.state === 'ESTABLISHED' && relay.server.state === 'ESTABLISHED') out.sched(() => this.start(r, out));
    }
  }

  /** setsockopt(SO_SPLICE) now. A failed setup leaves the source to its reader. */
  private start(r: Run, out: Output): void {
    if (r.state !== 'waiting') return;
    r.startedAt = this.clock(out);
    if (!r.src || !r.drain) {
      r.state = 'failed';
      r.reason = !r.src ? 'no source connection' : 'no drain connection';
      return;
    }
    const so = r.srcSo!;
    so.proto ??= CAPTURED_TCP;
    r.state = 'spliced';
    r.reason = 'active';
    r.drain.start(out);
    const err = sosplice(so, { drain: r.drain.so, max: r.spec.max, idle: r.idleNs }, this.env(r, out));
    if (err) {
      r.state = 'failed';
      r.reason = err;
      r.drain.abort();
      this.release(r);
    }
  }

  /** The stack's task queue, the model's clock (nanoseconds: idle is given in them), and somove that notices when a splice ends. */
  private env(r: Run, out: Output) {
    return {
      sched: (t: () => void) => out.sched(t),
      now: () => this.clock(out),
      somove: (s: Socket) => {
        const go = somove(s);
        if (!go) this.ended(r);
        return go;
      },
    };
  }

  private ended(r: Run, why?: string): void {
    if (r.state !== 'spliced') return;
    const so = r.srcSo!;
    r.state = 'ended';
    r.soError = so.error ?? 0;
    r.reason = why ?? so.error ?? 'EOF';
    r.endedAt = so.sp!.endedAt;
    r.drain!.spliceEnded();
    this.release(r);
  }

  /** The application reads the source again, starting with what the splice left. */
  private release(r: Run): void {
    const so = r.srcSo!;
    so.upcall = r.held;
    if (so.rcv.cc > 0 || so.cantRcvMore) sorwakeup(so);
  }

  detach(conn: Connection): void {
    for (const r of this.runs) {
      if (r.src !== conn) continue;
      r.srcTotal = r.srcSo!.rcv.total;
      if (r.state === 'waiting') this.release(r);
    }
  }

  /** A time of the model's clock as the capture's `seconds.micros`, or null. */
  private time(ns: number): string | null {
    return Number.isNaN(ns) ? null : microsAfter(this.firstSec, this.firstNsec, ns);
  }

  /** The report, one record per splice. */
  records(): SpliceRecord[] {
    return this.runs.map((r) => {
      const sp = r.srcSo?.sp;
      const spliced = sp?.len ?? 0;
      const total = Math.max(r.srcTotal, r.srcSo?.rcv.total ?? 0);
      const d = r.drain;
      const wakeups = r.state === 'spliced' || r.state === 'ended' ? (sp?.wakeups ?? 0) + 1 : 0;
      return {
        from: r.spec.from.text,
        to: r.spec.to.text,
        spliced,
        reason: r.reason,
        soError: r.soError,
        remaining: total - spliced,
        endedAt: this.time(r.endedAt),
        startedAt: this.time(r.startedAt),
        segments: d?.segments ?? 0,
        copiedBytes: d?.copied ?? 0,
        userland: { wakeups, syscalls: 2 * wakeups, copiedBytes: 2 * spliced },
        integrity: d && d.outBytes === d.capBytes && d.outHash.copy().digest('hex') === d.capHash.copy().digest('hex') ? 'ok' : 'differs',
        outputBytes: d?.outBytes ?? 0,
        capturedBytes: d?.capBytes ?? 0,
      };
    });
  }
}
