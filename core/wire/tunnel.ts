import { be16, be32 } from './bytes.js';
import type { DropReason } from './drop.js';
import { ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_MPLS, ETHERTYPE_MPLS_MCAST, ETHERTYPE_NSH, PPP_IPV4, PPP_IPV6 } from './ethernet.js';

/**
 * Tunnel headers: what sits between an outer IP (or UDP) header and the packet it carries. Each
 * parser reads one header at `o` with `n` bytes captured and says what follows, where, and the
 * number that names the tunnel's network (a GRE key, a VXLAN or Geneve VNI, an ERSPAN session, a
 * PPTP call id; 0 when the header has none, or when its ids are the receiver's and differ between
 * a connection's two directions: GTP-U's TEIDs, L2TP's tunnel and session ids).
 */

/** IP protocol numbers of tunnels (IANA): IPv4 in IP (RFC 2003), IPv6 in IP (RFC 4213), GRE (RFC 2784). */
export const IPPROTO_IPIP = 4;
export const IPPROTO_IPV6 = 41;
export const IPPROTO_GRE = 47;

/**
 * UDP ports of tunnels (IANA): VXLAN (RFC 7348), VXLAN-GPE (draft-ietf-nvo3-vxlan-gpe), Geneve
 * (RFC 8926) and GTP-U (3GPP TS 29.281) by their destination port; L2TP (RFC 2661) by either, since its server answers from 1701 to
 * whatever port the client sent from; Teredo (RFC 4380) by either, as tshark decodes it (its
 * servers and relays use 3544; tshark's heuristic for other ports is off by default, and there is
 * none here).
 */
export const VXLAN_PORT = 4789;
export const VXLAN_GPE_PORT = 4790;
export const GENEVE_PORT = 6081;
export const GTPU_PORT = 2152;
export const L2TP_PORT = 1701;
export const TEREDO_PORT = 3544;

/** What a tunnel header carries: an Ethernet frame, an IP packet (by version), or a PPP frame (PPTP). */
export const INNER_ETHER = 1;
export const INNER_IPV4 = 2;
export const INNER_IPV6 = 3;
export const INNER_PPP = 4;
/** An MPLS label stack (MPLS in GRE, RFC 4023; in VXLAN-GPE) and a Network Service Header (RFC 8300). */
export const INNER_MPLS = 5;
export const INNER_NSH = 6;
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
  name: 'ipip' | 'gre' | 'erspan' | 'pptp' | 'vxlan' | 'vxlan-gpe' | 'geneve' | 'gtp' | 'l2tp' | 'teredo';
  /**
   * The header's own 16-bit length field, when it has one (PPTP, GTP-U, L2TP with L), which a
   * packet sent on the tunnel's path sets again (ENCAP_LEN16): its offset in the header, and how
   * much its value is short of the bytes from the field to the packet's end.
   */
  lenAt?: number;
  lenLess?: number;
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
/**
 * A 16-bit length field at the offset: the bytes from the offset to the frame's end, less the
 * argument (PPTP's payload length, GTP-U's length, L2TP's length).
 */
export const ENCAP_LEN16 = 5;

/** GRE protocol types (the ethertype of what follows; RFC 2784, 1701, 2637; ERSPAN's). */
const GRE_TEB = 0x6558; // transparent Ethernet bridging (NVGRE, Linux gretap)
const GRE_ERSPAN_2 = 0x88be; // ERSPAN type II (or type I: no ERSPAN header, S bit clear)
const GRE_ERSPAN_3 = 0x22eb;
const GRE_PPP = 0x880b; // PPTP's enhanced GRE (version 1)

