import test from 'ava';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Mbuf } from '../../core/mbuf/mbuf.js';
import { put16 } from '../../core/wire/bytes.js';
import { checksum } from '../../core/wire/checksum.js';
import { TH_ACK, TH_FIN, TH_PUSH, TH_SYN, TH_URG } from '../../core/wire/tcp.js';
import { pcapFile, tcpFrame } from '../helpers/build.js';
import { cli, tmp, withPeakRss } from '../helpers/cli.js';
import { Conv, Timeline, writeStream } from '../helpers/conv.js';
import { badFrames, fields, fuseRun } from '../helpers/model.js';
import { formatFuseSummary, type FuseSummary } from '../../core/fuse-report.js';
import { HAS_TSHARK } from '../helpers/paths.js';
import { when } from '../helpers/skip.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

const payloadFrames = (frames: Mbuf[]) => frames.filter((m) => m.hdr!.frameNo === 0);

function loopbackTalk(client: string, server: string) {
  const tl = new Timeline();
  const a = new Conv(tl, { client, server, cport: 40001, sport: 8080, ciss: 0xfffff000, siss: 7000 });
  const b = new Conv(tl, { client: '10.0.0.1', server: '10.0.0.2' });
  a.handshake();
  b.handshake();
  a.send('c', writeStream(3000), 1000).ack('s');
  b.send('c', 'hello, not local').ack('s');
  a.send('s', writeStream(5000), 1460).ack('c');
  a.close('c');
  b.close('s');
  return { tl, a, b };
}

for (const [fam, addr] of [['127.0.0.1', '127.0.0.1'], ['::1', '::1']] as const) {
  test(`fuse ${fam}: only the handshake and the FIN exchange go out; both sockets get every byte; the other connection is unchanged`, async (t) => {
    const { tl, a } = loopbackTalk(addr, addr);
    const r = await fuseRun(t, tl.pcap());
    const [f0, f1] = r.summary.connections;
    t.like(f0, { stream: 0, fused: true, reason: 'loopback', unfused: null, delivered: { c2s: 3000, s2c: 5000 } });
    t.like(f1, { stream: 1, fused: false, reason: 'not local', delivered: { c2s: 0, s2c: 0 } });
    t.is(r.conns[0]!.c2s.sha256, sha(writeStream(3000)));
    t.is(r.conns[0]!.s2c.sha256, sha(writeStream(5000)));
    t.true(r.summary.onlySynFin);
    // stream 0 in the output: SYN, SYN-ACK, ACK, FIN, ACK, FIN, ACK with frozen numbers
    const input = tl.recs.map((x) => Buffer.from(x.data).toString('hex'));
    const out = r.frames.map((m) => ({ no: m.hdr!.frameNo, hex: Buffer.concat(viewsOf(m)).toString('hex') }));
    for (const o of out) if (o.no > 0) t.is(o.hex, input[o.no - 1], `frame ${o.no} passes through unchanged`);
    if (!HAS_TSHARK) return;
    const rows = fields(r.outPath, ['tcp.srcport', 'tcp.flags', 'tcp.seq', 'tcp.ack', 'tcp.len'], 'tcp.port == 8080');
    const iss = { 40001: a.iss.c, 8080: a.iss.s } as Record<string, number>;
    t.deepEqual(rows.map(([p, fl, seq, , len]) => [p, Number(fl), Number(seq) - iss[p!]!, len]), [
      ['40001', 0x02, 0, '0'], ['8080', 0x12, 0, '0'], ['40001', 0x10, 1, '0'],
      ['40001', 0x11, 1, '0'], ['8080', 0x10, 1, '0'], ['8080', 0x11, 1, '0'], ['40001', 0x10, 2, '0'],
    ]);
    t.is(Number(rows[6]![3]) - a.iss.s, 2, 'the last ACK acknowledges the server FIN at ISN+1');
    t.deepEqual(badFrames(r.outPath), []);
    t.deepEqual(fields(r.outPath, ['tcp.dstport'], 'tcp.len > 0').map((x) => x[0]), ['80'], 'only the non-local connection carries payload');
  });
}

function viewsOf(m: Mbuf): Buffer[] {
  const v: Buffer[] = [];
  for (let p: Mbuf | null = m; p; p = p.next) v.push(Buffer.from(p.buf.subarray(p.off, p.off + p.len)));
  return v;
}

