import test from 'ava';
import { spawnSync } from 'node:child_process';
import { appendFileSync, closeSync, cpSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CLI, cliFirstLine, cliNodeFlags, fixture, ROOT } from '../helpers/paths.js';
import { tmp } from '../helpers/cli.js';

test('the CLI bundle (dist/sockcap.cjs) holds every command, and package.json points oclif at it', async (t) => {
  const bundle = createRequire(import.meta.url)(join(ROOT, 'dist', 'sockcap.cjs')) as { COMMANDS: Record<string, unknown>; execute: unknown };
  const plain = (await import(pathToFileURL(join(ROOT, 'dist', 'cmd', 'index.js')).href)) as { COMMANDS: Record<string, unknown> };
  t.deepEqual(Object.keys(bundle.COMMANDS).sort(), Object.keys(plain.COMMANDS).sort());
  t.is(typeof bundle.execute, 'function');
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { oclif: { commands: { target: string } } };
  t.is(pkg.oclif.commands.target, './dist/sockcap.cjs');
  // the entry (CommonJS: no ES module loader at start-up) loads the bundle, not the modules one by one
  const entry = readFileSync(join(ROOT, 'dist', 'cmd', 'run.cjs'), 'utf8');
  t.regex(entry, /\.\.\/sockcap\.cjs/);
  t.notRegex(entry, /^\s*(import|export)\s/m, 'no ES module syntax');
  t.false(existsSync(join(ROOT, 'dist', 'cmd', 'run.js')), 'one entry: tsc\'s ES module of it is gone');
  const code = readFileSync(join(ROOT, 'dist', 'sockcap.cjs'));
  // oclif by its subpaths, never its index (which loads all of oclif and semver at every start)
  t.false(code.includes('checkNodeVersion'), 'oclif\'s index is not in the bundle');
  // ASCII only: read into a one-byte string (a two-byte one took 7-11 ms more to decode)
  t.is(code.findIndex((b) => b > 0x7f), -1, 'no byte above 0x7f');
});

/** A copy of the built CLI in a directory of its own (its code cache is its own). */
function copyCli(t: Parameters<typeof tmp>[0]): { dir: string; run: (env?: Record<string, string>) => { stdout: string; stderr: string; status: number | null } } {
  const dir = tmp(t);
  cpSync(join(ROOT, 'dist', 'cmd'), join(dir, 'dist', 'cmd'), { recursive: true });
  cpSync(join(ROOT, 'dist', 'core'), join(dir, 'dist', 'core'), { recursive: true });
  cpSync(join(ROOT, 'dist', 'sockcap.cjs'), join(dir, 'dist', 'sockcap.cjs'));
  cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  const run = (env: Record<string, string> = {}) => {
    const r = spawnSync(process.execPath, [join(dir, 'dist', 'cmd', 'run.cjs'), 'replay', fixture('tcp/smtp.pcap'), '-q', '--json', '--hash'],
      { encoding: 'utf8', env: { ...process.env, SOCKCAP_CODE_CACHE: 'verbose', ...env } });
    return { stdout: r.stdout, stderr: r.stderr, status: r.status };
  };
  return { dir, run };
}

test('oclif sorts the commands by code units in the bundle (no ICU collator at start-up): the order localeCompare gives sockcap\'s ids', (t) => {
  const code = readFileSync(join(ROOT, 'dist', 'sockcap.cjs'), 'utf8');
  t.false(code.includes('a.id.localeCompare(b.id)'));
  t.regex(code, /\.sort\(\(a,\s*b\)\s*=>\s*\(?a\.id\s*<\s*b\.id\s*\?\s*-1/);
  const bundle = createRequire(import.meta.url)(join(ROOT, 'dist', 'sockcap.cjs')) as { COMMANDS: Record<string, unknown> };
  const ids = Object.keys(bundle.COMMANDS);
  t.true(ids.length > 5);
  t.deepEqual([...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), [...ids].sort((a, b) => a.localeCompare(b)));
});

test('a replay loads no child_process, perf_hooks or readline: oclif\'s load at first use, and its getPlatform asks is-wsl, not wsl-utils, which re-exports is-wsl\'s answer', async (t) => {
  const [wslUtils, isWsl] = ['wsl-utils', 'is-wsl'];
  const wsl = (await import(wslUtils)) as { isWsl: unknown };
  t.is(wsl.isWsl, ((await import(isWsl)) as { default: unknown }).default, 'the answer oclif asked wsl-utils for is is-wsl\'s');
  t.is(typeof wsl.isWsl, 'boolean');
  const probe = join(tmp(t), 'probe.cjs');
  writeFileSync(probe, "process.on('exit', () => process.stderr.write('loaded ' + JSON.stringify(process.moduleLoadList.filter((m) => /^NativeModule (child_process|perf_hooks|readline|dgram)$/.test(m))) + '\\n'));\n");
  const run = (...args: string[]) => spawnSync(process.execPath, [...cliNodeFlags(), CLI, ...args], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: `--require=${probe}` } });
  const plain = run('replay', fixture('tcp/smtp.pcap'), '-q', '--json');
  t.is(plain.status, 0, plain.stderr);
  t.regex(plain.stderr, /^loaded \[\]$/m);
  t.is((JSON.parse(plain.stdout) as { connections: unknown[] }).connections.length, 1);
  // a capture filter is compiled by tcpdump: child_process is loaded then, and works
  const filtered = run('replay', '-q', '--json', fixture('tcp/smtp.pcap'), 'tcp', 'port', '25');
  t.is(filtered.status, 0, filtered.stderr);
  t.regex(filtered.stderr, /^loaded \[.*"NativeModule child_process".*\]$/m);
  t.is((JSON.parse(filtered.stdout) as { connections: unknown[] }).connections.length, 1);
  // oclif's platform, in --version, is still os.platform()
  t.regex(run('--version').stdout, new RegExp(` ${process.platform}-${process.arch} `));
});

