import test from 'ava';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { StreamSink } from '../../core/capture/sink.js';
import { FlowFiles } from '../../core/capture/flow-files.js';
import { Follower } from '../../core/follow.js';
import { CaptureOutput } from '../../core/capture/output.js';
import type { StackHook } from '../../core/hook.js';
import { parseSelector } from '../../core/selector.js';
import { SpliceModel } from '../../core/splice-model.js';
import { TcpFuse } from '../../core/tcp/tcp-fuse.js';
import { Connection } from '../../core/net/in-pcb.js';
import { join } from 'node:path';
import { CaptureSession } from '../../core/capture/session.js';
import { ARENA_CHUNKS, ChunkZone, ZONE_KEEP } from '../../core/capture/zone.js';
import { m_pin, m_unpin, Mbuf } from '../../core/mbuf/mbuf.js';
import { runPipeline } from '../../core/pipeline.js';
import { replaySummary } from '../../core/report.js';
import { DrainApp } from '../../core/socket/reader.js';
import { sbappendstream, sbdrop, Sockbuf } from '../../core/socket/sockbuf.js';
import { Stack } from '../../core/stack.js';
import { generate } from '../bench/gen.js';
import { cli, tmp } from '../helpers/cli.js';
import { SimdSum } from '../../core/wire/checksum-simd.js';
import { corpus, CORPUS, fixture, HAS_CORPUS } from '../helpers/paths.js';
import { when } from '../helpers/skip.js';

/** The same memory: a chunk is its buffer and its offset in it (arena chunks share one buffer). */
const same = (x: Uint8Array, y: Uint8Array) => x.buffer === y.buffer && x.byteOffset === y.byteOffset;

for (const slots of [ARENA_CHUNKS, 0]) test(`a retired chunk is handed out again only when no queue references it, with a new Ext (${slots ? 'arena' : 'ordinary memory'})`, (t) => {
  const z = new ChunkZone(64, ZONE_KEEP, slots);
  const a = z.alloc();
  const b = z.alloc();
  t.is(z.allocated, 2);
  const extA = z.extOf(a)!;
  t.truthy(extA);
  t.is(z.extOf(Buffer.alloc(64)), null, 'memory that is not the zone\'s has no Ext');
  // a socket buffer holds two pieces of chunk a
  const sb = new Sockbuf();
  sbappendstream(sb, new Mbuf(a, 0, 10, null, extA));
  sbappendstream(sb, new Mbuf(a, 10, 0, null, extA)); // empty: not appended, not counted
  sbappendstream(sb, new Mbuf(a, 20, 5, null, extA));
  t.is(extA.refs, 2);
  z.retire(a.subarray(0, 30)); // a short last read: still chunk a
  z.retire(a); // twice is once
  const c = z.alloc();
  t.false(same(c, a), 'a is referenced: fresh memory instead');
  t.is(z.allocated, 3);
  sbdrop(sb, 12); // the first piece and 2 bytes of the second (that reference moves to the rest)
  t.is(extA.refs, 1);
  t.false(same(z.alloc(), a), 'still one reference');
  sbdrop(sb, 3);
  t.is(extA.refs, 0);
  const again = z.alloc();
  t.true(same(again, a), 'reused once nothing holds it');
  t.is(again.length, 64);
  t.is(z.reused, 1);
  const ext2 = z.extOf(again)!;
  t.not(ext2, extA, 'a new life has a new Ext');
  // an Mbuf of the old life letting go by mistake cannot free the new life early
  m_pin(new Mbuf(again, 0, 1, null, ext2));
  m_unpin(new Mbuf(a, 0, 1, null, extA));
  t.is(ext2.refs, 1);
  t.not(b, c);
});

