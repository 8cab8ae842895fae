import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSelector } from '../../core/selector.js';
import { SpliceModel, type SpliceSpec } from '../../core/splice-model.js';
import { CaptureSession } from '../../core/capture/session.js';
import { Mbuf } from '../../core/mbuf/mbuf.js';
import { Stack } from '../../core/stack.js';
import { cli, tmp } from '../helpers/cli.js';
import { copyRelay, relayPair, type Timeline, writeStream } from '../helpers/conv.js';
import { TH_ACK, TH_PUSH, TH_URG } from '../../core/wire/tcp.js';
import { badFrames, fields, hookRun } from '../helpers/model.js';
import { fixture, HAS_TSHARK } from '../helpers/paths.js';
import { when } from '../helpers/skip.js';
import { pcapFile } from '../helpers/build.js';

const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const ws = writeStream;
const T0 = 1700000000;

/** Splice stream 0's c2s onto stream 1's c2s (the relay capture of relayPair). */
async function splice(t: ExecutionContext, tl: Timeline, o: Partial<SpliceSpec> = {}) {
  const spec: SpliceSpec = { from: parseSelector('0:c2s'), to: parseSelector('1:c2s'), ...o };
  const r = await hookRun(t, tl.pcap(), new SpliceModel([spec]));
  return { ...r, rec: r.hook.records()[0]! };
}

