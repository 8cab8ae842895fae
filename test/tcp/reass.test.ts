import test from 'ava';
import fc from 'fast-check';
import { CaptureSession } from '../../core/capture/session.js';
import { Mbuf } from '../../core/mbuf/mbuf.js';
import { type Socket, soreceive_stream } from '../../core/socket/socket.js';
import { DrainApp, type SocketApp } from '../../core/socket/reader.js';
import type { Connection } from '../../core/net/in-pcb.js';
import { Stack, type StackOptions } from '../../core/stack.js';
import { TH_ACK, TH_FIN, TH_PUSH, TH_RST, TH_SYN } from '../../core/wire/tcp.js';
import { type SegSpec, tcpFrame } from '../helpers/build.js';
import type { GapEntry } from '../../core/tcp/summary.js';

/** A reader that collects every byte per direction (copies, for assertions only). */
class Collect implements SocketApp {
  readonly data = new Map<number, { c2s: string; s2c: string }>();
  attach(c: Connection): void {
    const d = { c2s: '', s2c: '' };
    this.data.set(c.stream, d);
    const rd = (so: Socket, k: 'c2s' | 's2c') => {
      for (;;) {
        const r = soreceive_stream(so, 7); // small reads: chunks cross mbuf boundaries
        if (!r.len) return;
        d[k] += r.chunk.map((v) => Buffer.from(v).toString('latin1')).join('');
      }
    };
    c.server.so.upcall = (so) => rd(so, 'c2s');
    c.client.so.upcall = (so) => rd(so, 's2c');
  }
  detach(): void {}
}

const C = { src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 80 };
const S = { src: '10.0.0.2', dst: '10.0.0.1', sport: 80, dport: 40000 };

function frames(specs: SegSpec[], o: { snap?: number } = {}): Mbuf[] {
  return specs.map((s, i) => {
    const f = tcpFrame(s);
    const cap = Math.min(f.length, o.snap ?? f.length);
    return new Mbuf(f, 0, cap, { caplen: cap, origLen: f.length, tsSec: 1000 + i, tsNsec: 0, linktype: 1, ifidx: 0, frameNo: i + 1 });
  });
}

function run(specs: SegSpec[], opts: StackOptions & { snap?: number } = {}) {
  const session = new CaptureSession();
  session.addIface({ linktype: 1, snaplen: 65535, tsresol: 6, tsoffset: 0, bigEndian: false, name: undefined, file: 't' });
  const app = new Collect();
  const stack = new Stack(session, { app, debug: true, ...opts });
  const ms = frames(specs, opts);
  // one frame at a time, so the invariants are checked after every segment; after[i]: the c2s
  // bytes read once frame i was in
  const after: string[] = [];
  for (const m of ms) {
    stack.input([m]);
    stack.check();
    after.push(app.data.get(0)?.c2s ?? '');
  }
  stack.finish();
  stack.check();
  return { stack, app, after, s: stack.finished[0]!, c2s: app.data.get(0)?.c2s ?? '', s2c: app.data.get(0)?.s2c ?? '' };
}

const ISN = 1000;
const syn = (isn = ISN): SegSpec => ({ ...C, seq: isn, flags: TH_SYN, options: { mss: 1460 } });
const synack = (isn = ISN): SegSpec => ({ ...S, seq: 5000, ack: isn + 1, flags: TH_SYN | TH_ACK });
const data = (off: number, p: string, isn = ISN): SegSpec => ({ ...C, seq: (isn + 1 + off) >>> 0, ack: 5001, flags: TH_ACK | TH_PUSH, payload: p });
const fin = (off: number, isn = ISN): SegSpec => ({ ...C, seq: (isn + 1 + off) >>> 0, ack: 5001, flags: TH_FIN | TH_ACK });