test('a zone forgets the oldest retired chunks past its limit', (t) => {
  const z = new ChunkZone(16, 2, 0);
  const bufs = [z.alloc(), z.alloc(), z.alloc()];
  for (const b of bufs) z.extOf(b)!.refs = 1; // all held
  for (const b of bufs) z.retire(b);
  t.is(z.retiredExts().length, 2);
  t.is(z.stats().forgotten, 1, 'the oldest was still referenced when it was forgotten');
  z.extOf(bufs[0]!)!.refs = 0; // forgotten: never reused
  t.false(same(z.alloc(), bufs[0]!));
  t.is(z.stats().peakPinned, 2, 'two retired chunks were referenced when a chunk was wanted');
  z.extOf(bufs[2]!)!.refs = 0;
  t.true(same(z.alloc(), bufs[2]!));
  t.deepEqual(z.stats(), { size: 16, allocated: 4, reused: 1, peakPinned: 2, forgotten: 1, arenaSlots: 0, arenaChunks: 0 });
});

test('arena chunks are WebAssembly memories made one at a time: never forgotten, reused in place; chunks past the slots are ordinary memory', (t) => {
  const z = new ChunkZone(16, 2, 2);
  t.is(z.arenaChunks, 0, 'no memory before a chunk is wanted');
  const bufs = [z.alloc()];
  t.is(z.arenaChunks, 1, 'one chunk wanted: one memory (V8 counts each whole as external memory)');
  bufs.push(z.alloc(), z.alloc(), z.alloc());
  t.is(z.arenaChunks, 2);
  const sum = SimdSum.create()!;
  t.true(sum.inPlace(bufs[0]!.buffer) && sum.inPlace(bufs[1]!.buffer), 'both slots are summed in place');
  t.not(bufs[0]!.buffer, bufs[1]!.buffer, 'each slot its own memory');
  t.deepEqual(bufs.map((b) => b.length), [16, 16, 16, 16]);
  t.deepEqual(bufs.map((b) => b.byteOffset), [0, 0, 0, 0]);
  t.false(sum.inPlace(bufs[2]!.buffer), 'past the slots: ordinary memory');
  t.not(bufs[2]!.buffer, bufs[3]!.buffer);
  t.not(z.extOf(bufs[0]!), z.extOf(bufs[1]!), 'each slot has its own Ext');
  t.is(z.extOf(bufs[1]!.subarray(3, 9)), z.extOf(bufs[1]!), "a view inside a slot is that slot's");
  for (const b of bufs) z.extOf(b)!.refs = 1;
  for (const b of bufs) z.retire(b.subarray(0, 10)); // short reads: still the whole chunk
  t.is(z.retiredExts().length, 2, 'keep 2: the ordinary chunks were forgotten, the slots kept');
  t.is(z.stats().forgotten, 2);
  const held = z.alloc(); // every chunk is held: fresh ordinary memory, no slot left
  t.false(bufs.some((b) => same(b, held)));
  t.not(held.buffer, bufs[0]!.buffer);
  t.is(z.stats().allocated, 5);
  const ext1 = z.extOf(bufs[1]!)!;
  ext1.refs = 0;
  const again = z.alloc();
  t.true(same(again, bufs[1]!), 'the slot is reused once nothing holds it');
  t.is(again.length, 16);
  t.not(z.extOf(again), ext1, 'with a new Ext');
  t.is(z.arenaChunks, 2, 'no new slot');
});

/** Replay with hashes, debug checks after every batch (the zone's reference counts among them), optionally from a zone. */
async function replay(path: string, zone: ChunkZone | null) {
  const session = new CaptureSession();
  session.zone = zone;
  const stack = new Stack(session, { app: new DrainApp(true), debug: true });
  const res = await runPipeline([{ name: path }], stack);
  const s = replaySummary(stack, res.error);
  return { conns: s.connections, drops: s.drops, error: res.error?.message ?? null };
}

