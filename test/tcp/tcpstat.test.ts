import test from 'ava';
import { readdirSync } from 'node:fs';
import { readCaptures } from '../../core/capture/reader.js';
import { CaptureSession } from '../../core/capture/session.js';
import { Stack } from '../../core/stack.js';
import { type ConnSummary, newTcpstat, type Tcpstat } from '../../core/tcp/summary.js';
import { CORPUS, HAS_CORPUS, corpus, fixture } from '../helpers/paths.js';
import { when } from '../helpers/skip.js';

/**
 * The counters are read from each connection as it leaves, not from its summary (extract makes
 * none). They must say what the summaries say, added up the way a reader of the report would.
 */
function fromSummaries(all: readonly ConnSummary[]): Tcpstat {
  const t = newTcpstat();
  for (const c of all) {
    t.connections++;
    for (const d of [c.c2s, c.s2c]) {
      t.rcvtotal += d.segments;
      t.rcvbyte += d.bytes;
      t.rcvdupbyte += d.retransmitted;
      t.rcvoopack += d.outOfOrder;
      t.overlapbytes += d.overlapBytes;
      t.overlapconflicts += d.overlapConflicts;
      t.gaps += d.gaps.length;
      for (const g of d.gaps) t.gapbytes += g[1];
    }
    if (c.state === 'RESET') t.resets++;
    if (c.clientGuessed) t.midstream++;
  }
  return t;
}

async function run(path: string, keep: boolean): Promise<{ tcpstat: Tcpstat; summaries: ConnSummary[]; finished: number }> {
  const session = new CaptureSession();
  const summaries: ConnSummary[] = [];
  const stack = new Stack(session, { onConnection: keep ? (s) => summaries.push(s) : null });
  try {
    for await (const b of readCaptures([{ name: path }], session)) stack.input(b);
  } catch {
    // a capture the corpus has for its corruption: what was read before counts
  }
  stack.finish();
  return { tcpstat: { ...stack.tcpstat }, summaries, finished: stack.finished.length };
}

async function check(t: import('ava').ExecutionContext, files: string[]): Promise<Tcpstat> {
  const total = newTcpstat();
  for (const f of files) {
    const kept = await run(f, true);
    t.deepEqual(kept.tcpstat, fromSummaries(kept.summaries), f);
    const none = await run(f, false);
    t.deepEqual(none.tcpstat, kept.tcpstat, `${f}: the same without summaries`);
    t.is(none.finished, 0, 'onConnection null keeps no summaries either');
    for (const k of Object.keys(total) as Array<keyof Tcpstat>) total[k] += kept.tcpstat[k];
  }
  return total;
}

test('tcpstat read from the connections equals the sum of their summaries, with or without summaries (fixtures)', async (t) => {
  const files = ['tcp', 'ip', 'link'].flatMap((d) => readdirSync(fixture(d)).filter((x) => /\.pcap(ng)?$/.test(x)).map((x) => fixture(`${d}/${x}`)));
  const total = await check(t, files);
  t.true(total.connections > 5 && total.rcvbyte > 0 && total.rcvdupbyte > 0, JSON.stringify(total));
});

when(HAS_CORPUS, 'needs ../shared/corpus')('tcpstat read from the connections equals the sum of their summaries on every corpus capture', async (t) => {
  const files = readdirSync(CORPUS).filter((x) => /\.pcap(ng)?$/.test(x)).map((x) => corpus(x));
  const total = await check(t, files);
  // the corpus has every kind of thing the counters count
  for (const k of ['rcvdupbyte', 'rcvoopack', 'gaps', 'resets', 'midstream'] as const) t.true(total[k] > 0, `${k}: ${total[k]}`);
});
