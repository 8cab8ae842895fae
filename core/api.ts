import { Readable } from 'node:stream';
import { type CaptureInput, readCaptures } from './capture/reader.js';
import { CaptureFilter } from './capture/bpf.js';
import { CaptureSession } from './capture/session.js';
import type { Connection } from './net/in-pcb.js';
import { type Socket, soreceive_stream } from './socket/socket.js';
import type { SocketApp } from './socket/reader.js';
import { Stack, type StackOptions } from './stack.js';
import type { ConnSummary } from './tcp/summary.js';

/** A connection as the library hands it out: its two directions as Node streams. */
export interface CapturedConnection {
  readonly stream: number;
  /** `addr:port` (IPv6 as `[addr]:port`). */
  readonly client: string;
  readonly server: string;
  /** Bytes the client sent, as the server's socket read them. */
  readonly c2s: Readable;
  /** Bytes the server sent, as the client's socket read them. */
  readonly s2c: Readable;
  /** Resolves when the connection has left the stack (after both streams ended). */
  readonly summary: Promise<ConnSummary>;
}

export type OpenOptions = Omit<StackOptions, 'app' | 'onConnection'> & {
  /** Bytes a direction's Readable buffers before the capture waits for its reader. Default 1 MiB. */
  highWaterMark?: number;
  /**
   * A capture filter in tcpdump's language (`tcp port 80`): frames it rejects are not processed
   * (see CaptureFilter: compiled by tcpdump, which must be installed; a bad filter throws a
   * SockcapError with code ERR_USAGE).
   */
  filter?: string;
};

type Input = string | CaptureInput | AsyncIterable<Uint8Array>;

function toInput(i: Input): CaptureInput {
  if (typeof i === 'string') return { name: i };
  if ('name' in i && typeof (i as CaptureInput).name === 'string') return i as CaptureInput;
  return { name: '<stream>', stream: i as AsyncIterable<Uint8Array> };
}

/** The socket reader behind open(): soreceive_stream into Readables, with backpressure. */
class StreamApp implements SocketApp {
  readonly fresh: CapturedConnection[] = [];
  readonly blocked = new Set<Readable>();
  private wake: (() => void) | null = null;
  private readonly summaries = new Map<number, (s: ConnSummary) => void>();

  constructor(private readonly hwm: number) {}

  attach(c: Connection): void {
    const mk = (): Readable => {
      const r: Readable = new Readable({ highWaterMark: this.hwm, read: () => this.unblock(r) });
      return r;
    };
    const c2s = mk();
    const s2c = mk();
    c.app = { c2s, s2c };
    c.server.so.upcall = (so) => this.read(so, c2s);
    c.client.so.upcall = (so) => this.read(so, s2c);
    const summary = new Promise<ConnSummary>((res) => this.summaries.set(c.stream, res));
    this.fresh.push({ stream: c.stream, client: c.clientName, server: c.serverName, c2s, s2c, summary });
  }

  detach(c: Connection): void {
    const { c2s, s2c } = c.app as { c2s: Readable; s2c: Readable };
    c2s.push(null);
    s2c.push(null);
    this.blocked.delete(c2s);
    this.blocked.delete(s2c);
  }

  finished(s: ConnSummary): void {
    this.summaries.get(s.stream)?.(s);
    this.summaries.delete(s.stream);
  }

  private read(so: Socket, r: Readable): void {
    while (so.rcv.cc > 0) {
      const res = soreceive_stream(so, so.rcv.cc);
      let ok = true;
      // Buffers over the same memory: the bytes reach the consumer without a copy
      for (const v of res.chunk) ok = r.push(Buffer.from(v.buffer, v.byteOffset, v.byteLength)) && ok;
      if (!ok) this.blocked.add(r);
    }
  }

  private unblock(r: Readable): void {
    if (this.blocked.delete(r) && this.blocked.size === 0) this.wake?.();
  }

  /** Resolves once no Readable is over its high-water mark. */
  async drained(): Promise<void> {
    while (this.blocked.size > 0) await new Promise<void>((res) => (this.wake = res));
    this.wake = null;
  }
}

/**
 * Open captures (paths, inputs or byte streams, read in order as one run) and iterate over their
 * TCP connections as they appear. Each connection's directions are Node Readables with
 * backpressure: the capture is read no further while a consumer is behind, so read (or resume())
 * both directions of every connection you take. The bytes are views of capture memory.
 *
 * @example
 * for await (const conn of open('trace.pcap')) {
 *   conn.s2c.resume();
 *   pipeline(conn.c2s, parser).catch(console.error);
 * }
 */
export async function* open(inputs: Input | Input[], opts: OpenOptions = {}): AsyncGenerator<CapturedConnection> {
  const app = new StreamApp(opts.highWaterMark ?? 1 << 20);
  const session = new CaptureSession();
  if (opts.filter) session.filter = new CaptureFilter(opts.filter);
  const stack = new Stack(session, { ...opts, app, onConnection: (s) => app.finished(s) });
  const list = (Array.isArray(inputs) ? inputs : [inputs]).map(toInput);
  for await (const batch of readCaptures(list, stack.session)) {
    stack.input(batch);
    while (app.fresh.length) yield app.fresh.shift()!;
    await app.drained();
  }
  stack.finish();
  while (app.fresh.length) yield app.fresh.shift()!;
}
