import test, { type ExecutionContext } from 'ava';
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { pcapFile, tcpFrame } from '../helpers/build.js';
import { TH_ACK, TH_FIN, TH_SYN } from '../../core/wire/tcp.js';
import { rawBytes } from '../helpers/follow.js';
import { Connection } from '../../core/net/in-pcb.js';
import { FlowFiles, type FlowIndexEntry } from '../../core/capture/flow-files.js';
import { flowName } from '../../core/capture/flow-name.js';
import { indexJson, JsonBuf } from '../../core/json-buf.js';
import fc from 'fast-check';
import { DrainApp } from '../../core/socket/reader.js';
import type { Dir } from '../../core/net/in-pcb.js';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CLI, fixture, corpus, HAS_CORPUS, HAS_TCPDUMP, HAS_TCPFLOW } from '../helpers/paths.js';
import { cli, tmp } from '../helpers/cli.js';
import { when } from '../helpers/skip.js';

const run = promisify(execFile);

/** A generated benchmark-style capture in a temporary directory: the directory and the file. */
async function generated(t: ExecutionContext, name: string, o: { bytes: number; flows: number; perFlow: number }): Promise<{ dir: string; cap: string }> {
  const { generate } = await import('../bench/gen.js');
  const dir = tmp(t);
  const cap = join(dir, name);
  await generate({ path: cap, ...o });
  return { dir, cap };
}
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

test('extract writes one file per direction with an index whose hashes match replay --hash', async (t) => {
  const d = tmp(t);
  const r = await cli(['extract', fixture('tcp/three-http-streams.pcap'), '-o', d, '--hash', '--json']);
  t.is(r.code, 0, r.stderr);
  t.like(JSON.parse(r.stdout), { files: 6, connections: 3 });
  const index = JSON.parse(readFileSync(join(d, 'sockcap-index.json'), 'utf8')) as Array<{ file: string; sha256: string; bytes: number; stream: number; dir: string }>;
  t.is(index.length, 6);
  const rep = JSON.parse((await cli(['replay', fixture('tcp/three-http-streams.pcap'), '--hash', '--json'])).stdout);
  for (const e of index) {
    const body = readFileSync(join(d, e.file));
    t.is(body.length, e.bytes);
    t.is(sha(body), e.sha256);
    t.is(rep.connections[e.stream][e.dir].sha256, e.sha256);
  }
  t.true(index.some((e) => e.file === '172.016.133.132.54615-098.139.161.029.00080'));
});

test('extract --direction s2c or c2s writes only that direction\'s files, each the file extract writes without it; the index lists only them', async (t) => {
  const cap = fixture('tcp/three-http-streams.pcap');
  const all = tmp(t);
  t.is((await cli(['extract', cap, '-o', all, '-q'])).code, 0);
  type Entry = { file: string; bytes: number; stream: number; dir: string };
  const every = JSON.parse(readFileSync(join(all, 'sockcap-index.json'), 'utf8')) as Entry[];
  for (const dir of ['c2s', 's2c']) {
    const d = tmp(t);
    const r = await cli(['extract', cap, '-o', d, '--direction', dir, '--json']);
    t.is(r.code, 0, r.stderr);
    const index = JSON.parse(readFileSync(join(d, 'sockcap-index.json'), 'utf8')) as Entry[];
    const want = every.filter((e) => e.dir === dir);
    t.is(want.length, 3);
    t.deepEqual(index, want, dir);
    t.deepEqual(readdirSync(d).sort(), [...want.map((e) => e.file), 'sockcap-index.json'].sort());
    for (const e of index) t.true(readFileSync(join(d, e.file)).equals(readFileSync(join(all, e.file))), `${dir} ${e.file}`);
    t.like(JSON.parse(r.stdout), { files: 3, connections: 3 });
  }
});

when(HAS_CORPUS && HAS_TCPFLOW, 'needs ../shared/corpus and tcpflow')('extract gives tcpflow\'s file names and bytes (82 directions of a clean capture)', async (t) => {
  const cap = corpus('suricata-verify__http-range-multiflows__input.pcap');
  const a = tmp(t);
  const b = tmp(t);
  t.is((await cli(['extract', cap, '-o', a, '-q'])).code, 0);
  await run('tcpflow', ['-r', cap, '-o', b]);
  const ours = readdirSync(a).filter((f) => f !== 'sockcap-index.json').sort();
  const theirs = readdirSync(b).filter((f) => /^\d{3}\./.test(f)).sort();
  t.deepEqual(ours, theirs);
  for (const f of ours) t.true(readFileSync(join(a, f)).equals(readFileSync(join(b, f))), f);
  t.true(ours.length >= 80);
});

/**
 * Extract `cap` with no limit and under the shell limit `ulimit` (run as `sh -c "ulimit ... &&
 * sockcap extract"`): it must exit 0 and write the same files, byte for byte. The file names.
 */
