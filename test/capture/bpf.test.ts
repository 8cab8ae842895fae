import test from 'ava';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bpfFilter, CaptureFilter, FilterRefused, parseBpf, tcpdumpCompile } from '../../core/capture/bpf.js';
import { readCaptures } from '../../core/capture/reader.js';
import { CaptureSession } from '../../core/capture/session.js';
import { SockcapError } from '../../core/errors.js';
import { Mbuf } from '../../core/mbuf/mbuf.js';
import { corpus, CORPUS, fixture, HAS_CORPUS, HAS_TCPDUMP } from '../helpers/paths.js';
import { when } from '../helpers/skip.js';
import { pcapFile, tcpFrame } from '../helpers/build.js';
import { cli, tmp } from '../helpers/cli.js';

/** A program from `code jt jf k` lines, as tcpdump -ddd prints one. */
const prog = (...ins: Array<[number, number, number, number]>) => parseBpf(`${ins.length}\n${ins.map((i) => i.join(' ')).join('\n')}\n`);
const run = (p: Int32Array, bytes: number[], wirelen = bytes.length) => bpfFilter(p, Uint8Array.from([0xee, ...bytes]), 1, bytes.length, wirelen);

test('parseBpf refuses what bpf_validate refuses: unknown codes, jumps out of the program or backwards, scratch words out of range, division by a constant 0, no return at the end, text that is no program', (t) => {
  const bad: Array<[string, RegExp]> = [
    ['1\n255 0 0 0\n', /unknown code/],
    ['2\n21 0 5 1\n6 0 0 0\n', /jumps out/],
    ['2\n5 0 0 7\n6 0 0 0\n', /jumps out/],
    ['3\n6 0 0 1\n21 -2 0 1\n6 0 0 0\n', /not bytes/],
    ['2\n96 0 0 16\n6 0 0 0\n', /scratch word 16/],
    ['2\n52 0 0 0\n6 0 0 0\n', /divides by 0/],
    ['1\n0 0 0 1\n', /does not end with a return/],
    ['tcpdump: syntax error\n', /not a BPF program/],
    ['2\n6 0 0 1\n', /not a BPF program/],
    ['1\n6 0 0\n', /not 'code jt jf k'/],
  ];
  for (const [text, why] of bad) t.throws(() => parseBpf(text), { instanceOf: RangeError, message: why }, text);
});

