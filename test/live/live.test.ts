import test from 'ava';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import { join } from 'node:path';
import { tmp } from '../helpers/cli.js';
import { writeStream } from '../helpers/conv.js';
import { fields } from '../helpers/model.js';
import { CLI, HAS_TSHARK } from '../helpers/paths.js';
import { when } from '../helpers/skip.js';

const ROOT_USER = process.getuid?.() === 0;
const HAS_CAP = (() => { try { createRequire(import.meta.url)('cap'); return true; } catch { return false; } })();
const live = when(ROOT_USER && HAS_CAP && HAS_TSHARK, !ROOT_USER ? 'live capture needs root (CAP_NET_RAW)' : !HAS_CAP ? 'the cap binding (libpcap) is not built' : 'needs tshark');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const CHUNK = 16384;

interface Sent { c2s: Buffer[]; s2c: Buffer[] }

function listen(host: string, onConn: (s: net.Socket, sent: Buffer[]) => void): Promise<net.Server> {
  return new Promise((r) => {
    const srv = net.createServer({ allowHalfOpen: true }, (s) => onConn(s, []));
    srv.listen(0, host, () => r(srv));
  });
}

/** Wait until the socket has received `n` more bytes. */
function received(s: net.Socket, n: number): Promise<Buffer> {
  return new Promise((r) => {
    const parts: Buffer[] = [];
    let got = 0;
    const on = (d: Buffer) => {
      parts.push(d);
      got += d.length;
      if (got >= n) { s.off('data', on); r(Buffer.concat(parts)); }
    };
    s.on('data', on);
  });
}

/**
 * Real loopback traffic: request/response over 127.0.0.1 and ::1, a paced 1 MiB upload and a
 * paced 512 KiB download (16 KiB per write, each acknowledged by the application, so no segment
 * grows past the binding's 65,535-byte snapshot). Returns what each side wrote, by client port.
 */
async function traffic(servers: net.Server[]): Promise<Map<number, Sent>> {
  const sent = new Map<number, Sent>();
  const [rr4, rr6, up, down] = servers.map((s) => (s.address() as net.AddressInfo));
  const connect = (a: net.AddressInfo) => new Promise<net.Socket>((r) => { const c = net.connect({ port: a.port, host: a.address, allowHalfOpen: true }, () => r(c)); });
  for (const a of [rr4!, rr6!]) {
    const c = await connect(a);
    const req = writeStream(2000);
    sent.set(c.localPort!, { c2s: [req], s2c: [writeStream(3000)] });
    const done = received(c, 3000);
    c.end(req);
    await done;
    await new Promise((r) => c.on('close', r));
  }
  const u = await connect(up!);
  const body = Buffer.alloc(1 << 20, 0);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
  sent.set(u.localPort!, { c2s: [body], s2c: [Buffer.alloc(body.length / CHUNK, 'k')] });
  for (let o = 0; o < body.length; o += CHUNK) {
    const ack = received(u, 1);
    u.write(body.subarray(o, o + CHUNK));
    await ack;
  }
  u.end();
  await new Promise((r) => u.on('close', r));
  const d = await connect(down!);
  const n = (512 << 10) / CHUNK;
  sent.set(d.localPort!, { c2s: [Buffer.alloc(n, 'k')], s2c: [Buffer.alloc(512 << 10, 0x5a)] });
  let got = 0;
  d.on('data', (b: Buffer) => { const before = Math.floor(got / CHUNK); got += b.length; for (let i = before; i < Math.floor(got / CHUNK); i++) d.write('k'); });
  await new Promise((r) => d.on('end', r));
  d.end();
  await new Promise((r) => d.on('close', r));
  return sent;
}

async function servers(): Promise<net.Server[]> {
  const rr = (s: net.Socket) => { s.resume(); s.on('end', () => s.end(writeStream(3000))); };
  return [
    await listen('127.0.0.1', rr),
    await listen('::1', rr),
    await listen('127.0.0.1', (s) => { let n = 0; s.on('data', (b) => { const k = Math.floor((n + b.length) / CHUNK) - Math.floor(n / CHUNK); n += b.length; if (k > 0) s.write(Buffer.alloc(k, 'k')); }); s.on('end', () => s.end()); }),
    await listen('127.0.0.1', async (s) => {
      const data = Buffer.alloc(512 << 10, 0x5a);
      for (let o = 0; o < data.length; o += CHUNK) { const ack = received(s, 1); s.write(data.subarray(o, o + CHUNK)); await ack; }
      s.end();
      s.resume();
    }),
  ];
}

/** Start `sockcap live`, resolve once it listens. */
function start(args: string[]): Promise<{ p: ChildProcess; out: Promise<{ code: number | null; stdout: string; stderr: string }> }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, 'live', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout!.on('data', (d) => (stdout += d));
    const out = new Promise<{ code: number | null; stdout: string; stderr: string }>((r) => p.on('close', (code) => r({ code, stdout, stderr })));
    p.stderr!.on('data', (d) => { stderr += d; if (/listening on lo/.test(stderr)) resolve({ p, out }); });
    p.on('error', reject);
    out.then((r) => reject(new Error(`sockcap live exited early: ${r.stderr}`)));
  });
}

