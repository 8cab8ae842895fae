import { NetNames } from './net/net-names.js';
import type { Batch, CaptureSession, Iface } from './capture/session.js';
import type { Ctx, InputOptions } from './ctx.js';
import { if_input } from './net/if.js';
import { Stats } from './stats.js';
import { checkTcp, synOptions, type SynOptions, TH_ACK, TH_SYN, TH_URG, tcpAck, tcpFlags, tcpSeq, tcpUrp, tcpWindow } from './wire/tcp.js';
import { be16 } from './wire/bytes.js';
import { SimdSum } from './wire/checksum-simd.js';
import { TcpSum } from './wire/tcp-sum.js';
import { type Ext, m_copym, Mbuf } from './mbuf/mbuf.js';
import { Connection, Tombstone } from './net/in-pcb.js';
import { PcbTable } from './net/pcb-table.js';
import { IpReass } from './net/ip-reass.js';
import { type Segment, tcp_drain, tcp_input, tcp_skip_holes, type TcpCtx } from './tcp/tcp-input.js';
import type { Tcpcb } from './tcp/tcpcb.js';
import { tcpcheck } from './tcp/tcp-check.js';
import { addTcpstat, connSummary, type ConnSummary, type Digest, newTcpstat } from './tcp/summary.js';
import { DrainApp, type SocketApp } from './socket/reader.js';
import type { Output, StackHook } from './hook.js';
import type { PktHdr } from './mbuf/mbuf.js';
import type { StackOptions } from './stack-options.js';

export type { StackOptions } from './stack-options.js';

/**
 * What one connection in the table costs, for the memory budget: two Tcpcbs, two Sockets and their
 * buffers, the Connection and its reader measure ~640 bytes of heap (test/tcp/adversarial.test.ts);
 * counted at 2 KiB, which leaves room for what a reader attaches (hashes, file buffers) and for
 * the tombstones of closed connections.
 */
export const CONN_BYTES = 2048;

/** Most tombstones kept at once; the oldest go first. */
const MAX_TOMBSTONES = 65536;

/**
 * The userland network stack one run drives: it owns the counters, the interface table (shared
 * with the capture session) and, as layers land, the pcb table and limits. No module-level state:
 * two Stacks never share anything.
 */
