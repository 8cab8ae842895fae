import test from 'ava';
import { parseErrorLine, route } from '../../cmd/argv.js';
import { COMMANDS } from '../../cmd/index.js';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, tmp } from '../helpers/cli.js';
import { fixture } from '../helpers/paths.js';

const names = Object.keys(COMMANDS);

test('route: help and -h are --help, help COMMAND is COMMAND --help; commands, flags and no arguments pass as they are', (t) => {
  t.deepEqual(route(['help'], names), { args: ['--help'] });
  t.deepEqual(route(['-h'], names), { args: ['--help'] });
  t.deepEqual(route(['help', 'follow'], names), { args: ['follow', '--help'] });
  t.deepEqual(route([], names), { args: [] });
  t.deepEqual(route(['--version'], names), { args: ['--version'] });
  t.deepEqual(route(['replay', 'x.pcap', '-q'], names), { args: ['replay', 'x.pcap', '-q'] });
  t.deepEqual(route(['help', 'nope'], names), { error: "'nope' is not a command (commands: extract, follow, fuse, live, replay, splice; sockcap --help)" });
});

test('route: a word that is no command names the nearest one (two edits at most), or the command that reads a capture when it looks like a file', (t) => {
  const err = (w: string) => (route([w, 'x.pcap'], names) as { error: string }).error;
  t.regex(err('replya'), /^'replya' is not a command: did you mean 'replay'\?/);
  t.regex(err('extrct'), /did you mean 'extract'\?/);
  t.regex(err('fues'), /did you mean 'fuse'\?/);
  t.regex(err('folow'), /did you mean 'follow'\?/);
  t.regex(err('capture.pcap'), /: to read a capture: sockcap replay capture\.pcap /);
  t.notRegex(err('statistics'), /did you mean|to read/);
});

test('the CLI: help and -h print the commands (exit 0), help COMMAND its usage, an unknown command one line and exit 2', async (t) => {
  for (const a of [['help'], ['-h']]) {
    const r = await cli(a);
    t.is(r.code, 0, r.stderr);
    for (const c of names) t.regex(r.stdout, new RegExp(`^  ${c} `, 'm'));
  }
  const h = await cli(['help', 'follow']);
  t.is(h.code, 0);
  t.regex(h.stdout, /\$ sockcap follow /);
  const bad = await cli(['replya', fixture('tcp/smtp.pcap')]);
  t.is(bad.code, 2);
  t.is(bad.stdout, '');
  t.is(bad.stderr, "sockcap: 'replya' is not a command: did you mean 'replay'? (commands: extract, follow, fuse, live, replay, splice; sockcap --help)\n");
});

test('a mistyped flag is one line naming the nearest flag of the command (--no- forms too), exit 2, no help dumped and nothing on stdout, with --json as well', async (t) => {
  const r = await cli(['replay', '--jsn', fixture('tcp/smtp.pcap')]);
  t.is(r.code, 2);
  t.is(r.stdout, '');
  t.is(r.stderr, 'sockcap: replay: unknown flag --jsn (did you mean --json?); sockcap replay --help lists them\n');
  const x = await cli(['extract', fixture('tcp/smtp.pcap'), '-o', 'unused', '--hsh', '--no-checksum', '--zzz', '--json']);
  t.is(x.code, 2);
  t.is(x.stdout, '');
  t.is(x.stderr, 'sockcap: extract: unknown flags --hsh (did you mean --hash?), --no-checksum, --zzz; sockcap extract --help lists them\n');
  const n = await cli(['replay', '--no-checksum', fixture('tcp/smtp.pcap')]);
  t.regex(n.stderr, /unknown flag --no-checksum \(did you mean --no-checksums\?\)/);
});

test('oclif\'s other parse errors are one sockcap line each, exit 2: a missing required flag, a value not among the options, a bad number, a flag without its value', async (t) => {
  for (const [argv, line] of [
    [['extract', fixture('tcp/smtp.pcap')], 'extract: missing required flag outdir; sockcap extract --help'],
    [['follow', fixture('tcp/smtp.pcap'), '-z', '0', '--format', 'json'], 'follow: expected --format=json to be one of: raw, hex, ascii, yaml, bytes; sockcap follow --help'],
    [['replay', fixture('tcp/smtp.pcap'), '-c', 'abc'], 'replay: parsing --count: Expected an integer but received: abc; sockcap replay --help'],
    [['replay', fixture('tcp/smtp.pcap'), '--overlap'], 'replay: flag --overlap expects one of these values: first, last; sockcap replay --help'],
  ] as const) {
    const r = await cli([...argv]);
    t.is(r.code, 2, argv.join(' '));
    t.is(r.stdout, '');
    t.is(r.stderr, `sockcap: ${line}\n`, argv.join(' '));
  }
});

