import test from 'ava';
import fc from 'fast-check';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { SimdSum, simdArena } from '../../core/wire/checksum-simd.js';
import { ChunkZone } from '../../core/capture/zone.js';
import { CaptureSession } from '../../core/capture/session.js';
import { type CaptureInput, readCaptures } from '../../core/capture/reader.js';
import { Stack } from '../../core/stack.js';
import { TH_ACK, TH_SYN } from '../../core/wire/tcp.js';
import { chunked, pcapFile, tcpFrame } from '../helpers/build.js';
import { CLI, CORPUS, HAS_CORPUS, HAS_TSHARK, corpus } from '../helpers/paths.js';
import { when } from '../helpers/skip.js';

/** Big-endian 16-bit one's-complement sum, folded, not complemented: the reference. */
const ref = (b: Uint8Array, o: number, n: number) => {
  let s = 0;
  for (let i = 0; i < n; i += 2) s += (b[o + i]! << 8) | (i + 1 < n ? b[o + i + 1]! : 0);
  while (s > 0xffff) s = (s % 0x10000) + Math.floor(s / 0x10000); // not >>>: s may pass 2^32
  return s;
};
/** 0 and 0xffff are the same one's-complement number. */
const norm = (x: number) => (x === 0xffff ? 0 : x);

test('WebAssembly SIMD is available here (the fast path is what the benchmark measures)', (t) => {
  t.not(SimdSum.create(), null);
});

test('SIMD sum equals the reference sum at every length and offset, over a mirror of a larger buffer', (t) => {
  const w = SimdSum.create()!;
  fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 3000 }), fc.nat(31), fc.nat(4000), (bytes, o, base) => {
    const ab = new ArrayBuffer(base + o + bytes.length + 64);
    const b = new Uint8Array(ab, base);
    b.set(bytes, o);
    w.load(ab, base, ab.byteLength);
    t.true(w.has(ab, base + o, base + o + bytes.length));
    return norm(w.sum(base + o, bytes.length)) === norm(ref(b, o, bytes.length));
  }), { numRuns: 500 });
});

test('SIMD sum splits runs longer than its lanes can hold (512 KiB and up) without losing carries', (t) => {
  const w = SimdSum.create()!;
  for (const n of [256 << 10, (256 << 10) + 1, 600_001, 2 << 20]) {
    const b = new Uint8Array(n + 3).fill(0xff); // the worst case for carries
    for (let i = 0; i < b.length; i += 7) b[i] = i & 0xff;
    w.load(b.buffer, 0, b.length);
    t.is(norm(w.sum(3, n)), norm(ref(b, 3, n)), `n=${n}`);
  }
});

test('the mirror is exact about its range: another buffer, or bytes outside, are not in it', (t) => {
  const w = SimdSum.create()!;
  const a = new ArrayBuffer(1000);
  w.load(a, 100, 500);
  t.true(w.has(a, 100, 500));
  t.false(w.has(a, 99, 200));
  t.false(w.has(a, 400, 501));
  t.false(w.has(new ArrayBuffer(1000), 100, 200));
  w.drop();
  t.false(w.has(a, 100, 500));
});

test('an arena is summed in place: nothing is mirrored, the sums equal the reference, and other memory is still mirrored', (t) => {
  const ab = simdArena(3 << 16)!;
  t.truthy(ab);
  t.is(ab.byteLength, 3 << 16);
  t.is(simdArena(1)!.byteLength, 1 << 16, 'whole 64 KiB pages');
  const w = SimdSum.create()!;
  t.false(w.mirrorMade, 'no mirror memory until memory that is not an arena is summed');
  const arena = new Uint8Array(ab);
  fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 3000 }), fc.nat((3 << 16) - 3000), (bytes, at) => {
    arena.set(bytes, at);
    if (!w.has(ab, at, at + bytes.length)) w.load(ab, at, at + bytes.length);
    return norm(w.sum(at, bytes.length)) === norm(ref(arena, at, bytes.length));
  }), { numRuns: 300 });
  t.true(w.has(ab, 0, ab.byteLength), 'the whole arena is summable at once');
  t.is(w.mirrored, 0, 'no byte copied');
  t.false(w.mirrorMade, 'arenas alone: the mirror\'s 4 MiB never made');
  // ordinary memory in between is mirrored, and the arena is then summed in place again
  const other = new Uint8Array(5000).map((_, i) => (i * 7) & 0xff);
  t.true(w.load(other.buffer, 0, other.length));
  t.true(w.mirrorMade);
  t.is(w.mirrored, 5000);
  t.is(norm(w.sum(1, 4000)), norm(ref(other, 1, 4000)));
  arena.set(other.subarray(0, 4001), 777);
  t.false(w.has(ab, 778, 4778));
  w.load(ab, 778, 4778);
  t.is(norm(w.sum(778, 4000)), norm(ref(other, 1, 4000)));
  t.is(w.mirrored, 5000);
});

/** Frames with payloads of many lengths (odd, empty, MSS-sized), v4 and v6; every fifth has a bad checksum. */
function mixed(): { file: Buffer; bad: number } {
  const recs = [];
  let bad = 0;
  for (let i = 0; i < 400; i++) {
    const v6 = i % 3 === 0;
    const badSum = i % 5 === 2;
    if (badSum) bad++;
    const len = (i * 37) % 1461;
    recs.push({
      data: tcpFrame({
        src: v6 ? '2001:db8::1' : '10.0.0.1', dst: v6 ? '2001:db8::2' : '10.0.0.2', sport: 40000 + (i % 7), dport: 80,
        seq: 1000 + i * 2000, flags: i % 7 === 0 ? TH_SYN : TH_ACK, payload: new Uint8Array(len).map((_, k) => (k * 31 + i) & 0xff), badSum,
      }),
    });
  }
  return { file: pcapFile(recs), bad };
}

