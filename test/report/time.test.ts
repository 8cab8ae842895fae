import test from 'ava';
import fc from 'fast-check';
import { later, microsAfter, secondsToNanos, spanNanos, spanSeconds } from '../../core/time.js';
import { parseDuration } from '../../core/splice-report.js';
import { Stats } from '../../core/stats.js';
import { Connection } from '../../core/net/in-pcb.js';
import { flowName } from '../../core/capture/flow-name.js';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { conversation, pcapFile } from '../helpers/build.js';
import { cli, tmp } from '../helpers/cli.js';
import { HAS_TSHARK } from '../helpers/paths.js';

/** The exact span from (s0, n0) to (s1, n1) as a decimal string (BigInt arithmetic), trailing zeros dropped. */
function exactDecimal(s0: number, n0: number, s1: number, n1: number): string {
  const ns = (BigInt(s1) - BigInt(s0)) * 1_000_000_000n + (BigInt(n1) - BigInt(n0));
  const neg = ns < 0n;
  const a = neg ? -ns : ns;
  const frac = (a % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${neg ? '-' : ''}${a / 1_000_000_000n}${frac ? `.${frac}` : ''}`;
}

const sec = fc.integer({ min: 0, max: 2 ** 32 - 1 });
const nsec = fc.integer({ min: 0, max: 999_999_999 });

test('spanSeconds is the double nearest to the exact span, which JSON.stringify writes as its decimal (spans under a million seconds, either sign)', (t) => {
  fc.assert(fc.property(sec, nsec, fc.integer({ min: -999_999, max: 999_999 }), nsec, (s0, n0, ds, n1) => {
    const s1 = s0 + ds;
    const d = spanSeconds(s0, n0, s1, n1);
    const want = exactDecimal(s0, n0, s1, n1);
    // nearest: the decimal read back is the same double; written: the same decimal (sub-microsecond spans take an exponent)
    return d === Number(want) && (Math.abs(d) < 1e-6 && d !== 0 ? true : JSON.stringify(d) === (want === '-0' ? '0' : want));
  }), { numRuns: 20_000 });
  // what the difference of two times as numbers gave before: the two roundings show
  t.is(JSON.stringify(1254722767 + 529046000 / 1e9 - (1254722759 + 951333000 / 1e9)) === '7.577713', false);
  t.is(JSON.stringify(spanSeconds(1254722759, 951333000, 1254722767, 529046000)), '7.577713');
});

test('spanSeconds past 9,000,000 s falls back to the difference of the times as numbers; nanosecond parts of 1e9 and more count as they are', (t) => {
  t.is(spanSeconds(0, 0, 20_000_000, 500_000_000), 20_000_000.5);
  t.is(spanSeconds(1_700_000_000, 0, 1_710_000_000, 0), 10_000_000);
  // an unnormalised header: 5 s + 1.5e9 ns is 6.5 s
  t.is(spanSeconds(5, 1_500_000_000, 6, 0), -0.5);
  t.is(spanSeconds(6, 0, 5, 1_500_000_000), 0.5);
});

test('later tells apart two timestamps that are the same number as seconds + nanoseconds / 1e9', (t) => {
  const a = [1_700_000_000, 999_999_999] as const;
  const b = [1_700_000_001, 0] as const;
  t.is(a[0] + a[1] / 1e9, b[0] + b[1] / 1e9, 'one double for both');
  t.true(later(a[0], a[1], b[0], b[1]));
  t.false(later(b[0], b[1], a[0], a[1]));
  t.false(later(a[0], a[1], a[0], a[1]));
  // unnormalised, the same instant: neither is later
  t.false(later(5, 1_500_000_000, 6, 500_000_000));
  // far apart (past exact nanoseconds) the sign still holds, and no timestamp yet is outside every one
  t.true(later(0, 999_999_999, 2 ** 40, 0));
  t.true(later(a[0], a[1], Infinity, 0));
  t.true(later(-Infinity, 0, a[0], a[1]));
});

test('Stats keeps the earliest and latest timestamps as the headers gave them: its duration is exact, ties between equal doubles go to the earlier and the later nanosecond', (t) => {
  fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: 1_700_000_000, max: 1_700_000_003 }), nsec), { minLength: 1, maxLength: 30 }), (times) => {
    const st = new Stats();
    for (const [s, n] of times) st.at(s, n);
    const key = ([s, n]: readonly [number, number]) => BigInt(s) * 1_000_000_000n + BigInt(n);
    const sorted = [...times].sort((x, y) => (key(x) < key(y) ? -1 : key(x) > key(y) ? 1 : 0));
    const [f, l] = [sorted[0]!, sorted[sorted.length - 1]!];
    return st.firstTs === f[0] + f[1] / 1e9 && st.lastTs === l[0] + l[1] / 1e9 && st.duration === Number(exactDecimal(f[0], f[1], l[0], l[1]));
  }), { numRuns: 2000 });
  const st = new Stats();
  t.is(st.duration, 0, 'no frame yet');
  st.at(1_700_000_001, 0);
  st.at(1_700_000_000, 999_999_999); // the same double, a nanosecond earlier
  st.at(1_700_000_001, 100); // the same double, later
  t.is(st.duration, 101e-9);
});

test('a connection\'s duration is exact, and %t and %T name the second its first frame\'s header gave, even in the last nanoseconds of that second', (t) => {
  const b = new Uint8Array([10, 0, 0, 1, 10, 0, 0, 2]);
  const c = new Connection(0, b, 0, 1024, 4, 80, 4);
  c.began(1_700_000_000, 999_999_999);
  c.seen(1_700_000_007, 577_713_000);
  t.is(JSON.stringify(c.duration), '6.577713001');
  t.is(c.firstTs, 1_700_000_001, 'as one number, the first frame rounds up to the next second');
  t.is(c.firstSec, 1_700_000_000);
  t.is(flowName('%t', c, 'c2s'), '1700000000');
  t.is(flowName('%T', c, 'c2s'), '2023-11-14T22:13:20Z');
});

test('spanNanos counts exactly (BigInt) within 9,000,000 s, either sign, unnormalised nanosecond parts included', (t) => {
  fc.assert(fc.property(sec, fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: -9_000_000, max: 9_000_000 }), fc.integer({ min: 0, max: 2 ** 32 - 1 }), (s0, n0, ds, n1) => {
    const want = (BigInt(ds) * 1_000_000_000n + BigInt(n1) - BigInt(n0)).toString();
    return String(spanNanos(s0, n0, s0 + ds, n1)) === want;
  }), { numRuns: 20_000 });
  t.is(spanNanos(1_700_000_000, 0, 1_700_000_002, 300_000_000), 2_300_000_000);
});

test('secondsToNanos gives a parsed duration\'s own nanoseconds (up to nine decimals, under 2^22 s; ms too)', (t) => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 22 - 1 }), fc.integer({ min: 0, max: 999_999_999 }), fc.integer({ min: 0, max: 9 }), (whole, frac, places) => {
    const f = String(frac).padStart(9, '0').slice(0, places);
    const text = places ? `${whole}.${f}s` : `${whole}s`;
    const want = BigInt(whole) * 1_000_000_000n + BigInt(f.padEnd(9, '0'));
    return BigInt(secondsToNanos(parseDuration(text)!)) === want;
  }), { numRuns: 20_000 });
  t.is(secondsToNanos(parseDuration('300ms')!), 300_000_000);
  t.is(secondsToNanos(parseDuration('0.3s')!), 300_000_000);
  t.is(4.1 * 1e9 === 4_100_000_000, false, 'the product alone is not the integer');
  t.is(secondsToNanos(parseDuration('4.1s')!), 4_100_000_000);
});

test('microsAfter prints (sec, nsec) + ns to the nearest microsecond exactly, carries included, where the sum as a double does not', (t) => {
  fc.assert(fc.property(sec, fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: -9e15, max: 9e15 }), (s, n, ns) => {
    const total = BigInt(s) * 1_000_000_000n + BigInt(n) + BigInt(ns);
    const us = (total + 500n) / 1000n - (total + 500n < 0n && (total + 500n) % 1000n !== 0n ? 1n : 0n); // floor((total + 500) / 1000)
    const whole = us / 1_000_000n - (us < 0n && us % 1_000_000n !== 0n ? 1n : 0n);
    const frac = us - whole * 1_000_000n;
    return microsAfter(s, n, ns) === `${whole}.${frac.toString().padStart(6, '0')}`;
  }), { numRuns: 20_000 });
  t.is(microsAfter(1_700_000_000, 999_999_600, 0), '1700000001.000000');
  t.is(microsAfter(1_700_000_000, 0, 2_300_000_000), '1700000002.300000');
  t.is(microsAfter(1_700_000_000, 0, -1), '1700000000.000000', 'a nanosecond before rounds to the same microsecond');
  t.is(microsAfter(1_700_000_000, 0, -600), '1699999999.999999');
  t.not((1_700_000_000 + 0.1234565).toFixed(6), microsAfter(1_700_000_000, 123_456_500, 0), 'the double rounds the other way');
});

test('a connection spans its earliest frame to its latest, as tshark\'s conversations do, when the capture\'s clock goes back (its first frame need not be the earliest; the duration is never negative)', async (t) => {
  // seconds after 1,700,000,000 of each frame: the fourth goes back before the first, the last further
  const at = [100, 101, 102, 99, 103, 104, 105, 106, 107, 98];
  const file = join(tmp(t), 'back.pcap');
  writeFileSync(file, pcapFile(conversation('10.0.0.1', '10.0.0.2').map((data, i) => ({ data, tsSec: 1_700_000_000 + at[i]!, tsFrac: 250_000 }))));
  const r = await cli(['replay', file, '--json', '-q']);
  t.is(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  t.like(j.connections[0], { start: 1_700_000_098.25, duration: 9 });
  t.like(j, { start: 1_700_000_098.25, duration: 9 }, 'as the run\'s own span');
  if (HAS_TSHARK) {
    const row = execFileSync('tshark', ['-r', file, '-q', '-z', 'conv,tcp'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n').find((l) => l.includes('<->'))!;
    const cols = row.trim().split(/\s+/);
    t.is(Number(cols.at(-1)), 9, `tshark's duration: ${row}`);
    t.is(Number(cols.at(-2)), -2, 'tshark\'s relative start: 2 s before the first frame');
  }
});

test('a timestamp fraction of a second or more (a pcap record\'s microseconds past 999,999; a nanosecond one\'s past 999,999,999) is noted as frame.tsfrac and carried into its seconds', async (t) => {
  const frames = conversation('10.0.0.1', '10.0.0.2');
  for (const nanos of [false, true]) {
    // the first frame's fraction: 8,915,240 µs (tcpflow's bug8.pcap has that one), or 1.5e9 ns; the rest in order from 1,700,000,011 s
    const frac = nanos ? 1.5 : 8.91524;
    const recs = frames.map((data, i) => ({ data, tsSec: 1_700_000_000 + (i === 0 ? 0 : 10 + i), tsFrac: i === 0 ? (nanos ? 1_500_000_000 : 8_915_240) : 0 }));
    const file = join(tmp(t), `frac-${nanos}.pcap`);
    writeFileSync(file, pcapFile(recs, { nanos }));
    const r = await cli(['replay', file, '--json', '-q']);
    t.is(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    t.deepEqual(j.notes, { 'frame.tsfrac': 1 }, nanos ? 'ns' : 'µs');
    t.like(j.connections[0], { start: 1_700_000_000 + frac, duration: Number((19 - frac).toFixed(9)) });
  }
});
