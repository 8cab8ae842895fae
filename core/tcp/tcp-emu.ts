import type { Hash } from 'node:crypto';
import { sha256 } from '../sha256.js';
import type { Output, SegmentFrame } from '../hook.js';
import { m_captured, m_copym, m_pin, m_unpin, Mbuf } from '../mbuf/mbuf.js';
import type { Connection } from '../net/in-pcb.js';
import { HeaderTemplate } from '../net/ip-output.js';
import { sbappendstream, sbdrop } from '../socket/sockbuf.js';
import { type ProtoSw, Socket, type SoError, sowwakeup } from '../socket/socket.js';
import { be16 } from '../wire/bytes.js';
import { TH_ACK, TH_FIN, TH_PUSH, TH_RST, TH_SYN, TH_URG } from '../wire/tcp.js';
import { seqAdd, seqDiff } from './seq.js';
import { rcvNxt, type Segment } from './tcp-input.js';
import { capturedOptions, stripSack, tcpHeader, timestampOption } from './tcp-output.js';
import type { Tcpcb } from './tcpcb.js';

/** What the drain does when its splice ends: shut down (FIN, as relayd does) or stay open. */
export type SpliceClose = 'fin' | 'keep';

type Phase = 'captured' | 'emulated' | 'closed' | 'kept';

/**
 * One end's last captured segments, kept by reference: the path the model sends on (link and IP
 * headers) and the timestamp option it repeats. Both are built only when the model sends, not for
 * every captured segment.
 */
class Path {
  private m: Mbuf | null = null;
  private ipOff = 0;
  private thOff = 0;
  private ipv: 4 | 6 = 4;
  private tpl: HeaderTemplate | null = null;
  /** The segment the options come from (a SYN's only until a later segment), and its parsed TS. */
  private optM: Mbuf | null = null;
  private optO = 0;
  private optHlen = 0;
  private tsOpt: Uint8Array | null | undefined = undefined;
  /** Window field of the last non-SYN segment (-1: only a SYN seen). */
  win = -1;

  saw(f: SegmentFrame, seg: Segment): void {
    if (!m_captured(f.m)) return; // reassembled fragments or a tunnel's packet: no frame to take headers from
    // the frames are kept (their headers are read when the model sends): they hold their chunks
    m_unpin(this.m);
    m_pin(f.m);
    this.m = f.m;
    this.ipOff = f.ipOff;
    this.thOff = f.thOff;
    this.ipv = f.ipv;
    this.tpl = null;
    if (seg.flags & TH_SYN && this.win >= 0) return;
    m_unpin(this.optM);
    m_pin(f.m);
    this.optM = f.m;
    this.optO = f.m.off + f.thOff;
    this.optHlen = f.hlen;
    this.tsOpt = undefined;
    this.win = seg.flags & TH_SYN ? -1 : seg.win;
  }

  template(): HeaderTemplate | null {
    return (this.tpl ??= this.m ? HeaderTemplate.of(this.m, this.ipOff, this.thOff, this.ipv) : null);
  }

  ts(): Uint8Array | null {
    if (this.tsOpt === undefined) this.tsOpt = this.optM ? timestampOption(this.optM.buf, this.optO, this.optHlen) : null;
    return this.tsOpt;
  }
}

/**
 * The sending end of a captured connection re-synthesised as a splice drain: a relay's socket
 * whose so.snd receives what somove moves, and the tcp_output that sends it to the modelled peer.
 * Until the splice starts the connection is written as captured. From then on the relay's
 * segments are the model's: data cut to the peer's MSS and window with the relay's sequence
 * numbers, acknowledgements of the peer's (captured) data; the peer's captured segments go out
 * with their acknowledgement numbers renumbered to what the peer received from the model.
 * ACK policy of the modelled peer (deterministic): it acknowledges every second data segment and
 * the last one of each send, at once, with its captured window; SACK blocks are removed.
 */