export class Stack implements Ctx, Output {
  readonly stats = new Stats();
  readonly nets = new NetNames();
  /** StackOptions.networks is `merge`: connections are found by their 4-tuple alone. */
  private readonly mergeNets: boolean;
  readonly opts: InputOptions;
  readonly pcbs = new PcbTable();
  /** Connections that have left the table, in the order they left (without onConnection). */
  readonly finished: ConnSummary[] = [];
  /** TCP counters over every connection that has left the table (netstat -s). */
  readonly tcpstat = newTcpstat();
  private readonly onConnection: ((s: ConnSummary) => void) | null;
  private readonly onRetire: ((c: Connection) => void) | null;
  private readonly frameSeen: ((conn: Connection, c2s: boolean, m: Mbuf) => void) | null;
  private readonly tombs: Tombstone[] = [];
  /**
   * Connections that left the table, to be made new again (BSD uma_zfree/uma_zalloc of pcbs): with
   * 100,000 connections open at once, V8 copied each new one twice before it reached the old
   * generation, and let the dead ones pile up there to four times the live heap before collecting.
   */
  private readonly free: Connection[] = [];
  private readonly recycles: boolean;
  /**
   * Payload Mbufs the app gave back once drained (SocketApp.spareMbufs): tcp_input's next payloads
   * are made of them. On bulk flows a new Mbuf per segment was over half of replay's allocation.
   */
  private readonly spareM: Mbuf[] = [];
  /** Connections made from freed ones (BSD vmstat -z would count the zone's allocations). */
  connsReused = 0;
  /** Payload Mbufs made of spare ones (spareM). */
  mbufsReused = 0;
  /**
   * Most connections kept on it: as many as the budget lets the table hold. It never holds more
   * than the table held at its fullest (only connections that left it go there), so it adds
   * nothing to the peak; it keeps that peak's objects for the next burst, as a zone keeps its items.
   */
  private readonly freeMax: number;
  private tombHead = 0;
  /**
   * Expired tombstones, made again for the next connections to leave (BSD: tcptw from a zone).
   * Once the table holds MAX_TOMBSTONES every connection that leaves expires one: made new, each
   * lived long enough to be copied to the old generation and die there, and the queue's dead
   * head (up to half of it) kept ~35,000 of them alive on 100,000 connections.
   */
  private readonly tombFree: Tombstone[] = [];
  /** Captured bytes held in reassembly queues, over every connection. */
  reassBytes = 0;
  private nextStream = 0;
  /**
   * The frame being processed: its capture time in seconds; as its header has it, seconds and
   * nanoseconds; and its number in its capture (follow's YAML stamps what is read with them). Set
   * by input(), read-only elsewhere.
   */
  now = 0;
  nowSec = 0;
  nowNsec = 0;
  nowFrame = 0;
  private readonly app: SocketApp;
  /**
   * The app's digest (SHA-256 of what a socket read, with hashing), bound once (a bound function a
   * connection was ~70 bytes of garbage each): a report writing connections (onRetire) reads it.
   */
  readonly digest: Digest | undefined;
  private readonly tombTtl: number;
  private readonly debug: boolean;
  private readonly limits: { reassLimit: number; reassTotal: number; maxConnections: number; budget: number; tcp: boolean };
  private readonly tcpCtx: TcpCtx;
  private readonly reass: IpReass = new IpReass(this);
  /** TCP checksum verification (null: checksums neither counted nor verified). */
  private readonly sums: TcpSum | null;
  private readonly seg: Segment = { seq: 0, ack: 0, flags: 0, win: 0, m: null, plen: 0, wlen: 0, opts: null, urp: 0 };
  private readonly synOpts: SynOptions = { mss: 0, wscale: -1, sackPermitted: false, timestamps: false };
  private readonly hooks: readonly StackHook[];
  /**
   * Output frames in order, when the stack produces them (hooks, or `output`): the caller writes
   * and empties this after each batch.
   */
  readonly out: Mbuf[] | null;
  /** Frames put in `out` so far (output frame numbers). */
  outFrames = 0;
  private cur: Mbuf | null = null;
  private consumed = false;
  private readonly tasks: Array<() => void> = [];
  /** Where the segment being processed sits in its frame (one object, reused: hooks never keep it). */
  private readonly frame: { m: Mbuf; ipOff: number; thOff: number; ipv: 4 | 6; hlen: number } = { m: new Mbuf(new Uint8Array(0), 0, 0), ipOff: 0, thOff: 0, ipv: 4, hlen: 0 };

  constructor(
    readonly session: CaptureSession,
    opts: StackOptions = {},
  ) {
    this.opts = { verifyChecksums: opts.verifyChecksums ?? false };
    this.app = opts.app ?? new DrainApp(false);
    this.digest = this.app.digest?.bind(this.app);
    this.onConnection = opts.onConnection === undefined ? (c) => this.finished.push(c) : opts.onConnection;
    this.onRetire = opts.onRetire ?? null;
    this.frameSeen = opts.frameSeen ?? null;
    this.tombTtl = opts.tombstoneTtl ?? 60;
    this.mergeNets = opts.networks === 'merge';
    this.debug = opts.debug ?? false;
    this.limits = {
      reassLimit: opts.reassLimit ?? 4 << 20,
      reassTotal: opts.reassTotal ?? Infinity,
      maxConnections: opts.maxConnections ?? Infinity,
      budget: opts.memoryBudget ?? 256 << 20,
      tcp: opts.tcp ?? true,
    };
    this.hooks = opts.hooks ?? [];
    this.freeMax = Math.min(this.limits.maxConnections, Math.floor(this.limits.budget / CONN_BYTES));
    this.recycles = (opts.recycle ?? true) && this.app.recycles === true && this.hooks.length === 0;
    if (this.recycles) this.app.spareMbufs?.(this.spareM);
    this.out = opts.output ? [] : null;
    this.sums = (opts.checksums ?? true) || this.opts.verifyChecksums ? new TcpSum(opts.simd !== false ? SimdSum.create() : null) : null;
    const policy = opts.policy ?? 'first';
    const stats = this.stats;
    this.tcpCtx = {
      policy,
      reassLimit: this.limits.reassLimit,
      reassSegs: opts.reassSegs ?? 16384,
      queued: (d) => { this.reassBytes += d; },
      note: (w) => stats.note(w),
    };
  }

