import test from 'ava';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { HAS_TSHARK, ROOT } from './helpers/paths.js';

const run = promisify(execFile);

test('the README\'s library example runs and prints what the README shows', async (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const code = /### Library: `open\(\)`[\s\S]*?```js\n([\s\S]*?)```/.exec(readme)?.[1];
  const shown = /\$ node example\.mjs\n([\s\S]*?)```/.exec(readme)?.[1];
  t.truthy(code);
  t.truthy(shown);
  const file = join(ROOT, `readme-example-${process.pid}.mjs`); // in the package, so `import 'sockcap'` resolves to it
  writeFileSync(file, code ?? '');
  t.teardown(() => rmSync(file, { force: true }));
  const { stdout } = await run(process.execPath, [file], { cwd: ROOT });
  t.is(stdout, shown ?? '');
});

/**
 * Every transcript in the README that runs `sockcap` on a fixture (and the `tshark` lines that
 * look at what it wrote): each line shown must come out, in order (`...` marks elided lines).
 */
test('the README\'s command transcripts are what the commands print', async (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```\n(\$ sockcap [\s\S]*?)```/g)].map((m) => m[1]!);
  t.true(blocks.length >= 2);
  const written: string[] = [];
  t.teardown(() => { for (const f of written) rmSync(join(ROOT, f), { force: true }); });
  for (const block of blocks) {
    for (const part of block.split(/^(?=\$ )/m)) {
      const [cmd, ...shown] = part.trimEnd().split('\n');
      const argv = cmd!.slice(2).split(' ');
      if (argv[0] === 'tshark' && !HAS_TSHARK) continue;
      const w = argv.indexOf('-w');
      if (w > 0) written.push(argv[w + 1]!);
      const exe = argv[0] === 'sockcap' ? [process.execPath, [join(ROOT, 'dist', 'cmd', 'run.cjs'), ...argv.slice(1)]] as const : [argv[0]!, argv.slice(1).map((a) => a.replace(/^'|'$/g, ''))] as const;
      const joined = argv.join(' ');
      const args = argv[0] === 'tshark' ? ['-r', argv[2]!, '-Y', joined.slice(joined.indexOf("-Y '") + 4, -1)] : exe[1];
      const { stdout } = await run(exe[0], [...args], { cwd: ROOT });
      const lines = stdout.split('\n');
      let at = 0;
      for (const want of shown.filter((l) => l.trim() !== '...')) {
        const i = lines.indexOf(want, at);
        t.true(i >= 0, `${cmd}: missing or out of order: ${want}`);
        if (i >= 0) at = i + 1;
      }
    }
  }
});