test('reused chunks give the same bytes as fresh ones: reordered and duplicated flows, 8 KiB chunks', async (t) => {
  const path = join(tmp(t), 'g.pcap');
  await generate({ path, bytes: 3e6, flows: 40, perFlow: 40000 });
  const zone = new ChunkZone(8192);
  const fresh = await replay(path, null);
  const reused = await replay(path, zone);
  t.deepEqual(reused, fresh);
  t.true(fresh.conns.some((c) => c.c2s.outOfOrder > 0), 'segments waited in reassembly queues');
  t.true(zone.reused > 300, `${zone.reused} chunks reused, ${zone.allocated} allocated`);
  t.true(zone.allocated < 40, `${zone.allocated} allocated`);
});

test('reused chunks give the same bytes as fresh ones: IPv4 and IPv6 fragments and the fixtures', async (t) => {
  const dirs = ['ip', 'tcp', 'link'];
  let n = 0;
  for (const d of dirs) {
    for (const f of readdirSync(fixture(d)).filter((x) => /\.pcap(ng)?$/.test(x))) {
      const zone = new ChunkZone(512);
      t.deepEqual(await replay(fixture(`${d}/${f}`), zone), await replay(fixture(`${d}/${f}`), null), f);
      n++;
    }
  }
  t.true(n >= 8);
});

when(HAS_CORPUS, 'needs ../shared/corpus')('reused chunks give the same bytes as fresh ones on every corpus capture (4 KiB chunks)', async (t) => {
  let reused = 0;
  for (const f of readdirSync(CORPUS).filter((x) => /\.pcap(ng)?$/.test(x))) {
    const zone = new ChunkZone(4096);
    t.deepEqual(await replay(corpus(f), zone), await replay(corpus(f), null), f);
    reused += zone.reused;
  }
  t.true(reused > 1000, `${reused} chunks reused`);
});

test('FlowFiles: a write in the thread pool holds its chunks until it ends', async (t) => {
  const d = tmp(t);
  const zone = new ChunkZone(1 << 16);
  const chunk = zone.alloc();
  chunk.fill(5);
  const ext = zone.extOf(chunk)!;
  const c = new Connection(0, new Uint8Array([10, 0, 0, 1, 10, 0, 0, 2]), 0, 1111, 4, 80, 4);
  const ff = new FlowFiles(d, 'f', false, () => {}, zone);
  ff.data(c, 'c2s', [chunk.subarray(0, 100)]);
  t.is(ext.refs, 0, 'a synchronous write is done with its views on return');
  ff.data(c, 'c2s', [chunk.subarray(0, 30000), new Uint8Array(10), chunk.subarray(40000, 60000)]);
  t.is(ff.writesInFlight, 1);
  t.is(ext.refs, 2, 'one reference per view of the chunk');
  zone.retire(chunk);
  t.false(same(zone.alloc(), chunk), 'not reused while the write runs');
  ff.closed(c);
  await ff.close();
  t.is(ext.refs, 0);
  t.true(same(zone.alloc(), chunk), 'reused after it');
  t.is(readFileSync(join(d, 'f')).length, 50110);
});

/** extract's pipeline (SO_RCVLOWAT reader, FlowFiles) into `dir`, optionally from a zone. */
async function extract(path: string, dir: string, zone: ChunkZone | null): Promise<void> {
  const session = new CaptureSession();
  session.zone = zone;
  const files = new FlowFiles(dir, '%A.%a-%B.%b', false, () => {}, zone);
  const stack = new Stack(session, { app: new DrainApp(false, 1 << 20, (c, d, chunk) => files.data(c, d, chunk), (c) => files.closed(c), 64 << 10), checksums: false });
  await runPipeline([{ name: path }], stack, { onBatch: () => files.check() });
  await files.close();
  files.check();
}

