import test from 'ava';
import { Mbuf } from '../../core/mbuf/mbuf.js';
import { sbappendstream } from '../../core/socket/sockbuf.js';
import { type ProtoSw, Socket, type SpliceEnv, sorwakeup } from '../../core/socket/socket.js';
import { M_MAXLOOP, somove, sosplice } from '../../core/socket/splice.js';

/** Model sockets and a softnet queue: what sosplice needs, without captures. */
function world() {
  const q: Array<() => void> = [];
  const env: SpliceEnv = { sched: (t) => q.push(t), now: () => 0, somove };
  const run = () => { while (q.length) q.shift()!(); };
  const sock = (name: ProtoSw['name'] = 'tcp', peer?: () => Socket) => {
    const so = new Socket();
    so.connected = true;
    so.proto = {
      name,
      send: (_s, m) => {
        // a localhost connection: what one end sends arrives in its peer's so.rcv at once
        const p = peer?.();
        if (p) { sbappendstream(p.rcv, m); p.rcv.mb!.hdr ??= m.hdr; sorwakeup(p); }
        return null;
      },
      rcvd: () => {},
    };
    return so;
  };
  return { env, run, sock };
}

const data = (n: number, hdr = false) => new Mbuf(new Uint8Array(n).fill(0x61), 0, n, hdr ? { caplen: n, origLen: n, tsSec: 0, tsNsec: 0, linktype: 1, ifidx: 0, frameNo: 1 } : null);

test('sosplice errno table (OpenBSD regress error/*), in the order sosplice checks', (t) => {
  const { env, sock } = world();
  const a = sock(); const b = sock(); const c = sock();
  t.is(sosplice(a, { drain: b, max: -1 }, env), 'EINVAL', 'args-max-EINVAL');
  t.is(sosplice(a, { drain: b, idle: -1 }, env), 'EINVAL', 'args-idle-EINVAL');
  t.is(sosplice(a, { drain: null }, env), 'EPROTO', 'args-unsplice-EPROTO');
  t.is(sosplice(a, { drain: sock('udp') }, env), 'EPROTONOSUPPORT', 'args-splice-EPROTONOSUPPORT (tcp -> udp)');
  t.is(sosplice(sock('unix'), { drain: sock('unix') }, env), 'EPROTONOSUPPORT', 'args-unix-EPROTONOSUPPORT');
  const l = sock(); l.listening = true;
  t.is(sosplice(l, { drain: b }, env), 'EOPNOTSUPP', 'args-EOPNOTSUPP (listening source)');
  t.is(sosplice(a, { drain: l }, env), 'EOPNOTSUPP', 'args-splice-EOPNOTSUPP (listening drain)');
  const u = sock(); u.connected = false;
  t.is(sosplice(u, { drain: b }, env), 'ENOTCONN', 'args-ENOTCONN');
  t.is(sosplice(a, { drain: u }, env), 'ENOTCONN', 'args-splice-ENOTCONN');
  u.connecting = true;
  t.is(sosplice(a, { drain: u }, env), 0, 'a drain still connecting is accepted');
  t.is(sosplice(a, { drain: c }, env), 'EBUSY', 'args-EBUSY (source already spliced)');
  t.is(sosplice(c, { drain: u }, env), 'EBUSY', 'args-splice-EBUSY (drain already a target)');
  const uu = sock('udp'); uu.connected = false;
  t.is(sosplice(uu, { drain: sock('udp') }, env), 0, 'an unconnected UDP source is fine');
});

test('manual unsplice (args-unsplice-forked): so_error 0, SO_SPLICE keeps the count, later data stays readable', (t) => {
  const { env, run, sock } = world();
  const drain = sock();
  const src = sock();
  t.is(sosplice(src, { drain }, env), 0);
  sbappendstream(src.rcv, data(2000));
  sorwakeup(src);
  run();
  t.is(src.sp!.len, 2000);
  t.is(drain.snd.cc, 0, 'the test drain sends at once');
  t.is(sosplice(src, { drain: null }, env), 0);
  t.is(src.error, null);
  sbappendstream(src.rcv, data(500));
  sorwakeup(src);
  run();
  t.is(src.rcv.cc, 500, 'not moved: the splice is gone');
  t.is(src.sp!.len, 2000, 'getsockopt(SO_SPLICE) still reads the last count');
  t.is(sosplice(src, { drain }, env), 0);
  t.is(src.sp!.len, 500, 're-splicing resets the count and moves what is buffered at once');
});

test('drain space and low-water mark: only whole mbufs move while the drain holds data', (t) => {
  const { env, sock } = world();
  const drain = sock();
  drain.proto = { name: 'tcp', send: (s, m) => { sbappendstream(s.snd, m); return null; }, rcvd: () => {} };
  drain.snd.hiwat = 3000;
  drain.snd.lowat = 600;
  sbappendstream(drain.snd, data(500)); // written by the application before the splice
  const src = sock();
  for (const n of [1000, 1000, 1500]) sbappendstream(src.rcv, data(n));
  t.is(sosplice(src, { drain }, env), 0);
  t.is(drain.snd.cc, 2500, 'space 2,500: the 1,500-byte mbuf would cross it and the drain is not empty, so it waits whole');
  t.is(src.rcv.cc, 1500);
  t.true(somove(src), 'space 500 < lowat 600: nothing moves, the splice goes on');
  t.is(drain.snd.cc, 2500);
  const d2 = sock();
  d2.proto = drain.proto;
  d2.snd.hiwat = 2200;
  const s2 = sock();
  for (const n of [1000, 1000, 1500]) sbappendstream(s2.rcv, data(n));
  t.is(sosplice(s2, { drain: d2 }, env), 0);
  t.is(d2.snd.cc, 2200, 'an empty drain takes a split mbuf');
});

test('ELOOP (error/args-ELOOP, loop/chain.pl): data spliced back into its own peer loops 128 times, then stays readable once', (t) => {
  const { env, run, sock } = world();
  let s!: Socket; let ss!: Socket;
  s = sock('tcp', () => ss);
  ss = sock('tcp', () => s);
  // s is spliced into ss: what s receives goes out through ss, which delivers to s again
  t.is(sosplice(s, { drain: ss }, env), 0);
  sbappendstream(s.rcv, data(4, true));
  sorwakeup(s);
  run();
  t.is(s.error, 'ELOOP');
  t.is(s.rcv.cc, 4, 'the 4 bytes are left in the source, once');
  t.is(s.rcv.mb!.hdr!.loopcnt, M_MAXLOOP + 1);
  t.is(s.sp!.len, 4 * M_MAXLOOP);
  t.is(s.sp!.drain, null, 'unspliced');
});
