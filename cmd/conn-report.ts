import { once } from 'node:events';
import { CONN_HEADER, ConnOrder, connRow } from '../core/report.js';
import { connJson, JsonBuf } from '../core/json-buf.js';
import type { ConnSummary } from '../core/tcp/summary.js';

/** How a report writes its per-connection items: the table's header and rows, and JSON. */
export interface ItemFormat<T> {
  readonly header: string;
  row(jb: JsonBuf, item: T): void;
  json(jb: JsonBuf, item: T): void;
}

/** Connection summaries: replay's table (report.ts connRow) and connJson. */
const CONNECTIONS: ItemFormat<ConnSummary> = { header: CONN_HEADER, row: connRow, json: connJson };

/**
 * A report whose connections are written as they finish (replay, live, fuse), so that memory holds
 * what is in flight, not every connection seen: rows of the table, or with `json` the elements of
 * `"connections"`, written byte by byte into buffers (JsonBuf) and sent at each flush (ConnOrder
 * holds the first 10,000 to print them sorted). end() adds what follows them: the rest of the
 * JSON object, or the text summary.
 */
export class ConnReport<T extends { readonly stream: number } = ConnSummary> {
  private readonly jb = new JsonBuf();
  private first = true;
  private readonly order: ConnOrder<T>;

  constructor(
    private readonly json: boolean,
    private readonly out: NodeJS.WritableStream,
    /** Called before bytes are written (live: its table on the terminal steps aside). */
    private readonly beforeWrite: (() => void) | null = null,
    fmt: ItemFormat<T> = CONNECTIONS as unknown as ItemFormat<T>,
  ) {
    this.order = new ConnOrder<T>((c: T) => {
      if (json) {
        this.jb.raw(this.first ? '{\n  "connections": [\n    ' : ',\n    ');
        fmt.json(this.jb, c);
      } else {
        if (this.first) this.jb.raw(`${fmt.header}\n`);
        fmt.row(this.jb, c);
      }
      this.first = false;
    });
  }

  add(c: T): void {
    this.order.add(c);
  }

  /** Send what is written so far (once per batch), waiting while the stream is full. */
  async flush(): Promise<void> {
    const bufs = this.jb.take();
    if (bufs.length && this.beforeWrite) this.beforeWrite();
    for (const b of bufs) if (!this.out.write(b)) await once(this.out, 'drain');
    // nothing left queued (a file, or a pipe that took it all): the bytes are out, the buffers
    // may be filled again. Not in write's callback: a synchronous stream defers that to a tick,
    // and ticks wait for the read loop's chain of promises, here the whole run.
    if ((this.out as NodeJS.WriteStream).writableLength === 0) this.jb.written();
  }

  /**
   * No more connections: the ones held, then `summary` (JSON: the object's other members, after
   * "connections"), or the `text` blocks (each after a blank line), and everything sent.
   */
  async end(summary: object, text: string[]): Promise<void> {
    this.order.end();
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
