import { be16, put16 } from './bytes.js';
import { checksum } from './checksum.js';
import type { DropReason } from './drop.js';

export const IPV4_MIN_HDR_LEN = 20;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_ICMP = 1;
export const IPPROTO_ICMPV6 = 58;

/**
 * Parsed IPv4 header. Addresses and options are views of the packet (no copies).
 * `payloadLen` is what the header says; the bytes captured may be fewer (snaplen).
 */
export interface Ipv4Repr {
  readonly tos: number;
  readonly totalLen: number;
  readonly id: number;
  readonly df: boolean;
  readonly mf: boolean;
  /** Fragment offset in bytes. */
  readonly fragOff: number;
  readonly ttl: number;
  readonly proto: number;
  readonly checksum: number;
  readonly src: Uint8Array;
  readonly dst: Uint8Array;
  readonly options: Uint8Array;
}

/**
 * Check-once for the IPv4 header at `o` with `n` captured bytes; `wireLen` is the frame's
 * remaining length on the wire. Returns the header length, or a drop reason. After it succeeds the
 * header's fields can be read without further bounds checks.
 */
export function checkIpv4(b: Uint8Array, o: number, n: number): number | DropReason {
  if (n < IPV4_MIN_HDR_LEN) return 'ip.short';
  const vhl = b[o]!;
  if (vhl >> 4 !== 4) return 'ip.badvers';
  const hlen = (vhl & 0xf) << 2;
  if (hlen < IPV4_MIN_HDR_LEN) return 'ip.badhlen';
  if (hlen > n) return 'ip.short';
  if (be16(b, o + 2) < hlen) return 'ip.badlen';
  return hlen;
}

/** True when the IPv4 header checksum of a checked header is wrong. */
export function ipv4BadSum(b: Uint8Array, o: number, hlen: number): boolean {
  return checksum(b, o, hlen) !== 0;
}

export function parseIpv4(b: Uint8Array, o: number, n: number): Ipv4Repr | DropReason {
  const hlen = checkIpv4(b, o, n);
  if (typeof hlen !== 'number') return hlen;
  const frag = be16(b, o + 6);
  return {
    tos: b[o + 1]!,
    totalLen: be16(b, o + 2),
    id: be16(b, o + 4),
    df: (frag & 0x4000) !== 0,
    mf: (frag & 0x2000) !== 0,
    fragOff: (frag & 0x1fff) << 3,
    ttl: b[o + 8]!,
    proto: b[o + 9]!,
    checksum: be16(b, o + 10),
    src: b.subarray(o + 12, o + 16),
    dst: b.subarray(o + 16, o + 20),
    options: b.subarray(o + 20, o + hlen),
  };
}

/** Header length `emitIpv4` will write (options padded to 4 bytes). */
export function ipv4HeaderLen(r: Pick<Ipv4Repr, 'options'>): number {
  return IPV4_MIN_HDR_LEN + ((r.options.length + 3) & ~3);
}

/**
 * Write the header at `o`. With `fillChecksum` (the default) the checksum field is computed;
 * otherwise `r.checksum` is written as given (round trips of captured headers).
 */
export function emitIpv4(r: Ipv4Repr, out: Uint8Array, o: number, fillChecksum = true): number {
  const hlen = ipv4HeaderLen(r);
  out[o] = 0x40 | (hlen >> 2);
  out[o + 1] = r.tos;
  put16(out, o + 2, r.totalLen);
  put16(out, o + 4, r.id);
  put16(out, o + 6, (r.df ? 0x4000 : 0) | (r.mf ? 0x2000 : 0) | (r.fragOff >> 3));
  out[o + 8] = r.ttl;
  out[o + 9] = r.proto;
  put16(out, o + 10, 0);
  out.set(r.src, o + 12);
  out.set(r.dst, o + 16);
  out.fill(0, o + 20, o + hlen);
  out.set(r.options, o + 20);
  put16(out, o + 10, fillChecksum ? checksum(out, o, hlen) : r.checksum);
  return hlen;
}
