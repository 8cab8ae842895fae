import type { Ctx } from '../ctx.js';
import type { Mbuf } from '../mbuf/mbuf.js';
import { be16 } from '../wire/bytes.js';
import {
  ETHER_HDR_LEN, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_MPLS, ETHERTYPE_MPLS_MCAST, ETHERTYPE_NSH,
  ETHERTYPE_PPPOE_SESSION, isVlanType, MPLS_LABEL_LEN, PPP_IPV4, PPP_IPV6, PPPOE_HDR_LEN, VLAN_TAG_LEN,
} from '../wire/ethernet.js';
import { GPE_NEXT, INNER_ETHER, INNER_IPV4, INNER_IPV6, INNER_MPLS } from '../wire/tunnel.js';
import { ip6_input, ip_input } from './ip-input.js';

/** Deepest VLAN stack followed (QinQinQ and beyond); deeper frames are dropped as unsupported. */
const MAX_VLAN_DEPTH = 8;

/**
 * BSD ether_input(): Ethernet II, then any depth of 802.1Q/802.1ad tags, then the payload. `net`
 * is the network the frame came from: 0 for a captured frame, a tunnel's for one a tunnel carried.
 */
export function ether_input(ctx: Ctx, m: Mbuf, off: number, net = 0, inPw = false): void {
  if (m.len - off < ETHER_HDR_LEN) return ctx.stats.drop('ether.short');
  ethertype_input(ctx, m, off + ETHER_HDR_LEN, be16(m.buf, m.off + off + 12), net, inPw);
}

/**
 * Dispatch on an ethertype found at the link layer (Ethernet, SLL, SLL2, NULL mapped to it).
 * `inPw`: the frame came in an MPLS pseudowire or an NSH, which may not carry MPLS or NSH again (a
 * frame of nothing but nested pseudowires would recurse once per 22 bytes).
 */
export function ethertype_input(ctx: Ctx, m: Mbuf, off: number, type: number, net = 0, inPw = false): void {
  // the VLAN ids, outermost first, folded into one number: each VLAN stack is its own network
  let vlan = net;
  const tags = off;
  for (let depth = 0; isVlanType(type); depth++) {
    if (depth === MAX_VLAN_DEPTH) return ctx.stats.drop('ether.unsupported');
    if (m.len - off < VLAN_TAG_LEN) return ctx.stats.drop('vlan.short');
    ctx.stats.proto('vlan');
    vlan = (Math.imul(vlan, 4099) + (be16(m.buf, m.off + off) & 0xfff) + 1) | 0;
    type = be16(m.buf, m.off + off + 2);
    off += VLAN_TAG_LEN;
  }
  if (vlan !== net && ctx.nets.wants(vlan)) nameVlans(ctx, m, tags, off, vlan, net);
  switch (type) {
    case ETHERTYPE_IPV4:
      return ip_input(ctx, m, off, vlan);
    case ETHERTYPE_IPV6:
      return ip6_input(ctx, m, off, vlan);
    case ETHERTYPE_PPPOE_SESSION:
      return pppoe_input(ctx, m, off, vlan);
    case ETHERTYPE_MPLS:
    case ETHERTYPE_MPLS_MCAST:
      if (inPw) return ctx.stats.drop('mpls.unsupported');
      return mpls_input(ctx, m, off, vlan);
    case ETHERTYPE_NSH:
      if (inPw) return ctx.stats.drop('nsh.unsupported');
      return nsh_input(ctx, m, off, vlan);
    case ETHERTYPE_ARP:
      ctx.stats.proto('arp');
      return;
    default:
      ctx.stats.proto('other');
  }
}

function pppoe_input(ctx: Ctx, m: Mbuf, off: number, vlan: number): void {
  if (m.len - off < PPPOE_HDR_LEN) return ctx.stats.drop('pppoe.short');
  const o = m.off + off;
  if (m.buf[o] !== 0x11 || m.buf[o + 1] !== 0) return ctx.stats.drop('pppoe.badver');
  ctx.stats.proto('pppoe');
  const proto = be16(m.buf, o + 6);
  if (proto === PPP_IPV4) return ip_input(ctx, m, off + PPPOE_HDR_LEN, vlan);
  if (proto === PPP_IPV6) return ip6_input(ctx, m, off + PPPOE_HDR_LEN, vlan);
  ctx.stats.drop('pppoe.unsupported');
}

