import test from 'ava';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './helpers/paths.js';

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