  get ifaces(): readonly Iface[] {
    return this.session.ifaces;
  }

  /** Run a batch of frames through if_input, synchronously. */
  input(batch: Batch): void {
    const st = this.stats;
    this.sums?.batch();
    const bytes0 = st.bytes;
    for (let i = 0; i < batch.length; i++) {
      const m = batch[i]!;
      const h = m.hdr!;
      st.frames++;
      st.bytes += h.caplen;
      st.wireBytes += h.origLen;
      st.linktypes[h.linktype] = (st.linktypes[h.linktype] ?? 0) + 1;
      this.nowSec = h.tsSec;
      this.nowNsec = h.tsNsec;
      this.nowFrame = h.frameNo;
      // a fraction of a second or more (a pcap record's microseconds past 999,999): counted, and
      // carried into the seconds where tshark's reader wraps it at 2^32 ns
      if (h.tsNsec >= 1e9) st.note('frame.tsfrac');
      const t = (this.now = h.tsSec + h.tsNsec / 1e9);
      st.at(h.tsSec, h.tsNsec);
      if (!this.hooks.length && !this.out) {
        if_input(this, m);
        continue;
      }
      this.cur = m;
      this.consumed = false;
      for (const hk of this.hooks) hk.tick?.(t, this);
      if_input(this, m);
      if (!this.consumed) this.emit(m);
      this.runTasks();
    }
    this.app.batch?.(st.bytes - bytes0);
    if (this.debug) this.check();
  }

  consume(): void {
    this.consumed = true;
  }

  emit(m: Mbuf): number {
    this.out?.push(m);
    return ++this.outFrames;
  }

  get memory(): WeakSet<ArrayBufferLike> {
    return this.session.memory;
  }

  /**
   * True when a frame may be kept past its batch: hooks (the models) see every frame and keep some
   * (headers to copy, frames to send later), and output frames go out after the batch. Without
   * either, the stack keeps what it needs of a frame as new Mbufs (payload, fragments), so the
   * frames themselves can be made again (FramePool).
   */
  get keepsFrames(): boolean {
    return this.hooks.length > 0 || this.out !== null;
  }

  get hdr(): PktHdr {
    return this.cur!.hdr!;
  }

  sched(task: () => void): void {
    this.tasks.push(task);
  }

  /** Run the queued tasks, and the tasks they queue, in order. */
  private runTasks(): void {
    for (let i = 0; i < this.tasks.length; i++) this.tasks[i]!();
    this.tasks.length = 0;
  }

  /** Every invariant of every live connection, and the global reassembly count. Throws. */
  check(): void {
    this.pcbs.check();
    let q = 0;
    for (const [, c] of this.pcbs.entries()) {
      tcpcheck(c.client, `stream ${c.stream} client`);
      tcpcheck(c.server, `stream ${c.stream} server`);
      q += c.client.qBytes + c.server.qBytes;
    }
    if (q !== this.reassBytes) throw new Error(`reassBytes ${this.reassBytes} but the queues hold ${q}`);
    if (this.session.zone) this.checkRefs();
    if (this.spareM.length) this.checkSpare();
  }