test('parseErrorLine: only oclif\'s parse errors (their help tail, or a flag without a value); several reasons joined on one line', (t) => {
  t.is(parseErrorLine('x', 'ENOENT: no such file'), null);
  t.is(parseErrorLine('x', 'The following errors occurred:\n  Missing required flag a\n  Missing required flag b\nSee more help with --help'),
    'x: missing required flag a; Missing required flag b; sockcap x --help');
});

test('-n, typed from tcpdump and tshark by habit, is accepted by every command and changes nothing', async (t) => {
  const smtp = fixture('tcp/smtp.pcap');
  const relay = fixture('splice/relay-lo.pcap');
  for (const args of [['replay', smtp, '--json'], ['follow', '-z', '0', smtp], ['splice', relay, '--from', '0:c2s', '--to', '1:s2c', '--json'], ['fuse', relay, '--json']]) {
    const [plain, n] = await Promise.all([cli(args), cli([args[0]!, '-n', ...args.slice(1)])]);
    t.is(n.code, 0, n.stderr);
    t.is(n.stdout, plain.stdout, args.join(' '));
  }
  t.regex((await cli(['live', '--help'])).stdout, /-n, --numeric/);
});

test('-c N stops every file command after N frames: its output is the command\'s on the first N frames written by replay -c N -w', async (t) => {
  const d = tmp(t);
  const cases: Array<[string, number, string[]]> = [
    [fixture('tcp/three-http-streams.pcap'), 12, ['follow', '-z', '1', '--format', 'hex']],
    [fixture('tcp/smtp.pcap'), 20, ['replay', '--json']],
    [fixture('splice/relay-lo.pcap'), 30, ['splice', '--from', '0:c2s', '--to', '1:s2c', '--json']],
    [fixture('splice/relay-lo.pcap'), 30, ['fuse', '--json']],
  ];
  for (const [file, n, [cmd, ...rest]] of cases) {
    const cut = join(d, `${cmd}-first-${n}.pcap`);
    t.is((await cli(['replay', file, '-c', String(n), '-w', cut, '-q', '--json'])).code, 0);
    const [a, b] = await Promise.all([cli([cmd!, file, '-c', String(n), ...rest]), cli([cmd!, cut, ...rest])]);
    t.is(a.code, b.code, `${cmd}: ${a.stderr}`);
    const same = (s: string) => s.replaceAll(file, 'F').replaceAll(cut, 'F');
    if (cmd === 'replay') {
      // the report names its file and its frame count there: the rest is the same
      const [ja, jb] = [JSON.parse(a.stdout), JSON.parse(b.stdout)] as Array<{ frames: number; files: unknown; chunks: unknown }>;
      t.is(ja.frames, n);
      t.deepEqual({ ...ja, files: null, chunks: null }, { ...jb, files: null, chunks: null });
    } else t.is(same(a.stdout), same(b.stdout), cmd);
  }
  const x = join(d, 'x');
  const y = join(d, 'y');
  const cut = join(d, 'http-first-14.pcap');
  await cli(['replay', fixture('tcp/three-http-streams.pcap'), '-c', '14', '-w', cut, '-q']);
  t.is((await cli(['extract', fixture('tcp/three-http-streams.pcap'), '-c', '14', '-o', x, '-q'])).code, 0);
  t.is((await cli(['extract', cut, '-o', y, '-q'])).code, 0);
  const files = readdirSync(x).filter((f) => f !== 'sockcap-index.json').sort();
  t.deepEqual(files, readdirSync(y).filter((f) => f !== 'sockcap-index.json').sort());
  t.true(files.length > 0);
  for (const f of files) t.true(readFileSync(join(x, f)).equals(readFileSync(join(y, f))), f);
});
