import type { Mbuf } from '../mbuf/mbuf.js';
import { m_copym, m_length } from '../mbuf/mbuf.js';
import { Sockbuf, sbappendstream, sbdrop } from './sockbuf.js';

/** Sticky socket errors, named after errno (DESIGN.md channel 2). */
export type SoError = 'EPIPE' | 'ECONNRESET' | 'ETIMEDOUT' | 'EFBIG' | 'ELOOP' | 'EBUSY' | 'ENOTCONN' | 'EINVAL' | 'EAGAIN'
  | 'EOPNOTSUPP' | 'EPROTONOSUPPORT' | 'EPROTO' | 'EMSGSIZE';

/**
 * The protocol under a socket, as the socket layer calls it (BSD struct pr_usrreqs): how somove
 * hands data to the drain's protocol without socket/ importing tcp/.
 */
export interface ProtoSw {
  /** Protocol family name; sosplice requires source and drain to share it (EPROTONOSUPPORT). */
  readonly name: 'tcp' | 'udp' | 'unix';
  /** BSD pru_send(): append `m` (`len` bytes, references) to so.snd and send; `push` sets PSH on the last segment. */
  send(so: Socket, m: Mbuf, len: number, push: boolean): SoError | null;
  /** BSD pru_rcvd(): the application took data from so.rcv (a window update may go out). */
  rcvd(so: Socket): void;
  /** BSD pru_sendoob(): append one urgent byte and send it with the urgent pointer after it. */
  sendoob?(so: Socket, m: Mbuf): SoError | null;
}

/** Splice state of a socket (BSD struct sosplice): as a source, its drain; as a drain, its source. */
export interface SoSplice {
  /** The drain this socket's receive buffer moves to (BSD ssp_socket). */
  drain: Socket | null;
  /** The source that moves into this socket's send buffer (BSD ssp_soback). */
  back: Socket | null;
  /** Bytes moved by the last splice (getsockopt SO_SPLICE); reset only by a new splice. */
  len: number;
  /** Most bytes to move (0: no limit). */
  max: number;
  /** Idle timeout in the env's clock's unit (0: none), and when it fires by that clock. */
  idle: number;
  idleAt: number;
  /** somove is queued (BSD ssp_task pending). */
  queued: boolean;
  /** Source wakeups while spliced: what a read/write relay would have woken up for. */
  wakeups: number;
  /** When the splice ended by the env's clock, or NaN. */
  endedAt: number;
  /** Runs somove later (the stack's task queue) and tells the time; set by each sosplice. */
  env: SpliceEnv;
}

/** What splicing needs from its surroundings: a task queue (softnet) and the capture clock. */
export interface SpliceEnv {
  sched(task: () => void): void;
  /**
   * The capture clock, in the unit the splice's idle timeout is given in (OpenBSD: a timeval; the
   * splice model: nanoseconds since the run's first frame, exact integers).
   */
  now(): number;
  /** somove of `so` (injected so that this module and splice.ts do not import each other). */
  somove(so: Socket): boolean;
}

export const MSG_PEEK = 0x2;
export const MSG_WAITALL = 0x40;
export const MSG_DONTWAIT = 0x80;

// socket state bits, one field for all (BSD keeps so_state and so_options the same way), in bits
// 20-26 of Socket.flags: a Tcpcb keeps its own flags and state in the bits below
const SS_CANTRCVMORE = 1 << 20;
const SS_CANTSENDMORE = 1 << 21;
const SS_ISCONNECTED = 1 << 22;
const SS_ISCONNECTING = 1 << 23;
const SO_ACCEPTCONN = 1 << 24;
const SO_OOBINLINE = 1 << 25;
/** so_rcv's SB_WAIT (BSD sb_flags): a reader sleeps on the receive buffer. */
const SB_WAIT = 1 << 26;

/**
 * What few sockets need, made on first use (every field in Socket costs 8 bytes in each of the two
 * sockets of every connection): a send buffer and the protocol below, which only sockets that send
 * in the model have (splice drains, emulated endpoints), splice state, an error, and urgent data.
 */
export class SocketRare {
  sp: SoSplice | null = null;
  snd: Sockbuf | null = null;
  proto: ProtoSw | null = null;
  error: SoError | null = null;
  oobmark = -1;
  oobByte = -1;
}

/**
 * One endpoint's socket. In a capture both ends of a connection are modelled, so every
 * connection has two Sockets. BSD struct socket, reduced to what a stream socket needs.
 *
 * The receive buffer is embedded, as struct socket embeds so_rcv: a Socket is a Sockbuf, and
 * `so.rcv` is the socket seen as its receive buffer (read the buffer through `rcv`, never through
 * the socket). A Sockbuf object of its own cost 32 bytes more a socket (its header and the pointer
 * to it): 6.4 MB with 100,000 connections open.
 */
export class Socket extends Sockbuf {
  /** The rarely used fields (a protocol that embeds the socket keeps its own here too: makeRare). */
  protected rare: SocketRare | null = null;

