import { be32, ip4ToString, ip6ToString } from '../wire/bytes.js';
import { Tcpcb } from '../tcp/tcpcb.js';
import { later, spanSeconds } from '../time.js';

/** Direction of a segment within its connection. */
export type Dir = 'c2s' | 's2c';

/** `addr:port`, IPv6 as `[addr]:port`. */
export function endpointString(addr: Uint8Array, port: number): string {
  return addr.length === 4 ? `${ip4ToString(addr, 0)}:${port}` : `[${ip6ToString(addr, 0)}]:${port}`;
}

type Writable<T> = { -readonly [K in keyof T]: T[K] };

/** The 32-bit big-endian word at `o`, signed (a small integer to V8, never a boxed number). */
const w32 = (b: Uint8Array, o: number): number => be32(b, o) | 0;

/**
 * What the table matches on (BSD inpcb's inp_inc: the addresses and ports), shared by connections
 * and tombstones. The addresses are held as signed 32-bit words in the object itself: an IPv4
 * address is one word (c0, s0); an IPv6 address's other three words are in `a6`, made only for
 * IPv6 (40 bytes an entry less for IPv4, where six fields sat at zero). No array per address (two
 * objects and ~110 bytes a connection), and a lookup compares small integers.
 */
export class PcbAddrs {
  /** The client's port in the high 16 bits, the server's in the low (as a signed 32-bit integer). */
  private ports = 0;
  /** The VLAN stack the connection lives on (0: untagged). */
  readonly vlan: number = 0;
  private c0 = 0;
  private s0 = 0;
  /** IPv6 only: words 1-3 of the client's address, then of the server's; null for IPv4. */
  private a6: number[] | null = null;

  get cPort(): number {
    return this.ports >>> 16;
  }

  get sPort(): number {
    return this.ports & 0xffff;
  }

  /** Address length: 4 (IPv4) or 16 (IPv6). */
  get alen(): number {
    return this.a6 === null ? 4 : 16;
  }

  /** Take the addresses from `b` (read once: no capture memory is kept) and the ports. */
  protected setAddrs(b: Uint8Array, cOff: number, cPort: number, sOff: number, sPort: number, alen: number, vlan: number): void {
    (this as Writable<PcbAddrs>).vlan = vlan;
    this.ports = (cPort << 16) | sPort;
    this.c0 = w32(b, cOff);
    this.s0 = w32(b, sOff);
    // a new array, never one filled again: a tombstone or a summary may share an earlier one
    this.a6 = alen === 16 ? [w32(b, cOff + 4), w32(b, cOff + 8), w32(b, cOff + 12), w32(b, sOff + 4), w32(b, sOff + 8), w32(b, sOff + 12)] : null;
  }

  /** The same endpoints as `o` (the IPv6 words shared: they are never changed in place). */
  protected copyAddrs(o: PcbAddrs): void {
    (this as Writable<PcbAddrs>).vlan = o.vlan;
    this.ports = o.ports;
    this.c0 = o.c0;
    this.s0 = o.s0;
    this.a6 = o.a6;
  }

  /**
   * The first 32-bit word of the client's address (all of an IPv4 address), as a signed integer:
   * no array made (cw), and no number boxed (values of 2^31 and up are doubles to V8).
   */
  get c4(): number {
    return this.c0;
  }

  /** The server's, likewise. */
  get s4(): number {
    return this.s0;
  }

  /** The client's address as unsigned 32-bit words (1 for IPv4, 4 for IPv6), a new array. */
  get cw(): number[] {
    const a = this.a6;
    return a === null ? [this.c0 >>> 0] : [this.c0 >>> 0, a[0]! >>> 0, a[1]! >>> 0, a[2]! >>> 0];
  }

  /** The server's, likewise. */
  get sw(): number[] {
    const a = this.a6;
    return a === null ? [this.s0 >>> 0] : [this.s0 >>> 0, a[3]! >>> 0, a[4]! >>> 0, a[5]! >>> 0];
  }