async function extractUnder(t: ExecutionContext, dir: string, cap: string, ulimit: string): Promise<string[]> {
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  t.is((await cli(['extract', cap, '-o', a, '-q'])).code, 0);
  const { CLI } = await import('../helpers/paths.js');
  const r = spawnSync('sh', ['-c', `ulimit ${ulimit} && "${process.execPath}" "${CLI}" extract "${cap}" -o "${b}" -q`], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const fa = readdirSync(a).sort();
  t.deepEqual(readdirSync(b).sort(), fa);
  for (const f of fa) if (f !== 'sockcap-index.json') t.true(readFileSync(join(a, f)).equals(readFileSync(join(b, f))), f);
  return fa.map((f) => join(a, f));
}

test('extract under a low descriptor limit (ulimit -n 64) writes the same files as without it (files released while their thread-pool writes run)', async (t) => {
  // 12,000 bytes a flow: each client direction is one write of 4 KiB or more (the thread pool)
  const { dir, cap } = await generated(t, 'many.pcap', { bytes: 8e6, flows: 300, perFlow: 12_000 });
  const files = await extractUnder(t, dir, cap, '-n 64');
  t.true(files.length > 600);
  t.true(files.filter((f) => statSync(f).size >= 4096).length > 300, 'most client directions went through the thread pool');
});

test('extract under a virtual memory limit (ulimit -v 1.5 GB: no WebAssembly memory, and a thread gets a small code range) writes the same files as without it', async (t) => {
  // V8 reserves ~10 GiB for a WebAssembly memory and 128 MiB of code range per isolate by default:
  // the small-file writer's thread asks for 8, or this limit killed the process (Fatal OOM)
  const { dir, cap } = await generated(t, 'vlimit.pcap', { bytes: 2e6, flows: 100, perFlow: 6000 });
  t.true((await extractUnder(t, dir, cap, '-v 1500000')).length > 150);
});

test('extract on a capture cut mid-record: exit 3 naming the file and byte offset, and every byte before the cut is written (readers asleep below the low-water mark included)', async (t) => {
  const d = tmp(t);
  const full = readFileSync(fixture('tcp/three-http-streams.pcap'));
  const cut = join(d, 'cut.pcap');
  writeFileSync(cut, full.subarray(0, Math.floor((full.length * 2) / 3)));
  const a = join(d, 'a');
  const b = join(d, 'b');
  const r = await cli(['extract', cut, '-o', a]);
  t.is(r.code, 3, r.stderr);
  t.regex(r.stderr, /cut\.pcap: record truncated \(\d+ of \d+ bytes\) at byte offset \d+/);
  t.notRegex(r.stderr, /\n\s+at /);
  t.is((await cli(['extract', fixture('tcp/three-http-streams.pcap'), '-o', b, '-q'])).code, 0);
  const files = readdirSync(a).filter((f) => f !== 'sockcap-index.json');
  t.true(files.length >= 4, files.join());
  let bytes = 0;
  for (const f of files) {
    const part = readFileSync(join(a, f));
    t.true(part.length > 0 && readFileSync(join(b, f)).subarray(0, part.length).equals(part), f);
    bytes += part.length;
  }
  const index = JSON.parse(readFileSync(join(a, 'sockcap-index.json'), 'utf8')) as FlowIndexEntry[];
  t.is(index.reduce((n, e) => n + e.bytes, 0), bytes, 'the index accounts for every byte written');
});

test('extract: an output directory that cannot be made exits 5 at once naming it (Node\'s recursive mkdir spins forever under /proc); nested ones are made', async (t) => {
  const t0 = Date.now();
  const proc = await cli(['extract', fixture('tcp/three-http-streams.pcap'), '-o', '/proc/sockcap-no-such-dir']);
  t.is(proc.code, 5, proc.stderr);
  t.regex(proc.stderr, /\/proc\/sockcap-no-such-dir: cannot create: ENOENT/);
  const file = await cli(['extract', fixture('tcp/three-http-streams.pcap'), '-o', join(fixture('tcp/smtp.pcap'), 'x')]);
  t.is(file.code, 5);
  t.regex(file.stderr, /cannot create: ENOTDIR/);
  t.true(Date.now() - t0 < 30_000);
  const d = join(tmp(t), 'a', 'b', 'c');
  t.is((await cli(['extract', fixture('tcp/three-http-streams.pcap'), '-o', d, '-q'])).code, 0);
  t.is(readdirSync(d).length, 7);
});

test('extract: a file that cannot be written stops the run with exit 5 naming it, no stack trace', async (t) => {
  const d = tmp(t);
  // a directory where the first flow's file would go
  mkdirSync(join(d, '172.016.133.132.54615-098.139.161.029.00080'));
  const r = await cli(['extract', fixture('tcp/three-http-streams.pcap'), '-o', d]);
  t.is(r.code, 5, r.stderr);
  t.regex(r.stderr, /172\.016\.133\.132\.54615-098\.139\.161\.029\.00080: cannot write: EISDIR/);
  t.notRegex(r.stderr, /\n\s+at /);
});

test('FlowFiles: each chunk is written when handed over (large ones in the thread pool, the file closed after them), in order at its offset, also with more views than one writev takes', async (t) => {
  const d = tmp(t);
  const addr = new Uint8Array([10, 0, 0, 1, 10, 0, 0, 2]);
  const c = new Connection(0, addr, 0, 1111, 4, 80, 4);
  const index: FlowIndexEntry[] = [];
  const ff = new FlowFiles(d, '%A.%a-%B.%b', true, (e) => index.push(e));
  const path = join(d, '010.000.000.001.01111-010.000.000.002.00080');
  ff.data(c, 'c2s', [new Uint8Array(100).fill(7)]);
  t.is(statSync(path).size, 100, 'written when handed over: nothing is held');
  // 3,000 one-byte views (IOV_MAX is 1,024): synchronous, in pieces
  const tiny = Array.from({ length: 3000 }, (_, i) => new Uint8Array([i % 251]));
  ff.data(c, 'c2s', [...tiny, new Uint8Array(0)]);
  t.is(ff.writesInFlight, 0);
  const big = new Uint8Array(200_000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) % 256;
  // large chunks go to the thread pool; the file is released (closed) while they are in flight
  ff.data(c, 'c2s', [big.subarray(0, 150_000), big.subarray(150_000)]);
  ff.data(c, 'c2s', [big]);
  t.is(ff.writesInFlight, 2, 'large chunks are written in the thread pool');
  const tail = new Uint8Array(10).fill(3);
  ff.data(c, 'c2s', [tail]);
  t.is(typeof c.app, 'number', 'the connection holds its pair of file slots');
  ff.closed(c);
  t.is(c.app, null, 'closed lets go of it');
  await ff.close();
  ff.check();
  t.is(ff.writesInFlight, 0, 'close waits for every write');
  const want = Buffer.concat([new Uint8Array(100).fill(7), ...tiny, big, big, tail]);
  const got = readFileSync(path);
  t.true(got.equals(want));
  t.deepEqual(index.map((e) => [e.stream, e.dir, e.bytes, e.sha256, e.file]), [[0, 'c2s', want.length, sha(want), '010.000.000.001.01111-010.000.000.002.00080']]);
  t.is(ff.written, want.length);
});

when(existsSync('/dev/full'), 'needs /dev/full')('FlowFiles: a write that fails in the thread pool or in the small-file writer (ENOSPC) is kept and thrown by check(), naming the file', async (t) => {
  for (const [size, small] of [[100, false], [64 << 10, false], [100, true]] as const) {
    const addr = new Uint8Array([10, 0, 0, 1, 10, 0, 0, 2]);
    const c = new Connection(0, addr, 0, 1111, 4, 80, 4);
    const ff = new FlowFiles('/dev', 'full', false, () => {}, null, small);
    ff.data(c, 'c2s', [new Uint8Array(size)]);
    t.is(ff.writesInFlight, size >= 4096 ? 1 : 0);
    ff.closed(c);
    await ff.close();
    const e = t.throws(() => ff.check());
    t.regex(e.message, /\/dev\/full: cannot write: ENOSPC/, `${size} bytes${small ? ', small-file writer' : ''}`);
  }
});

test('FlowFiles with the small-file writer: a file whose first write is small is created, written at its offsets and reopened by the worker thread, in order, large later writes too; other files as before', async (t) => {
  const d = tmp(t);
  const addr = new Uint8Array([10, 0, 0, 1, 10, 0, 0, 2]);
  const c = new Connection(0, addr, 0, 1111, 4, 80, 4);
  const c2 = new Connection(1, addr, 0, 2222, 4, 80, 4);
  const index: FlowIndexEntry[] = [];
  const ff = new FlowFiles(d, '%A.%a-%B.%b', true, (e) => index.push(e), null, true);
  const path = join(d, '010.000.000.001.01111-010.000.000.002.00080');
  const back = join(d, '010.000.000.002.00080-010.000.000.001.01111');
  const path2 = join(d, '010.000.000.001.02222-010.000.000.002.00080');
  const first = new Uint8Array(100).fill(7);
  ff.data(c, 'c2s', [first]);
  ff.data(c, 's2c', [new Uint8Array([1, 2, 3])]);
  t.false(existsSync(path), 'staged for the worker: nothing is posted before the batch ends');
  await ff.drain();
  // a later batch: many views, then a chunk larger than the staging buffer (the worker reopens the file)
  const tiny = Array.from({ length: 3000 }, (_, i) => new Uint8Array([i % 251]));
  ff.data(c, 'c2s', tiny);
  const big = new Uint8Array(3 << 20);
  for (let i = 0; i < big.length; i++) big[i] = (i * 13) % 256;
  ff.data(c, 'c2s', [big.subarray(0, 1 << 20), big.subarray(1 << 20)]);
  // a file whose first write is large is this thread's, in the thread pool as before
  ff.data(c2, 'c2s', [big.subarray(0, 64 << 10)]);
  t.is(ff.writesInFlight, 1);
  t.true(existsSync(path2));
  ff.closed(c);
  ff.closed(c2);
  await ff.close();
  ff.check();
  const want = Buffer.concat([first, ...tiny, big]);
  t.true(readFileSync(path).equals(want));
  t.deepEqual([...readFileSync(back)], [1, 2, 3]);
  t.true(readFileSync(path2).equals(big.subarray(0, 64 << 10)));
  t.deepEqual(index.map((e) => [e.stream, e.dir, e.bytes, e.sha256]), [
    [0, 'c2s', want.length, sha(want)], [0, 's2c', 3, sha(new Uint8Array([1, 2, 3]))], [1, 'c2s', 64 << 10, sha(big.subarray(0, 64 << 10))],
  ]);
  t.is(ff.written, want.length + 3 + (64 << 10));
  t.is(ff.filesWritten, 3);
});

test('extract (small files by the worker thread) writes the same files as FlowFiles writing all of them in line, over 3,000 short flows', async (t) => {
  const { CaptureSession } = await import('../../core/capture/session.js');
  const { Stack } = await import('../../core/stack.js');
  const { runPipeline } = await import('../../core/pipeline.js');
  const { dir, cap } = await generated(t, 'short.pcap', { bytes: 12e6, flows: 3000, perFlow: 1500 });
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  mkdirSync(b);
  const r = await cli(['extract', cap, '-o', a, '-q']);
  t.is(r.code, 0, r.stderr);
  const files = new FlowFiles(b, '%A.%a-%B.%b', false, () => {});
  const stack = new Stack(new CaptureSession(), { app: new DrainApp(false, 1 << 20, (c, d, chunk) => files.data(c, d, chunk), (c) => files.closed(c), 64 << 10), checksums: false });
  await runPipeline([{ name: cap }], stack, { onBatch: () => files.check() });
  await files.close();
  files.check();
  const names = readdirSync(b).sort();
  t.true(names.length >= 6000, `${names.length} files`);
  t.deepEqual(readdirSync(a).filter((f) => f !== 'sockcap-index.json').sort(), names);
  for (const n of names) t.true(readFileSync(join(a, n)).equals(readFileSync(join(b, n))), n);
});

/** A capture in `dir`: a handshake, then these client segments (ISN 99, so data starts at 100). */
function clientData(dir: string, segs: Array<{ seq: number; payload: string; badSum?: boolean }>): string {
  const c = { src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 80 };
  const file = join(dir, 'in.pcap');
  writeFileSync(file, pcapFile([
    { data: tcpFrame({ ...c, seq: 99, flags: TH_SYN }) },
    { data: tcpFrame({ src: c.dst, dst: c.src, sport: c.dport, dport: c.sport, seq: 499, ack: 100, flags: TH_SYN | TH_ACK }) },
    ...segs.map((g) => ({ data: tcpFrame({ ...c, ...g, ack: 500 }) })),
  ]));
  return file;
}

test('extract keeps segments with bad TCP checksums (offloaded ones are the common case), as replay does', async (t) => {
  const d = tmp(t);
  const file = clientData(d, [{ seq: 100, payload: 'hello ', badSum: true }, { seq: 106, payload: 'world' }]);
  const out = join(d, 'out');
  const r = await cli(['extract', file, '-o', out, '-q']);
  t.is(r.code, 0, r.stderr);
  t.is(readFileSync(join(out, '010.000.000.001.40000-010.000.000.002.00080'), 'utf8'), 'hello world');
  const rep = JSON.parse((await cli(['replay', file, '--json'])).stdout);
  t.is(rep.notes['tcp.badsum'], 1, 'replay counts the bad one');
  t.is(rep.connections[0].c2s.bytes, 11, 'and takes its data too');
});

test('extract: a hole that never fills is skipped in the file and listed in the index as a gap', async (t) => {
  const d = tmp(t);
  const file = clientData(d, [{ seq: 100, payload: 'abc' }, { seq: 107, payload: 'xyz' }]); // bytes 3..6 never captured
  const out = join(d, 'out');
  t.is((await cli(['extract', file, '-o', out, '-q'])).code, 0);
  t.is(readFileSync(join(out, '010.000.000.001.40000-010.000.000.002.00080'), 'utf8'), 'abcxyz');
  const index = JSON.parse(readFileSync(join(out, 'sockcap-index.json'), 'utf8')) as Array<{ dir: string; gaps?: number[][] }>;
  t.deepEqual(index.find((e) => e.dir === 'c2s')!.gaps, [[3, 4]]);
});

test('extract --gaps zero: each hole stays in the file as zeros at its stream offset; the index gives file offsets, the hash is the file\'s', async (t) => {
  const d = tmp(t);
  // holes of 4 and 5 bytes: skipped, the file is abcxyzQQ; zero-filled, every byte keeps its offset
  const file = clientData(d, [{ seq: 100, payload: 'abc' }, { seq: 107, payload: 'xyz' }, { seq: 115, payload: 'QQ' }]);
  const name = '010.000.000.001.40000-010.000.000.002.00080';
  const index = (dir: string) => JSON.parse(readFileSync(join(dir, 'sockcap-index.json'), 'utf8')) as Array<{ dir: string; bytes: number; sha256: string; gaps?: number[][] }>;
  const skip = join(d, 'skip');
  const zero = join(d, 'zero');
  t.is((await cli(['extract', file, '-o', skip, '-q', '--hash'])).code, 0);
  t.is((await cli(['extract', file, '-o', zero, '-q', '--hash', '--gaps', 'zero'])).code, 0);
  t.is(readFileSync(join(skip, name), 'latin1'), 'abcxyzQQ');
  const z = readFileSync(join(zero, name));
  t.is(z.toString('latin1'), 'abc\0\0\0\0xyz\0\0\0\0\0QQ');
  const [es] = index(skip).filter((e) => e.dir === 'c2s');
  const [ez] = index(zero).filter((e) => e.dir === 'c2s');
  t.deepEqual(es!.gaps, [[3, 4], [6, 5]], 'skipped: where the bytes after each hole begin');
  t.deepEqual(ez!.gaps, [[3, 4], [10, 5]], 'zero-filled: where the zeros are');
  for (const [o, l] of ez!.gaps!) t.true(z.subarray(o, o + l).every((x) => x === 0));
  t.is(ez!.bytes, 8, 'bytes: the data, not the zeros');
  t.is(ez!.sha256, sha(z));
  t.is(es!.sha256, sha(readFileSync(join(skip, name))));
});

test('FlowFiles with zero-filled gaps: one chunk read across two holes is written in pieces, each at its stream offset', async (t) => {
  const d = tmp(t);
  const entries: FlowIndexEntry[] = [];
  const c = new Connection(0, new Uint8Array([10, 0, 0, 1, 10, 0, 0, 2]), 0, 1111, 4, 80, 4);
  // delivered bytes a b c | x y z | Q, with holes of 4 bytes at 3 and 2 bytes at 6
  c.server.addGap(3, 4);
  c.server.addGap(6, 2);
  const ff = new FlowFiles(d, 'f', true, (e) => entries.push(e), null, false, undefined, true);
  ff.data(c, 'c2s', [Buffer.from('ab'), Buffer.from('cxy'), Buffer.from('zQ')]);
  ff.closed(c);
  await ff.close();
  const body = readFileSync(join(d, 'f'));
  t.is(body.toString('latin1'), 'abc\0\0\0\0xyz\0\0Q');
  t.deepEqual(entries.map((e) => [e.bytes, e.gaps, e.sha256]), [[7, [[3, 4], [10, 2]], sha(body)]]);
});

/**
 * Connections with holes where a chunk read spans them (readers asleep below the low-water mark
 * read the bytes before and after a hole at once), in files of every writer (the small-file
 * thread, synchronous writes, the thread pool), a hole at the start included; and the bytes each
 * file must hold with its holes as zeros.
 */
function holesCapture(dir: string, Conv: typeof import('../helpers/conv.js').Conv, tl: import('../helpers/conv.js').Timeline): { cap: string; want: Map<string, Buffer> } {
  const want = new Map<string, Buffer>();
  const pad = (n: number, ip: string) => ip.split('.').map((x) => x.padStart(3, '0')).join('.') + '.' + String(n).padStart(5, '0');
  const convs: Array<{ c: InstanceType<typeof Conv>; parts: Array<['data' | 'hole', number]>; from: 'c' | 's' }> = [
    { c: new Conv(tl, { cport: 41000 }), from: 'c', parts: [['data', 3000], ['hole', 1000], ['data', 20000], ['hole', 7], ['data', 50]] },
    { c: new Conv(tl, { cport: 41001 }), from: 's', parts: [['data', 100], ['hole', 300], ['data', 100]] },
    { c: new Conv(tl, { cport: 41002 }), from: 'c', parts: [['hole', 200], ['data', 5000], ['hole', 1], ['data', 1]] },
    { c: new Conv(tl, { cport: 41003 }), from: 'c', parts: [['data', 70000], ['hole', 1460], ['data', 70000]] },
  ];
  for (const { c } of convs) c.handshake();
  let k = 0;
  for (const { c, parts, from } of convs) {
    const bytes: Buffer[] = [];
    for (const [what, n] of parts) {
      const b = what === 'data' ? Buffer.from(writeStreamBytes(n, k++)) : Buffer.alloc(n);
      if (what === 'data') c.send(from, b);
      else c.nxt[from] = (c.nxt[from] + n) >>> 0; // never captured
      bytes.push(b);
    }
    c.close('c');
    const [src, sp, dst, dp] = from === 'c' ? [c.client, c.cport, c.server, c.sport] : [c.server, c.sport, c.client, c.cport];
    want.set(`${pad(sp, src)}-${pad(dp, dst)}`, Buffer.concat(bytes));
  }
  const cap = join(dir, 'holes.pcap');
  writeFileSync(cap, tl.pcap());
  return { cap, want };
}

/** n bytes of a pattern that differs with k (no run of zeros a hole could hide in). */
const writeStreamBytes = (n: number, k: number) => Uint8Array.from({ length: n }, (_, i) => 0x21 + ((i * 7 + k * 13) % 90));

test('extract --gaps zero writes every byte at its stream offset, holes as zeros, through every writer (and the skip default cuts them out)', async (t) => {
  const { Conv, Timeline } = await import('../helpers/conv.js');
  const d = tmp(t);
  const { cap, want } = holesCapture(d, Conv, new Timeline());
  const zero = join(d, 'zero');
  const skip = join(d, 'skip');
  let r = await cli(['extract', cap, '-o', zero, '-q', '--gaps', 'zero', '--hash']);
  t.is(r.code, 0, r.stderr);
  r = await cli(['extract', cap, '-o', skip, '-q']);
  t.is(r.code, 0, r.stderr);
  const index = JSON.parse(readFileSync(join(zero, 'sockcap-index.json'), 'utf8')) as Array<{ file: string; bytes: number; sha256: string; gaps?: Array<[number, number]> }>;
  for (const [name, bytes] of want) {
    const got = readFileSync(join(zero, name));
    t.true(got.equals(bytes), name);
    const e = index.find((x) => x.file === name)!;
    t.is(e.sha256, sha(got), name);
    // the default: the same bytes with the index's gaps cut out
    let cut = Buffer.alloc(0);
    let at = 0;
    for (const [o, l] of e.gaps ?? []) {
      cut = Buffer.concat([cut, got.subarray(at, o)]);
      at = o + l;
    }
    cut = Buffer.concat([cut, got.subarray(at)]);
    t.true(readFileSync(join(skip, name)).equals(cut), `${name} skipped`);
    t.is(e.bytes, cut.length);
  }
  t.is(index.filter((e) => e.gaps).length, 4, 'every direction with a hole lists it');
});

when(HAS_TCPFLOW, 'needs tcpflow')('extract --gaps zero gives tcpflow\'s file names and bytes for flows with holes', async (t) => {
  const { Conv, Timeline } = await import('../helpers/conv.js');
  const d = tmp(t);
  const { cap, want } = holesCapture(d, Conv, new Timeline());
  const ours = join(d, 'ours');
  const theirs = join(d, 'theirs');
  mkdirSync(theirs);
  t.is((await cli(['extract', cap, '-o', ours, '-q', '--gaps', 'zero'])).code, 0);
  await run('tcpflow', ['-r', cap, '-o', theirs]);
  const names = readdirSync(theirs).filter((f) => /^\d{3}\./.test(f)).sort();
  t.deepEqual(readdirSync(ours).filter((f) => f !== 'sockcap-index.json').sort(), names);
  for (const n of want.keys()) t.true(names.includes(n), n);
  for (const n of names) t.true(readFileSync(join(ours, n)).equals(readFileSync(join(theirs, n))), n);
});

test('index entries: indexJson writes JSON.stringify\'s bytes, for any names, networks, hashes and gaps', (t) => {
  const entry = fc.record({
    stream: fc.nat(),
    dir: fc.constantFrom<Dir>('c2s', 's2c'),
    src: fc.oneof(fc.constantFrom('10.0.0.2:80', '[::1]:5555'), fc.string({ unit: 'binary' })),
    dst: fc.constantFrom('10.0.0.1:80', '[2001:db8::1]:443'),
    file: fc.oneof(fc.string({ unit: 'binary' }), fc.constant('010.000.000.001.01111-010.000.000.002.00080'), fc.constant('a"b\\c\u0001d\u007f')),
    bytes: fc.nat(),
    net: fc.option(fc.oneof(fc.constantFrom('vlan 30.20.10', 'vxlan vni 5001'), fc.string({ unit: 'binary' })), { nil: undefined }),
    sha256: fc.option(fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 }), { nil: undefined }),
    gaps: fc.option(fc.array(fc.oneof(fc.tuple(fc.nat(), fc.nat()), fc.tuple(fc.nat(), fc.nat(), fc.constant('snaplen' as const))), { minLength: 1 }), { nil: undefined }),
  }, { requiredKeys: ['stream', 'dir', 'src', 'dst', 'file', 'bytes'] });
  fc.assert(fc.property(entry, (e) => {
    const clean = JSON.parse(JSON.stringify(e)) as FlowIndexEntry; // no undefined keys, as closed() builds them
    const j = new JsonBuf();
    indexJson(j, clean);
    return Buffer.concat(j.take()).toString('utf8') === JSON.stringify(clean);
  }), { numRuns: 2000 });
  t.pass();
});

