import type { Connection, Dir } from './net/in-pcb.js';
import { type Selector, selectedDir, selects } from './selector.js';

/** Output formats of `follow`, as `tshark -z follow,tcp,<mode>` names them. */
export type FollowFormat = 'raw' | 'hex' | 'ascii';

const RULE = '===================================================================';

/** tshark's follow header: the mode, the filter, and the two nodes (node 0 is the client). */
export function followHeader(c: { stream: number; client: string; server: string }, format: FollowFormat): string {
  return `\n${RULE}\nFollow: tcp,${format}\nFilter: tcp.stream eq ${c.stream}\nNode 0: ${c.client}\nNode 1: ${c.server}\n`;
}

export const followFooter = `${RULE}\n`;

/**
 * Render one chunk read from a socket, as tshark's follow does: data from node 1 (the server,
 * s2c) is indented by a tab. `offset` is the position of the chunk in its direction (hex mode).
 */
export function followChunk(format: FollowFormat, dir: Dir, views: readonly Uint8Array[], offset: number): string {
  const ind = dir === 's2c' ? '\t' : '';
  if (format === 'raw') return ind + views.map((v) => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')).join('') + '\n';
  const all = views.length === 1 ? views[0]! : Buffer.concat(views);
  if (format === 'ascii') {
    let s = '';
    for (const ch of all) s += ch === 10 || (ch >= 32 && ch < 127) ? String.fromCharCode(ch) : '.';
    return ind + s + '\n';
  }
  const lines: string[] = [];
  for (let i = 0; i < all.length; i += 16) {
    const row = all.subarray(i, i + 16);
    const hex = [...row].map((x) => x.toString(16).padStart(2, '0'));
    const left = hex.slice(0, 8).join(' ');
    const right = hex.slice(8).join(' ');
    const asc = [...row].map((x) => (x >= 32 && x < 127 ? String.fromCharCode(x) : '.')).join('');
    lines.push(`${ind}${(offset + i).toString(16).padStart(8, '0')}  ${left.padEnd(23)}  ${right.padEnd(23)}  ${asc}`);
  }
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
      this.write(followHeader({ stream: c.stream, client: c.clientName, server: c.serverName }, this.format));
    }
    const want = selectedDir(this.sel, c) ?? this.direction;
    if (want !== null && want !== dir) return;
    this.write(followChunk(this.format, dir, chunk, this.offsets[dir]));
    for (const v of chunk) this.offsets[dir] += v.length;
  };
}
