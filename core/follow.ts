import type { Connection, Dir } from './net/in-pcb.js';
import { type Selector, selectedDir, selects } from './selector.js';

/** Output formats of `follow`, as `tshark -z follow,tcp,<mode>` names them. */
export type FollowFormat = 'raw' | 'hex' | 'ascii';

const RULE = '===================================================================';

/**
 * tshark's follow header: the mode, the filter, and the two nodes. Node 0 is the end that sent the
 * connection's first frame (tshark 4's rule): the client, unless `serverFirst` (a capture that
 * begins mid-connection).
 */
export function followHeader(c: { stream: number; client: string; server: string }, format: FollowFormat, serverFirst = false): string {
  const [n0, n1] = serverFirst ? [c.server, c.client] : [c.client, c.server];
  return `\n${RULE}\nFollow: tcp,${format}\nFilter: tcp.stream eq ${c.stream}\nNode 0: ${n0}\nNode 1: ${n1}\n`;
}

export const followFooter = `${RULE}\n`;

/** A byte as tshark's text shows it: printable ASCII as itself, anything else as a dot. */
const shown = (x: number): string => (x >= 32 && x < 127 ? String.fromCharCode(x) : '.');

/** Hex digits of a byte, lower case (tshark's bin2hex). */
const HEX2 = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * One line of tshark's follow hex dump: the offset (8 upper-case hex digits), 16 bytes in hex with
 * an extra space after the eighth, and the same bytes as text (also split after the eighth), the
 * text starting at column 60 however short the line (one space ending the line dropped, as tshark
 * drops it).
 */
function hexLine(offset: number, row: Uint8Array): string {
  let hex = '';
  let asc = '';
  for (let i = 0; i < row.length; i++) {
    hex += HEX2[row[i]!]! + ' ';
    asc += shown(row[i]!);
    if (i === 7) {
      hex += ' ';
      asc += ' ';
    }
  }
  // tshark drops one space that ends the text, the split's or the data's own
  if (asc.endsWith(' ')) asc = asc.slice(0, -1);
  return `${offset.toString(16).toUpperCase().padStart(8, '0')}  ${hex.padEnd(50)}${asc}`;
}

/**
 * Render one chunk read from a socket in tshark's `-z follow,tcp` text (Wireshark's
 * ui/cli/tap-follow.c): data from node 1 (`node1`: see followHeader) is marked by a tab. raw: the
 * bytes in hex on one line. ascii: a line with the chunk's length, then its bytes, CR and LF as
 * they are, other unprintable bytes as dots, and a newline. hex: a dump whose offsets count the
 * direction's bytes (`offset` is the chunk's position in its direction).
 */
export function followChunk(format: FollowFormat, node1: boolean, views: readonly Uint8Array[], offset: number): string {
  const ind = node1 ? '\t' : '';
  if (format === 'raw') return ind + views.map((v) => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')).join('') + '\n';
  const all = views.length === 1 ? views[0]! : Buffer.concat(views);
  if (format === 'ascii') {
    let s = '';
    for (const ch of all) s += ch === 10 || ch === 13 ? String.fromCharCode(ch) : shown(ch);
    return `${ind}${all.length}\n${s}\n`;
  }
  const lines: string[] = [];
  for (let i = 0; i < all.length; i += 16) lines.push(ind + hexLine(offset + i, all.subarray(i, i + 16)));
  return lines.join('\n') + '\n';
}

/**
 * Follow one stream as its sockets are read: the first connection the selector names gets the
 * header, then each chunk of the wanted directions (the selector's, else `direction`, else both)
 * is rendered and handed to `write`. `sink` is a DrainApp sink.
 */
export class Follower {
  /** The stream followed (-1 until the selector names one); a number, not the Connection, which is recycled once it leaves the table. */
  followed = -1;
  /** Node 0 is the server (it sent the connection's first frame). */
  private serverFirst = false;
  private readonly offsets = { c2s: 0, s2c: 0 };

  constructor(
    private readonly sel: Selector,
    private readonly format: FollowFormat,
    private readonly direction: Dir | null,
    private readonly write: (text: string) => void,
  ) {}

  readonly sink = (c: Connection, dir: Dir, chunk: Uint8Array[]): void => {
    if (this.followed >= 0 ? c.stream !== this.followed : !selects(this.sel, c)) return;
    if (this.followed < 0) {
      this.followed = c.stream;
      this.serverFirst = c.firstFromServer;
      this.write(followHeader({ stream: c.stream, client: c.clientName, server: c.serverName }, this.format, this.serverFirst));
    }
    const want = selectedDir(this.sel, c) ?? this.direction;
    if (want !== null && want !== dir) return;
    // data from node 1 is marked: the server's, or the client's when the server is node 0
    this.write(followChunk(this.format, (dir === 's2c') !== this.serverFirst, chunk, this.offsets[dir]));
    for (const v of chunk) this.offsets[dir] += v.length;
  };
}