  /** Every Mbuf chain the stack's queues hold (socket buffers, TCP and IP reassembly queues), with where it is. */
  private eachChain(f: (m: Mbuf | null, where: string) => void): void {
    for (const [, c] of this.pcbs.entries()) {
      for (const tp of [c.client, c.server]) {
        f(tp.so.rcv.mb, `stream ${c.stream}'s receive buffer`);
        f(tp.so.sndIfMade?.mb ?? null, `stream ${c.stream}'s send buffer`);
        for (const e of tp.q) f(e.m, `stream ${c.stream}'s reassembly queue`);
      }
    }
    this.reass.held((m) => f(m, 'IP reassembly'));
  }

  /** No spare payload Mbuf is still in a chain: it would be made a new payload under it. */
  private checkSpare(): void {
    const spare = new Set(this.spareM);
    if (spare.size !== this.spareM.length) throw new Error('spare Mbufs: one is on the list twice');
    this.eachChain((m, where) => {
      for (; m; m = m.next) if (spare.has(m)) throw new Error(`spare Mbufs: one is still in ${where}`);
    });
  }

  /**
   * The zone's reference counts: no Ext counts fewer references than the stack's queues hold to it
   * (socket buffers, TCP and IP reassembly queues), which would let its chunk be reused under them,
   * and none counts below zero. More is allowed: output sinks, file writes in flight and the
   * splice model's kept frames hold references this does not walk.
   */
  private checkRefs(): void {
    const held = new Map<Ext, number>();
    this.eachChain((m) => {
      for (; m; m = m.next) if (m.ext) held.set(m.ext, (held.get(m.ext) ?? 0) + 1);
    });
    for (const [ext, n] of held) if (ext.refs < n) throw new Error(`zone: a chunk counts ${ext.refs} references but the queues hold ${n}`);
    for (const ext of this.session.zone!.retiredExts()) if (ext.refs < 0) throw new Error(`zone: a retired chunk counts ${ext.refs} references`);
  }

  /**
   * End of input: every connection leaves the table, oldest first, its holes skipped and its
   * readers drained; then the hooks finish. With `n`, at most n leave and the answer says whether
   * all have: a caller reporting as connections leave (replay) writes between slices, instead of
   * holding the reports of every connection open at the end at once (100,000 on the short
   * benchmark capture: 60 MB of JSON).
   */
  finish(n = Infinity): boolean {
    for (let c = this.pcbs.oldest(); c !== null && n-- > 0; c = this.pcbs.oldest()) this.retire(c.key, c);
    if (this.pcbs.size > 0) return false;
    for (const hk of this.hooks) hk.finish?.(this);
    this.runTasks();
    return true;
  }

  /**
   * A connection leaves the table: skip its holes, let its readers finish, report its summary.
   * With `tomb`, a tombstone takes its place for late packets (the last ACK, retransmitted FINs).
   */
  private retire(h: number, c: Connection, tomb = false): void {
    tcp_drain(this.tcpCtx, c.server);
    tcp_drain(this.tcpCtx, c.client);
    for (const hk of this.hooks) hk.detach?.(c, this);
    this.app.detach(c);
    this.pcbs.remove(h, c);
    addTcpstat(this.tcpstat, c);
    // a summary is ~1 KB of objects and strings: made only for someone who takes it
    if (this.onConnection) this.onConnection(connSummary(c, this.digest, this.nets));
    if (this.onRetire) this.onRetire(c);
    if (tomb) {
      // whole seconds: an integer field stays unboxed (a double costs a 16-byte box per tombstone)
      const expires = Math.ceil(this.now + this.tombTtl);
      const t = this.tombFree.pop()?.reuse(c, expires, h) ?? new Tombstone(c, expires, h);
      this.pcbs.insert(h, t);
      this.tombs.push(t);
      this.expireTombs();
    }
    // nothing refers to it any more: back to the zone, unless something is still queued on it
    // (recycling runs without hooks, so the connection was never fused or spliced)
    if (this.recycles && this.free.length < this.freeMax && c.client.empty && c.server.empty) {
      c.free();
      this.free.push(c);
    }
  }

