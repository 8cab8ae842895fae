import { Sockbuf, sbdrop } from './sockbuf.js';

/** Sticky socket errors, named after errno (DESIGN.md channel 2). */
export type SoError = 'EPIPE' | 'ECONNRESET' | 'ETIMEDOUT' | 'EFBIG' | 'ELOOP' | 'EBUSY' | 'ENOTCONN' | 'EINVAL' | 'EAGAIN';

export const MSG_PEEK = 0x2;
export const MSG_WAITALL = 0x40;
export const MSG_DONTWAIT = 0x80;

/**
 * One endpoint's socket. In a capture both ends of a connection are modelled, so every
 * connection has two Sockets. BSD struct socket, reduced to what a stream socket needs.
 */
export class Socket {
  readonly rcv = new Sockbuf();
  readonly snd = new Sockbuf();
  /** Sticky error (BSD so_error), cleared when read. */
  error: SoError | null = null;
  /** The peer will send no more (FIN or RST received): BSD SS_CANTRCVMORE. */
  cantRcvMore = false;
  /** This end will send no more: BSD SS_CANTSENDMORE. */
  cantSendMore = false;
  /** Connected at least once (BSD SS_ISCONNECTED). */
  connected = false;
  /** Called when data or EOF arrives (BSD sorwakeup's upcall): the application reads here. */
  upcall: ((so: Socket) => void) | null = null;
  /** Number of wakeups delivered (what a read/write relay would have woken up for). */
  wakeups = 0;
}

/** BSD sorwakeup(): tell the reader there is something to read. */
export function sorwakeup(so: Socket): void {
  so.wakeups++;
  so.upcall?.(so);
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
