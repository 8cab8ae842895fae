import test from 'ava';
import { Tcpcb } from '../../core/tcp/tcpcb.js';
import { Mbuf } from '../../core/mbuf/mbuf.js';
import { sbappendstream, sbdrop } from '../../core/socket/sockbuf.js';

test('sequence numbers are stored as 32-bit integers and read back unsigned, over the whole range', (t) => {
  const tp = new Tcpcb();
  for (const v of [0, 1, 0x7fffffff, 0x80000000, 0xfffffff0, 0xffffffff]) {
    tp.irs = v;
    tp.iss = v;
    tp.sndMax = v;
    tp.sndUna = v;
    t.deepEqual([tp.irs, tp.iss, tp.sndMax, tp.sndUna], [v, v, v, v], `0x${v.toString(16)}`);
  }
});

test('finSeqEarly is -1 until set, keeps 0xffffffff apart from -1, and -1 clears it', (t) => {
  const tp = new Tcpcb();
  t.is(tp.finSeqEarly, -1);
  tp.finSeqEarly = 0xffffffff;
  t.is(tp.finSeqEarly, 0xffffffff);
  tp.finSeqEarly = 0;
  t.is(tp.finSeqEarly, 0);
  tp.finSeqEarly = -1;
  t.is(tp.finSeqEarly, -1);
  // it is apart from the flags
  tp.timestamps = true;
  t.is(tp.finSeqEarly, -1);
  tp.finSeqEarly = 5;
  t.true(tp.timestamps);
  tp.timestamps = false;
  t.is(tp.finSeqEarly, 5);
});

test('the state, the SYN options and the flags share their fields without touching each other', (t) => {
  const tp = new Tcpcb();
  t.is(tp.state, 'CLOSED');
  t.is(tp.mss, 0);
  t.is(tp.wscale, -1);
  const states = ['CLOSED', 'LISTEN', 'SYN_SENT', 'SYN_RECEIVED', 'ESTABLISHED', 'FIN_WAIT_1', 'FIN_WAIT_2',
    'CLOSE_WAIT', 'CLOSING', 'LAST_ACK', 'TIME_WAIT'] as const;
  for (const [i, s] of states.entries()) {
    tp.sackPermitted = i % 2 === 0;
    tp.rcvKnown = i % 3 === 0;
    tp.state = s;
    t.is(tp.state, s);
    t.is(tp.sackPermitted, i % 2 === 0, s);
    t.is(tp.rcvKnown, i % 3 === 0, s);
  }
  for (const [mss, ws] of [[65535, 14], [1460, 0], [0, -1], [536, 7]] as const) {
    tp.mss = mss;
    tp.wscale = ws;
    t.deepEqual([tp.mss, tp.wscale], [mss, ws]);
    tp.mss = 1;
    t.is(tp.wscale, ws, 'the MSS leaves the window scale alone');
  }
  tp.wscale = 20;
  t.is(tp.wscale, 14, 'clamped to 14 (RFC 7323 §2.3)');
  t.is(tp.state, 'TIME_WAIT');
});

