import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (tests run compiled from dist/test, so walk up to package.json). */
export const ROOT = (() => {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json'))) d = dirname(d);
  return d;
})();

/** Path of a committed fixture. */
export const fixture = (rel: string): string => join(ROOT, 'fixtures', rel);

/** The shared corpus beside the repository, when present. */
export const CORPUS = resolve(ROOT, '..', 'shared', 'corpus');
export const HAS_CORPUS = existsSync(join(CORPUS, 'INDEX.md'));
export const corpus = (name: string): string => join(CORPUS, name);

function has(cmd: string): boolean {
  try {
    execFileSync(cmd, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export const HAS_TSHARK = has('tshark');
/** A command on the PATH, found by the shell (for tools whose --version exits non-zero, as tcpflow's does). */
export const onPath = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
export const HAS_TCPFLOW = onPath('tcpflow');
export const HAS_TCPDUMP = onPath('tcpdump');

/** The CLI entry point (tests run against the build `npm test` just made). */
export const CLI = join(ROOT, 'dist', 'cmd', 'run.cjs');

/**
 * The executable's first line (`#!/usr/bin/env -S [-u NAME]... node [FLAGS]`): the environment
 * variables it drops, node's flags, and the command after `#!/usr/bin/env -S` (what `npm start`
 * runs through env).
 */
export function cliFirstLine(): { unset: string[]; flags: string[]; command: string } {
  const first = readFileSync(CLI, 'latin1').split('\n', 1)[0]!;
  const m = /^#!\/usr\/bin\/env -S((?: -u \w+)*) node((?: --?[\w-]+(?:=\S+)?)*)$/.exec(first);
  if (!m) throw new Error(`${CLI}: its first line is not "#!/usr/bin/env -S [-u NAME]... node [flags]": ${first}`);
  return { unset: m[1]!.split(' -u ').filter(Boolean).map((n) => n.trim()), flags: m[2]!.split(' ').filter(Boolean), command: first.slice('#!/usr/bin/env -S '.length) };
}

/** The node flags the executable's first line gives (what tests pass when they start node themselves). */
export function cliNodeFlags(): string[] {
  return cliFirstLine().flags;
}