export class SpliceDrain implements ProtoSw {
  readonly name = 'tcp' as const;
  /** The relay's socket as the splice sees it (its so.snd holds what the peer has not acknowledged). */
  readonly so = new Socket();
  phase: Phase = 'captured';
  /** Data segments sent by the model. */
  segments = 0;
  /** Payload bytes it sent that were not in capture memory, i.e. copied on the way (0 when zero-copy holds). */
  copied = 0;
  /** The byte stream the peer received in the output (captured before the splice, then the model's). */
  readonly outHash: Hash = sha256();
  outBytes = 0;
  /** The byte stream the captured relay sent (what a userland relay wrote). */
  readonly capHash: Hash = sha256();
  capBytes = 0;
  /** Stream offsets: acknowledged by the peer, next to send, first sent by the model. */
  private una = 0;
  private nxt = 0;
  private unacked = 0;
  /** Stream offset just past the last urgent byte (BSD snd_up); URG goes out while nxt is before it. */
  private sndUp = 0;
  private finSent = false;
  private relayAcked = false;
  /** The relay's (0) and the peer's (1) last captured segments. */
  private readonly path: [Path, Path] = [new Path(), new Path()];
  /** Source and destination ports of segments from the relay (0) and from the peer (1). */
  private readonly ports: [[number, number], [number, number]];
  private out: Output | null = null;

  constructor(
    readonly conn: Connection,
    /** The relay (the splice's drain socket) is the connection's client. */
    private readonly relayIsClient: boolean,
    private readonly close: SpliceClose,
  ) {
    this.so.proto = this;
    this.so.snd.lowat = 2048;
    const fromClient: [number, number] = [conn.cPort, conn.sPort];
    const fromServer: [number, number] = [conn.sPort, conn.cPort];
    this.ports = relayIsClient ? [fromClient, fromServer] : [fromServer, fromClient];
  }

  private get relay(): Tcpcb {
    return this.relayIsClient ? this.conn.client : this.conn.server;
  }

  private get peer(): Tcpcb {
    return this.relayIsClient ? this.conn.server : this.conn.client;
  }

  /** Sequence number of relay stream offset 0. */
  private get base(): number {
    return this.base0 ?? seqAdd(this.relay.iss, 1);
  }

  /**
   * Sequence number of the relay's stream offset 0: after its SYN, or, picked up mid-stream, its
   * first captured segment's (null until the relay has been seen sending).
   */
  private base0: number | null = null;

  /** The relay's connection state, as the socket layer sees it. */
  sync(): void {
    const st = this.relay.state;
    this.so.connecting = st === 'SYN_SENT';
    // an active opener is connected once its handshake ACK is out; a passive one on the peer's ACK
    if (!this.so.connected && (this.relayAcked || !this.relayIsClient) && (st === 'ESTABLISHED' || st === 'CLOSE_WAIT')) {
      this.so.connected = true;
      sowwakeup(this.so);
    }
  }

  /** The splice starts: from now on the relay's sending is the model's. */
  start(out: Output): void {
    this.out = out;
    this.phase = 'emulated';
    const r = this.relay;
    this.una = this.nxt = r.sndKnown ? Math.max(0, seqDiff(r.sndMax, this.base)) : 0;
    this.sync();
  }

  /** The splice could not be set up: the connection stays as captured. */
  abort(): void {
    this.phase = 'captured';
    this.out = null;
  }

  /** BSD pru_send for the drain: append to so.snd (references), then tcp_output. */
  send(so: Socket, m: Mbuf, _len: number, push: boolean): SoError | null {
    if (this.phase !== 'emulated' || so.cantSendMore) return 'EPIPE';
    sbappendstream(so.snd, m);
    this.output(push);
    return null;
  }

  /** BSD pru_sendoob for the drain: the byte goes with the urgent pointer just after it (snd_up). */
  sendoob(so: Socket, m: Mbuf): SoError | null {
    if (this.phase !== 'emulated' || so.cantSendMore) return 'EPIPE';
    sbappendstream(so.snd, m);
    this.sndUp = this.una + so.snd.cc;
    this.output(false);
    return null;
  }

  rcvd(): void {}