test('FlowFiles: a name this run gave gets -c<stream> (the 4-tuple again, or its roles swapped), found by the filter and the lookup behind it; files of an earlier run are overwritten; a one-bit filter (every name looked up) names every file the same', async (t) => {
  const ab = new Uint8Array([10, 0, 0, 1, 10, 0, 0, 2]);
  const ba = new Uint8Array([10, 0, 0, 2, 10, 0, 0, 1]);
  const T = '010.000.000.001.01111-010.000.000.002.00080';
  const R = '010.000.000.002.00080-010.000.000.001.01111';
  const results: string[][] = [];
  for (const bits of [25, 5, 0]) {
    for (const small of [false, true]) {
      const d = tmp(t);
      // an earlier run's files of the same names: older than this run, so overwritten, not avoided
      // (with a one-bit filter the second name given is looked up and found in the directory)
      for (const n of [T, R]) {
        writeFileSync(join(d, n), 'old bytes of an earlier run');
        utimesSync(join(d, n), 1e9, 1e9);
      }
      const index: FlowIndexEntry[] = [];
      const ff = new FlowFiles(d, '%A.%a-%B.%b', false, (e) => index.push(e), null, small, bits);
      const c0 = new Connection(0, ab, 0, 1111, 4, 80, 4);
      ff.data(c0, 'c2s', [Buffer.from('zero c2s')]);
      ff.data(c0, 's2c', [Buffer.from('zero s2c')]);
      ff.closed(c0);
      // the same 4-tuple in the same batch: the first files may still be staged for the writer thread
      const c1 = new Connection(1, ab, 0, 1111, 4, 80, 4);
      ff.data(c1, 'c2s', [Buffer.from('one c2s')]);
      ff.closed(c1);
      await ff.drain();
      await new Promise((r) => setTimeout(r, 50)); // the writer's batch answered: now only the directory knows
      // roles swapped: its client-to-server name is stream 0's server-to-client name
      const c2 = new Connection(2, ba, 0, 80, 4, 1111, 4);
      ff.data(c2, 'c2s', [Buffer.from('two c2s')]);
      ff.data(c2, 's2c', [Buffer.from('two s2c')]);
      ff.closed(c2);
      await ff.close();
      ff.check();
      const names = index.map((e) => `${e.stream} ${e.dir} ${e.file}`);
      t.deepEqual(names, [`0 c2s ${T}`, `0 s2c ${R}`, `1 c2s ${T}-c1`, `2 c2s ${R}-c2`, `2 s2c ${T}-c2`], `filter bits ${bits}, small files ${small}`);
      for (const e of index) t.is(readFileSync(join(d, e.file), 'latin1'), `${['zero', 'one', 'two'][e.stream]} ${e.dir}`);
      t.deepEqual(readdirSync(d).sort(), index.map((e) => e.file).sort(), 'no other file (the clock probe is removed)');
      if (bits === 0) t.is(ff.nameLookups, 7, 'a one-bit filter: every name but the first looked up, and each -c<stream> name (it may have been given too)');
      if (bits === 25) t.is(ff.nameLookups, 3, 'only the names given before');
      results.push(names);
    }
  }
  t.is(new Set(results.map((r) => r.join())).size, 1);
});

