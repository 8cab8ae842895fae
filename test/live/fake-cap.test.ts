import test from 'ava';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { readAll } from '../helpers/read.js';
import { cli, tmp } from '../helpers/cli.js';
import { fakeCap } from '../helpers/fake-cap.js';
import { holesCapture, rawBytes } from '../helpers/follow.js';
import { CLI, fixture } from '../helpers/paths.js';

/*
 * live's path from the binding on (copy out of the reused buffer, stamp, queue, batches, report),
 * driven by a stand-in binding that delivers a capture's frames: these run without root, where
 * test/live/live.test.ts captures real loopback traffic.
 */

const env = (dir: string, pcap: string) => ({ SOCKCAP_CAP_MODULE: fakeCap(dir), FAKE_CAP_PCAP: pcap });

test('live --follow on frames that lost two segments: each direction holds the bytes follow prints for the same frames, with the markers (--gaps marker) or without (--gaps skip)', async (t) => {
  const dir = tmp(t);
  const cap = holesCapture(t, false);
  for (const gaps of ['marker', 'skip']) {
    const file = await cli(['follow', cap, '-z', '0', '--format', 'raw', '--gaps', gaps]);
    t.is(file.code, 0, file.stderr);
    const live = await cli(['live', '-i', 'fake0', '-q', '-c', '7', '--follow', '0', '--format', 'raw', '--gaps', gaps], undefined, env(dir, cap));
    t.is(live.code, 0, live.stderr);
    const a = rawBytes(live.stdout);
    const b = rawBytes(file.stdout);
    t.true(a.c2s.equals(b.c2s), `${gaps}: c2s ${a.c2s.toString('latin1')}`);
    t.true(a.s2c.equals(b.s2c), `${gaps}: s2c`);
    t.is(a.c2s.toString('latin1'), gaps === 'marker' ? 'abc[4 bytes missing in capture file]\0xyz[13 bytes missing in capture file]\0RR' : 'abcxyzRR');
    t.regex(live.stderr, /^live: 7 packets received, 0 dropped/m);
  }
  // --format bytes: the bytes themselves, the same as follow writes from the file, zeros at the holes with --gaps zero
  for (const gaps of [[], ['--gaps', 'zero']]) {
    const file = await cli(['follow', cap, '-z', '0:c2s', '--format', 'bytes', ...gaps]);
    const live = await cli(['live', '-i', 'fake0', '-q', '-c', '7', '--follow', '0:c2s', '--format', 'bytes', ...gaps], undefined, env(dir, cap));
    t.is(live.code, 0, live.stderr);
    t.is(live.stdout, file.stdout);
    t.is(live.stdout, gaps.length ? `abc${'\0'.repeat(4)}xyz${'\0'.repeat(13)}RR` : 'abcxyzRR');
  }
});

test('live --follow --format yaml: the chunks, peers and frame numbers follow prints for the same frames, stamped with live\'s clock (the time each packet was taken)', async (t) => {
  const pcap = fixture('tcp/smtp.pcap');
  const chunks = (y: string) => [...y.matchAll(/- packet: (\d+)\n {4}peer: ([01])\n {4}timestamp: (\S+)\n {4}data: !!binary \|\n((?: {6}\S+\n)+)/g)]
    .map((m) => ({ packet: Number(m[1]), peer: Number(m[2]), time: Number(m[3]), data: m[4]!.replace(/\s+/g, '') }));
  const file = await cli(['follow', pcap, '-z', '0', '--format', 'yaml']);
  t.is(file.code, 0, file.stderr);
  const t0 = Date.now() / 1000;
  const live = await cli(['live', '-i', 'fake0', '-q', '-c', '60', '--follow', '0', '--format', 'yaml'], undefined, env(tmp(t), pcap));
  const t1 = Date.now() / 1000;
  t.is(live.code, 0, live.stderr);
  t.is(live.stdout.slice(0, live.stdout.indexOf('packets:')), file.stdout.slice(0, file.stdout.indexOf('packets:')), 'the same peers');
  const a = chunks(live.stdout);
  const b = chunks(file.stdout);
  t.true(b.length > 20);
  t.deepEqual(a.map((c) => [c.packet, c.peer, c.data]), b.map((c) => [c.packet, c.peer, c.data]), 'the same chunks at the same frame numbers');
  t.true(a.every((c) => c.time >= t0 - 1 && c.time <= t1 + 1), 'stamped when taken, not with the file\'s times');
  t.true(b.every((c) => c.time < 1.3e9), 'the file\'s own times are 2009\'s');
});