when(HAS_TSHARK, 'needs tshark')('fuse: a reset while fused goes out as a RST at ISN+1 and unfuses', async (t) => {
  const tl = new Timeline();
  const a = new Conv(tl, { client: '127.0.0.1', server: '127.0.0.1', sport: 9000 });
  a.handshake().send('c', 'GET / HTTP/1.0\r\n\r\n').send('s', writeStream(2000)).rst('c');
  const r = await fuseRun(t, tl.pcap());
  t.like(r.summary.connections[0], { fused: true, unfused: 'RST', delivered: { c2s: 18, s2c: 2000 } });
  const rows = fields(r.outPath, ['tcp.flags', 'tcp.seq', 'tcp.ack', 'tcp.len']);
  t.deepEqual(rows.map((x) => Number(x[0])), [0x02, 0x12, 0x10, 0x14]);
  t.is(Number(rows[3]![1]), a.iss.c + 1);
  t.is(Number(rows[3]![2]), a.iss.s + 1);
  t.deepEqual(badFrames(r.outPath), []);
});

when(HAS_TSHARK, 'needs tshark')('fuse: urgent data unfuses; from then on segments are renumbered as if fused bytes took no sequence space', async (t) => {
  const tl = new Timeline();
  const a = new Conv(tl, { client: '127.0.0.1', server: '127.0.0.1', sport: 9001 });
  a.handshake().send('c', writeStream(100)).ack('s').raw('c', TH_ACK | TH_PUSH | TH_URG, 'X', 1).ack('s');
  a.send('c', 'after').send('s', 'reply').ack('c').close('c');
  const r = await fuseRun(t, tl.pcap());
  t.like(r.summary.connections[0], { fused: true, unfused: 'urgent data', delivered: { c2s: 100, s2c: 0 } });
  t.is(r.conns[0]!.c2s.bytes, 106, 'the receiver still gets every byte');
  const rows = fields(r.outPath, ['tcp.srcport', 'tcp.flags', 'tcp.seq', 'tcp.ack', 'tcp.len', 'tcp.urgent_pointer']);
  const urg = rows.find((x) => Number(x[1]) & TH_URG)!;
  t.is(Number(urg[2]), a.iss.c + 1, 'the URG segment starts at ISN+1');
  t.is(urg[4], '1');
  const data = rows.filter((x) => x[4] !== '0').map((x) => [x[0], Number(x[2]) - (x[0] === '40000' ? a.iss.c : a.iss.s), x[4]]);
  t.deepEqual(data, [['40000', 1, '1'], ['40000', 2, '5'], ['9001', 1, '5']]);
  t.deepEqual(fields(r.outPath, ['frame.number'], 'tcp.analysis.flags && !tcp.analysis.window_update'), [], 'no TCP analysis warnings');
  t.deepEqual(badFrames(r.outPath), []);
});

test('fuse --packetize: the opted-out connection passes through unchanged; --fuse-seq advance moves the FIN by the bytes', async (t) => {
  const { tl, a } = loopbackTalk('127.0.0.1', '127.0.0.1');
  const r = await fuseRun(t, tl.pcap(), { packetize: (c) => c.stream === 0 });
  t.like(r.summary.connections[0], { fused: false, reason: 'opted out (--packetize)' });
  t.is(r.frames.length, tl.recs.length);
  t.is(payloadFrames(r.frames).length, 0);
  const adv = await fuseRun(t, tl.pcap(), { seq: 'advance' });
  t.true(adv.summary.connections[0]!.fused);
  if (!HAS_TSHARK) return;
  const fins = fields(adv.outPath, ['tcp.srcport', 'tcp.seq'], 'tcp.port == 8080 && tcp.flags.fin == 1');
  t.deepEqual(fins.map((x) => Number(x[1])), [(a.iss.c + 1 + 3000) >>> 0, a.iss.s + 1 + 5000]);
});

/** Split an Ethernet/IPv4 frame's datagram into two fragments at `at` bytes of IP payload. */
function fragment(frame: Uint8Array, at: number): Uint8Array[] {
  const ip = 14;
  const hl = 20;
  const pay = frame.subarray(ip + hl);
  return [[0, at, 0x2000], [at, pay.length, 0]].map(([s, e, mf]) => {
    const f = new Uint8Array(ip + hl + e! - s!);
    f.set(frame.subarray(0, ip + hl));
    f.set(pay.subarray(s!, e!), ip + hl);
    put16(f, ip + 2, hl + e! - s!);
    put16(f, ip + 6, mf! | (s! >> 3));
    put16(f, ip + 10, 0);
    put16(f, ip + 10, checksum(f, ip, hl));
    return f;
  });
}