/** segments in → bytes out (gopacket's reassembly tables). */
const reassembles = test.macro({
  exec(t, segs: SegSpec[], want: { c2s: string; gaps?: GapEntry[]; policy?: 'first' | 'last'; snap?: number; conflicts?: number }) {
    const r = run(segs, { policy: want.policy, snap: want.snap });
    t.is(r.c2s, want.c2s);
    t.deepEqual(r.s.c2s.gaps, want.gaps ?? []);
    t.is(r.s.c2s.bytes, want.c2s.length);
    if (want.conflicts !== undefined) t.is(r.s.c2s.overlapConflicts, want.conflicts);
    t.is(r.stack.reassBytes, 0, 'nothing left queued');
  },
  title: (p = '') => `reassembly: ${p}`,
});

/**
 * A model of the overlap policies: every byte is the first copy to arrive (`first`) or the last
 * (`last`); a segment conflicts when a byte it overlaps differs from the one queued then.
 */
function policyModel(pieces: Array<[number, string]>, policy: 'first' | 'last') {
  const val: Array<string | null> = [];
  let conflicts = 0;
  for (const [off, p] of pieces) {
    let differs = false;
    for (let k = 0; k < p.length; k++) {
      const v = val[off + k];
      if (v !== undefined && v !== null && v !== p[k]) differs = true;
      if (v === undefined || v === null || policy === 'last') val[off + k] = p[k]!;
    }
    if (differs) conflicts++;
  }
  return { val, conflicts };
}

test('reassembly: any segments queued behind a hole, with the same or other bytes where they overlap, deliver each byte of the policy\'s copy; conflicts are counted once a segment; the queue\'s runs and counts check after every segment', (t) => {
  // bytes from a two-letter alphabet, so that overlaps are often the same and often not
  const piece = fc.tuple(fc.integer({ min: 1, max: 60 }), fc.stringMatching(/^[ab]{1,24}$/));
  fc.assert(fc.property(fc.array(piece, { minLength: 1, maxLength: 30 }), fc.constantFrom('first' as const, 'last' as const), (pieces, policy) => {
    // the first byte comes last: everything before it is queued
    const r = run([syn(), synack(), ...pieces.map(([o, p]) => data(o, p)), data(0, '!')], { policy });
    const m = policyModel([...pieces, [0, '!']], policy);
    t.is(r.s.c2s.overlapConflicts, m.conflicts);
    let pos = 0;
    let gi = 0;
    const gaps = r.s.c2s.gaps;
    for (let i = 0; i <= r.c2s.length; i++) {
      while (gi < gaps.length && gaps[gi]![0] === i) pos += gaps[gi++]![1];
      if (i === r.c2s.length) break;
      if (r.c2s[i] !== m.val[pos]) return false;
      pos++;
    }
    return pos === m.val.length && r.stack.reassBytes === 0;
  }), { numRuns: 400 });
});

test('in order', reassembles, [syn(), synack(), data(0, 'hello '), data(6, 'world'), fin(11)], { c2s: 'hello world' });
test('permuted', reassembles, [syn(), synack(), data(6, 'world'), fin(11), data(3, 'lo '), data(0, 'hel')], { c2s: 'hello world' });
test('duplicates', reassembles, [syn(), synack(), data(0, 'abc'), data(0, 'abc'), data(3, 'def'), data(3, 'def'), data(0, 'abcdef')], { c2s: 'abcdef' });
test('overlap with different data, policy first', reassembles, [syn(), synack(), data(4, 'GOOD'), data(4, 'EVIL'), data(0, '....')], { c2s: '....GOOD', conflicts: 1 });
test('overlap with different data, policy last', reassembles, [syn(), synack(), data(4, 'GOOD'), data(4, 'EVIL'), data(0, '....')], { c2s: '....EVIL', policy: 'last', conflicts: 1 });
test('partial overlap of queued data, first', reassembles, [syn(), synack(), data(4, 'ABCD'), data(6, 'xxyy'), data(0, '0123')], { c2s: '0123ABCDyy' });
test('partial overlap of queued data, last', reassembles, [syn(), synack(), data(4, 'ABCD'), data(6, 'xxyy'), data(0, '0123')], { c2s: '0123ABxxyy', policy: 'last' });
test('a segment spanning several queued ones fills only the holes (first)', reassembles,
  [syn(), synack(), data(2, 'b'), data(5, 'e'), data(1, '-X--Y-'), data(0, 'a')], { c2s: 'a-b--e-' });