test('the rare fields (ISNs, gaps, counters, queue) read as empty until used, and reset() empties them', (t) => {
  const tp = new Tcpcb();
  t.deepEqual([tp.q.length, tp.qBytes, tp.qMbufs], [0, 0, 0]);
  tp.qBytes = 0;
  tp.qMbufs = 0;
  tp.clearq();
  t.is((tp as unknown as { rare: unknown }).rare, null, 'clearing what is not there makes nothing');
  tp.segq().push({ off: 5, end: 9, m: null, tail: null, n: 1 });
  tp.qBytes += 4;
  tp.qMbufs += 1;
  t.deepEqual([tp.q.length, tp.qBytes, tp.qMbufs, tp.empty], [1, 4, 1, false]);
  tp.clearq();
  tp.qBytes = 0;
  t.deepEqual([tp.q.length, tp.qMbufs, tp.empty], [0, 0, true]);
  t.is(tp.isns, null);
  t.deepEqual(tp.gaps, []);
  t.is(tp.rcvStats.dupSegs, 0);
  tp.isns = null;
  t.is(tp.isns, null);
  tp.isns = [1, 0xfffffffe];
  tp.addGap(10, 5);
  tp.counts.dupSegs++;
  tp.finSeqEarly = 7;
  t.deepEqual(tp.isns, [1, 0xfffffffe]);
  t.deepEqual(tp.gaps, [[10, 5]]);
  t.is(tp.rcvStats.dupSegs, 1);
  tp.isns = null;
  t.is(tp.isns, null);
  t.is(tp.finSeqEarly, 7, 'clearing the ISNs keeps the early FIN');
  tp.state = 'ESTABLISHED';
  tp.mss = 1460;
  tp.segq().push({ off: 0, end: 1, m: null, tail: null, n: 1 });
  tp.reset();
  t.is(tp.q.length, 0);
  t.deepEqual([tp.isns, tp.gaps, tp.rcvStats.dupSegs, tp.finSeqEarly, tp.state, tp.mss, tp.wscale], [null, [], 0, -1, 'CLOSED', 0, -1]);
});

test('the socket is embedded in its tcpcb: the socket bits and the TCP flags and state share a word without touching each other, and one rare object serves both', (t) => {
  const tp = new Tcpcb();
  const so = tp.so;
  t.is(so, tp, 'so is the tcpcb seen as its socket');
  t.true(so.oobinline, 'SO_OOBINLINE starts set');
  t.false(so.cantRcvMore || so.cantSendMore || so.connected || so.connecting || so.listening);
  const states = ['CLOSED', 'SYN_SENT', 'ESTABLISHED', 'TIME_WAIT'] as const;
  for (let i = 0; i < 64; i++) {
    const b = (k: number) => (i & (1 << k)) !== 0;
    so.cantRcvMore = b(0);
    so.cantSendMore = b(1);
    so.connected = b(2);
    so.connecting = b(3);
    so.listening = b(4);
    so.oobinline = b(5);
    tp.state = states[i % 4]!;
    tp.finRcvd = !b(0);
    tp.timestamps = !b(5);
    tp.sentFin = b(2);
    t.deepEqual([so.cantRcvMore, so.cantSendMore, so.connected, so.connecting, so.listening, so.oobinline], [b(0), b(1), b(2), b(3), b(4), b(5)], `socket bits ${i}`);
    t.deepEqual([tp.state, tp.finRcvd, tp.timestamps, tp.sentFin, tp.rcvKnown], [states[i % 4], !b(0), !b(5), b(2), false], `tcp bits ${i}`);
  }
  t.is((tp as unknown as { rare: unknown }).rare, null, 'no rare fields made by any of that');
  so.error = 'ECONNRESET';
  tp.addGap(3, 4);
  so.oobmark = 10;
  tp.finSeqEarly = 99;
  t.deepEqual([so.error, tp.gaps, so.oobmark, tp.finSeqEarly], ['ECONNRESET', [[3, 4]], 10, 99], 'socket and tcpcb rare fields kept side by side');
  so.snd.hiwat = 1234;
  t.is(so.sndIfMade?.hiwat, 1234);
  sbappendstream(so.rcv, new Mbuf(new Uint8Array(5), 0, 5, null));
  t.deepEqual([so.rcv.cc, tp.q.length, tp.empty], [5, 0, false], 'the receive buffer is the socket\'s, not the reassembly queue');
  sbdrop(so.rcv, 5);
  tp.reset();
  t.deepEqual([so.error, tp.gaps, so.oobmark, tp.finSeqEarly, so.sndIfMade, tp.state, so.oobinline, so.connected, tp.empty], [null, [], -1, -1, null, 'CLOSED', true, false, true], 'reset() empties both');
  t.is((tp as unknown as { rare: unknown }).rare, null);
});
