import { SockcapError } from './errors.js';
import type { Connection, Dir } from './net/in-pcb.js';
import { endpointString } from './net/in-pcb.js';
import { parseIp } from './wire/bytes.js';
import { type NetNames, netToken } from './net/net-names.js';

/**
 * A flow selector, as users write it: Wireshark's tcp.stream index (`3`), or a 4-tuple
 * (`10.0.0.1:5555-10.0.0.2:80`, `[::1]:5555-[::1]:80`, either order; tshark's follow spells it
 * `10.0.0.1:5555,10.0.0.2:80`), optionally with a direction (`3:c2s`, `10.0.0.1:5555>10.0.0.2:80`
 * meaning the bytes that endpoint sent); or the name of a file extract (or tcpflow) wrote, which
 * is one direction (`010.000.000.001.05555-010.000.000.002.00080`, `::1.05555-::1.00080`, with
 * its network when it had one, `--100`, and extract's `-c<stream>` when the name was given before
 * in its run).
 */
export interface Selector {
  readonly text: string;
  readonly stream: number | null;
  /** Canonical `addr:port` strings of the two endpoints (for 4-tuples). */
  readonly ends: [string, string] | null;
  /** For `A>B`: the sending endpoint. */
  readonly from: string | null;
  readonly dir: Dir | null;
  /**
   * The network a file name carries (netToken: `100`, `vxlan-vni-5001`): only a connection in it
   * is selected. Null: any (a stream index, a 4-tuple, a name without one).
   */
  readonly net?: string | null;
}

function endpoint(s: string, text: string): string {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(s) ?? /^([0-9.]+):(\d+)$/.exec(s);
  const ip = m ? parseIp(m[1]!) : null;
  const port = m ? Number(m[2]) : NaN;
  if (!ip || !(port >= 0 && port <= 65535))
    throw new SockcapError('ERR_USAGE', `bad flow selector '${text}': '${s}' is not addr:port ([addr]:port for IPv6)`);
  return endpointString(ip, port);
}

/** Parse a selector; a malformed one is a usage error naming it. */
export function parseSelector(text: string): Selector {
  const file = flowFileName(text);
  if (file) return file;
  const dm = /^(.*):(c2s|s2c)$/.exec(text);
  const body = dm ? dm[1]! : text;
  const dir = dm ? (dm[2] as Dir) : null;
  if (/^\d+$/.test(body)) return { text, stream: Number(body), ends: null, from: null, dir };
  const arrow = body.indexOf('>');
  const sep = arrow >= 0 ? arrow : body.search(/(?<=[\d\]])[-,](?=[\d[])/);
  if (sep < 0) throw new SockcapError('ERR_USAGE', `bad flow selector '${text}': expected a stream index, A:p-B:q (or tshark's A:p,B:q) or a file name extract wrote`);
  const a = endpoint(body.slice(0, sep), text);
  const b = endpoint(body.slice(sep + 1), text);
  return { text, stream: null, ends: [a, b], from: arrow >= 0 ? a : null, dir };
}

/**
 * A file name in the default template of extract and tcpflow (`%A.%a-%B.%b%V%v`: addresses zero
 * padded over IPv4, ports to five digits, `--` and the network if any; a path is allowed, its last
 * part counts) as the direction it holds, or null when `text` is not one. Extract's `-c<stream>`
 * suffix (a 4-tuple seen again) names the stream as well.
 */
function flowFileName(text: string): Selector | null {
  const m = /^(.+?)\.(\d{5})-(.+?)\.(\d{5})(?:--([0-9A-Za-z.-]+?))?(?:-c(\d+)(?:-(?:c2s|s2c)(?:-\d+)?)?)?$/.exec(text.slice(text.lastIndexOf('/') + 1));
  if (!m) return null;
  const addr = (s: string): Uint8Array | null =>
    /^\d{3}(?:\.\d{3}){3}$/.test(s) ? parseIp(s.split('.').map(Number).join('.')) : s.includes(':') ? parseIp(s) : null;
  const a = addr(m[1]!);
  const b = addr(m[3]!);
  const ap = Number(m[2]);
  const bp = Number(m[4]);
  if (!a || !b || ap > 65535 || bp > 65535) return null;
  const from = endpointString(a, ap);
  return { text, stream: m[6] === undefined ? null : Number(m[6]), ends: [from, endpointString(b, bp)], from, dir: null, net: m[5] ?? null };
}

/**
 * True when the selector names this connection. A selector with a network (a file name that
 * carries one) needs the run's network names to match anything.
 */
export function selects(sel: Selector, c: Connection, nets: NetNames | null = null): boolean {
  if (!sameFlow(sel, c.stream, c.clientName, c.serverName)) return false;
  return sel.net == null || (c.vlan !== 0 && nets !== null && nets.token(c.vlan) === sel.net);
}

/**
 * True when the selector names stream `stream` between `client` and `server` in the network named
 * `net` (a connection's summary: its `net`, undefined for none).
 */
export function selectsFlow(sel: Selector, stream: number, client: string, server: string, net: string | undefined): boolean {
  return sameFlow(sel, stream, client, server) && (sel.net == null || netToken(net) === sel.net);
}

/** The stream, or the two endpoints, are the selector's. */
function sameFlow(sel: Selector, stream: number, client: string, server: string): boolean {
  if (sel.stream !== null) return stream === sel.stream;
  const [a, b] = sel.ends!;
  return (client === a && server === b) || (client === b && server === a);
}

/** The direction a selector names in a connection it selects, or null for both. */
export function selectedDir(sel: Selector, c: Connection): Dir | null {
  if (sel.dir) return sel.dir;
  if (sel.from) return sel.from === c.clientName ? 'c2s' : 's2c';
  return null;
}