// serial: AVA runs serial tests of a file before the others, so no other test's objects are in this heap
test.serial('FlowFiles keeps nothing per name: 40,000 more connections written and closed leave the heap as they found it (a set of names grew by ~80 bytes a file)', async (t) => {
  const { setFlagsFromString } = await import('node:v8');
  const { runInNewContext } = await import('node:vm');
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const d = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/sockcap-test-') : tmp(t);
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  const ff = new FlowFiles(d, '%A.%a-%B.%b', false, () => {}, null, true);
  const addr = new Uint8Array([10, 0, 0, 1, 10, 0, 0, 2]);
  const one = [new Uint8Array([1])];
  const round = async (from: number, n: number) => {
    for (let i = from; i < from + n; i++) {
      addr[2] = i >> 16;
      addr[3] = (i >> 8) & 0xff;
      const c = new Connection(i, addr, 0, 1024 + (i & 0xff), 4, 80, 4);
      ff.data(c, 'c2s', one);
      ff.data(c, 's2c', one);
      ff.closed(c);
      if (i % 1000 === 999) await ff.drain();
    }
    await ff.drain();
    await new Promise((r) => setTimeout(r, 100));
  };
  // warm up: the writer thread, its buffers, the table of files and compiled code reach their size
  // (measured: the heap stops growing after 30,000-40,000 connections)
  await round(0, 40_000);
  gc();
  const before = process.memoryUsage().heapUsed;
  await round(40_000, 40_000);
  gc();
  const grew = process.memoryUsage().heapUsed - before;
  await ff.close();
  ff.check();
  t.is(ff.filesWritten, 160_000);
  // a set of names grew 7.5 MB here; what is left is the heap's own noise
  t.true(grew < 2 << 20, `heap grew ${grew} bytes over 80,000 files`);
});

