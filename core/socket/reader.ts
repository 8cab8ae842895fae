import type { Hash } from 'node:crypto';
import { sha256 } from '../sha256.js';
import type { Connection, Dir } from '../net/in-pcb.js';
import { type Socket, soreceive_stream } from './socket.js';
import { sbdrop } from './sockbuf.js';

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
}

/** soreceive_stream into nothing: the bytes are consumed without being looked at. */
function drainAll(so: Socket): void {
  if (so.rcv.cc > 0) sbdrop(so.rcv, so.rcv.cc);
}

/**
 * One direction's reader, and whether it sleeps below the low-water mark. It keeps neither its
 * socket (rdSocket finds it) nor an asleep flag (`since` says it): two fields cost 16 bytes a
 * reader, and a connection has two readers.
 */
interface Rd {
  readonly conn: Connection;
  readonly dir: Dir;
  readonly hash: Hash | null;
  /**
   * Asleep with bytes below the low-water mark since capture byte `since` (it is on the sleepers'
   * list); -1 while awake.
   */
  since: number;
}

/** The socket a reader reads: c2s bytes arrive at the server. */
function rdSocket(rd: Rd): Socket {
  return (rd.dir === 'c2s' ? rd.conn.server : rd.conn.client).so;
}

/**
 * How much capture (bytes of frames input) a reader with SO_RCVLOWAT sleeps through on bytes below
 * the mark before it reads them anyway, like a read with SO_RCVTIMEO whose clock is the capture's
 * bytes: what it has buffered points into the read chunks of that stretch and pins them, so this
 * bounds the capture memory sleeping readers hold.
 */
export const LOWAT_WAIT_BYTES = 32 << 20;

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

  /** Readers asleep below the low-water mark, in the order they fell asleep (stale entries skipped). */
  private sleepers: Rd[] = [];
  private sleepHead = 0;
  /** Capture bytes input so far: the clock sleepers time out by. */
  private clock = 0;

  constructor(
    private readonly hash: boolean,
    /** Read size per soreceive_stream call (a userland buffer). */
    private readonly readSize = 1 << 20,
    /**
     * Called for every chunk read (follow, extract). The views reference capture memory and stay
     * valid as long as they are held (nothing reuses that memory). DrainApp keeps its readers on
     * the sockets (upcallArg), so `conn.app` is the sink's, for its own state of the connection.
     */
    private readonly sink?: (conn: Connection, dir: Dir, chunk: Uint8Array[]) => void,
    /** Called when a connection leaves the table: both directions have been read to their end. */
    private readonly closed?: (conn: Connection) => void,
    /** SO_RCVLOWAT of every socket (BSD default 1: read whatever arrives). */
    private readonly lowat = 1,
  ) {}

  attach(conn: Connection): void {
    if (!this.hash && !this.sink) {
      // nothing per connection: one function reads every socket into nothing
      conn.server.so.upcall = drainAll;
      conn.client.so.upcall = drainAll;
      return;
    }
    // c2s bytes arrive in the server's receive buffer, s2c in the client's; each socket's reader
    // is its upcall argument (nothing else holds it: digest finds it there too)
    this.reader(conn, 'c2s', conn.server.so);
    this.reader(conn, 's2c', conn.client.so);
  }

  private reader(conn: Connection, dir: Dir, so: Socket): void {
    so.rcv.lowat = this.lowat;
    so.upcall = this.onWakeup;
    so.upcallArg = { conn, dir, hash: this.hash ? sha256() : null, since: -1 } satisfies Rd;
  }

  /** Every reading socket's upcall (its reader is the argument). */
  private readonly onWakeup = (so: Socket, rd: Rd): void => this.wakeup(so, rd);

  detach(conn: Connection): void {
    const c2s = rdOf(conn, 'c2s');
    const s2c = rdOf(conn, 's2c');
    conn.server.so.upcall = null;
    conn.client.so.upcall = null;
    if (c2s && s2c) {
      // what slept below the mark is read now: the connection is done
      this.read(c2s);
      this.read(s2c);
    }
    this.closed?.(conn);
  }

  /** sorwakeup: read, unless a blocking read with SO_RCVLOWAT would sleep on (BSD soreceive). */
  private wakeup(so: Socket, rd: Rd): void {
    if (so.rcv.cc < so.rcv.lowat && !so.cantRcvMore && !so.error) {
      if (rd.since < 0 && so.rcv.cc > 0) {
        rd.since = this.clock;
        this.sleepers.push(rd);
      }
      return;
    }
    this.read(rd, so);
  }

  private read(rd: Rd, so = rdSocket(rd)): void {
    rd.since = -1;
    while (so.rcv.cc > 0) {
      const r = soreceive_stream(so, this.readSize);
      if (r.len === 0) return;
      if (rd.hash) for (const v of r.chunk) rd.hash.update(v);
      this.sink?.(rd.conn, rd.dir, r.chunk);
    }
  }

  /** End of a batch of `bytes` of frames: readers asleep through LOWAT_WAIT_BYTES read what they have. */
  batch(bytes: number): void {
    const now = (this.clock += bytes);
    const q = this.sleepers;
    if (this.sleepHead === q.length) return;
    const limit = now - LOWAT_WAIT_BYTES;
    while (this.sleepHead < q.length && q[this.sleepHead]!.since <= limit) {
      const rd = q[this.sleepHead++]!;
      // a stale entry: the reader woke (-1), or fell asleep again later (a newer entry stands)
      if (rd.since >= 0 && rd.since <= limit) this.read(rd);
    }
    if (this.sleepHead === q.length) {
      q.length = 0;
      this.sleepHead = 0;
    } else if (this.sleepHead > 4096 && this.sleepHead * 2 > q.length) {
      q.splice(0, this.sleepHead);
      this.sleepHead = 0;
    }
  }

  /** SHA-256 hex of what was read in one direction (null without `hash`). */
  digest(conn: Connection, dir: Dir): string | null {
    const rd = rdOf(conn, dir);
    return rd?.hash ? rd.hash.digest('hex') : null;
  }
}

/**
 * The reader of a direction: the upcall argument of the socket that receives it (c2s bytes arrive
 * at the server). It stays there after detach, for digest, until the socket is reset.
 */
function rdOf(conn: Connection, dir: Dir): Rd | null {
  return ((dir === 'c2s' ? conn.server : conn.client).so.upcallArg as Rd | null) ?? null;
}
