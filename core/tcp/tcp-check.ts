import { sbcheck } from '../socket/sockbuf.js';
import type { Tcpcb } from './tcpcb.js';

/**
 * Invariants of one endpoint's receive side (DESIGN.md channel 4; BSD's SOCKBUF_DEBUG spirit):
 * the socket buffer's accounting, the reassembly queue sorted, disjoint and beyond rcvOff, runs
 * that meet joined, its byte and Mbuf counts right, gaps inside what was delivered, a FIN never
 * behind data already delivered. Throws.
 */
export function tcpcheck(tp: Tcpcb, where = 'tcpcheck'): void {
  sbcheck(tp.so.rcv);
  let prev = tp.rcvOff;
  let prevCut: boolean | null = null;
  let bytes = 0;
  let mbufs = 0;
  for (const e of tp.q) {
    if (!(e.off >= prev && e.end > e.off)) throw new Error(`${where}: queue entry [${e.off},${e.end}) overlaps or precedes ${prev}`);
    if (e.off === prev && prevCut === (e.m === null)) throw new Error(`${where}: queue entry [${e.off},${e.end}) meets the one before it and was not joined to it`);
    let len = 0;
    let n = 0;
    let tail = null;
    for (let m = e.m; m; m = m.next, n++) {
      len += m.len;
      tail = m;
    }
    if (e.m && len !== e.end - e.off) throw new Error(`${where}: queue entry [${e.off},${e.end}) holds ${len} bytes`);
    if (tail !== e.tail || (e.m ? n : 1) !== e.n) throw new Error(`${where}: queue entry [${e.off},${e.end}) has ${n} Mbufs, says ${e.n}${tail === e.tail ? '' : ', and not its tail'}`);
    if (e.m) bytes += len;
    mbufs += e.n;
    prev = e.end;
    prevCut = e.m === null;
  }
  if (tp.q.length && tp.q[0]!.off <= tp.rcvOff) throw new Error(`${where}: queue head at ${tp.q[0]!.off} is deliverable (rcvOff ${tp.rcvOff})`);
  if (bytes !== tp.qBytes) throw new Error(`${where}: qBytes ${tp.qBytes} but the queue holds ${bytes}`);
  if (mbufs !== tp.qMbufs) throw new Error(`${where}: qMbufs ${tp.qMbufs} but the queue holds ${mbufs}`);
  for (const [off, len] of tp.gaps)
    if (off < 0 || len <= 0 || off > tp.so.rcv.total) throw new Error(`${where}: gap [${off},${len}) outside the delivered stream`);
  if (tp.finRcvd && tp.finOff >= 0 && tp.rcvOff < tp.finOff) throw new Error(`${where}: FIN taken before the data ahead of it`);
}
