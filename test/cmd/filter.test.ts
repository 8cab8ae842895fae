import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, collect, tmp } from '../helpers/cli.js';
import { CLI, fixture, HAS_TCPDUMP } from '../helpers/paths.js';
import { when } from '../helpers/skip.js';

const HTTP = fixture('tcp/three-http-streams.pcap');
const SMTP = fixture('tcp/smtp.pcap');

/** Frames tcpdump -r passes for `expr`. */
const tcpdumpCount = (file: string, expr: string) => Number(spawnSync('sh', ['-c', `tcpdump -r '${file}' -w - '${expr}' 2>/dev/null | tcpdump -r - 2>/dev/null | wc -l`], { encoding: 'utf8' }).stdout.trim());

when(HAS_TCPDUMP, 'needs tcpdump')('replay FILE FILTER: the frames tcpdump passes are processed, the rest counted as filtered out per file; the words of the filter are taken in their order however often they repeat', async (t) => {
  // `and` and `or` bind alike, left to right (pcap-filter(7)): two of the three connections
  const expr = 'host 98.139.240.23 or host 98.138.19.88 and tcp port 80';
  const r = await cli(['replay', HTTP, ...expr.split(' '), '--json']);
  t.is(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { frames: number; filter: string; files: Array<{ frames: number; filtered: number }>; connections: Array<{ server: string; frames: number }> };
  t.is(j.filter, expr, 'the report names the filter');
  const want = tcpdumpCount(HTTP, expr);
  t.is(want, 19);
  t.is(j.frames, want);
  t.deepEqual([j.files[0]!.frames, j.files[0]!.filtered], [28, 28 - want]);
  t.deepEqual(j.connections.map((c) => c.server).sort(), ['98.138.19.88:80', '98.139.240.23:80']);
  const text = await cli(['replay', '-r', HTTP, 'host', '98.139.161.29']);
  t.is(text.code, 0, text.stderr);
  t.regex(text.stdout, /28 frames, 19 filtered out\nfilter: host 98\.139\.161\.29\n/);
  t.regex(text.stdout, /^0 +172\.16\.133\.132:54615 +98\.139\.161\.29:80 /m, 'the one connection is stream 0');
  const plain = await cli(['replay', HTTP]);
  t.notRegex(plain.stdout, /filter/, 'no filter, no count and no line');
  t.false('filter' in (JSON.parse((await cli(['replay', HTTP, '--json'])).stdout) as object));
  // the filter reads what the reader decompressed, and standard input alike
  const port25 = tcpdumpCount(SMTP, 'tcp port 25');
  for (const [args, stdin] of [[[`${SMTP}.gz`], undefined], [['-'], readFileSync(SMTP)]] as const) {
    const r2 = await cli(['replay', ...args, 'tcp', 'port', '25', '--json'], stdin);
    t.is(r2.code, 0, r2.stderr);
    const j2 = JSON.parse(r2.stdout) as { frames: number; files: Array<{ filtered: number }> };
    t.deepEqual([j2.frames, j2.files[0]!.filtered], [port25, 60 - port25], args[0]);
  }
});

when(HAS_TCPDUMP, 'needs tcpdump')('a directory named like a filter word is a filter word: replay smtp.pcap tcp port 25, run where a directory tcp/ is', async (t) => {
  const r = await collect(process.execPath, [CLI, 'replay', 'tcp/smtp.pcap', 'tcp', 'port', '25', '--json'], { cwd: fixture('') });
  t.is(r.code, 0, r.stderr);
  t.is((JSON.parse(r.stdout) as { frames: number }).frames, tcpdumpCount(SMTP, 'tcp port 25'));
});

when(HAS_TCPDUMP, 'needs tcpdump')('extract FILE FILTER writes the files the tcpdump pipe in the README writes, byte for byte; follow takes a filter too', async (t) => {
  const d = tmp(t);
  const expr = 'tcp port 80 and host 98.139.240.23';
  const a = join(d, 'filter');
  const r = await cli(['extract', HTTP, expr, '-o', a, '-q']);
  t.is(r.code, 0, r.stderr);
  const b = join(d, 'pipe');
  const p = spawnSync('sh', ['-c', `tcpdump -r '${HTTP}' -w - '${expr}' 2>/dev/null | '${process.execPath}' '${CLI}' extract - -o '${b}' -q`], { encoding: 'utf8' });
  t.is(p.status, 0, p.stderr);
  const files = readdirSync(a).sort();
  t.deepEqual(files, readdirSync(b).sort());
  t.is(files.length, 3);
  for (const f of files) t.true(readFileSync(join(a, f)).equals(readFileSync(join(b, f))), f);
  const f = await cli(['follow', '-z', '0', HTTP, 'host', '98.139.161.29']);
  t.is(f.code, 0, f.stderr);
  t.regex(f.stdout, /Node 1: 98\.139\.161\.29:80/);
});

when(HAS_TCPDUMP, 'needs tcpdump')('filter errors: a syntax error, a filter that does not apply to the link type, a capture named after the filter, a filter with no file, nothing passing: one line each, usage errors exit 2, nothing read exit 6', async (t) => {
  const cases: Array<[string[], number, string]> = [
    [['replay', SMTP, 'tcp', 'prot', '25'], 2, "sockcap: filter 'tcp prot 25' (link type EN10MB): can't parse filter expression: syntax error\n"],
    [['replay', fixture('link/sll-nano.pcap'), 'ether', 'host', '1:2:3:4:5:6'], 2, "sockcap: filter 'ether host 1:2:3:4:5:6' (link type LINUX_SLL): ethernet addresses supported only on ethernet/FDDI/token ring/802.11/ATM LANE/Fibre Channel\n"],
    [['extract', SMTP, 'port', '25', HTTP, '-o', '/nonexistent'], 2, `sockcap: capture files go before the filter: '${HTTP}' follows 'port 25'\n`],
    [['follow', '-z', '0', 'smtp', 'port', '25'], 2, "sockcap: no capture file: give one as an argument or with -r FILE ('smtp' is no file, so it began a filter)\n"],
    [['replay', SMTP, 'ip6'], 6, "sockcap: no frames passed the filter 'ip6' (60 read)\n"],
    // a mistyped second file: taken for a filter, and said so
    [['replay', SMTP, 'fixtures/tcp/smtpp.pcp'], 2, "sockcap: 'fixtures/tcp/smtpp.pcp' is no file, so it began a filter: filter 'fixtures/tcp/smtpp.pcp' (link type EN10MB): can't parse filter expression: syntax error\n"],
  ];
  for (const [args, code, line] of cases) {
    const r = await cli(args);
    t.is(r.code, code, args.join(' '));
    t.is(r.stderr, line, args.join(' '));
  }
});

when(HAS_TCPDUMP, 'needs tcpdump')('splice and fuse take a filter: the splice of the relay capture is the same with a filter that keeps all of its frames, and nothing with one that keeps none', async (t) => {
  const relay = fixture('splice/relay-lo.pcap');
  const args = ['--from', '0:c2s', '--to', '1:s2c', '--json'];
  const all = await cli(['splice', relay, ...args]);
  const kept = await cli(['splice', relay, 'tcp', ...args]);
  t.is(kept.code, all.code);
  t.deepEqual(JSON.parse(kept.stdout), JSON.parse(all.stdout));
  const none = await cli(['fuse', relay, 'ip6', '--json']);
  t.is(none.code, 6);
  t.regex(none.stderr, /no frames passed the filter 'ip6'/);
});
