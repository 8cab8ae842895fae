import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from '../helpers/paths.js';

test('the CLI bundle (dist/sockcap.js) holds every command, and package.json points oclif at it', async (t) => {
  const bundle = (await import(pathToFileURL(join(ROOT, 'dist', 'sockcap.js')).href)) as { COMMANDS: Record<string, unknown>; execute: unknown };
  const plain = (await import(pathToFileURL(join(ROOT, 'dist', 'cmd', 'index.js')).href)) as { COMMANDS: Record<string, unknown> };
  t.deepEqual(Object.keys(bundle.COMMANDS).sort(), Object.keys(plain.COMMANDS).sort());
  t.is(typeof bundle.execute, 'function');
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { oclif: { commands: { target: string } } };
  t.is(pkg.oclif.commands.target, './dist/sockcap.js');
  // the entry loads the bundle, not the modules one by one
  t.regex(readFileSync(join(ROOT, 'dist', 'cmd', 'run.js'), 'utf8'), /\.\.\/sockcap\.js/);
});