  /** "addr:port" of each end (every summary has them: for IPv4 written as bytes, one flat string each). */
  protected makeNames(): [string, string] {
    if (this.a6 === null) return [ip4Endpoint(this.c0, this.cPort), ip4Endpoint(this.s0, this.sPort)];
    return [endpointString(bytesOf(this.cw), this.cPort), endpointString(bytesOf(this.sw), this.sPort)];
  }

  /** The address at `o` of `b` is the client's. */
  private isClient(b: Uint8Array, o: number): boolean {
    const a = this.a6;
    return w32(b, o) === this.c0 && (a === null || (w32(b, o + 4) === a[0] && w32(b, o + 8) === a[1] && w32(b, o + 12) === a[2]));
  }

  /** The address at `o` of `b` is the server's. */
  private isServer(b: Uint8Array, o: number): boolean {
    const a = this.a6;
    return w32(b, o) === this.s0 && (a === null || (w32(b, o + 4) === a[3] && w32(b, o + 8) === a[4] && w32(b, o + 12) === a[5]));
  }

  /** 1 when (src, sport) is the client, 2 when it is the server, 0 when not this connection. */
  match(b: Uint8Array, src: number, dst: number, sport: number, dport: number): 0 | 1 | 2 {
    const p = this.ports;
    if (((sport << 16) | dport) === p && this.isClient(b, src) && this.isServer(b, dst)) return 1;
    if (((dport << 16) | sport) === p && this.isServer(b, src) && this.isClient(b, dst)) return 2;
    return 0;
  }

  /** Same address family and VLAN stack as a packet with addresses of `alen` bytes on `vlan`. */
  sameNet(alen: number, vlan: number): boolean {
    return (this.a6 === null) === (alen === 4) && this.vlan === vlan;
  }
}

/** Connection.bits. */
const GUESSED = 1;
const FUSED = 2;
const FIRST_FROM_SERVER = 4;

/**
 * A TCP connection seen in the capture: two endpoints, each with its own Tcpcb and Socket
 * (BSD inpcb + tcpcb, twice). `stream` numbers connections in order of their first packet, as
 * Wireshark's tcp.stream does.
 */
export class Connection extends PcbAddrs {
  readonly client = new Tcpcb();
  readonly server = new Tcpcb();
  /**
   * Capture time of its earliest and its latest frame as seconds and nanoseconds: small integers, where
   * a time as one number is a double, which V8 keeps boxed (16 bytes more each).
   */
  private t0s = 0;
  private t0n = 0;
  private t1s = 0;
  private t1n = 0;
  /** Application state attached by the reader (hashes, files, streams). */
  app: unknown = null;
  /** GUESSED, FUSED and FIRST_FROM_SERVER. */
  private bits = 0;
  /** Its key in the table, and its place in the table's creation order (-1 when not in the table). */
  key = 0;
  slot = -1;
  private names: [string, string] | null = null;

  constructor(
    readonly stream: number,
    /** Bytes holding the client's and the server's address (read once: no capture memory is kept). */
    b: Uint8Array,
    cOff: number,
    cPort: number,
    sOff: number,
    sPort: number,
    /** Address length: 4 (IPv4) or 16 (IPv6). */
    alen: number,
    /** The VLAN stack the connection lives on (0: untagged). */
    vlan = 0,
  ) {
    super();
    this.setAddrs(b, cOff, cPort, sOff, sPort, alen, vlan);
  }

  /**
   * Back to the zone (BSD in_pcbfree, uma_zfree): everything but who it was is as new, and it holds
   * nothing (names, app state, queues' arrays, counters): a free connection keeps no other object
   * alive. Only one that left the table with nothing queued or buffered comes here (Stack.retire),
   * and only when no one keeps a reference to it after detach.
   */
  free(): void {
    this.client.reset();
    this.server.reset();
    this.t0s = this.t0n = this.t1s = this.t1n = 0;
    this.app = null;
    this.bits = 0;
    this.key = 0;
    this.slot = -1;
    this.names = null;
  }

