import type { Connection, Dir } from '../net/in-pcb.js';

/** The tokens a template may use after `%` (flowName expands them, templateError knows them). */
const TOKENS = 'AaBb#dTtVvCcNKMGEe%';

/**
 * extract's file names, tcpflow's without its reuse count: the addresses and ports, then `--` and
 * the network for a connection that came in a VLAN or a tunnel (tcpflow's `%V%v`: `--100`).
 */
export const DEFAULT_TEMPLATE = '%A.%a-%B.%b%V%v';

/**
 * tcpflow's %T: the second as ISO 8601 in UTC, strftime's "%FT%TZ" (2026-12-07T06:33:43Z). A
 * pcapng timestamp may be past what a Date holds (±275,760 years; a file's own resolution and
 * 64 bits allow far more): such a second is written as its number, as %t writes it.
 */
function iso8601(sec: number): string {
  const s = Math.floor(sec);
  // years 0000-9999, the four digits the format has
  return s >= ISO_MIN && s < ISO_END ? `${new Date(s * 1000).toISOString().slice(0, 19)}Z` : String(s);
}

/** The first second of year 0000 and of year 10000 (UTC). */
const ISO_MIN = -62167219200;
const ISO_END = 253402300800;

/** "010.000.000.001" for each octet value, as tcpflow pads them (names then sort). */
const OCTET = Array.from({ length: 256 }, (_, i) => String(i).padStart(3, '0'));

/**
 * tcpflow's padded address and port ("010.000.000.001", "01024") of the client's end or the
 * server's; IPv6 in its text form, colons and all, as tcpflow's inet_ntop writes it ("::1", not
 * "..1", which made a hidden file), asked for only then (the connection caches the string).
 */
function padded(c: Connection, client: boolean): [string, string] {
  const words = client ? c.cw : c.sw;
  const p = String(client ? c.cPort : c.sPort).padStart(5, '0');
  if (words.length === 1) {
    const w = words[0]!;
    return [[OCTET[w >>> 24], OCTET[(w >>> 16) & 0xff], OCTET[(w >>> 8) & 0xff], OCTET[w & 0xff]].join('.'), p];
  }
  return [/^\[(.*)\]:\d+$/.exec(client ? c.clientName : c.serverName)![1]!, p];
}

/** Scratch for the default template's IPv4 names: "AAA.AAA.AAA.AAA.aaaaa-BBB.BBB.BBB.BBB.bbbbb". */
const NAME4 = Buffer.alloc(43);
const DIGIT0 = 0x30;

/** Address word `w` and `port` as "AAA.AAA.AAA.AAA.aaaaa" into NAME4 at `at`. */
function put4(w: number, port: number, at: number): void {
  const b = NAME4;
  for (let k = 24; k >= 0; k -= 8) {
    const o = (w >>> k) & 0xff;
    b[at] = DIGIT0 + ((o / 100) | 0);
    b[at + 1] = DIGIT0 + (((o / 10) | 0) % 10);
    b[at + 2] = DIGIT0 + (o % 10);
    b[at + 3] = 0x2e; // '.'
    at += 4;
  }
  for (let k = 4, q = port; k >= 0; k--, q = (q / 10) | 0) b[at + k] = DIGIT0 + (q % 10);
}

/** Two hex digits of each byte value. */
const HEX2 = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** The MAC address at `o` of `link` as tcpflow writes it ("00:1f:33:d9:81:60"); zeros without one. */
function mac(link: Uint8Array | null, o: number): string {
  if (!link) return '00:00:00:00:00:00';
  return [HEX2[link[o]!], HEX2[link[o + 1]!], HEX2[link[o + 2]!], HEX2[link[o + 3]!], HEX2[link[o + 4]!], HEX2[link[o + 5]!]].join(':');
}

/** Three digits of the stream index, tcpflow's %N %K %M %G (its bins of 1,000). */
const bin = (stream: number, per: number) => String(Math.floor(stream / per) % 1000).padStart(3, '0');