test('extract names an IPv6 flow from the text form of its addresses (colons kept: "::1", not a hidden "..1"), ports padded', async (t) => {
  const d = tmp(t);
  const r = await cli(['extract', fixture('ip/frag-ipv6-tcp.pcap'), '-o', d, '-q']);
  t.is(r.code, 0, r.stderr);
  const index = JSON.parse(readFileSync(join(d, 'sockcap-index.json'), 'utf8')) as FlowIndexEntry[];
  t.deepEqual(index.map((e) => [e.src, e.dst, e.file, e.bytes]), [['[::1]:12345', '[::1]:8080', '::1.12345-::1.08080', 1000]]);
  t.is(statSync(join(d, '::1.12345-::1.08080')).size, 1000);
});

when(HAS_TCPFLOW, 'needs tcpflow')('extract gives tcpflow\'s file names and bytes for IPv6 flows (inet_ntop text: 2001:db8::1, ::1)', async (t) => {
  const { Conv, Timeline, writeStream } = await import('../helpers/conv.js');
  const tl = new Timeline();
  const a = new Conv(tl, { client: '2001:db8::1', server: '2001:db8::2', cport: 40001, sport: 8080 });
  const b = new Conv(tl, { client: '::1', server: '::1', cport: 40002, sport: 8080 });
  a.handshake();
  b.handshake();
  a.send('c', writeStream(3000), 1000).ack('s');
  a.send('s', writeStream(700), 700).ack('c');
  b.send('c', 'hello over ::1').ack('s');
  a.close('c');
  b.close('c');
  const dir = tmp(t);
  const cap = join(dir, 'v6.pcap');
  writeFileSync(cap, tl.pcap());
  const ours = join(dir, 'ours');
  const theirs = join(dir, 'theirs');
  mkdirSync(theirs);
  const r = await cli(['extract', cap, '-o', ours, '-q']);
  t.is(r.code, 0, r.stderr);
  await run('tcpflow', ['-r', cap, '-o', theirs]);
  const names = readdirSync(ours).filter((f) => f !== 'sockcap-index.json').sort();
  t.deepEqual(names, ['2001:db8::1.40001-2001:db8::2.08080', '2001:db8::2.08080-2001:db8::1.40001', '::1.40002-::1.08080']);
  t.deepEqual(readdirSync(theirs).filter((f) => f !== 'report.xml').sort(), names);
  for (const n of names) t.true(readFileSync(join(ours, n)).equals(readFileSync(join(theirs, n))), n);
});

