import test from 'ava';
import fc from 'fast-check';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from '../bench/gen.js';
import { readCaptures } from '../../core/capture/reader.js';
import { connJson, JsonBuf } from '../../core/json-buf.js';
import { connRow, formatConnRow, thousands } from '../../core/report.js';
import { CaptureSession } from '../../core/capture/session.js';
import { runPipeline } from '../../core/pipeline.js';
import { DrainApp } from '../../core/socket/reader.js';
import { Stack } from '../../core/stack.js';
import type { ConnSummary, DirSummary } from '../../core/tcp/summary.js';
import { CORPUS, corpus, fixture, HAS_CORPUS } from '../helpers/paths.js';
import { when } from '../helpers/skip.js';

/** connJson for each summary, all in one JsonBuf, joined as replay --json joins them. */
function written(list: readonly ConnSummary[]): string {
  const j = new JsonBuf();
  list.forEach((c, i) => {
    if (i) j.raw(',');
    connJson(j, c);
  });
  return Buffer.concat(j.take()).toString('utf8');
}

const text = fc.oneof(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary' }), fc.constantFrom('10.0.0.1:80', '[2001:db8::1]:443', 'a"b\\c\u0001\u007f\u00e9'));
const num = fc.oneof(fc.nat(), fc.integer(), fc.double(), fc.constantFrom(0, -0, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 53, 1_700_000_000.000_01, Number.NaN, Infinity));
const dir: fc.Arbitrary<DirSummary> = fc.record({
  src: text, dst: text, bytes: num,
  gaps: fc.array(fc.oneof(fc.tuple(num, num), fc.tuple(num, num, fc.constant('snaplen' as const))), { maxLength: 3 }),
  segments: num, retransmitted: num, outOfOrder: num, overlapBytes: num, overlapConflicts: num,
}).chain((d) => fc.option(fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 }), { nil: undefined })
  .map((h) => (h === undefined ? d : { ...d, sha256: h })));
const conn: fc.Arbitrary<ConnSummary> = fc.record({
  stream: num, client: text, server: text, net: fc.option(text, { nil: undefined }), state: text,
  states: fc.record({ client: fc.constantFrom('CLOSED', 'ESTABLISHED', 'TIME_WAIT'), server: fc.constantFrom('LISTEN', 'CLOSE_WAIT') }),
  clientGuessed: fc.boolean(), frames: num, start: num, duration: num, c2s: dir, s2c: dir,
}).map(({ net, stream, client, server, ...rest }) => (net === undefined ? { stream, client, server, ...rest } : { stream, client, server, net, ...rest }));

test('connJson writes JSON.stringify\'s bytes for any summary (strings needing escapes, non-ASCII, floats, NaN, large and negative numbers), across buffer boundaries', (t) => {
  fc.assert(fc.property(fc.array(conn, { maxLength: 20 }), (list) => written(list) === list.map((c) => JSON.stringify(c)).join(',')), { numRuns: 500 });
  // over 1 MiB: the text spans several buffers
  const big = fc.sample(conn, { numRuns: 4000, seed: 7 });
  const want = big.map((c) => JSON.stringify(c)).join(',');
  t.true(Buffer.byteLength(want) > 2 << 20);
  t.is(written(big), want);
});

/** The summaries a replay of `file` reports (with hashes, so sha256 keys appear). */
async function summaries(file: string): Promise<ConnSummary[]> {
  const stack = new Stack(new CaptureSession(), { app: new DrainApp(true) });
  await runPipeline([{ name: file }], stack);
  return stack.finished;
}

test('connJson over real summaries equals JSON.stringify (a key added to connSummary and not to connJson fails here)', async (t) => {
  const list = [...await summaries(fixture('tcp/three-http-streams.pcap')), ...await summaries(fixture('tcp/smtp.pcap')), ...await summaries(fixture('link/qinqinq.pcap'))];
  t.true(list.length >= 4);
  t.deepEqual(list.filter((c) => c.net !== undefined).map((c) => c.net), ['vlan 30.20.10'], 'the QinQinQ connection names its VLAN stack, outermost first (as tshark lists vlan.id)');
  t.is(written(list), list.map((c) => JSON.stringify(c)).join(','));
});

