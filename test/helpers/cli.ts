import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { CLI } from './paths.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the built CLI with arguments (and optional stdin bytes and extra environment). */
export function cli(args: string[], stdin?: Uint8Array, env?: Record<string, string>): Promise<CliResult> {
  return collect(process.execPath, [CLI, ...args], { stdin, env });
}

/**
 * Run any program and collect its exit code and output. `stdout` may be a descriptor to give it
 * instead of a pipe (then `stdout` in the result is empty); `cwd` is where it runs.
 */
export function collect(cmd: string, args: string[], o: { stdin?: Uint8Array; env?: Record<string, string>; stdout?: number; cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', o.stdout ?? 'pipe', 'pipe'], env: o.env ? { ...process.env, ...o.env } : process.env, cwd: o.cwd });
    let stdout = '';
    let stderr = '';
    p.stdout?.setEncoding('latin1').on('data', (d: string) => (stdout += d));
    p.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    if (o.stdin) p.stdin!.end(o.stdin);
    else p.stdin!.end();
  });
}

/** A temporary directory removed when the test ends. */
export function tmp(t: ExecutionContext): string {
  const d = mkdtempSync(join(tmpdir(), 'sockcap-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/**
 * A runner of the CLI that also gives each run's peak RSS (MiB), written at exit by a hook the
 * child preloads (its own maxRSS, not the test process's). A failed run fails the test.
 */
export function withPeakRss(t: ExecutionContext, dir: string): (args: string[]) => Promise<{ stdout: string; rss: number }> {
  const hook = join(dir, 'maxrss.cjs');
  writeFileSync(hook, `process.on('exit', () => require('fs').writeFileSync(process.env.MAXRSS_OUT, String(process.resourceUsage().maxRSS)));`);
  let runs = 0;
  return async (args) => {
    const out = join(dir, `rss-${runs++}`);
    const r = await cli(args, undefined, { NODE_OPTIONS: `--require ${hook}`, MAXRSS_OUT: out });
    t.is(r.code, 0, r.stderr);
    return { stdout: r.stdout, rss: Number(readFileSync(out, 'utf8')) / 1024 };
  };
}
