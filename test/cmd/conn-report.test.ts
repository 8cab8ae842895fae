import test from 'ava';
import { Writable } from 'node:stream';
import { ConnReport, type ItemFormat } from '../../cmd/conn-report.js';

/** Items of a report: a stream index and some text (non-ASCII too: written aside as bytes, it must come out whole). */
interface Item { stream: number; note: string }
const items = (n: number): Item[] => Array.from({ length: n }, (_, i) => ({ stream: i, note: `n${i % 7} é "${'x'.repeat(i % 300)}"` }));
const FORMAT: ItemFormat<Item> = {
  header: 'stream  note',
  row: (j, c) => j.text(`${c.stream}  ${c.note}\n`),
  json: (j, c) => j.text(JSON.stringify(c)),
};

test('ConnReport writes connections as they finish (the first 10,000 held and sorted), so a long run\'s memory does not hold them all; the JSON is whole', async (t) => {
  const conns = items(25_000);
  for (const json of [true, false]) {
    const chunks: Buffer[] = [];
    const out = new Writable({ write(c: Buffer, _e, cb) { chunks.push(Buffer.from(c)); cb(); } });
    let cleared = 0;
    const r = new ConnReport(json, out, () => cleared++, FORMAT);
    // the first 10,000 arrive out of order and stay held (nothing written)
    for (const c of conns.slice(0, 10_000).reverse()) r.add(c);
    await r.flush();
    t.is(chunks.length, 0, 'held while at most 10,000');
    t.is(cleared, 0);
    // past them, each connection goes out at the next flush
    for (const c of conns.slice(10_000, 10_100)) r.add(c);
    await r.flush();
    const early = Buffer.concat(chunks).length;
    t.true(early > 0, 'written before the run ends');
    t.true(cleared > 0, 'the live table was told to step aside');
    for (const c of conns.slice(10_100)) r.add(c);
    await r.end({ frames: 7 }, ['summary text']);
    const text = Buffer.concat(chunks).toString('utf8');
    if (json) {
      const j = JSON.parse(text) as { connections: Item[]; frames: number };
      t.is(j.frames, 7);
      t.deepEqual(j.connections, conns, 'all of them, the held ones sorted, each whole');
    } else {
      t.is(text, `stream  note\n${conns.map((c) => `${c.stream}  ${c.note}\n`).join('')}\nsummary text\n`, 'the header once, every row in order, the summary after a blank line');
    }
  }
});
