/**
 * `npm run bench`: generates the benchmark captures (once, under bench-data/), then times sockcap
 * next to a minimal record walker and, when installed, tcpdump, tcpflow and tshark, in one run.
 * Prints one table: median wall time over BENCH_RUNS runs (default 3; rounds interleave the rows),
 * MB/s, packets/s, peak RSS, and ratios to the walker and to tcpflow measured in the same run. Sizes: BENCH_BULK_MB (1024),
 * BENCH_SHORT_MB (256), BENCH_LOOP_MB (256); set BENCH_ONLY=bulk, short or loopback to run one.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir, cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { ROOT, CLI, cliFirstLine } from '../helpers/paths.js';
import { generate } from './gen.js';

/**
 * The bench runs sockcap as users do: the executable, whose first line gives node its flags and
 * drops NODE_EXTRA_CA_CERTS. The walker, node too, runs without that variable as well: node
 * parses the file it names at every start (~80 ms here), which a minimal reader needs no more
 * than sockcap does.
 */
const FIRST = cliFirstLine();
const sockcap = (name: string, args: string[], pre?: () => void): Job => job(name, CLI, args, pre);
const walker = (name: string, args: string[]): Job => job(name, 'env', [...FIRST.unset.flatMap((n) => ['-u', n]), process.execPath, WALKER, ...args]);

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const DATA = join(ROOT, 'bench-data');
const WALKER = join(ROOT, 'dist', 'test', 'bench', 'walker.js');
const HAS_TIME = existsSync('/usr/bin/time');
/**
 * Where extract and tcpflow write their files: tmpfs when there is one (BENCH_OUT overrides). On
 * ext4 the bench's own cleanup distorts the next run: creating files just after 200,000 were
 * deleted scans the inode tables for recently deleted inodes (ext4 recently_deleted(); measured:
 * 10x slower creates for both tools, which then measure the file system, not themselves).
 */
const OUT = process.env.BENCH_OUT ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());

interface Row { name: string; secs: number; rssMiB: number | null }

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

/** One row of a table: a command, and what to do (untimed) before each of its runs. */
interface Job { name: string; cmd: string; args: string[]; pre?: () => void }

const job = (name: string, cmd: string, args: string[], pre?: () => void): Job => ({ name, cmd, args, pre });

/**
 * Time every job RUNS times, interleaved: each round warms the page cache and runs every job once,
 * in order, so a slow spell of this shared machine falls on all rows alike instead of on whichever
 * ran then (the ratios between rows are what the tables report). Median wall seconds per row, and
 * the largest peak RSS of its runs.
 */
function measure(file: string, jobs: Job[]): Row[] {
  const secs = jobs.map((): number[] => []);
  const rss: Array<number | null> = jobs.map(() => null);
  for (let i = 0; i < RUNS; i++) {
    execFileSync('sh', ['-c', `cat '${file}' > /dev/null`]);
    jobs.forEach((j, k) => {
      j.pre?.();
      const argv = HAS_TIME ? ['/usr/bin/time', '-f', '%M', j.cmd, ...j.args] : [j.cmd, ...j.args];
      const t0 = process.hrtime.bigint();
      // stdout goes to /dev/null for every row: captured through a pipe, the 114 MB of replay --json
      // on the short capture (and tshark's table) cost the command 1.5-2 s that tcpflow never pays
      const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', maxBuffer: 1 << 28, stdio: ['ignore', 'ignore', 'pipe'] });
      secs[k]!.push(Number(process.hrtime.bigint() - t0) / 1e9);
      if (r.status !== 0 && !(j.cmd === 'tshark' && r.status === null)) console.error(`${j.name}: exit ${r.status}: ${r.stderr.slice(-400)}`);
      if (HAS_TIME) {
        const kb = Number(r.stderr.trim().split('\n').at(-1));
        if (Number.isFinite(kb)) rss[k] = Math.max(rss[k] ?? 0, kb / 1024);
      }
    });
  }
  return jobs.map((j, k) => {
    const t = secs[k]!.sort((x, y) => x - y);
    return { name: j.name, secs: t[Math.floor(t.length / 2)]!, rssMiB: rss[k]! };
  });
}