when(HAS_CORPUS, 'needs ../shared/corpus')('connJson equals JSON.stringify for every connection of every corpus capture (IPv6, gaps, resets, midstream)', async (t) => {
  let n = 0;
  for (const f of readdirSync(CORPUS).filter((x) => /\.(pcap|pcapng|cap)(\.gz)?$/.test(x))) {
    const list = await summaries(corpus(f));
    t.is(written(list), list.map((c) => JSON.stringify(c)).join(','), f);
    n += list.length;
  }
  t.true(n > 1000, `${n} connections`);
});

/** The table's row as the template-literal formatter wrote it before connRow (the reference layout). */
function referenceRow(c: ConnSummary): string {
  const num = thousands;
  const row = `${String(c.stream).padEnd(6)}  ${(c.client + (c.clientGuessed ? '?' : '')).padEnd(22)}  ${c.server.padEnd(22)}  ${c.state.padEnd(11)}  ${num(c.c2s.bytes).padStart(13)}  ${num(c.s2c.bytes).padStart(13)}  ${num(c.c2s.retransmitted + c.s2c.retransmitted).padStart(9)}  ${num(c.c2s.outOfOrder + c.s2c.outOfOrder).padStart(6)}  ${num(c.c2s.overlapBytes + c.s2c.overlapBytes).padStart(8)}  ${String(c.c2s.gaps.length + c.s2c.gaps.length).padStart(4)}  ${c.duration.toFixed(3)}s${c.net === undefined ? '' : `  ${c.net}`}`;
  return c.c2s.sha256 ? `${row}\n        sha256 c2s ${c.c2s.sha256}\n        sha256 s2c ${c.s2c.sha256}` : row;
}

/** connRow for each summary, in one buffer. */
function rows(list: readonly ConnSummary[]): string {
  const j = new JsonBuf();
  for (const c of list) connRow(j, c);
  return Buffer.concat(j.take()).toString('utf8');
}

test('connRow writes the reference row (and hash lines), and formatConnRow the same without its newline, for any summary with ASCII names: padding, thousands separators, wide and negative numbers', (t) => {
  const ascii = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 30 });
  const n = fc.oneof(fc.nat(), fc.nat({ max: 999_999_999_999 }), fc.integer({ min: -5000, max: 5000 }), fc.constantFrom(0, 999, 1000, 2 ** 31 - 1, 2 ** 31, 2 ** 53 - 1));
  const d = fc.record({ src: ascii, dst: ascii, bytes: n, gaps: fc.array(fc.oneof(fc.tuple(fc.nat(), fc.nat()), fc.tuple(fc.nat(), fc.nat(), fc.constant('snaplen' as const))), { maxLength: 12 }), segments: n, retransmitted: n, outOfOrder: n, overlapBytes: n, overlapConflicts: n });
  const row = fc.record({
    stream: n, client: ascii, server: ascii, state: ascii, states: fc.constant({ client: 'CLOSED' as const, server: 'CLOSED' as const }),
    clientGuessed: fc.boolean(), frames: n, start: fc.double(), duration: fc.double({ min: 0, max: 1e7, noNaN: true }), c2s: d, s2c: d,
    hash: fc.boolean(), net: fc.option(ascii, { nil: undefined }),
  }).map(({ hash, net, stream, client, server, ...rest }): ConnSummary => {
    // a network name, when there is one, comes right after the server (connSummary's key order)
    const s: ConnSummary = net === undefined ? { stream, client, server, ...rest } : { stream, client, server, net, ...rest };
    return hash ? { ...s, c2s: { ...s.c2s, sha256: 'a'.repeat(64) }, s2c: { ...s.s2c, sha256: 'b'.repeat(64) } } : s;
  });
  fc.assert(fc.property(fc.array(row, { maxLength: 10 }), (list) => rows(list) === list.map((c) => `${referenceRow(c)}\n`).join('') && list.every((c) => formatConnRow(c) === referenceRow(c))), { numRuns: 1000 });
  t.pass();
});

when(HAS_CORPUS, 'needs ../shared/corpus')('connRow equals the reference row for every connection of every corpus capture', async (t) => {
  for (const f of readdirSync(CORPUS).filter((x) => /\.(pcap|pcapng|cap)(\.gz)?$/.test(x))) {
    const list = await summaries(corpus(f));
    t.is(rows(list), list.map((c) => `${referenceRow(c)}\n`).join(''), f);
  }
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
