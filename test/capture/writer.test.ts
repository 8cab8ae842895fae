import test from 'ava';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fixture, corpus, HAS_CORPUS, HAS_TSHARK } from '../helpers/paths.js';
import { readAll } from '../helpers/read.js';
import { cli, tmp } from '../helpers/cli.js';
import { when } from '../helpers/skip.js';
import { ticksToTime, timeToTicks } from '../../core/capture/pcapng-time.js';
import fc from 'fast-check';
import { Writable } from 'node:stream';
import { StreamSink } from '../../core/capture/sink.js';
import { Ext } from '../../core/mbuf/mbuf.js';

const run = promisify(execFile);

/** What tshark says of each frame: time, lengths, interface link type, and the bytes. */
async function tsharkFrames(path: string): Promise<string> {
  const { stdout: fields } = await run('tshark', ['-r', path, '-T', 'fields', '-e', 'frame.time_epoch', '-e', 'frame.len',
    '-e', 'frame.cap_len', '-e', 'frame.encap_type'], { maxBuffer: 1 << 26 });
  const { stdout: hex } = await run('tshark', ['-r', path, '-x'], { maxBuffer: 1 << 26 });
  return fields + '\n' + hex.split('\n').filter((l) => /^[0-9a-f]{4}  /.test(l)).join('\n');
}

const CASES: Array<[string, string, boolean]> = [
  ['pcap µs', fixture('tcp/smtp.pcap'), true],
  ['pcap ns (SLL)', fixture('link/sll-nano.pcap'), true],
  ['pcap ns big-endian', fixture('link/nanosecs-big-endian.pcap'), true],
  ['pcapng multi-interface', fixture('link/many-interfaces.pcapng'), true],
  ['pcapng three sections, both byte orders', fixture('link/three-sections.pcapng'), false],
];

for (const [title, input] of CASES) {
  test(`replay -w keeps frames, bytes and timestamps: ${title} (our reader)`, async (t) => {
    const out = join(tmp(t), 'out');
    const r = await cli(['replay', input, '-w', out, '-q']);
    t.is(r.code, 0, r.stderr);
    const a = await readAll({ name: input });
    const b = await readAll({ name: out });
    t.is(b.error, null);
    const strip = (f: { frameNo: number }[]) => f.map(({ frameNo: _, ...rest }) => rest);
    t.deepEqual(strip(b.frames), strip(a.frames));
    t.is(b.session.files[0]!.format, a.session.files[0]!.format);
  });
}

for (const [title, input, exact] of CASES) {
  when(HAS_TSHARK, 'needs tshark')(`replay -w output is packet-for-packet identical under tshark: ${title}`, async (t) => {
    const out = join(tmp(t), 'out');
    t.is((await cli(['replay', input, '-w', out, '-q'])).code, 0);
    const before = await tsharkFrames(input);
    const after = await tsharkFrames(out);
    if (exact) t.is(after, before);
    else {
      // custom blocks are not packets: tshark shows them as frames in the input only
      const { frames } = await readAll({ name: input });
      t.is(after.split('\n').filter((l) => /^\d+\.\d+\t/.test(l)).length, frames.length);
    }
  });
}

when(HAS_CORPUS && HAS_TSHARK, 'needs ../shared/corpus and tshark')('mixed link types survive into pcapng; classic pcap output refuses them', async (t) => {
  const d = tmp(t);
  const r = await cli(['replay', fixture('tcp/smtp.pcap'), corpus('gopacket__test_loopback.pcap'), '-w', join(d, 'o.pcapng'), '-q', '--out-format', 'pcapng']);
  t.is(r.code, 0, r.stderr);
  const { stdout } = await run('tshark', ['-r', join(d, 'o.pcapng'), '-T', 'fields', '-e', 'frame.encap_type']);
  t.deepEqual(new Set(stdout.split('\n').filter(Boolean)), new Set(['1', '15']));
  const bad = await cli(['replay', fixture('tcp/smtp.pcap'), corpus('gopacket__test_loopback.pcap'), '-w', join(d, 'o.pcap'), '-q']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /classic pcap file holds one link type/);
});

