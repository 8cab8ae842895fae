import { gapsJson, type JsonBuf, K_GAPS, K_NET, K_SHA256, lit, OBJ_CLOSE, OBJ_STREAM } from './json-buf.js';
import type { Connection, Dir } from './net/in-pcb.js';
import type { NetNames } from './net/net-names.js';
import { connNet, connState, retransmitted, type Digest } from './tcp/summary.js';
import type { Tcpcb } from './tcp/tcpcb.js';

/**
 * A connection as replay and live report it, written straight from the Connection as it leaves the
 * table: a row of the table (connRow) or an element of "connections" (connJson). Both write what
 * the connection's summary (connSummary) would have come to (JSON.stringify's bytes; the table's
 * template), which the tests check for every connection of the fixtures and the corpus, without
 * making the summary: its ten objects, the two endpoint strings and the copies of them took 0.35 s
 * of replay on the short benchmark capture (200,000 connections; 2.15 s without any report, 2.5 s
 * making the summaries and dropping them, 3.0 s writing them), and writing its strings, which are
 * digits and dots here, cost as much again.
 */

/** An endpoint, a.b.c.d:port or [v6]:port: IPv4 digits written where they go, no string made. */
function endpoint(j: JsonBuf, c: Connection, client: boolean): void {
  if (c.alen === 4) j.endpoint4(client ? c.c4 : c.s4, client ? c.cPort : c.sPort);
  else j.raw(client ? c.clientName : c.serverName);
}

const K_CLIENT = lit(',"client":"');
const K_SERVER = lit('","server":"');
const QUOTE = lit('"');
const K_STATE = lit(',"state":');
const K_STATES_CLIENT = lit(',"states":{"client":');
const K_STATES_SERVER = lit(',"server":');
const K_CLIENT_GUESSED_TRUE = lit('},"clientGuessed":true');
const K_CLIENT_GUESSED_FALSE = lit('},"clientGuessed":false');
const K_FRAMES = lit(',"frames":');
const K_START = lit(',"start":');
const K_DURATION = lit(',"duration":');
const K_C2S = lit(',"c2s":');
const K_S2C = lit(',"s2c":');
const OBJ_SRC = lit('{"src":"');
const K_DST = lit('","dst":"');
const K_BYTES = lit('","bytes":');
const K_SEGMENTS = lit(',"segments":');
const K_RETRANSMITTED = lit(',"retransmitted":');
const K_OUT_OF_ORDER = lit(',"outOfOrder":');
const K_OVERLAP_BYTES = lit(',"overlapBytes":');
const K_OVERLAP_CONFLICTS = lit(',"overlapConflicts":');

/** JSON.stringify(connSummary(c, digest, nets)), written into `j`. */
export function connJson(j: JsonBuf, c: Connection, digest?: Digest, nets?: NetNames): void {
  j.lit(OBJ_STREAM);
  j.num(c.stream);
  j.lit(K_CLIENT);
  endpoint(j, c, true);
  j.lit(K_SERVER);
  endpoint(j, c, false);
  j.lit(QUOTE);
  const net = connNet(c, nets);
  if (net !== undefined) {
    j.lit(K_NET);
    j.str(net);
  }
  j.lit(K_STATE);
  j.str(connState(c));
  j.lit(K_STATES_CLIENT);
  j.str(c.client.state);
  j.lit(K_STATES_SERVER);
  j.str(c.server.state);
  j.lit(c.guessed ? K_CLIENT_GUESSED_TRUE : K_CLIENT_GUESSED_FALSE);
  j.lit(K_FRAMES);
  j.num(c.frames);
  j.lit(K_START);
  j.num(c.firstTs);
  j.lit(K_DURATION);
  j.num(c.duration);
  j.lit(K_C2S);
  dirJson(j, c, 'c2s', c.server, digest);
  j.lit(K_S2C);
  dirJson(j, c, 's2c', c.client, digest);
  j.lit(OBJ_CLOSE);
}

/** One direction, what `rx` received (dirSummary's keys, in its order). */
function dirJson(j: JsonBuf, c: Connection, dir: Dir, rx: Tcpcb, digest: Digest | undefined): void {
  const s = rx.rcvStats;
  j.lit(OBJ_SRC);
  endpoint(j, c, dir === 'c2s');
  j.lit(K_DST);
  endpoint(j, c, dir !== 'c2s');
  j.lit(K_BYTES);
  j.num(rx.so.rcv.total);
  j.lit(K_GAPS);
  gapsJson(j, rx.gaps);
  j.lit(K_SEGMENTS);
  j.num(rx.rcvTotal);
  j.lit(K_RETRANSMITTED);
  j.num(retransmitted(s));
  j.lit(K_OUT_OF_ORDER);
  j.num(s.oooSegs);
  j.lit(K_OVERLAP_BYTES);
  j.num(s.overlapBytes);
  j.lit(K_OVERLAP_CONFLICTS);
  j.num(s.overlapConflicts);
  const h = digest?.(c, dir);
  if (h) {
    j.lit(K_SHA256);
    j.str(h);
  }
  j.lit(OBJ_CLOSE);
}

/** Column header of the connection table (fixed widths, so rows can be printed as they come). */
export const CONN_HEADER = `${'stream'.padEnd(6)}  ${'client'.padEnd(22)}  ${'server'.padEnd(22)}  ${'state'.padEnd(11)}  ${'c2s bytes'.padStart(13)}  ${'s2c bytes'.padStart(13)}  ${'retx'.padStart(9)}  ${'ooo'.padStart(6)}  ${'overlap'.padStart(8)}  ${'gaps'.padStart(4)}  duration`;

/** Room for a padded field: an IPv6 endpoint and its '?' (48), or a number as JSON.stringify writes it. */
const FIELD = 64;

/**
 * One row of the connection table and a newline, plus its hashes when there are any, written into
 * `j` byte by byte (replay writes 100,000s of rows this way; the table's one layout).
 */
export function connRow(j: JsonBuf, c: Connection, digest?: Digest, nets?: NetNames): void {
  const a = c.server.rcvStats;
  const z = c.client.rcvStats;
  let at = j.mark(FIELD);
  j.num(c.stream);
  j.padEnd(at, 6);
  j.raw('  ');
  at = j.mark(FIELD);
  endpoint(j, c, true);
  if (c.guessed) j.raw('?');
  j.padEnd(at, 22);
  j.raw('  ');
  at = j.mark(FIELD);
  endpoint(j, c, false);
  j.padEnd(at, 22);
  j.raw('  ');
  j.pad(connState(c), 11, false);
  j.raw('  ');
  j.thousandsPad(c.server.so.rcv.total, 13);
  j.raw('  ');
  j.thousandsPad(c.client.so.rcv.total, 13);
  j.raw('  ');
  j.thousandsPad(retransmitted(a) + retransmitted(z), 9);
  j.raw('  ');
  j.thousandsPad(a.oooSegs + z.oooSegs, 6);
  j.raw('  ');
  j.thousandsPad(a.overlapBytes + z.overlapBytes, 8);
  j.raw('  ');
  j.numPad(c.server.gaps.length + c.client.gaps.length, 4);
  j.raw('  ');
  j.text(c.duration.toFixed(3));
  j.raw('s');
  const net = connNet(c, nets);
  if (net !== undefined) {
    j.raw('  ');
    j.text(net);
  }
  j.raw('\n');
  const ha = digest?.(c, 'c2s');
  if (ha) j.text(`        sha256 c2s ${ha}\n        sha256 s2c ${digest!(c, 's2c')}\n`);
}
