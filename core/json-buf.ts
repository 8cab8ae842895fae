import type { FlowIndexEntry } from './capture/flow-files.js';
import type { GapEntry } from './tcp/summary.js';
import type { Gap } from './tcp/tcpcb.js';
import { IP4_ENDPOINT_MAX, putIp4Endpoint } from './net/in-pcb.js';

/** Size of each output buffer (allocated when first written, then filled across take() calls). */
const SIZE = 1 << 20;
/** Released buffers kept to fill again: a flush of replay's last connections is ~6 MiB of text. */
const KEEP = 8;
/** Buffers handed out and not yet said written that are remembered (past it, left to the collector). */
const TAKEN_MAX = 32;
const EMPTY = Buffer.alloc(0);

/**
 * Text written straight into Buffers, byte by byte: the connection list of `replay --json`,
 * hundreds of thousands of objects, and the connection table (conn-text.ts), extract's index.
 * JSON.stringify cost 3.3 µs per connection summary (a profile of 100,000), and building the text
 * from string pieces made rope garbage that cost more than it saved (session 3); this writes the
 * bytes where they will be sent. Its strings and numbers are JSON.stringify's, byte for byte (a
 * property test checks them), and so are the records written with it (tests over real connections).
 */
export class JsonBuf {
  /** The buffer being written: bytes before `start` were handed out by take(), [start, pos) not yet. */
  private buf: Buffer = EMPTY;
  /** `buf` as a DataView, for lit()'s four-byte stores. */
  private dv: DataView = new DataView(EMPTY.buffer, EMPTY.byteOffset, 0);
  private start = 0;
  private pos = 0;
  private full: Buffer[] = [];
  /**
   * Buffers left behind whose text is all in `full`; once take() hands it out they wait in
   * `taken` for written(), then in `free` to be filled again. Without them every MiB of text was
   * a fresh ArrayBuffer, freed only when a collection found its Buffer dead: V8 lets external
   * memory grow by ~64 MiB before it looks, and `replay --json` on 100,000 connections (114 MB
   * of text) held that much garbage at its peak.
   */
  private left: Buffer[] = [];
  /** Buffers handed out, with the take() that handed them out (its number in `takes`). */
  private taken: Array<[Buffer, number]> = [];
  private readonly free: Buffer[] = [];
  private nTakes = 0;

  /** take() calls so far: written(n) says the text of the first n is out. */
  get takes(): number {
    return this.nTakes;
  }

