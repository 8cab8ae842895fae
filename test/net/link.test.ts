import test from 'ava';
import { CaptureSession } from '../../core/capture/session.js';
import { Stack } from '../../core/stack.js';
import { TH_ACK, TH_PUSH } from '../../core/wire/tcp.js';
import { chunked, pcapFile, tcpFrame } from '../helpers/build.js';
import { runPipeline } from '../../core/pipeline.js';

/** The IP packet of a built Ethernet frame, behind another link header. */
function behind(link: Uint8Array, v6 = false): Uint8Array {
  const f = tcpFrame({ src: v6 ? '::1' : '127.0.0.1', dst: v6 ? '::1' : '127.0.0.1', sport: 5555, dport: 80, flags: TH_ACK | TH_PUSH, payload: 'hello' });
  const out = new Uint8Array(link.length + f.length - 14);
  out.set(link, 0);
  out.set(f.subarray(14), link.length);
  return out;
}

const CASES: Array<[string, number, boolean, Uint8Array, boolean]> = [
  ['OpenBSD LOOP, AF_INET in network order', 108, false, Uint8Array.of(0, 0, 0, 2), false],
  ['OpenBSD LOOP, AF_INET6 (24) in network order', 108, false, Uint8Array.of(0, 0, 0, 24), true],
  ['BSD NULL from a little-endian host', 0, false, Uint8Array.of(2, 0, 0, 0), false],
  ['BSD NULL from a big-endian host (file byte order)', 0, true, Uint8Array.of(0, 0, 0, 2), false],
  ['BSD NULL, AF_INET6 = 30 (macOS)', 0, false, Uint8Array.of(30, 0, 0, 0), true],
  ['Linux SLL', 113, false, Uint8Array.of(0, 0, 3, 4, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0), false],
  ['Linux SLL2', 276, false, Uint8Array.of(8, 0, 0, 0, 0, 0, 0, 1, 3, 4, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0), false],
  ['raw IPv4 (228)', 228, false, new Uint8Array(0), false],
  ['raw IP (101), IPv6 by its version nibble', 101, false, new Uint8Array(0), true],
];

for (const [title, linktype, bigEndian, hdr, v6] of CASES) {
  test(`link layer: ${title} reaches TCP`, async (t) => {
    const file = pcapFile([{ data: behind(hdr, v6) }], { linktype, bigEndian });
    const stack = new Stack(new CaptureSession());
    const res = await runPipeline([{ name: title, stream: chunked(file, 1 << 16) }], stack);
    t.is(res.error, null);
    t.deepEqual(stack.stats.drops, {});
    t.is(stack.stats.protocols.tcp, 1);
    t.is(stack.stats.protocols[v6 ? 'ipv6' : 'ipv4'], 1);
    t.is(stack.finished[0]?.c2s.bytes ?? stack.finished[0]?.s2c.bytes, 5);
  });
}

test('link layer: an unknown link type and a non-IP NULL family are counted drops', async (t) => {
  const stack = new Stack(new CaptureSession());
  const a = pcapFile([{ data: behind(new Uint8Array(0)) }], { linktype: 147 });
  const b = pcapFile([{ data: behind(Uint8Array.of(7, 0, 0, 0)) }], { linktype: 0 });
  await runPipeline([{ name: 'a', stream: chunked(a, 1 << 16) }, { name: 'b', stream: chunked(b, 1 << 16) }], stack);
  t.deepEqual(stack.stats.drops, { 'link.unsupported': 1, 'null.unsupported': 1 });
});

/** Insert an 802.1Q tag (vid) after the MAC addresses of an Ethernet frame. */
function tagged(f: Uint8Array, vid: number): Uint8Array {
  const out = new Uint8Array(f.length + 4);
  out.set(f.subarray(0, 12), 0);
  out.set([0x81, 0x00, vid >> 8, vid & 0xff], 12);
  out.set(f.subarray(12), 16);
  return out;
}

