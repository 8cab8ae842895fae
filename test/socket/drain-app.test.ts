import test from 'ava';
import { createHash } from 'node:crypto';
import { Connection, type Dir } from '../../core/net/in-pcb.js';
import { Mbuf } from '../../core/mbuf/mbuf.js';
import { DrainApp, LOWAT_SLOW_BYTES, LOWAT_SLOW_WAIT_BYTES, LOWAT_WAIT_BYTES } from '../../core/socket/reader.js';
import { socantrcvmore, sorwakeup } from '../../core/socket/socket.js';
import { sbappendstream } from '../../core/socket/sockbuf.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

test('DrainApp with SO_RCVLOWAT: a reader sleeps below the mark, reads at the mark, at EOF, after LOWAT_SLOW_WAIT_BYTES of capture (it has fewer than LOWAT_SLOW_BYTES), and at detach', (t) => {
  const addr = new Uint8Array([10, 0, 0, 1, 10, 0, 0, 2]);
  const reads: Array<[number, Dir, number]> = [];
  const closed: number[] = [];
  const app = new DrainApp(true, 1 << 20, (c, d, chunk) => reads.push([c.stream, d, chunk.reduce((n, v) => n + v.length, 0)]), (c) => closed.push(c.stream), 1000);
  const conns = [0, 1, 2].map((i) => new Connection(i, addr, 0, 1000 + i, 4, 80, 4));
  for (const c of conns) app.attach(c);
  t.is(conns[0]!.server.so.rcv.lowat, 1000, 'SO_RCVLOWAT set on every socket');
  // one upcall function for all sockets; its argument (BSD so_upcallarg) one object per connection,
  // shared by both sockets (with hashing, the connection's hashes; without, the connection); and
  // conn.app left to the sink
  const ups = new Set(conns.flatMap((c) => [c.server.so.upcall, c.client.so.upcall]));
  t.is(ups.size, 1);
  t.is(typeof [...ups][0], 'function');
  t.is(conns[0]!.server.so.upcallArg, conns[0]!.client.so.upcallArg);
  t.not(conns[0]!.server.so.upcallArg, conns[1]!.server.so.upcallArg);
  t.truthy(conns[0]!.server.so.upcallArg);
  t.true(conns.every((c) => c.app === null));
  const plain = new DrainApp(false, 1 << 20, () => {}, undefined, 1000);
  const c9 = new Connection(9, addr, 0, 1009, 4, 80, 4);
  plain.attach(c9);
  t.is(c9.server.so.upcallArg, c9, 'without hashing the argument is the connection: nothing is made per connection');
  const bytes = new Uint8Array(5000).map((_, i) => i % 256);
  let at = 0;
  /** c2s data arrives at connection c's server socket (tcp_input: sbappendstream, sorwakeup). */
  const arrive = (c: Connection, n: number) => {
    sbappendstream(c.server.so.rcv, new Mbuf(bytes, at, n));
    at += n;
    sorwakeup(c.server.so);
  };
  arrive(conns[0]!, 400);
  arrive(conns[0]!, 400);
  t.deepEqual(reads, [], '800 bytes < lowat 1000: the reader sleeps');
  arrive(conns[0]!, 400);
  t.deepEqual(reads, [[0, 'c2s', 1200]], 'at the mark: one read of everything buffered');
  arrive(conns[1]!, 10);
  const step = LOWAT_SLOW_WAIT_BYTES / 8;
  for (let b = 1; b < 8; b++) app.batch(step);
  t.is(reads.length, 1, 'still asleep one step before the timeout');
  arrive(conns[2]!, 20); // falls asleep later
  arrive(conns[0]!, 100); // read at the mark before, asleep again now: its first sleep's entry is stale
  app.batch(step);
  t.deepEqual(reads.slice(1), [[1, 'c2s', 10]], 'the receive timeout: read after LOWAT_SLOW_WAIT_BYTES of capture, the later sleepers not yet');
  arrive(conns[2]!, 5);
  socantrcvmore(conns[2]!.server.so);
  t.deepEqual(reads.slice(2), [[2, 'c2s', 25]], 'EOF wakes the reader below the mark');
  arrive(conns[1]!, 30);
  app.detach(conns[1]!);
  t.deepEqual(reads.slice(3), [[1, 'c2s', 30]], 'detach reads what slept');
  t.deepEqual(closed, [1]);
  t.is(conns[1]!.server.so.upcall, null, 'detach clears the upcalls');
  t.is(app.digest(conns[1]!, 's2c'), sha(new Uint8Array(0)), 'the digest is there after detach (the reader stays the argument)');
  for (let b = 0; b < 16; b++) app.batch(step);
  t.deepEqual(reads.slice(4), [[0, 'c2s', 100]], 'the second sleep times out on its own clock; stale sleepers read nothing twice');
  const all = Buffer.concat([bytes.subarray(0, 1200), bytes.subarray(1230, 1330)]);
  t.is(app.digest(conns[0]!, 'c2s'), sha(all), 'the hash covers what was read');
});

