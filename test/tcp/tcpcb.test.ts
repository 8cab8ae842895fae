import test from 'ava';
import { Tcpcb } from '../../core/tcp/tcpcb.js';

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
  // its flag bit is apart from the others
  tp.timestamps = true;
  t.is(tp.finSeqEarly, -1);
  tp.finSeqEarly = 5;
  t.true(tp.timestamps);
  tp.timestamps = false;
  t.is(tp.finSeqEarly, 5);
});
