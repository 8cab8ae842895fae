import test from 'ava';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from '../bench/gen.js';
import { readCaptures } from '../../core/capture/reader.js';
import { gapsJson, JsonBuf, lit } from '../../core/json-buf.js';
import { endpointString, ip4Endpoint } from '../../core/net/in-pcb.js';
import { thousands } from '../../core/report.js';
import { CaptureSession } from '../../core/capture/session.js';
import { DrainApp } from '../../core/socket/reader.js';
import { Stack } from '../../core/stack.js';

/** What `write` put into a JsonBuf, as text. */
function out(write: (j: JsonBuf) => void): string {
  const j = new JsonBuf();
  write(j);
  return Buffer.concat(j.take()).toString('utf8');
}

const text = fc.oneof(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary' }), fc.constantFrom('10.0.0.1:80', '[2001:db8::1]:443', 'a"b\\c\u0001\u007f\u00e9'));
/** Whole numbers of nanoseconds as seconds (n / 1e9, what spanSeconds makes), of every size num's digits path takes and around it. */
const nanos = fc.oneof(fc.integer({ min: -(10 ** 15), max: 10 ** 15 }), fc.integer({ min: -2000, max: 2000 }), fc.integer({ min: 10 ** 15 - 2000, max: 10 ** 15 + 2000 }), fc.nat({ max: 9_000_000 }).map((s) => s * 1e9)).map((n) => n / 1e9);
const num = fc.oneof(fc.nat(), fc.integer(), fc.double(), nanos, fc.constantFrom(0, -0, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 53, 1_700_000_000.000_01, 1e-6, 1e-7, 0.1 + 0.2, 999_999.999_999_999, 1e6, Number.NaN, Infinity));

test('str and num write JSON.stringify\'s bytes for any string and number (escapes, non-ASCII, floats, NaN, large and negative), across buffer boundaries', (t) => {
  const item = fc.oneof(text.map((s) => ({ s })), num.map((n) => ({ n })));
  const put = (j: JsonBuf, list: ReadonlyArray<{ s?: string; n?: number }>) => list.forEach((x, i) => {
    if (i) j.raw(',');
    if (x.s !== undefined) j.str(x.s);
    else j.num(x.n!);
  });
  const want = (list: ReadonlyArray<{ s?: string; n?: number }>) => list.map((x) => JSON.stringify(x.s ?? x.n)).join(',');
  fc.assert(fc.property(fc.array(item, { maxLength: 40 }), (list) => out((j) => put(j, list)) === want(list)), { numRuns: 1000 });
  // over 1 MiB: the text spans several buffers
  const big = fc.sample(item, { numRuns: 200_000, seed: 7 });
  t.true(Buffer.byteLength(want(big)) > 2 << 20);
  t.is(out((j) => put(j, big)), want(big));
});

test('num writes a whole number of nanoseconds as seconds (a duration) by its digits, and they are JSON.stringify\'s: every size, both signs, every count of digits after the point', (t) => {
  fc.assert(fc.property(fc.array(nanos, { maxLength: 50 }), (list) => out((j) => list.forEach((x) => {
    j.num(x);
    j.raw(' ');
  })) === list.map((x) => `${JSON.stringify(x)} `).join('')), { numRuns: 2000 });
  // each count of digits after the point, and the bounds of the digits path (10^-6 up to 10^6, exclusive)
  for (let k = 0; k <= 9; k++) for (const w of [0, 1, 999_999]) for (const sign of [1, -1]) {
    const x = (sign * (w * 1e9 + 10 ** (9 - k) * (k === 0 ? 0 : 7))) / 1e9;
    t.is(out((j) => j.num(x)), JSON.stringify(x), String(x));
  }
});

test('thousandsPad, numPad and pad write what thousands(), padStart and padEnd make; mark and padEnd pad what was written since the mark, in a buffer that fills up', (t) => {
  const n = fc.oneof(fc.nat(), fc.nat({ max: 999_999_999_999 }), fc.integer({ min: -5000, max: 5000 }), fc.constantFrom(0, 999, 1000, 2 ** 31 - 1, 2 ** 31, 2 ** 53 - 1), fc.double({ noNaN: true, noDefaultInfinity: true }));
  const ascii = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 30 });
  const w = fc.integer({ min: 0, max: 24 });
  fc.assert(fc.property(fc.array(fc.tuple(n, ascii, w), { maxLength: 30 }), fc.nat({ max: (1 << 20) - 1 }), (list, fill) => {
    const got = out((j) => {
      j.raw('.'.repeat(fill)); // the next writes start anywhere in the buffer, and cross into the next
      for (const [x, s, k] of list) {
        j.thousandsPad(x, k);
        j.numPad(x, k);
        j.pad(s, k, false);
        j.pad(s, k, true);
        const at = j.mark(64);
        j.num(Number.isInteger(x) ? x : 1);
        j.raw(s.slice(0, 8));
        j.padEnd(at, k);
        j.raw('|');
      }
    });
    return got === '.'.repeat(fill) + list.map(([x, s, k]) => `${thousands(x).padStart(k)}${String(x).padStart(k)}${s.padEnd(k)}${s.padStart(k)}${(JSON.stringify(Number.isInteger(x) ? x : 1) + s.slice(0, 8)).padEnd(k)}|`).join('');
  }), { numRuns: 300 });
  t.pass();
});

