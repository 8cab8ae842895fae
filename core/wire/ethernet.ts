import { be16, put16 } from './bytes.js';
import type { DropReason } from './drop.js';

/** Ethernet II header length. */
export const ETHER_HDR_LEN = 14;
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_VLAN = 0x8100;
export const ETHERTYPE_QINQ = 0x88a8;
export const ETHERTYPE_QINQ_OLD = 0x9100;
export const ETHERTYPE_IPV6 = 0x86dd;
export const ETHERTYPE_PPPOE_SESSION = 0x8864;
export const ETHERTYPE_MPLS = 0x8847;
export const ETHERTYPE_MPLS_MCAST = 0x8848;
/** Network Service Header (RFC 8300): service function chaining. */
export const ETHERTYPE_NSH = 0x894f;
/** One MPLS label stack entry (RFC 3032): label, traffic class, bottom of stack, TTL. */
export const MPLS_LABEL_LEN = 4;

/** Parsed Ethernet II header (802.3 length frames are reported as type < 0x0600). */
export interface EthernetRepr {
  readonly dst: Uint8Array;
  readonly src: Uint8Array;
  readonly ethertype: number;
}

/** Check-once: an Ethernet header needs 14 bytes. Returns the ethertype or a drop reason. */
export function checkEthernet(n: number): DropReason | null {
  return n < ETHER_HDR_LEN ? 'ether.short' : null;
}

export function parseEthernet(b: Uint8Array, o: number, n: number): EthernetRepr | DropReason {
  const bad = checkEthernet(n);
  if (bad) return bad;
  return { dst: b.subarray(o, o + 6), src: b.subarray(o + 6, o + 12), ethertype: be16(b, o + 12) };
}

export function emitEthernet(r: EthernetRepr, out: Uint8Array, o: number): number {
  out.set(r.dst, o);
  out.set(r.src, o + 6);
  put16(out, o + 12, r.ethertype);
  return ETHER_HDR_LEN;
}

/** 802.1Q / 802.1ad tag: TCI then the inner ethertype. */
export interface VlanRepr {
  readonly pcp: number;
  readonly dei: boolean;
  readonly vid: number;
  readonly ethertype: number;
}

export const VLAN_TAG_LEN = 4;

export function isVlanType(t: number): boolean {
  return t === ETHERTYPE_VLAN || t === ETHERTYPE_QINQ || t === ETHERTYPE_QINQ_OLD;
}

export function parseVlan(b: Uint8Array, o: number, n: number): VlanRepr | DropReason {
  if (n < VLAN_TAG_LEN) return 'vlan.short';
  const tci = be16(b, o);
  return { pcp: tci >>> 13, dei: (tci & 0x1000) !== 0, vid: tci & 0xfff, ethertype: be16(b, o + 2) };
}

export function emitVlan(r: VlanRepr, out: Uint8Array, o: number): number {
  put16(out, o, (r.pcp << 13) | (r.dei ? 0x1000 : 0) | r.vid);
  put16(out, o + 2, r.ethertype);
  return VLAN_TAG_LEN;
}

/** PPPoE session header (RFC 2516) followed by the 2-byte PPP protocol field. */
export interface PppoeRepr {
  readonly session: number;
  readonly length: number;
  readonly pppProto: number;
}

export const PPPOE_HDR_LEN = 8;
export const PPP_IPV4 = 0x0021;
export const PPP_IPV6 = 0x0057;

export function parsePppoe(b: Uint8Array, o: number, n: number): PppoeRepr | DropReason {
  if (n < PPPOE_HDR_LEN) return 'pppoe.short';
  if (b[o] !== 0x11 || b[o + 1] !== 0) return 'pppoe.badver';
  return { session: be16(b, o + 2), length: be16(b, o + 4), pppProto: be16(b, o + 6) };
}

export function emitPppoe(r: PppoeRepr, out: Uint8Array, o: number): number {
  out[o] = 0x11;
  out[o + 1] = 0;
  put16(out, o + 2, r.session);
  put16(out, o + 4, r.length);
  put16(out, o + 6, r.pppProto);
  return PPPOE_HDR_LEN;
}