  /** Tombstones leave after their time, or when there are too many (oldest first). */
  private expireTombs(): void {
    const q = this.tombs;
    while (this.tombHead < q.length && (q.length - this.tombHead > MAX_TOMBSTONES || q[this.tombHead]!.expires < this.now)) {
      const t = q[this.tombHead++]!;
      this.pcbs.remove(t.key, t);
      if (this.tombFree.length < 64) this.tombFree.push(t);
    }
    if (this.tombHead > 4096 && this.tombHead * 2 > q.length) {
      q.splice(0, this.tombHead);
      this.tombHead = 0;
    }
  }

  private create(h: number, b: Uint8Array, src: number, dst: number, alen: number, sport: number, dport: number, flags: number, vlan: number): Connection {
    const lim = this.limits;
    while (this.pcbs.size > 0 && (this.pcbs.size >= lim.maxConnections || (this.pcbs.size + 1) * CONN_BYTES + this.reassBytes > lim.budget)) {
      const oldest = this.pcbs.oldest()!;
      this.stats.note('tcp.pcb.evicted');
      this.retire(oldest.key, oldest);
    }
    // the SYN sender is the client; a SYN-ACK's receiver is; otherwise guess: the lower port serves
    const srcIsClient = flags & TH_SYN ? !(flags & TH_ACK) : sport > dport || (sport === dport);
    const cOff = srcIsClient ? src : dst;
    const sOff = srcIsClient ? dst : src;
    const cPort = srcIsClient ? sport : dport;
    const sPort = srcIsClient ? dport : sport;
    const old = this.free.pop();
    if (old) this.connsReused++;
    const stream = this.nextStream++;
    const c = old ? old.reuse(stream, b, cOff, cPort, sOff, sPort, alen, vlan) : new Connection(stream, b, cOff, cPort, sOff, sPort, alen, vlan);
    c.guessed = !(flags & TH_SYN);
    c.firstFromServer = !srcIsClient;
    c.began(this.nowSec, this.nowNsec);
    this.pcbs.insert(h, c);
    this.app.attach(c);
    for (const hk of this.hooks) hk.attach?.(c, this);
    return c;
  }

  ipReass(m: Mbuf, ipOff: number, ipv: 4 | 6, capLen: number, totalLen: number, vlan: number): void {
    this.reass.input(m, ipOff, ipv, capLen, totalLen, this.now, vlan);
  }

  /** BSD tcp_input()'s demultiplexing half: check, find or make the connection, run tcp_input. */
  tcpInput(m: Mbuf, ipOff: number, thOff: number, ipv: 4 | 6, end: number, wireEnd: number, vlan: number): void {
    const b = m.buf;
    const o = m.off + thOff;
    const hlen = checkTcp(b, o, end - thOff);
    // a header cut short by the snaplen (the segment had more on the wire) is not a malformed one
    if (typeof hlen === 'string') return this.stats.drop(hlen === 'tcp.short' && end < wireEnd ? 'tcp.truncated' : hlen);
    if (!this.limits.tcp) return;
    const conn = this.demux(m, b, o, ipOff, ipv, end, wireEnd, this.mergeNets ? 0 : vlan);
    if (!conn) return;
    const c2s = this.c2s;
    const h = conn.key;
    const flags = tcpFlags(b, o);
    const plen = end - thOff - hlen;
    // one Segment is reused for every packet: tcp_input keeps its payload Mbuf, never the object
    const seg = this.seg;
    seg.seq = tcpSeq(b, o);
    seg.ack = tcpAck(b, o);
    seg.flags = flags;
    seg.win = tcpWindow(b, o);
    seg.m = plen <= 0 ? null : m.next ? m_copym(m, thOff + hlen, plen) : this.payload(b, o + hlen, plen, m.ext);
    seg.plen = Math.max(0, plen);
    seg.wlen = Math.max(0, wireEnd - thOff - hlen);
    seg.opts = flags & TH_SYN ? synOptions(b, o + 20, hlen - 20, this.synOpts) : null;
    seg.urp = flags & TH_URG ? tcpUrp(b, o) : 0;
    conn.seen(this.nowSec, this.nowNsec);
    if (this.frameSeen) this.frameSeen(conn, c2s, m);
    if (c2s) tcp_input(this.tcpCtx, conn.server, conn.client, seg);
    else tcp_input(this.tcpCtx, conn.client, conn.server, seg);
    if (this.hooks.length) {
      const f = this.frame;
      f.m = m;
      f.ipOff = ipOff;
      f.thOff = thOff;
      f.ipv = ipv;
      f.hlen = hlen;
      for (const hk of this.hooks) hk.segment(conn, c2s, seg, f, this);
    }
    if (this.reassBytes > this.reassRoom()) this.overBudget(c2s ? conn.server : conn.client);
    if (conn.done) this.retire(h, conn, true);
  }

