import type { Hash } from 'node:crypto';
import { sha256 } from '../sha256.js';
import type { Connection, Dir } from '../net/in-pcb.js';
import { type Socket, soreceive_stream } from './socket.js';
import { sbdrop } from './sockbuf.js';
import type { Mbuf } from '../mbuf/mbuf.js';

/**
 * The application on top of the sockets: what reads so.rcv when sorwakeup fires. Each connection
 * gets `attach` when created and `detach` when it leaves the table.
 */
export interface SocketApp {
  attach(conn: Connection): void;
  detach(conn: Connection): void;
  /** SHA-256 (hex) of what the reader read in one direction, if it hashes. */
  digest?(conn: Connection, dir: Dir): string | null;
  /** The end of each input batch, with its bytes of frames (a clock for readers that wait). */
  batch?(bytes: number): void;
  /**
   * True when the app keeps no reference to a Connection, its Tcpcbs or Sockets after `detach`
   * (and its callbacks keep none either): the stack may then recycle them for new connections.
   */
  readonly recycles?: boolean;
  /**
   * The stack's spare payload Mbufs (given only when it recycles): an app that drops what it reads
   * unread may give the dropped ones back there, for tcp_input to make new ones of.
   */
  spareMbufs?(spare: Mbuf[]): void;
}

/**
 * With `hash`, each socket's upcall argument: its connection and a SHA-256 per direction (one
 * object for both sockets). Without, the argument is the connection itself: nothing is made per
 * connection (two reader objects of 56 bytes each had been, ~11 MB at 100,000 open connections).
 */
interface Hashed {
  readonly conn: Connection;
  /**
   * Made when the direction's first bytes are read: a hash costs ~640 bytes (node:crypto's native
   * state), and many directions never carry any (a SYN flood's, the other side of one-way flows).
   */
  c2s: Hash | null;
  s2c: Hash | null;
}

/** SHA-256 of nothing: the digest of a direction that carried no bytes. */
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** The other socket of a socket's connection. */
function peerOf(conn: Connection, so: Socket): Socket {
  return so === conn.server.so ? conn.client.so : conn.server.so;
}

/** The direction a socket receives: c2s bytes arrive at the server. */
function dirOf(conn: Connection, so: Socket): Dir {
  return so === conn.server.so ? 'c2s' : 's2c';
}

/**
 * Readers asleep below their low-water mark, in the order they fell asleep: the socket, its
 * connection's stream (a recycled connection is another stream), the capture clock then, and
 * the stream offset of the first byte it left unread. An entry is current while the socket still
 * waits (SB_WAIT), on the same stream, on the same first byte: a read clears SB_WAIT and moves
 * the first unread byte, so an entry left from an earlier sleep is skipped. Numbers in
 * Float64Arrays (a capture's byte count passes 2^31, and a JavaScript array would box it).
 */
class Sleepers {
  private so: Array<Socket | null> = [];
  private stream: number[] = [];
  private at = new Float64Array(1024);
  private unread = new Float64Array(1024);
  private head = 0;

  push(so: Socket, stream: number, at: number, unread: number): void {
    const i = this.so.length;
    if (i === this.at.length) {
      this.at = grow(this.at);
      this.unread = grow(this.unread);
    }
    this.so.push(so);
    this.stream.push(stream);
    this.at[i] = at;
    this.unread[i] = unread;
  }

  /** The oldest entry's socket if it fell asleep at or before `limit` (taken off), else null. */
  takeUntil(limit: number, out: { stream: number; unread: number; at: number }): Socket | null {
    const i = this.head;
    if (i === this.so.length || this.at[i]! > limit) return null;
    const so = this.so[i]!;
    this.so[i] = null;
    out.stream = this.stream[i]!;
    out.unread = this.unread[i]!;
    out.at = this.at[i]!;
    this.head++;
    if (this.head === this.so.length) this.clear();
    else if (this.head > 4096 && this.head * 2 > this.so.length) this.compact();
    return so;
  }

  private clear(): void {
    this.so.length = 0;
    this.stream.length = 0;
    this.head = 0;
  }

  private compact(): void {
    const h = this.head;
    const n = this.so.length - h;
    this.so.splice(0, h);
    this.stream.splice(0, h);
    this.at.copyWithin(0, h, h + n);
    this.unread.copyWithin(0, h, h + n);
    this.head = 0;
  }
}

