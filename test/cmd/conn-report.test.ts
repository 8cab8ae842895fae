import test from 'ava';
import { Writable } from 'node:stream';
import { CaptureSession } from '../../core/capture/session.js';
import { runPipeline } from '../../core/pipeline.js';
import { DrainApp } from '../../core/socket/reader.js';
import { Stack } from '../../core/stack.js';
import type { ConnSummary } from '../../core/tcp/summary.js';
import { ConnReport } from '../../cmd/conn-report.js';
import { fixture } from '../helpers/paths.js';

/** Real connection summaries (a fixture's three), renumbered into `n` of them. */
async function summaries(n: number): Promise<ConnSummary[]> {
  const got: ConnSummary[] = [];
  await runPipeline([{ name: fixture('tcp/three-http-streams.pcap') }], new Stack(new CaptureSession(), { app: new DrainApp(false), onConnection: (c) => got.push(c) }));
  return Array.from({ length: n }, (_, i) => ({ ...structuredClone(got[i % got.length]!), stream: i }));
}

test('ConnReport writes connections as they finish (the first 10,000 held and sorted), so a long run\'s memory does not hold them all; the JSON is whole', async (t) => {
  const conns = await summaries(25_000);
  for (const json of [true, false]) {
    const chunks: Buffer[] = [];
    const out = new Writable({ write(c: Buffer, _e, cb) { chunks.push(Buffer.from(c)); cb(); } });
    let cleared = 0;
    const r = new ConnReport(json, out, () => cleared++);
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
    const text = Buffer.concat(chunks).toString('latin1');
    if (json) {
      const j = JSON.parse(text) as { connections: ConnSummary[]; frames: number };
      t.is(j.frames, 7);
      t.deepEqual(j.connections.map((c) => c.stream), conns.map((c) => c.stream), 'all of them, the held ones sorted');
    } else {
      const rows = text.split('\n').filter((l) => /^\d+ /.test(l));
      t.is(rows.length, 25_000);
      t.is(rows[0]!.split(/\s+/)[0], '0');
      t.true(text.endsWith('\nsummary text\n'));
    }
  }
});
