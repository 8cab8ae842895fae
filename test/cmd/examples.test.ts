import test from 'ava';
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { cli, tmp } from '../helpers/cli.js';
import { ROOT } from '../helpers/paths.js';

const COMMANDS = ['replay', 'follow', 'extract', 'splice', 'fuse', 'live'] as const;

test('every example in the commands\' help that names a capture in fixtures/ runs as shown (its outputs in a temporary directory)', async (t) => {
  const d = tmp(t);
  let ran = 0;
  for (const name of COMMANDS) {
    const cmd = (await import(`../../cmd/${name}.js`)) as { default: { examples?: string[] } };
    for (const ex of cmd.default.examples ?? []) {
      const args = ex.replace('<%= config.bin %> ', '').split(' ');
      if (!args.some((a) => a.startsWith('fixtures/'))) continue;
      for (const a of args) if (a.startsWith('fixtures/')) t.true(existsSync(join(ROOT, a)), `${name}: ${a} exists`);
      // outputs (-w FILE, -o DIR) go to the temporary directory; captures are read from the package
      const run = args.map((a, i) => (args[i - 1] === '-w' || args[i - 1] === '-o' ? join(d, basename(a)) : a.startsWith('fixtures/') ? join(ROOT, a) : a));
      const r = await cli(run);
      t.is(r.code, 0, `${ex}: ${r.stderr}`);
      ran++;
    }
  }
  t.true(ran >= 6, `${ran} examples ran`);
});
