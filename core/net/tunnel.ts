import type { Ctx } from '../ctx.js';
import { m_copydata, Mbuf, type PktHdr } from '../mbuf/mbuf.js';
import { be16 } from '../wire/bytes.js';
import {
  ENCAP_GRE_CSUM, ENCAP_IP4, ENCAP_IP6, ENCAP_LEN16, ENCAP_UDP, GENEVE_PORT, GTPU_PORT, INNER_ETHER, INNER_IPV4, INNER_IPV6,
  INNER_MPLS, INNER_NSH, INNER_PPP, IPPROTO_GRE, IPPROTO_IPIP, IPPROTO_IPV6, L2TP_PORT, parseGeneve, parseGre, parseGtpU, parseL2tp, parsePpp, parseTeredo, parseVxlan,
  parseVxlanGpe, TEREDO_PORT, type TunnelHdr, VXLAN_GPE_PORT, VXLAN_PORT,
} from '../wire/tunnel.js';
import { ether_input, mpls_input, nsh_input } from './ether.js';
import { ip6_input, ip_input } from './ip-input.js';

/**
 * Tunnels most packets are nested in at most (an overlay in an overlay is two); deeper nesting is
 * dropped as `tunnel.depth`, so that a crafted packet of tunnel headers costs a bounded amount.
 */
export const MAX_TUNNEL_DEPTH = 4;

/** Tunnel kinds, folded into the network number with the tunnel's own id. */
const KIND = { ipip: 1, gre: 2, erspan: 3, pptp: 4, vxlan: 5, geneve: 6, gtp: 7, l2tp: 8, 'vxlan-gpe': 9, teredo: 10 } as const;

/**
 * The network a tunnel's packets belong to: the outer packet's (its VLAN stack, its own tunnels),
 * the kind of tunnel and its id (key, VNI, session, call id). Like a VLAN, a tunnel is a network of
 * its own: its inner addresses are an overlay's, and the same 4-tuple outside the tunnel or in
 * another VNI is another connection. The tunnel's outer addresses are not part of it, so the two
 * directions of a connection meet even when they come through different endpoints (mirrored
 * traffic sent from two VTEPs, asymmetric GRE). GTP-U and L2TP name no id (theirs are the
 * receiver's, one per direction), nor does Teredo: all of a capture's GTP-U is one network, as all
 * of its IP in IP.
 */
function tunnelNet(ctx: Ctx, net: number, name: keyof typeof KIND, id: number): number {
  const t = (Math.imul(net ^ 0x2545f491, 0x9e3779b1) + Math.imul(KIND[name], 0x85ebca6b) + Math.imul(id, 0xc2b2ae35)) | 0;
  if (ctx.nets.wants(t)) ctx.nets.set(t, ctx.nets.inside(net, ID_NAME[name] === null ? name : `${name} ${ID_NAME[name]}${id >>> 0}`));
  return t;
}

/** What each kind's id is, in a network's name. */
const ID_NAME = { ipip: null, gre: 'key ', erspan: 'session ', pptp: 'call ', vxlan: 'vni ', geneve: 'vni ', gtp: null, l2tp: null, 'vxlan-gpe': 'vni ', teredo: null } as const;

/**
 * The packet a tunnel carries, as a frame of its own (BSD: gif_input and gre_input hand the inner
 * packet to ip_input after m_adj): bytes [off, capEnd) of the outer frame `m`, which has wireEnd
 * bytes on the wire. No payload is copied: the new Mbuf points into the frame's memory with the
 * frame's chunk (ext). A datagram IP reassembly put together (an Mbuf chain) is made contiguous
 * first (m_pullup of all of it: headers of the inner packet can sit anywhere in it), the one copy
 * here, for tunnels carried in fragments only. The packet header says how deep in tunnels the
 * packet was and, when it lies in one captured frame, where and what of the outer headers must be
 * set again to send on its path (`fix`: this tunnel's outer fields, as offsets from `m.off`).
 */
function innerFrame(m: Mbuf, off: number, capEnd: number, wireEnd: number, fix: readonly number[]): Mbuf {
  const h = m.hdr!;
  const hdr: PktHdr = {
    caplen: capEnd - off, origLen: wireEnd - off, tsSec: h.tsSec, tsNsec: h.tsNsec, linktype: h.linktype,
    ifidx: h.ifidx, frameNo: h.frameNo, tunnel: (h.tunnel ?? 0) + 1,
  };
  if (h.loopcnt !== undefined) hdr.loopcnt = h.loopcnt;
  if (h.reassembled) hdr.reassembled = true;
  if (h.etherAddrs) hdr.etherAddrs = h.etherAddrs;
  if (m.next) {
    const flat = new Uint8Array(capEnd - off);
    m_copydata(m, off, capEnd - off, flat);
    return new Mbuf(flat, 0, flat.length, hdr);
  }
  // where the packet lies in its captured frame: none in a datagram IP reassembly put together
  if (!h.reassembled) {
    if (h.tunnel === undefined) hdr.encap = { at: off, fix };
    else if (h.encap) hdr.encap = { at: h.encap.at + off, fix: inFrame(h.encap, fix) };
  }
  return new Mbuf(m.buf, m.off + off, capEnd - off, hdr, m.ext);
}

/**
 * The outer fields of a tunnel inside a tunnel's packet, which lies at `outer.at` of its captured
 * frame: after the enclosing tunnels' fields, in the frame's offsets (each field's, and the IP
 * header's of a UDP one).
 */
function inFrame(outer: NonNullable<PktHdr['encap']>, fix: readonly number[]): number[] {
  const all = [...outer.fix];
  for (let i = 0; i < fix.length; i += 3) all.push(fix[i]!, fix[i + 1]! + outer.at, fix[i]! === ENCAP_UDP ? fix[i + 2]! + outer.at : fix[i + 2]!);
  return all;
}