test('flowName: the default template over IPv4 (written as bytes) names every address and port as the general template expansion does', (t) => {
  fc.assert(fc.property(fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 65535 }), fc.boolean(), (addr, cp, sp, c2s) => {
    const c = new Connection(0, addr, 0, cp, 4, sp, 4);
    const d: Dir = c2s ? 'c2s' : 's2c';
    const fast = flowName('%A.%a-%B.%b', c, d);
    t.is(fast, flowName('%A.%a-%B.%b~', c, d).slice(0, -1));
    t.regex(fast, /^(\d{3}\.){4}\d{5}-(\d{3}\.){4}\d{5}$/);
  }), { numRuns: 2000 });
  const c = new Connection(0, new Uint8Array([10, 0, 0, 1, 192, 168, 200, 255]), 0, 65535, 4, 7, 4);
  t.is(flowName('%A.%a-%B.%b', c, 'c2s'), '010.000.000.001.65535-192.168.200.255.00007');
  t.is(flowName('%A.%a-%B.%b', c, 's2c'), '192.168.200.255.00007-010.000.000.001.65535');
});

test('extract --json counts the bytes it copies: the small files\' (staged for the writer thread), not those written as views', async (t) => {
  const { Conv, Timeline, writeStream } = await import('../helpers/conv.js');
  const tl = new Timeline();
  const small = new Conv(tl, { cport: 40001 });
  const big = new Conv(tl, { cport: 40002 });
  small.handshake();
  big.handshake();
  small.send('c', 'GET / HTTP/1.0\r\n\r\n').ack('s');
  small.send('s', writeStream(900)).ack('c');
  // 100,000 bytes: read 64 KiB at a time (SO_RCVLOWAT), so its first write is a writev of views
  big.send('c', writeStream(100_000)).ack('s');
  small.close('c');
  big.close('c');
  const dir = tmp(t);
  const cap = join(dir, 'two.pcap');
  writeFileSync(cap, tl.pcap());
  const r = await cli(['extract', cap, '-o', join(dir, 'out'), '--json']);
  t.is(r.code, 0, r.stderr);
  t.like(JSON.parse(r.stdout), { files: 3, bytes: 18 + 900 + 100_000, copiedBytes: 18 + 900 });
});

