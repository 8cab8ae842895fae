import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { CLI, fixture, HAS_TSHARK } from '../helpers/paths.js';
import { cli, tmp } from '../helpers/cli.js';
import { join } from 'node:path';
import { gapMarker, withGapMarkers } from '../../core/follow.js';
import fc from 'fast-check';
import { when } from '../helpers/skip.js';
import { holesCapture, rawBytes } from '../helpers/follow.js';
import { fakeCap } from '../helpers/fake-cap.js';

const run = promisify(execFile);

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

/** tshark's follow YAML read back: the peers' host and port, and each packet's number, peer, time and bytes. */
function parseYaml(text: string): { peers: string[]; packets: Array<{ packet: number; peer: number; timestamp: string; data: Buffer }> } {
  const m = /^peers:\n((?: {2}- peer: \d\n {4}host: .*\n {4}port: \d+\n)*)packets:\n((?: {2}- packet: \d+\n {4}peer: [01]\n {4}timestamp: \d+\.\d{9}\n {4}data: !!binary \|\n(?: {6}[A-Za-z0-9+/=]{1,76}\n)+)*)$/.exec(text);
  if (!m) throw new Error(`not tshark's follow YAML:\n${text.slice(0, 400)}`);
  const peers = [...m[1]!.matchAll(/host: (.*)\n {4}port: (\d+)/g)].map((x) => `${x[1]} ${x[2]}`);
  const packets = [...m[2]!.matchAll(/- packet: (\d+)\n {4}peer: ([01])\n {4}timestamp: (\S+)\n {4}data: !!binary \|\n((?: {6}\S+\n)+)/g)].map((x) => {
    const lines = x[4]!.trim().split(/\n {6}/);
    if (lines.slice(0, -1).some((l) => l.length !== 76)) throw new Error('a base64 line of other than 76 characters before the last');
    return { packet: Number(x[1]), peer: Number(x[2]), timestamp: x[3]!, data: Buffer.from(lines.join(''), 'base64') };
  });
  return { peers, packets };
}

when(HAS_TSHARK, 'needs tshark')('follow yaml: the text tshark -z follow,tcp,yaml prints, character for character (peers, frame numbers, times as tshark prints them, base64 in lines of 76): IPv4 and IPv6, nanosecond pcap, pcapng of many interfaces, QinQ, fragments', async (t) => {
  const cases = [['tcp/smtp.pcap', 0], ['tcp/three-http-streams.pcap', 0], ['tcp/three-http-streams.pcap', 1], ['tcp/three-http-streams.pcap', 2], ['link/nanosecs-big-endian.pcap', 0],
    ['link/many-interfaces.pcapng', 0], ['ip/frag-ipv6-tcp.pcap', 0], ['link/qinqinq.pcap', 0], ['ip/frag-http-req.pcap', 0], ['splice/relay-lo.pcap', 1]] as const;
  let packets = 0;
  for (const [cap, stream] of cases) {
    const ours = await cli(['follow', fixture(cap), '-z', String(stream), '--format', 'yaml']);
    t.is(ours.code, 0, ours.stderr);
    const { stdout } = await run('tshark', ['-r', fixture(cap), '-q', '-z', `follow,tcp,yaml,${stream}`]);
    t.is(ours.stdout, stdout, `${cap} stream ${stream}`);
    packets += parseYaml(ours.stdout).packets.length;
  }
  t.true(packets >= 60, `${packets} packets compared`);
  const ns = parseYaml((await cli(['follow', fixture('link/nanosecs-big-endian.pcap'), '-z', '0', '--format', 'yaml'])).stdout);
  t.true(ns.packets.some((p) => !p.timestamp.endsWith('000')), 'nanosecond digits');
  t.regex(parseYaml((await cli(['follow', fixture('ip/frag-ipv6-tcp.pcap'), '-z', '0', '--format', 'yaml'])).stdout).peers[0]!, /^::1 \d+$/, 'an IPv6 host without brackets');
});

