import test from 'ava';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, existsSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmp } from '../helpers/cli.js';

// the small-file writer of extract (FlowFiles with smallFiles): its ring, the two threads, failures

test('SmallFileWriter: a ring of shared memory never holds more than its size (the main thread waits for room), records skip its end rather than straddle it, a chunk over a quarter of it goes in pieces, writing() finds a staged name, settle() writes everything', async (t) => {
  const { SmallFileWriter } = await import('../../core/capture/file-writer.js');
  const d = tmp(t);
  const w = new SmallFileWriter(join(d, '/'), 4096);
  const want = new Map<string, Buffer>();
  // writes that reopen a file (made here first): they go through the ring whatever it holds (a new
  // file would be made on the main thread when the ring is full: see the next test)
  for (const name of ['staged', 'big', ...Array.from({ length: 400 }, (_, i) => `f${i}`)]) writeFileSync(join(d, name), '');
  let most = 0;
  for (let i = 0; i < 400; i++) {
    const size = 1 + ((i * 397) % 1000); // up to 1,000 bytes, names of 2-4: the ring's end falls everywhere
    const b = Buffer.alloc(size, i & 255);
    w.write(`f${i}`, [b.subarray(0, size >> 1), b.subarray(size >> 1)], size, 0, false);
    most = Math.max(most, w.backlog);
    want.set(`f${i}`, b);
  }
  t.true(most <= 4096, `${most} bytes held`);
  // staged, not yet published: only the ring knows the name
  w.write('staged', [Buffer.from('x')], 1, 0, false);
  want.set('staged', Buffer.from('x'));
  t.true(w.writing('staged'));
  t.false(w.writing('stage'));
  t.false(w.writing('never'));
  const big = Buffer.from(Array.from({ length: 10_000 }, (_, k) => k % 251));
  w.write('big', [big.subarray(0, 3), big.subarray(3)], big.length, 0, false);
  want.set('big', big);
  w.write('f0', [Buffer.from([1, 2])], 2, want.get('f0')!.length, false); // reopened, appended
  want.set('f0', Buffer.concat([want.get('f0')!, Buffer.from([1, 2])]));
  await w.settle();
  t.is(w.backlog, 0);
  t.is(w.failure, null);
  t.is(w.copied, [...want.values()].reduce((a, b) => a + b.length, 0));
  t.is(w.directFiles, 0);
  t.false(w.writing('staged'));
  t.deepEqual(readdirSync(d).sort(), [...want.keys()].sort());
  for (const [name, b] of want) t.true(readFileSync(join(d, name)).equals(b), name);
});

test('SmallFileWriter: when the ring is full a file with none of its writes in it (a new one, or one the thread is done with) is written on the main thread, so a slow writer thread does not stop the run', async (t) => {
  const { SmallFileWriter } = await import('../../core/capture/file-writer.js');
  const d = tmp(t);
  execFileSync('mkfifo', [join(d, 'fifo')]);
  const w = new SmallFileWriter(join(d, '/'), 4096);
  // the writer thread's open of a FIFO nobody reads blocks: it takes nothing more off the ring
  // (no bytes for it: a FIFO cannot be written at an offset)
  w.write('fifo', [], 0, 0, true);
  w.flush();
  const want = (i: number) => Buffer.concat([Buffer.alloc(250, i), Buffer.alloc(250, i + 1)]);
  const after: number[] = [];
  for (let i = 0; i < 20; i++) after.push(w.write(`f${i}`, [Buffer.alloc(250, i), Buffer.alloc(250, i + 1)], 500, 0, true));
  // 7 records of 544 bytes fit beside the FIFO's 64: the other 13 files were made here, at once
  t.is(w.directFiles, 13);
  t.is(w.copied, 7 * 500);
  t.true(readFileSync(join(d, 'f19')).equals(want(19)), 'made while the thread is still stuck');
  t.false(existsSync(join(d, 'f0')), 'in the ring behind the FIFO');
  // a later write of a file with nothing in the ring is made here too (one in the ring would wait)
  const more = Buffer.alloc(300, 43); // 352 bytes of record: the ring has 224 left
  after[19] = w.write('f19', [more], 300, 500, false, after[19]);
  t.is(w.directWrites, 1);
  t.true(readFileSync(join(d, 'f19')).subarray(500).equals(more));
  const fd = openSync(join(d, 'fifo'), constants.O_RDONLY | constants.O_NONBLOCK); // now its open returns
  await w.settle();
  closeSync(fd);
  t.is(w.failure, null);
  for (let i = 0; i < 19; i++) t.true(readFileSync(join(d, `f${i}`)).equals(want(i)), `f${i}`);
  t.true(readFileSync(join(d, 'f19')).equals(Buffer.concat([want(19), more])));
});

test('SmallFileWriter: 3,000 writes to 200 files through a 4 KiB ring, each file\'s in order whether the thread or the main thread makes them, as FlowFiles feeds it', async (t) => {
  const { SmallFileWriter } = await import('../../core/capture/file-writer.js');
  const d = tmp(t);
  const w = new SmallFileWriter(join(d, '/'), 4096);
  const want: Buffer[] = Array.from({ length: 200 }, () => Buffer.alloc(0));
  const after = new Uint32Array(200);
  let seed = 99;
  const rnd = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
  for (let k = 0; k < 3000; k++) {
    const f = rnd(200);
    const b = Buffer.alloc(1 + rnd(700), k & 255);
    after[f] = w.write(`f${f}`, [b], b.length, want[f]!.length, want[f]!.length === 0, after[f]);
    want[f] = Buffer.concat([want[f]!, b]);
  }
  await w.settle();
  t.is(w.failure, null);
  t.true(w.directFiles + w.directWrites > 0, 'the main thread wrote some');
  t.true(w.copied > 0, 'the thread wrote some');
  for (let f = 0; f < 200; f++) if (want[f]!.length) t.true(readFileSync(join(d, `f${f}`)).equals(want[f]!), `f${f}`);
});

test('SmallFileWriter: a write that fails is reported with its path and the ring keeps draining (no wait on a full ring for nothing); a corrupt record stops the thread, and a write that needs room then fails instead of waiting', async (t) => {
  const { SmallFileWriter } = await import('../../core/capture/file-writer.js');
  const d = tmp(t);
  const w = new SmallFileWriter(join(d, 'no-such-dir', '/'), 4096);
  const b = Buffer.alloc(900, 1);
  // reopening writes (a new file would be made here when the ring is full): 25 ringfuls
  for (let i = 0; i < 100; i++) w.write(`f${i}`, [b], b.length, 0, false);
  await w.settle();
  t.is(w.failure?.path, join(d, 'no-such-dir', 'f0'));
  t.regex(w.failure!.message, /ENOENT/);

  const v = new SmallFileWriter(join(d, '/'), 4096);
  v.write('a', [b], b.length, 0, true);
  (v as unknown as { u32: Uint32Array }).u32[3] = 99; // the record's flags: not a record any more
  v.flush();
  t.throws(() => {
    for (let i = 0; i < 100; i++) v.write('a', [b], b.length, 900 * (i + 1), false);
  }, { message: /file writer thread stopped/ });
  await v.settle();
  t.regex(v.failure!.message, /corrupt record at 0/);
});