test('fuse: a claim that does not hold is named and the command exits 8', async (t) => {
  const tl = new Timeline();
  const a = new Conv(tl, { client: '127.0.0.1', server: '127.0.0.1', sport: 9002 });
  a.handshake().send('c', writeStream(400));
  const last = tl.recs.pop()!;
  for (const f of fragment(last.data, 200)) tl.push(f);
  a.close('c');
  const dir = tmp(t);
  writeFileSync(join(dir, 'in.pcap'), tl.pcap());
  const r = await cli(['fuse', join(dir, 'in.pcap'), '-w', join(dir, 'out.pcap')]);
  t.is(r.code, 8, r.stderr);
  t.regex(r.stdout, /fused connections emitted only SYN\/FIN segments: NO: captured frame 5 \(stream 0\): a segment that came in IP fragments/);
  t.regex(r.stderr, /^sockcap: a fused connection sent more than SYN\/FIN segments/);
});

test('fuse CLI: the report and its JSON', async (t) => {
  const { tl } = loopbackTalk('127.0.0.1', '127.0.0.1');
  const dir = tmp(t);
  writeFileSync(join(dir, 'in.pcap'), tl.pcap());
  const r = await cli(['fuse', join(dir, 'in.pcap'), '-w', join(dir, 'out.pcap')]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^0 +127\.0\.0\.1:40001 +127\.0\.0\.1:8080 +yes +loopback +16 -> 7 +3,000 +5,000$/m);
  t.regex(r.stdout, /^fused connections emitted only SYN\/FIN segments: yes \(1 connections, 4 segments\)$/m);
  t.regex(r.stdout, /^work saved: 9 segments not built, 9 checksums not computed \(8,000 payload bytes\), 9 tcp_input calls avoided$/m);
  const j = JSON.parse((await cli(['fuse', join(dir, 'in.pcap'), '--json'])).stdout);
  t.like(j, { onlySynFin: true, fusedConnections: 1, framesIn: 25, framesOut: 16 }, 'without -w the frames that would be written are counted all the same');
  t.like(j.connections[0], { stream: 0, client: '127.0.0.1:40001', server: '127.0.0.1:8080', fused: true, reason: 'loopback', delivered: { c2s: 3000, s2c: 5000 } });
  t.is(typeof j.connections[0].segmentsBefore, 'number');
  t.true(readFileSync(join(dir, 'out.pcap')).length > 24);
});