test('pcapng tick conversion is exact for decimal resolutions (BigInt reference)', (t) => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 9 }),
    (hi, lo, k) => {
      const out = { tsSec: 0, tsNsec: 0 };
      ticksToTime(hi, lo, k, 0, out);
      const ticks = (BigInt(hi) << 32n) | BigInt(lo);
      const d = 10n ** BigInt(k);
      return out.tsSec === Number(ticks / d) && out.tsNsec === Number((ticks % d) * 10n ** BigInt(9 - k));
    }));
  fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 34 - 1 }), fc.integer({ min: 0, max: 999_999_999 }), fc.integer({ min: 0, max: 9 }),
    (sec, ns, k) => {
      const [hi, lo] = timeToTicks(sec, ns, k);
      const want = BigInt(sec) * 10n ** BigInt(k) + BigInt(Math.floor(ns / 10 ** (9 - k)));
      return ((BigInt(hi) << 32n) | BigInt(lo)) === (want & 0xffffffffffffffffn);
    }));
  const out = { tsSec: 0, tsNsec: 0 };
  ticksToTime(0, 3 << 20 | 1 << 19, 0x80 | 20, 0, out); // 2^-20 resolution: 3.5 s
  t.deepEqual(out, { tsSec: 3, tsNsec: 500_000_000 });
});

test('viewsAfter: what is left after a short write, as views of the same bytes', async (t) => {
  const { viewsAfter } = await import('../../core/capture/sink.js');
  const a = Uint8Array.of(1, 2, 3);
  const b = Uint8Array.of(4, 5);
  const rest = viewsAfter([a, b], 2);
  t.deepEqual(rest.map((v) => [...v]), [[3], [4, 5]]);
  t.is(rest[0]!.buffer, a.buffer, 'a view, not a copy');
  t.deepEqual(viewsAfter([a, b], 3).map((v) => [...v]), [[4, 5]]);
  t.deepEqual(viewsAfter([a, b], 5), []);
});

/** Every record's caplen in a little-endian classic pcap, and the header's snapshot length. */
function pcapLengths(b: Buffer): { snaplen: number; caplens: number[] } {
  const caplens: number[] = [];
  for (let o = 24; o + 16 <= b.length; o += 16 + b.readUInt32LE(o + 8)) caplens.push(b.readUInt32LE(o + 8));
  return { snaplen: b.readUInt32LE(16), caplens };
}

