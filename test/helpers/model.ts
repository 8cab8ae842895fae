import type { ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CaptureOutput } from '../../core/capture/output.js';
import { CaptureSession } from '../../core/capture/session.js';
import type { Mbuf } from '../../core/mbuf/mbuf.js';
import { runPipeline } from '../../core/pipeline.js';
import { DrainApp } from '../../core/socket/reader.js';
import { Stack } from '../../core/stack.js';
import type { StackHook } from '../../core/hook.js';
import type { ConnSummary } from '../../core/tcp/summary.js';
import { fuseSummary } from '../../core/fuse-report.js';
import { type FuseOptions, TcpFuse } from '../../core/tcp/tcp-fuse.js';
import { tmp } from './cli.js';

/** Run a capture through a stack with a hook (fuse, splice); keep the output frames with their provenance. */
export async function hookRun<H extends StackHook>(t: ExecutionContext, input: Buffer | string, hook: H) {
  const dir = tmp(t);
  const path = typeof input === 'string' ? input : join(dir, 'in.pcap');
  if (typeof input !== 'string') writeFileSync(path, input);
  const session = new CaptureSession();
  const conns: ConnSummary[] = [];
  const stack = new Stack(session, { hooks: [hook], output: true, app: new DrainApp(true), onConnection: (c) => conns.push(c), debug: true });
  const outPath = join(dir, 'out.pcap');
  const output = await CaptureOutput.open(outPath, session);
  const frames: Mbuf[] = [];
  const res = await runPipeline([{ name: path }], stack, { output, onBatch: () => { frames.push(...stack.out!); } });
  await output.close();
  t.is(res.error, null);
  conns.sort((a, b) => a.stream - b.stream);
  return { hook, conns, frames, outPath, path, stack };
}

/** tshark fields of every frame (tab-separated rows); `extra`: more of tshark's arguments (-d decode-as). */
export function fields(path: string, f: string[], filter?: string, extra: readonly string[] = []): string[][] {
  const args = ['-r', path, '-n', ...extra, '-o', 'tcp.relative_sequence_numbers:FALSE', '-o', 'tcp.check_checksum:TRUE', '-o', 'ip.check_checksum:TRUE', '-T', 'fields', ...f.flatMap((x) => ['-e', x])];
  if (filter) args.push('-Y', filter);
  const out = execFileSync('tshark', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return out.split('\n').filter(Boolean).map((l) => l.split('\t'));
}

/** Output frames that are malformed or carry a bad IP/TCP checksum, by tshark. */
export function badFrames(path: string, extra: readonly string[] = []): string[] {
  return fields(path, ['frame.number'], '_ws.malformed || _ws.expert.severity == "error" || tcp.checksum.status == 0 || ip.checksum.status == 0', extra).map((r) => r[0]!);
}


/** Run a capture through a fusing stack. */
export async function fuseRun(t: ExecutionContext, input: Buffer | string, opts: FuseOptions = {}) {
  const r = await hookRun(t, input, new TcpFuse(opts));
  return { ...r, summary: fuseSummary(r.hook, r.stack.stats.frames, r.stack.outFrames) };
}

