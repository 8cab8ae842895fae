/**
 * Scripted TCP conversations for tests: two endpoints that keep their own sequence numbers, on a
 * shared timeline, written out as one capture. Each call is one segment, acknowledging all the
 * peer has sent so far (unless told otherwise), with the timeline's current time.
 */
import { TH_ACK, TH_FIN, TH_PUSH, TH_RST, TH_SYN, type TcpOptions } from '../../core/wire/tcp.js';
import { pcapFile, type RecSpec, tcpFrame } from './build.js';

export class Timeline {
  readonly recs: RecSpec[] = [];
  /** Current time in microseconds since 1700000000 s. */
  us = 0;

  /** Move the clock forward by `sec` seconds. */
  wait(sec: number): this {
    this.us += Math.round(sec * 1e6);
    return this;
  }

  push(data: Uint8Array): void {
    this.recs.push({ data, tsSec: 1700000000 + Math.floor(this.us / 1e6), tsFrac: this.us % 1e6 });
    this.us += 10; // frames never share a timestamp
  }

  pcap(): Buffer {
    return pcapFile(this.recs);
  }
}

export type Side = 'c' | 's';

export interface ConvSpec {
  client?: string;
  server?: string;
  cport?: number;
  sport?: number;
  ciss?: number;
  siss?: number;
  /** Options on both SYNs (default: MSS 1460). */
  synOptions?: TcpOptions;
}

export class Conv {
  readonly client: string;
  readonly server: string;
  readonly cport: number;
  readonly sport: number;
  /** Next sequence number each side sends. */
  readonly nxt: Record<Side, number>;
  readonly iss: Record<Side, number>;
  private readonly opts: TcpOptions;

  constructor(readonly tl: Timeline, s: ConvSpec = {}) {
    this.client = s.client ?? '10.0.0.1';
    this.server = s.server ?? '10.0.0.2';
    this.cport = s.cport ?? 40000;
    this.sport = s.sport ?? 80;
    this.iss = { c: (s.ciss ?? 1000) >>> 0, s: (s.siss ?? 5000) >>> 0 };
    this.nxt = { c: this.iss.c, s: this.iss.s };
    this.opts = s.synOptions ?? { mss: 1460 };
  }

  private seg(from: Side, flags: number, payload: Uint8Array | string = '', extra: { urp?: number; ack?: number; options?: TcpOptions } = {}): this {
    const c = from === 'c';
    const to: Side = c ? 's' : 'c';
    const len = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
    this.tl.push(tcpFrame({
      src: c ? this.client : this.server, dst: c ? this.server : this.client,
      sport: c ? this.cport : this.sport, dport: c ? this.sport : this.cport,
      seq: this.nxt[from], ack: flags & TH_ACK ? (extra.ack ?? this.nxt[to]) : 0, flags, payload,
      urp: extra.urp, options: extra.options,
    }));
    this.nxt[from] = (this.nxt[from] + len + (flags & TH_SYN ? 1 : 0) + (flags & TH_FIN ? 1 : 0)) >>> 0;
    return this;
  }

  /** SYN, SYN-ACK, ACK. */
  handshake(): this {
    return this.syn().synAck().ack('c');
  }

  syn(): this {
    return this.seg('c', TH_SYN, '', { options: this.opts });
  }

  synAck(): this {
    return this.seg('s', TH_SYN | TH_ACK, '', { options: this.opts });
  }

  /** Data from one side, in segments of at most `mss` bytes (PSH on the last). */
  send(from: Side, data: Uint8Array | string, mss = 1460): this {
    const b = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data);
    for (let o = 0; o < b.length; o += mss) {
      const end = Math.min(b.length, o + mss);
      this.seg(from, TH_ACK | (end === b.length ? TH_PUSH : 0), b.subarray(o, end));
    }
    return this;
  }

  /** One segment with these flags and payload (e.g. URG). */
  raw(from: Side, flags: number, payload: Uint8Array | string = '', urp?: number): this {
    return this.seg(from, flags, payload, { urp });
  }

  ack(from: Side): this {
    return this.seg(from, TH_ACK);
  }

  fin(from: Side): this {
    return this.seg(from, TH_FIN | TH_ACK);
  }

  rst(from: Side): this {
    return this.seg(from, TH_RST | TH_ACK);
  }

  /** FIN from `first`, its ACK, FIN from the other, its ACK. */
  close(first: Side = 'c'): this {
    const other: Side = first === 'c' ? 's' : 'c';
    return this.fin(first).ack(other).fin(other).ack(first);
  }
}

/**
 * OpenBSD regress write_stream (sys/kern/sosplice/funcs.pl): `0-9A-Za-z\n` repeating, the last
 * byte always `\n`.
 */
export function writeStream(n: number): Buffer {
  const out = Buffer.alloc(n);
  let c = 0x30;
  for (let i = 0; i < n - 1; i++) {
    out[i] = c;
    c = c === 0x39 ? 0x41 : c === 0x5a ? 0x61 : c === 0x7a ? 0x0a : c === 0x0a ? 0x30 : c + 1;
  }
  if (n > 0) out[n - 1] = 0x0a;
  return out;
}

/** A relay capture: client → relay (C, stream 0, IPv4) and relay → server (S, stream 1; IPv6 with `v6`), on one timeline. */
export function relayPair(tl = new Timeline(), o: { v6?: boolean; sisn?: number } = {}) {
  const C = new Conv(tl, { client: '10.0.0.1', server: '10.0.0.2', cport: 40000, sport: 8080, ciss: 100000, siss: 200000 });
  const S = new Conv(tl, { client: o.v6 ? '2001:db8::2' : '10.0.0.2', server: o.v6 ? '2001:db8::3' : '10.0.0.3', cport: 50000, sport: 80, ciss: 300000, siss: o.sisn ?? 400000 });
  return { tl, C, S };
}

/**
 * A userland copy relay at work: each client segment is acknowledged by the relay and written to
 * the server in the same sizes, which the server acknowledges.
 */
export function copyRelay(C: Conv, S: Conv, data: Uint8Array, seg = 1000): void {
  for (let o = 0; o < data.length; o += seg) {
    const part = data.subarray(o, Math.min(data.length, o + seg));
    C.send('c', part, seg).ack('s');
    S.send('c', part, seg).ack('s');
  }
}