function etherType(t: number): number {
  return t === ETHERTYPE_IPV4 ? INNER_IPV4 : t === ETHERTYPE_IPV6 ? INNER_IPV6 : t === GRE_TEB ? INNER_ETHER
    : t === ETHERTYPE_MPLS || t === ETHERTYPE_MPLS_MCAST ? INNER_MPLS : t === ETHERTYPE_NSH ? INNER_NSH : INNER_OTHER;
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
    // the payload length: the bytes after this header
    return { inner: INNER_PPP, hlen, id: be16(b, o + 6), name: 'pptp', lenAt: 4, lenLess: hlen - 4 };
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

/** What VXLAN-GPE's next protocol (and NSH's: the same registry) names, by its number. */
export const GPE_NEXT: readonly (number | undefined)[] = [undefined, INNER_IPV4, INNER_IPV6, INNER_ETHER, INNER_NSH, INNER_MPLS];

/** VXLAN (RFC 7348): 8 bytes with the I flag (a valid VNI), then an Ethernet frame. */
export function parseVxlan(b: Uint8Array, o: number, n: number): TunnelHdr | DropReason | null {
  if (n < 8) return 'vxlan.short';
  if (!(b[o]! & 0x08)) return null; // no valid VNI: not VXLAN as RFC 7348 sends it, left as UDP
  return { inner: INNER_ETHER, hlen: 8, id: be32(b, o + 4) >>> 8, name: 'vxlan' };
}

/**
 * VXLAN-GPE (draft-ietf-nvo3-vxlan-gpe-12): VXLAN's 8 bytes with a version (0), the I flag, and a
 * next protocol when P is set (IPv4 1, IPv6 2, Ethernet 3, NSH 4, MPLS 5); without P, Ethernet as
 * in VXLAN.
 */
export function parseVxlanGpe(b: Uint8Array, o: number, n: number): TunnelHdr | DropReason | null {
  if (n < 8) return 'vxlan.short';
  const f = b[o]!;
  if (f & 0x30 || !(f & 0x08)) return null; // another version, or no valid VNI: left as UDP
  const next = f & 0x04 ? b[o + 3]! : 3;
  return { inner: GPE_NEXT[next] ?? INNER_OTHER, hlen: 8, id: be32(b, o + 4) >>> 8, name: 'vxlan-gpe' };
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

/** GTP-U's message type of a packet carrying a user's packet (G-PDU, T-PDU inside). */
const GTP_GPDU = 0xff;

/**
 * GTP-U (3GPP TS 29.281, GTPv1-U): the mobile core's user plane, a UE's IP packets between base
 * station and gateways. 8 bytes (version 1, protocol type GTP, message type, length, TEID), 4 more
 * when any of E, S or PN is set (sequence number, N-PDU number, next extension header type), then
 * a chain of extension headers, each its length in 4-byte words, its content and the next one's
 * type (5G's PDU Session Container among them). A G-PDU carries an IP packet, IPv4 or IPv6 by its
 * first nibble (the PDP type is not in the header); other messages (echo, error indication, end
 * marker) carry none. The TEID is the receiver's, one per direction: it is no network id. GTPv0
 * and GTP' (another version, or the protocol type bit clear) are left as UDP.
 */
export function parseGtpU(b: Uint8Array, o: number, n: number): TunnelHdr | DropReason | null {
  if (n < 8) return 'gtp.short';
  const f = b[o]!;
  if (f >> 5 !== 1 || !(f & 0x10)) return null;
  let hlen = 8;
  if (f & 0x07) {
    hlen = 12;
    if (n < hlen) return 'gtp.short';
    // extension headers, while the E flag says so and the last one names a next one
    for (let next = f & 0x04 ? b[o + 11]! : 0; next !== 0; ) {
      if (n < hlen + 1) return 'gtp.short';
      const len = b[o + hlen]! * 4;
      if (len === 0) return 'gtp.bad';
      if (n < hlen + len) return 'gtp.short';
      hlen += len;
      next = b[o + hlen - 1]!;
    }
  }
  // the length counts what follows the first 8 bytes
  if (b[o + 1] !== GTP_GPDU) return { inner: INNER_OTHER, hlen, id: 0, name: 'gtp', lenAt: 2, lenLess: 6 };
  const v = n > hlen ? b[o + hlen]! >> 4 : 0;
  return { inner: v === 4 ? INNER_IPV4 : v === 6 ? INNER_IPV6 : INNER_OTHER, hlen, id: 0, name: 'gtp', lenAt: 2, lenLess: 6 };
}

/**
 * L2TP version 2 (RFC 2661): flags and version, the length when L is set, tunnel and session id,
 * Ns and Nr when S is set, an offset size and that many bytes of padding when O is set, then a PPP
 * frame (INNER_PPP). A control message (T) carries no PPP frame (INNER_OTHER). The ids are the
 * receiver's, one pair per direction: they are no network id. Other versions (L2TPv3, L2F) are
 * left as UDP.
 */
export function parseL2tp(b: Uint8Array, o: number, n: number): TunnelHdr | DropReason | null {
  if (n < 2) return 'l2tp.short';
  const f = b[o]!;
  if ((b[o + 1]! & 0x0f) !== 2) return null;
  let hlen = 6 + (f & 0x40 ? 2 : 0) + (f & 0x08 ? 4 : 0);
  if (f & 0x02) {
    if (n < hlen + 2) return 'l2tp.short';
    hlen += 2 + be16(b, o + hlen);
  }
  if (n < hlen) return 'l2tp.short';
  const r: TunnelHdr = { inner: f & 0x80 ? INNER_OTHER : INNER_PPP, hlen, id: 0, name: 'l2tp' };
  // the length (L) counts the whole message, this header included
  if (f & 0x40) {
    r.lenAt = 2;
    r.lenLess = -2;
  }
  return r;
}

/**
 * Teredo (RFC 4380 section 5.1.1): IPv6 in UDP through NATs, from Windows hosts and their relays.
 * Before the IPv6 packet, optionally, an authentication indicator (0x0001, the client identifier's
 * and the authentication value's lengths, both values, an 8-byte nonce and a confirmation byte)
 * and then an origin indication (0x0000, the obfuscated port and IPv4 address: 8 bytes), as a
 * server or relay adds them. What follows must be IPv6 by its first nibble: anything else on the
 * port is left as UDP (Teredo has no field that says it is Teredo; a bubble is IPv6 with nothing
 * in it). No network id: a capture's Teredo is one network, as its GTP-U is.
 */
export function parseTeredo(b: Uint8Array, o: number, n: number): TunnelHdr | DropReason | null {
  let hlen = 0;
  if (n >= 2 && b[o] === 0 && b[o + 1] === 1) {
    if (n < 4) return 'teredo.short';
    hlen = 13 + b[o + 2]! + b[o + 3]!;
    if (n < hlen) return 'teredo.short';
  }
  if (n >= hlen + 2 && b[o + hlen] === 0 && b[o + hlen + 1] === 0) {
    hlen += 8;
    if (n < hlen) return 'teredo.short';
  }
  if (n <= hlen || b[o + hlen]! >> 4 !== 6) return null;
  return { inner: INNER_IPV6, hlen, id: 0, name: 'teredo' };
}