  /** The rarely used fields, made now if they were not (setting a field to its default makes nothing). */
  protected own(): SocketRare {
    return (this.rare ??= this.makeRare());
  }

  /** A new set of rare fields, of the class the embedding protocol wants. */
  protected makeRare(): SocketRare {
    return new SocketRare();
  }

  /** The receive buffer (BSD so_rcv): this socket's own fields. */
  get rcv(): Sockbuf {
    return this;
  }

  /** The send buffer, made on first use: only sockets that send in the model (splice drains) have one. */
  get snd(): Sockbuf {
    return (this.own().snd ??= new Sockbuf());
  }

  /** The send buffer if one was made (for checks that must not make one). */
  get sndIfMade(): Sockbuf | null {
    return this.rare?.snd ?? null;
  }

  /** The protocol below, when the socket layer has to call it (splice drains). */
  get proto(): ProtoSw | null {
    return this.rare?.proto ?? null;
  }
  set proto(p: ProtoSw | null) {
    if (p || this.rare) this.own().proto = p;
  }

  /** The last urgent byte pulled out of band (-1: none). */
  get oobByte(): number {
    return this.rare?.oobByte ?? -1;
  }
  set oobByte(b: number) {
    if (b >= 0 || this.rare) this.own().oobByte = b;
  }

  /** Splice state (BSD so_sp), allocated on first use. */
  get sp(): SoSplice | null {
    return this.rare?.sp ?? null;
  }
  set sp(sp: SoSplice | null) {
    if (sp || this.rare) this.own().sp = sp;
  }

  /** Sticky error (BSD so_error), cleared when read. */
  get error(): SoError | null {
    return this.rare?.error ?? null;
  }
  set error(e: SoError | null) {
    if (e || this.rare) this.own().error = e;
  }

  /**
   * The latest urgent mark (BSD so_oobmark), as the position in the received stream (counted like
   * rcv.total) of the urgent byte; -1 without one. Only one mark exists per socket.
   */
  get oobmark(): number {
    return this.rare?.oobmark ?? -1;
  }
  set oobmark(at: number) {
    if (at >= 0 || this.rare) this.own().oobmark = at;
  }

  /**
   * Called when data or EOF arrives (BSD sorwakeup's so_upcall), with `upcallArg` (so_upcallarg):
   * the application reads here. One function for every socket and its state as the argument,
   * not a closure per socket (two objects, ~100 bytes a socket, on 100,000 open connections).
   */
  upcall: ((so: Socket, arg: any) => void) | null = null;
  upcallArg: unknown = null;
  /**
   * The state bits above (BSD so_state, so_options, and so_rcv's SB_WAIT) in bits 20-26; SO_OOBINLINE starts set. A
   * protocol that embeds the socket keeps its own bits below 20 in the same word.
   */
  protected flags = SO_OOBINLINE;

  /** As new, for a recycled connection (its buffers hold nothing: the caller checked). */
  override reset(): void {
    super.reset();
    this.rare = null;
    this.upcall = null;
    this.upcallArg = null;
    this.flags = SO_OOBINLINE;
  }

  private bit(b: number, v: boolean): void {
    this.flags = v ? this.flags | b : this.flags & ~b;
  }

  /** The peer will send no more (FIN or RST received): BSD SS_CANTRCVMORE. */
  get cantRcvMore(): boolean { return (this.flags & SS_CANTRCVMORE) !== 0; }
  set cantRcvMore(v: boolean) { this.bit(SS_CANTRCVMORE, v); }
  /** This end will send no more: BSD SS_CANTSENDMORE. */
  get cantSendMore(): boolean { return (this.flags & SS_CANTSENDMORE) !== 0; }
  set cantSendMore(v: boolean) { this.bit(SS_CANTSENDMORE, v); }
  /** Connected at least once (BSD SS_ISCONNECTED). */
  get connected(): boolean { return (this.flags & SS_ISCONNECTED) !== 0; }
  set connected(v: boolean) { this.bit(SS_ISCONNECTED, v); }
  /** Still connecting (BSD SS_ISCONNECTING: SYN sent, no answer yet). */
  get connecting(): boolean { return (this.flags & SS_ISCONNECTING) !== 0; }
  set connecting(v: boolean) { this.bit(SS_ISCONNECTING, v); }
  /** A listening socket (BSD SO_ACCEPTCONN). */
  get listening(): boolean { return (this.flags & SO_ACCEPTCONN) !== 0; }
  set listening(v: boolean) { this.bit(SO_ACCEPTCONN, v); }
  /**
   * BSD SO_OOBINLINE: the urgent byte stays in the stream (the default here, as tshark shows it);
   * off, tcp_input pulls it out of band (tcp_pulloutofband) into `oobByte`.
   */
  get oobinline(): boolean { return (this.flags & SO_OOBINLINE) !== 0; }
  set oobinline(v: boolean) { this.bit(SO_OOBINLINE, v); }
  /**
   * A reader sleeps on so.rcv until the low-water mark is reached (BSD sbwait sets SB_WAIT on
   * so_rcv; the reader here is the application's upcall, which decides to sleep).
   */
  get rcvWaiting(): boolean { return (this.flags & SB_WAIT) !== 0; }
  set rcvWaiting(v: boolean) { this.bit(SB_WAIT, v); }
}

