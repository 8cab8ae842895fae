import test from 'ava';
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { pcapFile, tcpFrame } from '../helpers/build.js';
import { TH_ACK, TH_SYN } from '../../core/wire/tcp.js';
import { Connection } from '../../core/net/in-pcb.js';
import { FlowFiles, type FlowIndexEntry } from '../../core/capture/flow-files.js';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fixture, corpus, HAS_CORPUS, HAS_TSHARK } from '../helpers/paths.js';
import { cli, tmp } from '../helpers/cli.js';
import { when } from '../helpers/skip.js';

const run = promisify(execFile);
const HAS_TCPFLOW = spawnSync('sh', ['-c', 'command -v tcpflow']).status === 0;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Bytes per direction from tshark-style raw follow output (node 1 lines are tab-indented). */
function rawBytes(out: string): { c2s: Buffer; s2c: Buffer; header: string[] } {
  const lines = out.split('\n');
  const hex = lines.filter((l) => /^\t?[0-9a-f]+$/.test(l));
  return {
    c2s: Buffer.from(hex.filter((l) => !l.startsWith('\t')).join(''), 'hex'),
    s2c: Buffer.from(hex.filter((l) => l.startsWith('\t')).map((l) => l.slice(1)).join(''), 'hex'),
    header: lines.filter((l) => /^(Follow|Filter|Node \d):/.test(l)),
  };
}

when(HAS_TSHARK, 'needs tshark')('follow raw: same header and bytes as tshark -z follow,tcp,raw', async (t) => {
  for (const stream of [0, 1, 2]) {
    const ours = await cli(['follow', fixture('tcp/three-http-streams.pcap'), '-z', String(stream), '--format', 'raw']);
    t.is(ours.code, 0, ours.stderr);
    const { stdout } = await run('tshark', ['-r', fixture('tcp/three-http-streams.pcap'), '-q', '-z', `follow,tcp,raw,${stream}`]);
    const a = rawBytes(ours.stdout);
    const b = rawBytes(stdout);
    t.deepEqual(a.header, b.header);
    t.true(a.c2s.equals(b.c2s));
    t.true(a.s2c.equals(b.s2c));
    t.is(ours.stdout, stdout, 'chunk for chunk, the same text');
  }
});

test('follow by 4-tuple with a direction; ascii and hex formats', async (t) => {
  const r = await cli(['follow', fixture('tcp/smtp.pcap'), '-z', '74.53.140.153:25-10.10.1.4:1470', '--direction', 's2c', '--format', 'ascii']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /Node 0: 10\.10\.1\.4:1470\nNode 1: 74\.53\.140\.153:25\n/);
  t.regex(r.stdout, /\t220-xc90\.websitewelcome\.com ESMTP/);
  t.notRegex(r.stdout, /^EHLO/m, 'client data left out');
  const h = await cli(['follow', fixture('tcp/smtp.pcap'), '-z', '10.10.1.4:1470>74.53.140.153:25', '--format', 'hex']);
  t.regex(h.stdout, /^00000000  45 48 4c 4f 20 47 50 0d  0a +EHLO GP\.\.$/m);
  t.notRegex(h.stdout, /\t00000000/, 'A>B names one direction');
});

test('follow: a stream that does not exist exits 6 and says how many there are', async (t) => {
  const r = await cli(['follow', fixture('tcp/smtp.pcap'), '-z', '7']);
  t.is(r.code, 6);
  t.regex(r.stderr, /no TCP stream matches '7' \(the capture has 1 TCP streams\)/);
  const bad = await cli(['follow', fixture('tcp/smtp.pcap'), '-z', 'nonsense']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /bad flow selector 'nonsense'/);
});

test('extract writes one file per direction with an index whose hashes match replay --hash', async (t) => {
  const d = tmp(t);
  const r = await cli(['extract', fixture('tcp/three-http-streams.pcap'), '-o', d, '--hash', '--json']);
  t.is(r.code, 0, r.stderr);
  t.like(JSON.parse(r.stdout), { files: 6, connections: 3 });
  const index = JSON.parse(readFileSync(join(d, 'sockcap-index.json'), 'utf8')) as Array<{ file: string; sha256: string; bytes: number; stream: number; dir: string }>;
  t.is(index.length, 6);
  const rep = JSON.parse((await cli(['replay', fixture('tcp/three-http-streams.pcap'), '--hash', '--json'])).stdout);
  for (const e of index) {
    const body = readFileSync(join(d, e.file));
    t.is(body.length, e.bytes);
    t.is(sha(body), e.sha256);
    t.is(rep.connections[e.stream][e.dir].sha256, e.sha256);
  }
  t.true(index.some((e) => e.file === '172.016.133.132.54615-098.139.161.029.00080'));
});

when(HAS_CORPUS && HAS_TCPFLOW, 'needs ../shared/corpus and tcpflow')('extract gives tcpflow\'s file names and bytes (82 directions of a clean capture)', async (t) => {
  const cap = corpus('suricata-verify__http-range-multiflows__input.pcap');
  const a = tmp(t);
  const b = tmp(t);
  t.is((await cli(['extract', cap, '-o', a, '-q'])).code, 0);
  await run('tcpflow', ['-r', cap, '-o', b]);
  const ours = readdirSync(a).filter((f) => f !== 'sockcap-index.json').sort();
  const theirs = readdirSync(b).filter((f) => /^\d{3}\./.test(f)).sort();
  t.deepEqual(ours, theirs);
  for (const f of ours) t.true(readFileSync(join(a, f)).equals(readFileSync(join(b, f))), f);
  t.true(ours.length >= 80);
});

