import test from 'ava';
import fc from 'fast-check';
import { Connection, endpointString, ip4Endpoint, Tombstone } from '../../core/net/in-pcb.js';
import { PcbTable } from '../../core/net/pcb-table.js';

/** Tuple i as bytes: client 10.0.x.y:port, server 10.1.0.1:80 (src at 0, dst at 4). */
function tuple(i: number): { b: Uint8Array; sport: number } {
  const b = new Uint8Array([10, 0, (i >> 8) & 0xff, i & 0xff, 10, 1, 0, 1]);
  return { b, sport: 1024 + (i % 50000) };
}

/** The table's entry for tuple i, looked up from the client's side and from the server's. */
function find(t: PcbTable, i: number): [ReturnType<PcbTable['lookup']>, number, ReturnType<PcbTable['lookup']>, number] {
  const { b, sport } = tuple(i);
  const rev = new Uint8Array([...b.subarray(4), ...b.subarray(0, 4)]);
  const a = t.lookup(b, 0, 4, 4, sport, 80);
  const ad = t.dir;
  const s = t.lookup(rev, 0, 4, 4, 80, sport);
  return [a, ad, s, t.dir];
}

test('PcbTable (open addressing): after any mix of inserts and removals every entry is found from both sides, nothing removed is, and size, order and the table grow as they should', (t) => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.boolean(), fc.nat(2999)), { minLength: 1, maxLength: 4000 }), (ops) => {
      const table = new PcbTable();
      const model = new Map<number, Connection | Tombstone>();
      let stream = 0;
      for (const [add, i] of ops) {
        const { b, sport } = tuple(i);
        if (add && !model.has(i)) {
          t.is(table.lookup(b, 0, 4, 4, sport, 80), null);
          const h = table.hash;
          const c = new Connection(stream++, b, 0, sport, 4, 80, 4);
          // every third one a tombstone in its place (what a closed connection leaves)
          const e = i % 3 === 0 ? new Tombstone(c, 100, h) : c;
          table.insert(h, e);
          model.set(i, e);
        } else if (!add && model.has(i)) {
          const e = model.get(i)!;
          table.remove(e instanceof Connection ? e.key : e.key, e);
          model.delete(i);
          if (e instanceof Connection) t.is(e.slot, -1);
        }
      }
      for (let i = 0; i < 3000; i++) {
        const [a, ad, s, sd] = find(table, i);
        const want = model.get(i) ?? null;
        if (a !== want || s !== want) return false;
        if (want && (ad !== 1 || sd !== 2)) return false;
      }
      const live = [...model.values()].filter((e) => e instanceof Connection);
      t.is(table.size, live.length);
      // entries(): the live connections, oldest first; oldest() the first of them
      t.deepEqual([...table.entries()].map(([, c]) => c.stream), live.map((c) => c.stream).sort((x, y) => x - y));
      t.is(table.oldest(), live.sort((x, y) => x.stream - y.stream)[0] ?? null);
      return true;
    }),
    { numRuns: 60 },
  );
});

test('PcbTable: removing an entry that is not in the table changes nothing; one key shared by different tuples (a hash collision) keeps both apart', (t) => {
  const table = new PcbTable();
  const conns = [0, 1, 2].map((i) => new Connection(i, tuple(i).b, 0, tuple(i).sport, 4, 80, 4));
  // all three under one key: lookup computes its own, so these are found by scanning the run
  for (const c of conns) table.insert(12345, c);
  const stranger = new Connection(9, tuple(9).b, 0, tuple(9).sport, 4, 80, 4);
  table.remove(12345, stranger);
  t.is(table.size, 3);
  table.remove(12345, conns[1]!);
  t.is(table.size, 2);
  t.deepEqual([...table.entries()].map(([, c]) => c.stream), [0, 2]);
  table.remove(12345, conns[0]!);
  table.remove(12345, conns[2]!);
  t.is(table.size, 0);
  t.is(table.oldest(), null);
});

