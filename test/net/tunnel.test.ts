import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CaptureSession } from '../../core/capture/session.js';
import { readCaptures } from '../../core/capture/reader.js';
import { MAX_TUNNEL_DEPTH } from '../../core/net/tunnel.js';
import { MAX_NET_NAMES, NetNames } from '../../core/net/net-names.js';
import { put16, put32 } from '../../core/wire/bytes.js';
import { checksum } from '../../core/wire/checksum.js';
import { emitEthernet, ETHERTYPE_IPV4, ETHERTYPE_IPV6 } from '../../core/wire/ethernet.js';
import { emitIpv4 } from '../../core/wire/ipv4.js';
import { emitIpv6 } from '../../core/wire/ipv6.js';
import { parseIp } from '../../core/wire/bytes.js';
import { conversation, MAC_A, MAC_B, pcapFile, type RecSpec } from '../helpers/build.js';
import { cli, tmp } from '../helpers/cli.js';
import { Conv, copyRelay, Timeline } from '../helpers/conv.js';
import { badFrames, fields } from '../helpers/model.js';
import { fixture, HAS_TSHARK } from '../helpers/paths.js';
import { when } from '../helpers/skip.js';

/** The Ethernet frames of a capture (its records' bytes). */
async function framesOf(file: string): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const b of readCaptures([{ name: file }], new CaptureSession())) for (const m of b) out.push(Uint8Array.from(m.buf.subarray(m.off, m.off + m.len)));
  return out;
}

/** An IPv6 conversation: handshake, 3,000 bytes one way and 700 the other in several segments, FINs. */
const v6Conversation = (): Uint8Array[] => conversation('2001:db8::1', '2001:db8::2');

interface Outer {
  /** Outer addresses (the family follows them). */
  src?: string;
  dst?: string;
  /** Outer IPv4 fragment fields (for a tunnel carried in fragments). */
  id?: number;
  mf?: boolean;
  fragOff?: number;
  /** The datagram's length when this is a fragment of it (default: this payload's). */
}

/** Ethernet + an outer IPv4 or IPv6 header with protocol `proto` + `payload`. */
function outerIp(payload: Uint8Array, proto: number, o: Outer = {}): Uint8Array {
  const src = parseIp(o.src ?? '192.0.2.1')!;
  const dst = parseIp(o.dst ?? '192.0.2.2')!;
  const v6 = src.length === 16;
  const iplen = v6 ? 40 : 20;
  const out = new Uint8Array(14 + iplen + payload.length);
  emitEthernet({ dst: MAC_B, src: MAC_A, ethertype: v6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4 }, out, 0);
  if (v6) emitIpv6({ trafficClass: 0, flowLabel: 0, payloadLen: payload.length, nextHeader: proto, hopLimit: 64, src, dst }, out, 14);
  else emitIpv4({ tos: 0, totalLen: iplen + payload.length, id: o.id ?? 7, df: false, mf: o.mf ?? false, fragOff: o.fragOff ?? 0, ttl: 64, proto, checksum: 0, src, dst, options: new Uint8Array(0) }, out, 14);
  out.set(payload, 14 + iplen);
  return out;
}

const ip = (f: Uint8Array) => f.subarray(14);
const v6of = (f: Uint8Array) => f[12] === 0x86 && f[13] === 0xdd;
const cat = (...parts: Uint8Array[]) => Uint8Array.from(Buffer.concat(parts));

/** A GRE header (RFC 2784/2890): flags C, K, S as asked, protocol type, then checksum, key, sequence. */
function greHdr(proto: number, o: { key?: number; seq?: number; csum?: boolean } = {}, body?: Uint8Array): Uint8Array {
  const h = new Uint8Array(4 + (o.csum ? 4 : 0) + (o.key !== undefined ? 4 : 0) + (o.seq !== undefined ? 4 : 0));
  h[0] = (o.csum ? 0x80 : 0) | (o.key !== undefined ? 0x20 : 0) | (o.seq !== undefined ? 0x10 : 0);
  put16(h, 2, proto);
  let at = 4;
  if (o.csum) at += 4;
  if (o.key !== undefined) put32(h, (at += 4) - 4, o.key);
  if (o.seq !== undefined) put32(h, at, o.seq);
  if (o.csum && body) put16(h, 4, checksum(cat(h, body), 0, h.length + body.length));
  return h;
}

/** UDP header (checksum 0: allowed over IPv4) to `dport` (from `sport`: by default one of 49152-50151). */
function udp(dport: number, body: Uint8Array, sport = 49152 + (body.length % 1000)): Uint8Array {
  const h = new Uint8Array(8);
  put16(h, 0, sport);
  put16(h, 2, dport);
  put16(h, 4, 8 + body.length);
  return cat(h, body);
}

/** True for a frame sent from the lower address to the higher (one direction of each conversation). */
const fromLower = (f: Uint8Array) => {
  const [o, n] = v6of(f) ? [14 + 8, 16] : [14 + 12, 4];
  return Buffer.compare(f.subarray(o, o + n), f.subarray(o + n, o + 2 * n)) < 0;
};

/**
 * GTP-U (3GPP TS 29.281) carrying `pkt` as a G-PDU, to UDP 2152; with `ext`, a sequence number and
 * a PDU Session Container extension header (5G: the QFI). The TEID is the receiver's: one per direction.
 */
function gtpU(pkt: Uint8Array, teid: number, ext: boolean, type = 0xff): Uint8Array {
  const opt = ext ? Uint8Array.of(0, 7, 0, 0x85, 1, 0x10, 9, 0) : new Uint8Array(0); // seq 7, N-PDU 0, next 0x85; length 1 word, PDU type 1 (UL), QFI 9, next none
  const h = new Uint8Array(8);
  h[0] = 0x30 | (ext ? 0x06 : 0); // version 1, GTP, E and S with ext
  h[1] = type;
  put16(h, 2, opt.length + pkt.length);
  put32(h, 4, teid);
  return cat(h, opt, pkt);
}

