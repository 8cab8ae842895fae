import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fixture, HAS_TSHARK } from '../helpers/paths.js';
import { cli } from '../helpers/cli.js';
import { when } from '../helpers/skip.js';

const run = promisify(execFile);

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

when(HAS_TSHARK, 'needs tshark')('follow ascii and hex: the text tshark -z follow,tcp prints, character for character (lengths, CR/LF, dots, offsets, the split at byte 8)', async (t) => {
  for (const [cap, streams] of [['tcp/three-http-streams.pcap', [0, 1, 2]], ['tcp/smtp.pcap', [0]]] as const) {
    for (const stream of streams) {
      for (const format of ['ascii', 'hex']) {
        const ours = await cli(['follow', fixture(cap), '-z', String(stream), '--format', format]);
        t.is(ours.code, 0, ours.stderr);
        const { stdout } = await run('tshark', ['-r', fixture(cap), '-q', '-z', `follow,tcp,${format},${stream}`]);
        t.is(ours.stdout, stdout, `${cap} stream ${stream} ${format}`);
      }
    }
  }
});

test('follow by 4-tuple with a direction; ascii and hex formats', async (t) => {
  const r = await cli(['follow', fixture('tcp/smtp.pcap'), '-z', '74.53.140.153:25-10.10.1.4:1470', '--direction', 's2c', '--format', 'ascii']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /Node 0: 10\.10\.1\.4:1470\nNode 1: 74\.53\.140\.153:25\n/);
  t.regex(r.stdout, /\t181\n220-xc90\.websitewelcome\.com ESMTP/, 'the server\'s chunk: its length after a tab, then its text');
  t.notRegex(r.stdout, /^EHLO/m, 'client data left out');
  const h = await cli(['follow', fixture('tcp/smtp.pcap'), '-z', '10.10.1.4:1470>74.53.140.153:25', '--format', 'hex']);
  t.regex(h.stdout, /^00000000  45 48 4c 4f 20 47 50 0d  0a {23}EHLO GP\. \.$/m);
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


test('follow: node 0 is the end that sent the first frame, as in tshark 4 (a capture that begins mid-connection with the server\'s data)', async (t) => {
  const { Conv, Timeline } = await import('../helpers/conv.js');
  const { writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmp } = await import('../helpers/cli.js');
  const tl = new Timeline();
  const c = new Conv(tl, { cport: 40000, sport: 80 });
  // no handshake: the server speaks first, then the client
  c.send('s', 'banner\r\n').send('c', 'hello\r\n').send('s', 'bye\r\n');
  const cap = join(tmp(t), 'mid.pcap');
  writeFileSync(cap, tl.pcap());
  const r = await cli(['follow', cap, '-z', '0', '--format', 'ascii']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /Node 0: 10\.0\.0\.2:80\nNode 1: 10\.0\.0\.1:40000\n8\nbanner\r\n\n\t7\nhello\r\n\n5\nbye\r\n\n=+\n$/);
  if (HAS_TSHARK) {
    for (const format of ['ascii', 'hex', 'raw']) {
      const ours = await cli(['follow', cap, '-z', '0', '--format', format]);
      const { stdout } = await run('tshark', ['-r', cap, '-q', '-z', `follow,tcp,${format},0`]);
      t.is(ours.stdout, stdout, format);
    }
  }
});

test('follow keeps nothing per connection that has left (its peak RSS stays at replay\'s, not above it by the connections seen)', async (t) => {
  const { generate } = await import('../bench/gen.js');
  const { readFileSync, writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmp } = await import('../helpers/cli.js');
  const d = tmp(t);
  const cap = join(d, 'many.pcap');
  // 60,000 short connections, then what a run's peak RSS was (written by a preloaded hook at exit)
  await generate({ path: cap, bytes: 40 << 20, flows: 60_000, perFlow: 100 });
  const hook = join(d, 'maxrss.cjs');
  writeFileSync(hook, `process.on('exit', () => require('fs').writeFileSync(process.env.MAXRSS_OUT, String(process.resourceUsage().maxRSS)));`);
  const peak = async (args: string[]) => {
    const out = join(d, `rss-${args[0]}`);
    const r = await cli(args, undefined, { NODE_OPTIONS: `--require ${hook}`, MAXRSS_OUT: out });
    t.true(r.code === 0, r.stderr);
    return Number(readFileSync(out, 'utf8')) / 1024; // MiB
  };
  const follow = await peak(['follow', cap, '-z', '7', '--format', 'raw']);
  const replay = await peak(['replay', cap, '--json', '-q']);
  t.log(`follow ${follow.toFixed(0)} MiB, replay ${replay.toFixed(0)} MiB`);
  t.true(follow < replay + 8, `follow ${follow.toFixed(0)} MiB, replay ${replay.toFixed(0)} MiB`);
});