test('follow yaml at holes: each chunk names the frame it was read at and that frame\'s time; a marker is a chunk of its own at time 0 (as tshark prints it); each peer\'s bytes are the raw format\'s', async (t) => {
  const cap = holesCapture(t);
  const y = await cli(['follow', cap, '-z', '0', '--format', 'yaml']);
  t.is(y.code, 0, y.stderr);
  const { peers, packets } = parseYaml(y.stdout);
  t.deepEqual(peers, ['10.0.0.1 40000', '10.0.0.2 80']);
  // frame i + 1 of holesCapture is at 1700000000 + i s and i ms (tshark prints the double that
  // makes, 1700000002.002000093 for 1700000002.002): abc at 3, HELLO at 5, the rest when BYE (8)
  // skips the holes
  t.deepEqual(packets.map((p) => [p.packet, p.peer, p.timestamp, p.data.toString('latin1')]), [
    [3, 0, '1700000002.002000093', 'abc'],
    [5, 1, '1700000004.003999949', 'HELLO'],
    [8, 0, '0.000000000', '[4 bytes missing in capture file]\0'],
    [8, 0, '1700000007.006999969', 'xyzQQ'],
    [8, 0, '0.000000000', '[5 bytes missing in capture file]\0'],
    [8, 0, '1700000007.006999969', 'RR'],
    [8, 1, '1700000007.006999969', 'BYE'],
  ]);
  const raw = rawBytes((await cli(['follow', cap, '-z', '0', '--format', 'raw'])).stdout);
  t.true(Buffer.concat(packets.filter((p) => p.peer === 0).map((p) => p.data)).equals(raw.c2s));
  t.true(Buffer.concat(packets.filter((p) => p.peer === 1).map((p) => p.data)).equals(raw.s2c));
  if (HAS_TSHARK) {
    const ts = parseYaml((await run('tshark', ['-r', cap, '-q', '-z', 'follow,tcp,yaml,0'])).stdout);
    for (const peer of [0, 1]) t.true(Buffer.concat(ts.packets.filter((p) => p.peer === peer).map((p) => p.data)).equals(Buffer.concat(packets.filter((p) => p.peer === peer).map((p) => p.data))), `peer ${peer}: tshark's bytes`);
    t.deepEqual(ts.packets.filter((p) => p.data.toString('latin1').includes('missing')).map((p) => p.timestamp), ['0.000000000', '0.000000000'], 'tshark stamps its markers 0 too');
    t.deepEqual(ts.packets.filter((p) => ['abc', 'HELLO'].includes(p.data.toString('latin1'))).map((p) => [p.packet, p.timestamp]), [[3, '1700000002.002000093'], [5, '1700000004.003999949']], 'and the frames before the holes as here');
  }
  // --gaps zero: zeros for every hole (the 6 bytes the snaplen cut too), each a chunk at time 0
  const z = parseYaml((await cli(['follow', cap, '-z', '0', '--format', 'yaml', '--gaps', 'zero'])).stdout).packets;
  t.deepEqual(z.filter((p) => p.data.every((x) => x === 0)).map((p) => [p.packet, p.timestamp, p.data.length]), [[8, '0.000000000', 4], [8, '0.000000000', 6], [8, '0.000000000', 5]]);
  // a stream that carried no data: the peers and nothing more
  const none = await cli(['follow', fixture('tcp/three-http-streams.pcap'), '-z', '0', '--format', 'yaml', 'tcp[13] & 2 != 0']);
  t.is(none.code, 0, none.stderr);
  t.is(none.stdout, 'peers:\n  - peer: 0\n    host: 172.16.133.132\n    port: 54615\n  - peer: 1\n    host: 98.139.161.29\n    port: 80\npackets:\n');
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
  // a connection that carried no data: a lone RST from the server. Its header is printed when it
  // leaves the table, node 0 still the end that sent its first frame (the text and YAML headers)
  const tl2 = new Timeline();
  new Conv(tl2, { cport: 40000, sport: 80 }).rst('s');
  const rst = join(tmp(t), 'rst.pcap');
  writeFileSync(rst, tl2.pcap());
  const a = await cli(['follow', rst, '-z', '0', '--format', 'ascii']);
  t.is(a.code, 0, a.stderr);
  t.regex(a.stdout, /Node 0: 10\.0\.0\.2:80\nNode 1: 10\.0\.0\.1:40000\n=+\n$/);
  const y = await cli(['follow', rst, '-z', '0', '--format', 'yaml']);
  t.is(y.stdout, 'peers:\n  - peer: 0\n    host: 10.0.0.2\n    port: 80\n  - peer: 1\n    host: 10.0.0.1\n    port: 40000\npackets:\n');
  // a 4-tuple that names a refused attempt first (SYN, RST: no data) and then a connection that
  // talks: the one that talks is followed, the attempt's header is printed only when none talks
  const tl3 = new Timeline();
  new Conv(tl3, { cport: 40000, sport: 80, ciss: 1000 }).syn().rst('s');
  tl3.wait(1);
  new Conv(tl3, { cport: 40000, sport: 80, ciss: 5000 }).handshake().send('c', 'hello\r\n').close();
  const two = join(tmp(t), 'two.pcap');
  writeFileSync(two, tl3.pcap());
  const talk = await cli(['follow', two, '-z', '10.0.0.1:40000-10.0.0.2:80', '--format', 'ascii']);
  t.is(talk.code, 0, talk.stderr);
  t.regex(talk.stdout, /Filter: tcp\.stream eq 1\nNode 0: 10\.0\.0\.1:40000\nNode 1: 10\.0\.0\.2:80\n7\nhello\r\n\n=+\n$/);
  const first = await cli(['follow', two, '-z', '0', '--format', 'ascii']);
  t.regex(first.stdout, /Filter: tcp\.stream eq 0\nNode 0: 10\.0\.0\.1:40000\nNode 1: 10\.0\.0\.2:80\n=+\n$/, 'stream 0 by its index: its header alone');
  if (HAS_TSHARK) {
    for (const format of ['ascii', 'yaml']) {
      const ours = await cli(['follow', rst, '-z', '0', '--format', format]);
      const { stdout } = await run('tshark', ['-r', rst, '-q', '-z', `follow,tcp,${format},0`]);
      t.is(ours.stdout, stdout, `the RST: ${format}`);
    }
  }
});

