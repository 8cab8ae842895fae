import test from 'ava';
import { join } from 'node:path';
import { CaptureSession } from '../../core/capture/session.js';
import { runPipeline } from '../../core/pipeline.js';
import { Stack } from '../../core/stack.js';
import { tmp } from '../helpers/cli.js';
import { generate } from './gen.js';

test('the benchmark generator makes flows that reassemble completely (with reordering and duplicates)', async (t) => {
  const path = join(tmp(t), 'g.pcap');
  await generate({ path, bytes: 4e6, flows: 50, perFlow: 30000 });
  const stack = new Stack(new CaptureSession());
  const res = await runPipeline([{ name: path }], stack);
  t.is(res.error, null);
  t.true(stack.finished.length >= 50);
  const complete = stack.finished.filter((c) => c.state === 'CLOSED');
  t.true(complete.length >= 50, `${complete.length} complete flows`);
  for (const c of complete) {
    t.is(c.c2s.bytes, 30000);
    t.is(c.s2c.bytes, 3000);
    t.deepEqual(c.c2s.gaps, []);
  }
  t.true(stack.tcpstat.rcvdupbyte > 0, 'some duplicates');
  t.true(stack.tcpstat.rcvoopack > 0, 'some reordering within flows');
});