test('-w pcap merging a capture with a small snapshot length and larger frames after it: the header is raised so that no record is longer (gopacket refuses those), unsent or at close', async (t) => {
  const { readFileSync, writeFileSync } = await import('node:fs');
  const { tcpFrame, pcapFile } = await import('../helpers/build.js');
  const d = tmp(t);
  const small = (n: number) => pcapFile(Array.from({ length: n }, (_, i) => ({ data: tcpFrame({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1000 + (i % 50), dport: 80, seq: i, flags: 0x10, payload: 'x'.repeat(40) }) })), { snaplen: 100 });
  const big = pcapFile([{ data: tcpFrame({ src: '10.0.0.3', dst: '10.0.0.4', sport: 5, dport: 80, seq: 1, flags: 0x18, payload: 'y'.repeat(1400) }) }]);
  writeFileSync(join(d, 'big.pcap'), big);
  // 10 frames: the header is still unsent at the big frame; 60,000 (6 MB): sent, patched at close
  for (const n of [10, 60_000]) {
    writeFileSync(join(d, 'small.pcap'), small(n));
    const out = join(d, `out-${n}.pcap`);
    const r = await cli(['replay', join(d, 'small.pcap'), join(d, 'big.pcap'), '-w', out, '-q', '--json']);
    t.is(r.code, 0, r.stderr);
    const { snaplen, caplens } = pcapLengths(readFileSync(out));
    t.is(caplens.length, n + 1);
    t.is(Math.max(...caplens), 1454);
    t.is(snaplen, 262144, `${n} frames first`);
    // the capture as it was, but for the header's snapshot length
    const whole = readFileSync(out);
    t.true(whole.subarray(24).equals(Buffer.concat([small(n).subarray(24), big.subarray(24)])));
  }
  // on a stream whose header is out already: an error naming the frame, not a file readers refuse
  const r = await cli(['replay', join(d, 'small.pcap'), join(d, 'big.pcap'), '-w', '-']);
  t.is(r.code, 2);
  t.regex(r.stderr, /frame 60,?001 has 1454 bytes, more than the snapshot length \(100\) this pcap stream's header declared and sent: write a file, or pcapng/);
  // the same for a FIFO given as -w (a file that cannot be written at an offset)
  const fifo = join(d, 'out.fifo');
  await run('mkfifo', [fifo]);
  const reader = run('sh', ['-c', 'cat "$1" > /dev/null', 'sh', fifo]);
  const f = await cli(['replay', join(d, 'small.pcap'), join(d, 'big.pcap'), '-w', fifo, '-q']);
  await reader;
  t.is(f.code, 2, f.stderr);
  t.regex(f.stderr, /frame 60,?001 has 1454 bytes, more than the snapshot length \(100\)/);
});

test('a capture whose records are longer than its own header says (as dpkt writes them) comes out of -w with a header that covers them, pcap and pcapng', async (t) => {
  const { readFileSync, writeFileSync } = await import('node:fs');
  const { tcpFrame, pcapFile } = await import('../helpers/build.js');
  const d = tmp(t);
  const frames = [40, 1400, 200].map((n, i) => ({ data: tcpFrame({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1000, dport: 80, seq: i, flags: 0x18, payload: 'z'.repeat(n) }) }));
  writeFileSync(join(d, 'in.pcap'), pcapFile(frames, { snaplen: 100 }));
  for (const fmt of ['pcap', 'pcapng']) {
    const out = join(d, `out.${fmt}`);
    const r = await cli(['replay', join(d, 'in.pcap'), '-w', out, '--out-format', fmt, '-q', '--json']);
    t.is(r.code, 0, r.stderr);
    const b = readFileSync(out);
    let snaplen = -1;
    const caplens: number[] = [];
    if (fmt === 'pcap') {
      snaplen = b.readUInt32LE(16);
      for (let o = 24; o + 16 <= b.length; o += 16 + b.readUInt32LE(o + 8)) caplens.push(b.readUInt32LE(o + 8));
    } else {
      for (let o = 0; o + 12 <= b.length; o += b.readUInt32LE(o + 4)) {
        const type = b.readUInt32LE(o);
        if (type === 1) snaplen = b.readUInt32LE(o + 12);
        if (type === 6) caplens.push(b.readUInt32LE(o + 20));
      }
    }
    t.deepEqual(caplens, frames.map((f) => f.data.length), fmt);
    t.true(snaplen >= Math.max(...caplens), `${fmt}: snaplen ${snaplen}`);
  }
});

test('-w names the format when --out-format does not: *.pcapng gets pcapng from a pcap input (the same frames); *.pcap keeps the first input\'s format; --out-format wins over the name', async (t) => {
  const d = tmp(t);
  const magic = (f: string) => readFileSync(join(d, f)).readUInt32LE(0);
  const w = async (input: string, out: string, ...more: string[]) => {
    const r = await cli(['replay', fixture(input), '-w', join(d, out), '-q', '--json', ...more]);
    t.is(r.code, 0, r.stderr);
  };
  await w('tcp/smtp.pcap', 'a.pcapng');
  t.is(magic('a.pcapng'), 0x0a0d0d0a, 'pcapng section header block');
  const frames = async (f: string) => (await readAll({ name: f })).frames.map(({ tsSec, tsNsec, origLen, hex }) => ({ tsSec, tsNsec, origLen, hex }));
  const back = await frames(join(d, 'a.pcapng'));
  t.is(back.length, 60);
  t.deepEqual(back, await frames(fixture('tcp/smtp.pcap')));
  await w('link/many-interfaces.pcapng', 'b.pcap');
  t.is(magic('b.pcap'), 0x0a0d0d0a, 'a pcapng input stays pcapng (classic pcap might not hold it)');
  await w('tcp/smtp.pcap', 'c.pcapng', '--out-format', 'pcap');
  t.is(magic('c.pcapng'), 0xa1b2c3d4);
  await w('tcp/smtp.pcap', 'd.out');
  t.is(magic('d.out'), 0xa1b2c3d4, 'any other name: the first input\'s');
});

/** A StreamSink over a collector: the views each write handed on. */
function collector(): { sink: StreamSink; writes: Uint8Array[] } {
  const writes: Uint8Array[] = [];
  const ws = new Writable({ write(chunk: Buffer, _e, cb) { writes.push(Uint8Array.from(chunk)); cb(); } });
  return { sink: new StreamSink(ws, false), writes };
}

test('ByteSink.pushRange: ranges that continue each other in one memory under one reference are one view, held by one reference until written; anything else starts a new one', async (t) => {
  const mem = Uint8Array.from({ length: 64 }, (_, i) => i);
  const a = new Ext();
  const b = new Ext();
  const { sink, writes } = collector();
  sink.pushRange(mem, 0, 10, a);
  sink.pushRange(mem, 10, 6, a); // continues it
  sink.pushRange(mem.subarray(16), 0, 4, a); // the same memory through another view: still continues it
  t.is(a.refs, 1, 'one reference for the whole run');
  sink.pushRange(mem, 30, 4, a); // a gap: a new run
  sink.pushRange(mem, 34, 4, b); // contiguous, but another chunk's life: a new run
  sink.push(Uint8Array.of(0xee)); // a view of its own ends the run
  sink.pushRange(mem, 38, 2, b);
  sink.pushRange(mem, 40, 2, null); // no reference: not the same run
  t.is(sink.position, 10 + 6 + 4 + 4 + 4 + 1 + 2 + 2);
  t.is(a.refs, 2);
  t.is(b.refs, 2);
  await sink.flush();
  t.is(a.refs, 0, 'released once written');
  t.is(b.refs, 0);
  t.deepEqual(writes.map((w) => w.length), [20, 4, 4, 1, 2, 2], 'one write per run');
  t.deepEqual(Buffer.concat(writes), Buffer.concat([mem.subarray(0, 20), mem.subarray(30, 38), Uint8Array.of(0xee), mem.subarray(38, 42)]));
  t.is(sink.written, 33);
  // a property: any sequence of ranges and views writes their bytes in order
  fc.assert(fc.asyncProperty(fc.array(fc.tuple(fc.nat(63), fc.nat(16), fc.nat(2), fc.boolean()), { maxLength: 40 }), async (ops) => {
    const c = collector();
    const want: Uint8Array[] = [];
    const exts = [new Ext(), new Ext(), null];
    for (const [off, n, e, view] of ops) {
      const len = Math.min(n, 64 - off);
      if (view) c.sink.push(mem.subarray(off, off + len));
      else c.sink.pushRange(mem, off, len, exts[e]!);
      want.push(mem.subarray(off, off + len));
    }
    await c.sink.flush();
    return Buffer.concat(c.writes).equals(Buffer.concat(want)) && exts.every((x) => x === null || x.refs === 0);
  }), { numRuns: 200 });
});

test('replay -w of a little-endian classic pcap writes the input back byte for byte (its records pushed as they lie in the read chunks), µs and ns, and with a filter the records it passes; a pcapng sockcap wrote comes back the same', async (t) => {
  const d = tmp(t);
  for (const input of [fixture('tcp/smtp.pcap'), fixture('link/sll-nano.pcap'), fixture('tcp/three-http-streams.pcap')]) {
    const out = join(d, 'o.pcap');
    const r = await cli(['replay', input, '-w', out, '-q']);
    t.is(r.code, 0, r.stderr);
    t.true(readFileSync(out).equals(readFileSync(input)), input);
  }
  // a filter leaves records out: what is written is the records passed, each as it was in the input
  const out = join(d, 'f.pcap');
  const r = await cli(['replay', fixture('tcp/smtp.pcap'), 'tcp', '-w', out, '-q']);
  t.is(r.code, 0, r.stderr);
  const inp = readFileSync(fixture('tcp/smtp.pcap'));
  const recs: Buffer[] = [];
  for (let p = 24; p < inp.length; p += 16 + inp.readUInt32LE(p + 8)) if (inp.readUInt16BE(p + 16 + 12) === 0x0800 && inp[p + 16 + 14 + 9] === 6) recs.push(inp.subarray(p, p + 16 + inp.readUInt32LE(p + 8)));
  t.is(recs.length, 53);
  t.true(readFileSync(out).equals(Buffer.concat([inp.subarray(0, 24), ...recs])));
  // pcapng: the blocks sockcap writes come back as they are, the interface blocks made again
  const a = join(d, 'a.pcapng');
  const b = join(d, 'b.pcapng');
  t.is((await cli(['replay', fixture('tcp/smtp.pcap'), fixture('link/sll-nano.pcap'), '-w', a, '-q'])).code, 0);
  t.is((await cli(['replay', a, '-w', b, '-q'])).code, 0);
  t.true(readFileSync(b).equals(readFileSync(a)), 'pcapng through -w again: the same bytes');
  const fr = await readAll({ name: a });
  t.is(fr.frames.length, 60 + (await readAll({ name: fixture('link/sll-nano.pcap') })).frames.length);
});