  /** Make room for `n` more bytes (what the full buffer holds is kept for take()). */
  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    if (this.pos > this.start) this.full.push(this.buf.subarray(this.start, this.pos));
    if (this.buf.length === SIZE) this.left.push(this.buf);
    this.buf = (n <= SIZE ? this.free.pop() : undefined) ?? Buffer.allocUnsafe(Math.max(SIZE, n));
    this.dv = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
    this.start = this.pos = 0;
  }

  /**
   * What the first `upTo` take() calls handed out (by default all of them) has been written and
   * will not be read again: the buffers it came from (but the one being filled) may be filled
   * again. A stream that writes later (a pipe) says so from the write's callback, for the take()
   * that was `takes` then. Optional: without it they are left to the garbage collector.
   */
  written(upTo = this.takes): void {
    let k = 0;
    for (const e of this.taken) {
      if (e[1] > upTo) this.taken[k++] = e;
      else if (this.free.length < KEEP) this.free.push(e[0]);
    }
    this.taken.length = k;
  }

  /**
   * Bytes made once (lit()): the keys and punctuation of the records written. Copied from bytes,
   * not taken from a string's characters (charCodeAt on strings of several shapes: replay --json
   * on 100,000 flows spent 9% of its time there), and four bytes a store, the rest one by one
   * (1.6-2x faster than byte by byte in a microbenchmark).
   */
  lit(l: Lit): void {
    const n = l.b.length;
    this.room(n);
    const dv = this.dv;
    const w = l.w;
    let p = this.pos;
    for (let i = 0; i < w.length; i++, p += 4) dv.setInt32(p, w[i]!, true);
    const b = this.buf;
    const src = l.b;
    for (let i = w.length * 4; i < n; i++) b[p++] = src[i]!;
    this.pos = p;
  }

  /** Text known to be ASCII (keys, punctuation). */
  raw(s: string): void {
    this.pad(s, 0, false);
  }

  /** Bytes as they are (an item written aside, ConnReport), in one native copy. */
  bytes(l: Uint8Array): void {
    this.room(l.length);
    this.buf.set(l, this.pos);
    this.pos += l.length;
  }

  /** A JSON string: printable ASCII without quote or backslash as is, anything else as JSON.stringify spells it (UTF-8). */
  str(s: string): void {
    const n = s.length;
    this.room(n + 2);
    const b = this.buf;
    let p = this.pos;
    b[p++] = 0x22;
    for (let i = 0; i < n; i++) {
      const ch = s.charCodeAt(i);
      if (ch < 0x20 || ch > 0x7e || ch === 0x22 || ch === 0x5c) return this.text(JSON.stringify(s));
      b[p++] = ch;
    }
    b[p++] = 0x22;
    this.pos = p;
  }

  /** Any text, as UTF-8. */
  text(s: string): void {
    const n = Buffer.byteLength(s);
    this.room(n);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }

  /**
   * A number as JSON.stringify writes it: digits by hand for non-negative 31-bit integers and for
   * whole numbers of nanoseconds (nanos), JSON.stringify's own for the rest.
   */
  num(x: number): void {
    if (isUint31(x)) this.digits(x, 0, false);
    else if (!this.nanos(x)) this.raw(JSON.stringify(x));
  }

  /**
   * Write `x` and say true when it is n / 1e9 for a whole number n of nanoseconds, 1,000 <= |n| <
   * 10^15, as spanSeconds makes every duration; else write nothing and say false. Such an x is
   * the double nearest to the decimal n × 10^-9 (the division rounds once), and that decimal has at
   * most 15 significant digits: no other decimal of 15 digits or fewer is nearest to the same
   * double (DBL_DIG), so it is the shortest that reads back as x, which is what Number::toString
   * (and JSON.stringify) writes, without an exponent from 10^-6 up. In a profile of replay's
   * records of 100,000 connections, JSON.stringify took 72 ms for their start times and durations.
   */
  private nanos(x: number): boolean {
    const n = Math.round(x * 1e9);
    const a = n < 0 ? -n : n;
    if (!(a >= 1000 && a < 1e15) || n / 1e9 !== x) return false;
    const whole = Math.floor(a / 1e9);
    let frac = a - whole * 1e9;
    if (n < 0) {
      this.room(1);
      this.buf[this.pos++] = 0x2d;
    }
    this.digits(whole, 0, false);
    if (frac === 0) return true;
    let k = 9;
    while (frac % 10 === 0) {
      frac /= 10;
      k--;
    }
    // "." and the k digits after it, the leading zeros included
    this.room(k + 1);
    const b = this.buf;
    b[this.pos] = 0x2e;
    for (let p = this.pos + k; p > this.pos; p--, frac = (frac / 10) | 0) b[p] = 0x30 + (frac % 10);
    this.pos += k + 1;
    return true;
  }

  /** ASCII text padded with spaces to `w` characters, on the right (padEnd) or the left. */
  pad(s: string, w: number, left: boolean): void {
    const n = s.length;
    const fill = w > n ? w - n : 0;
    this.room(n + fill);
    const b = this.buf;
    let p = this.pos;
    if (left) for (let i = 0; i < fill; i++) b[p++] = 0x20;
    for (let i = 0; i < n; i++) b[p++] = s.charCodeAt(i);
    if (!left) for (let i = 0; i < fill; i++) b[p++] = 0x20;
    this.pos = p;
  }

  /** `a.b.c.d:port` of the IPv4 address word `w` (Connection.c4), its digits written where they go. */
  endpoint4(w: number, port: number): void {
    this.room(IP4_ENDPOINT_MAX);
    this.pos = putIp4Endpoint(this.buf, this.pos, w, port);
  }

  /**
   * Make room for the `n` bytes of a field padded on the right (padEnd), and say where it starts:
   * what is written next (at most `n` bytes in all) then lands in this buffer, for padEnd(at, w).
   */
  mark(n: number): number {
    this.room(n);
    return this.pos;
  }

  /** Spaces after what was written since mark() gave `at`, up to `w` characters (ASCII). */
  padEnd(at: number, w: number): void {
    const b = this.buf;
    let p = this.pos;
    while (p - at < w) b[p++] = 0x20;
    this.pos = p;
  }

  /** A number as String(x) writes it, padded on the left to `w` (padStart). */
  numPad(x: number, w: number): void {
    if (isUint31(x)) this.digits(x, w, false);
    else this.pad(String(x), w, true);
  }

  /** An integer with thousands separators (as toLocaleString('en-US')), padded on the left to `w`. */
  thousandsPad(x: number, w: number): void {
    if (isUint31(x)) this.digits(x, w, true);
    else this.pad(x.toLocaleString('en-US'), w, true);
  }

  /** The decimal digits of a non-negative 31-bit integer, right-aligned in `w`, with commas by three when `sep`. */
  private digits(x: number, w: number, sep: boolean): void {
    let n = 1;
    for (let t = x; t >= 10; t = (t / 10) | 0) n++;
    const len = sep ? n + Math.floor((n - 1) / 3) : n;
    const fill = w > len ? w - len : 0;
    this.room(len + fill);
    const b = this.buf;
    for (let i = 0; i < fill; i++) b[this.pos++] = 0x20;
    let p = (this.pos += len);
    let v = x;
    let k = 0;
    do {
      if (sep && k && k % 3 === 0) b[--p] = 0x2c;
      const q = (v / 10) | 0;
      b[--p] = 0x30 + v - q * 10;
      v = q;
      k++;
    } while (v > 0);
  }

  /** Everything written since the last take(), as Buffers to send in order (never written again). */
  take(): Buffer[] {
    if (this.pos > this.start) {
      this.full.push(this.buf.subarray(this.start, this.pos));
      this.start = this.pos;
    }
    // a caller that never says written() leaves the older ones to the collector
    this.nTakes++;
    for (const b of this.left) this.taken.push([b, this.nTakes]);
    if (this.taken.length > TAKEN_MAX) this.taken.splice(0, this.taken.length - TAKEN_MAX);
    this.left = [];
    const f = this.full;
    this.full = [];
    return f;
  }
}

