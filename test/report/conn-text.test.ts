import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import { readdirSync } from 'node:fs';
import { connJson, connRow } from '../../core/conn-text.js';
import { CaptureSession } from '../../core/capture/session.js';
import { JsonBuf } from '../../core/json-buf.js';
import { runPipeline } from '../../core/pipeline.js';
import type { CaptureInput } from '../../core/capture/reader.js';
import { DrainApp } from '../../core/socket/reader.js';
import { Stack } from '../../core/stack.js';
import { thousands } from '../../core/report.js';
import { connSummary, type ConnSummary, type Digest } from '../../core/tcp/summary.js';
import type { Dir } from '../../core/net/in-pcb.js';
import { TH_ACK, TH_FIN, TH_RST, TH_SYN } from '../../core/wire/tcp.js';
import { chunked, pcapFile, tcpFrame, type RecSpec } from '../helpers/build.js';
import { holesCapture } from '../helpers/follow.js';
import { CORPUS, corpus, fixture, HAS_CORPUS } from '../helpers/paths.js';
import { when } from '../helpers/skip.js';

/** The table's row as the template-literal formatter wrote it from a summary (the reference layout). */
function referenceRow(c: ConnSummary): string {
  const num = thousands;
  const row = `${String(c.stream).padEnd(6)}  ${(c.client + (c.clientGuessed ? '?' : '')).padEnd(22)}  ${c.server.padEnd(22)}  ${c.state.padEnd(11)}  ${num(c.c2s.bytes).padStart(13)}  ${num(c.s2c.bytes).padStart(13)}  ${num(c.c2s.retransmitted + c.s2c.retransmitted).padStart(9)}  ${num(c.c2s.outOfOrder + c.s2c.outOfOrder).padStart(6)}  ${num(c.c2s.overlapBytes + c.s2c.overlapBytes).padStart(8)}  ${String(c.c2s.gaps.length + c.s2c.gaps.length).padStart(4)}  ${c.duration.toFixed(3)}s${c.net === undefined ? '' : `  ${c.net}`}`;
  return c.c2s.sha256 ? `${row}\n        sha256 c2s ${c.c2s.sha256}\n        sha256 s2c ${c.s2c.sha256}` : row;
}

interface Rendered {
  /** connJson's and connRow's text of each connection, in one buffer each (as a report writes them one after another). */
  json: string;
  rows: string;
  /** What the summaries make: JSON.stringify's, and the reference rows. */
  wantJson: string;
  wantRows: string;
  summaries: ConnSummary[];
}

/**
 * Run `inputs` through a stack (hashing when `hash`) and write every connection both ways as it
 * leaves: with connJson and connRow from the Connection, and from its summary.
 */
async function render(inputs: CaptureInput[], hash = true): Promise<Rendered> {
  const j = new JsonBuf();
  const r = new JsonBuf();
  const summaries: ConnSummary[] = [];
  const stack: Stack = new Stack(new CaptureSession(), {
    app: new DrainApp(hash),
    onConnection: null,
    onRetire: (c) => {
      // a direction's hash can be finished once: the three writers share it
      const hashes = new Map<Dir, string | null | undefined>();
      const digest: Digest | undefined = stack.digest && ((conn, d) => (hashes.has(d) ? hashes.get(d) : hashes.set(d, stack.digest!(conn, d)).get(d)));
      if (summaries.length) j.raw(',');
      connJson(j, c, digest, stack.nets);
      connRow(r, c, digest, stack.nets);
      summaries.push(connSummary(c, digest, stack.nets));
    },
  });
  await runPipeline(inputs, stack);
  const text = (b: JsonBuf) => Buffer.concat(b.take()).toString('utf8');
  return {
    json: text(j),
    rows: text(r),
    wantJson: summaries.map((c) => JSON.stringify(c)).join(','),
    wantRows: summaries.map((c) => `${referenceRow(c)}\n`).join(''),
    summaries,
  };
}

