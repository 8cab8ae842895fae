import test from 'ava';
import { createRequire } from 'node:module';
import { readdirSync, readFileSync } from 'node:fs';
import { corpus, CORPUS, HAS_CORPUS } from '../helpers/paths.js';
import { readAll } from '../helpers/read.js';
import { when } from '../helpers/skip.js';

const require = createRequire(import.meta.url);
const pcapParser = require('pcap-parser') as { parse(input: string): NodeJS.EventEmitter };

interface PpRecord { header: { timestampSeconds: number; timestampMicroseconds: number; capturedLength: number; originalLength: number }; data: Buffer }

/** All records pcap-parser (an independent reader) yields for a file. */
function ppRead(path: string): Promise<PpRecord[]> {
  return new Promise((resolve, reject) => {
    const out: PpRecord[] = [];
    const p = pcapParser.parse(path);
    p.on('packet', (r: PpRecord) => out.push(r));
    p.on('end', () => resolve(out));
    p.on('error', reject);
  });
}

/** Classic microsecond pcap files (the only kind pcap-parser reads) that are well formed. */
function classicMicro(): string[] {
  return readdirSync(CORPUS).filter((f) => {
    if (!f.endsWith('.pcap')) return false;
    const b = readFileSync(corpus(f)).subarray(0, 24);
    if (b.length < 24) return false;
    const m = b.readUInt32LE(0);
    return (m === 0xa1b2c3d4 || m === 0xd4c3b2a1) && (m === 0xa1b2c3d4 ? b.readUInt16LE(4) : b.readUInt16BE(4)) === 2;
  });
}

when(HAS_CORPUS, 'needs ../shared/corpus')('pcap-parser and sockcap yield the same records for every classic µs pcap', async (t) => {
  const files = classicMicro();
  t.true(files.length > 40, `${files.length} files`);
  let compared = 0;
  for (const f of files) {
    const ours = await readAll({ name: corpus(f) });
    if (ours.error) continue; // malformed files have their own table in reader.test.ts
    const theirs = await ppRead(corpus(f));
    t.is(theirs.length, ours.frames.length, f);
    theirs.forEach((r, i) => {
      const o = ours.frames[i]!;
      t.is(o.tsSec, r.header.timestampSeconds, `${f} #${i + 1}`);
      t.is(o.tsNsec, r.header.timestampMicroseconds * 1000, `${f} #${i + 1}`);
      t.is(o.origLen, r.header.originalLength, `${f} #${i + 1}`);
      t.is(o.hex, r.data.toString('hex'), `${f} #${i + 1}`);
    });
    compared++;
  }
  t.true(compared > 40);
});