/** Packages whose modules oclif requires as it loads but whose code a run never calls (scripts/bundle.mjs loads them at first use). */
const LAZY = ['tinyglobby', 'fdir', 'picomatch', 'minimatch', 'lilconfig', 'ejs', 'cli-spinners', 'wrap-ansi', 'string-width', 'widest-line'];

/** Per package of LAZY: how many of its module wrappers in the bundle ran, of how many, in a run of the CLI under NODE_V8_COVERAGE. */
function lazyModulesRun(dir: string, ...args: string[]): { out: string; status: number | null; ran: Map<string, [number, number]> } {
  const cov = join(dir, `cov-${args.join('-').replace(/[^a-z]/g, '')}`);
  const r = spawnSync(process.execPath, [...cliNodeFlags(), CLI, ...args], { encoding: 'utf8', env: { ...process.env, NODE_V8_COVERAGE: cov } });
  const ran = new Map<string, [number, number]>(LAZY.map((p) => [p, [0, 0]]));
  for (const f of readdirSync(cov)) {
    const report = JSON.parse(readFileSync(join(cov, f), 'utf8')) as { result: Array<{ url: string; functions: Array<{ functionName: string; ranges: Array<{ count: number }> }> }> };
    for (const script of report.result.filter((s) => s.url.endsWith('sockcap.cjs'))) {
      for (const fn of script.functions) {
        // esbuild names each CommonJS module's wrapper by its path: "node_modules/ejs/lib/cjs/ejs.js"
        const pkg = /^node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(fn.functionName)?.[1];
        const e = pkg === undefined ? undefined : ran.get(pkg);
        if (e) {
          e[1]++;
          if (fn.ranges[0]!.count > 0) e[0]++;
        }
      }
    }
  }
  return { out: r.stdout + r.stderr, status: r.status, ran };
}

test('a replay runs none of the modules oclif loads for globbing, templates, spinners and formatting (loaded at first use); help and usage errors load and use them', (t) => {
  const dir = tmp(t);
  const replay = lazyModulesRun(dir, 'replay', fixture('tcp/smtp.pcap'), '-q', '--json');
  t.is(replay.status, 0, replay.out);
  for (const [pkg, [ran, all]] of replay.ran) {
    t.true(all > 0, `${pkg} is in the bundle`);
    t.is(ran, 0, `${pkg}: ${ran} of its ${all} modules ran in a replay`);
  }
  // help renders its examples with ejs (`<%= config.bin %>`) and wraps with wrap-ansi and string-width
  const help = lazyModulesRun(dir, 'replay', '--help');
  t.is(help.status, 0, help.out);
  t.regex(help.out, /^ {2}\$ sockcap replay fixtures\/tcp\/smtp\.pcap/m);
  for (const pkg of ['ejs', 'wrap-ansi', 'string-width', 'widest-line']) t.true(help.ran.get(pkg)![0] > 0, `help ran ${pkg}`);
  const bad = lazyModulesRun(dir, 'replay', '--no-such-flag');
  t.is(bad.status, 2);
  t.regex(bad.out, /^sockcap: replay: unknown flag --no-such-flag/m);
});