const isUint31 = (x: number): boolean => x >= 0 && x <= 0x7fffffff && (x | 0) === x;

/** Literal bytes of the writers of records (JsonBuf.lit): the bytes, and their whole four-byte words (little-endian). */
export interface Lit {
  readonly b: Uint8Array;
  readonly w: Int32Array;
}

/** The literal bytes of `s` (ASCII), made once. */
export function lit(s: string): Lit {
  const b = Uint8Array.from(s, (ch) => ch.charCodeAt(0));
  const dv = new DataView(b.buffer);
  return { b, w: Int32Array.from({ length: b.length >> 2 }, (_, i) => dv.getInt32(4 * i, true)) };
}
const ARR_OPEN = lit('[');
const COMMA = lit(',');
const ARR_CLOSE = lit(']');
const COMMA_ARR_OPEN = lit(',[');
const SNAPLEN = lit(',"snaplen"');
// shared with conn-text.ts's connection records
export const OBJ_CLOSE = lit('}');
export const OBJ_STREAM = lit('{"stream":');
export const K_NET = lit(',"net":');
export const K_GAPS = lit(',"gaps":');
export const K_SHA256 = lit(',"sha256":');
const K_BYTES = lit(',"bytes":');
const K_DIR = lit(',"dir":');
const K_SRC = lit(',"src":');
const K_DST = lit(',"dst":');
const K_FILE = lit(',"file":');

/**
 * Holes as a report lists them, [[offset, length], [offset, length, "snaplen"], ...]: from a
 * report's GapEntry list, or straight from a Tcpcb's Gap list (its third element, 1, says the
 * snaplen cut the bytes), which gapEntry would have made the same entries of.
 */
export function gapsJson(j: JsonBuf, gaps: ReadonlyArray<GapEntry | Gap>): void {
  j.lit(ARR_OPEN);
  for (let i = 0; i < gaps.length; i++) {
    const g = gaps[i]!;
    j.lit(i ? COMMA_ARR_OPEN : ARR_OPEN);
    j.num(g[0]);
    j.lit(COMMA);
    j.num(g[1]);
    if (g[2]) j.lit(SNAPLEN);
    j.lit(ARR_CLOSE);
  }
  j.lit(ARR_CLOSE);
}

/** JSON.stringify(e) for an extract index entry (FlowFiles builds them in this key order), written into `j`. */
export function indexJson(j: JsonBuf, e: FlowIndexEntry): void {
  j.lit(OBJ_STREAM);
  j.num(e.stream);
  j.lit(K_DIR);
  j.str(e.dir);
  j.lit(K_SRC);
  j.str(e.src);
  j.lit(K_DST);
  j.str(e.dst);
  j.lit(K_FILE);
  j.str(e.file);
  j.lit(K_BYTES);
  j.num(e.bytes);
  if (e.net !== undefined) {
    j.lit(K_NET);
    j.str(e.net);
  }
  if (e.sha256 !== undefined) {
    j.lit(K_SHA256);
    j.str(e.sha256);
  }
  if (e.gaps !== undefined) {
    j.lit(K_GAPS);
    gapsJson(j, e.gaps);
  }
  j.lit(OBJ_CLOSE);
}
