import { m_copym, Mbuf } from '../mbuf/mbuf.js';
import { sbdrop, sbspace } from './sockbuf.js';
import { isspliced, type SoError, type Socket, type SpliceEnv, sorwakeup, sowwakeup } from './socket.js';

/** OpenBSD M_MAXLOOP: passes through splices before ELOOP. */
export const M_MAXLOOP = 128;

/** Errors of the drain that do not end the splice: they may be the reverse splice's own ending. */
const DRAIN_ERRORS_IGNORED: ReadonlySet<SoError> = new Set(['ETIMEDOUT', 'EFBIG', 'ELOOP']);

/** The arguments of setsockopt(SO_SPLICE) (OpenBSD struct splice). */
export interface SpliceArgs {
  /** The drain (sp_fd), or null to unsplice (sp_fd = -1). */
  drain: Socket | null;
  /** Most bytes to move (sp_max); 0 means no limit. Negative: EINVAL. */
  max?: number;
  /** Idle timeout (sp_idle), in the unit of the env's clock (SpliceEnv.now); 0 means none. Negative: EINVAL. */
  idle?: number;
}

/**
 * OpenBSD sosplice() (uipc_socket.c 1.377), the checks in its order: PR_SPLICE (EPROTONOSUPPORT),
 * max < 0 and idle < 0 (EINVAL), unsplice of a socket that is not spliced (EPROTO), protocols that
 * differ (EPROTONOSUPPORT), a listening end (EOPNOTSUPP), a source or drain neither connected nor
 * connecting (ENOTCONN), a source already spliced or a drain already a target (EBUSY). Then the
 * data already in the source's receive buffer is moved at once (somove); the call succeeds even
 * when that first move ends the splice (its reason is then in so.error).
 * Returns 0 or the errno name. EBADF/ENOTSOCK/EINVAL(optlen) belong to the file table and the
 * setsockopt argument decoding, which the model does not have (sockets are passed as objects).
 */
export function sosplice(so: Socket, a: SpliceArgs, env: SpliceEnv): SoError | 0 {
  const max = a.max ?? 0;
  const idle = a.idle ?? 0;
  if (!so.proto || so.proto.name === 'unix') return 'EPROTONOSUPPORT';
  if (max < 0 || idle < 0 || !Number.isFinite(idle)) return 'EINVAL';
  if (!a.drain) {
    if (!isspliced(so)) return 'EPROTO';
    sounsplice(so, so.sp!.drain!, false);
    return 0;
  }
  const sosp = a.drain;
  if (sosp.proto?.name !== so.proto.name) return 'EPROTONOSUPPORT';
  if (so.listening || sosp.listening) return 'EOPNOTSUPP';
  if (so.proto.name === 'tcp' && !so.connected && !so.connecting) return 'ENOTCONN';
  if (!sosp.connected && !sosp.connecting) return 'ENOTCONN';
  so.sp ??= newSp(env);
  sosp.sp ??= newSp(env);
  if (so.sp.drain || sosp.sp.back) return 'EBUSY';
  so.sp.env = env; // a later splice of the same socket reports to its own caller
  so.sp.len = 0;
  so.sp.max = max;
  so.sp.idle = idle;
  so.sp.endedAt = NaN;
  so.sp.wakeups = 0;
  so.sp.drain = sosp;
  sosp.sp.back = so;
  if (env.somove(so) && idle > 0) so.sp.idleAt = env.now() + idle;
  return 0;
}

function newSp(env: SpliceEnv) {
  return { drain: null, back: null, len: 0, max: 0, idle: 0, idleAt: Infinity, queued: false, wakeups: 0, endedAt: NaN, env };
}

/**
 * OpenBSD somove() for a stream socket: move what the source's so.rcv holds into the drain's
 * so.snd, by reference (m_copym over the same bytes, then sbdrop: zero bytes copied). Limited by
 * `max` and by the drain's send space; once space is short, moves below the drain's low-water
 * mark wait. Only whole Mbufs move, unless the max is reached or the drain is empty. PSH goes
 * only on the segment that ends the move (source empty or max reached). Returns true while the
 * splice goes on; false when it ended (EOF, EFBIG, an error), after sounsplice.
 * Urgent data: see sendMoved. Not modelled: datagrams, the 1,024-byte space bonus for OOB.
 */