/** L2TPv2 (RFC 2661) data message: flags L, S and O as asked (an offset pad of 2 bytes), tunnel 0x1111, session 0x2222, then `ppp`. */
function l2tp(ppp: Uint8Array, o: { len?: boolean; seq?: boolean; offset?: boolean; control?: boolean } = {}): Uint8Array {
  const h = new Uint8Array(6 + (o.len ? 2 : 0) + (o.seq ? 4 : 0) + (o.offset ? 4 : 0));
  h[0] = (o.control ? 0x80 : 0) | (o.len ? 0x40 : 0) | (o.seq ? 0x08 : 0) | (o.offset ? 0x02 : 0);
  h[1] = 0x02;
  let at = 2;
  if (o.len) put16(h, (at += 2) - 2, h.length + ppp.length);
  put16(h, at, 0x1111);
  put16(h, at + 2, 0x2222);
  at += 4;
  if (o.seq) at += 4;
  if (o.offset) put16(h, at, 2);
  return cat(h, ppp);
}

/** Each tunnel, wrapping one Ethernet frame of the inner conversation; `proto`: what the report counts; `decodeAs`: what tshark must be told to decode it. */
const TUNNELS: Array<{ name: string; proto: string; wrap: (f: Uint8Array, i: number) => Uint8Array; decodeAs?: string[] }> = [
  { name: 'IPv4 in IPv4 (proto 4) / IPv6 in IPv4 (proto 41)', proto: 'ipip', wrap: (f) => outerIp(ip(f), v6of(f) ? 41 : 4) },
  { name: 'IP in IPv6 (over an IPv6 outer header)', proto: 'ipip', wrap: (f) => outerIp(ip(f), v6of(f) ? 41 : 4, { src: '2001:db8:ff::1', dst: '2001:db8:ff::2' }) },
  { name: 'GRE, no options', proto: 'gre', wrap: (f) => outerIp(cat(greHdr(v6of(f) ? 0x86dd : 0x0800), ip(f)), 47) },
  { name: 'GRE with checksum, key and sequence number', proto: 'gre', wrap: (f, i) => { const b = ip(f); return outerIp(cat(greHdr(v6of(f) ? 0x86dd : 0x0800, { key: 0xdeadbeef, seq: i, csum: true }, b), b), 47); } },
  { name: 'GRE transparent Ethernet bridging (gretap, NVGRE)', proto: 'gre', wrap: (f) => outerIp(cat(greHdr(0x6558, { key: 5 << 8 }), f), 47) },
  { name: 'ERSPAN type I', proto: 'erspan', wrap: (f) => outerIp(cat(greHdr(0x88be), f), 47) },
  {
    name: 'ERSPAN type II', proto: 'erspan', wrap: (f, i) => {
      const e = new Uint8Array(8);
      put16(e, 0, 0x1000 | 100); // version 1, VLAN 100
      put16(e, 2, 0x0000 | 42); // session 42
      return outerIp(cat(greHdr(0x88be, { seq: i }), e, f), 47);
    },
  },
  {
    name: 'ERSPAN type III with its platform subheader', proto: 'erspan', wrap: (f, i) => {
      const e = new Uint8Array(20);
      put16(e, 0, 0x2000 | 100); // version 2, VLAN 100
      put16(e, 2, 42);
      put32(e, 4, i * 1000); // timestamp
      e[11] = 0x01; // O: an 8-byte platform specific subheader follows
      return outerIp(cat(greHdr(0x22eb, { seq: i }), e, f), 47);
    },
  },
  {
    name: 'PPTP (GRE version 1, PPP)', proto: 'pptp', wrap: (f, i) => {
      const ppp = i % 2 ? Uint8Array.of(0xff, 0x03, 0x00, v6of(f) ? 0x57 : 0x21) : Uint8Array.of(v6of(f) ? 0x57 : 0x21); // every other one with ACFC and PFC
      const body = cat(ppp, ip(f));
      const h = new Uint8Array(12);
      h[0] = 0x30; // K, S
      h[1] = 0x01; // version 1
      put16(h, 2, 0x880b);
      put16(h, 4, body.length);
      put16(h, 6, 0x1234); // call id
      put32(h, 8, i);
      return outerIp(cat(h, body), 47);
    },
  },
  {
    name: 'VXLAN', proto: 'vxlan', wrap: (f) => {
      const v = new Uint8Array(8);
      v[0] = 0x08;
      put32(v, 4, 5001 << 8);
      return outerIp(udp(4789, cat(v, f)), 17);
    },
  },
  {
    name: 'VXLAN over IPv6', proto: 'vxlan', wrap: (f) => {
      const v = new Uint8Array(8);
      v[0] = 0x08;
      put32(v, 4, 5002 << 8);
      const u = udp(4789, cat(v, f));
      // over IPv6 the UDP checksum is not optional: computed over the pseudo-header
      const o = outerIp(u, 17, { src: '2001:db8:ff::1', dst: '2001:db8:ff::2' });
      put16(o, 54 + 6, checksum(cat(o.subarray(22, 54), Uint8Array.of(0, 0, u.length >> 8, u.length & 255, 0, 0, 0, 17), o.subarray(54)), 0, 40 + u.length) || 0xffff);
      return o;
    },
  },
  {
    name: 'VXLAN-GPE (IP as its next protocol, or Ethernet)', proto: 'vxlan-gpe', wrap: (f, i) => {
      const v = new Uint8Array(8);
      v[0] = 0x0c; // I, P
      v[3] = i % 2 ? 3 : v6of(f) ? 2 : 1;
      put32(v, 4, 6001 << 8);
      return outerIp(udp(4790, cat(v, i % 2 ? f : ip(f))), 17);
    },
  },
  {
    name: 'Geneve with an option', proto: 'geneve', wrap: (f) => {
      const g = new Uint8Array(16);
      g[0] = 2; // two option words
      put16(g, 2, 0x6558);
      put32(g, 4, 77 << 8);
      put16(g, 8, 0x0101); // option class
      g[10] = 0x01; // type
      g[11] = 1; // one word of data
      return outerIp(udp(6081, cat(g, f)), 17);
    },
  },
  // TEIDs and L2TP's ids are the receiver's: they differ by direction, and the connection is still one
  { name: 'GTP-U', proto: 'gtp', wrap: (f) => outerIp(udp(2152, gtpU(ip(f), fromLower(f) ? 0x1000 : 0x2000, false), 2152), 17) },
  { name: 'GTP-U with a sequence number and a PDU Session Container', proto: 'gtp', wrap: (f) => outerIp(udp(2152, gtpU(ip(f), fromLower(f) ? 0x1001 : 0x2001, true)), 17) },
  {
    name: 'L2TP (PPP; with and without length, sequence numbers and offset; answered from port 1701)', proto: 'l2tp', wrap: (f, i) => {
      const ppp = cat(Uint8Array.of(0xff, 0x03, 0x00, v6of(f) ? 0x57 : 0x21), ip(f));
      const body = l2tp(ppp, { len: i % 2 === 1, seq: i % 3 === 1, offset: i % 5 === 1 });
      return outerIp(fromLower(f) ? udp(1701, body, 1701 + 1000) : udp(2701, body, 1701), 17);
    },
  },
];

