import test from 'ava';
import fc from 'fast-check';
import { runs } from '../helpers/fuzz.js';
import { CaptureSession } from '../../core/capture/session.js';
import { Mbuf } from '../../core/mbuf/mbuf.js';
import { type Socket, soreceive_stream } from '../../core/socket/socket.js';
import type { SocketApp } from '../../core/socket/reader.js';
import type { Connection } from '../../core/net/in-pcb.js';
import { Stack } from '../../core/stack.js';
import { TH_ACK, TH_FIN, TH_PUSH, TH_RST, TH_SYN } from '../../core/wire/tcp.js';
import { tcpFrame } from '../helpers/build.js';
import { MAX_TUNNEL_DEPTH } from '../../core/net/tunnel.js';

const LINKTYPES = [0, 1, 12, 101, 108, 113, 228, 229, 276, 147];

function session(): CaptureSession {
  const s = new CaptureSession();
  for (const lt of LINKTYPES) s.addIface({ linktype: lt, snaplen: 65535, tsresol: 6, tsoffset: 0, bigEndian: false, name: undefined, file: 'fuzz' });
  return s;
}

test('fuzz: random bytes as frames of every link type: no exception, every frame counted', (t) => {
  fc.assert(fc.property(fc.array(fc.tuple(fc.nat(LINKTYPES.length - 1), fc.uint8Array({ maxLength: 200 })), { maxLength: 50 }), (frames) => {
    const stack = new Stack(session(), { debug: true });
    stack.input(frames.map(([i, b], n) => new Mbuf(b, 0, b.length,
      { caplen: b.length, origLen: b.length + (n % 3), tsSec: 1000 + n, tsNsec: 0, linktype: LINKTYPES[i]!, ifidx: i, frameNo: n + 1 })));
    stack.finish();
    return stack.stats.frames === frames.length;
  }), runs(500));
  t.pass();
});

/** Collects what each socket reads, with the offsets gaps imply. */
class Truth implements SocketApp {
  readonly got = new Map<number, Uint8Array[]>();
  attach(c: Connection): void {
    const rd = (so: Socket) => {
      for (;;) {
        const r = soreceive_stream(so, 13);
        if (!r.len) return;
        const l = this.got.get(c.stream) ?? [];
        l.push(...r.chunk.map((v) => Uint8Array.from(v)));
        this.got.set(c.stream, l);
      }
    };
    c.server.so.upcall = rd;
    c.client.so.upcall = () => {};
  }
  detach(): void {}
}