/** The drain stream's client-to-server bytes in the output, by tshark's follow (the oracle; the other direction's lines are indented). */
function drainBytes(path: string): Buffer {
  const out = execFileSync('tshark', ['-r', path, '-q', '-z', 'follow,tcp,raw,1'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const hex = out.split('\n').filter((l) => /^[0-9a-f]+$/.test(l)).join('');
  return Buffer.from(hex, 'hex');
}

/** Frames tshark flags: malformed, bad checksums, or the TCP analysis warnings the issue names. */
function warnings(path: string): string[] {
  return [...badFrames(path), ...fields(path, ['frame.number', '_ws.expert.message'], 'tcp.analysis.lost_segment || tcp.analysis.ack_lost_segment || tcp.analysis.out_of_order || tcp.analysis.retransmission || tcp.analysis.duplicate_ack').map((r) => r.join(' '))];
}

/** Drain data segments in the output: [time offset, flags, relative seq, len]. */
function drainData(path: string, iss: number): Array<[number, number, number, number]> {
  return fields(path, ['frame.time_epoch', 'tcp.flags', 'tcp.seq', 'tcp.len'], 'tcp.srcport == 50000 && tcp.len > 0')
    .map(([ts, f, s, l]) => [Number(ts) - T0, Number(f), Number(s) - iss, Number(l)]);
}

const tshark = when(HAS_TSHARK, 'needs tshark');

tshark('1 basic forward (args-long): 131072 bytes, md5 31e5ad3d..., EOF with so_error 0, clean output, integrity ok', async (t) => {
  const { tl, C, S } = relayPair();
  C.handshake(); S.handshake();
  copyRelay(C, S, ws(131072), 1448);
  C.close('c'); S.close('c');
  const r = await splice(t, tl);
  t.like(r.rec, { spliced: 131072, reason: 'EOF', soError: 0, remaining: 0, integrity: 'ok', copiedBytes: 0 });
  t.is(md5(drainBytes(r.outPath)), '31e5ad3d0d2aeb1ad8aaa847dfa665c2');
  t.deepEqual(warnings(r.outPath), []);
  // zero copy: every payload byte the drain sends references the capture's own memory
  const inputBuffers = new Set(r.frames.filter((m) => m.hdr!.frameNo > 0).map((m) => m.buf.buffer));
  const payload = r.frames.filter((m) => m.hdr!.frameNo === 0 && m.next);
  t.true(payload.length >= 90);
  for (const m of payload) for (let p = m.next; p; p = p.next) t.true(inputBuffers.has(p.buf.buffer));
  // --close keep: the model sends no FIN; the captured relay's own FIN goes out later
  const k = await splice(t, tl, { close: 'keep' });
  t.is(fields(k.outPath, ['frame.number'], 'tcp.srcport == 50000 && tcp.flags.fin == 1').length, 1);
  t.deepEqual(warnings(k.outPath), []);
});

tshark('2 already buffered (args-sleep-relay) and 11 PSH only on the segment that ends the move', async (t) => {
  const { tl, C, S } = relayPair();
  C.handshake(); S.handshake();
  C.send('c', ws(4000), 1000).ack('s');
  tl.wait(3);
  S.send('c', ws(4000), 1000).ack('s');
  C.close('c'); S.close('c');
  const r = await splice(t, tl, { at: { time: 3 } });
  t.like(r.rec, { spliced: 4000, reason: 'EOF', integrity: 'ok' });
  const d = drainData(r.outPath, S.iss.c);
  t.true(d.every(([ts]) => ts >= 3), 'the first drain data goes out at t=3 s, from the setsockopt');
  t.deepEqual(d.map(([, f, s, l]) => [f & 0x08, s, l]), [[0, 1, 1460], [0, 1461, 1460], [8, 2921, 1080]], 'MSS-sized, PSH on the last only');
  t.deepEqual(warnings(r.outPath), []);
});

tshark('3 max (args-max, args-max-sleep-client-short): EFBIG, exactly max bytes, the rest readable in order', async (t) => {
  const { tl, C, S } = relayPair();
  C.handshake(); S.handshake();
  copyRelay(C, S, ws(131072), 1448);
  C.close('c'); S.close('c');
  const r = await splice(t, tl, { max: 32117 });
  t.like(r.rec, { spliced: 32117, reason: 'EFBIG', soError: 'EFBIG', remaining: 131072 - 32117 });
  t.true(md5(drainBytes(r.outPath)).startsWith('ee338e96'), 'the regress md5 of 2^17[:32117] (research/sosplice.md gives its prefix)');
  t.is(r.conns[0]!.c2s.sha256, sha(ws(131072).subarray(32117)), 'the application reads byte 32117 onward');
  t.deepEqual(warnings(r.outPath), []);
  const p2 = relayPair();
  p2.C.handshake(); p2.S.handshake();
  p2.C.send('c', ws(251), 100).ack('s');
  p2.C.close('c');
  const s = await splice(t, p2.tl, { max: 113 });
  t.like(s.rec, { spliced: 113, reason: 'EFBIG', remaining: 138 });
  t.true(md5(drainBytes(s.outPath)).startsWith('dc099ef6'), 'the mbuf at the max is split');
});

tshark('4 max reached at once (args-max-time): 63 of 251 bytes in one segment with PSH', async (t) => {
  const { tl, C, S } = relayPair();
  C.handshake(); S.handshake();
  C.send('c', ws(251)).ack('s');
  C.close('c');
  const r = await splice(t, tl, { max: 63 });
  t.deepEqual(drainData(r.outPath, S.iss.c).map(([, f, s, l]) => [f, s, l]), [[0x18, 1, 63]]);
  t.true(md5(drainBytes(r.outPath)).startsWith('4a3c3783'));
  t.like(r.rec, { reason: 'EFBIG', remaining: 188 });
});

tshark('5 EOF before max (args-null-max-sleep-client): error 0, not EFBIG', async (t) => {
  const { tl, C, S } = relayPair();
  C.handshake(); S.handshake();
  C.close('c');
  const r = await splice(t, tl, { max: 113 });
  t.like(r.rec, { spliced: 0, reason: 'EOF', soError: 0 });
  t.deepEqual(warnings(r.outPath), []);
});

tshark('6 idle (args-idle-timeout, args-idle-trickle): ETIMEDOUT 2 s after the last move; a 1 B/s trickle ends by EOF', async (t) => {
  const { tl, C, S } = relayPair();
  C.handshake(); S.handshake();
  tl.wait(1);
  C.send('c', ws(251)).ack('s');
  const moved = tl.us / 1e6;
  tl.wait(4);
  C.close('c');
  const r = await splice(t, tl, { idle: 2 });
  t.like(r.rec, { spliced: 251, reason: 'ETIMEDOUT', soError: 'ETIMEDOUT' });
  t.true(Math.abs(Number(r.rec.endedAt) - T0 - (moved + 2)) < 0.001, `ended at ${r.rec.endedAt}`);
  t.is(md5(drainBytes(r.outPath)), 'bc3a3f39af35fe5b1687903da2b00c7f');
  const p = relayPair();
  p.C.handshake(); p.S.handshake();
  for (const ch of ws(6)) { p.tl.wait(1); p.C.send('c', Buffer.from([ch])).ack('s'); }
  p.C.close('c');
  const tr = await splice(t, p.tl, { idle: 2 });
  t.like(tr.rec, { spliced: 6, reason: 'EOF' });
  t.true(md5(drainBytes(tr.outPath)).startsWith('857f2261'));
});

tshark('7 drain reset (args-server-exit): EPIPE on the source, no drain data after the RST, the rest stays in the source', async (t) => {
  const { tl, C, S } = relayPair();
  C.handshake(); S.handshake();
  C.send('c', ws(2000), 1000).ack('s');
  S.rst('s');
  C.send('c', ws(1000)).ack('s');
  C.close('c');
  const r = await splice(t, tl);
  t.like(r.rec, { spliced: 2000, reason: 'EPIPE', soError: 'EPIPE', remaining: 1000 });
  const rows = fields(r.outPath, ['frame.number', 'tcp.srcport', 'tcp.flags.reset', 'tcp.len'], 'tcp.port == 80');
  const rst = rows.findIndex((x) => x[2] === '1' || x[2] === 'True');
  t.true(rst > 0);
  t.false(rows.slice(rst).some((x) => x[1] === '50000' && x[3] !== '0'), 'nothing is sent on the drain after the RST');
  t.deepEqual(badFrames(r.outPath), []);
});

tshark('8 source reset (args-reset-sleep-server): ECONNRESET, what was moved is still sent', async (t) => {
  const { tl, C, S } = relayPair();
  C.handshake(); S.handshake();
  C.send('c', ws(3000), 1000).ack('s');
  C.rst('c');
  const r = await splice(t, tl);
  t.like(r.rec, { spliced: 3000, reason: 'ECONNRESET', soError: 'ECONNRESET' });
  t.is(drainBytes(r.outPath).length, 3000);
  t.deepEqual(badFrames(r.outPath), []);
});

tshark('9 drain still connecting (scapy-delay-synack): nothing until the SYN-ACK, then the ACK and the data at ISS+1', async (t) => {
  const { tl, C, S } = relayPair();
  C.handshake();
  S.syn();
  C.send('c', '0123456789').ack('s');
  S.synAck().ack('c');
  C.close('c');
  const r = await splice(t, tl, { at: { frame: 5 } });
  t.like(r.rec, { spliced: 10, reason: 'EOF' });
  const rows = fields(r.outPath, ['tcp.flags', 'tcp.seq', 'tcp.len'], 'tcp.srcport == 50000');
  t.deepEqual(rows.slice(0, 3).map(([f, s, l]) => [Number(f), Number(s) - S.iss.c, Number(l)]), [[0x02, 0, 0], [0x10, 1, 0], [0x18, 1, 10]]);
  t.deepEqual(warnings(r.outPath), []);
});

tshark('14 writes mixed with the splice (args-write): 32749 + 65521 spliced + 2039 = 100309 bytes, md5 0efc7833...', async (t) => {
  const { tl, C, S } = relayPair();
  C.handshake(); S.handshake();
  S.send('c', ws(32749), 1448).ack('s');
  const at = tl.recs.length + 1;
  copyRelay(C, S, ws(65521), 1448);
  S.send('c', ws(2039), 1448).ack('s');
  C.close('c'); S.close('c');
  const r = await splice(t, tl, { at: { frame: at }, max: 65521, close: 'keep' });
  t.like(r.rec, { spliced: 65521, reason: 'EFBIG', integrity: 'ok' });
  const b = drainBytes(r.outPath);
  t.is(b.length, 100309);
  t.is(md5(b), '0efc7833e5c0652823ca63eaccb9918f');
  t.deepEqual(warnings(r.outPath), []);
});

tshark('bidirectional relay over IPv4 to IPv6 (args-inet6-server): two splices, both directions carry the captured bytes', async (t) => {
  const { tl, C, S } = relayPair(undefined, { v6: true });
  C.handshake(); S.handshake();
  copyRelay(C, S, ws(5000), 1000);
  for (let o = 0; o < 7000; o += 1400) { S.send('s', ws(7000).subarray(o, o + 1400)).ack('c'); C.send('s', ws(7000).subarray(o, o + 1400)).ack('c'); }
  C.close('c'); S.close('c');
  const specs = [
    { from: parseSelector('0:c2s'), to: parseSelector('1:c2s') },
    { from: parseSelector('1:s2c'), to: parseSelector('0:s2c') },
  ];
  const r = await hookRun(t, tl.pcap(), new SpliceModel(specs));
  const [a, b] = r.hook.records();
  t.like(a, { spliced: 5000, reason: 'EOF', integrity: 'ok' });
  t.like(b, { spliced: 7000, reason: 'EOF', integrity: 'ok' });
  t.deepEqual(warnings(r.outPath), []);
});

tshark('splice CLI: report, JSON shape, and the relay capture gets integrity ok', async (t) => {
  const { tl, C, S } = relayPair();
  C.handshake(); S.handshake();
  copyRelay(C, S, ws(20000), 1448);
  C.close('c'); S.close('c');
  const dir = tmp(t);
  writeFileSync(join(dir, 'relay.pcap'), tl.pcap());
  const r = await cli(['splice', join(dir, 'relay.pcap'), '--from', '0:c2s', '--to', '1:c2s', '-w', join(dir, 'out.pcap')]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^splice 0:c2s -> 1:c2s$/m);
  t.regex(r.stdout, /^ {2}spliced: 20,000 bytes in 14 segments, 0 bytes copied$/m);
  t.regex(r.stdout, /^ {2}ended: EOF at 1700000000\.\d{6} \(so_error 0\)/m);
  t.regex(r.stdout, /^ {2}integrity: ok \(the drain carries the 20,000 bytes the captured relay wrote\)$/m);
  const j = JSON.parse((await cli(['splice', join(dir, 'relay.pcap'), '--splice', '0:c2s=1:c2s', '--max', '1000', '--json'])).stdout);
  t.like(j, { copiedBytes: 0 });
  t.like(j.splices[0], { from: '0:c2s', to: '1:c2s', spliced: 1000, reason: 'EFBIG', soError: 'EFBIG', remaining: 19000 });
  t.regex(j.splices[0].endedAt, /^1700000000\.\d{6}$/);
  const bad = await cli(['splice', join(dir, 'relay.pcap'), '--from', '0', '--to', '1:c2s']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /source '0' needs a direction/);
});

tshark('replay --splice: the replay report plus the splice report', async (t) => {
  const { tl, C, S } = relayPair();
  C.handshake(); S.handshake();
  copyRelay(C, S, ws(3000), 1000);
  C.close('c'); S.close('c');
  const dir = tmp(t);
  writeFileSync(join(dir, 'relay.pcap'), tl.pcap());
  const r = await cli(['replay', join(dir, 'relay.pcap'), '--splice', '0:c2s=1:c2s', '--max', '2500', '--json', '-w', join(dir, 'out.pcap')]);
  t.is(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  t.is(j.frames, tl.recs.length);
  t.like(j.splices[0], { spliced: 2500, reason: 'EFBIG', remaining: 500 });
  t.is(j.copiedBytes, 0);
  t.deepEqual(warnings(join(dir, 'out.pcap')), []);
});

tshark('a real relay capture (fixtures/splice/relay-lo.pcap, a userland copy relay on lo): both directions spliced, integrity ok, every built frame clean', async (t) => {
  const specs = [
    { from: parseSelector('0:c2s'), to: parseSelector('1:c2s') },
    { from: parseSelector('1:s2c'), to: parseSelector('0:s2c') },
  ];
  const r = await hookRun(t, fixture('splice/relay-lo.pcap'), new SpliceModel(specs));
  const [a, b] = r.hook.records();
  t.like(a, { spliced: 65536, reason: 'EOF', soError: 0, integrity: 'ok', remaining: 0 });
  t.like(b, { spliced: 2000, reason: 'EOF', soError: 0, integrity: 'ok', remaining: 0 });
  t.is(sha(drainBytes(r.outPath)), sha(ws(65536)));
  // Linux lo captures carry unfilled (offloaded) checksums: frames written as captured keep them,
  // frames sockcap built must all be right
  const built = new Set(r.frames.flatMap((m, i) => (m.hdr!.frameNo === 0 ? [String(i + 1)] : [])));
  t.true(built.size > 10);
  t.deepEqual(badFrames(r.outPath).filter((n) => built.has(n)), []);
  t.deepEqual(fields(r.outPath, ['frame.number'], 'tcp.analysis.flags && !tcp.analysis.window_update'), []);
});

tshark('10 urgent data (scapy-oobinline, args-oob): with SO_OOBINLINE the byte goes out as urgent, ACK|URG without PSH, urp 11; without, it is dropped', async (t) => {
  const build = () => {
    const { tl, C, S } = relayPair();
    C.handshake(); S.handshake();
    C.raw('c', TH_ACK | TH_PUSH | TH_URG, '0123456789Xabcdefghij', 11).ack('s');
    C.close('c');
    return { tl, S };
  };
  const { tl, S } = build();
  const r = await splice(t, tl);
  t.like(r.rec, { spliced: 21, reason: 'EOF' });
  const rows = fields(r.outPath, ['tcp.flags', 'tcp.seq', 'tcp.len', 'tcp.urgent_pointer', 'tcp.payload'], 'tcp.srcport == 50000 && tcp.len > 0');
  t.deepEqual(rows.map(([f, s, l, u, p]) => [Number(f), Number(s) - S.iss.c, Number(l), Number(u), Buffer.from(p!.replace(/:/g, ''), 'hex').toString()]), [
    [0x30, 1, 11, 11, '0123456789X'],
    [0x18, 12, 10, 0, 'abcdefghij'],
  ]);
  t.deepEqual(warnings(r.outPath), []);
  const n = build();
  const r2 = await splice(t, n.tl, { oobinline: false });
  t.like(r2.rec, { spliced: 20, reason: 'EOF' });
  t.is(drainBytes(r2.outPath).toString(), '0123456789abcdefghij');
  t.deepEqual(fields(r2.outPath, ['frame.number'], 'tcp.srcport == 50000 && tcp.flags.urg == 1'), []);
});

tshark('13 manual unsplice (args-unsplice-forked): so_error 0, SO_SPLICE keeps 2000, later data stays in the source', async (t) => {
  const { tl, C, S } = relayPair();
  C.handshake(); S.handshake();
  C.send('c', ws(2000), 1000).ack('s');
  const until = tl.recs.length + 1;
  C.send('c', ws(3000), 1000).ack('s');
  C.close('c');
  const r = await splice(t, tl, { until: { frame: until }, close: 'keep' });
  t.like(r.rec, { spliced: 2000, reason: 'unspliced', soError: 0, remaining: 3000 });
  t.is(r.conns[0]!.c2s.sha256, sha(ws(3000)), 'the application reads what came after');
  t.is(drainBytes(r.outPath).length, 2000);
  t.deepEqual(warnings(r.outPath), []);
});

test('--at, --until and --idle count capture time exactly: a frame 2.3 s after the first is due at 2.3 s, not at the next one', async (t) => {
  // As one double, 1700000002.3 - 1700000000 is 2.2999999523: the frame at 2.3 s came out early
  // for --at 2.3s and --until 4.1s, and a frame 0.7 s after the move at 1.00006 s came out before
  // the idle timer (each of the three was due only at the frame after it).
  const { tl, C, S } = relayPair();
  C.handshake(); S.handshake();
  C.send('c', ws(1000)).ack('s'); // buffered until --at
  tl.us = 2_300_000;
  C.send('c', ws(500)).ack('s');
  tl.us = 4_100_000;
  C.send('c', ws(200)).ack('s'); // after --until: stays in the source
  C.close('c');
  const r = await splice(t, tl, { at: { time: 2.3 }, until: { time: 4.1 }, close: 'keep' });
  t.like(r.rec, { spliced: 1500, reason: 'unspliced', remaining: 200, startedAt: '1700000002.300000', endedAt: '1700000004.100000' });

  const p = relayPair();
  p.tl.us = 600_000; // the splice is set up at 0.60005 s, its timer armed to 1.30005 s
  p.C.handshake(); p.S.handshake();
  p.tl.us = 1_000_060;
  p.C.send('c', ws(300)).ack('s'); // moved at 1.000060 s
  p.tl.us = 1_700_060;
  p.C.send('c', ws(50)).ack('s'); // exactly --idle 0.7s later: the timer fires first
  p.C.close('c');
  const idle = await splice(t, p.tl, { idle: 0.7 });
  t.like(idle.rec, { spliced: 300, reason: 'ETIMEDOUT', soError: 'ETIMEDOUT', remaining: 50, endedAt: '1700000001.700060' });

  // nanosecond timestamps: the first frame 1 ns before a second, the due frame 2.3 s after it
  const n = relayPair();
  n.C.handshake(); n.S.handshake();
  n.C.send('c', ws(100)).ack('s');
  n.tl.us = 2_300_000;
  n.C.send('c', ws(100)).ack('s');
  n.tl.us = 2_300_010;
  n.C.send('c', ws(100)).ack('s');
  n.C.close('c');
  // shift every frame by 999,999,999 ns - 1 s: the first at 1699999999.999999999
  const recs = n.tl.recs.map((rec) => {
    const ns = (rec.tsSec! - 1700000000) * 1e9 + rec.tsFrac! * 1000 + 999_999_999;
    return { ...rec, tsSec: 1699999999 + Math.floor(ns / 1e9), tsFrac: ns % 1e9 };
  });
  const ns = await hookRun(t, pcapFile(recs, { nanos: true }), new SpliceModel([{ from: parseSelector('0:c2s'), to: parseSelector('1:c2s'), at: { time: 2.3 } }]));
  t.like(ns.hook.records()[0], { spliced: 300, startedAt: '1700000002.300000' });
});

test('copiedBytes is measured: payload the drain sends from outside capture memory counts as copied', (t) => {
  // frames handed to the stack directly, not read from a capture: their memory is not registered
  const { tl, C, S } = relayPair();
  C.handshake(); S.handshake();
  C.send('c', ws(3000), 1000).ack('s');
  C.close('c');
  const session = new CaptureSession();
  session.addIface({ linktype: 1, snaplen: 65535, tsresol: 6, tsoffset: 0, bigEndian: false, name: undefined, file: 'direct' });
  const model = new SpliceModel([{ from: parseSelector('0:c2s'), to: parseSelector('1:c2s') }]);
  const stack = new Stack(session, { hooks: [model], output: true });
  stack.input(tl.recs.map((r, i) => new Mbuf(r.data, 0, r.data.length, { caplen: r.data.length, origLen: r.data.length, tsSec: r.tsSec!, tsNsec: r.tsFrac! * 1000, linktype: 1, ifidx: 0, frameNo: i + 1 })));
  stack.finish();
  t.like(model.records()[0], { spliced: 3000, copiedBytes: 3000 });
  // the same capture read from a file: 0 (the first scenario asserts it on a relay capture)
});

tshark('a drain picked up mid-stream: the model continues the relay\'s captured sequence numbers', async (t) => {
  const { tl, C, S } = relayPair();
  // S's handshake happened before the capture started: its first frames are data
  S.send('c', ws(700)).ack('s');
  C.handshake();
  copyRelay(C, S, ws(3000), 1000);
  C.close('c'); S.close('c');
  // S appeared first, so it is stream 0 and C stream 1
  const r = await splice(t, tl, { from: parseSelector('1:c2s'), to: parseSelector('0:c2s'), close: 'keep' });
  t.like(r.rec, { spliced: 3000, reason: 'EOF', integrity: 'ok' });
  t.deepEqual(warnings(r.outPath), []);
  const seqs = fields(r.outPath, ['tcp.seq', 'tcp.len'], 'tcp.srcport == 50000 && tcp.len > 0').map(([s, l]) => [Number(s) - S.iss.c, Number(l)]);
  t.deepEqual(seqs[0], [0, 700], 'the captured bytes before the splice');
  t.deepEqual(seqs[1], [700, 536], 'the spliced bytes continue right after them (no SYN seen: the default MSS, 536)');
});
