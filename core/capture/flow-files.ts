import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash, type Hash } from 'node:crypto';
import { SockcapError } from '../errors.js';
import type { Connection, Dir } from '../net/in-pcb.js';

/** One direction's file: views waiting to be written (references to capture memory, no copies). */
interface FlowFile {
  path: string;
  name: string;
  views: Uint8Array[];
  pending: number;
  bytes: number;
  opened: boolean;
  hash: Hash | null;
}

/** What the index says of one written direction. */
export interface FlowIndexEntry {
  stream: number;
  dir: Dir;
  src: string;
  dst: string;
  file: string;
  bytes: number;
  sha256?: string;
}

/** A direction's bytes are written once this much is waiting (long flows), or when it closes. */
const FLUSH_AT = 1 << 20;
/** File operations in flight at once (libuv's thread pool does them in parallel). */
const CONCURRENCY = 32;

function pad4(addr: string): string {
  const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+):(\d+)$/.exec(addr);
  if (v4) return `${v4.slice(1, 5).map((x) => x.padStart(3, '0')).join('.')}.${v4[5]!.padStart(5, '0')}`;
  const v6 = /^\[(.*)\]:(\d+)$/.exec(addr)!;
  return `${v6[1]!.replace(/:/g, '.')}.${v6[2]!.padStart(5, '0')}`;
}

/**
 * Expand a file-name template: %A/%a source address/port, %B/%b destination (tcpflow's, zero
 * padded so names sort), %# stream index, %d direction (c2s or s2c), %T start time (epoch s), %%.
 */
export function flowName(template: string, c: Connection, dir: Dir): string {
  const [src, dst] = dir === 'c2s' ? [c.clientName, c.serverName] : [c.serverName, c.clientName];
  const [sa, sp] = splitPadded(pad4(src));
  const [da, dp] = splitPadded(pad4(dst));
  return template.replace(/%([AaBb#dT%])/g, (_, k: string) =>
    k === 'A' ? sa : k === 'a' ? sp : k === 'B' ? da : k === 'b' ? dp : k === '#' ? String(c.stream)
      : k === 'd' ? dir : k === 'T' ? String(Math.floor(c.firstTs)) : '%');
}

function splitPadded(p: string): [string, string] {
  const i = p.lastIndexOf('.');
  return [p.slice(0, i), p.slice(i + 1)];
}

/**
 * Writes every direction of every connection to its own file in `dir` (tcpflow's layout), in one
 * pass, with bounded memory: a direction's views are written when 1 MiB is waiting or when the
 * connection leaves the table. Directions with no bytes get no file. Names that repeat (the same
 * 4-tuple reused by a later stream) get `-c<stream>` appended.
 */
export class FlowFiles {
  private readonly files = new Map<Connection, Partial<Record<Dir, FlowFile>>>();
  private readonly used = new Set<string>();
  private readonly inflight = new Set<Promise<void>>();
  private failure: Error | null = null;
  /** Bytes held in views not yet written. */
  heldBytes = 0;
  written = 0;
  filesWritten = 0;

  constructor(
    private readonly dir: string,
    private readonly template: string,
    private readonly hash: boolean,
    /** Each finished direction, for the index. */
    private readonly onFile: (e: FlowIndexEntry) => void,
  ) {}

  data(c: Connection, d: Dir, chunk: readonly Uint8Array[]): void {
    let per = this.files.get(c);
    if (!per) this.files.set(c, (per = {}));
    const f = (per[d] ??= this.open(c, d));
    for (const v of chunk) {
      f.views.push(v);
      f.pending += v.length;
      f.bytes += v.length;
      this.heldBytes += v.length;
      f.hash?.update(v);
    }
    if (f.pending >= FLUSH_AT) this.write(f);
  }

  /** The connection left the table: write what is left of both directions and index them. */
  closed(c: Connection): void {
    const per = this.files.get(c);
    this.files.delete(c);
    if (!per) return;
    for (const d of ['c2s', 's2c'] as const) {
      const f = per[d];
      if (!f) continue;
      this.write(f);
      this.onFile({
        stream: c.stream, dir: d, src: d === 'c2s' ? c.clientName : c.serverName, dst: d === 'c2s' ? c.serverName : c.clientName,
        file: f.name, bytes: f.bytes, ...(f.hash ? { sha256: f.hash.digest('hex') } : {}),
      });
    }
  }

  private open(c: Connection, d: Dir): FlowFile {
    let name = flowName(this.template, c, d);
    if (this.used.has(name)) name = `${name}-c${c.stream}`;
    this.used.add(name);
    return { path: join(this.dir, name), name, views: [], pending: 0, bytes: 0, opened: false, hash: this.hash ? createHash('sha256') : null };
  }

  private write(f: FlowFile): void {
    if (!f.views.length) return;
    const views = f.views;
    const n = f.pending;
    f.views = [];
    f.pending = 0;
    const flag = f.opened ? 'a' : 'w';
    if (!f.opened) this.filesWritten++;
    f.opened = true;
    const p = (async () => {
      const fh = await open(f.path, flag);
      try {
        for (let i = 0; i < views.length; i += 1024) await fh.writev(views.slice(i, i + 1024));
      } finally {
        await fh.close();
      }
      this.heldBytes -= n;
      this.written += n;
    })().catch((e: Error) => {
      this.failure ??= new SockcapError('ERR_WRITE', `${f.path}: cannot write: ${e.message}`, { cause: e });
    });
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  /** Wait while too much is in flight (call once per batch); rethrows a write failure. */
  async settle(all = false): Promise<void> {
    while (this.inflight.size > (all ? 0 : CONCURRENCY)) await Promise.race(this.inflight);
    if (this.failure) throw this.failure;
  }
}