test('extract from reused chunks writes the same files as from fresh ones (8 KiB chunks, sleeping readers, thread-pool writes)', async (t) => {
  const d = tmp(t);
  const path = join(d, 'g.pcap');
  await generate({ path, bytes: 4e6, flows: 30, perFlow: 100000 });
  const zone = new ChunkZone(8192);
  mkdirSync(join(d, 'fresh'));
  mkdirSync(join(d, 'zone'));
  await extract(path, join(d, 'fresh'), null);
  await extract(path, join(d, 'zone'), zone);
  const names = readdirSync(join(d, 'fresh')).sort();
  t.true(names.length >= 60);
  t.deepEqual(readdirSync(join(d, 'zone')).sort(), names);
  for (const n of names) t.true(readFileSync(join(d, 'zone', n)).equals(readFileSync(join(d, 'fresh', n))), n);
  // sleeping readers pin up to 32 MiB of capture: most 8 KiB chunks outlive the zone's 32 retired
  t.true(zone.reused > 30, `${zone.reused} chunks reused, ${zone.allocated} allocated`);
});

/** Run a capture through a stack with models, writing its output to `out` (and -w's frames), optionally from a zone. */
async function modelRun(path: string, hooks: StackHook[], out: string, zone: ChunkZone | null) {
  const session = new CaptureSession();
  session.zone = zone;
  const stack = new Stack(session, { hooks, output: true, app: new DrainApp(true), debug: true });
  const output = await CaptureOutput.open(out, session);
  const res = await runPipeline([{ name: path }], stack, { output });
  await output.close();
  return { error: res.error, conns: replaySummary(stack, res.error).connections };
}

test('fuse and splice with -w from reused chunks write the same capture as from fresh ones (2 KiB chunks)', async (t) => {
  const d = tmp(t);
  const lo = join(d, 'lo.pcap');
  await generate({ path: lo, bytes: 2e6, flows: 20, perFlow: 50000, loopback: true });
  const cases: Array<[string, string, () => StackHook[]]> = [
    ['fuse', lo, () => [new TcpFuse()]],
    ['splice', fixture('splice/relay-lo.pcap'), () => [new SpliceModel([
      { from: parseSelector('0:c2s'), to: parseSelector('1:c2s') },
      { from: parseSelector('1:s2c'), to: parseSelector('0:s2c') },
    ])]],
    ['plain -w', lo, () => []],
  ];
  for (const [name, path, hooks] of cases) {
    const zone = new ChunkZone(2048);
    const a = await modelRun(path, hooks(), join(d, `${name}-fresh.pcap`), null);
    const b = await modelRun(path, hooks(), join(d, `${name}-zone.pcap`), zone);
    t.deepEqual(b, a, name);
    t.true(readFileSync(join(d, `${name}-zone.pcap`)).equals(readFileSync(join(d, `${name}-fresh.pcap`))), `${name}: same output capture`);
    t.true(zone.reused > 10, `${name}: ${zone.reused} chunks reused`);
  }
});

test('follow from reused chunks prints the same text as from fresh ones (2 KiB chunks)', async (t) => {
  const path = join(tmp(t), 'g.pcap');
  await generate({ path, bytes: 1e6, flows: 10, perFlow: 50000 });
  const run = async (zone: ChunkZone | null) => {
    const text: string[] = [];
    const f = new Follower(parseSelector('3'), 'hex', null, (s) => text.push(s as string));
    const session = new CaptureSession();
    session.zone = zone;
    await runPipeline([{ name: path }], new Stack(session, { checksums: false, app: new DrainApp(false, 1 << 20, f.sink) }));
    return text.join('');
  };
  const zone = new ChunkZone(2048);
  const fresh = await run(null);
  t.true(fresh.length > 100000);
  t.is(await run(zone), fresh);
  t.true(zone.reused > 100, `${zone.reused} chunks reused`);
});

