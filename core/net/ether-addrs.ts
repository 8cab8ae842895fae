import type { Mbuf } from '../mbuf/mbuf.js';
import { LINKTYPE } from '../capture/linktypes.js';

/**
 * The Ethernet destination and source addresses (12 bytes, a view) of the captured frame `m` is or
 * is carried in (a tunnel's packet: PktHdr.encap says where the frame starts; a datagram IP
 * reassembly put together: its first fragment's frame's, copied then), or null: not Ethernet, or
 * no captured frame's bytes to take them from.
 */
export function etherAddrs(m: Mbuf): Uint8Array | null {
  const h = m.hdr;
  if (!h || h.linktype !== LINKTYPE.ETHERNET) return null;
  if (h.reassembled) return h.etherAddrs ?? null;
  if (h.tunnel !== undefined && h.encap === undefined) return null;
  const start = m.off - (h.encap?.at ?? 0);
  return start >= 0 && start + 12 <= m.buf.length ? m.buf.subarray(start, start + 12) : null;
}