test('wraparound: ISN near 2^32', reassembles,
  [syn(0xfffffff0), synack(0xfffffff0), data(0, 'x'.repeat(10), 0xfffffff0), data(20, 'z'.repeat(10), 0xfffffff0), data(10, 'y'.repeat(10), 0xfffffff0), fin(30, 0xfffffff0)],
  { c2s: 'x'.repeat(10) + 'y'.repeat(10) + 'z'.repeat(10) });
test('mid-stream (no SYN)', reassembles, [data(100, 'mid'), data(103, 'stream')], { c2s: 'midstream' });
test('permanent gap: skipped at the end and recorded', reassembles, [syn(), synack(), data(0, 'aa'), data(4, 'cc'), fin(6)], { c2s: 'aacc', gaps: [[2, 2]] });
test('keep-alive byte below rcv_nxt does not corrupt the stream', reassembles,
  [syn(), synack(), data(0, 'abcd'), data(3, 'Z'), data(4, 'efgh')], { c2s: 'abcdefgh' });
test('snaplen-truncated payload: unknown bytes recorded as a gap, not garbage', reassembles,
  [syn(), synack(), data(0, 'x'.repeat(20)), data(20, 'y'.repeat(20))], { c2s: 'x'.repeat(6) + 'y'.repeat(6), gaps: [[6, 14, 'snaplen'], [12, 14, 'snaplen']], snap: 14 + 20 + 20 + 6 });

test('a frame shorter on the wire than its IP length: the bytes it holds are delivered, the rest is a hole (ip.tooshort)', (t) => {
  const segs = [syn(), synack(), data(0, 'abcd'), data(4, 'efghijkl'), data(12, 'mn'), fin(14)];
  const session = new CaptureSession();
  session.addIface({ linktype: 1, snaplen: 65535, tsresol: 6, tsoffset: 0, bigEndian: false, name: undefined, file: 't' });
  const app = new Collect();
  const stack = new Stack(session, { app, debug: true });
  const ms = frames(segs);
  // frame 4 loses its last 3 bytes on the wire (caplen = origLen), its IP length unchanged
  const m = ms[3]!;
  m.len -= 3;
  m.hdr = { ...m.hdr!, caplen: m.len, origLen: m.len };
  for (const x of ms) stack.input([x]);
  stack.finish();
  t.is(app.data.get(0)!.c2s, 'abcdefghimn');
  t.deepEqual(stack.finished[0]!.c2s.gaps, [[9, 3]]);
  t.is(stack.stats.notes['ip.tooshort'], 1);
});

test('RST mid-transfer: data before it stays, out-of-order data is dropped, ECONNRESET', (t) => {
  const session = new CaptureSession();
  session.addIface({ linktype: 1, snaplen: 65535, tsresol: 6, tsoffset: 0, bigEndian: false, name: undefined, file: 't' });
  const stack = new Stack(session, { app: { attach() {}, detach() {} } });
  stack.input(frames([syn(), synack(), data(0, 'abc'), data(10, 'late'), { ...C, seq: ISN + 4, flags: TH_RST }]));
  const [, c] = stack.pcbs.entries().next().value!;
  t.is(c.server.so.error, 'ECONNRESET');
  t.true(c.server.so.cantRcvMore);
  const r = soreceive_stream(c.server.so, 100);
  t.is(Buffer.from(r.chunk[0]!).toString(), 'abc');
  t.is(stack.reassBytes, 0);
  stack.finish();
  t.is(stack.finished[0]!.state, 'RESET');
});

test('a RST outside the window is ignored (blind injection)', (t) => {
  const r = run([syn(), synack(), { ...S, seq: 5001, ack: ISN + 1, flags: TH_ACK, win: 100 },
    data(0, 'abc'), { ...C, seq: ISN + 100000, flags: TH_RST }, data(3, 'def'), fin(6)]);
  t.is(r.c2s, 'abcdef');
  t.is(r.stack.stats.notes['tcp.rst.outofwindow'], 1);
});

