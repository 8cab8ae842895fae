// `npm run build`, after tsc: bundle oclif and the commands into one CommonJS file,
// dist/sockcap.cjs, which dist/cmd/run.js compiles with a V8 code cache and package.json's
// oclif.commands.target names. Loading them module by module (~150 files: resolution, stats,
// compiles) took ~0.1 s of every run's start-up (measured: a 60-frame replay 0.26 -> 0.15 s).
// CommonJS because Node 20 can cache the compiled code of a script (vm.Script cachedData) but not
// of an ES module. The library (dist/core) stays unbundled ES modules.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';

// import.meta.url (live.ts loads `cap` relative to itself) has no CommonJS meaning: the bundle's own URL
// (an injected module has to be ES syntax; __filename is the bundle's own, in CommonJS)
writeFileSync('dist/import-meta-url.mjs', "import { pathToFileURL } from 'node:url';\nexport const importMetaUrl = pathToFileURL(__filename).href;\n");
await build({
  entryPoints: ['dist/cmd/cli.js'],
  outfile: 'dist/sockcap.cjs',
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: true,
  logLevel: 'warning',
  inject: ['dist/import-meta-url.mjs'],
  define: { 'import.meta.url': 'importMetaUrl' },
  // no comments or indentation: a third smaller, and ASCII only (below), so that the CLI reads it
  // into a one-byte string (a comment's "µ" made it a two-byte one: 7-11 ms more to decode)
  minifyWhitespace: true,
});
// esbuild escapes non-ASCII characters in strings, not in regular expression literals (one of
// oclif's dependencies has U+009B in a character class): \uXXXX means the same there
const code = readFileSync('dist/sockcap.cjs', 'utf8');
const ascii = code.replace(/[^\x00-\x7f]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
if (ascii !== code) writeFileSync('dist/sockcap.cjs', ascii);
// the executable (package.json bin) runs by its first line, which gives node its flags (tsc writes 0644)
chmodSync('dist/cmd/run.js', 0o755);
// one run writes the code cache (dist/sockcap.cjs.v8cache) with the functions a replay compiles
execFileSync(process.execPath, ['dist/cmd/run.js', 'replay', 'fixtures/tcp/smtp.pcap', '-q', '--json'], { stdio: 'ignore' });
