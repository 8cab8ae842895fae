/**
 * `npm run bench:live` (root, or CAP_NET_RAW): how much loopback traffic `sockcap live` sustains
 * with zero drops in its own queue. Each step runs a fresh `sockcap live -i lo` on one port while a
 * generator process drives it: small 64-byte segments at rising rates, then bulk 64 KiB writes.
 * Reports packets/s and bytes/s sockcap received, its queue drops, and how much of the payload the
 * generator wrote reached the sockets (libpcap's own drops are not exposed by the binding: payload
 * missing from the reassembled streams is how kernel-side loss shows). sockcap runs with -B 1048576
 * (BENCH_LIVE_B, KiB): the binding's immediate mode gives one ~64 KiB ring slot per packet.
 */
import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import { join } from 'node:path';
import { existsSync, mkdirSync } from 'node:fs';
import { CLI, ROOT } from '../helpers/paths.js';
import { generate } from './gen.js';

const LOAD = join(ROOT, 'dist', 'test', 'bench', 'live-load.js');
const SECS = Number(process.env.BENCH_LIVE_SECS ?? 3);

interface Step { writesPerSec: number; mode: string; target: string; pps: number; mbps: number; received: number; dropped: number; maxQueued: number; payloadSeen: number; payloadSent: number }

function run(cmd: string, args: string[], onStderr?: (s: string) => void): { done: Promise<{ code: number | null; out: string }>; kill: (s: NodeJS.Signals) => void } {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => { err += d; onStderr?.(err); });
  return { done: new Promise((r) => p.on('close', (code) => r({ code, out: code === 0 ? out : out + err }))), kill: (s) => p.kill(s) };
}

async function step(mode: 'small' | 'bulk', rate: number, conns: number): Promise<Step> {
  const srv = net.createServer((s) => s.resume());
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  let ready!: () => void;
  const listening = new Promise<void>((r) => (ready = r));
  const live = run(CLI, ['live', '-i', 'lo', '-q', '--json', '-B', process.env.BENCH_LIVE_B ?? '1048576', 'tcp', 'port', String(port)], (e) => { if (/listening on/.test(e)) ready(); });
  await listening;
  // the load comes from GENS processes (default 2), each with its share of the rate
  const gens = Number(process.env.BENCH_LIVE_GENS ?? 2);
  const outs = await Promise.all(Array.from({ length: gens }, () => run(process.execPath, [LOAD, mode, String(rate / gens), String(SECS), String(port), String(Math.max(1, Math.ceil(conns / gens)))]).done));
  await new Promise((r) => setTimeout(r, 500));
  live.kill('SIGINT');
  const l = await live.done;
  srv.close();
  const sent = outs.map((g) => JSON.parse(g.out) as { bytes: number; writes: number; secs: number }).reduce((a, b) => ({ bytes: a.bytes + b.bytes, writes: a.writes + b.writes, secs: Math.max(a.secs, b.secs) }));
  const j = JSON.parse(l.out);
  const secs = Math.max(j.duration, 1e-9);
  return {
    writesPerSec: sent.writes / sent.secs,
    mode, target: mode === 'small' ? `${(rate / 1000).toFixed(0)} k writes/s of 64 B, ${conns} connections` : rate ? `${rate / 1e9} Gbit/s of 64 KiB writes` : `${conns} × 64 KiB writes, unpaced`,
    pps: j.live.received / secs, mbps: (j.bytes * 8) / secs / 1e6, received: j.live.received, dropped: j.live.dropped,
    maxQueued: j.live.maxQueued, payloadSeen: j.tcpstat.rcvbyte, payloadSent: sent.bytes,
  };
}

/**
 * Small segments from tcpreplay (a C sender: the Node generators cannot reach 200,000 packets/s
 * here): a generated capture of 2,000 loopback flows with 64-byte segments is replayed onto lo at
 * a fixed rate. The kernel answers the injected segments with RSTs, which the filter leaves out.
 */
async function replayed(pps: number): Promise<Step | null> {
  if (spawnSyncOk('tcpreplay', ['-V']) === false) return null;
  const file = join(ROOT, 'bench-data', 'live-small-lo.pcap');
  if (!existsSync(file)) {
    mkdirSync(join(ROOT, 'bench-data'), { recursive: true });
    await generate({ path: file, bytes: 80 * 2 ** 20, flows: 2000, perFlow: 64 * 200, mss: 64, loopback: true });
  }
  const expect = JSON.parse((await run(CLI, ['replay', file, '-q', '--json']).done).out);
  let ready!: () => void;
  const listening = new Promise<void>((r) => (ready = r));
  const live = run(CLI, ['live', '-i', 'lo', '-q', '--json', '-B', process.env.BENCH_LIVE_B ?? '1048576', 'tcp and tcp[tcpflags] & tcp-rst == 0 and net 127.0.0.0/8'], (e) => { if (/listening on/.test(e)) ready(); });
  await listening;
  const t = await run('tcpreplay', ['-q', '-i', 'lo', `--pps=${pps}`, file]).done;
  await new Promise((r) => setTimeout(r, 1000));
  live.kill('SIGINT');
  const j = JSON.parse((await live.done).out);
  const sent = Number(/Actual: (\d+) packets/.exec(t.out)?.[1] ?? 0);
  const secs = Math.max(j.duration, 1e-9);
  return {
    writesPerSec: Number(/([\d.]+) pps/.exec(t.out)?.[1] ?? 0), mode: 'replayed', target: `tcpreplay --pps=${pps} (64-byte segments, 2,000 flows; ${sent.toLocaleString('en-US')} packets sent)`,
    pps: j.live.received / secs, mbps: (j.bytes * 8) / secs / 1e6, received: j.live.received, dropped: j.live.dropped,
    maxQueued: j.live.maxQueued, payloadSeen: j.tcpstat.rcvbyte, payloadSent: expect.tcpstat.rcvbyte,
  };
}

function spawnSyncOk(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

const rows: Step[] = [];
for (const pps of (process.env.BENCH_LIVE_PPS ?? '100000,200000,300000').split(',').map(Number)) {
  const r = await replayed(pps);
  if (r) rows.push(r);
}
for (const rate of (process.env.BENCH_LIVE_RATES ?? '25000,50000,100000,200000,300000').split(',').map(Number)) rows.push(await step('small', rate, Number(process.env.BENCH_LIVE_CONNS ?? 64)));
for (const gbit of (process.env.BENCH_LIVE_GBITS ?? '1,2,4').split(',').map(Number)) rows.push(await step('bulk', gbit * 1e9, 4));
rows.push(await step('bulk', 0, 4));
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
console.log(`live capture on lo, ${SECS} s per step\n`);
console.log('| load | writes/s (or packets/s) sent | packets/s received | Mbit/s captured | packets | queue drops | most queued | payload reached sockets |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.target} | ${fmt(r.writesPerSec)} | ${fmt(r.pps)} | ${fmt(r.mbps)} | ${fmt(r.received)} | ${fmt(r.dropped)} | ${fmt(r.maxQueued)} | ${(100 * r.payloadSeen / Math.max(1, r.payloadSent)).toFixed(2)}% |`);
