import { LINKTYPE } from '../capture/linktypes.js';
import type { Ctx } from '../ctx.js';
import type { Mbuf } from '../mbuf/mbuf.js';
import { be16 } from '../wire/bytes.js';
import { LOOP_HDR_LEN, loopFamilyToIp, parseLoop } from '../wire/loop.js';
import { SLL2_HDR_LEN, SLL_HDR_LEN } from '../wire/sll.js';
import { ether_input, ethertype_input } from './ether.js';
import { ip_input_any } from './ip-input.js';

/**
 * BSD if_input(): hand a received frame to the decoder of its interface's link type.
 * Unknown link types are a counted drop (`link.unsupported`), not an error.
 */
export function if_input(ctx: Ctx, m: Mbuf): void {
  const lt = m.hdr!.linktype;
  switch (lt) {
    case LINKTYPE.ETHERNET:
      return ether_input(ctx, m, 0);
    case LINKTYPE.RAW:
    case LINKTYPE.RAW_12:
    case LINKTYPE.RAW_14:
      return ip_input_any(ctx, m, 0);
    case LINKTYPE.IPV4:
      return ethertype_input(ctx, m, 0, 0x0800);
    case LINKTYPE.IPV6:
      return ethertype_input(ctx, m, 0, 0x86dd);
    case LINKTYPE.LINUX_SLL:
      if (m.len < SLL_HDR_LEN) return ctx.stats.drop('sll.short');
      return ethertype_input(ctx, m, SLL_HDR_LEN, be16(m.buf, m.off + 14));
    case LINKTYPE.LINUX_SLL2:
      if (m.len < SLL2_HDR_LEN) return ctx.stats.drop('sll2.short');
      return ethertype_input(ctx, m, SLL2_HDR_LEN, be16(m.buf, m.off));
    case LINKTYPE.NULL:
    case LINKTYPE.LOOP:
      return loop_input(ctx, m, lt === LINKTYPE.LOOP || ctx.ifaces[m.hdr!.ifidx]!.bigEndian);
    default:
      ctx.stats.drop('link.unsupported');
  }
}

function loop_input(ctx: Ctx, m: Mbuf, bigEndian: boolean): void {
  const r = parseLoop(m.buf, m.off, m.len, bigEndian);
  if (typeof r === 'string') return ctx.stats.drop(r);
  const v = loopFamilyToIp(r.family);
  if (v === 0) return ctx.stats.drop('null.unsupported');
  ethertype_input(ctx, m, LOOP_HDR_LEN, v === 4 ? 0x0800 : 0x86dd);
}