test('replay --fuse: the replay report plus the fuse report; -w writes the fused traffic', async (t) => {
  const { tl } = loopbackTalk('127.0.0.1', '127.0.0.1');
  const dir = tmp(t);
  writeFileSync(join(dir, 'in.pcap'), tl.pcap());
  const r = await cli(['replay', join(dir, 'in.pcap'), '--fuse', '-w', join(dir, 'out.pcap'), '--json']);
  t.is(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  t.is(j.frames, tl.recs.length);
  t.like(j.fuse, { onlySynFin: true, fusedConnections: 1, framesIn: 25, framesOut: 16 });
  const plain = await cli(['replay', join(dir, 'in.pcap'), '-w', join(dir, 'plain.pcap')]);
  t.is(plain.code, 0);
  t.true(readFileSync(join(dir, 'out.pcap')).length < readFileSync(join(dir, 'plain.pcap')).length);
});

test('fuse: the report keeps the records of the first maxRecords connections and counts the rest (memory bounded on millions of loopback connections); the counts and the text say so', async (t) => {
  const { generate } = await import('../bench/gen.js');
  const dir = tmp(t);
  const cap = join(dir, 'lo.pcap');
  await generate({ path: cap, bytes: 2e5, flows: 40, perFlow: 2000, loopback: true });
  const all = await fuseRun(t, cap);
  const few = await fuseRun(t, cap, { maxRecords: 5 });
  t.is(all.summary.connections.length, all.conns.length);
  t.true(all.conns.length >= 40, `${all.conns.length} connections`);
  t.is(all.summary.connectionsOmitted, 0);
  t.is(few.summary.connections.length, 5);
  t.is(few.summary.connectionsOmitted, all.conns.length - 5);
  t.is(few.summary.fusedConnections, all.summary.fusedConnections, 'every connection counted');
  t.is(all.summary.fusedConnections, all.conns.length, 'all of them loopback and fused');
  t.deepEqual(few.summary.connections, all.summary.connections.filter((c) => few.summary.connections.some((k) => k.stream === c.stream)));
  const text = formatFuseSummary(few.summary);
  t.regex(text, new RegExp(`^\\(${all.conns.length - 5} more connections left the table after the first 5 and are counted, not listed\\)$`, 'm'));
  t.regex(text, new RegExp(`emitted only SYN/FIN segments: yes \\(${all.conns.length} connections`));
  t.notRegex(formatFuseSummary(all.summary), /more connections left the table/);
});

/** `n` short loopback connections one after another (handshake, a byte each way, FINs): a capture whose connections in flight are few. */
function sequentialLoopback(path: string, n: number): void {
  const recs: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const c = { src: '127.0.0.1', dst: '127.0.0.2', sport: 1024 + (i % 60000), dport: 80 + Math.floor(i / 60000) };
    const sv = { src: c.dst, dst: c.src, sport: c.dport, dport: c.sport };
    const frames = [
      tcpFrame({ ...c, seq: 100, flags: TH_SYN }), tcpFrame({ ...sv, seq: 500, ack: 101, flags: TH_SYN | TH_ACK }),
      tcpFrame({ ...c, seq: 101, ack: 501, flags: TH_ACK }), tcpFrame({ ...c, seq: 101, ack: 501, flags: TH_ACK | TH_PUSH, payload: 'x' }),
      tcpFrame({ ...sv, seq: 501, ack: 102, flags: TH_ACK | TH_PUSH | TH_FIN, payload: 'y' }), tcpFrame({ ...c, seq: 102, ack: 503, flags: TH_ACK | TH_FIN }),
      tcpFrame({ ...sv, seq: 503, ack: 103, flags: TH_ACK }),
    ];
    for (const f of frames) {
      const h = Buffer.alloc(16);
      h.writeUInt32LE(1_000_000_000 + Math.floor(i / 100), 0);
      h.writeUInt32LE((i % 100) * 1000, 4);
      h.writeUInt32LE(f.length, 8);
      h.writeUInt32LE(f.length, 12);
      recs.push(h, f);
    }
  }
  writeFileSync(path, Buffer.concat([pcapFile([]), ...recs]));
}

test('sockcap fuse writes each record as its connection leaves (the first 10,000 sorted, the rest as they leave): every connection listed with the library\'s record, text and JSON; its peak RSS stays at replay\'s, not above it by the connections seen', async (t) => {
  const dir = tmp(t);
  const cap = join(dir, 'lo.pcap');
  const n = 60_000;
  sequentialLoopback(cap, n);
  const lib = await fuseRun(t, cap);
  t.is(lib.summary.connections.length, n);
  const run = withPeakRss(t, dir);
  const json = await run(['fuse', cap, '--json']);
  const j = JSON.parse(json.stdout) as FuseSummary;
  t.is(j.connections.length, n);
  t.is(j.connectionsOmitted, 0);
  const first = j.connections.slice(0, 10_000).map((c) => c.stream);
  t.deepEqual(first, [...first].sort((a, b) => a - b), 'the first 10,000 sorted by stream');
  t.deepEqual([...j.connections].sort((a, b) => a.stream - b.stream), lib.summary.connections, 'the records the library keeps');
  t.like(j, { onlySynFin: true, fusedConnections: n, framesIn: lib.summary.framesIn });
  const text = await run(['fuse', cap]);
  t.is(text.stdout.split('\n').filter((l) => /^\d+ +127\./.test(l)).length, n);
  t.regex(text.stdout, new RegExp(`^fused connections emitted only SYN/FIN segments: yes \\(${n} connections`, 'm'));
  const replay = await run(['replay', cap, '--json', '-q']);
  // measured: replay 123, fuse 129 (JSON) and 131 MiB (text); 173 and 202 when fuse kept every
  // record to print at the end. Since replay writes its connections with no summary made
  // (conn-text.ts): replay 105, fuse 127 and 125 (fuse's report still keeps its records, up to
  // maxRecords, for the library's summary)
  t.log(`peak RSS: replay ${replay.rss.toFixed(0)}, fuse --json ${json.rss.toFixed(0)}, fuse ${text.rss.toFixed(0)} MiB`);
  t.true(json.rss < replay.rss + 32 && text.rss < replay.rss + 32, `replay ${replay.rss.toFixed(0)}, fuse ${json.rss.toFixed(0)} / ${text.rss.toFixed(0)} MiB`);
});