test('a replay writing to files loads no tty: oclif\'s debug loads only when DEBUG is set (and prints then), supports-color when colour is first asked (help still colours nothing in a pipe)', (t) => {
  const dir = tmp(t);
  const probe = join(dir, 'probe.cjs');
  writeFileSync(probe, "process.on('exit', () => process.stderr.write('loaded ' + JSON.stringify(process.moduleLoadList.filter((m) => /^NativeModule (tty|internal\\/tty)$/.test(m))) + '\\n'));\n");
  const run = (env: Record<string, string>, ...args: string[]) => {
    const out = join(dir, 'out');
    const err = join(dir, 'err');
    const fds = [openSync(out, 'w'), openSync(err, 'w')];
    const r = spawnSync(process.execPath, [...cliNodeFlags(), CLI, ...args], { stdio: ['ignore', fds[0]!, fds[1]!], env: { ...process.env, NODE_OPTIONS: `--require=${probe}`, ...env } });
    fds.forEach((fd) => closeSync(fd));
    return { status: r.status, stdout: readFileSync(out, 'utf8'), stderr: readFileSync(err, 'utf8') };
  };
  const plain = run({ DEBUG: '' }, 'replay', fixture('tcp/smtp.pcap'), '-q', '--json');
  t.is(plain.status, 0, plain.stderr);
  t.regex(plain.stderr, /^loaded \[\]$/m);
  t.is((JSON.parse(plain.stdout) as { connections: unknown[] }).connections.length, 1);
  const debug = run({ DEBUG: 'oclif:*' }, 'replay', fixture('tcp/smtp.pcap'), '-q', '--json');
  t.is(debug.status, 0, debug.stderr);
  t.regex(debug.stderr, /oclif:main process\.execPath: /, 'oclif\'s own debug lines');
  t.regex(debug.stderr, /^loaded \[.*"NativeModule tty".*\]$/m);
  t.is(debug.stdout, plain.stdout);
  const help = run({ DEBUG: '' }, 'replay', '--help');
  t.is(help.status, 0, help.stderr);
  t.regex(help.stdout, /^USAGE$/m);
  t.notRegex(help.stdout, /\x1b\[/, 'no colour into a file');
});

test('the code cache: written by a run that found none, used by the next, rewritten when the bundle changes, never needed', (t) => {
  const { dir, run } = copyCli(t);
  const cache = join(dir, 'dist', 'sockcap.cjs.v8cache');
  const first = run();
  t.is(first.status, 0, first.stderr);
  t.regex(first.stderr, /code cache none, written/);
  t.true(existsSync(cache));
  t.true(readFileSync(cache, 'latin1').startsWith(`${process.version} ${process.arch} `), 'it names the Node that made it');
  const second = run();
  t.regex(second.stderr, /code cache used/);
  t.is(second.stdout, first.stdout, 'the same output from cached code');
  // V8 checks only the source's length: a changed bundle must not run the old bytecode
  appendFileSync(join(dir, 'dist', 'sockcap.cjs'), '\n');
  t.regex(run().stderr, /code cache stale, written/);
  t.regex(run().stderr, /code cache used/);
  // a cache from another V8 (or other flags) is rejected by V8, and replaced
  const other = spawnSync(process.execPath, ['--no-lazy-feedback-allocation', join(dir, 'dist', 'cmd', 'run.cjs'), '--version'], { encoding: 'utf8', env: { ...process.env, SOCKCAP_CODE_CACHE: 'verbose' } });
  t.regex(other.stderr, /code cache rejected, written/);
  const off = run({ SOCKCAP_CODE_CACHE: 'off' });
  t.is(off.status, 0);
  t.is(off.stderr, '');
  t.is(off.stdout, first.stdout);
});

test('the code cache: a cache that cannot be written is none, and the run goes on', (t) => {
  // the cache's path taken by a directory, which no rename replaces (a read-only install behaves
  // alike; root could write there anyway)
  const { dir, run } = copyCli(t);
  mkdirSync(join(dir, 'dist', 'sockcap.cjs.v8cache'));
  const r = run();
  t.is(r.status, 0, r.stderr);
  t.regex(r.stderr, /code cache none, not written/);
  t.true(r.stdout.includes('"connections"'));
});

test('the CLI sets V8\'s old-generation growth (15%) unless the user gave node a --heap-growing-percent (flag or NODE_OPTIONS)', async (t) => {
  const { heapFlag, startFlags, HEAP_GROWING_PERCENT } = (await import(pathToFileURL(join(ROOT, 'dist', 'cmd', 'heap-flags.js')).href)) as typeof import('../../cmd/heap-flags.js');
  t.is(heapFlag([], undefined), `--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  t.is(HEAP_GROWING_PERCENT, 15);
  t.is(heapFlag(['--max-semi-space-size=32'], '--enable-source-maps'), '--heap-growing-percent=15');
  t.is(heapFlag(['--heap-growing-percent=80'], undefined), null);
  t.is(heapFlag([], '--max-old-space-size=900 --heap_growing_percent=10'), null);
  // at start: a semi-space flag (whoever gave it) goes back to V8's default, nothing else is set yet
  const set: string[] = [];
  const v8 = { set: (f: string) => void set.push(f), tag: () => 0 };
  t.deepEqual(startFlags(v8, ['--max-semi-space-size=4'], undefined), { growth: '--heap-growing-percent=15' });
  t.deepEqual(set, ['--max-semi-space-size=0']);
  t.deepEqual(startFlags(v8, [], '--max_semi_space_size=8 --heap-growing-percent=40'), { growth: null });
  t.deepEqual(set, ['--max-semi-space-size=0', '--max-semi-space-size=0']);
  t.deepEqual(startFlags(v8, [], undefined), { growth: '--heap-growing-percent=15' });
  t.is(set.length, 2, 'no semi-space flag given: nothing to set back');
});

/** v8.cachedDataVersionTag() of a node started with these flags (V8's version, the flags' hash, the CPU). */
function v8Tag(flags: string[]): string {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return spawnSync(process.execPath, [...flags, '-p', "require('node:v8').cachedDataVersionTag()"], { encoding: 'utf8', env }).stdout.trim();
}

test('the executable gives node a 4 MiB semi-space on its first line and drops NODE_EXTRA_CA_CERTS, as npm start does; node:v8 is never loaded, the bundle is compiled under V8\'s default flags (node\'s code cache of its modules holds), the command runs with 15% heap growth, and a run started without the flag shares the code cache', async (t) => {
  const { SEMI_SPACE_MB } = (await import(pathToFileURL(join(ROOT, 'dist', 'cmd', 'heap-flags.js')).href)) as typeof import('../../cmd/heap-flags.js');
  const flags = cliNodeFlags();
  t.deepEqual(flags, [`--max-semi-space-size=${SEMI_SPACE_MB}`]);
  const line = cliFirstLine();
  t.deepEqual(line.unset, ['NODE_EXTRA_CA_CERTS'], 'sockcap makes no TLS connection: node need not parse extra CA certificates at every start');
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } };
  t.is(pkg.scripts.start, `env ${line.command} dist/cmd/run.cjs`, 'npm start runs it as its first line does');
  const plain = v8Tag([]);
  const grown = v8Tag(['--heap-growing-percent=15']);
  t.regex(plain, /^\d+$/);
  t.not(plain, grown, 'the tag follows the flags');
  const { dir, run } = copyCli(t);
  const first = run();
  t.regex(first.stderr, new RegExp(`code cache none, written \\(V8 tag ${plain}\\)`));
  // run as the executable: node then has the flag from the first line (what a --require'd script
  // sees); the probe's exit listener runs before sockcap's, while the command's flags are set
  const probe = join(dir, 'probe.cjs');
  writeFileSync(probe, "process.on('exit', () => { const v8 = process.moduleLoadList.includes('NativeModule v8'); process.stderr.write('execArgv ' + JSON.stringify(process.execArgv) + ' v8 ' + v8 + ' ca ' + process.env.NODE_EXTRA_CA_CERTS + ' tag ' + require('node:v8').cachedDataVersionTag() + '\\n'); });\n");
  const exe = spawnSync(join(dir, 'dist', 'cmd', 'run.cjs'), ['replay', fixture('tcp/smtp.pcap'), '-q', '--json', '--hash'],
    { encoding: 'utf8', env: { ...process.env, SOCKCAP_CODE_CACHE: 'verbose', NODE_OPTIONS: `--require=${probe}`, NODE_EXTRA_CA_CERTS: probe } });
  t.is(exe.status, 0, exe.stderr);
  t.regex(exe.stderr, new RegExp(`execArgv \\["--max-semi-space-size=4"\\] v8 false ca undefined tag ${grown}\\b`), 'the flag from the first line, node:v8 never loaded, no extra CA certificates; 15% growth while the command ran');
  t.regex(exe.stderr, new RegExp(`code cache used \\(V8 tag ${plain}\\)`), 'the cache a run without the flag wrote, taken under V8\'s default flags');
  t.is(exe.stdout, first.stdout);
  t.regex(run().stderr, new RegExp(`code cache used \\(V8 tag ${plain}\\)`), 'and the other way round');
  t.false(exe.stderr.includes('DeprecationWarning'), 'no warning from the binding');
});
