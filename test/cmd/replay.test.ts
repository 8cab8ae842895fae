import test from 'ava';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { pcapFile, tcpFrame } from '../helpers/build.js';
import { TH_SYN } from '../../core/wire/tcp.js';
import { CLI, fixture, onPath } from '../helpers/paths.js';
import { cli, collect, tmp, withPeakRss } from '../helpers/cli.js';
import { execFileSync, spawnSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import fc from 'fast-check';
import { thousands } from '../../core/report.js';
import { when } from '../helpers/skip.js';

test('replay prints frames, link types, protocols and drops', async (t) => {
  const r = await cli(['replay', fixture('tcp/smtp.pcap')]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^frames: 60 /m);
  t.regex(r.stdout, /link types: EN10MB \(1\) 60/);
  t.regex(r.stdout, /protocols: ipv4 60, tcp 53, icmp 4, udp 3/);
});

test('replay --json has the documented shape', async (t) => {
  const r = await cli(['replay', fixture('tcp/smtp.pcap'), '--json']);
  t.is(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  t.is(j.frames, 60);
  t.is(j.bytes, 26866);
  t.deepEqual(j.linktypes, { 1: 60 });
  t.deepEqual(j.drops, {});
  t.is(j.protocols.tcp, 53);
});

test('replay reads stdin with - and several files in order; -c stops early', async (t) => {
  const r = await cli(['replay', '-', fixture('link/sll-nano.pcap'), '--json'], readFileSync(fixture('tcp/smtp.pcap')));
  t.is(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  t.deepEqual(j.files.map((f: { name: string }) => f.name), ['-', fixture('link/sll-nano.pcap')]);
  t.deepEqual(j.linktypes, { 1: 60, 113: j.linktypes['113'] });
  const c = JSON.parse((await cli(['replay', fixture('tcp/smtp.pcap'), '-c', '7', '--json'])).stdout);
  t.is(c.frames, 7);
});

test('bad input: one line naming file and offset, distinct exit code, no stack trace', async (t) => {
  const bad = await cli(['replay', fixture('malformed/bad-magic.pcap')]);
  t.is(bad.code, 3);
  t.is(bad.stderr.trim(), `sockcap: ${fixture('malformed/bad-magic.pcap')}: not a pcap or pcapng capture (magic 0x74686973) at byte offset 0`);
  const ver = await cli(['replay', fixture('malformed/pcapng-invalid-version.pcapng')]);
  t.is(ver.code, 3);
  t.regex(ver.stderr, /unsupported pcapng section version 0\.1 at byte offset 12\n$/);
  const missing = await cli(['replay', '/nonexistent.pcap']);
  t.is(missing.code, 4);
  t.notRegex(missing.stderr, /\n\s+at /);
});

test('a capture compressed with something other than gzip (zstd, lz4, xz, bzip2): one line naming the compression and the pipe that reads it, exit 3, and the report does not call it pcap', async (t) => {
  const d = tmp(t);
  for (const [name, magic, tool] of [['zstd', [0x28, 0xb5, 0x2f, 0xfd], 'zstd'], ['lz4', [0x04, 0x22, 0x4d, 0x18], 'lz4'],
    ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], 'xz'], ['bzip2', [0x42, 0x5a, 0x68, 0x39], 'bzip2']] as const) {
    const f = join(d, `c.${name}`);
    writeFileSync(f, Buffer.from([...magic, ...Array.from({ length: 40 }, (_, i) => i)]));
    const r = await cli(['replay', f]);
    t.is(r.code, 3, name);
    t.is(r.stderr, `sockcap: ${f}: ${name}-compressed, not a pcap or pcapng capture (magic 0x${Buffer.from(magic.slice(0, 4)).toString('hex')}) at byte offset 0; sockcap decompresses gzip only: pipe it in, \`${tool} -dc ${f} | sockcap replay -\`\n`);
    t.regex(r.stdout, new RegExp(`^${f.replace(/[.]/g, '\\.')}: not a pcap or pcapng capture$`, 'm'));
    const j = await cli(['replay', f, '--json']);
    t.is(JSON.parse(j.stdout).files[0].format, null);
  }
  // not a magic the list knows: as before
  const other = join(d, 'other');
  writeFileSync(other, 'plain text, not a capture');
  t.is((await cli(['replay', other])).stderr, `sockcap: ${other}: not a pcap or pcapng capture (magic 0x706c6169) at byte offset 0\n`);
});

/** Compressors installed here, for the test of the pipe the message suggests. */
const PACKERS = ['zstd', 'lz4', 'xz', 'bzip2'].filter(onPath);

when(PACKERS.length > 0, 'needs one of zstd, lz4, xz, bzip2')('the pipe the message suggests for a compressed capture reads it: the report equals the plain file\'s (each tool installed here; the real tools compress)', async (t) => {
  const tools = PACKERS;
  const d = tmp(t);
  const plain = await cli(['replay', fixture('tcp/smtp.pcap'), '--json']);
  const want = JSON.parse(plain.stdout);
  for (const tool of tools) {
    const f = join(d, `smtp.pcap.${tool}`);
    execFileSync('sh', ['-c', `${tool} -c < '${fixture('tcp/smtp.pcap')}' > '${f}'`]);
    const r = await cli(['replay', f]);
    t.is(r.code, 3, tool);
    const pipe = /pipe it in, `([^`]+)`$/m.exec(r.stderr)?.[1];
    t.truthy(pipe, r.stderr);
    const out = spawnSync('sh', ['-c', `${pipe!.replace(/sockcap /, `'${process.execPath}' '${CLI}' `)} --json`], { encoding: 'utf8' });
    t.is(out.status, 0, out.stderr);
    const got = JSON.parse(out.stdout);
    t.deepEqual(got.connections, want.connections, tool);
    t.is(got.frames, 60);
  }
  t.log(`tried: ${tools.join(', ')}`);
});

test('a gzip capture\'s bad record is named at its offset in the decompressed data, the plain file\'s offset', async (t) => {
  const d = tmp(t);
  for (const bad of ['malformed/absurd-caplen.pcap', 'malformed/pcapng-invalid-version.pcapng']) {
    const plain = await cli(['replay', fixture(bad)]);
    const gz = join(d, 'x.gz');
    writeFileSync(gz, gzipSync(readFileSync(fixture(bad))));
    const r = await cli(['replay', gz]);
    t.is(r.code, plain.code);
    t.is(r.stderr, plain.stderr.replace(fixture(bad), gz).replace(/ at byte offset (\d+)/, ' at byte offset $1 of the decompressed data'));
  }
});

test('a file that cannot be opened, anywhere in the list, fails the run before anything is read or written (as tcpdump -r): one line, exit 4, no report, no output', async (t) => {
  const d = tmp(t);
  const good = fixture('tcp/smtp.pcap');
  for (const [cmd, bad, why] of [
    [['replay', '-w', join(d, 'o.pcap')], '/nonexistent.pcap', /: cannot open: ENOENT/],
    [['extract', '-o', join(d, 'x')], '/nonexistent.pcap', /: cannot open: ENOENT/],
    [['fuse', '-w', join(d, 'o.pcap')], d, /: cannot open: is a directory$/],
    [['follow', '-z', '0'], d, /: cannot open: is a directory$/],
  ] as const) {
    const r = await cli([...cmd, good, bad]);
    t.is(r.code, 4, `${cmd[0]}: ${r.stderr}`);
    t.is(r.stdout, '', cmd[0]);
    const lines = r.stderr.trim().split('\n');
    t.is(lines.length, 1, r.stderr);
    t.true(lines[0]!.startsWith(`sockcap: ${bad}: cannot open: `), lines[0]);
    t.regex(lines[0]!, why);
    t.false(existsSync(join(d, 'o.pcap')) || existsSync(join(d, 'x')), `${cmd[0]} wrote nothing`);
  }
  // a FIFO is not opened ahead (that would wait for its writer, then give it EPIPE): it is read
  const fifo = join(d, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const writer = collect('sh', ['-c', `cat ${good} > ${fifo}`]);
  const r = await cli(['replay', fifo, '--json']);
  t.is(r.code, 0, r.stderr);
  t.is((JSON.parse(r.stdout) as { frames: number }).frames, 60);
  t.is((await writer).code, 0);
});

test('the good frames before a corrupt record are reported and written', async (t) => {
  const r = await cli(['replay', fixture('malformed/absurd-caplen.pcap'), '--json']);
  t.is(r.code, 3);
  const j = JSON.parse(r.stdout);
  t.is(j.frames, 1);
  t.is(j.error.code, 'ERR_BAD_CAPLEN');
  t.is(j.error.offset, 228);
});

test('an empty capture exits non-zero: nothing was processed', async (t) => {
  const empty = Buffer.from('d4c3b2a1020004000000000000000000ffff000001000000', 'hex');
  const r = await cli(['replay', '-'], empty);
  t.is(r.code, 6);
  t.regex(r.stderr, /no frames were read/);
  // with --json too, exit 6; stdout holds replay's and fuse's reports (they are written as the run
  // goes) and nothing else: no error object after them (oclif's, which exited 1)
  for (const cmd of [['replay'], ['fuse'], ['extract', '-o', join(tmp(t), 'x')]]) {
    const j = await cli([...cmd, '-', '--json'], empty);
    t.is(j.code, 6, `${cmd[0]}: ${j.stderr}`);
    if (cmd[0] === 'replay') t.is((JSON.parse(j.stdout) as { frames: number }).frames, 0);
    else if (cmd[0] === 'fuse') t.is((JSON.parse(j.stdout) as { framesIn: number }).framesIn, 0);
    else t.is(j.stdout, '', cmd[0]);
    t.is(j.stderr.trim(), 'sockcap: no frames were read', cmd[0]);
  }
});

test('-w - writes the capture to stdout and the report to stderr', async (t) => {
  const r = await cli(['replay', fixture('tcp/smtp.pcap'), '-w', '-']);
  t.is(r.code, 0);
  t.deepEqual(Buffer.from(r.stdout, 'latin1'), readFileSync(fixture('tcp/smtp.pcap')));
  t.regex(r.stderr, /^frames: 60 /m);
});

test('--no-tcp decodes to the TCP header and stops: no connections, same frame and protocol counts', async (t) => {
  const full = JSON.parse((await cli(['replay', fixture('tcp/smtp.pcap'), '--json'])).stdout);
  const r = JSON.parse((await cli(['replay', fixture('tcp/smtp.pcap'), '--json', '--no-tcp'])).stdout);
  t.is(r.frames, 60);
  t.deepEqual(r.protocols, full.protocols);
  t.deepEqual(r.connections, []);
  t.is(full.connections.length, 1);
});

test('-r FILE reads like an argument (tcpdump\'s spelling); no file at all is a usage error', async (t) => {
  const a = JSON.parse((await cli(['replay', '-r', fixture('tcp/smtp.pcap'), '--json'])).stdout);
  const b = JSON.parse((await cli(['replay', fixture('tcp/smtp.pcap'), '--json'])).stdout);
  t.deepEqual(a, b);
  const two = JSON.parse((await cli(['replay', '-r', fixture('tcp/smtp.pcap'), fixture('link/sll-nano.pcap'), '--json'])).stdout);
  t.deepEqual(two.files.map((f: { name: string }) => f.name), [fixture('tcp/smtp.pcap'), fixture('link/sll-nano.pcap')]);
  const none = await cli(['replay']);
  t.is(none.code, 2);
  t.is(none.stderr.trim(), 'sockcap: no capture file: give one as an argument or with -r FILE');
});

test('thousands() writes integers as toLocaleString(en-US) does', (t) => {
  fc.assert(fc.property(fc.oneof(fc.integer(), fc.maxSafeInteger(), fc.constantFrom(0, 999, 1000, -1000, 1e15)), (n) => thousands(n) === n.toLocaleString('en-US')));
  t.is(thousands(1234567), '1,234,567');
});


test('the CLI reads a gzip-compressed capture as the same frames and streams as the plain one (zlib is loaded on demand inside the bundle)', async (t) => {
  const plain = await cli(['replay', fixture('tcp/smtp.pcap'), '-q', '--json', '--hash']);
  const gz = await cli(['replay', fixture('tcp/smtp.pcap.gz'), '-q', '--json', '--hash']);
  t.is(gz.code, 0, gz.stderr);
  const a = JSON.parse(plain.stdout);
  const b = JSON.parse(gz.stdout);
  t.true(b.frames > 0);
  t.is(b.frames, a.frames);
  t.deepEqual(b.connections, a.connections);
  t.like(b.files[0], { format: 'pcap', gzip: true, frames: a.frames });
});

test('--hash makes a direction\'s SHA-256 when its first bytes are read: one that carried none gets the hash of nothing, and a SYN flood costs no hashes (peak RSS within 32 MiB of replay without --hash)', async (t) => {
  const d = tmp(t);
  const cap = join(d, 'syns.pcap');
  const n = 200_000;
  const recs = [];
  for (let i = 0; i < n; i++) recs.push({ data: tcpFrame({ src: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, dst: '192.168.0.1', sport: 1024 + (i % 60000), dport: 80, seq: i, flags: TH_SYN }), tsSec: 1_000_000_000 + (i >> 10) });
  writeFileSync(cap, pcapFile(recs));
  const run = withPeakRss(t, d);
  const hashed = await run(['replay', cap, '--json', '--hash', '-q']);
  const plain = await run(['replay', cap, '--json', '-q']);
  const empty = createHash('sha256').digest('hex');
  const conns = (JSON.parse(hashed.stdout) as { connections: Array<{ c2s: { sha256: string }; s2c: { sha256: string } }> }).connections;
  t.is(conns.length, n);
  t.true(conns.every((c) => c.c2s.sha256 === empty && c.s2c.sha256 === empty));
  // measured: 217 against 200 MiB; a hash made for every direction when its connection was
  // created cost ~640 bytes each (node:crypto's native state), 131,072 connections in the table: 444
  t.log(`peak RSS: --hash ${hashed.rss.toFixed(0)}, without ${plain.rss.toFixed(0)} MiB`);
  t.true(hashed.rss < plain.rss + 32, `--hash ${hashed.rss.toFixed(0)}, without ${plain.rss.toFixed(0)} MiB`);
  // directions with bytes: what was read, hashed (smtp's, against the bytes follow prints)
  const smtp = JSON.parse((await cli(['replay', fixture('tcp/smtp.pcap'), '--json', '--hash', '-q'])).stdout) as { connections: Array<{ c2s: { sha256: string; bytes: number } }> };
  const raw = await cli(['follow', fixture('tcp/smtp.pcap'), '-z', '0', '--format', 'raw', '--direction', 'c2s']);
  const c2s = Buffer.from(raw.stdout.split('\n').filter((l) => /^[0-9a-f]+$/.test(l)).join(''), 'hex');
  t.is(c2s.length, smtp.connections[0]!.c2s.bytes);
  t.is(smtp.connections[0]!.c2s.sha256, createHash('sha256').update(c2s).digest('hex'));
});

test('--memory sets the budget of every command that runs the stack: past it the oldest connections are evicted (counted; their later segments start new streams), within it nothing is; a bad size is a usage error', async (t) => {
  const { generate } = await import('../bench/gen.js');
  const d = tmp(t);
  const cap = join(d, 'open.pcap');
  // 3,000 connections open at once; 1 MiB holds 512 of them (CONN_BYTES each)
  await generate({ path: cap, bytes: 3000 * 400, flows: 3000, perFlow: 400 });
  const streams = async (args: string[]): Promise<number> => {
    const r = await cli(args);
    if (args[0] === 'follow') {
      t.is(r.code, 6, r.stderr);
      return Number(/the capture has (\d+) TCP streams/.exec(r.stderr)![1]);
    }
    t.is(r.code, 0, `${args[0]}: ${r.stderr}`);
    const j = JSON.parse(r.stdout) as { connections: unknown[] | number };
    return Array.isArray(j.connections) ? j.connections.length : j.connections;
  };
  // (splice runs the stack as fuse does, runModel; its report has no connections to count)
  for (const cmd of [['replay', cap, '--json'], ['extract', cap, '-o', join(d, 'x'), '--json'], ['follow', cap, '-z', '999999'], ['fuse', cap, '--json']]) {
    const all = await streams(cmd);
    const tight = await streams([...cmd, '--memory', '1M']);
    t.true(all >= 3000 && all < 3100, `${cmd[0]}: ${all} streams with the default budget`);
    t.true(tight > all + 1000, `${cmd[0]}: ${tight} streams with --memory 1M (evicted connections come back as new streams)`);
  }
  const r = await cli(['replay', cap, '--json', '--memory', '1M']);
  t.true((JSON.parse(r.stdout) as { notes: Record<string, number> }).notes['tcp.pcb.evicted']! > 1000);
  t.false('tcp.pcb.evicted' in (JSON.parse((await cli(['replay', cap, '--json'])).stdout) as { notes: Record<string, number> }).notes);
  for (const bad of ['1x', '512K', '-1M', '']) {
    const b = await cli(['replay', cap, '--memory', bad]);
    t.is(b.code, 2, bad);
    t.regex(b.stderr, /^sockcap: --memory '.*' is not a size of at least 1M/, bad);
  }
  t.is((await cli(['replay', cap, '-q', '--memory', '1.5G'])).code, 0);
  // checked before anything is written: extract makes no directory, no index
  t.is((await cli(['extract', cap, '-o', join(d, 'bad'), '--memory', '1x'])).code, 2);
  t.false(existsSync(join(d, 'bad')));
});