/** Ethernet with MPLS labels (the last one bottom of stack), then `payload`. */
function mpls(labels: readonly number[], payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(14 + 4 * labels.length + payload.length);
  emitEthernet({ dst: MAC_B, src: MAC_A, ethertype: 0x8847 }, out, 0);
  labels.forEach((l, i) => put32(out, 14 + 4 * i, ((l << 12) | (i === labels.length - 1 ? 0x100 : 0) | 64) >>> 0));
  out.set(payload, 14 + 4 * labels.length);
  return out;
}

/** An MPLS label stack entry (TTL 64), bottom of stack unless `more`. */
function label(l: number, more = false): Uint8Array {
  const h = new Uint8Array(4);
  put32(h, 0, ((l << 12) | (more ? 0 : 0x100) | 64) >>> 0);
  return h;
}

/**
 * A Network Service Header (RFC 8300), TTL 63, service path 42, index 255: MD type 2 with one 4-byte
 * context TLV (4 words), or MD type 1 with its 16 bytes of fixed context (6 words).
 */
function nsh(next: number, md: 1 | 2 = 2): Uint8Array {
  const words = md === 1 ? 6 : 4;
  const h = new Uint8Array(words * 4);
  h[0] = 63 >> 2;
  h[1] = ((63 & 3) << 6) | words;
  h[2] = md;
  h[3] = next;
  put32(h, 4, (42 << 8) | 255);
  if (md === 2) {
    put16(h, 8, 0x0000); // metadata class
    h[10] = 1; // type
    h[11] = 4; // 4 bytes of metadata
    put32(h, 12, 0xcafe);
  } else put32(h, 8, 0x11111111);
  return h;
}

const nextOf = (f: Uint8Array) => (v6of(f) ? 2 : 1);

TUNNELS.push(
  { name: 'MPLS in GRE (RFC 4023), two labels', proto: 'gre', wrap: (f) => outerIp(cat(greHdr(0x8847), label(300, true), label(17), ip(f)), 47) },
  {
    name: 'VXLAN-GPE carrying MPLS', proto: 'vxlan-gpe', wrap: (f) => {
      const v = new Uint8Array(8);
      v[0] = 0x0c;
      v[3] = 5;
      put32(v, 4, 6002 << 8);
      return outerIp(udp(4790, cat(v, label(1000), ip(f))), 17);
    },
  },
  {
    name: 'VXLAN-GPE carrying NSH (MD type 2) carrying IP, or Ethernet', proto: 'nsh', wrap: (f, i) => {
      const v = new Uint8Array(8);
      v[0] = 0x0c;
      v[3] = 4;
      put32(v, 4, 6003 << 8);
      return outerIp(udp(4790, cat(v, i % 2 ? cat(nsh(3), f) : cat(nsh(nextOf(f)), ip(f)))), 17);
    },
  },
  {
    name: 'Geneve carrying MPLS', proto: 'geneve', wrap: (f) => {
      const g = new Uint8Array(8);
      put16(g, 2, 0x8847);
      put32(g, 4, 78 << 8);
      return outerIp(udp(6081, cat(g, label(2000), ip(f))), 17);
    },
  },
  { name: 'NSH (MD type 1) in GRE', proto: 'nsh', wrap: (f) => outerIp(cat(greHdr(0x894f), nsh(nextOf(f), 1), ip(f)), 47) },
  { name: 'NSH after Ethernet, carrying MPLS', proto: 'nsh', wrap: (f) => cat(f.subarray(0, 12), Uint8Array.of(0x89, 0x4f), nsh(5), label(77), ip(f)) },
  // labels differ by direction (as label switching makes them): still one connection
  { name: 'MPLS, two labels', proto: 'mpls', wrap: (f) => mpls([1000 + (f[14 + 9]! & 1), 16], ip(f)) },
  // MPLS does not say what it carries: tshark guesses IP by the first nibble, and is told the pseudowire
  { name: 'MPLS pseudowire (control word, Ethernet)', proto: 'mpls', wrap: (f) => mpls([2000], cat(new Uint8Array(4), f)), decodeAs: ['-d', 'mpls.label==2000,pwethcw'] },
);