test('extract under a low descriptor limit (ulimit -n 64) writes the same files as without it', async (t) => {
  const { generate } = await import('../bench/gen.js');
  const dir = tmp(t);
  const cap = join(dir, 'many.pcap');
  await generate({ path: cap, bytes: 3e6, flows: 300, perFlow: 4000 });
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  t.is((await cli(['extract', cap, '-o', a, '-q'])).code, 0);
  const { CLI } = await import('../helpers/paths.js');
  await run('sh', ['-c', `ulimit -n 64 && "${process.execPath}" "${CLI}" extract "${cap}" -o "${b}" -q`]);
  const fa = readdirSync(a).sort();
  t.deepEqual(readdirSync(b).sort(), fa);
  t.true(fa.length > 600);
  for (const f of fa) if (f !== 'sockcap-index.json') t.true(readFileSync(join(a, f)).equals(readFileSync(join(b, f))), f);
});

test('extract: a file that cannot be written stops the run with exit 5 naming it, no stack trace', async (t) => {
  const d = tmp(t);
  // a directory where the first flow's file would go
  mkdirSync(join(d, '172.016.133.132.54615-098.139.161.029.00080'));
  const r = await cli(['extract', fixture('tcp/three-http-streams.pcap'), '-o', d]);
  t.is(r.code, 5, r.stderr);
  t.regex(r.stderr, /172\.016\.133\.132\.54615-098\.139\.161\.029\.00080: cannot write: EISDIR/);
  t.notRegex(r.stderr, /\n\s+at /);
});

test('FlowFiles: views are written, not copies of them; a slow direction is written out once 32 MiB of other stream has passed (it pins its read chunk), and every byte lands in order', (t) => {
  const d = tmp(t);
  const addr = new Uint8Array([10, 0, 0, 1, 10, 0, 0, 2]);
  const slow = new Connection(0, addr, 0, 1111, 4, 80, 4);
  const bulk = new Connection(1, addr, 0, 2222, 4, 80, 4);
  const index: FlowIndexEntry[] = [];
  const ff = new FlowFiles(d, '%A.%a-%B.%b', false, (e) => index.push(e));
  const slowPath = join(d, '010.000.000.001.01111-010.000.000.002.00080');
  const first = new Uint8Array(100).fill(7);
  ff.data(slow, 'c2s', [first]);
  t.false(existsSync(slowPath), 'a small direction waits');
  first.fill(9); // capture memory is never written; here it shows the file gets the view, not a copy
  const piece = new Uint8Array(60_000);
  for (let i = 0; i < piece.length; i++) piece[i] = i % 251;
  let sent = 0;
  while (sent < 33 << 20) {
    ff.data(bulk, 'c2s', [piece.subarray(0, 30_000), piece.subarray(30_000)]);
    sent += piece.length;
  }
  t.is(statSync(slowPath).size, 100, 'aged out: written before its connection closed');
  ff.data(slow, 'c2s', [new Uint8Array(50).fill(8)]);
  ff.closed(slow);
  ff.closed(bulk);
  ff.close();
  ff.check();
  const s = readFileSync(slowPath);
  t.true(s.subarray(0, 100).every((x) => x === 9) && s.subarray(100).every((x) => x === 8) && s.length === 150);
  const b = readFileSync(join(d, '010.000.000.001.02222-010.000.000.002.00080'));
  t.is(b.length, sent);
  t.true(b.subarray(0, 60_000).equals(piece) && b.subarray(b.length - 60_000).equals(piece));
  t.deepEqual(index.map((e) => [e.stream, e.bytes]), [[0, 150], [1, sent]]);
});

/** A capture in `dir`: a handshake, then these client segments (ISN 99, so data starts at 100). */
function clientData(dir: string, segs: Array<{ seq: number; payload: string; badSum?: boolean }>): string {
  const c = { src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 80 };
  const file = join(dir, 'in.pcap');
  writeFileSync(file, pcapFile([
    { data: tcpFrame({ ...c, seq: 99, flags: TH_SYN }) },
    { data: tcpFrame({ src: c.dst, dst: c.src, sport: c.dport, dport: c.sport, seq: 499, ack: 100, flags: TH_SYN | TH_ACK }) },
    ...segs.map((g) => ({ data: tcpFrame({ ...c, ...g, ack: 500 }) })),
  ]));
  return file;
}

test('extract keeps segments with bad TCP checksums (offloaded ones are the common case), as replay does', async (t) => {
  const d = tmp(t);
  const file = clientData(d, [{ seq: 100, payload: 'hello ', badSum: true }, { seq: 106, payload: 'world' }]);
  const out = join(d, 'out');
  const r = await cli(['extract', file, '-o', out, '-q']);
  t.is(r.code, 0, r.stderr);
  t.is(readFileSync(join(out, '010.000.000.001.40000-010.000.000.002.00080'), 'utf8'), 'hello world');
  const rep = JSON.parse((await cli(['replay', file, '--json'])).stdout);
  t.is(rep.notes['tcp.badsum'], 1, 'replay counts the bad one');
  t.is(rep.connections[0].c2s.bytes, 11, 'and takes its data too');
});

test('extract: a hole that never fills is skipped in the file and listed in the index as a gap', async (t) => {
  const d = tmp(t);
  const file = clientData(d, [{ seq: 100, payload: 'abc' }, { seq: 107, payload: 'xyz' }]); // bytes 3..6 never captured
  const out = join(d, 'out');
  t.is((await cli(['extract', file, '-o', out, '-q'])).code, 0);
  t.is(readFileSync(join(out, '010.000.000.001.40000-010.000.000.002.00080'), 'utf8'), 'abcxyz');
  const index = JSON.parse(readFileSync(join(out, 'sockcap-index.json'), 'utf8')) as Array<{ dir: string; gaps?: number[][] }>;
  t.deepEqual(index.find((e) => e.dir === 'c2s')!.gaps, [[3, 4]]);
});
