import { createHash, type Hash } from 'node:crypto';
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
}

/** soreceive_stream into nothing: the bytes are consumed without being looked at. */
function drainAll(so: Socket): void {
  if (so.rcv.cc > 0) sbdrop(so.rcv, so.rcv.cc);
}

/**
 * The default reader: like a process that reads every socket into /dev/null, it drains each
 * so.rcv with soreceive_stream as data arrives, so memory stays bounded by what is in flight;
 * with `hash` it feeds what it reads (views, no copies) to a SHA-256 per direction.
 */
export class DrainApp implements SocketApp {
  constructor(
    private readonly hash: boolean,
    /** Read size per soreceive_stream call (a userland buffer). */
    private readonly readSize = 1 << 20,
    /**
     * Called for every chunk read (follow, extract). The views reference capture memory and stay
     * valid as long as they are held (nothing reuses that memory).
     */
    private readonly sink?: (conn: Connection, dir: Dir, chunk: Uint8Array[]) => void,
    /** Called when a connection leaves the table: both directions have been read to their end. */
    private readonly closed?: (conn: Connection) => void,
  ) {}

  attach(conn: Connection): void {
    if (!this.hash && !this.sink) {
      // nothing per connection: one function reads every socket into nothing
      conn.server.so.upcall = drainAll;
      conn.client.so.upcall = drainAll;
      return;
    }
    const st: Record<Dir, Hash | null> = { c2s: this.newHash(), s2c: this.newHash() };
    conn.app = st;
    // c2s bytes arrive in the server's receive buffer, s2c in the client's
    conn.server.so.upcall = (so) => this.read(conn, 'c2s', st.c2s, so);
    conn.client.so.upcall = (so) => this.read(conn, 's2c', st.s2c, so);
  }

  detach(conn: Connection): void {
    conn.server.so.upcall = null;
    conn.client.so.upcall = null;
    this.closed?.(conn);
  }

  private newHash(): Hash | null {
    return this.hash ? createHash('sha256') : null;
  }

  private read(conn: Connection, dir: Dir, hash: Hash | null, so: Socket): void {
    while (so.rcv.cc > 0) {
      const r = soreceive_stream(so, this.readSize);
      if (r.len === 0) return;
      if (hash) for (const v of r.chunk) hash.update(v);
      this.sink?.(conn, dir, r.chunk);
    }
  }

  /** SHA-256 hex of what was read in one direction (null without `hash`). */
  digest(conn: Connection, dir: Dir): string | null {
    const hash = (conn.app as Record<Dir, Hash | null> | null)?.[dir];
    return hash ? hash.digest('hex') : null;
  }
}