test('-w to a stream: a chunk is held until the stream has taken the views of it (slow consumer)', async (t) => {
  const zone = new ChunkZone(4096);
  const chunk = zone.alloc();
  chunk.fill(7);
  const ext = zone.extOf(chunk)!;
  const got: Buffer[] = [];
  // a consumer that takes each write later (a pipe to a slow reader), far below its high-water mark
  const ws = new Writable({ highWaterMark: 1 << 20, write(c: Buffer, _e, cb) { setTimeout(() => { got.push(Buffer.from(c)); cb(); }, 5); } });
  const sink = new StreamSink(ws, false);
  sink.push(chunk.subarray(0, 100), ext);
  sink.push(new Uint8Array(3)); // a header of its own: no reference
  sink.push(chunk.subarray(100, 300), ext);
  t.is(ext.refs, 2);
  const flushed = sink.flush();
  t.is(ext.refs, 2, 'held while the stream has not taken them');
  await flushed;
  t.is(ext.refs, 0);
  t.is(Buffer.concat(got).length, 303, 'the stream had taken every view before the chunk was let go');
  zone.retire(chunk);
  t.true(same(zone.alloc(), chunk));
});

test('replay reports its read chunks: a 24 MB capture is read into a few 4 MiB chunks, reused', async (t) => {
  const path = join(tmp(t), 'g.pcap');
  await generate({ path, bytes: 24e6, flows: 100, perFlow: 240000 });
  const r = await cli(['replay', path, '--json', '-q']);
  t.is(r.code, 0, r.stderr);
  const ch = JSON.parse(r.stdout).chunks;
  t.is(ch.size, 4 << 20);
  t.true(ch.allocated >= 2 && ch.allocated <= 4, `${ch.allocated} allocated`);
  t.true(ch.allocated + ch.reused >= 6, `${ch.allocated} + ${ch.reused} chunks for 24 MB`);
  t.true(ch.peakPinned <= 2);
  t.is(ch.forgotten, 0);
  t.is(ch.arenaSlots, ARENA_CHUNKS);
  t.is(ch.arenaChunks, ch.allocated, 'every chunk read into is an arena slot, and no slot more was made');
  const text = await cli(['replay', path, '-q']);
  t.regex(text.stdout, new RegExp(`read chunks: ${ch.allocated} of 4 MiB, reused ${ch.reused} times, at most ${ch.peakPinned} pinned after the reader moved on; [\\d,]+ frames made from processed ones\\n`));
});

test('a small capture is read into one chunk: the read that finds the end of the file reuses it, and the next file does too', async (t) => {
  const one = await cli(['replay', fixture('tcp/smtp.pcap'), '--json', '-q']);
  t.is(one.code, 0, one.stderr);
  // one arena slot made (4 MiB of external memory), not all 16
  t.like(JSON.parse(one.stdout).chunks, { allocated: 1, reused: 1, forgotten: 0, arenaSlots: ARENA_CHUNKS, arenaChunks: 1 });
  const three = await cli(['replay', fixture('tcp/smtp.pcap'), fixture('tcp/smtp.pcap'), fixture('tcp/three-http-streams.pcap'), '--json', '-q']);
  t.is(three.code, 0, three.stderr);
  t.like(JSON.parse(three.stdout).chunks, { allocated: 1, reused: 5, forgotten: 0, arenaSlots: ARENA_CHUNKS, arenaChunks: 1 });
});

test('fileChunks gives a zone back the chunk of a read it never handed out (a consumer that stops early)', async (t) => {
  const { fileChunks } = await import('../../core/capture/chunks.js');
  const path = join(tmp(t), 'f');
  writeFileSync(path, Buffer.alloc(3 * 4096, 1));
  const zone = new ChunkZone(4096);
  for await (const c of fileChunks(path, 4096, 1, zone)) {
    t.is(c.length, 4096);
    break; // the read-ahead of the second chunk is in flight
  }
  t.is(zone.allocated, 2);
  // both chunks are back: the one handed out is retired by its cursor, never here; the read-ahead's is
  t.is(zone.retiredExts().length, 1);
  t.not(zone.alloc(), null);
  t.is(zone.reused, 1, 'the abandoned read-ahead\'s chunk is handed out again');
});
