import test from 'ava';
import fc from 'fast-check';
import { emitEthernet, emitPppoe, emitVlan, parseEthernet, parsePppoe, parseVlan } from '../../core/wire/ethernet.js';
import { emitSll, emitSll2, parseSll, parseSll2 } from '../../core/wire/sll.js';
import { emitLoop, parseLoop } from '../../core/wire/loop.js';
import { emitIpv4, ipv4BadSum, parseIpv4 } from '../../core/wire/ipv4.js';
import { emitIpv6, parseIpv6 } from '../../core/wire/ipv6.js';
import { emitTcp, parseTcp, parseTcpOptions, synOptions, type SynOptions } from '../../core/wire/tcp.js';
import { emitUdp, parseUdp } from '../../core/wire/udp.js';
import { checksum, sum16, fold, fold16, sumDv } from '../../core/wire/checksum.js';
import { ip6ToString, parseIp } from '../../core/wire/bytes.js';
import { hex } from '../helpers/hex.js';

type Codec = { parse: (b: Uint8Array, o: number, n: number) => unknown; emit: (r: never, out: Uint8Array, o: number) => number };

/** parse → emit gives the same bytes, also when emitted at offset 10 of a bigger buffer (dns-packet's testEncoder). */
const roundtrip = test.macro({
  exec(t, codec: Codec, bytes: Uint8Array) {
    const r = codec.parse(bytes, 0, bytes.length);
    t.is(typeof r, 'object', `parsed: ${String(r)}`);
    const out = new Uint8Array(bytes.length);
    t.is(codec.emit(r as never, out, 0), bytes.length);
    t.deepEqual(out, bytes);
    const big = new Uint8Array(bytes.length + 20);
    codec.emit(r as never, big, 10);
    t.deepEqual(big.subarray(10, 10 + bytes.length), bytes);
    t.deepEqual(codec.parse(big, 10, bytes.length), r);
  },
  title: (provided = '') => `round trip: ${provided}`,
});

const C = {
  eth: { parse: parseEthernet, emit: emitEthernet },
  vlan: { parse: parseVlan, emit: emitVlan },
  pppoe: { parse: parsePppoe, emit: emitPppoe },
  sll: { parse: parseSll, emit: emitSll },
  sll2: { parse: parseSll2, emit: emitSll2 },
  loopBe: { parse: (b: Uint8Array, o: number, n: number) => parseLoop(b, o, n, true), emit: (r: never, out: Uint8Array, o: number) => emitLoop(r, out, o, true) },
  loopLe: { parse: (b: Uint8Array, o: number, n: number) => parseLoop(b, o, n, false), emit: (r: never, out: Uint8Array, o: number) => emitLoop(r, out, o, false) },
  ipv4: { parse: parseIpv4, emit: (r: never, out: Uint8Array, o: number) => emitIpv4(r, out, o, false) },
  ipv6: { parse: parseIpv6, emit: emitIpv6 },
  tcp: { parse: parseTcp, emit: emitTcp },
  udp: { parse: parseUdp, emit: emitUdp },
} satisfies Record<string, Codec>;

// tcpdump -xx of a real Ethernet header: 00:1f:33:d9:81:60 > 00:e0:1c:3c:17:c2, IPv4
test('Ethernet II', roundtrip, C.eth, hex`00e0 1c3c 17c2 001f 33d9 8160 0800`);
test('802.1Q tag (pcp 5, dei, vid 100)', roundtrip, C.vlan, hex`b064 0800`);
test('PPPoE session + PPP IPv4', roundtrip, C.pppoe, hex`1100 1234 0040 0021`);
test('Linux SLL', roundtrip, C.sll, hex`0000 0304 0006 0000 0000 0000 0000 0800`);
test('Linux SLL2', roundtrip, C.sll2, hex`0800 0000 0000 0001 0304 0006 0000 0000 0000 0000`);
test('OpenBSD LOOP (network order AF_INET6=24)', roundtrip, C.loopBe, hex`0000 0018`);
test('BSD NULL little-endian AF_INET', roundtrip, C.loopLe, hex`0200 0000`);
// IPv4 with a record-route option (7 bytes) + EOL padding, real checksum
test('IPv4 with options', roundtrip, C.ipv4, hex`4700 0030 1c46 4000 4006 0000 0a00 0001 0a00 0002 0707 0400 0000 0000`);
test('IPv6 fixed header', roundtrip, C.ipv6, hex`6000 0000 0014 0640 2001 0db8 0000 0000 0000 0000 0000 0001 2001 0db8 0000 0000 0000 0000 0000 0002`);
// SYN from a Linux host: mss 1460, sackOK, TS val 1 ecr 0, nop, wscale 7
test('TCP SYN with MSS, SACK-permitted, timestamps, window scale', roundtrip, C.tcp,
  hex`9c40 0050 0000 03e8 0000 0000 a002 faf0 0000 0000 0204 05b4 0402 080a 0000 0001 0000 0000 0103 0307`);
test('TCP with SACK blocks and an unknown option kept', roundtrip, C.tcp,
  hex`9c40 0050 0000 03e8 0000 0001 9010 0100 0000 0000 0101 050a 0000 0010 0000 0020 fe04 abcd`);