test('the interpreter: loads (absolute, indexed, the IP header length), scratch memory, every ALU operation on unsigned 32-bit values, jumps, and returns, as libpcap\'s bpf_filter() computes them', (t) => {
  // A = word at 0; A op= k; return A
  const op = (code: number, k: number, word: number[]) => run(prog([0x20, 0, 0, 0], [code, 0, 0, k], [0x16, 0, 0, 0]), word);
  const w = [0xff, 0xff, 0xff, 0xfe]; // 0xfffffffe
  t.is(op(0x04, 3, w), 1, 'add wraps');
  t.is(op(0x14, 0xffffffff, [0, 0, 0, 1]), 2, 'sub wraps');
  t.is(op(0x24, 2, w), 0xfffffffc, 'mul wraps');
  t.is(op(0x34, 3, w), 0x55555554, 'div is unsigned');
  t.is(op(0x94, 7, w), 0xfffffffe % 7, 'mod is unsigned');
  t.is(op(0x44, 1, w), 0xffffffff);
  t.is(op(0x54, 0xff, w), 0xfe);
  t.is(op(0xa4, 0xffffffff, w), 1);
  t.is(op(0x64, 4, w), 0xffffffe0);
  t.is(op(0x74, 28, w), 0xf);
  t.is(op(0x84, 0, [0, 0, 0, 1]), 0xffffffff, 'neg');
  // shifts by X of 32 or more give 0; division by X = 0 rejects the packet
  const byX = (code: number, x: number) => run(prog([0x01, 0, 0, x], [0x20, 0, 0, 0], [code, 0, 0, 0], [0x16, 0, 0, 0]), w);
  t.is(byX(0x6c, 32), 0);
  t.is(byX(0x7c, 40), 0);
  t.is(byX(0x3c, 0), 0);
  t.is(byX(0x9c, 0), 0);
  t.is(byX(0x3c, 2), 0x7fffffff);
  // halfword, byte, indexed and MSH loads; a load past the captured bytes rejects
  const bytes = [0x45, 0, 0x12, 0x34, 0xab, 0xcd, 0xef, 0x01];
  t.is(run(prog([0x28, 0, 0, 2], [0x16, 0, 0, 0]), bytes), 0x1234);
  t.is(run(prog([0x30, 0, 0, 4], [0x16, 0, 0, 0]), bytes), 0xab);
  t.is(run(prog([0xb1, 0, 0, 0], [0x87, 0, 0, 0], [0x16, 0, 0, 0]), bytes), 20, 'x = 4 * (ip_hl)');
  t.is(run(prog([0x01, 0, 0, 4], [0x48, 0, 0, 1], [0x16, 0, 0, 0]), bytes), 0xcdef, 'indexed');
  t.is(run(prog([0x20, 0, 0, 5], [0x06, 0, 0, 1]), bytes), 0, 'a word past the end');
  t.is(run(prog([0x01, 0, 0, 0xffffffff], [0x50, 0, 0, 2], [0x06, 0, 0, 1]), bytes), 0, 'an index that wraps');
  t.is(run(prog([0x80, 0, 0, 0], [0x16, 0, 0, 0]), bytes, 1500), 1500, 'len is the length on the wire');
  // scratch memory, tax/txa, the conditional jumps (unsigned) and ja
  t.is(run(prog([0x00, 0, 0, 7], [0x02, 0, 0, 3], [0x00, 0, 0, 0], [0x60, 0, 0, 3], [0x07, 0, 0, 0], [0x87, 0, 0, 0], [0x16, 0, 0, 0]), bytes), 7);
  const cond = (code: number, k: number) => run(prog([0x20, 0, 0, 0], [code, 0, 1, k], [0x06, 0, 0, 1], [0x06, 0, 0, 2]), w);
  t.deepEqual([cond(0x15, 0xfffffffe), cond(0x25, 0x7fffffff), cond(0x35, 0xfffffffe), cond(0x45, 1), cond(0x45, 2)], [1, 1, 1, 2, 1]);
  t.is(run(prog([0x05, 0, 0, 1], [0x06, 0, 0, 1], [0x06, 0, 0, 9]), bytes), 9, 'ja skips');
});

test('any program parseBpf accepts runs to a return on any bytes: no exception, an unsigned 32-bit result', (t) => {
  const codes = [0x06, 0x16, 0x0e, 0x20, 0x28, 0x30, 0x40, 0x48, 0x50, 0x80, 0x00, 0x60, 0x01, 0x61, 0x81, 0xb1, 0x02, 0x03, 0x04, 0x0c, 0x14, 0x1c, 0x24, 0x2c, 0x34, 0x3c, 0x44, 0x4c, 0x54, 0x5c, 0x64, 0x6c, 0x74, 0x7c, 0x84, 0x94, 0x9c, 0xa4, 0xac, 0x05, 0x15, 0x1d, 0x25, 0x2d, 0x35, 0x3d, 0x45, 0x4d, 0x07, 0x87];
  const ins = fc.tuple(fc.constantFrom(...codes), fc.nat(4), fc.nat(4), fc.oneof(fc.nat(20), fc.nat(0xffffffff)));
  let ran = 0;
  fc.assert(fc.property(fc.array(ins, { minLength: 1, maxLength: 24 }), fc.uint8Array({ maxLength: 64 }), fc.nat(100), (list, bytes, extra) => {
    let p: Int32Array;
    try {
      p = parseBpf(`${list.length + 1}\n${[...list, [6, 0, 0, 1]].map((i) => i.join(' ')).join('\n')}\n`);
    } catch (e) {
      return e instanceof RangeError;
    }
    ran++;
    const r = bpfFilter(p, bytes, 0, bytes.length, bytes.length + extra);
    return Number.isInteger(r) && r >= 0 && r <= 0xffffffff;
  }), { numRuns: 3000 });
  t.true(ran > 300, `${ran} programs ran`);
});