  /** A freed connection made a new one, as the constructor would make it (BSD uma_zalloc). */
  reuse(stream: number, b: Uint8Array, cOff: number, cPort: number, sOff: number, sPort: number, alen: number, vlan: number): this {
    (this as Writable<Connection>).stream = stream;
    this.setAddrs(b, cOff, cPort, sOff, sPort, alen, vlan);
    return this;
  }

  /**
   * Its frames: each one reached tcp_input at one end, which counted it (rcvTotal). Derived, not
   * kept: a field would be 8 bytes more a connection.
   */
  get frames(): number {
    return this.client.rcvTotal + this.server.rcvTotal;
  }

  /** True when the client was guessed (no SYN seen): the lower port is taken as the server. */
  get guessed(): boolean {
    return (this.bits & GUESSED) !== 0;
  }
  set guessed(v: boolean) {
    this.bits = v ? this.bits | GUESSED : this.bits & ~GUESSED;
  }

  /**
   * Its first frame came from the server (a capture that begins mid-connection, or with the
   * SYN-ACK): tshark's follow makes that end node 0.
   */
  get firstFromServer(): boolean {
    return (this.bits & FIRST_FROM_SERVER) !== 0;
  }
  set firstFromServer(v: boolean) {
    this.bits = v ? this.bits | FIRST_FROM_SERVER : this.bits & ~FIRST_FROM_SERVER;
  }

  /** Fused (loopback fusing): its segments are evidence of writes, not input to verify. */
  get fused(): boolean {
    return (this.bits & FUSED) !== 0;
  }
  set fused(v: boolean) {
    this.bits = v ? this.bits | FUSED : this.bits & ~FUSED;
  }

  /**
   * Capture time (seconds) of its earliest frame, and of its latest: where a capture's clock goes
   * back (files merged, interfaces with clocks apart, a timestamp out of range) the first frame
   * need not be the earliest, and tshark's conversations span the earliest to the latest as these
   * do (a duration is never negative).
   */
  get firstTs(): number {
    return this.t0s + this.t0n / 1e9;
  }

  get lastTs(): number {
    return this.t1s + this.t1n / 1e9;
  }

  /**
   * Whole seconds of its earliest frame's timestamp, as the header gave them (Math.floor(firstTs)
   * is the next second for the last ~120 ns of a second: the double rounds up).
   */
  get firstSec(): number {
    return this.t0s;
  }

  /** Seconds from its earliest frame to its latest, exactly (spanSeconds). */
  get duration(): number {
    return spanSeconds(this.t0s, this.t0n, this.t1s, this.t1n);
  }

  /** Its first frame was captured at this time (seconds, nanoseconds): the earliest and latest so far. */
  began(sec: number, nsec: number): void {
    this.t0s = this.t1s = sec;
    this.t0n = this.t1n = nsec;
  }

  /** A frame of it was captured at this time: the latest so far, or the earliest, or neither. */
  seen(sec: number, nsec: number): void {
    if (later(this.t1s, this.t1n, sec, nsec)) {
      this.t1s = sec;
      this.t1n = nsec;
    } else if (later(sec, nsec, this.t0s, this.t0n)) {
      this.t0s = sec;
      this.t0n = nsec;
    }
  }

  get clientName(): string {
    return (this.names ??= this.makeNames())[0];
  }

  get serverName(): string {
    return (this.names ??= this.makeNames())[1];
  }

  /** Either end accepted a RST. */
  get reset(): boolean {
    return this.client.resetRcvd || this.server.resetRcvd;
  }

  /**
   * Nothing more will happen here: each end has received its peer's FIN or an acceptable RST, and
   * both are in TIME_WAIT or CLOSED. The connection can leave the table; a tombstone absorbs the
   * stragglers. (One RST closes only the end that accepted it: a capture can show the other end
   * carrying on, when the RST was injected.)
   */
  get done(): boolean {
    return finished(this.client) && finished(this.server);
  }