test('the connection table is VLAN-aware: one 4-tuple on two VLANs is two connections', async (t) => {
  const seg = (payload: string, seq: number) => tcpFrame({ src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 80, seq, flags: TH_ACK | TH_PUSH, payload });
  const frames = [tagged(seg('on ten ', 100), 10), tagged(seg('on twenty ', 100), 20), tagged(seg('again', 107), 10), tagged(seg('again', 110), 20), seg('untagged', 100)];
  const file = pcapFile(frames.map((data) => ({ data })));
  const stack = new Stack(new CaptureSession(), { app: new (await import('../../core/socket/reader.js')).DrainApp(true) });
  await runPipeline([{ name: 'vlans', stream: chunked(file, 1 << 16) }], stack);
  const bytes = stack.finished.sort((a, b) => a.stream - b.stream).map((c) => c.c2s.bytes);
  t.deepEqual(bytes, [12, 15, 8]);
  t.is(stack.stats.protocols.vlan, 4);
});

test('a header the snaplen cut is a *.truncated drop (the frame was longer on the wire); the same bytes as a whole frame are a malformed *.short one', async (t) => {
  const v4 = tcpFrame({ payload: 'hello' });
  const v6 = tcpFrame({ src: '2001:db8::1', dst: '2001:db8::2', payload: 'hello' });
  const drops = async (data: Uint8Array, cutTo: number, snapped: boolean) => {
    const rec = { data: data.subarray(0, cutTo), origLen: snapped ? data.length : cutTo };
    const stack = new Stack(new CaptureSession());
    const res = await runPipeline([{ name: 'x', stream: chunked(pcapFile([rec], { snaplen: cutTo }), 1 << 16) }], stack);
    t.is(res.error, null);
    return stack.stats.drops;
  };
  for (const [what, frame, cutTo, name] of [
    ['inside the TCP header (tcpdump -s 40)', v4, 40, 'tcp'], ['inside the IPv4 header', v4, 24, 'ip'], ['inside the IPv6 header', v6, 40, 'ip6'],
  ] as const) {
    t.deepEqual(await drops(frame, cutTo, true), { [`${name}.truncated`]: 1 }, `${what}, cut by the snaplen`);
    t.deepEqual(await drops(frame, cutTo, false), { [`${name}.short`]: 1 }, `${what}, a short frame`);
  }
});

test('tunnels are opened (README; test/net/tunnel.test.ts has them all): TCP inside IP-in-IP and GRE is counted under the tunnel and TCP, and makes a connection', async (t) => {
  const inner = tcpFrame({ src: '192.168.0.1', dst: '192.168.0.2', flags: TH_ACK | TH_PUSH, payload: 'inner' }).subarray(14);
  const outer = (proto: number, hdr: Uint8Array) => {
    const f = tcpFrame({ src: '10.0.0.1', dst: '10.0.0.2' });
    const out = new Uint8Array(14 + 20 + hdr.length + inner.length);
    out.set(f.subarray(0, 34), 0);
    out[14 + 9] = proto;
    out[14 + 2] = (20 + hdr.length + inner.length) >> 8;
    out[14 + 3] = (20 + hdr.length + inner.length) & 0xff;
    out.set(hdr, 34);
    out.set(inner, 34 + hdr.length);
    return out;
  };
  for (const [proto, hdr] of [[4, new Uint8Array(0)], [47, Uint8Array.of(0, 0, 0x08, 0x00)]] as const) {
    const stack = new Stack(new CaptureSession());
    const res = await runPipeline([{ name: 'x', stream: chunked(pcapFile([{ data: outer(proto, hdr) }]), 1 << 16) }], stack);
    t.is(res.error, null);
    t.false(`ip.proto${proto}` in stack.stats.protocols);
    t.is(stack.stats.protocols[proto === 4 ? 'ipip' : 'gre'], 1);
    t.is(stack.stats.protocols.tcp, 1);
    t.is(stack.tcpstat.connections, 1);
  }
});