test('states: handshake, half-close, close; simultaneous open', (t) => {
  const r = run([syn(), synack(), { ...C, seq: ISN + 1, ack: 5001 }, data(0, 'q'), fin(1),
    { ...S, seq: 5001, ack: ISN + 3, flags: TH_ACK, payload: 'answer' }, { ...S, seq: 5007, ack: ISN + 3, flags: TH_FIN | TH_ACK },
    { ...C, seq: ISN + 3, ack: 5008, flags: TH_ACK }]);
  t.is(r.s2c, 'answer');
  t.is(r.s.state, 'CLOSED');
  t.deepEqual(r.s.states, { client: 'TIME_WAIT', server: 'CLOSED' });
  const simo = run([syn(), { ...S, seq: 5000, flags: TH_SYN }, { ...C, seq: ISN, ack: 5001, flags: TH_SYN | TH_ACK },
    { ...S, seq: 5000, ack: ISN + 1, flags: TH_SYN | TH_ACK }, data(0, 'x')]);
  t.deepEqual(simo.s.states, { client: 'ESTABLISHED', server: 'ESTABLISHED' });
  t.is(simo.c2s, 'x');
});

test('sequence numbers at or above 2^31 on both sides: the close completes (TIME_WAIT/CLOSED)', (t) => {
  for (const [c0, s0] of [[0x80000000, 0x90000000], [0xffffffff, 0x7fffffff], [0, 0xfffffffe]]) {
    const cs = (n: number) => (c0 + n) >>> 0;
    const ss = (n: number) => (s0 + n) >>> 0;
    const r = run([{ ...C, seq: c0, flags: TH_SYN }, { ...S, seq: s0, ack: cs(1), flags: TH_SYN | TH_ACK }, { ...C, seq: cs(1), ack: ss(1) },
      { ...C, seq: cs(1), ack: ss(1), flags: TH_ACK | TH_PUSH, payload: 'ping' }, { ...S, seq: ss(1), ack: cs(5), flags: TH_ACK | TH_PUSH, payload: 'pong' },
      { ...C, seq: cs(5), ack: ss(5), flags: TH_FIN | TH_ACK }, { ...S, seq: ss(5), ack: cs(6), flags: TH_FIN | TH_ACK }, { ...C, seq: cs(6), ack: ss(6) }]);
    t.deepEqual(r.s.states, { client: 'TIME_WAIT', server: 'CLOSED' }, `ISNs ${c0.toString(16)} ${s0.toString(16)}`);
    t.is(r.c2s, 'ping');
    t.is(r.s2c, 'pong');
    t.is(r.stack.pcbs.size, 0, 'the connection left the table when it was done');
  }
});

test('a new SYN after the connection closed starts a new stream, like tcp.stream', (t) => {
  const r = run([syn(), synack(), data(0, 'one'), fin(3), { ...S, seq: 5001, ack: ISN + 5, flags: TH_FIN | TH_ACK },
    syn(9000), synack(9000), data(0, 'two', 9000)]);
  t.is(r.app.data.get(0)!.c2s, 'one');
  t.is(r.app.data.get(1)!.c2s, 'two');
});

test('per-connection queue limit: the hole is skipped, memory stays bounded', (t) => {
  const segs = [syn(), synack()];
  for (let i = 1; i <= 50; i++) segs.push(data(i * 100, 'x'.repeat(100)));
  const r = run(segs, { reassLimit: 1000 });
  t.true(r.stack.stats.notes['tcp.reass.limit']! > 0);
  t.is(r.s.c2s.gaps[0]![0], 0);
  t.is(r.c2s.length, 5000);
});

test('global reassembly budget: the hole is skipped and a FIN that waited behind it is taken then, not at the connection\'s end', (t) => {
  // bytes 0..100 never captured; 60 bytes and the FIN behind the hole exceed a 50-byte budget
  const dataFin: SegSpec = { ...data(100, 'y'.repeat(60)), flags: TH_FIN | TH_ACK | TH_PUSH };
  const sfin: SegSpec = { ...S, seq: 5001, ack: ISN + 1 + 161, flags: TH_FIN | TH_ACK };
  const lastAck: SegSpec = { ...C, seq: ISN + 1 + 161, ack: 5002, flags: TH_ACK };
  const r = run([syn(), synack(), dataFin, sfin, lastAck], { reassTotal: 50 });
  t.is(r.stack.stats.notes['tcp.reass.budget'], 1);
  t.is(r.after[2], 'y'.repeat(60), 'the data behind the hole is read at once');
  t.deepEqual(r.s.c2s.gaps, [[0, 100]]);
  // the server had the client's FIN when it sent its own: CLOSE_WAIT -> LAST_ACK -> CLOSED, and
  // the client FIN_WAIT_1 -> TIME_WAIT (a FIN left waiting would have made the server's
  // FIN a simultaneous close)
  t.deepEqual(r.s.states, { client: 'TIME_WAIT', server: 'CLOSED' });
  t.is(r.stack.reassBytes, 0);
});

