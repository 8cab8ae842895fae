import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHUNK_SIZE } from '../../core/capture/chunks.js';
import { FramePool } from '../../core/capture/frame-pool.js';
import { readCapture } from '../../core/capture/reader.js';
import { CaptureSession, FIRST_BATCH, MAX_BATCH } from '../../core/capture/session.js';
import { ChunkZone } from '../../core/capture/zone.js';
import { Ext, Mbuf, PacketHeader, type PktHdr } from '../../core/mbuf/mbuf.js';
import { runPipeline } from '../../core/pipeline.js';
import { DrainApp } from '../../core/socket/reader.js';
import { Stack } from '../../core/stack.js';
import { pcapFile } from '../helpers/build.js';
import { cli, tmp } from '../helpers/cli.js';
import { fixture } from '../helpers/paths.js';
import { type FrameData, readAll } from '../helpers/read.js';

test('FramePool: a frame is new until frames are given back, then made of their objects with every field set again; a foreign or marked header is not taken back, nor more than it keeps', (t) => {
  const pool = new FramePool(2);
  const buf = new Uint8Array(64);
  const ext = new Ext();
  const a = pool.frame(buf, 4, 10, ext, 20, 1, 2, 1, 0, 1);
  t.true(a.hdr instanceof PacketHeader);
  t.deepEqual({ ...a.hdr }, { caplen: 10, origLen: 20, tsSec: 1, tsNsec: 2, linktype: 1, ifidx: 0, frameNo: 1 });
  a.next = new Mbuf(buf, 0, 1);
  a.nextpkt = new Mbuf(buf, 0, 1);
  pool.recycle([a]);
  const other = new Uint8Array(8);
  const b = pool.frame(other, 1, 5, null, 5, 7, 8, 101, 3, 2);
  t.is(b, a, 'the same object again');
  t.is(pool.reused, 1);
  t.true(b.buf === other && b.off === 1 && b.len === 5 && b.ext === null && b.next === null && b.nextpkt === null);
  t.deepEqual({ ...b.hdr }, { caplen: 5, origLen: 5, tsSec: 7, tsNsec: 8, linktype: 101, ifidx: 3, frameNo: 2 });
  // a header that is not the pool's (ip-reass builds literals) or carries a splice's loop count stays out
  const lit = new Mbuf(buf, 0, 1, { caplen: 1, origLen: 1, tsSec: 0, tsNsec: 0, linktype: 1, ifidx: 0, frameNo: 3 });
  const looped = pool.frame(buf, 0, 1, null, 1, 0, 0, 1, 0, 4);
  (looped.hdr as PktHdr).loopcnt = 1;
  const c = pool.frame(buf, 0, 1, null, 1, 0, 0, 1, 0, 5);
  const d = pool.frame(buf, 0, 1, null, 1, 0, 0, 1, 0, 6);
  const e = pool.frame(buf, 0, 1, null, 1, 0, 0, 1, 0, 7);
  pool.recycle([lit, looped, c, d, e]);
  const again = [pool.frame(buf, 0, 1, null, 1, 0, 0, 1, 0, 8), pool.frame(buf, 0, 1, null, 1, 0, 0, 1, 0, 9), pool.frame(buf, 0, 1, null, 1, 0, 0, 1, 0, 10)];
  t.true(again[0] !== again[1] && [c, d].includes(again[0]!) && [c, d].includes(again[1]!), 'two kept (its limit), the foreign and the marked left out');
  t.false([lit, looped, e].includes(again[2]!), 'then new objects');
});

/** The stream digests of the connections a run through runPipeline finished, as a command's session reads the file. */
async function commandRun(file: string): Promise<{ streams: Array<[number, string | undefined, string | undefined]>; reused: number; reassembled: number; refs: number[] }> {
  const session = new CaptureSession();
  session.zone = new ChunkZone(CHUNK_SIZE);
  const stack = new Stack(session, { app: new DrainApp(true), debug: true });
  const r = await runPipeline([{ name: file }], stack);
  if (r.error) throw r.error;
  return {
    streams: stack.finished.map((c) => [c.stream, c.c2s.sha256, c.s2c.sha256]),
    reused: session.pool.reused,
    reassembled: stack.stats.protocols['ipv4.reassembled'] ?? 0,
    // every connection has finished: no chunk the reader moved past may still be referenced
    refs: session.zone.retiredExts().map((x) => x.refs),
  };
}