test('fuzz: random segment streams (overlap, duplicates, reordering, wraparound, the receiver\'s ACKs anywhere): delivered bytes are the true bytes at their offsets', (t) => {
  // runs in which an ACK skipped a hole (the property must have covered that path)
  let ackSkips = 0;
  fc.assert(fc.property(
    fc.uint8Array({ minLength: 1, maxLength: 400 }),
    // a piece of the stream, and maybe the server's ACK of some offset after it (holes it passes are skipped)
    fc.array(fc.tuple(fc.nat(399), fc.integer({ min: 1, max: 80 }), fc.option(fc.nat(440), { nil: null })), { minLength: 1, maxLength: 40 }),
    fc.constantFrom(0, 1000, 0x7fffffff, 0xffffff00, 0xfffffff0),
    fc.boolean(), fc.boolean(), fc.boolean(),
    (truth, pieces, isn, withSyn, withFin, withRst) => {
      const C = { src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 80 };
      const segs: Uint8Array[] = [];
      if (withSyn) segs.push(tcpFrame({ ...C, seq: isn, flags: TH_SYN }));
      for (const [off, len, ack] of pieces) {
        const o = off % truth.length;
        const payload = truth.subarray(o, Math.min(truth.length, o + len));
        segs.push(tcpFrame({ ...C, seq: (isn + 1 + o) >>> 0, flags: TH_ACK | TH_PUSH, payload }));
        if (ack !== null) segs.push(tcpFrame({ src: C.dst, dst: C.src, sport: C.dport, dport: C.sport, seq: 5000, ack: (isn + 1 + ack) >>> 0, flags: TH_ACK }));
      }
      if (withFin) segs.push(tcpFrame({ ...C, seq: (isn + 1 + truth.length) >>> 0, flags: TH_FIN | TH_ACK }));
      if (withRst) segs.splice(segs.length >> 1, 0, tcpFrame({ ...C, seq: (isn + 1 + (truth.length >> 1)) >>> 0, flags: TH_RST }));
      const s = session();
      const app = new Truth();
      const stack = new Stack(s, { app, debug: true });
      stack.input(segs.map((b, n) => new Mbuf(b, 0, b.length, { caplen: b.length, origLen: b.length, tsSec: 1000 + n, tsNsec: 0, linktype: 1, ifidx: 1, frameNo: n + 1 })));
      stack.finish();
      const c = stack.finished[0]!;
      if (stack.stats.notes['tcp.reass.acked']) ackSkips++;
      const got = Buffer.concat(app.got.get(0) ?? []);
      if (got.length !== c.c2s.bytes) return false;
      // with a SYN the stream starts at ISN+1; without, at the first data segment's offset
      const base = withSyn ? 0 : pieces[0]![0] % truth.length;
      // walk the delivered bytes, skipping each recorded gap: every byte must be the truth's
      let pos = base;
      let gi = 0;
      for (let i = 0; i <= got.length; i++) {
        while (gi < c.c2s.gaps.length && c.c2s.gaps[gi]![0] === i) pos += c.c2s.gaps[gi++]![1];
        if (i === got.length) break;
        if (pos >= truth.length || got[i] !== truth[pos]) return false;
        pos++;
      }
      return true;
    }), runs(1500));
  t.true(ackSkips > 0, `${ackSkips} runs skipped a hole at an ACK`);
});

test('fuzz: random segment streams whose copies of a byte differ (overlap, retransmission with other bytes, reordering, wraparound, the receiver\'s ACKs anywhere), policy first: every delivered byte is the first copy sent of it, at its offset', (t) => {
  let conflicted = 0;
  fc.assert(fc.property(
    // a piece of the stream with bytes of its own (two letters: copies are often the same, often not)
    fc.array(fc.tuple(fc.nat(299), fc.stringMatching(/^[ab]{1,60}$/), fc.option(fc.nat(340), { nil: null })), { minLength: 1, maxLength: 40 }),
    fc.constantFrom(0, 1000, 0x7fffffff, 0xffffff00, 0xfffffff0),
    fc.boolean(), fc.boolean(),
    (pieces, isn, withSyn, withRst) => {
      const C = { src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 80 };
      const segs: Uint8Array[] = [];
      if (withSyn) segs.push(tcpFrame({ ...C, seq: isn, flags: TH_SYN }));
      // the first copy of each offset sent (in frame order), which `first` must deliver
      const first: Array<number | undefined> = [];
      for (const [o, p, ack] of pieces) {
        for (let k = 0; k < p.length; k++) first[o + k] ??= p.charCodeAt(k);
        segs.push(tcpFrame({ ...C, seq: (isn + 1 + o) >>> 0, flags: TH_ACK | TH_PUSH, payload: p }));
        if (ack !== null) segs.push(tcpFrame({ src: C.dst, dst: C.src, sport: C.dport, dport: C.sport, seq: 5000, ack: (isn + 1 + ack) >>> 0, flags: TH_ACK }));
      }
      if (withRst) segs.splice(segs.length >> 1, 0, tcpFrame({ ...C, seq: (isn + 1 + 150) >>> 0, flags: TH_RST }));
      const app = new Truth();
      const stack = new Stack(session(), { app, debug: true, policy: 'first' });
      stack.input(segs.map((b, n) => new Mbuf(b, 0, b.length, { caplen: b.length, origLen: b.length, tsSec: 1000 + n, tsNsec: 0, linktype: 1, ifidx: 1, frameNo: n + 1 })));
      stack.finish();
      const c = stack.finished[0]!;
      if (c.c2s.overlapConflicts) conflicted++;
      const got = Buffer.concat(app.got.get(0) ?? []);
      if (got.length !== c.c2s.bytes) return false;
      let pos = withSyn ? 0 : pieces[0]![0];
      let gi = 0;
      for (let i = 0; i <= got.length; i++) {
        while (gi < c.c2s.gaps.length && c.c2s.gaps[gi]![0] === i) pos += c.c2s.gaps[gi++]![1];
        if (i === got.length) break;
        if (got[i] !== first[pos]) return false;
        pos++;
      }
      return true;
    }), runs(1500));
  t.true(conflicted > 0, `${conflicted} runs counted a conflict (the property must have covered copies that differ)`);
});

