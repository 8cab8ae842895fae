import test from 'ava';
import { parseErrorLine, route } from '../../cmd/argv.js';
import { COMMANDS } from '../../cmd/index.js';
import { cli } from '../helpers/cli.js';
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
    [['follow', fixture('tcp/smtp.pcap'), '-z', '0', '--format', 'yaml'], 'follow: expected --format=yaml to be one of: raw, hex, ascii; sockcap follow --help'],
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