test('PcbTable: entries under any keys, inserted and removed in any order, stay reachable from their keys\' slots (check(), the invariant), also where runs wrap past the last slot', (t) => {
  const c = new Connection(0, tuple(0).b, 0, 1, 4, 80, 4);
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer(), fc.nat(9)), { minLength: 1000, maxLength: 3000 }), fc.nat(), (ops, seed) => {
      const table = new PcbTable();
      const held: Array<[number, Tombstone]> = [];
      let k = seed;
      for (const [x, r] of ops) {
        // fast-check favours small and extreme integers: mixed (murmur3's fmix32), keys spread
        // over the table; seven in ten ops add, so it fills up to where it grows and runs get
        // long, across its last slot too
        let h = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
        h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
        h ^= h >>> 16;
        if (r < 7 || held.length === 0) {
          const e = new Tombstone(c, 0, h);
          table.insert(h, e);
          held.push([h, e]);
        } else {
          k = (k * 1103515245 + 12345) >>> 0;
          const [hh, e] = held.splice(k % held.length, 1)[0]!;
          table.remove(hh, e);
        }
        table.check();
      }
      return true;
    }),
    { numRuns: 30, endOnFailure: true }, // a failure's 3,000 steps take long to shrink
  );
  t.pass();
});

test('ip4Endpoint (a connection\'s IPv4 names) writes what endpointString writes, for any address and port; a connection\'s names are it', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.integer({ min: 0, max: 65535 }), (a, port) => {
      const w = ((a[0]! << 24) | (a[1]! << 16) | (a[2]! << 8) | a[3]!) | 0;
      return ip4Endpoint(w, port) === endpointString(a, port);
    }),
    { numRuns: 2000 },
  );
  for (const [a, p] of [[[0, 0, 0, 0], 0], [[255, 255, 255, 255], 65535], [[10, 0, 100, 9], 10], [[192, 168, 1, 10], 9999]] as const)
    t.is(ip4Endpoint(((a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3]) | 0, p), `${a.join('.')}:${p}`);
  const c = new Connection(0, new Uint8Array([192, 0, 2, 1, 198, 51, 100, 200]), 0, 40000, 4, 443, 4);
  t.is(c.clientName, '192.0.2.1:40000');
  t.is(c.serverName, '198.51.100.200:443');
  const c6 = new Connection(1, new Uint8Array([...new Uint8Array(15), 1, 0x20, 1, 0x0d, 0xb8, ...new Uint8Array(11), 2]), 0, 5000, 16, 80, 16);
  t.is(c6.clientName, '[::1]:5000');
  t.is(c6.serverName, '[2001:db8::2]:80');
});

test('a connection and its tombstone give back both ports over their whole range, the address length and the VLAN stack', (t) => {
  const v4 = new Uint8Array([10, 0, 0, 1, 192, 168, 200, 255]);
  const v6 = new Uint8Array(32).map((_, i) => (i * 37) & 0xff);
  for (const [cp, sp] of [[0, 0], [65535, 65535], [32768, 1], [1, 32768], [65535, 0], [40000, 80]] as const) {
    for (const [b, alen] of [[v4, 4], [v6, 16]] as const) {
      const c = new Connection(1, b, 0, cp, alen, sp, alen, 7);
      const ts = new Tombstone(c, 10, 3);
      for (const e of [c, ts]) t.deepEqual([e.cPort, e.sPort, e.alen, e.vlan], [cp, sp, alen, 7], `${cp} ${sp} ${alen}`);
      // the client sending, then the server
      t.is(c.match(b, 0, alen, cp, sp), 1);
      t.is(c.match(b, alen, 0, sp, cp), 2);
      if (cp !== sp) t.is(c.match(b, 0, alen, sp, cp), 0, 'ports swapped on the same addresses');
      t.true(c.sameNet(alen, 7));
      t.false(c.sameNet(alen === 4 ? 16 : 4, 7));
      t.false(c.sameNet(alen, 0));
    }
  }
});

test('a connection keeps its first and last capture times exactly as the frame headers give them (seconds, nanoseconds)', (t) => {
  const c = new Connection(0, new Uint8Array(8), 0, 1, 4, 2, 4);
  for (const [s0, n0, s1, n1] of [[1_700_000_000, 123_456_789, 1_700_000_001, 999_999_999], [0, 0, 0, 1], [2 ** 31 + 5, 500, 2 ** 32 - 1, 999_999_999]]) {
    c.began(s0!, n0!);
    c.seen(s1!, n1!);
    t.is(c.firstTs, s0! + n0! / 1e9);
    t.is(c.lastTs, s1! + n1! / 1e9);
  }
  c.free();
  t.deepEqual([c.firstTs, c.lastTs], [0, 0]);
});