live('live -i lo: real loopback connections reassemble to what was sent; -w reads back clean; SIGINT leaves a whole capture; --fuse drops every payload segment', async (t) => {
  const srv = await servers();
  t.teardown(() => srv.forEach((s) => s.close()));
  const ports = srv.map((s) => (s.address() as net.AddressInfo).port);
  const filter = ['tcp', 'and', '(', ports.map((p) => `port ${p}`).join(' or '), ')'];
  const dir = tmp(t);
  for (const mode of ['plain', 'fuse'] as const) {
    const out = join(dir, `${mode}.pcap`);
    const { p, out: done } = await start(['-i', 'lo', '-w', out, '--hash', '--json', '-q', ...(mode === 'fuse' ? ['--fuse'] : []), ...filter.join(' ').split(' ')]);
    const sent = await traffic(srv);
    await new Promise((r) => setTimeout(r, 300));
    p.kill('SIGINT');
    const r = await done;
    t.is(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    t.is(j.filter, filter.join(' '), 'the report names the filter');
    t.is(j.live.dropped, 0, 'no drops in sockcap\'s queue');
    t.is(j.connections.length, 4);
    for (const c of j.connections) {
      const port = Number(String(c.client).split(':').at(-1));
      const s = sent.get(port)!;
      t.truthy(s, `a connection of the test: ${c.client}`);
      t.is(c.c2s.sha256, sha(Buffer.concat(s.c2s)), `${mode} ${c.client} c2s`);
      t.is(c.s2c.sha256, sha(Buffer.concat(s.s2c)), `${mode} ${c.client} s2c`);
    }
    // the capture is whole (the last record too) and not malformed (loopback frames carry
    // unfilled, offloaded checksums: written as captured, so those are not checked here)
    const frames = fields(out, ['frame.number']);
    t.is(frames.length, mode === 'plain' ? j.frames : j.fuse.framesOut);
    t.deepEqual(fields(out, ['frame.number'], '_ws.malformed'), []);
    t.true(readFileSync(out).length > 24);
    if (mode === 'fuse') {
      t.true(j.fuse.onlySynFin);
      t.is(j.fuse.fusedConnections, 4);
      t.deepEqual(fields(out, ['frame.number'], 'tcp.len > 0'), [], 'no fused connection carries payload in the output');
    }
  }
});

test('live without an interface, or on one that does not exist: one line, a distinct exit code', async (t) => {
  const { cli } = await import('../helpers/cli.js');
  const none = await cli(['live']);
  t.is(none.code, 2);
  t.regex(none.stderr, /give an interface with -i/);
  // without the binding (a module name that does not exist stands in for a failed build)
  for (const args of [['live', '-i', 'lo'], ['live', '--list']]) {
    const missing = await cli(args, undefined, { SOCKCAP_CAP_MODULE: 'sockcap-no-such-binding' });
    t.is(missing.code, 9);
    t.regex(missing.stderr, /^sockcap: live capture needs the libpcap binding 'cap'.*apt-get install libpcap-dev/);
    t.is(missing.stderr.trim().split('\n').length, 1);
  }
  const bad = await cli(['live', '-i', 'no-such-if0']);
  if (!HAS_CAP) return t.is(bad.code, 9);
  const list = await cli(['live', '--list']);
  t.is(list.code, 0, list.stderr);
  t.regex(list.stdout, /^\d+\.lo\b.*127\.0\.0\.1/m, 'the loopback interface with its address, as tcpdump -D numbers them');
  t.true(bad.code === 7 || bad.code === 10, bad.stderr);
  t.regex(bad.stderr, /^sockcap: cannot capture on no-such-if0: /);
  t.is(bad.stderr.trim().split('\n').length, 1);
});

live('live --follow prints a stream\'s bytes as they are reassembled; the report goes to stderr', async (t) => {
  const srv = await listen('127.0.0.1', (s) => { s.resume(); s.on('end', () => s.end('bye')); });
  t.teardown(() => srv.close());
  const port = (srv.address() as net.AddressInfo).port;
  const { p, out: done } = await start(['-i', 'lo', '--follow', '0:c2s', '--format', 'raw', '-q', 'tcp', 'port', String(port)]);
  const c = await new Promise<net.Socket>((r) => { const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => r(s)); });
  c.end(writeStream(500));
  c.resume();
  await new Promise((r) => c.on('close', r));
  await new Promise((r) => setTimeout(r, 200));
  p.kill('SIGTERM');
  const r = await done;
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, new RegExp(`^Node 1: 127\\.0\\.0\\.1:${port}$`, 'm'));
  const hex = r.stdout.split('\n').filter((l) => /^[0-9a-f]+$/.test(l)).join('');
  t.is(Buffer.from(hex, 'hex').toString(), writeStream(500).toString());
  t.regex(r.stderr, /^live: \d+ packets received, 0 dropped by sockcap's queue/m);
});

/** As root, whether an unprivileged user (nobody) can run the CLI from where the repository is. */
const NOBODY_RUNS = ROOT_USER && spawnSync(process.execPath, [CLI, '--version'], { uid: 65534, gid: 65534, env: { ...process.env, HOME: '/tmp' }, stdio: 'ignore' }).status === 0;

when(ROOT_USER && HAS_CAP && NOBODY_RUNS, !ROOT_USER ? 'dropping privileges needs root' : !HAS_CAP ? 'the cap binding is not built' : 'user nobody cannot read the repository here')('live without the right to capture: one line saying what is missing, exit 10', async (t) => {
  const r = spawnSync(process.execPath, [CLI, 'live', '-i', 'lo'], { uid: 65534, gid: 65534, encoding: 'utf8', env: { ...process.env, HOME: '/tmp' } });
  t.is(r.status, 10, r.stderr);
  t.regex(r.stderr, /^sockcap: cannot capture on lo: .*: run as root or give node CAP_NET_RAW/m);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
});