test('a CaptureFilter compiles once per link type and byte order, counts what it rejects, and filters frames of a link type sockcap does not decode as well; where libpcap refuses such a link type, its frames are rejected and the reason kept', (t) => {
  const asked: string[] = [];
  // accept frames whose first byte is 1; libpcap cannot filter link types 189 (USB) and 147 (USER0)
  const f = new CaptureFilter('first byte is 1', (expr, lt, be) => {
    asked.push(`${lt}${be ? ' big-endian' : ''}`);
    if (lt === 189 || lt === 147) throw new FilterRefused(expr, lt, `DLT ${lt} link-layer type filtering not implemented`);
    return '4\n48 0 0 0\n21 0 1 1\n6 0 0 65535\n6 0 0 0\n';
  });
  const frame = (lt: number, b: number) => new Mbuf(Uint8Array.from([b, 0, 0, 0]), 0, 4, { caplen: 4, origLen: 4, tsSec: 0, tsNsec: 0, linktype: lt, ifidx: 0, frameNo: 1 });
  // 9 (PPP) is not decoded by sockcap, but libpcap filters it: its frames are filtered like any
  t.deepEqual([frame(1, 1), frame(1, 2), frame(101, 1), frame(101, 0), frame(9, 0), frame(9, 1), frame(189, 1), frame(189, 0), frame(147, 1)].map((m) => f.match(m)),
    [true, false, true, false, false, true, false, false, false]);
  t.deepEqual([f.match(frame(0, 1), true), f.match(frame(0, 1), false), f.match(frame(0, 1), true)], [true, true, true]);
  t.deepEqual(asked, ['1', '101', '9', '189', '147', '0 big-endian', '0'], 'once per link type and byte order, refused ones too');
  t.is(f.rejected, 6);
  t.deepEqual([...f.unfilterable], [[189, { reason: 'DLT 189 link-layer type filtering not implemented', frames: 2 }], [147, { reason: 'DLT 147 link-layer type filtering not implemented', frames: 1 }]]);
  // refused for a link type sockcap decodes: the expression does not apply there, a usage error
  const eth = new CaptureFilter('z', (expr, lt) => { throw new FilterRefused(expr, lt, 'not for this one'); });
  t.throws(() => eth.match(frame(1, 1)), { instanceOf: FilterRefused, message: "filter 'z' (link type EN10MB): not for this one" });
  // a compiler that did not run (tcpdump missing, hung) is an error for any link type, not a rejection
  const gone = new CaptureFilter('w', () => { throw new SockcapError('ERR_USAGE', 'tcpdump is not installed'); });
  t.throws(() => gone.match(frame(189, 1)), { message: 'tcpdump is not installed' });
  t.is(gone.unfilterable.size, 0);
  const bad = new CaptureFilter('x', () => { throw new SockcapError('ERR_USAGE', 'no'); });
  t.throws(() => bad.match(frame(1, 1)), { message: 'no' });
  // text the compiler gave that is no program is a usage error naming the filter, not a crash
  const odd = new CaptureFilter('y', () => 'Warning: something\n2\n6 0 0 1\n');
  const e = t.throws(() => odd.match(frame(1, 1)), { instanceOf: SockcapError });
  t.is(e?.code, 'ERR_USAGE');
  t.regex(e?.message ?? '', /^filter 'y' \(link type EN10MB\): the compiled program is not one sockcap runs \(not a BPF program/);
});

test('a session\'s filter is applied as the file is read: the frames that pass keep their frame numbers in the file, the rest are counted in the file\'s filtered', async (t) => {
  const file = fixture('tcp/smtp.pcap');
  const udp = (m: Mbuf) => m.buf[m.off + 23] === 17;
  const all: Mbuf[] = [];
  for await (const b of readCaptures([{ name: file }], new CaptureSession())) all.push(...b);
  const session = new CaptureSession();
  // ldb [23]; jeq #17; accept or not: UDP over untagged IPv4
  session.filter = new CaptureFilter('udp', () => '4\n48 0 0 23\n21 0 1 17\n6 0 0 65535\n6 0 0 0\n');
  const got: number[] = [];
  for await (const b of readCaptures([{ name: file }], session)) got.push(...b.map((m) => m.hdr!.frameNo));
  t.deepEqual(got, all.filter(udp).map((m) => m.hdr!.frameNo));
  t.true(got.length > 0);
  t.notDeepEqual(got, got.map((_, i) => i + 1), 'not numbered again from 1');
  t.is(session.files[0]!.filtered, all.length - got.length);
  t.is(session.frames, all.length);
});

test('the compiler as a program: one missing says to install tcpdump or use the pipe; one that hangs is stopped, a usage error; one that fails gives its last tcpdump: line', (t) => {
  const d = mkdtempSync(join(tmpdir(), 'sockcap-fake-tcpdump-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  const fake = (name: string, body: string) => {
    const f = join(d, name);
    writeFileSync(f, `#!/bin/sh\n${body}\n`);
    chmodSync(f, 0o755);
    return f;
  };
  const code = (f: () => unknown) => t.throws(f, { instanceOf: SockcapError });
  const missing = code(() => tcpdumpCompile('tcp', 1, false, join(d, 'nothing-here')));
  t.regex(missing?.message ?? '', /^filter 'tcp': a capture filter on files is compiled by tcpdump .* which is not installed \(apt-get install tcpdump\), or filter in a pipe: tcpdump -r FILE -w - 'tcp' \| sockcap \.\.\.$/);
  const t0 = Date.now();
  const hung = code(() => tcpdumpCompile('tcp', 1, false, fake('hangs', 'sleep 30'), 300));
  t.is(hung?.message, "filter 'tcp': tcpdump did not compile it within 0.3 s");
  t.true(Date.now() - t0 < 10_000);
  const fails = code(() => tcpdumpCompile('tcp', 1, false, fake('fails', 'echo "reading from file x" >&2; echo "tcpdump: it is broken" >&2; exit 1')));
  t.is(fails?.message, "filter 'tcp' (link type EN10MB): it is broken");
  t.is(fails?.code, 'ERR_USAGE');
  // only a refusal (tcpdump ran and said why) may reject the frames of a link type sockcap does not decode
  t.true(fails instanceof FilterRefused);
  t.is((fails as FilterRefused).why, 'it is broken');
  t.false(missing instanceof FilterRefused);
  t.false(hung instanceof FilterRefused);
});

/**
 * The frames' bytes, in order, of a capture file (null when sockcap cannot read it whole), each
 * cut to the file's snaplen as libpcap's reader cuts a record longer than that.
 */
async function frames(file: string, f: CaptureFilter | null = null): Promise<string[] | null> {
  const out: string[] = [];
  const session = new CaptureSession();
  // the reader applies it, as the commands have it do (with each file's byte order)
  session.filter = f;
  try {
    for await (const batch of readCaptures([{ name: file }], session)) {
      const cut = session.files[0]!.snaplen || Infinity;
      for (const m of batch) out.push(Buffer.from(m.buf.subarray(m.off, m.off + Math.min(m.len, cut))).toString('base64'));
    }
  } catch (e) {
    if (e instanceof SockcapError && e.code === 'ERR_USAGE') throw e; // the filter, not the file
    return null;
  }
  return out;
}

/** The frames `tcpdump -r FILE -w - EXPR` keeps, or null when tcpdump refuses the file or the filter. */
async function tcpdumpPasses(file: string, expr: string, dir: string): Promise<string[] | null> {
  const out = join(dir, 'tcpdump.pcap');
  const r = spawnSync('tcpdump', ['-r', file, '-w', out, '--', expr], { encoding: 'utf8' });
  return r.status === 0 ? frames(out) : null;
}

const FILTERS = ['tcp', 'udp or icmp', 'ip6', 'tcp port 80 or tcp port 25', 'net 10.0.0.0/8 and not host 10.0.0.1', 'tcp[tcpflags] & (tcp-syn|tcp-fin) != 0', 'vlan and tcp', 'greater 600', 'ip[6:2] & 0x3fff != 0', 'arp'];

when(HAS_TCPDUMP, 'needs tcpdump')('a capture filter passes the packets tcpdump -r passes, packet for packet, over every fixture and corpus capture both read (Ethernet, VLAN, SLL, SLL2, raw IP, loopback, IPv6, fragments), or both refuse the filter for the link type', async (t) => {
  const files = readdirSync(fixture('')).flatMap((d) => (d.includes('.') ? [] : readdirSync(fixture(d)).filter((f) => /\.pcap(ng)?$/.test(f)).map((f) => fixture(`${d}/${f}`))));
  if (HAS_CORPUS) files.push(...readdirSync(CORPUS).filter((f) => /\.pcap(ng)?$/.test(f)).map(corpus));
  else t.log(`no corpus at ${CORPUS}: fixtures only`);
  const dir = mkdtempSync(join(tmpdir(), 'sockcap-bpf-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  let compared = 0;
  let packets = 0;
  for (const expr of FILTERS) {
    const f = new CaptureFilter(expr);
    for (const file of files) {
      const want = await tcpdumpPasses(file, expr, dir);
      let got: string[] | null;
      try {
        got = await frames(file, f);
      } catch (e) {
        // the filter does not apply to the link type (vlan on SLL2): tcpdump must refuse it too
        t.true(e instanceof SockcapError && want === null, `${file}: '${expr}': ${(e as Error).message}`);
        continue;
      }
      if (want === null || got === null) continue; // a file one of the two cannot read whole
      t.deepEqual(got, want, `${file}: '${expr}'`);
      compared++;
      packets += want.length;
    }
  }
  t.true(compared > FILTERS.length * 5, `${compared} file and filter pairs compared`);
  t.log(`${compared} file and filter pairs, ${packets} packets passed, the same as tcpdump's`);
});

when(HAS_TCPDUMP, 'needs tcpdump')('NULL and LOOP captures written in either byte order: a filter passes what tcpdump -r passes (NULL\'s address family word is in the capturing host\'s order, which is the file\'s; LOOP\'s in network order)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sockcap-bpf-null-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const v4 = (sport: number, dport: number) => tcpFrame({ sport, dport }).subarray(14);
  const v6 = (sport: number, dport: number) => tcpFrame({ src: '2001:db8::1', dst: '2001:db8::2', sport, dport }).subarray(14);
  // AF_INET is 2 everywhere; AF_INET6 is 24 (NetBSD, OpenBSD), 28 (FreeBSD), 30 (macOS), 10 (Linux)
  const packets: Array<[number, Uint8Array]> = [[2, v4(40000, 80)], [2, v4(40001, 25)], [24, v6(40002, 80)], [28, v6(40003, 25)], [30, v6(40004, 80)], [10, v6(40005, 80)], [2, v4(40006, 443)]];
  const exprs = ['ip', 'ip6', 'tcp port 80', 'tcp and not port 25', 'ip6 and tcp port 80'];
  const passed = new Map<string, number[]>();
  for (const [linktype, bigEndian] of [[0, false], [0, true], [108, false], [108, true]] as const) {
    const recs = packets.map(([af, ip]) => {
      const hdr = Buffer.alloc(4);
      if (linktype === 108 || bigEndian) hdr.writeUInt32BE(af);
      else hdr.writeUInt32LE(af);
      return { data: Buffer.concat([hdr, ip]) };
    });
    const file = join(dir, `lt${linktype}-${bigEndian ? 'be' : 'le'}.pcap`);
    writeFileSync(file, pcapFile(recs, { linktype, bigEndian }));
    for (const expr of exprs) {
      const want = await tcpdumpPasses(file, expr, dir);
      const got = await frames(file, new CaptureFilter(expr));
      t.not(want, null, `tcpdump reads ${file} with '${expr}'`);
      t.deepEqual(got, want, `${file}: '${expr}'`);
      const counts = passed.get(expr) ?? [];
      counts.push(got!.length);
      passed.set(expr, counts);
    }
  }
  // the same packets in every file: what passes cannot depend on the byte order or the link type
  for (const [expr, counts] of passed) t.true(counts.every((n) => n === counts[0]), `'${expr}' passes ${counts.join(', ')} frames`);
  t.is(passed.get('ip')![0], 3);
  t.true(passed.get('ip6')![0]! >= 3, 'the BSD families at least');
});

/** A little-endian pcapng file: one interface per link type given, then each frame on its interface. */
function pcapng(linktypes: readonly number[], frames: ReadonlyArray<[iface: number, data: Uint8Array]>): Buffer {
  const block = (type: number, body: Buffer) => {
    const len = 12 + ((body.length + 3) & ~3);
    const b = Buffer.alloc(len);
    b.writeUInt32LE(type, 0);
    b.writeUInt32LE(len, 4);
    body.copy(b, 8);
    b.writeUInt32LE(len, len - 4);
    return b;
  };
  const shb = Buffer.alloc(16);
  shb.writeUInt32LE(0x1a2b3c4d, 0);
  shb.writeUInt16LE(1, 4);
  shb.writeBigInt64LE(-1n, 8);
  const parts = [block(0x0a0d0d0a, shb)];
  for (const lt of linktypes) {
    const idb = Buffer.alloc(8);
    idb.writeUInt16LE(lt, 0);
    idb.writeUInt32LE(65535, 4);
    parts.push(block(1, idb));
  }
  frames.forEach(([iface, data], i) => {
    const epb = Buffer.alloc(20 + data.length);
    epb.writeUInt32LE(iface, 0);
    epb.writeUInt32LE(i, 8); // timestamp (low word), one µs apart
    epb.writeUInt32LE(data.length, 12);
    epb.writeUInt32LE(data.length, 16);
    Buffer.from(data).copy(epb, 20);
    parts.push(block(6, epb));
  });
  return Buffer.concat(parts);
}

/** PPP in HDLC-like framing (RFC 1662: address, control, protocol), as LINKTYPE_PPP carries it, around an IP packet. */
const ppp = (ip: Uint8Array, proto = 0x0021) => Buffer.concat([Buffer.from([0xff, 0x03, proto >> 8, proto & 0xff]), ip]);

when(HAS_TCPDUMP, 'needs tcpdump')('frames of link types sockcap does not decode are filtered as tcpdump -r filters them (PPP); where libpcap cannot filter one (USB), tcpdump refuses the file and sockcap rejects its frames', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sockcap-bpf-lt-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ip = (sport: number, dport: number) => tcpFrame({ sport, dport }).subarray(14);
  const pppFile = join(dir, 'ppp.pcap');
  writeFileSync(pppFile, pcapFile([{ data: ppp(ip(40000, 80)) }, { data: ppp(ip(40001, 25)) }, { data: ppp(Buffer.alloc(20), 0xc021) }, { data: ppp(ip(40002, 80)) }], { linktype: 9 }));
  const usbFile = join(dir, 'usb.pcap');
  writeFileSync(usbFile, pcapFile([{ data: Buffer.alloc(64, 1) }, { data: Buffer.alloc(48, 2) }], { linktype: 189 }));
  for (const expr of ['tcp', 'tcp port 80', 'not tcp port 25', 'ip']) {
    const want = await tcpdumpPasses(pppFile, expr, dir);
    t.not(want, null, `tcpdump filters PPP with '${expr}'`);
    const f = new CaptureFilter(expr);
    t.deepEqual(await frames(pppFile, f), want, `PPP: '${expr}'`);
    t.is(f.unfilterable.size, 0);
    t.is(await tcpdumpPasses(usbFile, expr, dir), null, `tcpdump refuses '${expr}' on USB`);
    const u = new CaptureFilter(expr);
    t.deepEqual(await frames(usbFile, u), [], `USB: '${expr}' passes nothing`);
    t.like(u.unfilterable.get(189), { frames: 2 });
    t.regex(u.unfilterable.get(189)!.reason, /USB link-layer type filtering not implemented/);
  }
  t.deepEqual((await frames(pppFile, new CaptureFilter('tcp port 80')))!.length, 2);
});

when(HAS_TCPDUMP, 'needs tcpdump')('replay -w with a filter writes only what the filter passed, whatever the link type; the report names the link type the filter could not apply to and counts its frames', async (t) => {
  const dir = tmp(t);
  const eth = (sport: number, dport: number) => tcpFrame({ sport, dport });
  const input = join(dir, 'mixed.pcapng');
  writeFileSync(input, pcapng([1, 9, 189], [
    [0, eth(40000, 80)], [1, ppp(eth(40001, 80).subarray(14))], [2, Buffer.alloc(64, 7)], [0, eth(40002, 25)],
    [1, ppp(eth(40003, 25).subarray(14))], [2, Buffer.alloc(40, 8)], [1, ppp(Buffer.alloc(20), 0xc021)],
  ]));
  const out = join(dir, 'out.pcapng');
  const r = await cli(['replay', input, 'tcp', 'port', '80', '-w', out, '--json']);
  t.is(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  t.is(s.filter, 'tcp port 80');
  t.is(s.files[0].filtered, 5);
  t.deepEqual(s.unfilterable, [{ linktype: 189, frames: 2, reason: 'USB link-layer type filtering not implemented' }]);
  const kept: Array<[number, number]> = [];
  for await (const b of readCaptures([{ name: out }], new CaptureSession())) for (const m of b) kept.push([m.hdr!.linktype, m.len]);
  t.deepEqual(kept, [[1, eth(40000, 80).length], [9, eth(40001, 80).length - 14 + 4]], 'the Ethernet and the PPP frame to port 80, nothing else');
  const text = await cli(['replay', input, 'tcp', 'port', '80']);
  t.is(text.code, 0, text.stderr);
  t.regex(text.stdout, /^filter: 2 frames of LINKTYPE_189 \(189\) rejected: libpcap cannot filter that link type \(tcpdump: USB link-layer type filtering not implemented\)$/m);
});
