import test from 'ava';
import { readCapture } from '../../core/capture/reader.js';
import { CaptureSession } from '../../core/capture/session.js';
import { m_captured, Mbuf } from '../../core/mbuf/mbuf.js';
import type { StackHook } from '../../core/hook.js';
import { put16 } from '../../core/wire/bytes.js';
import { checksum } from '../../core/wire/checksum.js';
import { TH_SYN } from '../../core/wire/tcp.js';
import { tcpFrame } from '../helpers/build.js';
import { DrainApp } from '../../core/socket/reader.js';
import { Stack } from '../../core/stack.js';
import { fixture } from '../helpers/paths.js';

async function frames(path: string): Promise<{ session: CaptureSession; ms: Mbuf[] }> {
  const session = new CaptureSession();
  const ms: Mbuf[] = [];
  for await (const b of readCapture({ name: path }, session)) ms.push(...b);
  return { session, ms };
}

function replay(session: CaptureSession, ms: Mbuf[], limits?: { reverse?: boolean }) {
  const stack = new Stack(session, { app: new DrainApp(true), debug: true });
  stack.input(limits?.reverse ? [...ms].reverse() : ms);
  stack.finish();
  return stack;
}

const CASES: Array<[string, string, number]> = [
  // tshark's oracle: the HTTP request in 11 IPv4 fragments
  ['IPv4', 'ip/frag-http-req.pcap', 4],
  ['IPv6', 'ip/frag-ipv6-tcp.pcap', 6],
];

for (const [v, file, proto] of CASES) {
  test(`${v} fragments in order and in reverse order give the same stream`, async (t) => {
    const { session, ms } = await frames(fixture(file));
    const inOrder = replay(session, ms);
    t.true((inOrder.stats.protocols[`ipv${proto}.reassembled`] ?? 0) > 0);
    const reversed = replay(session, ms.filter((m) => m.hdr!.caplen > 0), { reverse: true });
    const a = inOrder.finished.map((c) => [c.c2s.bytes, c.c2s.sha256]);
    t.true(a.some(([n]) => (n as number) > 0), 'the reassembled datagram carried data');
    t.deepEqual(reversed.finished.map((c) => [c.c2s.bytes, c.c2s.sha256]).filter(([n]) => (n as number) > 0),
      a.filter(([n]) => (n as number) > 0));
  });
}

test('fragment limits: a datagram that never completes times out (counted), a flood is capped', async (t) => {
  const { session, ms } = await frames(fixture('ip/frag-http-req.pcap'));
  const stack = new Stack(session, { debug: true });
  const frags = ms.filter((m) => m.hdr!.caplen > 60);
  stack.input(frags.slice(0, 3)); // a few fragments of the datagram, never the rest
  const late = frags[3]!;
  // the same fragment 61 s later: the old datagram expired first
  stack.input([Object.assign(Object.create(Object.getPrototypeOf(late)), late, { hdr: { ...late.hdr!, tsSec: late.hdr!.tsSec + 61 } })]);
  t.is(stack.stats.drops['ip.fragtimeout'], 1);
  // 2,000 distinct datagrams (IP ids) that never complete: 1,024 are held, the rest dropped by name
  const flood = new Stack(session, {});
  const first = frags[0]!;
  const copies = Array.from({ length: 2000 }, (_, i) => {
    const b = new Uint8Array(first.data());
    b[14 + 4] = i >> 8;
    b[14 + 5] = i & 0xff;
    return Object.assign(Object.create(Object.getPrototypeOf(first)), first, { buf: b, off: 0 });
  });
  flood.input(copies);
  t.is(flood.stats.drops['ip.fragdropped'], 2000 - 1024);
});

test('a reassembled datagram is never taken for a captured frame, even one small enough to fit its first Mbuf (nor the packet a tunnel in it carried): the models take no headers from it', async (t) => {
  const seen: boolean[] = [];
  const hook: StackHook = { segment: (_c, _d, _s, f) => void seen.push(m_captured(f.m)) };
  const session = new CaptureSession();
  session.addIface({ linktype: 1, snaplen: 65535, tsresol: 6, tsoffset: 0, bigEndian: false, name: undefined, file: 'x' });
  const frag = (whole: Uint8Array, proto: number) => {
    // the IPv4 datagram of `whole` (Ethernet) in two fragments: 8 bytes, then the rest
    const ip = whole.subarray(14);
    const a = Uint8Array.from([...whole.subarray(0, 14), ...ip.subarray(0, 20), ...ip.subarray(20, 28)]);
    const b = Uint8Array.from([...whole.subarray(0, 14), ...ip.subarray(0, 20), ...ip.subarray(28)]);
    for (const [f, off, mf] of [[a, 0, true], [b, 8, false]] as const) {
      f[14 + 9] = proto;
      put16(f, 14 + 2, f.length - 14);
      put16(f, 14 + 6, (mf ? 0x2000 : 0) | (off >> 3));
      put16(f, 14 + 10, 0);
      put16(f, 14 + 10, checksum(f, 14, 20));
    }
    return [a, b];
  };
  const seg = tcpFrame({ flags: TH_SYN, seq: 5 });
  // the same SYN, inside IPv4-in-IPv4 whose outer datagram came in fragments
  const inner = seg.subarray(14);
  const outer = Uint8Array.from([...seg.subarray(0, 14), ...seg.subarray(14, 34), ...inner]);
  outer[14 + 9] = 4;
  const frames = [seg, ...frag(seg, 6), ...frag(outer, 4)];
  const stack = new Stack(session, { hooks: [hook], debug: true });
  stack.input(frames.map((b, i) => new Mbuf(b, 0, b.length, { caplen: b.length, origLen: b.length, tsSec: 1, tsNsec: i, linktype: 1, ifidx: 0, frameNo: i + 1 })));
  stack.finish();
  t.deepEqual(seen, [true, false, false], 'the captured SYN, the reassembled one, the one in a reassembled tunnel');
});
