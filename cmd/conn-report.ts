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

/** Items that may wait for a connection opened before them (past it they are written as they finish). */
const HOLD = 10000;

/**
 * A report whose connections are written as they finish (replay, live, fuse), so that memory holds
 * what is in flight, not every connection seen: rows of the table, or with `json` the elements of
 * `"connections"`, written byte by byte into buffers (JsonBuf) and sent at each flush. end() adds
 * what follows them: the rest of the JSON object, or the text summary.
 *
 * Items come out in stream order: one that finishes before a connection opened earlier is written
 * aside, as bytes (a connection is gone after its onRetire call), and waits for it. Most finish
 * in the order they began (a run's last connections always do: Stack.finish takes the oldest
 * first), so most go straight out. Once more than 10,000 wait, the waiting ones come out sorted
 * and every later one as it finishes. (Holding every one of the first 10,000 cost bulk replay
 * 22 ms of page faults on the fresh memory it took, and before that copies of summaries,
 * structuredClone.)
 */
export class ConnReport<T extends { readonly stream: number }> {
  private readonly jb = new JsonBuf();
  private first = true;
  /** The stream the report waits for: every item below it is out. */
  private next = 0;
  /** Items written aside, by stream, waiting for `next`; null once too many waited. */
  private waiting: Map<number, Buffer> | null = new Map();
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
    const w = this.waiting;
    if (w === null || c.stream === this.next) {
      this.begin();
      this.write(c, this.jb);
      if (w === null) return;
      for (this.next++; w.size > 0; this.next++) {
        const t = w.get(this.next);
        if (t === undefined) break;
        w.delete(this.next);
        this.begin();
        this.jb.bytes(t);
      }
      return;
    }
    this.write(c, this.aside);
    w.set(c.stream, Buffer.concat(this.aside.take()));
    this.aside.written();
    if (w.size > this.hold) this.release();
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

  /** The items waiting come out, sorted; from now on items are written as they come. */
  private release(): void {
    const w = this.waiting!;
    this.waiting = null;
    for (const k of [...w.keys()].sort((x, y) => x - y)) {
      this.begin();
      this.jb.bytes(w.get(k)!);
    }
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
   * No more connections: the ones still waiting, then `summary` (JSON: the object's other members, after
   * "connections"), or the `text` blocks (each after a blank line), and everything sent.
   */
  async end(summary: object, text: string[]): Promise<void> {
    if (this.waiting) this.release();
    if (this.json) {
      // the summary's members follow "connections", in JSON.stringify's layout
      const rest = JSON.stringify(summary, null, 2);
      const after = rest === '{}' ? '\n}' : `,\n  ${rest.slice(4)}`;
      this.jb.text(this.first ? `{\n  "connections": []${after}\n` : `\n  ]${after}\n`);
    } else {
      this.jb.text(`${this.first ? '' : '\n'}${text[0] ?? ''}\n`);
      for (const t of text.slice(1)) this.jb.text(`\n${t}\n`);
    }
    await this.flush();
  }
}
