import type { Ctx } from '../ctx.js';
import type { Mbuf } from '../mbuf/mbuf.js';
import { be16 } from '../wire/bytes.js';
import { checkIpv4, ipv4BadSum, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from '../wire/ipv4.js';
import { parseIpv6 } from '../wire/ipv6.js';
import { ip_tunnel_input, udp_tunnel_input } from './tunnel.js';

/**
 * A frame shorter on the wire than its IP length says. BSD ip_input drops it (ips_tooshort); a
 * capture would lose the bytes it does hold, so the datagram is taken as ending where the frame
 * ends (noted as `ip.tooshort`), and reassembly records what is missing as a hole. Returns the
 * length to use, or -1 when not even the headers fit.
 */
function tooShort(st: Ctx['stats'], totalLen: number, wireAvail: number, hdrLen: number): number {
  if (totalLen <= wireAvail) return totalLen;
  if (wireAvail < hdrLen) return -1;
  st.note('ip.tooshort');
  return wireAvail;
}

/** The snaplen cut the frame: a header it ends inside was whole on the wire (`*.truncated`, not `*.short`). */
const cut = (m: Mbuf): boolean => m.hdr!.caplen < m.hdr!.origLen;

/** Raw IP link types: the version nibble picks IPv4 or IPv6. */
export function ip_input_any(ctx: Ctx, m: Mbuf, off: number): void {
  if (m.len - off < 1) return ctx.stats.drop('ip.short');
  const v = m.buf[m.off + off]! >> 4;
  if (v === 4) return ip_input(ctx, m, off);
  if (v === 6) return ip6_input(ctx, m, off);
  ctx.stats.drop('ip.badvers');
}

/**
 * BSD ip_input(): check the IPv4 header once, trim link-layer padding past the total length,
 * count a bad header checksum (dropping only with verifyChecksums), send fragments to ip_reass and
 * the rest to the transport. A datagram cut by the snaplen goes up with what was captured.
 */
export function ip_input(ctx: Ctx, m: Mbuf, off: number, vlan = 0): void {
  const st = ctx.stats;
  const n = m.len - off;
  const o = m.off + off;
  const hlen = checkIpv4(m.buf, o, n);
  if (typeof hlen !== 'number') return st.drop(hlen === 'ip.short' && cut(m) ? 'ip.truncated' : hlen);
  st.ipv4++;
  const wireAvail = m.hdr!.origLen - (m.hdr!.caplen - n);
  const totalLen = tooShort(st, be16(m.buf, o + 2), wireAvail, hlen);
  if (totalLen < 0) return st.drop('ip.badlen');
  if (ipv4BadSum(m.buf, o, hlen)) {
    if (ctx.opts.verifyChecksums) return st.drop('ip.badsum');
    st.note('ip.badsum');
  }
  const frag = be16(m.buf, o + 6);
  if (frag & 0x3fff) {
    st.proto('ipv4.fragment');
    return ctx.ipReass(m, off, 4, Math.min(n, totalLen), totalLen, vlan);
  }
  transport(ctx, m, off, off + hlen, m.buf[o + 9]!, 4, Math.min(n, totalLen), totalLen, vlan);
}

/** BSD ip6_input(): the fixed header, the extension chain, then fragments or the transport. */
export function ip6_input(ctx: Ctx, m: Mbuf, off: number, vlan = 0): void {
  const st = ctx.stats;
  const n = m.len - off;
  const r = parseIpv6(m.buf, m.off + off, n);
  if (typeof r === 'string') return st.drop(r === 'ip6.short' && cut(m) ? 'ip6.truncated' : r);
  st.ipv6++;
  if (r.payloadLen === 0 && r.exts.length > 0 && r.exts[0]!.type === 0) return st.drop('ip6.jumbo');
  const wireAvail = m.hdr!.origLen - (m.hdr!.caplen - n);
  const totalLen = tooShort(st, 40 + r.payloadLen, wireAvail, r.upperOff);
  if (totalLen < 0) return st.drop('ip6.badlen');
  if (r.frag) {
    st.proto('ipv6.fragment');
    return ctx.ipReass(m, off, 6, Math.min(n, totalLen), totalLen, vlan);
  }
  transport(ctx, m, off, off + r.upperOff, r.proto, 6, Math.min(n, totalLen), totalLen, vlan);
}

/**
 * Deliver to the transport protocol. `capLen` is the datagram's captured length, `totalLen` its
 * length on the wire.
 */
export function transport(ctx: Ctx, m: Mbuf, ipOff: number, thOff: number, proto: number, ipv: 4 | 6,
  capLen: number, totalLen: number, vlan = 0): void {
  const st = ctx.stats;
  switch (proto) {
    case IPPROTO_TCP:
      st.tcp++;
      return ctx.tcpInput(m, ipOff, thOff, ipv, ipOff + capLen, ipOff + totalLen, vlan);
    case IPPROTO_UDP:
      st.udp++;
      udp_tunnel_input(ctx, m, ipOff, thOff, ipv, ipOff + capLen, ipOff + totalLen, vlan);
      return;
    case IPPROTO_ICMP:
    case IPPROTO_ICMPV6:
      st.proto(ipv === 4 ? 'icmp' : 'icmp6');
      return;
    default:
      if (!ip_tunnel_input(ctx, m, ipOff, thOff, proto, ipv, ipOff + capLen, ipOff + totalLen, vlan)) st.proto(`ip.proto${proto}`);
  }
}
