import type { Connection, Dir } from './net/in-pcb.js';
import { type Selector, selectedDir, selects } from './selector.js';
import { viewsAfter, viewsBefore, zeroViews } from './capture/sink.js';
import type { Gap } from './tcp/tcpcb.js';
import type { NetNames } from './net/net-names.js';

/**
 * Output formats of `follow`: tshark's (`-z follow,tcp,<mode>`: raw is hex text; yaml gives each
 * chunk its frame number and time), and `bytes`, the bytes themselves as the sockets read them,
 * with no header, no framing and no text: what a program reading the socket got (both directions
 * interleaved as read, or one).
 */
export type FollowFormat = 'raw' | 'hex' | 'ascii' | 'yaml' | 'bytes';

/** Where reading is: the frame being processed (its number in the capture) and its header's time. */
export interface FollowClock {
  readonly nowFrame: number;
  readonly nowSec: number;
  readonly nowNsec: number;
}

/**
 * What follow prints at a hole that never filled (a gap the receiver recorded): tshark's marker, a
 * chunk of its own; nothing (the bytes after it follow at once, as a socket reads them); or as
 * many zero bytes as the hole, so every byte is at its stream offset (extract's --gaps zero).
 */
export type FollowGaps = 'marker' | 'skip' | 'zero';

/** What a Follower hands on: tshark's text, or (format bytes) views of the bytes read, in order. */
export type FollowOut = string | readonly Uint8Array[];

/**
 * tshark's text for a hole of `len` bytes, as its follow prints it (Wireshark's TCP follow tap):
 * a chunk of the direction's data of its own, its terminating NUL included, counted by the hex
 * dump's offsets like data.
 */
export function gapMarker(len: number): Buffer {
  return Buffer.from(`[${len} bytes missing in capture file]\0`, 'latin1');
}

const RULE = '===================================================================';

/**
 * tshark's follow header: the mode, the filter, and the two nodes. Node 0 is the end that sent the
 * connection's first frame (tshark 4's rule): the client, unless `serverFirst` (a capture that
 * begins mid-connection).
 */
export function followHeader(c: { stream: number; client: string; server: string }, format: FollowFormat, serverFirst = false): string {
  const [n0, n1] = serverFirst ? [c.server, c.client] : [c.client, c.server];
  if (format === 'yaml') return `peers:\n${yamlPeer(0, n0)}${yamlPeer(1, n1)}packets:\n`;
  return `\n${RULE}\nFollow: tcp,${format}\nFilter: tcp.stream eq ${c.stream}\nNode 0: ${n0}\nNode 1: ${n1}\n`;
}

/** A peer of tshark's YAML: `addr:port` (an IPv6 address without brackets, as the endpoints are named) split at its last colon. */
function yamlPeer(n: number, endpoint: string): string {
  const i = endpoint.lastIndexOf(':');
  return `  - peer: ${n}\n    host: ${endpoint.slice(0, i).replace(/^\[(.*)\]$/, '$1')}\n    port: ${endpoint.slice(i + 1)}\n`;
}

/** What ends the text formats (YAML ends with its last packet). */
export const followFooter = (format: FollowFormat): string => (format === 'yaml' ? '' : `${RULE}\n`);

/**
 * One chunk as tshark's YAML shows it (ui/cli/tap-follow.c): the frame it was read at, the peer
 * (node 0 or 1), the time as tshark prints it (seconds and nanoseconds as one double, nine
 * decimals; tshark gives a missing-bytes marker, which no frame carried, time 0), and the bytes in
 * base64, 76 characters a line.
 */
export function yamlChunk(frame: number, node1: boolean, sec: number, nsec: number, views: readonly Uint8Array[]): string {
  const b64 = (views.length === 1 ? Buffer.from(views[0]!.buffer, views[0]!.byteOffset, views[0]!.byteLength) : Buffer.concat(views)).toString('base64');
  let data = '';
  for (let i = 0; i < b64.length; i += 76) data += `      ${b64.slice(i, i + 76)}\n`;
  return `  - packet: ${frame}\n    peer: ${node1 ? 1 : 0}\n    timestamp: ${(sec + nsec / 1e9).toFixed(9)}\n    data: !!binary |\n${data}`;
}

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
 * A chunk read at offset `off` of its direction's delivered bytes, with what stands for each hole
 * recorded before one of its bytes (gaps from index `next` on): tshark's marker (gapMarker; a hole
 * the snaplen cut from captured frames gets none, as in tshark), or with `zero` as many zero bytes
 * as the hole (every hole). Each piece, data or filler (`filler` true), is handed to `piece` in
 * order. Returns the index of the first gap not yet reached, for the next chunk.
 */