/**
 * Append in-order stream data to so.rcv (BSD sbappendstream from tcp_input). Without
 * SO_OOBINLINE the urgent byte at the mark is cut out of the chain first (tcp_pulloutofband:
 * references split around it, nothing copied) and kept in so.oobByte.
 */
export function soappend(so: Socket, m: Mbuf | null): void {
  const at = so.oobmark - so.rcv.total;
  if (!m || so.oobinline || so.oobmark < 0 || at < 0) return sbappendstream(so.rcv, m);
  const len = m_length(m);
  if (at >= len) return sbappendstream(so.rcv, m);
  const head = at > 0 ? m_copym(m, 0, at) : null;
  const urgent = m_copym(m, at, 1)!;
  so.oobByte = urgent.buf[urgent.off]!;
  so.oobmark = -1;
  sbappendstream(so.rcv, head);
  sbappendstream(so.rcv, m_copym(m, at + 1, len - at - 1));
}

/** BSD isspliced(): this socket's receive buffer moves to a drain. */
export function isspliced(so: Socket): boolean {
  return !!so.sp?.drain;
}

/**
 * BSD sorwakeup(): tell the reader there is something to read. A spliced source wakes no reader:
 * its somove task is queued instead (OpenBSD sorwakeup: `if (isspliced(so)) ... task_add`).
 */
export function sorwakeup(so: Socket): void {
  const sp = so.sp;
  if (sp?.drain) {
    sp.wakeups++;
    return somoveLater(so, sp);
  }
  so.upcall?.(so, so.upcallArg);
}

/** BSD sowwakeup(): send space was freed. A splice drain queues its source's somove. */
export function sowwakeup(so: Socket): void {
  const src = so.sp?.back;
  if (src?.sp) somoveLater(src, src.sp);
}

function somoveLater(so: Socket, sp: SoSplice): void {
  if (sp.queued) return;
  sp.queued = true;
  sp.env.sched(() => {
    sp.queued = false;
    if (so.sp?.drain) sp.env.somove(so);
  });
}

/** BSD socantrcvmore(): no more data will arrive; readers see EOF after the buffer. */
export function socantrcvmore(so: Socket): void {
  so.cantRcvMore = true;
  sorwakeup(so);
}

/** What one soreceive_stream call returns. */
export interface ReceiveResult {
  /** The bytes read, as views of capture memory (never copies), in order. */
  chunk: Uint8Array[];
  /** Bytes in `chunk`. */
  len: number;
  /** Error returned by this call (read and cleared unless MSG_PEEK), or null. */
  error: SoError | null;
  /** True when the peer closed and nothing is left: a read returning 0. */
  eof: boolean;
}

/**
 * FreeBSD soreceive_stream() (uipc_socket.c), non-blocking: returns at most `resid` bytes
 * as views. BSD order: an error is returned only when no data is there (data first); EOF after the
 * last byte; with nothing to read and no EOF, EAGAIN (BSD would sleep; the capture moves time).
 * MSG_WAITALL delivers only when `resid` bytes (or hiwat) are there, or at EOF/error.
 * MSG_PEEK leaves the data and the error in place. resid 0 is EINVAL, as in FreeBSD.
 * Deviation: MSG_WAITALL|MSG_PEEK returns at most what is there (FreeBSD's XXXAO re-delivery bug
 * is not reproduced).
 */
export function soreceive_stream(so: Socket, resid: number, flags = 0): ReceiveResult {
  const sb = so.rcv;
  const res: ReceiveResult = { chunk: [], len: 0, error: null, eof: false };
  if (resid <= 0) return { ...res, error: 'EINVAL' };
  if (sb.cc === 0) {
    if (so.error) {
      res.error = so.error;
      if (!(flags & MSG_PEEK)) so.error = null;
      return res;
    }
    if (so.cantRcvMore) return { ...res, eof: true };
    if (!so.connected) return { ...res, error: 'ENOTCONN' };
    return { ...res, error: 'EAGAIN' };
  }
  if (flags & MSG_WAITALL && sb.cc < resid && sb.cc < sb.hiwat && !so.cantRcvMore && !so.error)
    return { ...res, error: 'EAGAIN' };
  const len = Math.min(resid, sb.cc);
  let left = len;
  for (let m = sb.mb; m && left > 0; m = m.next) {
    const k = Math.min(m.len, left);
    if (k > 0) res.chunk.push(m.buf.subarray(m.off, m.off + k));
    left -= k;
  }
  res.len = len;
  if (!(flags & MSG_PEEK)) sbdrop(sb, len);
  return res;
}
