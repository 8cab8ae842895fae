import test from 'ava';
import fc from 'fast-check';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SmallFileWriter } from '../../core/capture/file-writer.js';
import { tmp } from '../helpers/cli.js';
import { runs } from '../helpers/fuzz.js';

/** One write: which file, how many bytes in how many views, and whether to publish after it. */
const op = fc.record({ file: fc.nat(11), n: fc.nat(3000), views: fc.integer({ min: 1, max: 4 }), flush: fc.boolean() });

test('fuzz: any sequence of writes through the small-file writer\'s ring (any ring size, names of any length and script, chunks larger than a quarter of the ring) leaves every file with its bytes in order, whichever thread wrote them', async (t) => {
  let direct = 0;
  let ringed = 0;
  const names = fc.array(fc.string({ unit: fc.constantFrom('a', 'Z', '0', '-', 'é', '流', '😀'), minLength: 1, maxLength: 40 }), { minLength: 12, maxLength: 12 });
  await fc.assert(fc.asyncProperty(fc.integer({ min: 12, max: 16 }), names, fc.array(op, { maxLength: 120 }), async (log2, raw, ops) => {
    const d = tmp(t);
    // distinct names (a run never gives two directions one name)
    const name = raw.map((s, i) => `${i}.${s}`);
    const w = new SmallFileWriter(join(d, '/'), 2 ** log2);
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
    direct += w.directFiles + w.directWrites;
    ringed += w.copied;
    if (w.failure) return false;
    const made = new Set(readdirSync(d));
    for (let f = 0; f < name.length; f++) {
      if (!want[f]!.length) {
        if (made.has(name[f]!)) return false;
        continue;
      }
      if (!readFileSync(join(d, name[f]!)).equals(want[f]!)) return false;
    }
    return w.backlog === 0;
  }), runs(40));
  // both ways were taken (a 4 KiB ring fills after a few writes: the thread opens, writes and
  // closes a file in the time the main thread copies dozens)
  t.true(direct > 0, 'some files written on the main thread');
  t.true(ringed > 0, 'some bytes through the ring');
});
