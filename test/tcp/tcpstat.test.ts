import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCaptures } from '../../core/capture/reader.js';
import { CaptureSession } from '../../core/capture/session.js';
import { Stack } from '../../core/stack.js';
import { type ConnSummary, newTcpstat, type Tcpstat } from '../../core/tcp/summary.js';
import { TH_ACK, TH_FIN, TH_RST, TH_SYN } from '../../core/wire/tcp.js';
import { pcapFile, tcpFrame } from '../helpers/build.js';
import { CORPUS, HAS_CORPUS, HAS_TSHARK, corpus, fixture } from '../helpers/paths.js';
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
      for (const g of d.gaps) {
        t.gapbytes += g[1];
        if (g[2] === 'snaplen') t.snaplenbytes += g[1];
      }
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

test('a connection\'s frames are the frames of it that reached it, whatever they carried (built capture)', async (t) => {
  // three connections interleaved: a full one with a retransmission, one picked up mid-stream with a
  // segment out of order, one refused with a RST
  const a = { src: '10.0.0.1', dst: '10.0.0.2', sport: 1001, dport: 80 };
  const ar = { src: a.dst, dst: a.src, sport: a.dport, dport: a.sport };
  const b = { src: '10.0.0.3', dst: '10.0.0.4', sport: 1002, dport: 443 };
  const c = { src: '10.0.0.5', dst: '10.0.0.6', sport: 1003, dport: 25 };
  const frames = [
    tcpFrame({ ...a, seq: 100, flags: TH_SYN }),
    tcpFrame({ ...b, seq: 5000, ack: 1, payload: 'bbbb' }),
    tcpFrame({ ...ar, seq: 900, ack: 101, flags: TH_SYN | TH_ACK }),
    tcpFrame({ ...c, seq: 7, flags: TH_SYN }),
    tcpFrame({ ...a, seq: 101, ack: 901 }),
    tcpFrame({ ...b, seq: 5008, ack: 1, payload: 'dddd' }),
    tcpFrame({ ...a, seq: 101, ack: 901, payload: 'hello' }),
    tcpFrame({ src: c.dst, dst: c.src, sport: c.dport, dport: c.sport, seq: 0, ack: 8, flags: TH_RST | TH_ACK }),
    tcpFrame({ ...a, seq: 101, ack: 901, payload: 'hello' }),
    tcpFrame({ ...b, seq: 5004, ack: 1, payload: 'cccc' }),
    tcpFrame({ ...ar, seq: 901, ack: 106, payload: 'hi' }),
    tcpFrame({ ...b, seq: 5012, ack: 1, payload: 'eeee' }),
    tcpFrame({ ...a, seq: 106, ack: 903, flags: TH_FIN | TH_ACK }),
    tcpFrame({ ...ar, seq: 903, ack: 107, flags: TH_FIN | TH_ACK }),
    tcpFrame({ ...a, seq: 107, ack: 904 }),
  ];
  const dir = mkdtempSync(join(tmpdir(), 'sockcap-frames-'));
  const file = join(dir, 'three.pcap');
  writeFileSync(file, pcapFile(frames.map((data, i) => ({ data, tsSec: 1000 + i }))));
  const { summaries } = await run(file, true);
  const byPort = new Map(summaries.map((s) => [Number(s.client.split(':').pop()), s]));
  t.deepEqual([1001, 1002, 1003].map((p) => byPort.get(p)?.frames), [9, 4, 2]);
  t.deepEqual([1001, 1002, 1003].map((p) => [byPort.get(p)!.c2s.segments, byPort.get(p)!.s2c.segments]), [[6, 3], [4, 0], [1, 1]]);
});

when(HAS_TSHARK, 'needs tshark')('frames per connection equal tshark\'s frames per tcp.stream (fixtures)', async (t) => {
  for (const name of ['tcp/smtp.pcap', 'tcp/three-http-streams.pcap']) {
    const f = fixture(name);
    // tshark also counts the TCP headers quoted in ICMP errors; sockcap's connections never see those
    const rows = execFileSync('tshark', ['-r', f, '-Y', 'tcp && !icmp && !icmpv6', '-T', 'fields', '-e', 'tcp.stream'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const want = new Map<number, number>();
    for (const r of rows.split('\n').filter(Boolean)) want.set(Number(r), (want.get(Number(r)) ?? 0) + 1);
    const { summaries } = await run(f, true);
    const got = summaries.map((s) => [s.stream, s.frames]).sort((x, y) => x[0]! - y[0]!);
    t.deepEqual(got, [...want].sort((x, y) => x[0] - y[0]), name);
    t.true(want.size >= 1);
  }
});
