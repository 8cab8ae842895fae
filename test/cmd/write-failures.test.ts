import test from 'ava';
import { closeSync, existsSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { pcapFile, tcpFrame } from '../helpers/build.js';
import { TH_ACK, TH_FIN, TH_SYN } from '../../core/wire/tcp.js';
import { cli, collect, tmp } from '../helpers/cli.js';
import { CLI, fixture } from '../helpers/paths.js';
import { when } from '../helpers/skip.js';

const HAS_DEV_FULL = existsSync('/dev/full');

/** Run the CLI with its standard output on /dev/full (every write: ENOSPC). */
async function toDevFull(args: string[]): Promise<{ code: number; stderr: string }> {
  const fd = openSync('/dev/full', 'w');
  try {
    return await collect(process.execPath, [CLI, ...args], { stdout: fd });
  } finally {
    closeSync(fd);
  }
}

when(HAS_DEV_FULL, 'needs /dev/full')('standard output that cannot be written (a full disk) is one line and exit 5, for every kind of output', async (t) => {
  const cap = fixture('tcp/three-http-streams.pcap');
  for (const args of [['replay', cap], ['replay', cap, '--json'], ['replay', cap, '-w', '-'], ['follow', cap, '-z', '0'], ['follow', cap, '-z', '0', '--format', 'raw']]) {
    const r = await toDevFull(args);
    t.is(r.code, 5, args.join(' '));
    const error = 'sockcap: standard output: cannot write: ENOSPC: no space left on device, write\n';
    if (args.includes('-w')) {
      // -w -: the report is on stderr, and its connections are written as they finish (in stream
      // order): rows of the table may come before the error, which is the one line after them
      t.true(r.stderr.endsWith(error), args.join(' '));
      const before = r.stderr.slice(0, -error.length).split('\n').filter(Boolean);
      t.true(before.every((l, i) => (i === 0 ? l.startsWith('stream  client') : /^\d+ +172\.16\./.test(l))), before.join('\n'));
    } else t.is(r.stderr, error, args.join(' '));
  }
});

const ROOT = process.getuid?.() === 0;

when(ROOT, 'needs root (mknod)')('extract whose index cannot be written at all names it and exits 5 before reading', async (t) => {
  const out = join(tmp(t), 'out');
  mkdirSync(out);
  // /dev/full's device (1, 7) under the index's name: it opens, and every write to it fails
  execFileSync('mknod', [join(out, 'sockcap-index.json'), 'c', '1', '7']);
  const r = await cli(['extract', fixture('tcp/three-http-streams.pcap'), '-o', out, '-q']);
  t.is(r.code, 5);
  t.is(r.stderr, `sockcap: ${join(out, 'sockcap-index.json')}: cannot write: ENOSPC: no space left on device, write\n`);
  t.deepEqual(readdirSync(out), ['sockcap-index.json']);
});

/** A capture of one connection whose client sends `n` bytes (10.0.0.1:40000 -> 10.0.0.2:80), then FIN. */
function oneFlow(dir: string, n: number): string {
  const c = { src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 80 };
  const s = { src: c.dst, dst: c.src, sport: c.dport, dport: c.sport };
  const segs = [];
  for (let off = 0; off < n; off += 1400) segs.push({ data: tcpFrame({ ...c, seq: 100 + off, ack: 500, flags: TH_ACK, payload: new Uint8Array(Math.min(1400, n - off)).fill(65) }) });
  const file = join(dir, `flow-${n}.pcap`);
  writeFileSync(file, pcapFile([
    { data: tcpFrame({ ...c, seq: 99, flags: TH_SYN }) },
    { data: tcpFrame({ ...s, seq: 499, ack: 100, flags: TH_SYN | TH_ACK }) },
    ...segs,
    { data: tcpFrame({ ...c, seq: 100 + n, ack: 500, flags: TH_FIN | TH_ACK }) },
    { data: tcpFrame({ ...s, seq: 500, ack: 101 + n, flags: TH_FIN | TH_ACK }) },
  ]));
  return file;
}

test('extract never writes through a symbolic link, nor waits on a FIFO, left under a flow\'s name or the index\'s in the output directory (names come from the capture: predictable): one line naming it, exit 5; the link\'s target untouched', async (t) => {
  const d = tmp(t);
  const target = join(d, 'target');
  writeFileSync(target, 'untouched');
  const name = '010.000.000.001.40000-010.000.000.002.00080';
  // 7,000 bytes: written by the main thread; 300: by the small-file writer thread
  for (const n of [7000, 300]) {
    const cap = oneFlow(d, n);
    for (const kind of ['symlink', 'fifo'] as const) {
      for (const under of [name, 'sockcap-index.json']) {
        const out = join(d, `out-${n}-${kind}-${under.length}`);
        mkdirSync(out);
        if (kind === 'symlink') symlinkSync(target, join(out, under));
        else execFileSync('mkfifo', [join(out, under)]);
        const r = await cli(['extract', cap, '-o', out, '-q']);
        const what = `${n} bytes, a ${kind} as ${under}`;
        t.is(r.code, 5, what);
        const why = kind === 'symlink' ? 'ELOOP: too many symbolic links encountered, open .* \\(a symbolic link: not followed\\)' : 'ENXIO: no such device or address, open .* \\(not a regular file\\)';
        t.regex(r.stderr, new RegExp(`^sockcap: ${join(out, under)}: cannot write: ${why}\n$`), what);
      }
    }
  }
  t.is(readFileSync(target, 'latin1'), 'untouched');
});

test('extract whose files stop growing mid-run (ulimit -f: EFBIG) says which file in one line and exits 5', async (t) => {
  const out = join(tmp(t), 'out');
  // 512 bytes a file at most; SIGXFSZ ignored (inherited through exec), so writes past it fail
  const r = await collect('sh', ['-c', 'trap "" XFSZ; ulimit -f 1; exec "$0" "$@"', process.execPath, CLI, 'extract', fixture('tcp/three-http-streams.pcap'), '-o', out]);
  t.is(r.code, 5, r.stderr);
  t.regex(r.stderr, new RegExp(`^sockcap: ${out}/[^:]+: cannot write: EFBIG: file too large, write\n$`));
  // what fitted was written, and the summary says what was handed out
  t.regex(r.stdout, /^6 files, 2,935 bytes from 3 connections/);
  t.true(readdirSync(out).includes('172.016.133.132.54615-098.139.161.029.00080'));
});

test('-w naming an input capture (itself, a symbolic or a hard link) is refused before it is truncated: exit 2, the capture intact', async (t) => {
  const d = tmp(t);
  const cap = join(d, 'in.pcap');
  const orig = readFileSync(fixture('tcp/smtp.pcap'));
  writeFileSync(cap, orig);
  symlinkSync(cap, join(d, 'sym.pcap'));
  linkSync(cap, join(d, 'hard.pcap'));
  for (const [cmd, ...rest] of [['replay'], ['splice', '--from', '0:c2s', '--to', '0:s2c'], ['fuse']]) {
    for (const out of ['in.pcap', 'sym.pcap', 'hard.pcap']) {
      const r = await cli([cmd!, fixture('tcp/three-http-streams.pcap'), cap, ...rest, '-w', join(d, out), '-q']);
      t.is(r.code, 2, `${cmd} -w ${out}`);
      t.is(r.stderr, `sockcap: -w ${join(d, out)} is the input capture ${cap}: writing it would destroy what is being read\n`);
      t.true(readFileSync(cap).equals(orig));
    }
  }
  // another file is written as before
  const r = await cli(['replay', cap, '-w', join(d, 'out.pcap'), '-q']);
  t.is(r.code, 0, r.stderr);
});