test('DrainApp: a sleeper with LOWAT_SLOW_BYTES or more when LOWAT_SLOW_WAIT_BYTES run out (or whose connection\'s other direction has) sleeps on to LOWAT_WAIT_BYTES, in the order they fell asleep; one with less reads then; one that reaches the mark meanwhile reads once', (t) => {
  const addr = new Uint8Array([10, 0, 0, 1, 10, 0, 0, 2]);
  const reads: Array<[number, number] | [number, number, Dir]> = [];
  const app = new DrainApp(false, 1 << 20, (c, d, chunk) => {
    const n = chunk.reduce((k, v) => k + v.length, 0);
    reads.push(d === 'c2s' ? [c.stream, n] : [c.stream, n, d]);
  }, undefined, 64 << 10);
  const conns = [0, 1, 2, 3, 4].map((i) => new Connection(i, addr, 0, 1000 + i, 4, 80, 4));
  for (const c of conns) app.attach(c);
  const bytes = new Uint8Array(70_000);
  const arrive = (c: Connection, n: number, so = c.server.so) => {
    sbappendstream(so.rcv, new Mbuf(bytes, 0, n));
    sorwakeup(so);
  };
  t.true(LOWAT_SLOW_WAIT_BYTES < LOWAT_WAIT_BYTES);
  arrive(conns[0]!, LOWAT_SLOW_BYTES); // enough to sleep on
  arrive(conns[1]!, LOWAT_SLOW_BYTES - 1); // a slow flow
  arrive(conns[2]!, 100);
  arrive(conns[2]!, LOWAT_SLOW_BYTES); // more by the time the first timeout comes
  arrive(conns[3]!, 3000);
  arrive(conns[4]!, LOWAT_SLOW_BYTES);
  arrive(conns[4]!, 10, conns[4]!.client.so); // s2c: slow, but its connection is not
  const step = LOWAT_SLOW_WAIT_BYTES / 4;
  for (let b = 1; b < 4; b++) app.batch(step);
  t.deepEqual(reads, [], 'all asleep one step before the first timeout');
  app.batch(step);
  t.deepEqual(reads, [[1, LOWAT_SLOW_BYTES - 1]], 'only the slow one reads at the first timeout');
  arrive(conns[3]!, (64 << 10) - 3000); // reaches the mark while sleeping on
  t.deepEqual(reads.slice(1), [[3, 64 << 10]]);
  for (let clock = LOWAT_SLOW_WAIT_BYTES; clock < LOWAT_WAIT_BYTES - step; clock += step) app.batch(step);
  t.is(reads.length, 2, 'the others sleep on until LOWAT_WAIT_BYTES');
  app.batch(step);
  t.deepEqual(reads.slice(2), [[0, LOWAT_SLOW_BYTES], [2, LOWAT_SLOW_BYTES + 100], [4, LOWAT_SLOW_BYTES], [4, 10, 's2c']], 'then read, in the order they fell asleep; the one that read at the mark not again');
  for (let b = 0; b < 40; b++) app.batch(step);
  t.is(reads.length, 6);
});
