import { LINKTYPE } from '../capture/linktypes.js';
import { m_captured, Mbuf, type PktHdr } from '../mbuf/mbuf.js';
import { be16, put16 } from '../wire/bytes.js';
import { checksum, fold, fold16, sum16 } from '../wire/checksum.js';
import { ETHERTYPE_PPPOE_SESSION, isVlanType } from '../wire/ethernet.js';
import { IPPROTO_TCP, IPPROTO_UDP } from '../wire/ipv4.js';
import { ENCAP_GRE_CSUM, ENCAP_IP4, ENCAP_IP6, ENCAP_LEN16, ENCAP_UDP } from '../wire/tunnel.js';

/**
 * The link and IP headers of a captured frame, kept (copied: a few dozen bytes) so that the stack
 * can send segments on the same path: same link type and interface, same MAC addresses, VLAN tags,
 * loopback family or cooked header, same IP addresses, TTL, TOS, options and extension headers.
 * BSD: the route and inpcb a real ip_output() would use, reduced to what a capture shows.
 */
export class HeaderTemplate {
  private constructor(
    /** Bytes [0, thOff) of the frame: link header, IP header (with options / extension headers). */
    readonly hdr: Uint8Array,
    readonly ipOff: number,
    readonly ipv: 4 | 6,
    readonly linktype: number,
    readonly ifidx: number,
    /** Offset in `hdr` of a PPPoE session length field to fix, or -1. */
    private readonly pppoeLenAt: number,
    /** Next IPv4 ID to use for a segment sent from nothing (`ipId: 'next'`). */
    private nextId: number,
    /** A tunnel's outer fields to set, outermost first (PktHdr.encap's triples, offsets in `hdr`). */
    private readonly encap: readonly number[],
  ) {}

  /**
   * The template of a frame whose IP header is at `ipOff` and TCP header at `thOff` (offsets from
   * `m.off`). Null for frames that are not one contiguous captured frame (reassembled fragments).
   * A tunnel's packet takes the whole captured frame it lies in: its segments go out encapsulated
   * as it came (BSD: gif_output and gre_output put the same outer headers in front again).
   */
  static of(m: Mbuf, ipOff: number, thOff: number, ipv: 4 | 6): HeaderTemplate | null {
    const h = m.hdr;
    if (!h || !m_captured(m) || thOff > m.len) return null;
    const at = h.encap?.at ?? 0;
    const fix = h.encap?.fix ?? NO_FIX;
    const hdr = m.buf.slice(m.off - at, m.off + thOff);
    // a PPPoE session header is the outermost IP's link header
    const linkEnd = fix.length ? fix[1]! : at + ipOff;
    return new HeaderTemplate(hdr, at + ipOff, ipv, h.linktype, h.ifidx, pppoeLenAt(hdr, h.linktype, linkEnd), ipv === 4 ? (be16(hdr, at + ipOff + 4) + 1) & 0xffff : 0, fix);
  }

  /**
   * BSD ip_output() for one TCP segment: a new frame made of a fresh header buffer (these headers
   * with lengths, IPv4 ID and checksums set, then `th`, the TCP header whose checksum is filled in
   * here) chained in front of the payload's own bytes, which are referenced, never copied.
   * `ipId` 'keep' keeps the template's IPv4 ID (a rewritten captured frame); 'next' takes a new one.
   */
  frame(th: Uint8Array, payload: Mbuf | null, plen: number, ts: PktHdr, ipId: 'keep' | 'next'): Mbuf {
    const t = this.hdr.length;
    const buf = new Uint8Array(t + th.length);
    buf.set(this.hdr, 0);
    buf.set(th, t);
    const ipLen = t - this.ipOff + th.length + plen;
    const ip = this.ipOff;
    if (this.ipv === 4) {
      put16(buf, ip + 2, ipLen);
      if (ipId === 'next') {
        put16(buf, ip + 4, this.nextId);
        this.nextId = (this.nextId + 1) & 0xffff;
      }
      put16(buf, ip + 6, be16(buf, ip + 6) & 0x4000); // DF kept; never a fragment
      put16(buf, ip + 10, 0);
      put16(buf, ip + 10, checksum(buf, ip, (buf[ip]! & 0x0f) << 2));
    } else put16(buf, ip + 4, ipLen - 40);
    const frameLen = t + th.length + plen;
    // the PPPoE payload: everything after its 6-byte header (the PPP protocol field, the IP datagram)
    if (this.pppoeLenAt >= 0) put16(buf, this.pppoeLenAt, frameLen - this.pppoeLenAt - 2);
    const tcpLen = th.length + plen;
    let acc = this.ipv === 4 ? sum16(buf, ip + 12, 8, IPPROTO_TCP + tcpLen) : sum16(buf, ip + 8, 32, IPPROTO_TCP + tcpLen);
    put16(buf, t + 16, 0);
    acc = sum16(buf, t, th.length, acc);
    // the payload's sum, as from an even offset (a TCP header is whole 32-bit words)
    const paySum = chainSum(payload, plen);
    put16(buf, t + 16, fold(acc + paySum));
    if (this.encap.length) this.encapsulate(buf, frameLen, paySum);
    const len = buf.length + plen;
    const hdr: PktHdr = { caplen: len, origLen: len, tsSec: ts.tsSec, tsNsec: ts.tsNsec, linktype: this.linktype, ifidx: this.ifidx, frameNo: 0 };
    const head = new Mbuf(buf, 0, buf.length, hdr);
    let tail = head;
    for (let p = payload, left = plen; p && left > 0; p = p.next) {
      const k = Math.min(p.len, left);
      if (k > 0) tail = tail.next = new Mbuf(p.buf, p.off, k, null, p.ext);
      left -= k;
    }
    return head;
  }