function table(title: string, file: string, frames: number, rows: Row[]): string {
  const size = statSync(file).size;
  const base = rows.find((r) => r.name === 'minimal walker')!;
  const flow = rows.find((r) => r.name.startsWith('tcpflow -FX'));
  const flowO = rows.find((r) => r.name.startsWith('tcpflow -o'));
  const tshark = rows.find((r) => r.name.startsWith('tshark'));
  const ratio = (x: Row | undefined, r: Row) => (x ? (x.secs / r.secs).toFixed(2) : 'n/a');
  const out = [`\n### ${title}: ${(size / 2 ** 20).toFixed(0)} MiB, ${frames.toLocaleString('en-US')} packets\n`,
    '| command | median s | MB/s | packets/s | peak RSS MiB | walker / this | tcpflow -FX / this | tcpflow -o / this | tshark / this |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|'];
  for (const r of rows)
    out.push(`| ${r.name} | ${r.secs.toFixed(2)} | ${(size / r.secs / 1e6).toFixed(0)} | ${(frames / r.secs / 1e3).toFixed(0)} k | ${r.rssMiB?.toFixed(0) ?? 'n/a'} | ${ratio(base, r)} | ${ratio(flow, r)} | ${ratio(flowO, r)} | ${ratio(tshark, r)} |`);
  out.push('', '(ratios are times: above 1 means this row is faster than the one named)');
  return out.join('\n');
}

/**
 * The loopback capture (BENCH_LOOP_MB, default 256; 2,000 flows over 127/8): plain replay against
 * replay --fuse and fuse -w, the issue's "fused is no slower than plain" measure.
 */
async function benchLoopback(): Promise<string> {
  mkdirSync(DATA, { recursive: true });
  const mb = Number(process.env.BENCH_LOOP_MB ?? 256);
  const file = join(DATA, `loopback-${mb}M-v2.pcap`);
  if (!existsSync(file)) {
    console.error(`generating ${file} ...`);
    await generate({ path: file, bytes: mb * 2 ** 20, flows: 2000, perFlow: Math.ceil((mb * 2 ** 20) / 2000), loopback: true });
  }
  const frames = JSON.parse(execFileSync(process.execPath, [WALKER, file], { encoding: 'utf8' })).frames as number;
  const jobs: Job[] = [];
  jobs.push(walker('minimal walker', [file]));
  jobs.push(sockcap('sockcap replay', ['replay', file, '-q', '--json']));
  jobs.push(sockcap('sockcap replay --fuse', ['replay', file, '-q', '--json', '--fuse']));
  jobs.push(sockcap('sockcap replay -w /dev/null', ['replay', file, '-q', '--json', '-w', '/dev/null']));
  jobs.push(sockcap('sockcap fuse -w /dev/null', ['fuse', file, '-q', '--json', '-w', '/dev/null']));
  const d = mkdtempSync(join(OUT, 'bench-tcpflow-'));
  if (has('tcpflow')) jobs.push(job('tcpflow -FX (flows only)', 'tcpflow', ['-FX', '-r', file, '-o', d], () => { rmSync(d, { recursive: true, force: true }); mkdirSync(d); }));
  const rows = measure(file, jobs);
  rmSync(d, { recursive: true, force: true });
  return table('loopback (2,000 flows over 127/8)', file, frames, rows);
}

/** The stream files of an output directory (not sockcap's index, not tcpflow's report). */
const streamFiles = (dir: string) => readdirSync(dir).filter((f) => f !== 'sockcap-index.json' && f !== 'report.xml').sort();

/**
 * The issue's "identical bytes in the files": extract's files against tcpflow -o's, name for name
 * and byte for byte, after the timed runs (untimed). Extract's default cuts a hole that never
 * filled out of the file (the index lists it); tcpflow leaves zeros there, as `--gaps zero` does:
 * that run must match every file, the default every file without a hole.
 */