test('zero copy: delivered views point into the frames\' own bytes', (t) => {
  const ms = frames([syn(), synack(), data(0, 'zerocopy')]);
  const session = new CaptureSession();
  session.addIface({ linktype: 1, snaplen: 65535, tsresol: 6, tsoffset: 0, bigEndian: false, name: undefined, file: 't' });
  const seen: Uint8Array[] = [];
  const stack = new Stack(session, { app: new DrainApp(false, 1 << 20, (_c, _d, chunk) => seen.push(...chunk)) });
  stack.input(ms);
  t.is(seen.length, 1);
  t.is(seen[0]!.buffer, ms[2]!.buf.buffer, 'same ArrayBuffer as the captured frame');
});

/** The server's pure ACK of c2s stream offset `off`. */
const ackOf = (off: number): SegSpec => ({ ...S, seq: 5001, ack: ISN + 1 + off, flags: TH_ACK });

test('a hole the receiver acknowledged (lost by the capture) is skipped when a later ACK shows it again, ACKED_HOLE_WAIT segments on: the data behind it is read then, not when the connection ends', async (t) => {
  const { ACKED_HOLE_WAIT } = await import('../../core/tcp/tcp-input.js');
  t.is(ACKED_HOLE_WAIT, 3);
  // 'bb' at 2..4 never captured; the server acknowledges up to 6 (it had them)
  const r = run([syn(), synack(), data(0, 'aa'), data(4, 'cc'), ackOf(6), data(6, 'dd'), ackOf(8), ackOf(8), data(8, 'ee'), fin(10)]);
  t.is(r.after[4], 'aa', 'the first ACK past the hole: it waits (the capture may have reordered)');
  t.is(r.after[5], 'aa', 'data behind the hole stays queued');
  t.is(r.after[6], 'aa', 'a second ACK, 2 segments on: still waiting');
  t.is(r.after[7], 'aaccdd', 'a third ACK, 3 segments after the first: the hole is skipped, what follows is read');
  t.is(r.after[8], 'aaccddee', 'later data flows in order');
  t.deepEqual(r.s.c2s.gaps, [[2, 2]]);
  t.is(r.stack.stats.notes['tcp.reass.acked'], 1);
  t.is(r.s.states.server, 'CLOSE_WAIT', 'the FIN after the data is taken');
});

test('an ACK captured before the data it acknowledges (a capture\'s own reordering) loses nothing: the data fills the hole within ACKED_HOLE_WAIT segments', (t) => {
  const r = run([syn(), synack(), data(0, 'aa'), data(4, 'cc'), ackOf(6), ackOf(6), data(2, 'bb'), ackOf(6), fin(6)]);
  t.is(r.c2s, 'aabbcc');
  t.deepEqual(r.s.c2s.gaps, []);
  t.is(r.stack.stats.notes['tcp.reass.acked'] ?? 0, 0);
});

test('an ACK that ends inside the hole proves nothing about the data after it: the hole waits for the connection\'s end', (t) => {
  const r = run([syn(), synack(), data(0, 'aa'), data(6, 'cc'), ackOf(4), ackOf(4), ackOf(4), ackOf(4), ackOf(4), fin(8)]);
  t.is(r.after[8], 'aa', 'still queued behind the hole');
  t.is(r.c2s, 'aacc');
  t.deepEqual(r.s.c2s.gaps, [[2, 4]]);
  t.is(r.stack.stats.notes['tcp.reass.acked'] ?? 0, 0);
});