/** What a replay says of each connection: addresses, bytes and hashes of both directions. */
function streams(json: string): unknown[] {
  return JSON.parse(json).connections.map((c: { client: string; server: string; state: string; c2s: { bytes: number; sha256: string; gaps: unknown[] }; s2c: { bytes: number; sha256: string; gaps: unknown[] } }) =>
    ({ client: c.client, server: c.server, state: c.state, c2s: [c.c2s.bytes, c.c2s.sha256, c.c2s.gaps], s2c: [c.s2c.bytes, c.s2c.sha256, c.s2c.gaps] }));
}

async function replay(file: string): Promise<{ s: Record<string, any>; streams: unknown[] }> {
  const r = await cli(['replay', file, '--json', '--hash', '-q']);
  if (r.code !== 0) throw new Error(r.stderr);
  return { s: JSON.parse(r.stdout), streams: streams(r.stdout) };
}

test('TCP in every tunnel (IP in IP, GRE with its options, gretap, ERSPAN I-III, PPTP, VXLAN, VXLAN-GPE, Geneve, GTP-U, L2TP), under MPLS (labels, pseudowire, in GRE, Geneve and VXLAN-GPE) and NSH is reassembled into the streams the same traffic gives without the tunnel', async (t) => {
  const dir = tmp(t);
  const inner = [...await framesOf(fixture('tcp/smtp.pcap')), ...v6Conversation()];
  const plainFile = join(dir, 'plain.pcap');
  writeFileSync(plainFile, pcapFile(inner.map((data) => ({ data }))));
  const plain = await replay(plainFile);
  t.is(plain.streams.length, 2);
  for (const tu of TUNNELS) {
    const file = join(dir, `${tu.proto}.pcap`);
    writeFileSync(file, pcapFile(inner.map((f, i) => ({ data: tu.wrap(f, i) }))));
    const got = await replay(file);
    t.deepEqual(got.streams, plain.streams, tu.name);
    t.is(got.s.protocols[tu.proto], inner.length, `${tu.name}: every frame counted as ${tu.proto}`);
    t.deepEqual(got.s.drops, plain.s.drops, `${tu.name}: no drop the plain capture has not`);
    t.is(got.s.protocols.tcp, plain.s.protocols.tcp, `${tu.name}: the inner segments counted as TCP`);
  }
});

when(HAS_TSHARK, 'needs tshark')('the tunnelled captures the tests build are what tshark decodes: no malformed frame, no bad checksum, and the same TCP segments inside as in the plain capture', async (t) => {
  const dir = tmp(t);
  const inner = [...await framesOf(fixture('tcp/smtp.pcap')), ...v6Conversation()];
  const plainFile = join(dir, 'plain.pcap');
  writeFileSync(plainFile, pcapFile(inner.map((data) => ({ data }))));
  const segs = (file: string, decodeAs: string[] = []) => fields(file, ['tcp.srcport', 'tcp.dstport', 'tcp.seq', 'tcp.len'], 'tcp', decodeAs).map((r) => r.join(' '));
  const want = segs(plainFile);
  t.true(want.length > 50);
  t.true(badFrames(plainFile).length > 0, 'smtp.pcap has frames with bad checksums (offload), kept as they are');
  for (const tu of TUNNELS) {
    const file = join(dir, `${tu.proto}-${TUNNELS.indexOf(tu)}.pcap`);
    writeFileSync(file, pcapFile(inner.map((f, i) => ({ data: tu.wrap(f, i) }))));
    t.deepEqual(badFrames(file, tu.decodeAs), badFrames(plainFile), `${tu.name}: tshark finds nothing malformed, and the same bad inner checksums as the plain capture has`);
    t.deepEqual(segs(file, tu.decodeAs), want, `${tu.name}: tshark sees the same segments inside`);
  }
});

test('a tunnel is a network of its own: the same 4-tuple outside it and in two VXLAN networks is three connections; the two directions of one connection meet through different tunnel endpoints', async (t) => {
  const dir = tmp(t);
  const conv = v6Conversation();
  const vx = (f: Uint8Array, vni: number, src = '192.0.2.1') => {
    const v = new Uint8Array(8);
    v[0] = 0x08;
    put32(v, 4, vni << 8);
    return outerIp(udp(4789, cat(v, f)), 17, { src });
  };
  const file = join(dir, 'nets.pcap');
  writeFileSync(file, pcapFile([...conv, ...conv.map((f) => vx(f, 1)), ...conv.map((f) => vx(f, 2))].map((data) => ({ data }))));
  const three = await replay(file);
  t.is(three.streams.length, 3);
  t.deepEqual(three.s.connections.map((c: { net?: string }) => c.net), [undefined, 'vxlan vni 1', 'vxlan vni 2'], 'each connection names its network');
  // the other kinds' names: what their ids are
  for (const [tu, net] of [['GRE with checksum, key and sequence number', `gre key ${0xdeadbeef}`], ['ERSPAN type II', 'erspan session 42'],
    ['ERSPAN type III with its platform subheader', 'erspan session 42'], ['PPTP (GRE version 1, PPP)', `pptp call ${0x1234}`],
    ['Geneve with an option', 'geneve vni 77'], ['IP in IPv6 (over an IPv6 outer header)', 'ipip'],
    ['GTP-U with a sequence number and a PDU Session Container', 'gtp'], ['VXLAN-GPE (IP as its next protocol, or Ethernet)', 'vxlan-gpe vni 6001'], ['L2TP (PPP; with and without length, sequence numbers and offset; answered from port 1701)', 'l2tp']] as const) {
    const f = join(dir, 'named.pcap');
    writeFileSync(f, pcapFile(conv.map((fr, i) => ({ data: TUNNELS.find((k) => k.name === tu)!.wrap(fr, i) }))));
    t.deepEqual((await replay(f)).s.connections.map((c: { net?: string }) => c.net), [net], tu);
  }
  t.true(three.streams.every((s) => JSON.stringify(s) === JSON.stringify(three.streams[0])), 'each the whole conversation');
  // client to server from VTEP .1, server to client from VTEP .9: one connection
  const asym = join(dir, 'asym.pcap');
  writeFileSync(asym, pcapFile(conv.map((f) => ({ data: vx(f, 1, f[14 + 8 + 15] === 1 ? '192.0.2.1' : '192.0.2.9') }))));
  const one = await replay(asym);
  t.deepEqual(one.streams, [three.streams[0]]);
});

