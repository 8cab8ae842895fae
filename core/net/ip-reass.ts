import type { Ctx } from '../ctx.js';
import { m_copym, m_pin, m_unpin, Mbuf } from '../mbuf/mbuf.js';
import { be16, be32, put16 } from '../wire/bytes.js';
import { parseIpv6 } from '../wire/ipv6.js';
import { transport } from './ip-input.js';
import { etherAddrs } from './ether-addrs.js';

/** Limits on fragment reassembly (each overflow is a counted drop by name). */
export interface ReassLimits {
  /** Fragments per datagram (BSD ip_maxfragsperpacket). */
  readonly fragsPerDatagram: number;
  /** Datagrams being reassembled at once (BSD ip_maxfragpackets). */
  readonly datagrams: number;
  /** Captured fragment bytes held, over all datagrams. */
  readonly bytes: number;
  /** Seconds of capture time a datagram may wait for its fragments (BSD IPFRAGTTL, 60 s). */
  readonly timeout: number;
}

export const DEFAULT_REASS_LIMITS: ReassLimits = { fragsPerDatagram: 64, datagrams: 1024, bytes: 16 << 20, timeout: 60 };

interface Frag {
  off: number;
  end: number;
  m: Mbuf;
}

interface Datagram {
  frags: Frag[];
  /** Total payload length, known once the last fragment (MF clear) arrived. */
  total: number;
  /** The first fragment's packet and where its IP header and payload start. */
  first: { m: Mbuf; ipOff: number; dataOff: number; proto: number; upper: number; ether: Uint8Array | null } | null;
  bytes: number;
  since: number;
  vlan: number;
}

/**
 * BSD ip_reass() / frag6_input(): IPv4 and IPv6 fragments are queued by reference (views of the
 * capture) until the datagram is whole, then handed to the transport as a new packet whose first
 * Mbuf holds a rebuilt IP header plus the transport header (the only bytes copied, like m_pullup)
 * and whose other Mbufs reference the fragments' payload. Overlaps: the first copy wins.
 */
export class IpReass {
  private readonly q = new Map<string, Datagram>();
  private bytes = 0;

  constructor(private readonly ctx: Ctx, private readonly limits: ReassLimits = DEFAULT_REASS_LIMITS) {}

  input(m: Mbuf, ipOff: number, ipv: 4 | 6, capLen: number, totalLen: number, now: number, vlan = 0): void {
    const st = this.ctx.stats;
    if (capLen < totalLen) return st.drop('ip.fragtruncated');
    this.expire(now);
    const f = ipv === 4 ? this.v4(m, ipOff, totalLen) : this.v6(m, ipOff, totalLen);
    if (!f) return st.drop('ip.fragbad');
    const key = `${vlan} ${f.key}`;
    let d = this.q.get(key);
    if (!d) {
      if (this.q.size >= this.limits.datagrams) return st.drop('ip.fragdropped');
      d = { frags: [], total: -1, first: null, bytes: 0, since: now, vlan };
      this.q.set(key, d);
    }
    if (d.frags.length >= this.limits.fragsPerDatagram || this.bytes + f.len > this.limits.bytes) {
      this.free(key, d);
      return st.drop('ip.fragdropped');
    }
    if (!f.more) d.total = f.off + f.len;
    if (f.off === 0) {
      // the queue holds the first fragment's frame (its headers are rebuilt from its bytes) and each
      // piece, as Mbufs of its own: the reader may make the frame's objects again once its batch is
      // done (FramePool); the datagram's packet header is the last fragment's (deliver)
      if (d.first) m_unpin(d.first.m);
      const fm = new Mbuf(m.buf, m.off, m.len, null, m.ext);
      m_pin(fm);
      // its frame's Ethernet addresses, copied (12 bytes a datagram): the frame is not kept
      const ea = etherAddrs(m);
      d.first = { m: fm, ipOff, dataOff: f.dataOff, proto: f.proto, upper: f.upper, ether: ea ? ea.slice() : null };
    }
    this.insert(d, { off: f.off, end: f.off + f.len, m: new Mbuf(m.buf, m.off + f.dataOff, f.len, null, m.ext) });
    this.bytes += f.len;
    d.bytes += f.len;
    if (d.total >= 0 && d.first && covered(d.frags, d.total)) {
      this.free(key, d);
      st.proto(ipv === 4 ? 'ipv4.reassembled' : 'ipv6.reassembled');
      this.deliver(d, ipv, m);
    }
  }

  private v4(m: Mbuf, ipOff: number, totalLen: number) {
    const b = m.buf;
    const o = m.off + ipOff;
    const hlen = (b[o]! & 0xf) << 2;
    const fo = be16(b, o + 6);
    const key = `4 ${be32(b, o + 12)} ${be32(b, o + 16)} ${be16(b, o + 4)} ${b[o + 9]}`;
    return { key, off: (fo & 0x1fff) << 3, more: (fo & 0x2000) !== 0, len: totalLen - hlen, dataOff: ipOff + hlen, proto: b[o + 9]!, upper: 0 };
  }