test('live with a queue too short for the binding\'s bursts: the frames it could not take are counted as dropped, the rest reach the stack, and the report adds up', async (t) => {
  // the stand-in hands over 3 frames per turn of the event loop; a queue of 2 takes 2 of them
  const r = await cli(['live', '-i', 'fake0', '-q', '--duration', '1s', '--queue', '2', '--json'], undefined, env(tmp(t), fixture('tcp/smtp.pcap')));
  t.is(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { frames: number; live: { received: number; dropped: number; maxQueued: number } };
  t.is(j.live.received, 60);
  t.true(j.live.dropped >= 20, `at least the third frame of each burst of 3 (dropped ${j.live.dropped})`);
  t.is(j.live.maxQueued, 2);
  t.is(j.frames, j.live.received - j.live.dropped, 'every frame received is either in the pipeline\'s count or a counted drop');
});

test('live over the stand-in binding reports what replay reports for the same frames (connections, bytes, TCP counters)', async (t) => {
  const pcap = fixture('tcp/three-http-streams.pcap');
  const replay = await cli(['replay', pcap, '--json']);
  t.is(replay.code, 0, replay.stderr);
  const frames = (JSON.parse(replay.stdout) as { frames: number }).frames;
  const live = await cli(['live', '-i', 'fake0', '-q', '-c', String(frames), '--json'], undefined, env(tmp(t), pcap));
  t.is(live.code, 0, live.stderr);
  type Conn = { stream: number; client: string; server: string; c2s: { bytes: number }; s2c: { bytes: number } };
  type Rep = { frames: number; bytes: number; protocols: unknown; tcpstat: unknown; connections: Conn[] };
  const a = JSON.parse(live.stdout) as Rep;
  const b = JSON.parse(replay.stdout) as Rep;
  t.is(a.frames, b.frames);
  t.is(a.bytes, b.bytes);
  t.deepEqual(a.protocols, b.protocols);
  t.deepEqual(a.tcpstat, b.tcpstat);
  const conns = (r: Rep) => r.connections.map((c) => [c.stream, c.client, c.server, c.c2s.bytes, c.s2c.bytes]);
  t.deepEqual(conns(a), conns(b));
  t.is(a.connections.length, 3);
});

for (const gone of [false, true]) test(`live stopped by SIGTERM while the binding is still open${gone ? ', its handle gone (an interface that went away: nothing else holds the event loop)' : ''}: exit 0, the report, and an output capture that holds every frame delivered, as captured`, async (t) => {
  const dir = tmp(t);
  const pcap = fixture('tcp/smtp.pcap');
  const out = join(dir, 'o.pcapng');
  const p = spawn(process.execPath, [CLI, 'live', '-i', 'fake0', '-q', '-w', out], { env: { ...process.env, ...env(dir, pcap), ...(gone ? { FAKE_CAP_GONE: '1' } : {}) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  p.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    // the frames are all delivered within a few turns of the event loop after it listens
    if (/listening on fake0/.test(stderr)) setTimeout(() => p.kill('SIGTERM'), 500);
  });
  const code = await new Promise<number | null>((r) => p.on('close', r));
  t.is(code, 0, stderr);
  t.regex(stdout, /^0 +10\.10\.1\.4:1470 +74\.53\.140\.153:25 +CLOSED +14,705 +538/m);
  t.regex(stdout, /^live: 60 packets received, 0 dropped/m);
  const written = await readAll({ name: out });
  t.is(written.error, null);
  t.deepEqual(written.frames.map((f) => f.hex), (await readAll({ name: pcap })).frames.map((f) => f.hex));
});

test('live --memory: the budget is live\'s too (past it the oldest connections are evicted and counted)', async (t) => {
  const { generate } = await import('../bench/gen.js');
  const dir = tmp(t);
  const cap = join(dir, 'open.pcap');
  await generate({ path: cap, bytes: 3000 * 400, flows: 3000, perFlow: 400 });
  const frames = (JSON.parse((await cli(['replay', cap, '--json'])).stdout) as { frames: number }).frames;
  const notes = async (more: string[]) => {
    const r = await cli(['live', '-i', 'fake0', '-q', '-c', String(frames), '--json', ...more], undefined, env(dir, cap));
    t.is(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { notes: Record<string, number> }).notes;
  };
  t.true((await notes(['--memory', '1M']))['tcp.pcb.evicted']! > 1000);
  t.false('tcp.pcb.evicted' in (await notes([])));
});