test('follow keeps nothing per connection that has left (its peak RSS stays at replay\'s, not above it by the connections seen)', async (t) => {
  const { generate } = await import('../bench/gen.js');
  const { join } = await import('node:path');
  const { tmp, withPeakRss } = await import('../helpers/cli.js');
  const d = tmp(t);
  const cap = join(d, 'many.pcap');
  // 60,000 short connections, then what a run's peak RSS was (written by a preloaded hook at exit)
  await generate({ path: cap, bytes: 40 << 20, flows: 60_000, perFlow: 100 });
  const peak = withPeakRss(t, d);
  const follow = (await peak(['follow', cap, '-z', '7', '--format', 'raw'])).rss;
  const replay = (await peak(['replay', cap, '--json', '-q'])).rss;
  t.log(`follow ${follow.toFixed(0)} MiB, replay ${replay.toFixed(0)} MiB`);
  t.true(follow < replay + 8, `follow ${follow.toFixed(0)} MiB, replay ${replay.toFixed(0)} MiB`);
});


/**
 * Each direction's bytes from follow's hex dump, every line placed at the offset it gives (so the
 * offsets are checked too: a line at the wrong one leaves a hole or overwrites).
 */
function hexBytes(out: string): { c2s: string; s2c: string } {
  const at = { c2s: [] as number[], s2c: [] as number[] };
  for (const l of out.split('\n')) {
    const m = /^(\t?)([0-9A-F]{8})  ((?:[0-9a-f]{2} {1,2})+)/.exec(l);
    if (!m) continue;
    const dir = m[1] ? at.s2c : at.c2s;
    m[3]!.trim().split(/ +/).forEach((h, i) => (dir[parseInt(m[2]!, 16) + i] = parseInt(h, 16)));
  }
  const str = (a: number[]) => Array.from(a, (x) => (x === undefined ? '?' : String.fromCharCode(x))).join('');
  return { c2s: str(at.c2s), s2c: str(at.s2c) };
}