test(`tunnels nest to ${MAX_TUNNEL_DEPTH} deep; a packet deeper than that is dropped as tunnel.depth, and a truncated or unknown tunnel header or MPLS label stack is a counted drop`, async (t) => {
  const dir = tmp(t);
  const conv = v6Conversation();
  const nest = (f: Uint8Array, depth: number) => {
    let p = ip(f);
    for (let i = 0; i < depth; i++) p = ip(outerIp(p, i === 0 ? 41 : 4));
    return outerIp(p, 4);
  };
  const plain = join(dir, 'plain.pcap');
  writeFileSync(plain, pcapFile(conv.map((data) => ({ data }))));
  const want = (await replay(plain)).streams;
  const ok = join(dir, 'ok.pcap');
  writeFileSync(ok, pcapFile(conv.map((f) => ({ data: nest(f, MAX_TUNNEL_DEPTH - 1) }))));
  t.deepEqual((await replay(ok)).streams, want, `${MAX_TUNNEL_DEPTH} tunnels deep`);
  const deep = join(dir, 'deep.pcap');
  writeFileSync(deep, pcapFile(conv.map((f) => ({ data: nest(f, MAX_TUNNEL_DEPTH) }))));
  const d = await replay(deep);
  t.deepEqual(d.streams, []);
  t.is(d.s.drops['tunnel.depth'], conv.length);
  // GRE cut inside its key, the R bit of RFC 1701, an unknown GRE version, VXLAN cut short
  const bad: RecSpec[] = [
    { data: outerIp(greHdr(0x0800, { key: 1 }).subarray(0, 6), 47) },
    { data: outerIp(Uint8Array.of(0x40, 0, 0x08, 0, 0, 0, 0, 0), 47) },
    { data: outerIp(Uint8Array.of(0, 2, 0x08, 0), 47) },
    { data: outerIp(udp(4789, Uint8Array.of(0x08, 0, 0)), 17) },
    { data: outerIp(udp(4789, Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 1, 2)), 17) }, // no I flag: plain UDP
    { data: mpls(Array.from({ length: 17 }, (_, i) => i + 16), ip(conv[0]!)) }, // 17 labels
    { data: mpls([16], new Uint8Array(0)).subarray(0, 16) }, // a label cut short
    { data: mpls([16], cat(new Uint8Array(4), mpls([17], ip(conv[0]!)))) }, // a pseudowire carrying MPLS again
    { data: mpls([16], Uint8Array.of(0x51, 0, 0, 0)) }, // neither IP nor a control word
    { data: outerIp(udp(2152, gtpU(ip(conv[0]!), 1, true).subarray(0, 14)), 17) }, // GTP-U cut inside its extension header
    { data: outerIp(udp(2152, Uint8Array.of(0x34, 0xff, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0x85, 0, 0, 0, 0)), 17) }, // an extension header of length 0
    { data: outerIp(udp(2152, gtpU(ip(conv[0]!), 1, false, 1)), 17) }, // an echo request: GTP-U, nothing inside
    { data: outerIp(udp(2152, Uint8Array.of(0x48, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0)), 17) }, // GTPv2: plain UDP
    { data: outerIp(udp(1701, l2tp(new Uint8Array(0), { len: true, seq: true }).subarray(0, 9)), 17) }, // L2TP cut inside its sequence numbers
    { data: outerIp(udp(1701, l2tp(new Uint8Array(12), { len: true, seq: true, control: true })), 17) }, // a control message: L2TP, no PPP inside
    { data: outerIp(udp(1701, Uint8Array.of(0, 3, 0, 0, 0, 1, 0, 0)), 17) }, // L2TPv3: plain UDP
    { data: outerIp(udp(4790, Uint8Array.of(0x1c, 0, 0, 1, 0, 0, 1, 0, 0x45)), 17) }, // VXLAN-GPE version 1: plain UDP
    { data: outerIp(udp(4790, Uint8Array.of(0x0c, 0, 0, 0x7f, 0, 0, 1, 0, 0, 0)), 17) }, // VXLAN-GPE carrying an experiment's protocol: not opened
  ];
  const badFile = join(dir, 'bad.pcap');
  writeFileSync(badFile, pcapFile(bad));
  const b = await replay(badFile);
  t.deepEqual(b.s.drops, { 'gre.short': 1, 'gre.unsupported': 2, 'vxlan.short': 1, 'mpls.unsupported': 2, 'mpls.short': 1, 'gtp.short': 1, 'gtp.bad': 1, 'l2tp.short': 1 });
  t.is(b.s.protocols['mpls.other'], 1);
  t.is(b.s.protocols.gtp, 1, 'the echo request (a header dropped is counted as its drop only, as every tunnel\'s)');
  t.is(b.s.protocols.l2tp, 1, 'the control message');
  t.is(b.s.protocols['tunnel.other'], 3, 'the echo request, the control message and the experiment carry nothing sockcap opens');
  t.is(b.s.protocols['vxlan-gpe'], 1);
  t.is(b.s.protocols.udp, 11, 'every UDP datagram, GTPv2, L2TPv3 and VXLAN-GPE version 1 left as UDP among them');
  t.is(b.s.frames, bad.length);
});