test('UDP', roundtrip, C.udp, hex`0035 c350 0010 1234`);

test('TCP options are parsed into fields', (t) => {
  const r = parseTcp(hex`9c40 0050 0000 03e8 0000 0000 a002 faf0 0000 0000 0204 05b4 0402 080a 0000 0001 0000 0000 0103 0307`, 0, 40);
  if (typeof r === 'string') return t.fail(r);
  t.like(r.options, { mss: 1460, sackPermitted: true, ts: [1, 0], wscale: 7 });
  const s = parseTcp(hex`9c40 0050 0000 03e8 0000 0001 9010 0100 0000 0000 0101 050a 0000 0010 0000 0020 fe04 abcd`, 0, 36);
  if (typeof s === 'string') return t.fail(s);
  t.deepEqual(s.options.sack, [[16, 32]]);
  t.deepEqual(s.options.unknown?.map((u) => [u.kind, Buffer.from(u.data).toString('hex')]), [[254, 'abcd']]);
});

test('what tcp_input reads of a SYN (synOptions, into one object used again) is what parseTcpOptions parses, for any options area, malformed ones included', (t) => {
  const into: SynOptions = { mss: 0, wscale: -1, sackPermitted: false, timestamps: false };
  // options made mostly of the kinds a SYN carries, with lengths right, wrong or running past the area
  const opt = fc.oneof(
    fc.constantFrom([0], [1], [2, 4, 5, 0xb4], [3, 3, 7], [4, 2], [8, 10, 0, 0, 0, 1, 0, 0, 0, 0], [2, 3, 1], [3, 4, 1, 1], [8, 9]),
    fc.tuple(fc.nat(255), fc.nat(12)).map(([k, l]) => [k, l, ...Array<number>(Math.max(0, l - 2)).fill(7)]),
  );
  fc.assert(fc.property(fc.array(opt, { maxLength: 8 }), fc.nat(3), (opts, cut) => {
    const area = Uint8Array.from([...opts.flat(), 0xee, 0xee, 0xee]);
    const n = Math.max(0, area.length - 3 - cut); // the bytes after it are the payload's
    const want = parseTcpOptions(area, 0, n);
    const got = synOptions(area, 0, n, into);
    t.is(got, into);
    t.deepEqual({ ...got }, { mss: want.mss ?? 0, wscale: want.wscale ?? -1, sackPermitted: !!want.sackPermitted, timestamps: !!want.ts });
  }), { numRuns: 3000 });
});

test('a TCP option running past the header is marked malformed, not thrown', (t) => {
  const r = parseTcp(hex`9c40 0050 0000 03e8 0000 0000 6002 faf0 0000 0000 0208 05b4`, 0, 24);
  if (typeof r === 'string') return t.fail(r);
  t.true(r.options.malformed);
});

test('drop reasons: each decoder refuses short or inconsistent headers', (t) => {
  t.is(parseEthernet(new Uint8Array(13), 0, 13), 'ether.short');
  t.is(parseVlan(new Uint8Array(3), 0, 3), 'vlan.short');
  t.is(parsePppoe(hex`1100 0000 0000 0021`.subarray(0, 7), 0, 7), 'pppoe.short');
  t.is(parsePppoe(hex`2100 0000 0000 0021`, 0, 8), 'pppoe.badver');
  t.is(parseSll(new Uint8Array(15), 0, 15), 'sll.short');
  t.is(parseSll2(new Uint8Array(19), 0, 19), 'sll2.short');
  t.is(parseLoop(new Uint8Array(3), 0, 3, true), 'null.short');
  t.is(parseIpv4(hex`4500 0014`, 0, 4), 'ip.short');
  t.is(parseIpv4(hex`5500 0014 0000 0000 4006 0000 0a00 0001 0a00 0002`, 0, 20), 'ip.badvers');
  t.is(parseIpv4(hex`4400 0014 0000 0000 4006 0000 0a00 0001 0a00 0002`, 0, 20), 'ip.badhlen');
  t.is(parseIpv4(hex`4600 0018 0000 0000 4006 0000 0a00 0001 0a00 0002`, 0, 20), 'ip.short');
  t.is(parseIpv4(hex`4500 0010 0000 0000 4006 0000 0a00 0001 0a00 0002`, 0, 20), 'ip.badlen');
  t.is(parseIpv6(new Uint8Array(39), 0, 39), 'ip6.short');
  const v6 = hex`6000 0000 0008 0040 2001 0db8 0000 0000 0000 0000 0000 0001 2001 0db8 0000 0000 0000 0000 0000 0002 0605 0000 0000 0000`;
  t.is(parseIpv6(v6, 0, 48), 'ip6.badext', 'hop-by-hop claims 48 bytes in an 8-byte payload');
  v6[0] = 0x40;
  t.is(parseIpv6(v6, 0, 48), 'ip6.badvers');
  t.is(parseTcp(new Uint8Array(19), 0, 19), 'tcp.short');
  t.is(parseTcp(hex`9c40 0050 0000 03e8 0000 0000 4002 faf0 0000 0000`, 0, 20), 'tcp.badoff');
  t.is(parseTcp(hex`9c40 0050 0000 03e8 0000 0000 6002 faf0 0000 0000`, 0, 20), 'tcp.short');
  t.is(parseUdp(new Uint8Array(7), 0, 7), 'udp.short');
  t.is(parseUdp(hex`0035 c350 0004 0000`, 0, 8), 'udp.badlen');
});

