import { once } from 'node:events';
import { CONN_HEADER, connJson, connRow } from '../core/conn-text.js';
import { JsonBuf } from '../core/json-buf.js';
import type { Connection } from '../core/net/in-pcb.js';
import type { Stack } from '../core/stack.js';

/** How a report writes its per-connection items: the table's header and rows, and JSON. */
export interface ItemFormat<T> {
  readonly header: string;
  row(jb: JsonBuf, item: T): void;
  json(jb: JsonBuf, item: T): void;
}

/**
 * The connections of `stack` as they leave its table (Stack onRetire): replay's table and the
 * elements of its "connections", written from each Connection (conn-text.ts) with the stack's
 * hashes and network names.
 */
export function connections(stack: Pick<Stack, 'digest' | 'nets'>): ItemFormat<Connection> {
  return {
    header: CONN_HEADER,
    row: (j, c) => connRow(j, c, stack.digest, stack.nets),
    json: (j, c) => connJson(j, c, stack.digest, stack.nets),
  };
}

/** Items held to come out sorted by stream: the first of a run (small captures print in order). */
const HOLD = 10000;

/**
 * A report whose connections are written as they finish (replay, live, fuse), so that memory holds
 * what is in flight, not every connection seen: rows of the table, or with `json` the elements of
 * `"connections"`, written byte by byte into buffers (JsonBuf) and sent at each flush. end() adds
 * what follows them: the rest of the JSON object, or the text summary.
 *
 * Each item is written when it is added (a connection is gone after its onRetire call). The first
 * 10,000 are written aside, as bytes, and come out sorted by stream index with the rest of the
 * first 10,000 or at the end; past that they are passed on in the order they finish. (Holding the
 * items themselves made copies of summaries, structuredClone: had the summaries lived on, V8 would
 * have seen their object literals survive and allocated every later one in the old generation.)
 */
export class ConnReport<T extends { readonly stream: number }> {
  private readonly jb = new JsonBuf();
  private first = true;
  /** The stream index of each item held (null once they are released), its text in `store` up to `ends`. */
  private held: number[] | null = [];
  private ends: number[] = [];
  /** The held items' text, one after another (grown by doubling): one buffer, not one per item. */
  private store = Buffer.allocUnsafe(1 << 16);
  private used = 0;
  private readonly aside = new JsonBuf();

  constructor(
    private readonly json: boolean,
    private readonly out: NodeJS.WritableStream,
    /** Called before bytes are written (live: its table on the terminal steps aside). */
    private readonly beforeWrite: (() => void) | null,
    private readonly fmt: ItemFormat<T>,
    private readonly hold = HOLD,
  ) {}

  add(c: T): void {
    if (!this.held) {
      this.begin();
      return this.write(c, this.jb);
    }
    this.write(c, this.aside);
    for (const b of this.aside.take()) this.keep(b);
    this.aside.written();
    this.held.push(c.stream);
    this.ends.push(this.used);
    if (this.held.length > this.hold) this.release();
  }

  /** One item into `j`: its row of the table, or its element of "connections". */
  private write(c: T, j: JsonBuf): void {
    if (this.json) this.fmt.json(j, c);
    else this.fmt.row(j, c);
  }

  /** What comes before an item: the table's header or the array's opening before the first, a comma between elements. */
  private begin(): void {
    if (this.json) this.jb.raw(this.first ? '{\n  "connections": [\n    ' : ',\n    ');
    else if (this.first) this.jb.raw(`${this.fmt.header}\n`);
    this.first = false;
  }

  private keep(b: Buffer): void {
    if (this.used + b.length > this.store.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * this.store.length, this.used + b.length));
      this.store.copy(grown, 0, 0, this.used);
      this.store = grown;
    }
    b.copy(this.store, this.used);
    this.used += b.length;
  }

  private release(): void {
    const streams = this.held!;
    const ends = this.ends;
    const order = streams.map((_, i) => i).sort((a, b) => streams[a]! - streams[b]!);
    for (const i of order) {
      this.begin();
      this.jb.bytes(this.store.subarray(i ? ends[i - 1]! : 0, ends[i]!));
    }
    this.held = null;
    this.ends = [];
    this.store = Buffer.alloc(0);
  }

  /** Send what is written so far (once per batch), waiting while the stream is full. */
  async flush(): Promise<void> {
    const bufs = this.jb.take();
    const take = this.jb.takes;
    if (bufs.length && this.beforeWrite) this.beforeWrite();
    // the last write's callback says when a pipe has taken all of them (writes end in order):
    // their buffers are filled again then, not left to the collector as external memory (which
    // V8 lets grow by ~64 MiB before it looks: 20 MiB more at the peak of a run on 200,000
    // connections through a pipe)
    const done = () => this.jb.written(take);
    for (let i = 0; i < bufs.length; i++) if (!this.out.write(bufs[i]!, i === bufs.length - 1 ? done : undefined)) await once(this.out, 'drain');
    // nothing left queued (a file, or a pipe that took it all): the bytes are out now. (A
    // synchronous stream defers the callback to a tick, and ticks wait for the read loop's chain
    // of promises, here the whole run.)
    if ((this.out as NodeJS.WriteStream).writableLength === 0) done();
  }

  /**
   * No more connections: the ones held, then `summary` (JSON: the object's other members, after
   * "connections"), or the `text` blocks (each after a blank line), and everything sent.
   */
  async end(summary: object, text: string[]): Promise<void> {
    if (this.held) this.release();
    if (this.json) {
      const rest = JSON.stringify(summary, null, 2);
      this.jb.text(this.first ? `{\n  "connections": [],\n  ${rest.slice(4)}\n` : `\n  ],\n  ${rest.slice(4)}\n`);
    } else {
      this.jb.text(`${this.first ? '' : '\n'}${text[0] ?? ''}\n`);
      for (const t of text.slice(1)) this.jb.text(`\n${t}\n`);
    }
    await this.flush();
  }
}