test('NSH: a header cut short is nsh.short, a version other than 0 or a length under 2 words (or not 6 with MD type 1) nsh.bad, more than 4 in a row or NSH inside NSH\'s Ethernet nsh.unsupported; an unknown next protocol is nsh.other; 4 in a row are opened', async (t) => {
  const dir = tmp(t);
  const conv = v6Conversation();
  const inner = ip(conv[3]!);
  const gre = (...parts: Uint8Array[]) => outerIp(cat(greHdr(0x894f), ...parts), 47);
  const v1 = nsh(2);
  v1[0] |= 0x40; // version 1
  const short = nsh(2);
  short[1] = (short[1]! & 0xc0) | 1; // one word
  const md1 = nsh(2, 1);
  md1[1] = (md1[1]! & 0xc0) | 4; // MD type 1 of 4 words
  const bad: RecSpec[] = [
    { data: gre(nsh(2).subarray(0, 6)) },
    { data: gre(nsh(2).subarray(0, 12)) }, // its context header cut
    { data: gre(v1, inner) },
    { data: gre(short, inner) },
    { data: gre(md1, inner) },
    { data: gre(nsh(4), nsh(4), nsh(4), nsh(4), nsh(2), inner) }, // five in a row
    { data: gre(nsh(0x7f), inner) },
    { data: gre(nsh(3), conv[3]!.subarray(0, 12), Uint8Array.of(0x89, 0x4f), nsh(2), inner) }, // NSH, Ethernet, NSH again
    { data: gre(nsh(4), nsh(4), nsh(4), nsh(2), inner) }, // four: opened
  ];
  const file = join(dir, 'nsh.pcap');
  writeFileSync(file, pcapFile(bad));
  const b = await replay(file);
  t.deepEqual(b.s.drops, { 'nsh.short': 2, 'nsh.bad': 3, 'nsh.unsupported': 2 });
  t.is(b.s.protocols.nsh, bad.length, 'NSH counted once a packet (the one refused behind Ethernet is its drop only)');
  t.is(b.s.protocols['nsh.other'], 1);
  t.is(b.s.protocols.tcp, 1, 'the segment behind four headers');
});

test('a tunnel carried in IP fragments: the reassembled outer datagram is opened like any other (its inner packet made contiguous first)', async (t) => {
  const dir = tmp(t);
  const conv = v6Conversation();
  const recs: RecSpec[] = [];
  conv.forEach((f, i) => {
    const gre = cat(greHdr(0x86dd, { key: 9 }), ip(f));
    if (gre.length <= 200) return recs.push({ data: outerIp(gre, 47, { id: 100 + i }) });
    // fragments of 64 bytes, sent last first
    const frags: Uint8Array[] = [];
    for (let o = 0; o < gre.length; o += 64) frags.push(outerIp(gre.subarray(o, o + 64), 47, { id: 100 + i, fragOff: o, mf: o + 64 < gre.length }));
    for (const fr of frags.reverse()) recs.push({ data: fr });
  });
  const file = join(dir, 'frag.pcap');
  writeFileSync(file, pcapFile(recs));
  const plain = join(dir, 'plain.pcap');
  writeFileSync(plain, pcapFile(conv.map((data) => ({ data }))));
  const got = await replay(file);
  t.true(got.s.protocols['ipv4.reassembled'] >= 4);
  t.deepEqual(got.streams, (await replay(plain)).streams);
});

test('-w writes tunnelled frames as captured', async (t) => {
  const dir = tmp(t);
  const inner = await framesOf(fixture('splice/relay-lo.pcap'));
  const file = join(dir, 'gre.pcap');
  writeFileSync(file, pcapFile(inner.map((f) => ({ data: outerIp(cat(greHdr(0x6558), f), 47) }))));
  const out = join(dir, 'out.pcap');
  const r = await cli(['replay', file, '-w', out, '-q', '--json']);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(readFileSync(out).subarray(24), readFileSync(file).subarray(24), 'the same records');
  t.is(JSON.parse(r.stdout).connections.length, 2);
});

/** tshark's view of every TCP segment in a capture, and the frames whose outer or inner checksums are wrong. */
function tsharkView(file: string, decodeAs: string[] = []): { segs: string[]; badOuter: string[] } {
  const segs = fields(file, ['frame.number', 'tcp.srcport', 'tcp.dstport', 'tcp.seq', 'tcp.ack', 'tcp.len', 'tcp.flags'], 'tcp', decodeAs).map((r) => r.join(' '));
  const out = spawnSync('tshark', ['-r', file, '-n', ...decodeAs, '-o', 'udp.check_checksum:TRUE', '-o', 'ip.check_checksum:TRUE', '-T', 'fields', '-e', 'frame.number',
    '-Y', '_ws.malformed || _ws.expert.severity == "error" || udp.checksum.status == 0 || gre.checksum.status == 0 || ip.checksum.status == 0'], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`tshark: ${out.stderr}`);
  return { segs, badOuter: out.stdout.split('\n').filter(Boolean) };
}

