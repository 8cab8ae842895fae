// `npm run build`, after tsc: bundle oclif and the commands into one CommonJS file,
// dist/sockcap.cjs, which dist/cmd/run.cjs compiles with a V8 code cache and package.json's
// oclif.commands.target names. Loading them module by module (~150 files: resolution, stats,
// compiles) took ~0.1 s of every run's start-up (measured: a 60-frame replay 0.26 -> 0.15 s).
// CommonJS because Node 20 can cache the compiled code of a script (vm.Script cachedData) but not
// of an ES module. The library (dist/core) stays unbundled ES modules.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

// oclif's Plugin.load sorts the commands by id with localeCompare, whose first call makes ICU's
// collator: 8 ms of every start-up. sockcap's ids are lower-case ASCII letters, which code units
// order as the collator does (test/cmd/bundle.test.ts checks it), so the bundle compares those.
// The build stops if oclif's line is not there to replace.
const OCLIF_SORT = '.sort((a, b) => a.id.localeCompare(b.id))';
const oclifSort = {
  name: 'oclif-sort-by-code-units',
  setup(b) {
    b.onLoad({ filter: /@oclif[\\/]core[\\/]lib[\\/]config[\\/]plugin\.js$/ }, (args) => {
      const src = readFileSync(args.path, 'utf8');
      if (!src.includes(OCLIF_SORT)) throw new Error(`${args.path}: no "${OCLIF_SORT}" to replace (oclif changed: see scripts/bundle.mjs)`);
      return { contents: src.replace(OCLIF_SORT, '.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))'), loader: 'js' };
    });
  },
};

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
  plugins: [oclifSort],
});
// the executable, dist/cmd/run.cjs: cmd/run.ts with the two small modules it imports, as CommonJS
// (node starts a CommonJS entry without its ES module loader, 8-10 ms sooner). tsc's ES module of
// it goes, so that there is one entry
await build({
  entryPoints: ['dist/cmd/run.js'],
  outfile: 'dist/cmd/run.cjs',
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  logLevel: 'warning',
  inject: ['dist/import-meta-url.mjs'],
  define: { 'import.meta.url': 'importMetaUrl' },
});
for (const f of ['run.js', 'run.js.map', 'run.d.ts']) rmSync(`dist/cmd/${f}`, { force: true });
// esbuild escapes non-ASCII characters in strings, not in regular expression literals (one of
// oclif's dependencies has U+009B in a character class): \uXXXX means the same there
const code = readFileSync('dist/sockcap.cjs', 'utf8');
const ascii = code.replace(/[^\x00-\x7f]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
if (ascii !== code) writeFileSync('dist/sockcap.cjs', ascii);
// the executable (package.json bin) runs by its first line, which gives node its flags
chmodSync('dist/cmd/run.cjs', 0o755);
// one run writes the code cache (dist/sockcap.cjs.v8cache) with the functions a replay compiles
execFileSync(process.execPath, ['dist/cmd/run.cjs', 'replay', 'fixtures/tcp/smtp.pcap', '-q', '--json'], { stdio: 'ignore' });