function sameAsTcpflow(file: string, defaultDir: string, tcpflowDir: string): string {
  const zeroDir = mkdtempSync(join(OUT, 'bench-extract-zero-'));
  try {
    const r = spawnSync(CLI, ['extract', file, '-o', zeroDir, '-q', '--gaps', 'zero'], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    if (r.status !== 0) return `extract --gaps zero failed: ${r.stderr.slice(-300)}`;
    const theirs = streamFiles(tcpflowDir);
    const holes = new Set((JSON.parse(readFileSync(join(defaultDir, 'sockcap-index.json'), 'utf8')) as Array<{ file: string; gaps?: unknown }>).filter((e) => e.gaps).map((e) => e.file));
    const lines: string[] = [];
    for (const [label, dir] of [['extract --gaps zero', zeroDir], ['extract (default: holes cut out)', defaultDir]] as const) {
      const ours = streamFiles(dir);
      const names = ours.length === theirs.length && ours.every((f, i) => f === theirs[i]);
      let same = 0;
      let bytes = 0;
      const differ: string[] = [];
      if (names) {
        for (const f of ours) {
          const a = readFileSync(join(dir, f));
          bytes += a.length;
          if (a.equals(readFileSync(join(tcpflowDir, f)))) same++;
          else differ.push(f);
        }
      }
      const explained = differ.filter((f) => holes.has(f)).length;
      lines.push(!names
        ? `- ${label}: file names differ from tcpflow -o's (${ours.length} against ${theirs.length} files)`
        : `- ${label}: ${same.toLocaleString('en-US')} of ${ours.length.toLocaleString('en-US')} files (${bytes.toLocaleString('en-US')} bytes) identical to tcpflow -o's` +
          (differ.length ? `; ${differ.length} differ, ${explained} of them directions with holes the index lists${differ.length > explained ? ` (unexplained: ${differ.filter((f) => !holes.has(f)).slice(0, 3).join(', ')})` : ''}` : ''));
    }
    return ['', '', `Files against tcpflow -o's (after the timed runs; ${holes.size} directions of this capture have holes that never filled):`, '', ...lines].join('\n');
  } finally {
    rmSync(zeroDir, { recursive: true, force: true });
  }
}

async function bench(kind: 'bulk' | 'short'): Promise<string> {
  mkdirSync(DATA, { recursive: true });
  const mb = Number(process.env[kind === 'bulk' ? 'BENCH_BULK_MB' : 'BENCH_SHORT_MB'] ?? (kind === 'bulk' ? 1024 : 256));
  const file = join(DATA, `${kind}-${mb}M-v2.pcap`);
  const flows = kind === 'bulk' ? 2000 : 100_000;
  if (!existsSync(file)) {
    console.error(`generating ${file} ...`);
    await generate({ path: file, bytes: mb * 2 ** 20, flows, perFlow: kind === 'bulk' ? Math.ceil((mb * 2 ** 20) / flows) : 1500 });
  }
  const frames = JSON.parse(execFileSync(process.execPath, [WALKER, file], { encoding: 'utf8' })).frames as number;
  const jobs: Job[] = [];
  jobs.push(walker('minimal walker', [file]));
  jobs.push(walker('minimal walker, fresh chunks', [file, '--fresh']));
  jobs.push(sockcap('sockcap replay', ['replay', file, '-q', '--json']));
  jobs.push(sockcap('sockcap replay --no-checksums', ['replay', file, '-q', '--json', '--no-checksums']));
  jobs.push(sockcap('sockcap replay --no-tcp (read + decode to TCP)', ['replay', file, '-q', '--json', '--no-tcp']));
  const ex = mkdtempSync(join(OUT, 'bench-extract-'));
  const d = mkdtempSync(join(OUT, 'bench-tcpflow-'));
  const fresh = (dir: string) => () => { rmSync(dir, { recursive: true, force: true }); mkdirSync(dir); };
  jobs.push(sockcap('sockcap extract -o', ['extract', file, '-o', ex, '-q'], fresh(ex)));
  if (has('tcpdump')) jobs.push(job('tcpdump -r -w /dev/null', 'tcpdump', ['-r', file, '-w', '/dev/null']));
  if (has('tcpflow')) {
    jobs.push(job('tcpflow -FX (flows only)', 'tcpflow', ['-FX', '-r', file, '-o', d], fresh(d)));
    jobs.push(job('tcpflow -o (streams to files)', 'tcpflow', ['-r', file, '-o', d], fresh(d)));
  }
  if (has('tshark') && process.env.BENCH_TSHARK !== '0') jobs.push(job('tshark -q -z conv,tcp', 'tshark', ['-q', '-n', '-r', file, '-z', 'conv,tcp']));
  const rows = measure(file, jobs);
  // the last round's files are still there: extract's, and tcpflow -o's (it ran after -FX)
  const same = has('tcpflow') ? sameAsTcpflow(file, ex, d) : '';
  rmSync(ex, { recursive: true, force: true });
  rmSync(d, { recursive: true, force: true });
  return table(kind === 'bulk' ? `bulk (${flows.toLocaleString('en-US')} flows)` : `short (${flows.toLocaleString('en-US')} flows)`, file, frames, rows) + same;
}

const only = process.env.BENCH_ONLY;
const parts = [`machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version} (sockcap as its executable runs it: env ${FIRST.command}; the walker without ${FIRST.unset.join(', ')} too); runs per row: ${RUNS}; files written to ${OUT}`];
for (const k of ['bulk', 'short'] as const) if (!only || only === k) parts.push(await bench(k));
if (!only || only === 'loopback') parts.push(await benchLoopback());
console.log(parts.join('\n'));