test('follow -z takes the name of a file extract wrote (its path too, IPv6 names, -c<stream> for a 4-tuple seen again) and prints that direction, the file\'s bytes; tshark\'s A:p,B:q selects as A:p-B:q does', async (t) => {
  const d = tmp(t);
  // the same 4-tuple twice (the second connection's names get -c1), then one over IPv6
  const conn = (src: string, dst: string, sport: number, req: string, resp: string) => {
    const c = { src, dst, sport, dport: 80 };
    const s = { src: dst, dst: src, sport: 80, dport: sport };
    return [
      tcpFrame({ ...c, seq: 99, flags: TH_SYN }),
      tcpFrame({ ...s, seq: 499, ack: 100, flags: TH_SYN | TH_ACK }),
      tcpFrame({ ...c, seq: 100, ack: 500, payload: req }),
      tcpFrame({ ...s, seq: 500, ack: 100 + req.length, payload: resp }),
      tcpFrame({ ...c, seq: 100 + req.length, ack: 500 + resp.length, flags: TH_FIN | TH_ACK }),
      tcpFrame({ ...s, seq: 500 + resp.length, ack: 101 + req.length, flags: TH_FIN | TH_ACK }),
    ];
  };
  const frames = [...conn('10.0.0.1', '10.0.0.2', 40000, 'GET /a', 'first answer'), ...conn('10.0.0.1', '10.0.0.2', 40000, 'GET /bb', 'second'),
    ...conn('2001:db8::1', '2001:db8::2', 40001, 'six', 'over IPv6')];
  const cap = join(d, 'c.pcap');
  writeFileSync(cap, pcapFile(frames.map((data, i) => ({ data, tsSec: 1_700_000_000 + i }))));
  const out = join(d, 'x');
  t.is((await cli(['extract', cap, '-o', out, '-q'])).code, 0);
  const index = JSON.parse(readFileSync(join(out, 'sockcap-index.json'), 'utf8')) as FlowIndexEntry[];
  t.is(index.length, 6);
  t.true(index.some((e) => e.file.endsWith('-c1')) && index.some((e) => e.file.startsWith('2001:db8::')), index.map((e) => e.file).join(' '));
  for (const e of index) {
    for (const sel of [e.file, join(out, e.file)]) {
      const r = await cli(['follow', cap, '-z', sel, '--format', 'raw']);
      t.is(r.code, 0, r.stderr);
      const got = rawBytes(r.stdout);
      const other = e.dir === 'c2s' ? 's2c' : 'c2s';
      t.true(got[e.dir].equals(readFileSync(join(out, e.file))), `${sel}: the file's bytes`);
      t.is(got[other].length, 0, `${sel}: only its direction`);
      t.regex(r.stdout, new RegExp(`^Filter: tcp\\.stream eq ${e.stream}$`, 'm'), `${sel}: stream ${e.stream}`);
    }
  }
  const dash = await cli(['follow', cap, '-z', '[2001:db8::1]:40001-[2001:db8::2]:80']);
  const comma = await cli(['follow', cap, '-z', '[2001:db8::1]:40001,[2001:db8::2]:80']);
  t.is(comma.code, 0, comma.stderr);
  t.is(comma.stdout, dash.stdout);
  t.regex(comma.stdout, /over IPv6/);
  const bad = await cli(['follow', cap, '-z', '010.000.000.001.40000-010.000.000.002']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /bad flow selector/);
});