export function somove(so: Socket): boolean {
  const sp = so.sp!;
  const sosp = sp.drain!;
  let error: SoError | null = null;
  let maxreached = false;
  release: {
    if (so.error) {
      error = so.error;
      break release;
    }
    if (sosp.cantSendMore) {
      error = 'EPIPE';
      break release;
    }
    if (sosp.error && !DRAIN_ERRORS_IGNORED.has(sosp.error)) {
      error = sosp.error;
      break release;
    }
    if (!sosp.connected) break release;
    let len = so.rcv.cc;
    if (sp.max && sp.max <= sp.len + len) {
      len = sp.max - sp.len;
      maxreached = true;
    }
    const space = sbspace(sosp.snd);
    if (space <= 0) {
      maxreached = false;
      break release;
    }
    if (space < len) {
      maxreached = false;
      if (space < sosp.snd.lowat) break release;
      len = space;
    }
    len = wholeMbufs(so.rcv.mb, len, maxreached || sosp.snd.cc === 0);
    if (len === 0) break release;
    const first = so.rcv.mb!;
    if (first.hdr && (first.hdr.loopcnt = (first.hdr.loopcnt ?? 0) + 1) > M_MAXLOOP) {
      error = 'ELOOP';
      break release;
    }
    const start = so.rcv.total - so.rcv.cc;
    const m = m_copymHdr(first, len);
    sbdrop(so.rcv, len);
    so.proto!.rcvd(so);
    const push = so.rcv.cc === 0 || maxreached;
    if (sendMoved(so, sosp, m, len, push, so.oobmark - start)) {
      error = 'EPIPE';
      break release;
    }
    sp.len += len;
  }
  if (!error && maxreached && sp.max === sp.len) error = 'EFBIG';
  if (error) so.error = error;
  if ((so.cantRcvMore && so.rcv.cc === 0) || sosp.cantSendMore || maxreached || error) {
    sounsplice(so, sosp, false);
    return false;
  }
  if (sp.idle > 0) sp.idleAt = sp.env.now() + sp.idle;
  return true;
}

/**
 * OpenBSD somove's sending step: with SO_OOBINLINE and the urgent mark at `mark` within the moved
 * bytes, the bytes before it go with pru_send (no PSH: SS_ISSENDING), the urgent byte with
 * pru_sendoob (the drain sends it with URG and the urgent pointer after it), the rest with
 * pru_send. Without the option the byte never entered so.rcv (tcp_pulloutofband). Returns true
 * on a send error.
 */
function sendMoved(so: Socket, sosp: Socket, m: Mbuf, len: number, push: boolean, mark: number): boolean {
  const pr = sosp.proto!;
  if (!so.oobinline || so.oobmark < 0 || mark < 0 || mark >= len || !pr.sendoob) return !!pr.send(sosp, m, len, push);
  so.oobmark = -1;
  if (mark > 0 && pr.send(sosp, m_copym(m, 0, mark)!, mark, false)) return true;
  if (pr.sendoob(sosp, m_copym(m, mark, 1)!)) return true;
  const rest = len - mark - 1;
  return rest > 0 && !!pr.send(sosp, m_copym(m, mark + 1, rest)!, rest, push);
}

/**
 * How many of the first `len` bytes to move: whole Mbufs, and the part of the one crossing `len`
 * only when `split` (max reached, or the drain holds nothing: OpenBSD somove's
 * `!maxreached && sosp->so_snd.sb_datacc > 0` rule).
 */
function wholeMbufs(m: Mbuf | null, len: number, split: boolean): number {
  let off = 0;
  for (; m && off < len; m = m.next) {
    if (off + m.len > len) return split ? len : off;
    off += m.len;
  }
  return Math.min(off, len);
}

/** m_copym of the first `len` bytes, keeping the first Mbuf's packet header (its loop count). */
function m_copymHdr(first: Mbuf, len: number): Mbuf {
  const m = m_copym(first, 0, len)!;
  m.hdr = first.hdr;
  return m;
}

/**
 * OpenBSD sounsplice(): dissolve the splice. The source's reader is woken if it has something to
 * read (data left, EOF or an error), the drain's writer if it has space. `freeing` (a close) wakes
 * nobody.
 */
export function sounsplice(so: Socket, sosp: Socket, freeing: boolean): void {
  const sp = so.sp!;
  sp.drain = null;
  sp.idleAt = Infinity;
  sp.endedAt = sp.env.now();
  if (sosp.sp) sosp.sp.back = null;
  if (freeing) return;
  if (so.rcv.cc > 0 || so.cantRcvMore || so.error) sorwakeup(so);
  sowwakeup(sosp);
}

/** OpenBSD soidle(): no somove for the idle time: ETIMEDOUT, unsplice. Returns true if it fired. */
export function soidle(so: Socket, now: number): boolean {
  const sp = so.sp;
  if (!sp?.drain || now < sp.idleAt) return false;
  const at = sp.idleAt;
  so.error = 'ETIMEDOUT';
  sounsplice(so, sp.drain, false);
  sp.endedAt = at;
  return true;
}