/**
 * Expand a file-name template (tcpflow's -T): %A/%a source address/port, %B/%b destination (zero
 * padded so names sort), %T start time in ISO 8601 (UTC), %t start time (epoch s), %V `--` when
 * the connection is in a network of its own (a VLAN, a tunnel), %v that network (netToken: `100`,
 * `30.20.10`, `vxlan-vni-5001`), %E/%e the source/destination MAC address of the direction's first
 * frame (`link`: its source's 6 bytes, then its destination's; zeros for a frame not on Ethernet),
 * %# stream index, %d direction (c2s or s2c), %c `count` when it
 * is above 0 (the connections given this name before: tcpflow's connection count) and %C a `c`
 * then, %N %K %M %G the stream index's units, thousands, millions and billions as three digits
 * each (tcpflow's bins: `%K/%N` puts 1,000 streams in a directory), %%. `net` is the
 * connection's network as netToken writes it ('' for none). A `/` makes directories.
 */
export function flowName(template: string, c: Connection, dir: Dir, net = '', count = 0, link: Uint8Array | null = null): string {
  if (template === DEFAULT_TEMPLATE && c.alen === 4) {
    // the default over IPv4, as bytes decoded once: one flat string, no pieces to collect (the
    // general path below made ~400 bytes of garbage a name, a fifth of extract's allocations)
    const fromClient = dir === 'c2s';
    const cw = c.c4;
    const sw = c.s4;
    put4(fromClient ? cw : sw, fromClient ? c.cPort : c.sPort, 0);
    NAME4[21] = 0x2d; // '-'
    put4(fromClient ? sw : cw, fromClient ? c.sPort : c.cPort, 22);
    const name = NAME4.toString('latin1', 0, 43);
    return net === '' ? name : [name, '--', net].join('');
  }
  const cl = padded(c, true);
  const sv = padded(c, false);
  const [[sa, sp], [da, dp]] = dir === 'c2s' ? [cl, sv] : [sv, cl];
  // the default (IPv6), without a regex; join makes a flat string (a template makes a rope,
  // flattened again by every later use: the path, the index)
  if (template === DEFAULT_TEMPLATE) return [sa, '.', sp, '-', da, '.', dp, net === '' ? '' : '--', net].join('');
  return template.replace(new RegExp(`%([${TOKENS}])`, 'g'), (_, k: string) => {
    switch (k) {
      case 'A': return sa;
      case 'a': return sp;
      case 'B': return da;
      case 'b': return dp;
      case '#': return String(c.stream);
      case 'd': return dir;
      case 'T': return iso8601(c.firstSec);
      case 't': return String(c.firstSec);
      case 'V': return net === '' ? '' : '--';
      case 'v': return net;
      case 'c': return count > 0 ? String(count) : '';
      case 'C': return count > 0 ? 'c' : '';
      case 'E': return mac(link, 0);
      case 'e': return mac(link, 6);
      case 'N': return bin(c.stream, 1);
      case 'K': return bin(c.stream, 1e3);
      case 'M': return bin(c.stream, 1e6);
      case 'G': return bin(c.stream, 1e9);
      default: return '%';
    }
  });
}

/** True when the template uses any of the tokens `keys` (`cC`: tcpflow's count, `Ee`: the MAC addresses). */
export function usesTokens(template: string, keys: string): boolean {
  return new RegExp(`%[${keys}]`).test(template.replace(/%%/g, ''));
}

/**
 * A name made safe as a path inside the output directory: a part (between slashes) that is
 * empty, `.` or `..` (%v of a connection in no network, a template of dots) would be no file's,
 * or a way out of the directory: it gets `-c<stream>` (`..` becomes `..-c7`).
 */
export function safePath(name: string, stream: number): string {
  if (!name.includes('/')) return name === '' || name === '.' || name === '..' ? `${name}-c${stream}` : name;
  return name
    .split('/')
    .map((p) => (p === '' || p === '.' || p === '..' ? `${p}-c${stream}` : p))
    .join('/');
}

/**
 * What is wrong with a file-name template, or null: empty, a token flowName does not know (it
 * would stay in every name as written), or a path that is not one inside the output directory
 * (`/x`, `../x%A`, `a//b`, `a/`: a `/` makes directories there, as tcpflow's -T does).
 */
export function templateError(template: string): string | null {
  if (template === '') return 'is empty';
  if (template.startsWith('/')) return "starts with '/': names are paths inside the output directory";
  const part = template.split('/').find((p) => p === '' || p === '.' || p === '..');
  if (part !== undefined) return `has ${part === '' ? 'an empty part' : `a '${part}' part`}: names are paths inside the output directory, each part a name`;
  const bad = new RegExp(`%([^${TOKENS}]|$)`).exec(template.replace(/%%/g, ''));
  return bad ? `has an unknown token '${bad[0]}' (known: ${[...TOKENS].map((k) => `%${k}`).join(' ')})` : null;
}