when(HAS_TCPDUMP, 'needs tcpdump')('the README\'s filter pipe: tcpdump -r FILE -w - FILTER | sockcap extract - writes the files of the connections that passed the filter, byte for byte those of an extract of the whole file', async (t) => {
  const d = tmp(t);
  const cap = fixture('tcp/three-http-streams.pcap');
  const all = join(d, 'all');
  t.is((await cli(['extract', cap, '-o', all, '-q'])).code, 0);
  const some = join(d, 'some');
  const r = spawnSync('sh', ['-c', `tcpdump -r '${cap}' -w - 'tcp port 80 and host 98.139.240.23' 2>/dev/null | '${process.execPath}' '${CLI}' extract - -o '${some}' -q`], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const files = readdirSync(some).filter((f) => f !== 'sockcap-index.json').sort();
  t.deepEqual(files, ['098.139.240.023.00080-172.016.133.132.52328', '172.016.133.132.52328-098.139.240.023.00080']);
  for (const f of files) t.true(readFileSync(join(some, f)).equals(readFileSync(join(all, f))), f);
  const index = JSON.parse(readFileSync(join(some, 'sockcap-index.json'), 'utf8')) as FlowIndexEntry[];
  t.deepEqual(index.map((e) => e.stream), [0, 0], 'streams count the connections that passed');
});