test('endpoint4 writes what ip4Endpoint and endpointString make, for any address and port', (t) => {
  fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.integer({ min: 0, max: 65535 })), { maxLength: 20 }), (list) => {
    const got = out((j) => list.forEach(([w, p]) => {
      j.endpoint4(w, p);
      j.raw(' ');
    }));
    const want = list.map(([w, p]) => `${endpointString(new Uint8Array([w >>> 24, w >>> 16, w >>> 8, w]), p)} `).join('');
    return got === want && list.every(([w, p]) => ip4Endpoint(w, p) === endpointString(new Uint8Array([w >>> 24, w >>> 16, w >>> 8, w]), p));
  }), { numRuns: 500 });
  t.is(out((j) => j.endpoint4(-1, 65535)), '255.255.255.255:65535');
  t.is(out((j) => j.endpoint4(0, 0)), '0.0.0.0:0');
});

test('lit writes its bytes (four at a time, the rest one by one) at any position, across buffer boundaries', (t) => {
  const ascii = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 40 });
  fc.assert(fc.property(fc.array(ascii, { maxLength: 30 }), fc.nat({ max: (1 << 20) - 1 }), (list, fill) => {
    const lits = list.map(lit);
    return out((j) => {
      j.raw('.'.repeat(fill));
      for (const l of lits) j.lit(l);
    }) === '.'.repeat(fill) + list.join('');
  }), { numRuns: 300 });
  t.pass();
});

test('gapsJson writes a report\'s gap entries and a Tcpcb\'s gaps (1 for snaplen) as JSON.stringify writes the entries', (t) => {
  const g = fc.array(fc.tuple(fc.nat(), fc.nat(), fc.boolean()), { maxLength: 6 });
  fc.assert(fc.property(g, (list) => {
    const entries = list.map(([a, l, cut]) => (cut ? [a, l, 'snaplen' as const] : [a, l]) as [number, number] | [number, number, 'snaplen']);
    const raw = list.map(([a, l, cut]) => (cut ? [a, l, 1] : [a, l]) as unknown as readonly [number, number, 1?]);
    const want = JSON.stringify(entries);
    return out((j) => gapsJson(j, entries)) === want && out((j) => gapsJson(j, raw)) === want;
  }), { numRuns: 300 });
  t.pass();
});