async function badSums(input: CaptureInput, opts: { simd: boolean; verifyChecksums?: boolean }, zone: ChunkZone | null = null) {
  const session = new CaptureSession();
  session.zone = zone;
  const stack = new Stack(session, { ...opts, debug: true });
  for await (const b of readCaptures([input], session)) stack.input(b);
  stack.finish();
  return { noted: stack.stats.notes['tcp.badsum'] ?? 0, dropped: stack.stats.drops['tcp.badsum'] ?? 0 };
}

test('bad TCP checksums: counted the same with SIMD and with the DataView sum, at any read chunking', async (t) => {
  const { file, bad } = mixed();
  for (const chunk of [file.length, 4096, 1500, 333]) {
    for (const simd of [true, false]) {
      const r = await badSums({ name: `mixed/${chunk}`, stream: chunked(file, chunk) }, { simd });
      t.deepEqual(r, { noted: bad, dropped: 0 }, `chunk ${chunk} simd ${simd}`);
      const v = await badSums({ name: `mixed/${chunk}`, stream: chunked(file, chunk) }, { simd, verifyChecksums: true });
      t.deepEqual(v, { noted: 0, dropped: bad }, `verify, chunk ${chunk} simd ${simd}`);
    }
  }
});

test('bad TCP checksums: counted the same when the file is read into a zone\'s arena chunks (summed in place) at any chunk size', async (t) => {
  const { file, bad } = mixed();
  const path = join(mkdtempSync(join(tmpdir(), 'sockcap-')), 'mixed.pcap');
  t.teardown(() => rmSync(dirname(path), { recursive: true, force: true }));
  writeFileSync(path, file);
  for (const size of [4 << 20, 4096, 1500, 333]) {
    for (const verifyChecksums of [false, true]) {
      const zone = new ChunkZone(size);
      const r = await badSums({ name: path }, { simd: true, verifyChecksums }, zone);
      t.deepEqual(r, verifyChecksums ? { noted: 0, dropped: bad } : { noted: bad, dropped: 0 }, `chunk ${size}`);
      t.true(zone.arenaChunks > 0, `chunk ${size}: read into the arena`);
    }
  }
});

test('under a virtual memory limit too small for WebAssembly memory (ulimit -v 3 GB), replay sums with DataView and reads into ordinary memory: the same report', (t) => {
  const { file, bad } = mixed();
  const dir = mkdtempSync(join(tmpdir(), 'sockcap-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'mixed.pcap');
  writeFileSync(path, file);
  const replay = (limit: string) => spawnSync('sh', ['-c', `${limit}"${process.execPath}" "${CLI}" replay -q --json "${path}"`], { encoding: 'utf8' });
  // V8 reserves ~10 GiB of address space for a WebAssembly memory: 3 GB leaves none for one
  const probe = spawnSync('sh', ['-c', `ulimit -v 3000000 && "${process.execPath}" -e "try { new WebAssembly.Memory({ initial: 1 }); console.log('yes') } catch { console.log('no') }"`], { encoding: 'utf8' });
  t.is(probe.stdout.trim(), 'no', 'the limit keeps WebAssembly memory out of reach here');
  const limited = replay('ulimit -v 3000000 && ');
  const free = replay('');
  t.is(limited.status, 0, limited.stderr || limited.stdout.slice(0, 300));
  t.is(free.status, 0, free.stderr);
  type Report = { notes: Record<string, number>; chunks: { arenaSlots?: number; arenaChunks?: number } };
  const a = JSON.parse(limited.stdout) as Report;
  const b = JSON.parse(free.stdout) as Report;
  t.is(a.notes['tcp.badsum'], bad);
  t.like(a.chunks, { arenaSlots: 0, arenaChunks: 0 }, 'no arena: every chunk is ordinary memory');
  t.true(b.chunks.arenaChunks! > 0, 'without the limit the chunks are arena slots');
  // where the chunks were is all that differs
  for (const r of [a, b]) {
    delete r.chunks.arenaSlots;
    delete r.chunks.arenaChunks;
  }
  t.deepEqual(a, b);
});

when(HAS_CORPUS && HAS_TSHARK, 'needs ../shared/corpus and tshark')('bad TCP checksums in the corpus: SIMD, DataView and tshark agree', async (t) => {
  // files whose TCP segments are whole and unfragmented (tshark verifies what sockcap verifies);
  // the Linux loopback captures carry unfilled checksums, so there are bad ones to count
  const files = readdirSync(CORPUS).filter((f) => /^(tcpdump__resp_1_benchmark|zeek__echo-connections|pcapplusplus__nanosecs_big_endian|suricata-verify__mqtt-limit-2__input|zeek__redis__pipelining-example)\.pcap$/.test(f));
  t.true(files.length >= 4, files.join(' '));
  let total = 0;
  for (const f of files) {
    const out = execFileSync('tshark', ['-r', corpus(f), '-n', '-o', 'tcp.check_checksum:TRUE', '-Y', 'tcp.checksum.status == 0', '-T', 'fields', '-e', 'frame.number'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const want = out.split('\n').filter(Boolean).length;
    const s = await badSums({ name: corpus(f) }, { simd: true });
    const j = await badSums({ name: corpus(f) }, { simd: false });
    t.is(s.noted, want, `${f}: SIMD vs tshark`);
    t.is(j.noted, want, `${f}: DataView vs tshark`);
    total += want;
  }
  t.true(total > 0, 'some bad checksums were there to count');
});
