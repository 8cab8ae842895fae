import test from 'ava';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bpfFilter, CaptureFilter, parseBpf, tcpdumpCompile } from '../../core/capture/bpf.js';
import { readCaptures } from '../../core/capture/reader.js';
import { CaptureSession } from '../../core/capture/session.js';
import { SockcapError } from '../../core/errors.js';
import { Mbuf } from '../../core/mbuf/mbuf.js';
import { corpus, CORPUS, fixture, HAS_CORPUS, HAS_TCPDUMP } from '../helpers/paths.js';
import { when } from '../helpers/skip.js';
import { pcapFile, tcpFrame } from '../helpers/build.js';

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

test('a CaptureFilter compiles once per link type and byte order, counts what it rejects, and lets frames of a link type sockcap does not decode through', (t) => {
  const asked: string[] = [];
  // accept frames whose first byte is 1
  const f = new CaptureFilter('first byte is 1', (expr, lt, be) => {
    asked.push(`${lt}${be ? ' big-endian' : ''}`);
    return '4\n48 0 0 0\n21 0 1 1\n6 0 0 65535\n6 0 0 0\n';
  });
  const frame = (lt: number, b: number) => new Mbuf(Uint8Array.from([b, 0, 0, 0]), 0, 4, { caplen: 4, origLen: 4, tsSec: 0, tsNsec: 0, linktype: lt, ifidx: 0, frameNo: 1 });
  t.deepEqual([frame(1, 1), frame(1, 2), frame(101, 1), frame(101, 0), frame(147, 0)].map((m) => f.match(m)), [true, false, true, false, true]);
  t.deepEqual([f.match(frame(0, 1), true), f.match(frame(0, 1), false), f.match(frame(0, 1), true)], [true, true, true]);
  t.deepEqual(asked, ['1', '101', '0 big-endian', '0'], 'once per link type and byte order');
  t.is(f.rejected, 2);
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