/** Deepest MPLS label stack followed; deeper is dropped as mpls.unsupported. */
const MAX_MPLS_LABELS = 16;

/**
 * MPLS (RFC 3032): the label stack down to its bottom-of-stack entry, then what it carries, which
 * MPLS does not say: guessed by the first nibble, as tshark does, IPv4 (4), IPv6 (6), or a
 * pseudowire control word (0, RFC 4385) and the Ethernet frame after it (RFC 4448). Labels are
 * not part of the network: they change hop by hop and differ between a connection's directions.
 */
export function mpls_input(ctx: Ctx, m: Mbuf, off: number, vlan: number): void {
  const st = ctx.stats;
  st.proto('mpls');
  for (let n = 0; ; n++) {
    if (n === MAX_MPLS_LABELS) return st.drop('mpls.unsupported');
    if (m.len - off < MPLS_LABEL_LEN) return st.drop('mpls.short');
    const bos = m.buf[m.off + off + 2]! & 1;
    off += MPLS_LABEL_LEN;
    if (bos) break;
  }
  if (m.len - off < 1) return st.drop('mpls.short');
  switch (m.buf[m.off + off]! >> 4) {
    case 4:
      return ip_input(ctx, m, off, vlan);
    case 6:
      return ip6_input(ctx, m, off, vlan);
    case 0:
      if (m.len - off < 4) return st.drop('mpls.short');
      st.proto('mpls.pw');
      return ether_input(ctx, m, off + 4, vlan, true);
    default:
      st.proto('mpls.other');
  }
}

/** NSH headers one packet may carry in a row (NSH in NSH); more is dropped as nsh.unsupported. */
const MAX_NSH = 4;

/**
 * The Network Service Header (RFC 8300) of service function chaining, after Ethernet (0x894f), in
 * GRE or Geneve, or in VXLAN-GPE (next protocol 4): version 0, its length in 4-byte words (2 at
 * least; MD type 1 has exactly 6), MD type, next protocol (IPv4, IPv6, Ethernet, NSH, MPLS: VXLAN-
 * GPE's numbers), then the service path and index and any context headers. Like MPLS labels, the
 * service path is no network: it changes from hop to hop, and the reverse path has another. An
 * Ethernet frame or MPLS stack inside may not carry NSH or MPLS again (inPw, as in a pseudowire).
 */
export function nsh_input(ctx: Ctx, m: Mbuf, off: number, net: number): void {
  const st = ctx.stats;
  st.proto('nsh');
  let next = 0;
  for (let n = 0; ; n++) {
    if (n === MAX_NSH) return st.drop('nsh.unsupported');
    if (m.len - off < 8) return st.drop('nsh.short');
    const o = m.off + off;
    const len = (m.buf[o + 1]! & 0x3f) * 4;
    const md = m.buf[o + 2]! & 0x0f;
    if (m.buf[o]! >> 6 !== 0 || len < 8 || (md === 1 && len !== 24)) return st.drop('nsh.bad');
    if (m.len - off < len) return st.drop('nsh.short');
    next = m.buf[o + 3]!;
    off += len;
    if (next !== 4) break;
  }
  switch (GPE_NEXT[next]) {
    case INNER_IPV4:
      return ip_input(ctx, m, off, net);
    case INNER_IPV6:
      return ip6_input(ctx, m, off, net);
    case INNER_ETHER:
      return ether_input(ctx, m, off, net, true);
    case INNER_MPLS:
      return mpls_input(ctx, m, off, net);
    default:
      st.proto('nsh.other');
  }
}

/** Name the VLAN stack of tags [from, to) the first time a frame of it is seen: "vlan 100.200", outermost first. */
function nameVlans(ctx: Ctx, m: Mbuf, from: number, to: number, vlan: number, net: number): void {
  const ids: number[] = [];
  for (let o = from; o < to; o += VLAN_TAG_LEN) ids.push(be16(m.buf, m.off + o) & 0xfff);
  ctx.nets.set(vlan, ctx.nets.inside(net, `vlan ${ids.join('.')}`));
}