test('fuzz: random bytes behind the tunnel headers sockcap opens (IP in IP, GRE, VXLAN, VXLAN-GPE, Geneve, GTP-U, L2TP, Teredo; outer IPv4 or IPv6), nested, under random MPLS label stacks: no exception, every frame counted, the stack\'s invariants hold', (t) => {
  const outer = (inner: Uint8Array, kind: number, v6: boolean): Uint8Array => {
    // kind 0: IP proto 4, 1: IP proto 41, 2: GRE, 3: UDP to VXLAN's port, 4: Geneve's, 5: GTP-U's, 6: L2TP's, 7: VXLAN-GPE's, 8: Teredo's
    const udp = kind >= 3;
    const body = udp ? new Uint8Array(8 + inner.length) : inner;
    if (udp) {
      const port = [4789, 6081, 2152, 1701, 4790, 3544][kind - 3]!;
      body[2] = port >> 8;
      body[3] = port & 0xff;
      body[4] = (body.length >> 8) & 0xff;
      body[5] = body.length & 0xff;
      body.set(inner, 8);
    }
    const f = tcpFrame({ src: v6 ? '2001:db8::1' : '10.0.0.1', dst: v6 ? '2001:db8::2' : '10.0.0.2', payload: body });
    const ipOff = 14;
    const proto = [4, 41, 47, 17, 17, 17, 17, 17, 17][kind]!;
    // the TCP header is replaced by the tunnel: the IP packet is cut to its header and the body
    const hl = v6 ? 40 : 20;
    const out = new Uint8Array(14 + hl + body.length);
    out.set(f.subarray(0, 14 + hl));
    out.set(body, 14 + hl);
    if (v6) {
      out[ipOff + 6] = proto;
      out[ipOff + 4] = (body.length >> 8) & 0xff;
      out[ipOff + 5] = body.length & 0xff;
    } else {
      out[ipOff + 9] = proto;
      out[ipOff + 2] = ((hl + body.length) >> 8) & 0xff;
      out[ipOff + 3] = (hl + body.length) & 0xff;
    }
    return out;
  };
  // a layer: its kind, outer IPv6 or IPv4, a valid tunnel header or random bytes in its place
  const layer = fc.tuple(fc.nat(8), fc.boolean(), fc.option(fc.uint8Array({ maxLength: 24 }), { freq: 3 }));
  /** The tunnel header a kind puts in front of an IP packet whose first byte is `first`. */
  const valid = (kind: number, first: number): number[] => {
    const v6 = first >> 4 === 6;
    const eth = [0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 4, v6 ? 0x86 : 0x08, v6 ? 0xdd : 0x00];
    if (kind === 2) return [0, 0, v6 ? 0x86 : 0x08, v6 ? 0xdd : 0x00];
    if (kind === 3) return [0x08, 0, 0, 0, 0, 0, 1, 0, ...eth];
    if (kind === 4) return [0, 0, 0x65, 0x58, 0, 0, 2, 0, ...eth];
    // GTP-U G-PDU with a sequence number and one extension header (its length field is not checked)
    if (kind === 5) return [0x36, 0xff, 0, 0, 0, 0, 0, 9, 0, 1, 0, 0x85, 1, 0x10, 9, 0];
    // L2TP data with its length bit, then PPP with address and control
    if (kind === 6) return [0x40, 0x02, 0, 0, 0, 1, 0, 2, 0xff, 0x03, 0, v6 ? 0x57 : 0x21];
    // VXLAN-GPE with IP as its next protocol
    if (kind === 7) return [0x0c, 0, 0, v6 ? 2 : 1, 0, 0, 3, 0];
    // Teredo: an authentication indicator (no id, no value) and an origin indication (IPv6 or not, what follows decides)
    if (kind === 8) return [0, 1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0x3c, 0xc2, 0x3f, 0xff, 0xfd, 0xfe];
    return [];
  };
  let opened = 0;
  const each = { gtp: 0, l2tp: 0, 'vxlan-gpe': 0, teredo: 0 };
  let deepest = 0;
  let labelled = 0;
  // MPLS label stack entries in front of the outermost IP packet (random bytes: any label, any bottom-of-stack bit)
  const labels = fc.array(fc.uint8Array({ minLength: 4, maxLength: 4 }), { maxLength: 20 });
  fc.assert(fc.property(fc.array(fc.tuple(fc.array(layer, { minLength: 1, maxLength: 6 }), fc.uint8Array({ maxLength: 120 }), labels), { maxLength: 30 }), (frames) => {
    const stack = new Stack(session(), { debug: true });
    const built = frames.map(([layers, tail, mpls]) => {
      // innermost first: random bytes, each layer's random header bytes in front, then its outer header
      let p: Uint8Array = tail;
      for (const [kind, v6, junk] of layers) p = outer(Uint8Array.from([...(junk ?? valid(kind, p[0] ?? 0)), ...p]), kind, v6).subarray(14);
      const stackBytes = mpls.flatMap((l) => [...l]);
      const f = new Uint8Array(14 + stackBytes.length + p.length);
      const type = mpls.length ? [0x88, 0x47] : p[0]! >> 4 === 6 ? [0x86, 0xdd] : [0x08, 0x00];
      f.set([0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, ...type]);
      f.set(stackBytes, 14);
      f.set(p, 14 + stackBytes.length);
      return f;
    });
    // and, after them, one packet under two MPLS labels in MAX_TUNNEL_DEPTH + 1 valid tunnels (random
    // nesting seldom gets that deep), so that every run counts both
    let deep: Uint8Array = tcpFrame({}).subarray(14);
    for (let i = 0; i <= MAX_TUNNEL_DEPTH; i++) deep = outer(deep, 0, false).subarray(14);
    built.push(Uint8Array.from([0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0x88, 0x47, 0, 1, 0, 64, 0, 1, 1, 64, ...deep]));
    // and one TCP segment in each of GTP-U, L2TP, VXLAN-GPE and Teredo (IPv6), so that every run opens each
    for (const kind of [5, 6, 7, 8]) {
      const seg = (kind === 8 ? tcpFrame({ src: '2001:db8::1', dst: '2001:db8::2' }) : tcpFrame({})).subarray(14);
      built.push(Uint8Array.from(outer(Uint8Array.from([...valid(kind, seg[0]!), ...seg]), kind, false)));
    }
    stack.input(built.map((b, n) => new Mbuf(b, 0, b.length, { caplen: b.length, origLen: b.length, tsSec: 1000 + n, tsNsec: 0, linktype: 1, ifidx: 1, frameNo: n + 1 })));
    stack.finish();
    for (const k of ['ipip', 'gre', 'vxlan', 'vxlan-gpe', 'geneve', 'gtp', 'l2tp', 'teredo']) opened += stack.stats.protocols[k] ?? 0;
    for (const k of ['gtp', 'l2tp', 'vxlan-gpe', 'teredo'] as const) each[k] += stack.stats.protocols[k] ?? 0;
    labelled += stack.stats.protocols.mpls ?? 0;
    deepest = Math.max(deepest, stack.stats.drops['tunnel.depth'] ?? 0);
    return stack.stats.frames === built.length;
  }), runs(300));
  t.true(opened > 100, `${opened} tunnel headers opened`);
  const n = runs(300).numRuns;
  t.true(each.gtp >= n && each.l2tp >= n && each['vxlan-gpe'] >= n && each.teredo >= n, `${each.gtp} GTP-U, ${each.l2tp} L2TP, ${each['vxlan-gpe']} VXLAN-GPE and ${each.teredo} Teredo headers opened in ${n} runs`);
  t.true(deepest > 0, 'the packet nested too deep was dropped as tunnel.depth');
  t.true(labelled > runs(300).numRuns / 2, `${labelled} MPLS label stacks followed`);
});
