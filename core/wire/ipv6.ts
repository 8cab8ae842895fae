import { be16, be32, put16, put32 } from './bytes.js';
import type { DropReason } from './drop.js';

export const IPV6_HDR_LEN = 40;
export const IP6_HOPOPTS = 0;
export const IP6_ROUTING = 43;
export const IP6_FRAGMENT = 44;
export const IP6_ESP = 50;
export const IP6_AH = 51;
export const IP6_NONXT = 59;
export const IP6_DSTOPTS = 60;

/** One extension header met on the way to the upper layer. */
export interface Ip6Ext {
  readonly type: number;
  /** Offset of the extension header from the start of the IPv6 header. */
  readonly off: number;
  readonly len: number;
}

/** Fragment header fields, when the chain has one. */
export interface Ip6Frag {
  readonly fragOff: number;
  readonly mf: boolean;
  readonly id: number;
  /** Offset (from the IPv6 header) of the fragmentable part. */
  readonly partOff: number;
}

/** Parsed IPv6 header and its extension chain, up to the upper-layer protocol. */
export interface Ipv6Repr {
  readonly trafficClass: number;
  readonly flowLabel: number;
  readonly payloadLen: number;
  readonly nextHeader: number;
  readonly hopLimit: number;
  readonly src: Uint8Array;
  readonly dst: Uint8Array;
  readonly exts: readonly Ip6Ext[];
  /** Upper-layer protocol after the extension headers. */
  readonly proto: number;
  /** Offset from the IPv6 header to the upper-layer header. */
  readonly upperOff: number;
  readonly frag: Ip6Frag | null;
}

/** Walk the header and its extension headers within the `n` captured bytes. */
export function parseIpv6(b: Uint8Array, o: number, n: number): Ipv6Repr | DropReason {
  if (n < IPV6_HDR_LEN) return 'ip6.short';
  const w0 = be32(b, o);
  if (w0 >>> 28 !== 6) return 'ip6.badvers';
  const payloadLen = be16(b, o + 4);
  const nextHeader = b[o + 6]!;
  const exts: Ip6Ext[] = [];
  let proto = nextHeader;
  let off = IPV6_HDR_LEN;
  let frag: Ip6Frag | null = null;
  const end = Math.min(n, IPV6_HDR_LEN + payloadLen);
  for (;;) {
    if (proto === IP6_HOPOPTS || proto === IP6_ROUTING || proto === IP6_DSTOPTS || proto === IP6_AH) {
      if (off + 2 > end) return 'ip6.badext';
      const len = proto === IP6_AH ? (b[o + off + 1]! + 2) << 2 : (b[o + off + 1]! + 1) << 3;
      if (off + len > end) return 'ip6.badext';
      exts.push({ type: proto, off, len });
      proto = b[o + off]!;
      off += len;
    } else if (proto === IP6_FRAGMENT) {
      if (off + 8 > end) return 'ip6.badext';
      const fo = be16(b, o + off + 2);
      exts.push({ type: proto, off, len: 8 });
      frag = { fragOff: fo & 0xfff8, mf: (fo & 1) !== 0, id: be32(b, o + off + 4), partOff: off + 8 };
      proto = b[o + off]!;
      off += 8;
      // headers after a fragment header belong to the fragmentable part: stop unless first fragment
      if (frag.fragOff !== 0) break;
    } else break;
  }
  return {
    trafficClass: (w0 >>> 20) & 0xff,
    flowLabel: w0 & 0xfffff,
    payloadLen,
    nextHeader,
    hopLimit: b[o + 7]!,
    src: b.subarray(o + 8, o + 24),
    dst: b.subarray(o + 24, o + 40),
    exts,
    proto,
    upperOff: off,
    frag,
  };
}

/** Write the fixed 40-byte header (extension headers are the caller's payload). */
export function emitIpv6(
  r: Pick<Ipv6Repr, 'trafficClass' | 'flowLabel' | 'payloadLen' | 'nextHeader' | 'hopLimit' | 'src' | 'dst'>,
  out: Uint8Array,
  o: number,
): number {
  put32(out, o, ((6 << 28) | (r.trafficClass << 20) | r.flowLabel) >>> 0);
  put16(out, o + 4, r.payloadLen);
  out[o + 6] = r.nextHeader;
  out[o + 7] = r.hopLimit;
  out.set(r.src, o + 8);
  out.set(r.dst, o + 24);
  return IPV6_HDR_LEN;
}
