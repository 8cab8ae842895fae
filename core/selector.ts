import { SockcapError } from './errors.js';
import type { Connection, Dir } from './net/in-pcb.js';
import { endpointString } from './net/in-pcb.js';
import { parseIp } from './wire/bytes.js';

/**
 * A flow selector, as users write it: Wireshark's tcp.stream index (`3`), or a 4-tuple
 * (`10.0.0.1:5555-10.0.0.2:80`, `[::1]:5555-[::1]:80`, either order), optionally with a
 * direction (`3:c2s`, `10.0.0.1:5555>10.0.0.2:80` meaning the bytes that endpoint sent).
 */
export interface Selector {
  readonly text: string;
  readonly stream: number | null;
  /** Canonical `addr:port` strings of the two endpoints (for 4-tuples). */
  readonly ends: [string, string] | null;
  /** For `A>B`: the sending endpoint. */
  readonly from: string | null;
  readonly dir: Dir | null;
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
  const dm = /^(.*):(c2s|s2c)$/.exec(text);
  const body = dm ? dm[1]! : text;
  const dir = dm ? (dm[2] as Dir) : null;
  if (/^\d+$/.test(body)) return { text, stream: Number(body), ends: null, from: null, dir };
  const arrow = body.indexOf('>');
  const sep = arrow >= 0 ? arrow : body.search(/(?<=[\d\]])-(?=[\d[])/);
  if (sep < 0) throw new SockcapError('ERR_USAGE', `bad flow selector '${text}': expected a stream index or A:p-B:q`);
  const a = endpoint(body.slice(0, sep), text);
  const b = endpoint(body.slice(sep + 1), text);
  return { text, stream: null, ends: [a, b], from: arrow >= 0 ? a : null, dir };
}

/** True when the selector names this connection. */
export function selects(sel: Selector, c: Connection): boolean {
  return selectsFlow(sel, c.stream, c.clientName, c.serverName);
}

/** True when the selector names stream `stream` between `client` and `server` (a connection's summary, say). */
export function selectsFlow(sel: Selector, stream: number, client: string, server: string): boolean {
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