test('a command\'s frames are made again from the frames of batches it finished, and IP reassembly keeps its own copy of a first fragment that waits into the next batch (and the next read chunk): the streams are those of a run that makes every frame new, the chunks\' references add up', async (t) => {
  const dir = tmp(t);
  // the HTTP request in 11 IPv4 fragments, behind filler frames that end the first read chunk
  // (4 MiB) exactly with its first fragment: that fragment is the last frame of a batch (a batch
  // ends with its chunk), the others come in the next batch, from the second chunk
  const recs: Array<{ data: Uint8Array; tsSec: number; tsFrac: number }> = [];
  const session = new CaptureSession();
  for await (const b of readCapture({ name: fixture('ip/frag-http-req.pcap') }, session))
    for (const m of b) recs.push({ data: new Uint8Array(m.data()), tsSec: m.hdr!.tsSec, tsFrac: Math.floor(m.hdr!.tsNsec / 1000) });
  t.is(session.ifaces[0]!.linktype, 1);
  const firstFrag = recs.findIndex((r) => r.data[12] === 8 && r.data[13] === 0 && (r.data[14 + 6]! & 0x20) !== 0 && r.data[14 + 7] === 0);
  t.true(firstFrag >= 0, 'the fixture has a first fragment');
  const at = recs[firstFrag]!;
  const filler = (n: number) => ({ data: Uint8Array.from([...Array(12).fill(2), 0x88, 0xb5, ...Array(n - 14).fill(0)]), tsSec: at.tsSec, tsFrac: at.tsFrac });
  const record = (r: { data: Uint8Array }) => 16 + r.data.length;
  const need = CHUNK_SIZE - 24 - recs.slice(0, firstFrag + 1).reduce((a, r) => a + record(r), 0);
  const fill = Array.from({ length: Math.floor(need / 1016) - 1 }, () => filler(1000));
  fill.push(filler(need - fill.length * 1016 - 16));
  t.true(fill.length < MAX_BATCH && fill.at(-1)!.data.length >= 60);
  const file = join(dir, 'straddle.pcap');
  const bytes = pcapFile([...recs.slice(0, firstFrag), ...fill, ...recs.slice(firstFrag)]);
  t.is(24 + [...recs.slice(0, firstFrag), ...fill, at].reduce((a, r) => a + record(r), 0), CHUNK_SIZE, 'the first fragment ends the first chunk');
  writeFileSync(file, bytes);
  const whole = await commandRun(fixture('ip/frag-http-req.pcap'));
  // Stack.check (debug) runs after every batch: the chunks' references against what the queues hold
  const straddled = await commandRun(file);
  t.true(straddled.reused > 0, `frames made again: ${straddled.reused}`);
  t.true(straddled.reassembled > 0, 'the datagram was reassembled across the batches');
  t.true(whole.streams.some(([, c2s]) => c2s !== undefined));
  t.deepEqual(straddled.streams, whole.streams);
  t.true(straddled.refs.length > 0);
  t.deepEqual(straddled.refs, straddled.refs.map(() => 0), 'every retired chunk let go of');
});

test('a file\'s batches start at FIRST_BATCH frames and double up to MAX_BATCH, in pcap and pcapng alike; every frame comes once, in order', async (t) => {
  const dir = tmp(t);
  const file = join(dir, 'ramp.pcap');
  const n = 20000;
  writeFileSync(file, pcapFile(Array.from({ length: n }, (_, i) => ({ data: Uint8Array.of(i & 255, (i >> 8) & 255, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x88, 0xb5) }))));
  const ng = join(dir, 'ramp.pcapng');
  const w = await cli(['replay', file, '-q', '-w', ng]);
  t.is(w.code, 0, w.stderr);
  const expected: number[] = [];
  for (let size = FIRST_BATCH, left = n; left > 0; size = Math.min(MAX_BATCH, size * 2)) {
    expected.push(Math.min(size, left));
    left -= Math.min(size, left);
  }
  t.is(FIRST_BATCH, 64);
  t.deepEqual(expected.slice(0, 9), [64, 128, 256, 512, 1024, 2048, 4096, 8192, 3680]);
  for (const name of [file, ng]) {
    const sizes: number[] = [];
    let next = 0;
    let ordered = true;
    for await (const b of readCapture({ name }, new CaptureSession())) {
      sizes.push(b.length);
      for (const m of b) ordered &&= m.data()[0] === (next & 255) && m.data()[1] === ((next++ >> 8) & 255);
    }
    t.deepEqual(sizes, expected, name);
    t.true(ordered && next === n, `${name}: every frame once, in order`);
  }
});

test('replay reports the frames made again (JSON framesReused, the read chunks line), with -w too (its writers keep views of the bytes, never the frame): the output is the input, byte for byte', async (t) => {
  const dir = tmp(t);
  const file = join(dir, 'many.pcap');
  const n = MAX_BATCH * 2 + 100;
  // one frame more than two batches: the second and third batches are made of the first's objects
  writeFileSync(file, pcapFile(Array.from({ length: n }, (_, i) => ({ data: Uint8Array.of(i & 255, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x88, 0xb5) }))));
  const r = await cli(['replay', file, '--json', '-q']);
  t.is(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  t.is(s.frames, n);
  t.is(s.framesReused, n - MAX_BATCH, 'every frame after the first batch');
  const text = await cli(['replay', file, '-q']);
  t.regex(text.stdout, new RegExp(`^read chunks: .*; ${(n - MAX_BATCH).toLocaleString('en-US')} frames made from processed ones$`, 'm'));
  for (const out of ['out.pcap', 'out.pcapng']) {
    const w = await cli(['replay', file, '--json', '-q', '-w', join(dir, out)]);
    t.is(w.code, 0, w.stderr);
    t.is(JSON.parse(w.stdout).framesReused, n - MAX_BATCH, out);
  }
  t.true(readFileSync(join(dir, 'out.pcap')).equals(readFileSync(file)));
  const back = await readAll({ name: join(dir, 'out.pcapng') });
  const orig = await readAll({ name: file });
  // (one string: ava's deep comparison of 16,000 objects takes minutes)
  // the time as one count of nanoseconds: this capture's µs fields run past 999,999, which pcapng's ticks carry into the second
  const lines = (f: FrameData[]) => f.map((x) => `${BigInt(x.tsSec) * 1000000000n + BigInt(x.tsNsec)} ${x.caplen} ${x.origLen} ${x.linktype} ${x.hex}`).join('\n');
  t.is(back.frames.length, n);
  t.true(lines(back.frames) === lines(orig.frames), 'pcapng: every frame, its bytes and time');
});