when(HAS_TSHARK, 'needs tshark')('follow: each hole the capture never had gets tshark\'s "[N bytes missing in capture file]" marker, each direction\'s text is tshark\'s (hex offsets count the markers); bytes the snaplen cut get none', async (t) => {
  const cap = holesCapture(t);
  const follow = async (format: string) => {
    const ours = await cli(['follow', cap, '-z', '0', '--format', format]);
    t.is(ours.code, 0, ours.stderr);
    const { stdout } = await run('tshark', ['-r', cap, '-q', '-z', `follow,tcp,${format},0`]);
    return [ours.stdout, stdout] as const;
  };
  // each direction's bytes are tshark's, markers and all; chunks and the order between directions
  // are not: the data after a hole comes when the hole is skipped (here at BYE, the server's second
  // ACK past it, three segments after HELLO's), in one read, where tshark prints each segment at
  // the first ACK that passes the hole (HELLO's)
  const [raw, tsRaw] = await follow('raw');
  const r = rawBytes(raw);
  const ts = rawBytes(tsRaw);
  t.is(r.c2s.toString('latin1'), 'abc[4 bytes missing in capture file]\0xyzQQ[5 bytes missing in capture file]\0RR');
  t.true(r.c2s.equals(ts.c2s) && r.s2c.equals(ts.s2c), 'raw: tshark\'s bytes in each direction');
  const [hex, tsHex] = await follow('hex');
  t.deepEqual(hexBytes(hex), hexBytes(tsHex), 'hex: the same bytes at the same offsets (tshark counts its markers)');
  t.regex(hex, /^00000025  78 79 7a 51 51 +xyzQQ$/m, 'the data after a 34-byte marker at 3 + 34');
  const [ascii] = await follow('ascii');
  t.regex(ascii, /^34\n\[4 bytes missing in capture file\]\.\n5\nxyzQQ\n34\n\[5 bytes missing in capture file\]\.\n2\nRR\n/m, 'ascii: each marker a chunk of its own, its NUL a dot');
  t.regex(ascii, /\n\t5\nHELLO\n34\n\[4 bytes[^]*\n2\nRR\n\t3\nBYE\n/, 'the data behind the holes comes before BYE, the ACK that skipped them');
});

test('follow --gaps skip: no markers, the bytes after a hole follow at once (as a socket reads them)', async (t) => {
  const cap = holesCapture(t);
  const r = await cli(['follow', cap, '-z', '0', '--format', 'raw', '--gaps', 'skip']);
  t.is(r.code, 0, r.stderr);
  const { c2s, s2c } = rawBytes(r.stdout);
  t.is(c2s.toString('latin1'), 'abcxyzQQRR');
  t.is(s2c.toString('latin1'), 'HELLOBYE');
  const marked = rawBytes((await cli(['follow', cap, '-z', '0', '--format', 'raw'])).stdout);
  t.is(marked.c2s.toString('latin1'), 'abc[4 bytes missing in capture file]\0xyzQQ[5 bytes missing in capture file]\0RR');
});

test('replay --json and extract\'s index mark the holes the snaplen cut ("snaplen" third) apart from segments never captured; tcpstat counts their bytes', async (t) => {
  const cap = holesCapture(t);
  const r = await cli(['replay', cap, '--json']);
  t.is(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { bytes: number; wireBytes: number; connections: Array<{ c2s: { gaps: unknown } }>; tcpstat: Record<string, number> };
  // c2s: "abc", 4 bytes never captured, "xyz", "QQ" and the 6 bytes after it cut, 5 never captured, "RR"
  t.deepEqual(j.connections[0]!.c2s.gaps, [[3, 4], [8, 6, 'snaplen'], [8, 5]]);
  t.is(j.tcpstat.gapbytes, 15);
  t.is(j.tcpstat.snaplenbytes, 6);
  t.is(j.tcpstat.snaplenbytes, j.wireBytes - j.bytes, 'the bytes the capture\'s frames lost to the snaplen');
  const text = await cli(['replay', cap]);
  t.regex(text.stdout, /^\t6 snaplenbytes$/m);
  for (const [mode, want] of [['skip', [[3, 4], [8, 6, 'snaplen'], [8, 5]]], ['zero', [[3, 4], [12, 6, 'snaplen'], [18, 5]]]] as const) {
    const dir = join(tmp(t), mode);
    const x = await cli(['extract', cap, '-o', dir, '-q', '--gaps', mode]);
    t.is(x.code, 0, x.stderr);
    const index = JSON.parse(readFileSync(join(dir, 'sockcap-index.json'), 'utf8')) as Array<{ dir: string; gaps?: unknown }>;
    t.deepEqual(index.find((e) => e.dir === 'c2s')!.gaps, want, `--gaps ${mode}`);
    t.is(index.find((e) => e.dir === 's2c')!.gaps, undefined);
  }
});

test('withGapMarkers: for any chunking and any holes, the pieces are the data with one marker before the byte at each hole\'s offset (none for snaplen cuts), and no gap is passed over or shown twice', (t) => {
  fc.assert(fc.property(
    fc.uint8Array({ minLength: 1, maxLength: 64 }),
    fc.array(fc.integer({ min: 1, max: 63 }), { maxLength: 6 }),
    fc.array(fc.tuple(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 1, max: 5000 }), fc.boolean()), { maxLength: 6 }),
    (data, cutsAt, raw) => {
      // gaps in delivered order (offsets not decreasing); reads end wherever cutsAt says
      const gaps = raw.map(([at, len, cut]) => (cut ? [at, len, 1] : [at, len]) as [number, number, 1?]).sort((a, b) => a[0] - b[0]);
      const ends = [...new Set(cutsAt.filter((x) => x < data.length)), data.length].sort((a, b) => a - b);
      const out: Buffer[] = [];
      let next = 0;
      let off = 0;
      for (const end of ends) {
        // a read hands over views, sometimes more than one
        const mid = (off + end) >> 1;
        const chunk = [data.subarray(off, mid), data.subarray(mid, end)].filter((v) => v.length);
        next = withGapMarkers(chunk, off, gaps, next, (views) => out.push(...views.map((v) => Buffer.from(v))));
        off = end;
      }
      // the expected text: a marker before byte `at` for each uncut gap whose `at` is inside the data
      const want: Buffer[] = [];
      let at = 0;
      for (const [o, len, cut] of gaps) {
        if (o >= data.length || cut) continue;
        want.push(Buffer.from(data.subarray(at, o)), gapMarker(len));
        at = o;
      }
      want.push(Buffer.from(data.subarray(at)));
      return Buffer.concat(out).equals(Buffer.concat(want)) && next === gaps.filter((g) => g[0] < data.length).length;
    },
  ), { numRuns: 500 });
  t.pass();
});

