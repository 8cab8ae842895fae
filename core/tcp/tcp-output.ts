import { be32, put16, put32 } from '../wire/bytes.js';
import { TCPOPT_EOL, TCPOPT_NOP, TCPOPT_SACK, TCPOPT_TIMESTAMP, walkTcpOptions } from '../wire/tcp.js';

/** The fields of a TCP header the stack sends (the checksum is ip_output's job). */
export interface TcpHeaderFields {
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  win: number;
  urp: number;
  /** Option bytes as they go on the wire (padded here to a multiple of 4 with EOL). */
  opts: Uint8Array | null;
}

const NO_OPTS = new Uint8Array(0);

/**
 * BSD tcp_output()'s header step (tcp_fillheaders + the th_* assignments): a fresh 20-byte header
 * plus options, checksum left 0 for ip_output to fill.
 */
export function tcpHeader(f: TcpHeaderFields): Uint8Array {
  const opts = f.opts ?? NO_OPTS;
  const olen = (opts.length + 3) & ~3;
  const th = new Uint8Array(20 + olen);
  put16(th, 0, f.sport);
  put16(th, 2, f.dport);
  put32(th, 4, f.seq >>> 0);
  put32(th, 8, f.ack >>> 0);
  th[12] = ((20 + olen) >> 2) << 4;
  th[13] = f.flags;
  put16(th, 14, f.win);
  put16(th, 18, f.urp);
  th.set(opts, 20);
  th.fill(TCPOPT_EOL, 20 + opts.length);
  return th;
}

/** A copy of a captured segment's option bytes (header bytes [20, hlen) at `o`). */
export function capturedOptions(b: Uint8Array, o: number, hlen: number): Uint8Array {
  return b.slice(o + 20, o + hlen);
}

/**
 * Move the edges of every SACK block in `opts` back by `delta` bytes of sequence space (in place):
 * when the stack renumbers a stream, the selective acknowledgements of it must follow.
 */
export function shiftSack(opts: Uint8Array, delta: number): void {
  if (delta === 0) return;
  walkTcpOptions(opts, 0, opts.length, (kind, at, len) => {
    if (kind === TCPOPT_SACK) for (let e = at + 2; e + 4 <= at + len; e += 4) put32(opts, e, (be32(opts, e) - delta) >>> 0);
  });
}

/** The timestamp option of the segment whose TCP header is at `o` (NOP, NOP, TS), to be sent again as it was. */
export function timestampOption(b: Uint8Array, o: number, hlen: number): Uint8Array | null {
  let ts: Uint8Array | null = null;
  walkTcpOptions(b, o + 20, hlen - 20, (kind, at, len) => {
    if (kind !== TCPOPT_TIMESTAMP || len !== 10) return;
    ts = new Uint8Array(12);
    ts[0] = ts[1] = TCPOPT_NOP;
    ts.set(b.subarray(at, at + 10), 2);
  });
  return ts;
}

/** Option bytes with every SACK block turned into NOPs (they describe a stream the model replaced). */
export function stripSack(opts: Uint8Array): Uint8Array {
  walkTcpOptions(opts, 0, opts.length, (kind, at, len) => {
    if (kind === TCPOPT_SACK) opts.fill(TCPOPT_NOP, at, at + len);
  });
  return opts;
}