  /**
   * A tunnel's outer headers for a frame of `frameLen` bytes (its first `buf.length` in `buf`, the
   * payload after them summing to `paySum`): innermost first, since an outer checksum covers the
   * fields set inside it. IPv4: total length and header checksum (DF kept, never a fragment); IPv6:
   * payload length; UDP: length and checksum (never 0: RFC 768 reserves it for "none"); GRE: its
   * checksum when the captured one had one; PPTP, GTP-U, L2TP: their length fields.
   */
  private encapsulate(buf: Uint8Array, frameLen: number, paySum: number): void {
    const e = this.encap;
    // the sum of bytes [o, frameLen): the header buffer's part, then the payload's (swapped after an odd part)
    const rangeSum = (o: number, acc: number) => {
      const s = sum16(buf, o, buf.length - o, acc);
      return s + ((buf.length - o) & 1 ? ((paySum & 0xff) << 8) | (paySum >>> 8) : paySum);
    };
    for (let i = e.length - 3; i >= 0; i -= 3) {
      const o = e[i + 1]!;
      switch (e[i]) {
        case ENCAP_IP4:
          put16(buf, o + 2, frameLen - o);
          put16(buf, o + 6, be16(buf, o + 6) & 0x4000);
          put16(buf, o + 10, 0);
          put16(buf, o + 10, checksum(buf, o, (buf[o]! & 0x0f) << 2));
          break;
        case ENCAP_IP6:
          put16(buf, o + 4, frameLen - o - 40);
          break;
        case ENCAP_UDP: {
          const ip = e[i + 2]!;
          const len = frameLen - o;
          put16(buf, o + 4, len);
          put16(buf, o + 6, 0);
          const pseudo = buf[ip]! >> 4 === 4 ? sum16(buf, ip + 12, 8, IPPROTO_UDP + len) : sum16(buf, ip + 8, 32, IPPROTO_UDP + len);
          put16(buf, o + 6, fold(rangeSum(o, pseudo)) || 0xffff);
          break;
        }
        case ENCAP_GRE_CSUM:
          put16(buf, o + 4, 0);
          put16(buf, o + 4, fold(rangeSum(o, 0)));
          break;
        case ENCAP_LEN16:
          put16(buf, o, frameLen - o - e[i + 2]!);
          break;
      }
    }
  }
}

const NO_FIX: readonly number[] = [];

/** The one's-complement sum of the first `plen` bytes of a chain, as from an even offset (RFC 1071 §2(B): a piece at an odd offset sums byte-swapped). */
function chainSum(payload: Mbuf | null, plen: number): number {
  let acc = 0;
  let odd = false;
  for (let p = payload, left = plen; p && left > 0; p = p.next) {
    const k = Math.min(p.len, left);
    let s = fold16(sum16(p.buf, p.off, k));
    if (odd) s = ((s & 0xff) << 8) | (s >>> 8);
    acc += s;
    odd = odd !== ((k & 1) === 1);
    left -= k;
  }
  return fold16(acc);
}

/** Where an Ethernet frame's PPPoE session header keeps its length, or -1 without one. */
function pppoeLenAt(hdr: Uint8Array, linktype: number, ipOff: number): number {
  if (linktype !== LINKTYPE.ETHERNET) return -1;
  let o = 12;
  while (o + 2 <= ipOff && isVlanType(be16(hdr, o))) o += 4;
  // PPPoE header: ver/type, code, session id, length (which counts the PPP protocol field too)
  return o + 2 <= ipOff && be16(hdr, o) === ETHERTYPE_PPPOE_SESSION ? o + 6 : -1;
}