/** Hand a decapsulated packet to the input routine of what it is. */
function inner_input(ctx: Ctx, m: Mbuf, what: number, net: number): void {
  switch (what) {
    case INNER_IPV4:
      return ip_input(ctx, m, 0, net);
    case INNER_IPV6:
      return ip6_input(ctx, m, 0, net);
    case INNER_ETHER:
      return ether_input(ctx, m, 0, net);
    case INNER_MPLS:
      return mpls_input(ctx, m, 0, net);
    case INNER_NSH:
      return nsh_input(ctx, m, 0, net);
    case INNER_PPP: {
      const r = parsePpp(m.buf, m.off, m.len);
      if (typeof r === 'string') return ctx.stats.drop(r);
      if (r[0] === INNER_IPV4) return ip_input(ctx, m, r[1], net);
      if (r[0] === INNER_IPV6) return ip6_input(ctx, m, r[1], net);
      return ctx.stats.proto('ppp.other');
    }
    default:
      ctx.stats.proto('tunnel.other');
  }
}

/** The outer packet is already this deep in tunnels: one more is refused. */
function tooDeep(ctx: Ctx, m: Mbuf): boolean {
  if ((m.hdr!.tunnel ?? 0) < MAX_TUNNEL_DEPTH) return false;
  ctx.stats.drop('tunnel.depth');
  return true;
}

/**
 * IP protocols 4 (IPv4 in IP), 41 (IPv6 in IP) and 47 (GRE) at `thOff` of `m`, whose IP header is
 * at `ipOff` (version `ipv`), in a datagram whose bytes end at `capEnd` captured and `wireEnd` on
 * the wire (offsets from m.off). Returns false for any other protocol (the caller counts it).
 */
export function ip_tunnel_input(ctx: Ctx, m: Mbuf, ipOff: number, thOff: number, proto: number, ipv: 4 | 6, capEnd: number, wireEnd: number, net: number): boolean {
  const ipFix = ipv === 4 ? ENCAP_IP4 : ENCAP_IP6;
  if (proto === IPPROTO_GRE) {
    const r = parseGre(m.buf, m.off + thOff, chainLen(m, capEnd) - thOff);
    if (typeof r === 'string') {
      ctx.stats.drop(r);
      return true;
    }
    const fix = [ipFix, ipOff, 0];
    if (m.buf[m.off + thOff]! & 0x80) fix.push(ENCAP_GRE_CSUM, thOff, 0);
    pushLen(fix, r, thOff);
    decap(ctx, m, thOff, r, capEnd, wireEnd, net, fix);
    return true;
  }
  if (proto !== IPPROTO_IPIP && proto !== IPPROTO_IPV6) return false;
  decap(ctx, m, thOff, { inner: proto === IPPROTO_IPIP ? INNER_IPV4 : INNER_IPV6, hlen: 0, id: 0, name: 'ipip' }, capEnd, wireEnd, net, [ipFix, ipOff, 0]);
  return true;
}

/**
 * UDP at `thOff` (its IP header at `ipOff`, version `ipv`): VXLAN, VXLAN-GPE, Geneve and GTP-U by their
 * destination ports, L2TP and Teredo by either. Returns false when the datagram is not one of them (the
 * caller counts it as UDP).
 */
export function udp_tunnel_input(ctx: Ctx, m: Mbuf, ipOff: number, thOff: number, ipv: 4 | 6, capEnd: number, wireEnd: number, net: number): boolean {
  const n = chainLen(m, capEnd) - thOff;
  if (n < 8) return false;
  const b = m.buf;
  const o = m.off + thOff;
  const dport = be16(b, o + 2);
  const parse = dport === VXLAN_PORT ? parseVxlan : dport === GENEVE_PORT ? parseGeneve : dport === GTPU_PORT ? parseGtpU
    : dport === VXLAN_GPE_PORT ? parseVxlanGpe : dport === L2TP_PORT || be16(b, o) === L2TP_PORT ? parseL2tp
    : dport === TEREDO_PORT || be16(b, o) === TEREDO_PORT ? parseTeredo : null;
  if (parse === null) return false;
  const r = parse(b, o + 8, n - 8);
  if (r === null) return false;
  if (typeof r === 'string') {
    ctx.stats.drop(r);
    return true;
  }
  const fix = [ipv === 4 ? ENCAP_IP4 : ENCAP_IP6, ipOff, 0, ENCAP_UDP, thOff, ipOff];
  pushLen(fix, r, thOff + 8);
  r.hlen += 8;
  decap(ctx, m, thOff, r, capEnd, wireEnd, net, fix);
  return true;
}

/**
 * The tunnel header's own length field (at `at` of the datagram), if it has one, among the fields
 * to set again: after the outer ones, so that it is set before a checksum that covers it.
 */
function pushLen(fix: number[], r: TunnelHdr, at: number): void {
  if (r.lenAt !== undefined) fix.push(ENCAP_LEN16, at + r.lenAt, r.lenLess!);
}

function decap(ctx: Ctx, m: Mbuf, off: number, r: TunnelHdr, capEnd: number, wireEnd: number, net: number, fix: readonly number[]): void {
  ctx.stats.proto(r.name);
  if (tooDeep(ctx, m)) return;
  inner_input(ctx, innerFrame(m, off + r.hlen, capEnd, wireEnd, fix), r.inner, tunnelNet(ctx, net, r.name, r.id));
}

/**
 * Bytes of the datagram in m's first Mbuf up to `capEnd`: a header is parsed where it was
 * captured, and a reassembled datagram (a chain) holds its first bytes in its first Mbuf.
 */
function chainLen(m: Mbuf, capEnd: number): number {
  return Math.min(m.len, capEnd);
}