test('buffers are filled again once written() says their text is out: 20 MiB through take() and written() takes two buffers, not twenty, and every byte comes out as written', (t) => {
  const j = new JsonBuf();
  const buffers = new Set<ArrayBufferLike>();
  const out: Buffer[] = [];
  const line = 'x'.repeat(999) + '\n';
  for (let i = 0; i < 20 * 1024; i++) {
    j.raw(line);
    if (i % 100 === 99) {
      for (const b of j.take()) {
        buffers.add(b.buffer);
        out.push(Buffer.from(b)); // the copy a write would have sent
      }
      j.written();
    }
  }
  for (const b of j.take()) out.push(Buffer.from(b));
  t.true(buffers.size <= 2, `${buffers.size} buffers`);
  const all = Buffer.concat(out).toString('latin1');
  t.is(all.length, 20 * 1024 * 1000);
  t.is(all, line.repeat(20 * 1024));
});

test('text handed out by take() and not yet written() is never filled again (a write still in flight keeps its bytes)', (t) => {
  const j = new JsonBuf();
  const kept: Array<[Buffer, string]> = [];
  for (let i = 0; i < 3000; i++) {
    j.raw(`${String(i).padStart(999, '.')}\n`);
    if (i % 50 === 49) {
      const parts = j.take();
      // every other batch is still being written when the next is made; the others are out
      if (i % 100 === 49) for (const b of parts) kept.push([b, b.toString('latin1')]);
      else j.written();
      if (i % 100 === 49) {
        // later text must not land on what is in flight
        for (let k = 0; k < 1500; k++) j.raw(`${'#'.repeat(999)}\n`);
        for (const [b, was] of kept.splice(0)) t.is(b.toString('latin1'), was);
        j.take();
      }
    }
  }
});

test('written(n) frees only what the first n take() calls handed out: text of a later take, still being written, is never filled again', (t) => {
  const j = new JsonBuf();
  const line = (c: string) => `${c.repeat(999)}\n`;
  const batch = (c: string) => {
    for (let i = 0; i < 3000; i++) j.raw(line(c));
    const parts = j.take();
    return { parts, take: j.takes, text: parts.map((b) => b.toString('latin1')) };
  };
  const a = batch('a');
  const b = batch('b');
  j.written(a.take); // a's write finished; b's is still in flight
  const c = batch('c');
  t.deepEqual(b.parts.map((x) => x.toString('latin1')), b.text, 'b is untouched by c');
  t.true(c.parts.some((x) => a.parts.some((y) => y.buffer === x.buffer)), 'c was written into a buffer a had used');
  t.is(c.parts.map((x) => x.toString('latin1')).join(''), line('c').repeat(3000));
  j.written(c.take);
  const d = batch('d');
  t.is(d.parts.map((x) => x.toString('latin1')).join(''), line('d').repeat(3000));
  t.true(d.parts.some((x) => b.parts.some((y) => y.buffer === x.buffer)), 'written(n) freed b\'s buffers with c\'s');
});

test('Stack.finish(n) retires the connections still open in slices, oldest first, and reports the same connections as finish() at once', async (t) => {
  // 300 flows cut off in the middle: every connection is still open at the end of the input
  const dir = mkdtempSync(join(tmpdir(), 'sockcap-finish-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'open.pcap');
  await generate({ path, bytes: 300_000, flows: 300, perFlow: 4000 });
  const run = async (slice: number) => {
    const seen: number[][] = [];
    let cur: number[] = [];
    const stack = new Stack(new CaptureSession(), { app: new DrainApp(false), onConnection: (c) => cur.push(c.stream) });
    for await (const b of readCaptures([{ name: path }], stack.session)) stack.input(b);
    t.true(stack.pcbs.size > 250, `${stack.pcbs.size} open at the end`);
    cur = [];
    let calls = 0;
    for (let done = false; !done; calls++) {
      done = stack.finish(slice);
      seen.push(cur);
      cur = [];
    }
    t.is(stack.pcbs.size, 0);
    return { seen, calls };
  };
  const whole = await run(Infinity);
  const sliced = await run(64);
  t.is(whole.calls, 1);
  t.true(sliced.seen.slice(0, -1).every((s) => s.length === 64));
  t.true(sliced.calls >= 5);
  const all = sliced.seen.flat();
  t.deepEqual(all, [...all].sort((a, b) => a - b), 'oldest first');
  t.deepEqual([...all].sort((a, b) => a - b), [...whole.seen.flat()].sort((a, b) => a - b));
});