function same(t: ExecutionContext, got: Rendered, what: string): void {
  t.is(got.json, got.wantJson, `${what}: JSON`);
  t.is(got.rows, got.wantRows, `${what}: rows`);
}

test('connJson and connRow write what the summary makes (JSON.stringify, the reference row) for the fixtures: hashes, a VLAN stack\'s network, IPv6 and fragments', async (t) => {
  const files = ['tcp/three-http-streams.pcap', 'tcp/smtp.pcap', 'link/qinqinq.pcap', 'ip/frag-ipv6-tcp.pcap', 'ip/frag-http-req.pcap', 'link/many-interfaces.pcapng', 'link/sll-nano.pcap'];
  let n = 0;
  for (const f of files) {
    for (const hash of [true, false]) {
      const got = await render([{ name: fixture(f) }], hash);
      same(t, got, `${f}${hash ? ' --hash' : ''}`);
      n += got.summaries.length;
      if (hash) t.true(got.summaries.every((c) => c.c2s.sha256 !== undefined && c.s2c.sha256 !== undefined), `${f}: hashes in the reports`);
    }
  }
  t.true(n >= 20, `${n} connections`);
  const q = await render([{ name: fixture('link/qinqinq.pcap') }]);
  t.deepEqual(q.summaries.filter((c) => c.net !== undefined).map((c) => c.net), ['vlan 30.20.10'], 'the QinQinQ connection names its VLAN stack');
  t.true(q.json.includes('"net":"vlan 30.20.10"') && q.rows.includes('  vlan 30.20.10\n'));
  const v6 = await render([{ name: fixture('ip/frag-ipv6-tcp.pcap') }]);
  t.true(v6.summaries.some((c) => c.client.startsWith('[')), 'an IPv6 endpoint is written from its name');
});

test('connJson and connRow write what the summary makes for holes, one of them cut by the snaplen', async (t) => {
  for (const cut of [true, false]) {
    const got = await render([{ name: holesCapture(t, cut) }]);
    same(t, got, `holes${cut ? ', one cut by the snaplen' : ''}`);
    const gaps = got.summaries.flatMap((c) => [...c.c2s.gaps, ...c.s2c.gaps]);
    t.true(gaps.length >= (cut ? 2 : 1), `${gaps.length} holes`);
    t.is(gaps.some((g) => g[2] === 'snaplen'), cut);
  }
});

/**
 * Random connections, written as a capture: any IPv4 or IPv6 endpoints and ports (0 and 65535
 * among them), with or without their SYN (a guessed client), data with holes and overlaps, a FIN or
 * a RST or neither, and capture times that may go backwards (the earliest frame then not the first).
 */
const connArb = fc.record({
  v6: fc.boolean(),
  c: fc.oneof(fc.ipV4(), fc.constantFrom('0.0.0.0', '255.255.255.255', '1.2.3.4')),
  s: fc.oneof(fc.ipV4(), fc.constantFrom('0.0.0.0', '255.255.255.255', '10.0.0.1')),
  // (the frame builder takes no dotted IPv4 tail)
  c6: fc.ipV6().filter((a) => !a.includes('.')),
  s6: fc.ipV6().filter((a) => !a.includes('.')),
  sport: fc.oneof(fc.integer({ min: 0, max: 65535 }), fc.constantFrom(0, 65535)),
  dport: fc.oneof(fc.integer({ min: 0, max: 65535 }), fc.constantFrom(0, 80, 65535)),
  syn: fc.boolean(),
  data: fc.array(fc.tuple(fc.boolean(), fc.nat({ max: 3000 }), fc.integer({ min: 1, max: 400 })), { maxLength: 8 }),
  end: fc.constantFrom('fin', 'rst', 'none'),
  times: fc.array(fc.integer({ min: -5_000_000, max: 5_000_000 }), { minLength: 20, maxLength: 20 }),
});

type ConnSpec = typeof connArb extends fc.Arbitrary<infer T> ? T : never;