test('follow stops reading once the followed connection has left the table: on a stream that never ends (stdin held open) it prints the stream and exits, with what reading the whole capture prints', async (t) => {
  // three-http-streams: stream 0 closes before the capture's end; its frames, then nothing more
  // while stdin stays open (a capture being written, a pipe from a live tcpdump)
  const cap = fixture('tcp/three-http-streams.pcap');
  const file = readFileSync(cap);
  const openStdin = async (args: string[]): Promise<{ code: number | null; out: string }> => {
    const p = spawn(process.execPath, [CLI, 'follow', '-', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.setEncoding('latin1').on('data', (d: string) => (out += d));
    p.stdin.write(file);
    const timer = setTimeout(() => p.kill('SIGKILL'), 20_000);
    const code = await new Promise<number | null>((r) => p.on('close', r));
    clearTimeout(timer);
    p.stdin.destroy();
    return { code, out };
  };
  const whole = await cli(['follow', cap, '-z', '0', '--format', 'hex']);
  t.is(whole.code, 0, whole.stderr);
  const all = await openStdin(['-z', '0', '--format', 'hex']);
  t.is(all.code, 0, 'exited by itself, stdin still open');
  t.is(all.out, whole.stdout);
  const c2s = await openStdin(['-z', '0:c2s', '--format', 'hex']);
  t.is(c2s.code, 0);
  t.is(rawHex(c2s.out), rawHex(whole.stdout.split('\n').filter((l) => !l.startsWith('\t')).join('\n')));
  // a selector by endpoints stops the same way once the connection it followed has left
  const raw = await cli(['follow', cap, '-z', '0', '--format', 'raw']);
  const ends = `${/^Node 0: (\S+)$/m.exec(raw.stdout)![1]}-${/^Node 1: (\S+)$/m.exec(raw.stdout)![1]}`;
  const byEnds = await openStdin(['-z', ends, '--format', 'raw']);
  t.is(byEnds.code, 0);
  t.deepEqual(rawBytes(byEnds.out), rawBytes(raw.stdout));
});

/** The hex digits of follow's hex dump, in order (the dump's offsets and text column dropped). */
function rawHex(out: string): string {
  return out.split('\n').map((l) => /^\t?[0-9A-F]{8}  ((?:[0-9a-f]{2} {1,2})+)/.exec(l)?.[1]?.replace(/ /g, '') ?? '').join('');
}

/** Every chunk of tshark-style raw follow output, decoded in order: both directions interleaved as read. */
function rawInterleaved(out: string): Buffer {
  return Buffer.from(out.split('\n').filter((l) => /^\t?[0-9a-f]+$/.test(l)).map((l) => l.replace('\t', '')).join(''), 'hex');
}

test('follow --format bytes: the stream\'s own bytes and nothing else, both directions interleaved as read (what raw shows in hex, chunk for chunk), one direction, and extract\'s file for it', async (t) => {
  const d = tmp(t);
  for (const [cap, stream] of [[fixture('tcp/three-http-streams.pcap'), '1'], [fixture('tcp/smtp.pcap'), '0']] as const) {
    const bytes = await cli(['follow', cap, '-z', stream, '--format', 'bytes']);
    t.is(bytes.code, 0, bytes.stderr);
    const raw = await cli(['follow', cap, '-z', stream, '--format', 'raw']);
    t.true(Buffer.from(bytes.stdout, 'latin1').equals(rawInterleaved(raw.stdout)), `${cap}: raw's chunks, decoded, in order`);
    t.true(bytes.stdout.length > 500);
    // one direction: extract's file of it, byte for byte
    const x = join(d, `x${stream}`);
    t.is((await cli(['extract', cap, '-o', x, '-q'])).code, 0);
    const index = JSON.parse(readFileSync(join(x, 'sockcap-index.json'), 'utf8')) as Array<{ stream: number; dir: string; file: string }>;
    for (const dir of ['c2s', 's2c']) {
      const one = await cli(['follow', cap, '-z', `${stream}:${dir}`, '--format', 'bytes']);
      const e = index.find((f) => f.stream === Number(stream) && f.dir === dir)!;
      t.true(Buffer.from(one.stdout, 'latin1').equals(readFileSync(join(x, e.file))), `${cap} ${dir}: extract's file`);
    }
  }
});

test('follow --format bytes at holes: nothing by default (as a socket reads past them), zeros with --gaps zero (each byte at its stream offset, as extract --gaps zero writes), tshark\'s marker only when asked; --gaps zero in the text formats too', async (t) => {
  const cap = holesCapture(t);
  const f = async (...a: string[]) => {
    const r = await cli(['follow', cap, '-z', '0:c2s', '--format', ...a]);
    t.is(r.code, 0, r.stderr);
    return r.stdout;
  };
  t.is(await f('bytes'), 'abcxyzQQRR');
  // the snaplen's cut is a hole too: 6 bytes of the segment never captured
  t.is(await f('bytes', '--gaps', 'zero'), `abc${'\0'.repeat(4)}xyzQQ${'\0'.repeat(6 + 5)}RR`);
  t.is(await f('bytes', '--gaps', 'marker'), 'abc[4 bytes missing in capture file]\0xyzQQ[5 bytes missing in capture file]\0RR');
  t.is(rawBytes(await f('raw', '--gaps', 'zero')).c2s.toString('latin1'), await f('bytes', '--gaps', 'zero'));
  const x = join(tmp(t), 'x');
  t.is((await cli(['extract', cap, '-o', x, '-q', '--gaps', 'zero'])).code, 0);
  t.is(readFileSync(join(x, '010.000.000.001.40000-010.000.000.002.00080'), 'latin1'), await f('bytes', '--gaps', 'zero'));
});

test('follow --format bytes of a large stream through a slow pipe: every byte, in order, while the read chunks are reused (each is held until stdout has taken its views)', async (t) => {
  const { generate } = await import('../bench/gen.js');
  const path = join(tmp(t), 'g.pcap');
  await generate({ path, bytes: 24e6, flows: 4, perFlow: 5e6 });
  const x = join(tmp(t), 'x');
  t.is((await cli(['extract', path, '-o', x, '-q'])).code, 0);
  const index = JSON.parse(readFileSync(join(x, 'sockcap-index.json'), 'utf8')) as Array<{ stream: number; dir: string; file: string }>;
  const want = readFileSync(join(x, index.find((f) => f.stream === 2 && f.dir === 'c2s')!.file));
  t.true(want.length > 4e6);
  // a reader that takes its time: the pipe fills and stdout's writes wait
  const p = spawn(process.execPath, [CLI, 'follow', path, '-z', '2:c2s', '--format', 'bytes']);
  const got: Buffer[] = [];
  let pauses = 0;
  p.stdout.on('data', (b: Buffer) => {
    got.push(b);
    p.stdout.pause();
    pauses++;
    setTimeout(() => p.stdout.resume(), 2);
  });
  const [code] = await Promise.all([new Promise<number>((resolve) => p.on('close', (c) => resolve(c ?? -1))), once(p.stdout, 'end')]);
  t.is(code, 0);
  t.true(pauses > 20, `${pauses} pauses`);
  t.true(Buffer.concat(got).equals(want));
});

/** Run the CLI with its standard output (and input, and error) a terminal: script(1) gives it a pseudo-terminal. */
function onTerminal(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const cmd = [process.execPath, CLI, ...args].map(q).join(' ');
  return new Promise((resolve, reject) => {
    execFile('script', ['-qec', cmd, '/dev/null'], { env: { ...process.env, ...env }, encoding: 'latin1' }, (e, stdout) => {
      if (e && typeof e.code !== 'number') return reject(e);
      resolve({ code: e ? (e.code as number) : 0, out: stdout });
    });
  });
}

test('follow --format bytes refuses a terminal (curl does, for binary): usage error, nothing of the stream written; piped, the bytes go; the text formats print there', async (t) => {
  const cap = fixture('tcp/smtp.pcap');
  const bytes = await cli(['follow', cap, '-z', '0:c2s', '--format', 'bytes']);
  const secret = bytes.stdout.slice(0, 40); // the start of what the client sent
  t.true(secret.length === 40);
  const tty = await onTerminal(['follow', cap, '-z', '0:c2s', '--format', 'bytes']);
  t.is(tty.code, 2, tty.out);
  t.regex(tty.out, /--format bytes writes the stream's own bytes, which a terminal would take as control sequences: redirect them/);
  t.false(tty.out.includes(secret), 'none of the stream reached the terminal');
  // through a pipe inside the same terminal: every byte
  const shell = await new Promise<string>((resolve, reject) =>
    execFile('script', ['-qec', `'${process.execPath}' '${CLI}' follow '${cap}' -z 0:c2s --format bytes | wc -c`, '/dev/null'], { encoding: 'utf8' }, (e, out) => (e ? reject(e) : resolve(out))),
  );
  t.is(Number(shell.trim()), bytes.stdout.length);
  const ascii = await onTerminal(['follow', cap, '-z', '0:c2s', '--format', 'ascii']);
  t.is(ascii.code, 0);
  t.true(ascii.out.includes('Follow: tcp,ascii'), 'the text formats are for terminals');
  // live --follow refuses the same, before it opens the interface
  const dir = tmp(t);
  const live = await onTerminal(['live', '-i', 'fake0', '-q', '-c', '7', '--follow', '0', '--format', 'bytes'], { SOCKCAP_CAP_MODULE: fakeCap(dir), FAKE_CAP_PCAP: cap });
  t.is(live.code, 2, live.out);
  t.regex(live.out, /--format bytes writes the stream's own bytes/);
});