  /** An Mbuf of a segment's payload: a spare one (see spareM) when there is one. */
  private payload(b: Uint8Array, off: number, len: number, ext: Ext | null): Mbuf {
    const m = this.spareM.pop();
    if (m === undefined) return new Mbuf(b, off, len, null, ext);
    this.mbufsReused++;
    m.buf = b;
    m.off = off;
    m.len = len;
    m.ext = ext;
    return m;
  }

  /** Direction of the segment demux() last found a connection for (true: from the client). */
  private c2s = true;

  /**
   * BSD tcp_input's first half: find the connection (in_pcblookup), verify the checksum (unless
   * fused), let a new SYN replace a closed connection or a tombstone, create what is new. Null
   * when the segment ends here (bad checksum under verifyChecksums, a tombstone's straggler).
   */
  private demux(m: Mbuf, b: Uint8Array, o: number, ipOff: number, ipv: 4 | 6, end: number, wireEnd: number, vlan: number): Connection | null {
    const thOff = o - m.off;
    const alen = ipv === 4 ? 4 : 16;
    const src = m.off + ipOff + (ipv === 4 ? 12 : 8);
    const dst = src + alen;
    const sport = be16(b, o);
    const dport = be16(b, o + 2);
    const flags = tcpFlags(b, o);
    const pcbs = this.pcbs;
    let pcb = pcbs.lookup(b, src, dst, alen, sport, dport, vlan);
    const h = pcbs.hash;
    const dir = pcbs.dir;
    // a fused connection's segments never reach a fusing stack's tcp_input: nothing to verify
    const fused = pcb !== null && (pcb as Connection).fused === true;
    if (!fused && this.sums !== null && end === wireEnd && !m.next && this.sums.bad(b, m.off + ipOff, ipv, o, end - thOff)) {
      if (this.opts.verifyChecksums) {
        this.stats.drop('tcp.badsum');
        return null;
      }
      this.stats.note('tcp.badsum');
    }
    const syn = (flags & (TH_SYN | TH_ACK)) === TH_SYN;
    if (pcb instanceof Tombstone) {
      // a new SYN replaces it, and past its time (TIME_WAIT's 2MSL) it is gone, whether or not a
      // connection leaving since expired it; else the packet is a late one of the closed connection
      if (!syn && pcb.expires >= this.now) {
        this.stats.note('tcp.afterclose');
        return null;
      }
      pcbs.remove(h, pcb);
      pcb = null;
    } else if (pcb && syn && pcb.closed) {
      // a new SYN after the old connection closed: a new stream
      this.retire(h, pcb);
      pcb = null;
    }
    if (!pcb) {
      const conn = this.create(h, b, src, dst, alen, sport, dport, flags, vlan);
      this.c2s = conn.match(b, src, dst, sport, dport) === 1;
      return conn;
    }
    this.c2s = dir === 1;
    return pcb;
  }

  /** Bytes reassembly may hold now: its own limit, and what the connections leave of the budget. */
  private reassRoom(): number {
    return Math.min(this.limits.reassTotal, this.limits.budget - this.pcbs.size * CONN_BYTES);
  }

  /** The global reassembly budget is exceeded: the connection that just grew skips its holes. */
  private overBudget(tp: Tcpcb): void {
    this.stats.note('tcp.reass.budget');
    tcp_skip_holes(tp, this.tcpCtx, () => this.reassBytes > this.reassRoom(), null);
  }
}