function conversation(k: number, x: ConnSpec): RecSpec[] {
  const a = { src: x.v6 ? x.c6 : x.c, dst: x.v6 ? x.s6 : x.s, sport: x.sport, dport: x.dport };
  const b = { src: a.dst, dst: a.src, sport: a.dport, dport: a.sport };
  const frames: Uint8Array[] = [];
  if (x.syn) frames.push(tcpFrame({ ...a, seq: 999, flags: TH_SYN }), tcpFrame({ ...b, seq: 4999, ack: 1000, flags: TH_SYN | TH_ACK }));
  for (const [c2s, off, len] of x.data) frames.push(tcpFrame({ ...(c2s ? a : b), seq: (c2s ? 1000 : 5000) + off, ack: c2s ? 5000 : 1000, flags: TH_ACK, payload: 'd'.repeat(len) }));
  if (x.end === 'fin') frames.push(tcpFrame({ ...a, seq: 4000, ack: 5000, flags: TH_FIN | TH_ACK }), tcpFrame({ ...b, seq: 8000, ack: 4001, flags: TH_FIN | TH_ACK }));
  if (x.end === 'rst') frames.push(tcpFrame({ ...b, seq: 5000, flags: TH_RST }));
  return frames.map((data, i) => ({ data, tsSec: 1_700_000_000 + k, tsFrac: 500_000 + x.times[i % x.times.length]! / 10 }));
}

test('connJson and connRow write what the summary makes for random connections: any endpoints, midstream clients, holes, resets, time going backwards', async (t) => {
  let n = 0;
  const seen = new Set<string>();
  await fc.assert(fc.asyncProperty(fc.array(connArb, { minLength: 1, maxLength: 6 }), async (list) => {
    // connections one after another (the same 4-tuple twice is then a new stream)
    const recs = list.flatMap((x, k) => conversation(k, x)).map((r) => ({ ...r, tsFrac: Math.max(0, Math.min(999_999, Math.round(r.tsFrac!))) }));
    const got = await render([{ name: 'random.pcap', stream: chunked(pcapFile(recs), 4096) }]);
    n += got.summaries.length;
    // a connection whose frames' times go back: its start is then its earliest frame, not its first
    list.forEach((x, k) => {
      const frac = conversation(k, x).map((r) => Math.max(0, Math.min(999_999, Math.round(r.tsFrac!))));
      if (frac.some((f, i) => i > 0 && f < frac[i - 1]!)) seen.add('time going backwards');
    });
    for (const c of got.summaries) {
      if (c.duration < 0) return false; // the earliest frame to the latest
      if (c.clientGuessed) seen.add('a guessed client');
      if (c.state === 'RESET') seen.add('a reset');
      if (c.state === 'CLOSED') seen.add('a close');
      if (c.client.startsWith('[')) seen.add('IPv6');
      if (c.c2s.gaps.length + c.s2c.gaps.length) seen.add('holes');
      if (c.c2s.retransmitted + c.s2c.retransmitted) seen.add('overlaps');
    }
    return got.json === got.wantJson && got.rows === got.wantRows;
  }), { numRuns: 150 });
  t.true(n > 150, `${n} connections`);
  t.deepEqual([...seen].sort(), ['IPv6', 'a close', 'a guessed client', 'a reset', 'holes', 'overlaps', 'time going backwards'], 'the runs covered each case');
});

when(HAS_CORPUS, 'needs ../shared/corpus')('connJson and connRow write what the summary makes for every connection of every corpus capture (IPv6, gaps, resets, midstream)', async (t) => {
  let n = 0;
  for (const f of readdirSync(CORPUS).filter((x) => /\.(pcap|pcapng|cap)(\.gz)?$/.test(x))) {
    const got = await render([{ name: corpus(f) }]);
    same(t, got, f);
    n += got.summaries.length;
  }
  t.true(n > 1000, `${n} connections`);
});
