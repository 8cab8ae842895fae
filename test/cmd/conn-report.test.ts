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

test('ConnReport writes items in stream order as they finish: one that finishes early waits for those before it, until more than 10,000 wait (then they go out sorted, and later ones as they come); the JSON is whole', async (t) => {
  const all = items(25_000);
  const at = (from: number, to: number) => all.slice(from, to);
  // a straggler: stream 10,100 finishes last of all
  const expected = [...at(0, 10_100), ...at(10_101, 25_000), all[10_100]!];
  for (const json of [true, false]) {
    const chunks: Buffer[] = [];
    const out = new Writable({ write(c: Buffer, _e, cb) { chunks.push(Buffer.from(c)); cb(); } });
    let cleared = 0;
    const r = new ConnReport(json, out, () => cleared++, FORMAT);
    const size = () => Buffer.concat(chunks).length;
    // 9,999 finish before stream 0: they wait for it
    for (const c of at(1, 10_000).reverse()) r.add(c);
    await r.flush();
    t.is(size(), 0, 'waiting for stream 0');
    t.is(cleared, 0);
    r.add(all[0]!);
    await r.flush();
    const first = size();
    t.true(first > 0, 'stream 0 let all of them out');
    t.true(cleared > 0, 'the live table was told to step aside');
    // in order: each goes out at the next flush
    for (const c of at(10_000, 10_100)) r.add(c);
    await r.flush();
    t.true(size() > first, 'in order: out at once');
    // stream 10,100 is late: 10,000 after it wait, the 10,001st lets them all out, sorted
    const before = size();
    for (const c of at(10_101, 20_101)) r.add(c);
    await r.flush();
    t.is(size(), before, '10,000 waiting');
    r.add(all[20_101]!);
    await r.flush();
    t.true(size() > before, 'more than 10,000 waiting: out');
    for (const c of at(20_102, 25_000)) r.add(c);
    r.add(all[10_100]!);
    await r.end({ frames: 7 }, ['summary text']);
    const text = Buffer.concat(chunks).toString('utf8');
    if (json) {
      const j = JSON.parse(text) as { connections: Item[]; frames: number };
      t.is(j.frames, 7);
      t.deepEqual(j.connections, expected, 'every item whole, in stream order but for the straggler, written when it came');
    } else {
      t.is(text, `stream  note\n${expected.map((c) => `${c.stream}  ${c.note}\n`).join('')}\nsummary text\n`, 'the header once, the rows in that order, the summary after a blank line');
    }
  }
});

test('ConnReport: items still waiting at the end (streams that never came) come out sorted', async (t) => {
  const chunks: Buffer[] = [];
  const out = new Writable({ write(c: Buffer, _e, cb) { chunks.push(Buffer.from(c)); cb(); } });
  const r = new ConnReport(true, out, null, FORMAT);
  const list = items(50).filter((c) => c.stream % 3 !== 0); // fuse reports only fused connections: gaps in the streams
  for (const c of [...list].reverse()) r.add(c);
  await r.end({ frames: 1 }, []);
  t.deepEqual(JSON.parse(Buffer.concat(chunks).toString('utf8')), { connections: list, frames: 1 });
});

test('ConnReport\'s JSON is whole with no connections and with a summary of no members', async (t) => {
  for (const [conns, summary] of [[0, {}], [0, { frames: 1 }], [3, {}], [3, { frames: 1, drops: { a: 1 } }]] as const) {
    const chunks: Buffer[] = [];
    const out = new Writable({ write(c: Buffer, _e, cb) { chunks.push(Buffer.from(c)); cb(); } });
    const r = new ConnReport(true, out, null, FORMAT);
    for (const c of items(conns)) r.add(c);
    await r.end(summary, []);
    t.deepEqual(JSON.parse(Buffer.concat(chunks).toString('utf8')), { connections: items(conns), ...summary });
  }
});