export function withGapMarkers(chunk: readonly Uint8Array[], off: number, gaps: readonly Gap[], next: number, piece: (views: readonly Uint8Array[], filler: boolean) => void, zero = false): number {
  let n = 0;
  for (const v of chunk) n += v.length;
  let rest = chunk;
  let at = off;
  for (let g = gaps[next]; g !== undefined && g[0] < off + n; g = gaps[++next]) {
    if (g[2] && !zero) continue;
    if (g[0] > at) {
      piece(viewsBefore(rest, g[0] - at), false);
      rest = viewsAfter(rest, g[0] - at);
      at = g[0];
    }
    piece(zero ? zeroViews(g[1]) : [gapMarker(g[1])], true);
  }
  piece(rest, false);
  return next;
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
  /** Bytes read in each direction: where the next chunk begins in its stream (gaps are placed by it). */
  private readonly offsets = { c2s: 0, s2c: 0 };
  /** Bytes printed in each direction, markers included: the hex dump's offsets (tshark counts its markers). */
  private readonly shownBytes = { c2s: 0, s2c: 0 };
  /** The next gap of each direction's receiver not yet printed. */
  private readonly nextGap = { c2s: 0, s2c: 0 };
  /** The run's network names (the Stack's), for a selector that names a network (a file name with `--100`). */
  nets: NetNames | null = null;
  /** The frame being read (the Stack): YAML's packet numbers and times. */
  clock: FollowClock | null = null;

  constructor(
    private readonly sel: Selector,
    private readonly format: FollowFormat,
    private readonly direction: Dir | null,
    private readonly write: (out: FollowOut) => void,
    private readonly gaps: FollowGaps = 'marker',
  ) {}

  /** The connection is the one followed (the first the selector names): its header, the first time. */
  private follows(c: Connection): boolean {
    if (this.followed >= 0) return c.stream === this.followed;
    if (!selects(this.sel, c, this.nets)) return false;
    this.begin({ stream: c.stream, client: c.clientName, server: c.serverName, serverFirst: c.firstFromServer });
    return true;
  }

  /** Follow this connection from now on, its header first. */
  private begin(c: { stream: number; client: string; server: string; serverFirst: boolean }): void {
    this.followed = c.stream;
    this.serverFirst = c.serverFirst;
    if (this.format !== 'bytes') this.write(followHeader(c, this.format, c.serverFirst));
  }

  /** The first connection the selector named that left the table before any was followed (see finish). */
  private quiet: { stream: number; client: string; server: string; serverFirst: boolean } | null = null;

  /**
   * A connection left the table (DrainApp's `closed`). The first one the selector names that
   * carried no data is remembered: if no connection it names carries any (a 4-tuple can name a
   * refused attempt before the connection that talks), finish() prints its header, with node 0
   * the end that sent its first frame (a lone RST from the server: the server), as tshark does.
   */
  readonly closed = (c: Connection): void => {
    if (this.followed >= 0 || this.quiet !== null || !selects(this.sel, c, this.nets)) return;
    this.quiet = { stream: c.stream, client: c.clientName, server: c.serverName, serverFirst: c.firstFromServer };
  };

  /**
   * End of input: when no connection the selector names carried data, the header of the first it
   * named. Returns false when it named none.
   */
  finish(): boolean {
    if (this.followed >= 0) return true;
    if (this.quiet === null) return false;
    this.begin(this.quiet);
    return true;
  }

  readonly sink = (c: Connection, dir: Dir, chunk: Uint8Array[]): void => {
    if (!this.follows(c)) return;
    const want = selectedDir(this.sel, c) ?? this.direction;
    let n = 0;
    for (const v of chunk) n += v.length;
    const off = this.offsets[dir];
    this.offsets[dir] = off + n;
    if (want !== null && want !== dir) return;
    const show = (views: readonly Uint8Array[], filler: boolean): void => this.show(dir, views, filler);
    if (this.gaps !== 'skip') this.nextGap[dir] = withGapMarkers(chunk, off, (dir === 'c2s' ? c.server : c.client).gaps, this.nextGap[dir], show, this.gaps === 'zero');
    else show(chunk, false);
  };

  /** Print bytes of a direction as one chunk (none when empty); `filler`: a hole's marker or zeros. */
  private show(dir: Dir, views: readonly Uint8Array[], filler: boolean): void {
    let n = 0;
    for (const v of views) n += v.length;
    if (n === 0) return;
    // data from node 1 is marked: the server's, or the client's when the server is node 0
    const node1 = (dir === 's2c') !== this.serverFirst;
    if (this.format === 'bytes') this.write(views);
    else if (this.format === 'yaml') {
      const k = this.clock;
      this.write(yamlChunk(k?.nowFrame ?? 0, node1, filler || !k ? 0 : k.nowSec, filler || !k ? 0 : k.nowNsec, views));
    }
    else this.write(followChunk(this.format, node1, views, this.shownBytes[dir]));
    this.shownBytes[dir] += n;
  }
}