  private v6(m: Mbuf, ipOff: number, totalLen: number) {
    const r = parseIpv6(m.buf, m.off + ipOff, totalLen);
    if (typeof r === 'string' || !r.frag) return null;
    const fh = r.exts.find((e) => e.type === 44)!;
    const next = m.buf[m.off + ipOff + fh.off]!;
    const key = `6 ${Buffer.from(r.src).toString('hex')} ${Buffer.from(r.dst).toString('hex')} ${r.frag.id}`;
    // the first fragment's headers after the fragment header belong to the reassembled payload
    const upper = r.frag.fragOff === 0 ? r.upperOff - r.frag.partOff : 0;
    return { key, off: r.frag.fragOff, more: r.frag.mf, len: totalLen - r.frag.partOff, dataOff: ipOff + r.frag.partOff,
      proto: r.frag.fragOff === 0 ? r.proto : next, upper };
  }

  /** First copy wins: the new fragment fills only the holes between those already queued. */
  private insert(d: Datagram, f: Frag): void {
    const out: Frag[] = [];
    let cur = f.off;
    for (const g of d.frags) {
      if (g.end <= cur || g.off >= f.end) continue;
      if (g.off > cur) out.push(cut(f, cur, g.off));
      if (g.off < f.end && g.end > f.off) this.ctx.stats.note('ip.fragoverlap');
      cur = Math.max(cur, g.end);
    }
    if (cur < f.end) out.push(cut(f, cur, f.end));
    for (const g of out) m_pin(g.m);
    d.frags.push(...out);
    d.frags.sort((a, b) => a.off - b.off);
  }

  private deliver(d: Datagram, ipv: 4 | 6, last: Mbuf): void {
    const first = d.first!;
    const hdrLen = first.dataOff - first.ipOff;
    const ipHdr = ipv === 4 ? hdrLen : 40;
    const pull = Math.min(d.total, first.upper + 60);
    const head = new Uint8Array(ipHdr + pull);
    const fb = first.m.buf;
    const fo = first.m.off + first.ipOff;
    head.set(fb.subarray(fo, fo + ipHdr), 0);
    if (ipv === 4) {
      put16(head, 2, ipHdr + d.total);
      put16(head, 6, 0);
    } else {
      put16(head, 4, d.total);
      head[6] = 44; // keep a hint of the fragment header; the transport offset is given explicitly
    }
    let payload: Mbuf | null = null;
    let tail: Mbuf | null = null;
    for (const g of d.frags) {
      const n = m_copym(g.m, 0, g.end - g.off);
      if (!n) continue;
      if (tail) tail.next = n;
      else payload = n;
      tail = n;
      while (tail.next) tail = tail.next;
    }
    const pulled = new Uint8Array(pull);
    copyChain(payload, pulled);
    head.set(pulled, ipHdr);
    const nm = new Mbuf(head, 0, head.length, { ...last.hdr!, caplen: ipHdr + d.total, origLen: ipHdr + d.total, reassembled: true });
    // the first fragment's frame's Ethernet addresses, for names that carry them (extract's %E/%e)
    if (first.ether) nm.hdr!.etherAddrs = first.ether;
    else delete nm.hdr!.etherAddrs;
    nm.next = m_copym(payload, pull, d.total - pull);
    transport(this.ctx, nm, 0, ipHdr + first.upper, first.proto, ipv, ipHdr + d.total, ipHdr + d.total, d.vlan);
  }

  /** Every Mbuf chain the queue holds a reference to (for the zone's reference check). */
  held(f: (m: Mbuf) => void): void {
    for (const d of this.q.values()) {
      for (const g of d.frags) f(g.m);
      if (d.first) f(d.first.m);
    }
  }

  private free(key: string, d: Datagram): void {
    for (const g of d.frags) m_unpin(g.m);
    if (d.first) m_unpin(d.first.m);
    this.q.delete(key);
    this.bytes -= d.bytes;
  }

  /** Drop datagrams older than the timeout (Map order is arrival order). */
  private expire(now: number): void {
    for (const [k, d] of this.q) {
      if (now - d.since <= this.limits.timeout) break;
      this.free(k, d);
      this.ctx.stats.drop('ip.fragtimeout');
    }
  }
}

function cut(f: Frag, a: number, b: number): Frag {
  return { off: a, end: b, m: new Mbuf(f.m.buf, f.m.off + (a - f.off), b - a, null, f.m.ext) };
}

function covered(frags: readonly Frag[], total: number): boolean {
  let cur = 0;
  for (const g of frags) {
    if (g.off > cur) return false;
    cur = Math.max(cur, g.end);
  }
  return cur >= total;
}

function copyChain(m: Mbuf | null, out: Uint8Array): void {
  let o = 0;
  for (; m && o < out.length; m = m.next) {
    const k = Math.min(m.len, out.length - o);
    out.set(m.buf.subarray(m.off, m.off + k), o);
    o += k;
  }
}