  /** BSD tcp_output() for the relay: segments of at most the peer's MSS, within its window. */
  private output(push: boolean): void {
    const mss = Math.max(1, (this.peer.mss || 536) - (this.path[0].ts() ? 12 : 0));
    for (;;) {
      const unsent = this.una + this.so.snd.cc - this.nxt;
      if (unsent <= 0) break;
      const wnd = Math.max(this.peer.window, mss) - (this.nxt - this.una);
      if (wnd <= 0) {
        this.peerAck();
        continue;
      }
      const n = Math.min(mss, unsent, wnd);
      const urgent = this.sndUp > this.nxt;
      // OpenBSD: while somove is sending (SS_ISSENDING) a short last segment waits for more,
      // unless urgent data must go
      if (n < mss && n === unsent && !push && !urgent) break;
      const payload = m_copym(this.so.snd.mb, this.nxt - this.una, n);
      const last = n === unsent;
      const flags = TH_ACK | (push && last ? TH_PUSH : 0) | (urgent ? TH_URG : 0);
      this.emit(0, seqAdd(this.base, this.nxt), this.relayAck(), flags, payload, n, urgent ? Math.min(0xffff, this.sndUp - this.nxt) : 0);
      for (let p = payload; p; p = p.next) {
        this.outHash.update(p.buf.subarray(p.off, p.off + p.len));
        if (!this.out!.memory.has(p.buf.buffer)) this.copied += p.len;
      }
      this.outBytes += n;
      this.nxt += n;
      this.segments++;
      if (++this.unacked >= 2) this.peerAck();
    }
    if (this.unacked) this.peerAck();
  }

  /** The modelled peer acknowledges everything sent: so.snd drops it, the splice may move more. */
  private peerAck(): void {
    this.emit(1, this.peer.sndMax, seqAdd(this.base, this.nxt + (this.finSent ? 1 : 0)), TH_ACK, null, 0);
    this.unacked = 0;
    if (this.nxt > this.una) {
      sbdrop(this.so.snd, this.nxt - this.una);
      this.una = this.nxt;
      sowwakeup(this.so);
    }
  }

  /** What the relay acknowledges: the peer's captured stream as far as the relay received it. */
  private relayAck(): number {
    return seqAdd(rcvNxt(this.relay), this.relay.finRcvd ? 1 : 0);
  }

  /** The splice ended: `fin` shuts the drain down (FIN, acknowledged by the peer); `keep` leaves it open. */
  spliceEnded(): void {
    if (this.phase !== 'emulated') return;
    if (!this.so.cantSendMore) this.output(true); // what SS_ISSENDING held back goes now
    if (this.close === 'keep' || this.so.cantSendMore) {
      this.phase = 'kept';
      return;
    }
    this.phase = 'closed';
    this.so.cantSendMore = true;
    this.emit(0, seqAdd(this.base, this.nxt), this.relayAck(), TH_FIN | TH_ACK, null, 0);
    this.finSent = true;
    this.emit(1, this.peer.sndMax, seqAdd(this.base, this.nxt + 1), TH_ACK, null, 0);
  }

  /** A captured segment of the drain connection (after tcp_input ran). */
  segment(c2s: boolean, seg: Segment, f: SegmentFrame, out: Output): void {
    const fromRelay = c2s === this.relayIsClient;
    const i = fromRelay ? 0 : 1;
    if (fromRelay && this.base0 === null && !(seg.flags & TH_RST)) this.base0 = seg.flags & TH_SYN ? seqAdd(seg.seq, 1) : seg.seq;
    this.path[i].saw(f, seg);
    if (fromRelay) this.tap(seg, f);
    const estab = this.relay.state === 'ESTABLISHED' || this.relay.state === 'CLOSE_WAIT';
    const handshakeAck = fromRelay && this.relayIsClient && !this.relayAcked && estab && seg.wlen === 0 && !(seg.flags & (TH_SYN | TH_FIN | TH_RST));
    // the relay is connected once its handshake ACK is out (the capture shows when it was)
    if (fromRelay && estab && !(seg.flags & TH_SYN)) this.relayAcked = true;
    this.sync();
    if (this.phase === 'captured' || seg.flags & TH_SYN || handshakeAck) return;
    if (fromRelay) return this.relaySegment(seg, out);
    if (this.phase === 'kept') {
      // after the splice the captured segments go out as they were, but not an ACK the model's peer already sent
      if (seg.wlen === 0 && !(seg.flags & (TH_FIN | TH_RST)) && seqDiff(seg.ack, this.base) <= this.una) out.consume();
      return;
    }
    // the peer's segment: acknowledgement renumbered to what the model sent, SACK removed; its
    // pure ACKs acknowledged the captured relay's data and the model's peer has sent its own
    out.consume();
    if (seg.wlen === 0 && !(seg.flags & (TH_FIN | TH_RST))) return;
    const ack = seqAdd(this.base, this.nxt + (this.finSent ? 1 : 0));
    this.rewrite(f, seg, ack, this.path[1].template(), out);
    if (seg.flags & TH_RST) {
      this.so.cantSendMore = true;
      this.so.error = 'ECONNRESET';
      sowwakeup(this.so);
      return;
    }
    if (seg.wlen > 0 || seg.flags & TH_FIN) this.emit(0, seqAdd(this.base, this.nxt + (this.finSent ? 1 : 0)), this.relayAck(), TH_ACK, null, 0);
  }

