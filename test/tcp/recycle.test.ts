import test from 'ava';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from '../bench/gen.js';
import { readCaptures } from '../../core/capture/reader.js';
import { CaptureSession } from '../../core/capture/session.js';
import { ChunkZone } from '../../core/capture/zone.js';
import { Follower } from '../../core/follow.js';
import { Connection } from '../../core/net/in-pcb.js';
import { DrainApp, type SocketApp } from '../../core/socket/reader.js';
import { Stack, type StackOptions } from '../../core/stack.js';
import type { ConnSummary } from '../../core/tcp/summary.js';
import { TcpFuse } from '../../core/tcp/tcp-fuse.js';
import { parseSelector } from '../../core/selector.js';
import { CORPUS, HAS_CORPUS, fixture } from '../helpers/paths.js';

/**
 * Connections that leave the table go back to a free list and are made new for later connections
 * (BSD: pcbs from a uma zone). What a recycled connection starts from must be what a new one
 * starts from, and what the stack reports must not depend on whether objects were reused.
 */

const dir = mkdtempSync(join(tmpdir(), 'sockcap-recycle-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** 300 flows at a time, in rounds (each round's connections close before the next opens), with reordering and duplicates. */
let capture: Promise<string> | null = null;
function rounds(): Promise<string> {
  return (capture ??= (async () => {
    const path = join(dir, 'rounds.pcap');
    await generate({ path, bytes: 2.5e6, flows: 300, perFlow: 1500 });
    return path;
  })());
}

async function run(file: string, opts: StackOptions): Promise<{ stack: Stack; summaries: ConnSummary[]; error: string | null }> {
  const session = new CaptureSession();
  session.zone = new ChunkZone(1 << 16);
  const summaries: ConnSummary[] = [];
  const stack = new Stack(session, { onConnection: (s) => summaries.push(s), ...opts });
  let error: string | null = null;
  try {
    for await (const b of readCaptures([{ name: file }], session)) stack.input(b);
  } catch (e) {
    // the corpus has broken files on purpose: what was read before the error still counts
    error = (e as Error).message;
  }
  stack.finish();
  return { stack, summaries, error };
}

/** Every field of a connection and of the objects it owns, as plain values (functions by name). */
function snap(x: unknown, depth = 0): unknown {
  if (x === null || typeof x !== 'object') return typeof x === 'function' ? `fn ${x.name}` : x;
  if (depth > 4) return '…';
  if (Array.isArray(x)) return x.map((v) => snap(v, depth + 1));
  const out: Record<string, unknown> = { ctor: x.constructor?.name };
  for (const [k, v] of Object.entries(x)) out[k] = snap(v, depth + 1);
  return out;
}

function addressBytes(w: readonly number[]): Uint8Array {
  const b = new Uint8Array(w.length * 4);
  const dv = new DataView(b.buffer);
  w.forEach((x, i) => dv.setUint32(4 * i, x));
  return b;
}

test('a recycled connection starts out field for field like a new one', async (t) => {
  const file = await rounds();
  const seen = new WeakSet<Connection>();
  let reused = 0;
  const mismatches: string[] = [];
  const reader = new DrainApp(false);
  // looks at each connection as it is attached, before anything reads it
  const app: SocketApp = {
    recycles: true,
    attach(c) {
      if (seen.has(c)) {
        reused++;
        const fresh = new Connection(c.stream, addressBytes([...c.cw, ...c.sw]), 0, c.cPort, c.alen, c.sPort, c.alen, c.vlan);
        // what create() sets after making it
        fresh.guessed = c.guessed;
        const t0 = c as unknown as Record<'t0s' | 't0n', number>; // the test compares private fields too
        fresh.began(t0.t0s, t0.t0n);
        fresh.key = c.key;
        fresh.slot = c.slot;
        const a = JSON.stringify(snap(c));
        const b = JSON.stringify(snap(fresh));
        if (a !== b && mismatches.length < 3) mismatches.push(`stream ${c.stream}:\n${a}\n${b}`);
      }
      seen.add(c);
      reader.attach(c);
    },
    detach(c) {
      c.server.so.upcall = null;
      c.client.so.upcall = null;
    },
  };
  const { stack } = await run(file, { app });
  t.true(reused > 100, `${reused} connections reused`);
  t.is(stack.connsReused, reused);
  t.deepEqual(mismatches, []);
});

test('summaries and hashes are the same with and without recycling (generated rounds and every fixture)', async (t) => {
  const caps = (d: string) => readdirSync(d).filter((f) => /\.pcap(ng)?(\.gz)?$/.test(f)).map((f) => join(d, f));
  // the corpus, when it is beside the repository, adds real captures (resets, gaps, midstream starts)
  const files = [await rounds(), ...caps(fixture('tcp')), ...(HAS_CORPUS ? caps(CORPUS) : [])];
  t.log(`${files.length} captures${HAS_CORPUS ? '' : ' (no corpus beside the repository: generated and fixtures only)'}`);
  let reusedTotal = 0;
  for (const f of files) {
    const on = await run(f, { app: new DrainApp(true) });
    const off = await run(f, { app: new DrainApp(true), recycle: false });
    t.is(off.stack.connsReused, 0);
    reusedTotal += on.stack.connsReused;
    t.deepEqual(on.summaries, off.summaries, f);
    t.deepEqual(on.stack.tcpstat, off.stack.tcpstat, f);
    t.is(on.error, off.error, f);
  }
  t.true(reusedTotal > 100, `${reusedTotal} reused over ${files.length} captures`);
});

test('drained payload Mbufs make later payloads: the same summaries and counters as without, none still in a chain (checked after every batch), none when a reader looks at the bytes', async (t) => {
  const caps = (d: string) => readdirSync(d).filter((f) => /\.pcap(ng)?(\.gz)?$/.test(f)).map((f) => join(d, f));
  const files = [await rounds(), ...caps(fixture('tcp')), ...(HAS_CORPUS ? caps(CORPUS) : [])];
  let reused = 0;
  for (const f of files) {
    // debug: Stack.check() after every batch, which throws if a spare Mbuf is in any chain
    const on = await run(f, { app: new DrainApp(false), debug: true });
    const off = await run(f, { app: new DrainApp(false), recycle: false });
    t.is(off.stack.mbufsReused, 0, f);
    reused += on.stack.mbufsReused;
    t.deepEqual(on.summaries, off.summaries, f);
    t.deepEqual(on.stack.tcpstat, off.stack.tcpstat, f);
    t.is(on.error, off.error, f);
  }
  // the generated rounds and the fixtures alone make ~3,000 (the corpus, when beside the repository, ~60,000 more)
  t.true(reused > 1_000, `${reused} payload Mbufs made of spare ones over ${files.length} captures`);
  // a hashing reader reads through soreceive_stream: its Mbufs are not given back
  t.is((await run(await rounds(), { app: new DrainApp(true) })).stack.mbufsReused, 0);
});

test('no recycling when the app may keep connections, when a hook runs, or when data is left in a socket', async (t) => {
  const file = await rounds();
  // an app that does not say it lets go of connections
  const drain = new DrainApp(false);
  const keeps: SocketApp = { attach: (c) => drain.attach(c), detach: () => {} };
  t.is((await run(file, { app: keeps })).stack.connsReused, 0);
  // a hook (fusing) sees connections too
  t.is((await run(file, { app: new DrainApp(false), hooks: [new TcpFuse()] })).stack.connsReused, 0);
  // says it lets go, but never reads: every connection leaves with bytes in its buffers, which pin capture memory
  const idle: SocketApp = { recycles: true, attach: () => {}, detach: () => {} };
  const r = await run(file, { app: idle });
  t.is(r.stack.connsReused, 0);
  t.true(r.summaries.length > 600);
  // and the default reader does recycle here
  t.true((await run(file, { app: new DrainApp(false) })).stack.connsReused > 100);
});

test('follow keeps to its stream when that connection object is later reused for another', async (t) => {
  const file = await rounds();
  const out: string[] = [];
  const follower = new Follower(parseSelector('5'), 'raw', null, (s) => out.push(s as string));
  const { stack, summaries } = await run(file, { app: new DrainApp(false, 1 << 20, follower.sink) });
  t.true(stack.connsReused > 100);
  t.is(follower.followed, 5);
  const s5 = summaries.find((s) => s.stream === 5)!;
  // the header, then exactly the bytes of stream 5 in both directions
  const hexDigits = out.slice(1).reduce((n, line) => n + line.trim().length, 0);
  t.is(hexDigits / 2, s5.c2s.bytes + s5.s2c.bytes);
  t.true(s5.c2s.bytes > 0 && s5.s2c.bytes > 0);
});