when(HAS_TSHARK, 'needs tshark')('a splice of tunnelled connections writes its segments in the tunnel they came in (outer lengths and IPv4, UDP and GRE checksums set again): tshark sees the segments the same splice writes without the tunnel, and no bad outer header', async (t) => {
  const dir = tmp(t);
  const inner = await framesOf(fixture('splice/relay-lo.pcap'));
  const plain = join(dir, 'plain.pcap');
  writeFileSync(plain, pcapFile(inner.map((data) => ({ data }))));
  const spliceOf = async (file: string) => {
    const out = `${file}.spliced.pcap`;
    const r = await cli(['splice', file, '--splice', '0:c2s=1:c2s', '--splice', '1:s2c=0:s2c', '-w', out, '-q', '--json']);
    t.is(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    return { out, s, frames: s.framesOut as number };
  };
  const want = await spliceOf(plain);
  const wantView = tsharkView(want.out);
  t.true(wantView.segs.length > 20);
  const kinds = TUNNELS.filter((k) => ['GRE with checksum, key and sequence number', 'GRE transparent Ethernet bridging (gretap, NVGRE)', 'IP in IPv6 (over an IPv6 outer header)', 'PPTP (GRE version 1, PPP)', 'VXLAN', 'VXLAN over IPv6', 'ERSPAN type III with its platform subheader', 'MPLS, two labels', 'MPLS pseudowire (control word, Ethernet)',
    'GTP-U with a sequence number and a PDU Session Container', 'L2TP (PPP; with and without length, sequence numbers and offset; answered from port 1701)',
    'MPLS in GRE (RFC 4023), two labels', 'VXLAN-GPE carrying NSH (MD type 2) carrying IP, or Ethernet', 'NSH after Ethernet, carrying MPLS'].includes(k.name));
  t.is(kinds.length, 14);
  for (const tu of kinds) {
    const file = join(dir, `${TUNNELS.indexOf(tu)}.pcap`);
    writeFileSync(file, pcapFile(inner.map((f, i) => ({ data: tu.wrap(f, i) }))));
    const got = await spliceOf(file);
    t.deepEqual(got.s.splices.map((x: { spliced: number; integrity: string }) => [x.spliced, x.integrity]), want.s.splices.map((x: { spliced: number; integrity: string }) => [x.spliced, x.integrity]), tu.name);
    const view = tsharkView(got.out, tu.decodeAs);
    t.deepEqual(view.segs, wantView.segs, `${tu.name}: the same segments, frame for frame`);
    t.deepEqual(view.badOuter, [], `${tu.name}: outer headers well formed`);
    if (tu.proto !== 'vxlan' && !tu.name.startsWith('GRE with checksum')) continue;
    // (VXLAN over IPv4 and IPv6, GRE with its checksum)
    // the oracle does see a wrong UDP or GRE checksum: a byte of the last frame's payload changed
    const b = readFileSync(got.out);
    b[b.length - 1] ^= 0x40;
    writeFileSync(`${got.out}.bad`, b);
    t.deepEqual(tsharkView(`${got.out}.bad`, tu.decodeAs).badOuter, [String(got.frames)], `${tu.name}: a changed byte is seen`);
  }
});

when(HAS_TSHARK, 'needs tshark')('fuse of tunnelled loopback connections: the same fusion and the same segments, rewritten in the tunnel they came in, as without the tunnel', async (t) => {
  const dir = tmp(t);
  const inner = await framesOf(fixture('splice/relay-lo.pcap'));
  const fuseOf = async (file: string) => {
    const out = `${file}.fused.pcap`;
    const r = await cli(['fuse', file, '--fuse-seq', 'advance', '-w', out, '-q', '--json']);
    t.is(r.code, 0, r.stderr);
    return { out, s: JSON.parse(r.stdout) };
  };
  const plain = join(dir, 'plain.pcap');
  writeFileSync(plain, pcapFile(inner.map((data) => ({ data }))));
  const want = await fuseOf(plain);
  t.is(want.s.connections.length, 2);
  const wantView = tsharkView(want.out);
  for (const tu of TUNNELS.filter((k) => k.proto === 'vxlan' || k.name.startsWith('GRE with checksum'))) {
    const file = join(dir, `${tu.proto}.pcap`);
    writeFileSync(file, pcapFile(inner.map((f, i) => ({ data: tu.wrap(f, i) }))));
    const got = await fuseOf(file);
    // the same records, each naming the tunnel it came in
    t.deepEqual(got.s.connections, want.s.connections.map((c: object) => ({ ...c, net: ({ 'VXLAN': 'vxlan vni 5001', 'VXLAN over IPv6': 'vxlan vni 5002' } as Record<string, string>)[tu.name] ?? `gre key ${0xdeadbeef}` })), tu.name);
    const view = tsharkView(got.out);
    t.deepEqual(view.segs, wantView.segs, `${tu.name}: the same segments`);
    t.deepEqual(view.badOuter, [], `${tu.name}: outer headers well formed`);
  }
});

test('network names are kept up to their cap (a capture of a million GRE keys must not grow memory with it): past it a network is named by its number', (t) => {
  t.is(MAX_NET_NAMES, 65536);
  const n = new NetNames(2);
  t.true(n.wants(5));
  n.set(5, 'vlan 10');
  t.false(n.wants(5), 'named already');
  n.set(6, 'vxlan vni 1');
  t.false(n.wants(7), 'full');
  n.set(7, 'gre key 3');
  t.is(n.get(5), 'vlan 10');
  t.is(n.get(6), 'vxlan vni 1');
  t.is(n.get(7), 'net 7');
  t.is(n.get(-1), 'net ffffffff');
  t.is(n.get(0), undefined, 'the capture\'s own network has no name');
  t.is(n.inside(5, 'gre key 3'), 'vlan 10 gre key 3');
  t.is(n.inside(0, 'gre key 3'), 'gre key 3');
});

/**
 * Teredo (RFC 4380) around one IPv6 frame: to UDP 3544 from the lower address, from 3544 back;
 * frame i alone (i % 3 == 0), after an origin indication (1), or after an authentication indicator
 * and an origin indication (2), as a Teredo server or relay sends them.
 */
function teredo(f: Uint8Array, i: number): Uint8Array {
  const origin = Uint8Array.of(0, 0, 0x3c, 0xc2, 0x3f, 0xff, 0xfd, 0xfe); // port 50000 and 192.0.2.1, obfuscated
  const auth = Uint8Array.of(0, 1, 2, 3, 0xaa, 0xbb, 1, 2, 3, 1, 2, 3, 4, 5, 6, 7, 8, 0); // id 2 bytes, value 3, nonce, confirmation
  const body = cat(i % 3 === 0 ? new Uint8Array(0) : i % 3 === 1 ? origin : cat(auth, origin), ip(f));
  return outerIp(fromLower(f) ? udp(3544, body, 50000) : udp(50000, body, 3544), 17);
}

test('Teredo (UDP 3544 either way; origin indication and authentication headers): IPv6 inside is reassembled as without it, in a network of its own; a cut header is teredo.short, and what is not IPv6 stays UDP', async (t) => {
  const dir = tmp(t);
  const conv = v6Conversation();
  const plain = join(dir, 'plain.pcap');
  writeFileSync(plain, pcapFile(conv.map((data) => ({ data }))));
  const want = await replay(plain);
  const file = join(dir, 'teredo.pcap');
  writeFileSync(file, pcapFile(conv.map((f, i) => ({ data: teredo(f, i) }))));
  const got = await replay(file);
  t.deepEqual(got.streams, want.streams);
  t.is(got.s.protocols.teredo, conv.length);
  t.is(got.s.protocols.tcp, want.s.protocols.tcp);
  t.deepEqual(got.s.drops, want.s.drops);
  t.deepEqual(got.s.connections.map((c: { net?: string }) => c.net), ['teredo']);
  const v6 = ip(conv[0]!);
  const bubble = Uint8Array.from(v6.subarray(0, 40));
  bubble[4] = 0;
  bubble[5] = 0;
  bubble[6] = 59; // no next header: a bubble
  const bad: RecSpec[] = [
    { data: outerIp(udp(3544, Uint8Array.of(0, 1, 4)), 17) }, // an authentication indicator cut before its lengths
    { data: outerIp(udp(3544, Uint8Array.of(0, 1, 2, 3, 0xaa, 0xbb, 1, 2, 3, 1, 2)), 17) }, // cut inside its nonce
    { data: outerIp(udp(3544, Uint8Array.of(0, 0, 0x3c, 0xc2, 0x3f)), 17) }, // an origin indication cut short
    { data: outerIp(udp(50000, Uint8Array.of(0x45, 0, 0, 20), 3544), 17) }, // IPv4 from port 3544: plain UDP
    { data: outerIp(udp(3544, new Uint8Array(0)), 17) }, // nothing: plain UDP
    { data: outerIp(udp(3545, v6), 17) }, // IPv6 on another port: plain UDP, as tshark leaves it
    { data: outerIp(udp(3544, bubble), 17) }, // a bubble: Teredo, IPv6, nothing more
  ];
  const badFile = join(dir, 'bad.pcap');
  writeFileSync(badFile, pcapFile(bad));
  const b = await replay(badFile);
  t.deepEqual(b.s.drops, { 'teredo.short': 3 });
  t.is(b.s.protocols.teredo, 1, 'the bubble (a cut header is counted as its drop only, as every tunnel\'s)');
  t.is(b.s.protocols.udp, bad.length);
  t.is(b.s.protocols.ipv6, 1, 'the bubble');
  t.is(b.s.protocols.tcp, undefined);
});

when(HAS_TSHARK, 'needs tshark')('Teredo as tshark decodes it: the same segments inside; a splice of Teredo connections writes its segments in Teredo, with the outer lengths and UDP checksums set again', async (t) => {
  const dir = tmp(t);
  const conv = v6Conversation();
  const plain = join(dir, 'plain.pcap');
  writeFileSync(plain, pcapFile(conv.map((data) => ({ data }))));
  const file = join(dir, 'teredo.pcap');
  writeFileSync(file, pcapFile(conv.map((f, i) => ({ data: teredo(f, i) }))));
  t.deepEqual(tsharkView(file).segs.map((s) => s.replace(/^\d+ /, '')), tsharkView(plain).segs.map((s) => s.replace(/^\d+ /, '')));
  t.deepEqual(tsharkView(file).badOuter, []);
  t.is(fields(file, ['frame.number'], 'teredo').length, conv.length, 'tshark decodes every frame as Teredo');
  // an IPv6 relay: client to relay, relay to server, the relay's copies spliced
  const tl = new Timeline();
  const C = new Conv(tl, { client: '2001:db8::1', server: '2001:db8::2', cport: 40000, sport: 8080, ciss: 100000, siss: 200000 });
  const S = new Conv(tl, { client: '2001:db8::2', server: '2001:db8::3', cport: 50000, sport: 80, ciss: 300000, siss: 400000 });
  C.handshake(); S.handshake();
  copyRelay(C, S, Buffer.alloc(20000, 'r'), 1400);
  C.close('c'); S.close('c');
  const relayPlain = join(dir, 'relay.pcap');
  writeFileSync(relayPlain, pcapFile(tl.recs));
  const relayTeredo = join(dir, 'relay-teredo.pcap');
  writeFileSync(relayTeredo, pcapFile(tl.recs.map((r, i) => ({ ...r, data: teredo(r.data, i) }))));
  const spliceOf = async (f: string) => {
    const out = `${f}.spliced.pcap`;
    const r = await cli(['splice', f, '--from', '0:c2s', '--to', '1:c2s', '-w', out, '-q', '--json']);
    t.is(r.code, 0, r.stderr);
    return { out, s: JSON.parse(r.stdout) };
  };
  const a = await spliceOf(relayPlain);
  const b = await spliceOf(relayTeredo);
  t.like(a.s.splices[0], { spliced: 20000, integrity: 'ok' });
  t.deepEqual(b.s.splices, a.s.splices);
  const va = tsharkView(a.out);
  const vb = tsharkView(b.out);
  t.true(va.segs.length > 20);
  t.deepEqual(vb.segs, va.segs, 'the same segments, frame for frame');
  t.deepEqual(vb.badOuter, [], 'outer IPv4 and UDP headers well formed');
  t.is(fields(b.out, ['frame.number'], 'teredo').length, fields(b.out, ['frame.number']).length, 'every frame in Teredo');
});
