/**
 * Builders for test traffic, made with sockcap's own emitters (smoltcp's SEND_TEMPL idea): a frame
 * is described by the fields that matter to a test, everything else takes a sane default, and the
 * checksums come out right unless a test asks otherwise.
 */
import { put16 } from '../../core/wire/bytes.js';
import { transportChecksum } from '../../core/wire/checksum.js';
import { emitEthernet, ETHERTYPE_IPV4, ETHERTYPE_IPV6 } from '../../core/wire/ethernet.js';
import { emitIpv4, IPPROTO_TCP } from '../../core/wire/ipv4.js';
import { emitIpv6 } from '../../core/wire/ipv6.js';
import { emitTcp, TH_ACK, TH_FIN, TH_PUSH, TH_SYN, type TcpOptions, tcpHeaderLen } from '../../core/wire/tcp.js';
import { parseIp } from '../../core/wire/bytes.js';

export const MAC_A = new Uint8Array([0x02, 0, 0, 0, 0, 0x0a]);
export const MAC_B = new Uint8Array([0x02, 0, 0, 0, 0, 0x0b]);

export interface SegSpec {
  src?: string;
  dst?: string;
  sport?: number;
  dport?: number;
  seq?: number;
  ack?: number;
  flags?: number;
  win?: number;
  urp?: number;
  options?: TcpOptions;
  payload?: Uint8Array | string;
  /** IPv4 identification. */
  id?: number;
  /** Corrupt the TCP checksum. */
  badSum?: boolean;
  /** Link-layer padding after the datagram. */
  pad?: number;
}

const enc = (p: Uint8Array | string | undefined): Uint8Array =>
  p === undefined ? new Uint8Array(0) : typeof p === 'string' ? new TextEncoder().encode(p) : p;

/** An Ethernet + IPv4/IPv6 + TCP frame (the address family follows `src`). */
export function tcpFrame(s: SegSpec): Uint8Array {
  const src = parseIp(s.src ?? '10.0.0.1')!;
  const dst = parseIp(s.dst ?? '10.0.0.2')!;
  const v6 = src.length === 16;
  const payload = enc(s.payload);
  const opts = s.options ?? {};
  const thlen = tcpHeaderLen(opts);
  const iplen = v6 ? 40 : 20;
  const out = new Uint8Array(14 + iplen + thlen + payload.length + (s.pad ?? 0));
  emitEthernet({ dst: MAC_B, src: MAC_A, ethertype: v6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4 }, out, 0);
  if (v6)
    emitIpv6({ trafficClass: 0, flowLabel: 0, payloadLen: thlen + payload.length, nextHeader: IPPROTO_TCP, hopLimit: 64, src, dst }, out, 14);
  else
    emitIpv4({
      tos: 0, totalLen: iplen + thlen + payload.length, id: s.id ?? 1, df: true, mf: false, fragOff: 0, ttl: 64,
      proto: IPPROTO_TCP, checksum: 0, src, dst, options: new Uint8Array(0),
    }, out, 14);
  const th = 14 + iplen;
  emitTcp({
    srcPort: s.sport ?? 40000, dstPort: s.dport ?? 80, seq: (s.seq ?? 1000) >>> 0, ack: (s.ack ?? 0) >>> 0,
    flags: s.flags ?? TH_ACK, window: s.win ?? 65535, checksum: 0, urp: s.urp ?? 0, options: opts,
  }, out, th);
  out.set(payload, th + thlen);
  const sum = transportChecksum(out, 14, v6 ? 6 : 4, IPPROTO_TCP, th, thlen + payload.length);
  put16(out, th + 16, s.badSum ? sum ^ 0x5555 : sum);
  return out;
}

/**
 * A clean conversation from `src` to `dst` (IPv4 or IPv6): handshake, 3,000 bytes one way and 700
 * the other in several segments, FINs. Nothing in it makes a tool guess (tcpflow splits none of it).
 */
export function conversation(src: string, dst: string, sport = 40001, dport = 443): Uint8Array[] {
  const c = { src, dst, sport, dport };
  const s = { src: dst, dst: src, sport: dport, dport: sport };
  const up = Buffer.alloc(3000, 'u');
  const down = Buffer.alloc(700, 'd');
  return [
    tcpFrame({ ...c, seq: 100, flags: TH_SYN }),
    tcpFrame({ ...s, seq: 900, ack: 101, flags: TH_SYN | TH_ACK }),
    tcpFrame({ ...c, seq: 101, ack: 901 }),
    tcpFrame({ ...c, seq: 101, ack: 901, payload: up.subarray(0, 1400) }),
    tcpFrame({ ...c, seq: 1501, ack: 901, payload: up.subarray(1400, 2800), flags: TH_ACK | TH_PUSH }),
    tcpFrame({ ...s, seq: 901, ack: 2901, payload: down }),
    tcpFrame({ ...c, seq: 2901, ack: 1601, payload: up.subarray(2800) }),
    tcpFrame({ ...c, seq: 3101, ack: 1601, flags: TH_FIN | TH_ACK }),
    tcpFrame({ ...s, seq: 1601, ack: 3102, flags: TH_FIN | TH_ACK }),
    tcpFrame({ ...c, seq: 3102, ack: 1602 }),
  ];
}

export interface RecSpec {
  data: Uint8Array;
  tsSec?: number;
  tsFrac?: number;
  origLen?: number;
}

/** A classic pcap file in memory. */
export function pcapFile(recs: readonly RecSpec[], o: { linktype?: number; nanos?: boolean; bigEndian?: boolean; snaplen?: number } = {}): Buffer {
  const parts: Buffer[] = [];
  const h = Buffer.alloc(24);
  const w32 = (b: Buffer, v: number, off: number) => (o.bigEndian ? b.writeUInt32BE(v >>> 0, off) : b.writeUInt32LE(v >>> 0, off));
  const w16 = (b: Buffer, v: number, off: number) => (o.bigEndian ? b.writeUInt16BE(v, off) : b.writeUInt16LE(v, off));
  w32(h, o.nanos ? 0xa1b23c4d : 0xa1b2c3d4, 0);
  w16(h, 2, 4);
  w16(h, 4, 6);
  w32(h, o.snaplen ?? 262144, 16);
  w32(h, o.linktype ?? 1, 20);
  parts.push(h);
  recs.forEach((r, i) => {
    const rh = Buffer.alloc(16);
    w32(rh, r.tsSec ?? 1700000000 + i, 0);
    w32(rh, r.tsFrac ?? i * 1000, 4);
    w32(rh, r.data.length, 8);
    w32(rh, r.origLen ?? r.data.length, 12);
    parts.push(rh, Buffer.from(r.data));
  });
  return Buffer.concat(parts);
}

/** Feed a buffer as a stream of `size`-byte chunks (exercises records straddling chunks). */
export async function* chunked(b: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, Math.min(b.length, i + size));
}
