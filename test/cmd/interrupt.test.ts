import test from 'ava';
import { spawn } from 'node:child_process';
import { closeSync, constants, createWriteStream, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { execFile } from 'node:child_process';
import { cli, tmp } from '../helpers/cli.js';
import { CLI } from '../helpers/paths.js';

const run = promisify(execFile);

/**
 * Run the CLI on a FIFO fed with `cap`: the first `first` bytes, then SIGINT (the reader has taken
 * them: the FIFO was opened, so its handler is installed), then the rest until it stops reading.
 * A capture read through a pipe cannot end before the signal, whatever the machine's speed.
 */
async function interrupted(dir: string, cap: Buffer, first: number, args: (fifo: string) => string[], sig: NodeJS.Signals = 'SIGINT') {
  const fifo = join(dir, 'fifo');
  rmSync(fifo, { force: true });
  await run('mkfifo', [fifo]);
  const p = spawn(process.execPath, [CLI, ...args(fifo)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((r) => p.on('close', (code) => r(code)));
  const ws = createWriteStream(fifo);
  let broken = false;
  ws.on('error', () => (broken = true)); // EPIPE once it stops reading
  // written, or the pipe broke (the writer is destroyed then: no drain will come)
  const closed = once(ws, 'close').catch(() => undefined);
  const drained = () => Promise.race([new Promise<void>((r) => ws.once('drain', () => r())), closed]);
  const opened = await Promise.race([once(ws, 'open').then(() => true), exited.then(() => false)]);
  if (!opened) {
    // it failed before it opened its input: open the FIFO's other end, so our open returns
    closeSync(openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK));
    ws.destroy();
    return { code: await exited, stdout, stderr };
  }
  if (!ws.write(cap.subarray(0, first))) await drained();
  p.kill(sig);
  for (let at = first; at < cap.length && !broken; at += 1 << 16) if (!ws.write(cap.subarray(at, at + (1 << 16)))) await drained();
  const code = await exited;
  ws.destroy();
  return { code, stdout, stderr };
}

test('Ctrl-C stops extract at the end of a batch: the files and the index cover what was read, exit 130', async (t) => {
  const { generate } = await import('../bench/gen.js');
  const dir = tmp(t);
  const path = join(dir, 'short.pcap');
  const { frames } = await generate({ path, bytes: 24 << 20, flows: 2000, perFlow: 3000 });
  const out = join(dir, 'out');
  const r = await interrupted(dir, readFileSync(path), 12 << 20, (fifo) => ['extract', fifo, '-o', out, '--json']);
  t.is(r.code, 130, r.stderr);
  const m = /^sockcap: interrupted by SIGINT after ([\d,]+) frames: the output covers them\n$/.exec(r.stderr);
  t.truthy(m, r.stderr);
  const n = Number(m![1]!.replace(/,/g, ''));
  t.true(n > 0 && n < frames, `${n} of ${frames} frames`);
  const rep = JSON.parse(r.stdout) as { files: number; bytes: number };
  const index = JSON.parse(readFileSync(join(out, 'sockcap-index.json'), 'utf8')) as Array<{ file: string; bytes: number }>;
  t.is(index.length, rep.files);
  t.true(index.length > 0);
  t.is(index.reduce((a, e) => a + e.bytes, 0), rep.bytes);
  for (const e of index) t.is(statSync(join(out, e.file)).size, e.bytes, e.file);
});

test('Ctrl-C (SIGTERM too) stops replay, splice, fuse and follow the same way: their output covers what was read, exit 130 (143)', async (t) => {
  const { generate } = await import('../bench/gen.js');
  const dir = tmp(t);
  const path = join(dir, 'lo.pcap');
  const { frames } = await generate({ path, bytes: 16 << 20, flows: 200, perFlow: 60000, loopback: true });
  const cap = readFileSync(path);
  for (const args of [['replay', '--json'], ['splice', '--from', '0:c2s', '--to', '1:c2s', '--json'], ['fuse', '--json', '-w', join(dir, 'fused.pcap')], ['follow', '-z', '0']]) {
    // SIGTERM for replay (what a service manager sends): 143
    const sig = args[0] === 'replay' ? 'SIGTERM' : 'SIGINT';
    const r = await interrupted(dir, cap, 8 << 20, (fifo) => [args[0]!, fifo, ...args.slice(1)], sig);
    t.is(r.code, sig === 'SIGINT' ? 130 : 143, `${args[0]}: ${r.stderr}`);
    const n = Number(new RegExp(`interrupted by ${sig} after ([\\d,]+) frames`).exec(r.stderr)?.[1]?.replace(/,/g, ''));
    t.true(n > 0 && n < frames, `${args[0]}: ${n} of ${frames} frames`);
    if (args[0] === 'follow') {
      // what the stream's sockets read so far, with tshark's header and footer
      t.regex(r.stdout, /^\n=+\nFollow: tcp,ascii\n[\s\S]*\n=+\n$/);
      continue;
    }
    const j = JSON.parse(r.stdout) as { frames?: number; framesIn?: number; framesOut?: number };
    if (args[0] === 'replay') t.is(j.frames, n);
    else t.is(j.framesIn, n);
    if (args[0] === 'fuse') {
      // the output capture is whole: it reads to its end, every frame it says it wrote
      const back = await cli(['replay', join(dir, 'fused.pcap'), '--json', '-q']);
      t.is(back.code, 0, back.stderr);
      t.is((JSON.parse(back.stdout) as { frames: number }).frames, j.framesOut!);
    }
  }
});
