import test from 'ava';
import fc from 'fast-check';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SmallFileWriter } from '../../core/capture/file-writer.js';
import { tmp } from '../helpers/cli.js';
import { runs } from '../helpers/fuzz.js';

/** One write: which file, how many bytes in how many views, and whether to publish after it. */
const op = fc.record({ file: fc.nat(11), n: fc.nat(3000), views: fc.integer({ min: 1, max: 4 }), flush: fc.boolean() });

type Op = { file: number; n: number; views: number; flush: boolean };

/**
 * The writes `ops` through a ring of 2^log2 bytes into 12 files named after `raw`: true when every
 * file holds its bytes in order (none made for a file never written) and nothing is left behind;
 * with how many writes went the main thread's way (direct) and how many bytes through the ring.
 */
async function writeAll(dir: string, log2: number, raw: readonly string[], ops: readonly Op[]): Promise<{ ok: boolean; direct: number; ringed: number }> {
  // distinct names (a run never gives two directions one name)
  const name = raw.map((s, i) => `${i}.${s}`);
  const w = new SmallFileWriter(join(dir, '/'), 2 ** log2);
  const want: Buffer[] = name.map(() => Buffer.alloc(0));
  const after = new Uint32Array(name.length);
  let k = 0;
  for (const o of ops) {
    if (o.n === 0) continue; // FlowFiles never writes nothing
    const b = Buffer.alloc(o.n);
    for (let i = 0; i < o.n; i++) b[i] = (k * 31 + i) & 255;
    k++;
    const cut = Math.floor(o.n / o.views);
    const views = Array.from({ length: o.views }, (_, i) => b.subarray(i * cut, i === o.views - 1 ? o.n : (i + 1) * cut));
    const f = o.file;
    after[f] = w.write(name[f]!, views, o.n, want[f]!.length, want[f]!.length === 0, after[f]);
    want[f] = Buffer.concat([want[f]!, b]);
    if (o.flush) w.flush();
  }
  await w.settle();
  const res = { ok: false, direct: w.directFiles + w.directWrites, ringed: w.copied };
  if (w.failure) return res;
  const made = new Set(readdirSync(dir));
  for (let f = 0; f < name.length; f++) {
    if (!want[f]!.length) {
      if (made.has(name[f]!)) return res;
      continue;
    }
    if (!readFileSync(join(dir, name[f]!)).equals(want[f]!)) return res;
  }
  res.ok = w.backlog === 0;
  return res;
}

test('fuzz: any sequence of writes through the small-file writer\'s ring (any ring size, names of any length and script, chunks larger than a quarter of the ring) leaves every file with its bytes in order, whichever thread wrote them', async (t) => {
  let direct = 0;
  let ringed = 0;
  const names = fc.array(fc.string({ unit: fc.constantFrom('a', 'Z', '0', '-', 'é', '流', '😀'), minLength: 1, maxLength: 40 }), { minLength: 12, maxLength: 12 });
  await fc.assert(fc.asyncProperty(fc.integer({ min: 12, max: 16 }), names, fc.array(op, { maxLength: 120 }), async (log2, raw, ops) => {
    const r = await writeAll(tmp(t), log2, raw, ops);
    direct += r.direct;
    ringed += r.ringed;
    return r.ok;
  }), runs(40));
  // both ways must have been taken: a 4 KiB ring fills after a few writes (the thread opens, writes
  // and closes a file in the time the main thread copies dozens), but on a loaded machine the
  // thread can keep up through a whole run. Then more runs of the fullest kind (a 4 KiB ring, 400
  // writes of up to 1 KiB, no early publishing), each checked the same way, until one goes direct.
  const rnd = (() => {
    let x = 7;
    return () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32;
  })();
  for (let i = 0; direct === 0 && i < 50; i++) {
    const ops = Array.from({ length: 400 }, () => ({ file: Math.floor(rnd() * 12), n: 1 + Math.floor(rnd() * 1024), views: 1 + Math.floor(rnd() * 4), flush: false }));
    const r = await writeAll(tmp(t), 12, Array.from({ length: 12 }, (_, j) => `f${j}`), ops);
    t.true(r.ok, `extra run ${i}: every file whole`);
    direct += r.direct;
  }
  t.true(direct > 0, 'some files written on the main thread');
  t.true(ringed > 0, 'some bytes through the ring');
});