test('IPv6 extension chain: hop-by-hop, routing, fragment, destination options', (t) => {
  // hop-by-hop(8) → routing(8) → destination options(8) → fragment(8, first fragment) → TCP
  const ext = hex`2b00 0000 0000 0000 3c00 0000 0000 0000 2c00 0000 0000 0000 0600 0001 0000 abcd`;
  const b = new Uint8Array(40 + ext.length);
  emitIpv6({ trafficClass: 0, flowLabel: 0, payloadLen: ext.length, nextHeader: 0, hopLimit: 64, src: parseIp('::1')!, dst: parseIp('::1')! }, b, 0);
  b.set(ext, 40);
  const r = parseIpv6(b, 0, b.length);
  if (typeof r === 'string') return t.fail(r);
  t.deepEqual(r.exts.map((e) => e.type), [0, 43, 60, 44]);
  t.is(r.proto, 6);
  t.is(r.upperOff, 72);
  t.like(r.frag, { fragOff: 0, mf: true, id: 0xabcd });
});

test('checksum fast path equals a 16-bit reference sum at every length and offset', (t) => {
  const ref = (b: Uint8Array, o: number, n: number) => {
    let s = 0;
    for (let i = 0; i < n; i += 2) s += (b[o + i]! << 8) | (i + 1 < n ? b[o + i + 1]! : 0);
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    return ~s & 0xffff;
  };
  fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 3000 }), fc.nat(7), (bytes, o) => {
    const b = new Uint8Array(bytes.length + o);
    b.set(bytes, o);
    return checksum(b, o, bytes.length) === ref(b, o, bytes.length);
  }));
  t.is(fold(sum16(new Uint8Array([0xff, 0xff, 0xff, 0xff]), 0, 4)), 0);
  const ip = hex`4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7`; // the classic RFC example header
  t.false(ipv4BadSum(ip, 0, 20));
  ip[11] ^= 1;
  t.true(ipv4BadSum(ip, 0, 20));
  // the header check agrees with checksum() on every header length, good sums and bad
  fc.assert(fc.property(fc.uint8Array({ minLength: 60, maxLength: 60 }), fc.integer({ min: 5, max: 15 }), fc.nat(3), fc.boolean(), (bytes, ihl, o, fix) => {
    const b = new Uint8Array(64);
    b.set(bytes, o);
    const hlen = ihl * 4;
    if (fix) {
      b[o + 10] = b[o + 11] = 0;
      const c = checksum(b, o, hlen);
      b[o + 10] = c >> 8;
      b[o + 11] = c & 0xff;
    }
    return ipv4BadSum(b, o, hlen) === (checksum(b, o, hlen) !== 0) && (!fix || !ipv4BadSum(b, o, hlen));
  }), { numRuns: 2000 });
  // fold16 folds a sum below 2^31 with shifts and a larger one by division: both agree with a
  // reference fold (BigInt) on either side of the boundary and far past it
  const refFold = (x: bigint) => {
    while (x > 0xffffn) x = (x & 0xffffn) + (x >> 16n);
    return Number(x);
  };
  for (const x of [0, 1, 0xffff, 0x10000, 0x7ffffffe, 0x7fffffff, 0x80000000, 0xffffffff, 0x100000000, 2 ** 40 + 12345, 2 ** 52 - 1])
    t.is(fold16(x), refFold(BigInt(x)), `fold16(${x})`);
  fc.assert(fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (x) => fold16(x) === refFold(BigInt(x))), { numRuns: 2000 });
  t.true(ipv4BadSum(new Uint8Array(20), 0, 20), 'all zeros sums to 0, not 0xffff');
  t.false(ipv4BadSum(new Uint8Array(20).fill(0xff), 0, 20), '0xffff words: a negative zero sum, as checksum() judges it');
});

test('IPv6 text form follows RFC 5952', (t) => {
  for (const s of ['::1', '2001:db8::1', 'fe80::1:0:0:1', '2001:db8:0:1:1:1:1:1', '::'])
    t.is(ip6ToString(parseIp(s)!, 0), s);
  t.is(ip6ToString(parseIp('2001:0db8:0000:0000:0001:0000:0000:0001')!, 0), '2001:db8::1:0:0:1');
});

test('sumDv over a chunk-wide DataView equals the reference', (t) => {
  fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 3000 }), fc.nat(11), (bytes, o) => {
    const b = new Uint8Array(bytes.length + o);
    b.set(bytes, o);
    return fold16(sumDv(new DataView(b.buffer), o, bytes.length)) === fold16(sum16(b, o, bytes.length));
  }), { numRuns: 1000 });
  t.pass();
});
