import { be16, be32 } from './bytes.js';
import type { DropReason } from './drop.js';
import { ETHERTYPE_IPV4, ETHERTYPE_IPV6, PPP_IPV4, PPP_IPV6 } from './ethernet.js';

/**
 * Tunnel headers: what sits between an outer IP (or UDP) header and the packet it carries. Each
 * parser reads one header at `o` with `n` bytes captured and says what follows, where, and the
 * number that names the tunnel's network (a GRE key, a VXLAN or Geneve VNI, an ERSPAN session, a
 * PPTP call id; 0 when the header has none).
 */

/** IP protocol numbers of tunnels (IANA): IPv4 in IP (RFC 2003), IPv6 in IP (RFC 4213), GRE (RFC 2784). */
export const IPPROTO_IPIP = 4;
export const IPPROTO_IPV6 = 41;
export const IPPROTO_GRE = 47;

/** UDP destination ports of tunnels (IANA): VXLAN (RFC 7348), Geneve (RFC 8926). */
export const VXLAN_PORT = 4789;
export const GENEVE_PORT = 6081;

/** What a tunnel header carries: an Ethernet frame, an IP packet (by version), or a PPP frame (PPTP). */
export const INNER_ETHER = 1;
export const INNER_IPV4 = 2;
export const INNER_IPV6 = 3;
export const INNER_PPP = 4;
/** A payload this decoder does not open (another GRE protocol type, Geneve carrying something else). */
export const INNER_OTHER = 0;

export interface TunnelHdr {
  /** INNER_*. */
  inner: number;
  /** Bytes of tunnel header before the inner packet. */
  hlen: number;
  /** The network the tunnel names (key, VNI, session, call id), 0 if none. */
  id: number;
  /** What to count the tunnel as in the report's protocols. */
  name: 'ipip' | 'gre' | 'erspan' | 'pptp' | 'vxlan' | 'geneve';
}

// Outer header fields a packet sent on a tunnel's path sets again (PktHdr.encap's triples).

/** IPv4 header at the offset: total length, header checksum. */
export const ENCAP_IP4 = 1;
/** IPv6 header at the offset: payload length. */
export const ENCAP_IP6 = 2;
/** UDP header at the offset (its IP header at the argument): length, checksum. */
export const ENCAP_UDP = 3;
/** GRE header with its checksum present at the offset: the checksum. */
export const ENCAP_GRE_CSUM = 4;
/** PPTP's GRE header at the offset (the argument: its length): the payload length. */
export const ENCAP_PPTP_LEN = 5;

/** GRE protocol types (the ethertype of what follows; RFC 2784, 1701, 2637; ERSPAN's). */
const GRE_TEB = 0x6558; // transparent Ethernet bridging (NVGRE, Linux gretap)
const GRE_ERSPAN_2 = 0x88be; // ERSPAN type II (or type I: no ERSPAN header, S bit clear)
const GRE_ERSPAN_3 = 0x22eb;
const GRE_PPP = 0x880b; // PPTP's enhanced GRE (version 1)

function etherType(t: number): number {
  return t === ETHERTYPE_IPV4 ? INNER_IPV4 : t === ETHERTYPE_IPV6 ? INNER_IPV6 : t === GRE_TEB ? INNER_ETHER : INNER_OTHER;
}

/**
 * GRE: version 0 (RFC 2784 with RFC 2890's key and sequence number), ERSPAN types I-III inside
 * it, and version 1, PPTP's (RFC 2637: key = payload length and call id, optional sequence and
 * acknowledgment numbers). RFC 1701 source routing (R bit) is refused: obsolete, and its routing
 * entries have no fixed length.
 */
export function parseGre(b: Uint8Array, o: number, n: number): TunnelHdr | DropReason {
  if (n < 4) return 'gre.short';
  const f = b[o]!;
  const ver = b[o + 1]! & 7;
  const proto = be16(b, o + 2);
  if (ver === 1) {
    if (f & 0xc0 || !(f & 0x20) || proto !== GRE_PPP) return 'gre.unsupported';
    const hlen = 8 + (f & 0x10 ? 4 : 0) + (b[o + 1]! & 0x80 ? 4 : 0);
    if (n < hlen) return 'gre.short';
    return { inner: INNER_PPP, hlen, id: be16(b, o + 6), name: 'pptp' };
  }
  if (ver !== 0 || f & 0x40) return 'gre.unsupported';
  const keyAt = f & 0x80 ? 8 : 4;
  let hlen = keyAt + (f & 0x20 ? 4 : 0) + (f & 0x10 ? 4 : 0);
  if (n < hlen) return 'gre.short';
  const key = f & 0x20 ? be32(b, o + keyAt) | 0 : 0;
  if (proto === GRE_ERSPAN_2 || proto === GRE_ERSPAN_3) {
    if (proto === GRE_ERSPAN_2 && !(f & 0x10)) return { inner: INNER_ETHER, hlen, id: 0, name: 'erspan' }; // type I: no session
    const e = o + hlen;
    const elen = proto === GRE_ERSPAN_2 ? 8 : 12 + (n >= hlen + 12 && b[e + 11]! & 1 ? 8 : 0);
    if (n < hlen + elen) return 'erspan.short';
    hlen += elen;
    // the network is the mirror session (10 bits); ERSPAN's GRE carries no key
    return { inner: INNER_ETHER, hlen, id: be16(b, e + 2) & 0x3ff, name: 'erspan' };
  }
  return { inner: etherType(proto), hlen, id: key, name: 'gre' };
}

/** VXLAN (RFC 7348): 8 bytes with the I flag (a valid VNI), then an Ethernet frame. */
export function parseVxlan(b: Uint8Array, o: number, n: number): TunnelHdr | DropReason | null {
  if (n < 8) return 'vxlan.short';
  if (!(b[o]! & 0x08)) return null; // no valid VNI: not VXLAN as RFC 7348 sends it, left as UDP
  return { inner: INNER_ETHER, hlen: 8, id: be32(b, o + 4) >>> 8, name: 'vxlan' };
}

/** Geneve (RFC 8926): 8 bytes and its options, then what its protocol type says. */
export function parseGeneve(b: Uint8Array, o: number, n: number): TunnelHdr | DropReason | null {
  if (n < 8) return 'geneve.short';
  if (b[o]! >> 6 !== 0) return null; // an unknown version: left as UDP (RFC 8926 §3.4)
  const hlen = 8 + (b[o]! & 0x3f) * 4;
  if (n < hlen) return 'geneve.short';
  return { inner: etherType(be16(b, o + 2)), hlen, id: be32(b, o + 4) >>> 8, name: 'geneve' };
}

/**
 * The PPP frame inside PPTP's GRE (RFC 1661): address and control (0xff 0x03) unless compressed
 * away (ACFC), then a protocol field of one byte when compressed (PFC: the byte is odd) or two.
 * Returns [INNER_IPV4 | INNER_IPV6 | INNER_OTHER, header length].
 */
export function parsePpp(b: Uint8Array, o: number, n: number): [number, number] | DropReason {
  let h = 0;
  if (n >= 2 && b[o] === 0xff && b[o + 1] === 0x03) h = 2;
  if (n < h + 1) return 'ppp.short';
  let proto = b[o + h]!;
  if (proto & 1) h += 1;
  else {
    if (n < h + 2) return 'ppp.short';
    proto = be16(b, o + h);
    h += 2;
  }
  return [proto === PPP_IPV4 ? INNER_IPV4 : proto === PPP_IPV6 ? INNER_IPV6 : INNER_OTHER, h];
}