  /** The captured relay's own segment: its handshake ACK goes out; the rest is the model's now. */
  private relaySegment(seg: Segment, out: Output): void {
    if (this.phase === 'kept') {
      // the relay writes on its own after the splice: what the model already sent is not repeated
      const end = seqDiff(seg.seq, this.base) + seg.wlen;
      if (seg.wlen > 0 && end <= this.nxt) out.consume();
      else this.nxt = Math.max(this.nxt, end);
      return;
    }
    out.consume();
  }

  /** The captured relay's bytes (what a userland copy relay wrote), and the output's before the splice. */
  private tap(seg: Segment, f: SegmentFrame): void {
    if (seg.plen <= 0) return;
    const off = seqDiff(seg.seq, this.base) + (seg.flags & TH_SYN ? 1 : 0);
    const from = Math.max(off, this.capBytes);
    const to = off + seg.plen;
    if (to <= from) return;
    const b = f.m.buf.subarray(f.m.off + f.thOff + f.hlen + (from - off), f.m.off + f.thOff + f.hlen + seg.plen);
    if (f.m.next) return; // reassembled fragments: counted by the socket, not here
    this.capHash.update(b);
    this.capBytes = to;
    const outFrom = this.phase === 'captured' ? from : this.phase === 'kept' ? Math.max(from, this.nxt) : to;
    if (outFrom < to && outFrom >= this.outBytes) {
      this.outHash.update(b.subarray(outFrom - from));
      this.outBytes += to - outFrom;
    }
  }

  /** Write the peer's segment `f` again with `ack`; `tpl` is its own path (null: reassembled, not written). */
  private rewrite(f: SegmentFrame, seg: Segment, ack: number, tpl: HeaderTemplate | null, out: Output): void {
    if (!tpl || !m_captured(f.m)) return;
    const b = f.m.buf;
    const o = f.m.off + f.thOff;
    const opts = stripSack(capturedOptions(b, o, f.hlen));
    const th = tcpHeader({ sport: be16(b, o), dport: be16(b, o + 2), seq: seg.seq, ack: seg.flags & TH_ACK ? ack : 0, flags: seg.flags, win: seg.win, urp: be16(b, o + 18), opts });
    const payload = seg.plen > 0 ? new Mbuf(b, o + f.hlen, seg.plen, null, f.m.ext) : null;
    out.emit(tpl.frame(th, payload, seg.plen, out.hdr, 'keep'));
  }

  /** Send a segment from the relay (0) or the peer (1) on the path of their last captured frame. */
  private emit(side: 0 | 1, seq: number, ack: number, flags: number, payload: Mbuf | null, plen: number, urp = 0): void {
    const path = this.path[side];
    const tpl = path.template();
    const out = this.out;
    if (!tpl || !out) return;
    const [sport, dport] = this.ports[side];
    const win = path.win >= 0 ? path.win : synWindow(side === 0 ? this.relay : this.peer, side === 0 ? this.peer : this.relay);
    const th = tcpHeader({ sport, dport, seq, ack, flags, win, urp, opts: path.ts() });
    out.emit(tpl.frame(th, payload, plen, out.hdr, 'next'));
  }
}

/** The window field after a SYN announced `tp.window` unscaled: scaled once both ends agreed to scale. */
function synWindow(tp: Tcpcb, other: Tcpcb): number {
  const w = tp.wscale > 0 && other.wscale >= 0 ? tp.window >> tp.wscale : tp.window;
  return Math.min(0xffff, w);
}