function grow(a: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> {
  const b = new Float64Array(a.length * 2);
  b.set(a);
  return b;
}

/**
 * How much capture (bytes of frames input) a reader with SO_RCVLOWAT sleeps through on bytes below
 * the mark before it reads them anyway, like a read with SO_RCVTIMEO whose clock is the capture's
 * bytes: what it has buffered points into the read chunks of that stretch and pins them, so this
 * bounds the capture memory sleeping readers hold.
 */
export const LOWAT_WAIT_BYTES = 32 << 20;

/**
 * A reader still below LOWAT_SLOW_BYTES after this much capture reads then, unless the other
 * direction of its connection has that much buffered. Such a flow brings so little per stretch
 * of capture (under 1/2048 of it: as when more than ~2,000 flows share the link) that it will not
 * reach the mark soon, and its few bytes pin a 4 MiB read chunk for each 4 MiB of capture it sleeps
 * through. A busy connection's quiet direction sleeps on: its bytes are in the chunks its other
 * direction pins anyway, and reading it early would only make more, smaller writes. The rest sleep
 * to LOWAT_WAIT_BYTES. Measured: extract on 100,000 short flows (1.5 KB a direction spread over ~60
 * MB of capture), peak RSS 267 -> 240 MiB at 8 MiB, 240 -> 229 at 4 MiB, with 400,000 writes for
 * the 300,000 files at each; on 2,000 bulk flows (~1.5 KiB each per 3 MiB round, a tenth of that
 * back) 92,900 writes at 4 MiB against 92,200 at 8 and 90,000 with no early reads, the same time.
 * At 2 MiB the bulk flows' directions are still below the mark when it runs out: 160,000 writes,
 * four times the opens, ~10% slower, for 6 MiB less on the short flows.
 */
export const LOWAT_SLOW_WAIT_BYTES = 4 << 20;
export const LOWAT_SLOW_BYTES = 2 << 10;

/**
 * The default reader: like a process that reads every socket into /dev/null, it drains each
 * so.rcv with soreceive_stream as data arrives, so memory stays bounded by what is in flight;
 * with `hash` it feeds what it reads (views, no copies) to a SHA-256 per direction.
 *
 * With `lowat` above 1 the reader sets SO_RCVLOWAT on every socket: a blocking reader then sleeps
 * until that many bytes are buffered, the peer closes, or an error is pending (BSD soreceive), and
 * reads them in one call (extract: on the 1 GiB benchmark capture, 90,000 reads instead of 694,000
 * of a segment each; with 2,000 flows interleaved, most are receive timeouts of 8-32 KiB).
 * Bytes that stay below the mark are read after LOWAT_WAIT_BYTES of capture (a receive timeout) and
 * when the connection leaves the table.
 */
export class DrainApp implements SocketApp {
  /**
   * Nothing here outlives detach: the upcalls are cleared, a sleeper left on the list is marked
   * awake by the last read, and `sink` and `closed` (follow, extract) drop the connection when told
   * it closed (FlowFiles.closed, the follow writers).
   */
  readonly recycles = true;
  /** The stack's spare payload Mbufs, when it keeps them: the drained ones go there. */
  private spare: Mbuf[] | null = null;
  /**
   * soreceive_stream into nothing: the bytes are consumed without being looked at, and the Mbufs
   * they were in go back to the stack when it keeps spares (one function for every socket).
   */
  private readonly drain = (so: Socket) => {
    if (so.rcv.cc > 0) sbdrop(so.rcv, so.rcv.cc, this.spare);
  };

  /** Readers asleep below the low-water mark, in the order they fell asleep (stale entries skipped). */
  private readonly sleepers = new Sleepers();
  /** Those still asleep after LOWAT_SLOW_WAIT_BYTES with at least LOWAT_SLOW_BYTES: in the same order. */
  private readonly patient = new Sleepers();
  /** What takeUntil hands back besides the socket. */
  private readonly taken = { stream: 0, unread: 0, at: 0 };
  /** Capture bytes input so far: the clock sleepers time out by. */
  private clock = 0;

  constructor(
    private readonly hash: boolean,
    /** Read size per soreceive_stream call (a userland buffer). */
    private readonly readSize = 1 << 20,
    /**
     * Called for every chunk read (follow, extract). The views reference capture memory and stay
     * valid as long as they are held (nothing reuses that memory). DrainApp keeps what it needs on
     * the sockets (upcallArg, SB_WAIT), so `conn.app` is the sink's, for its own state of the
     * connection.
     */
    private readonly sink?: (conn: Connection, dir: Dir, chunk: Uint8Array[]) => void,
    /** Called when a connection leaves the table: both directions have been read to their end. */
    private readonly closed?: (conn: Connection) => void,
    /** SO_RCVLOWAT of every socket (BSD default 1: read whatever arrives). */
    private readonly lowat = 1,
  ) {}

  spareMbufs(spare: Mbuf[]): void {
    this.spare = spare;
  }

  attach(conn: Connection): void {
    if (!this.hash && !this.sink) {
      // nothing per connection: one function reads every socket into nothing
      conn.server.so.upcall = this.drain;
      conn.client.so.upcall = this.drain;
      return;
    }
    // c2s bytes arrive in the server's receive buffer, s2c in the client's; both sockets' upcall
    // argument is the connection, or with `hash` its hashes (digest finds them there too)
    const arg: Connection | Hashed = this.hash ? { conn, c2s: null, s2c: null } : conn;
    this.reader(conn.server.so, arg);
    this.reader(conn.client.so, arg);
  }

  private reader(so: Socket, arg: Connection | Hashed): void {
    so.rcv.lowat = this.lowat;
    so.upcall = this.onWakeup;
    so.upcallArg = arg;
  }

  /** The connection of a socket's upcall argument: which one it is follows from `hash`. */
  private connOf(arg: Connection | Hashed): Connection {
    return this.hash ? (arg as Hashed).conn : (arg as Connection);
  }

  /** Every reading socket's upcall (its connection, or the connection's hashes, is the argument). */
  private readonly onWakeup = (so: Socket, arg: Connection | Hashed): void => this.wakeup(so, arg);

  detach(conn: Connection): void {
    const server = conn.server.so;
    const client = conn.client.so;
    const arg = server.upcallArg as Connection | Hashed | null;
    server.upcall = null;
    client.upcall = null;
    if (arg) {
      // what slept below the mark is read now: the connection is done
      this.read(server, arg);
      this.read(client, arg);
    }
    this.closed?.(conn);
  }

  /** sorwakeup: read, unless a blocking read with SO_RCVLOWAT would sleep on (BSD soreceive). */
  private wakeup(so: Socket, arg: Connection | Hashed): void {
    const sb = so.rcv;
    if (sb.cc < sb.lowat && !so.cantRcvMore && !so.error) {
      if (!so.rcvWaiting && sb.cc > 0) {
        so.rcvWaiting = true;
        this.sleepers.push(so, this.connOf(arg).stream, this.clock, sb.total - sb.cc);
      }
      return;
    }
    this.read(so, arg);
  }

  private read(so: Socket, arg: Connection | Hashed): void {
    so.rcvWaiting = false;
    if (so.rcv.cc === 0) return;
    const conn = this.connOf(arg);
    const dir = dirOf(conn, so);
    const hash = this.hash ? ((arg as Hashed)[dir] ??= sha256()) : null;
    while (so.rcv.cc > 0) {
      const r = soreceive_stream(so, this.readSize);
      if (r.len === 0) return;
      if (hash) for (const v of r.chunk) hash.update(v);
      this.sink?.(conn, dir, r.chunk);
    }
  }

  /**
   * End of a batch of `bytes` of frames: readers asleep through LOWAT_SLOW_WAIT_BYTES read what
   * they have, unless it is LOWAT_SLOW_BYTES or more; those read after LOWAT_WAIT_BYTES.
   */
  batch(bytes: number): void {
    const now = (this.clock += bytes);
    const t = this.taken;
    const q = this.sleepers;
    for (let so = q.takeUntil(now - LOWAT_SLOW_WAIT_BYTES, t); so; so = q.takeUntil(now - LOWAT_SLOW_WAIT_BYTES, t)) {
      const arg = this.waiting(so, t);
      if (!arg) continue;
      // moved in the order they fell asleep, so that queue stays in that order too
      if (so.rcv.cc >= LOWAT_SLOW_BYTES || peerOf(this.connOf(arg), so).rcv.cc >= LOWAT_SLOW_BYTES) this.patient.push(so, t.stream, t.at, t.unread);
      else this.read(so, arg);
    }
    const p = this.patient;
    for (let so = p.takeUntil(now - LOWAT_WAIT_BYTES, t); so; so = p.takeUntil(now - LOWAT_WAIT_BYTES, t)) {
      const arg = this.waiting(so, t);
      if (arg) this.read(so, arg);
    }
  }

  /** The upcall argument of a sleeper's socket if the entry `t` is current and the reader is still ours, else null. */
  private waiting(so: Socket, t: { stream: number; unread: number }): Connection | Hashed | null {
    // a stale entry: the reader woke since, or its connection is another stream now
    const arg = so.upcallArg as Connection | Hashed | null;
    if (!so.rcvWaiting || !arg || this.connOf(arg).stream !== t.stream || so.rcv.total - so.rcv.cc !== t.unread) return null;
    // no reader any more (detached, or a splice took the socket over): it no longer waits
    if (so.upcall !== this.onWakeup) {
      so.rcvWaiting = false;
      return null;
    }
    return arg;
  }

  /** SHA-256 hex of what was read in one direction (null without `hash`). */
  digest(conn: Connection, dir: Dir): string | null {
    // the argument stays on the sockets after detach, for this, until they are reset
    const arg = conn.server.so.upcallArg as Connection | Hashed | null;
    return arg && this.hash ? ((arg as Hashed)[dir]?.digest('hex') ?? EMPTY_SHA256) : null;
  }
}