  /** Both ends are done: reset, or both FINs exchanged. A new SYN then starts a new stream. */
  get closed(): boolean {
    return this.reset || (this.client.finRcvd && this.server.finRcvd) || (this.client.sentFin && this.server.sentFin);
  }
}

/** This end received its peer's FIN (or a RST) and has nothing left to do. */
function finished(tp: Tcpcb): boolean {
  return tp.finRcvd && (tp.state === 'TIME_WAIT' || tp.state === 'CLOSED');
}

/**
 * What stays in the table after a connection left it: enough to recognise its late packets (the
 * last ACK, retransmitted FINs) so they do not start a bogus stream; a new SYN replaces it.
 */
export class Tombstone extends PcbAddrs {
  constructor(
    c: Connection,
    readonly expires: number,
    /** Its key in the table. */
    readonly key: number,
  ) {
    super();
    this.copyAddrs(c);
  }

  /** An expired tombstone made the tombstone of `c`, as the constructor would make it. */
  reuse(c: Connection, expires: number, key: number): this {
    const w = this as Writable<Tombstone>;
    w.expires = expires;
    w.key = key;
    this.copyAddrs(c);
    return this;
  }
}

/** An entry of the table. */
export type Pcb = Connection | Tombstone;

/** The address as 32-bit words, in an array of exactly that size (push would reserve 17 slots). */
export function wordsAt(b: Uint8Array, o: number, len: number): number[] {
  return len === 4 ? [be32(b, o)] : [be32(b, o), be32(b, o + 4), be32(b, o + 8), be32(b, o + 12)];
}

/** Scratch for ip4Endpoint: "255.255.255.255:65535" at most. */
const EP4 = Buffer.alloc(21);

/** Bytes putIp4Endpoint writes at most: "255.255.255.255:65535". */
export const IP4_ENDPOINT_MAX = 21;

/**
 * Write `a.b.c.d:port` of the address word `w` at `at` of `b` (IP4_ENDPOINT_MAX bytes of room), as
 * endpointString spells it; returns where it ends. The reports write connections' endpoints with it
 * straight into their output (JsonBuf.endpoint4), with no string made.
 */
export function putIp4Endpoint(b: Uint8Array, at: number, w: number, port: number): number {
  for (let k = 24; k >= 0; k -= 8) {
    const o = (w >>> k) & 0xff;
    if (o >= 100) b[at++] = 0x30 + ((o / 100) | 0);
    if (o >= 10) b[at++] = 0x30 + (((o / 10) | 0) % 10);
    b[at++] = 0x30 + (o % 10);
    b[at++] = k ? 0x2e : 0x3a; // '.', then ':'
  }
  const n = port >= 10000 ? 5 : port >= 1000 ? 4 : port >= 100 ? 3 : port >= 10 ? 2 : 1;
  for (let i = n - 1, q = port; i >= 0; i--, q = (q / 10) | 0) b[at + i] = 0x30 + (q % 10);
  return at + n;
}

/**
 * `a.b.c.d:port` of the address word `w`, as endpointString writes it: the digits written into
 * scratch bytes and read back as one flat string. A template of the octets made ~1.2 KB of garbage
 * a connection (number strings, concatenations, their flattening, the address as bytes first):
 * the largest allocation of replay on 100,000 short flows, a quarter of all its bytes.
 */
export function ip4Endpoint(w: number, port: number): string {
  return EP4.toString('latin1', 0, putIp4Endpoint(EP4, 0, w, port));
}

function bytesOf(w: readonly number[]): Uint8Array {
  const out = new Uint8Array(w.length * 4);
  w.forEach((x, i) => {
    out[4 * i] = x >>> 24;
    out[4 * i + 1] = x >>> 16;
    out[4 * i + 2] = x >>> 8;
    out[4 * i + 3] = x;
  });
  return out;
}
