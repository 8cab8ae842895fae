// `npm run build`, after tsc: bundle oclif and the commands into one CommonJS file,
// dist/sockcap.cjs, which dist/cmd/run.cjs compiles with a V8 code cache and package.json's
// oclif.commands.target names. Loading them module by module (~150 files: resolution, stats,
// compiles) took ~0.1 s of every run's start-up (measured: a 60-frame replay 0.26 -> 0.15 s).
// CommonJS because Node 20 can cache the compiled code of a script (vm.Script cachedData) but not
// of an ES module. The library (dist/core) stays unbundled ES modules.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

// Patches to oclif's own files as the bundle takes them in, for its start-up: each replaces one
// exact line (the build stops if a line is not there, as after an oclif update: look at them
// again then). Where a patch's saving was measured on its own, its comment gives it.
const lazyRequire = (name, mod) => `const ${name} = new Proxy({}, { get: (_, k) => require("${mod}")[k] });`;
// the same for `__importDefault(require(mod))` (TypeScript's default import of a CommonJS module)
const lazyDefault = (name, mod) => `const ${name} = { get default() { return __importDefault(require("${mod}")).default; } };`;
const OCLIF_PATCHES = [
  // Plugin.load sorts the commands by id with localeCompare, whose first call makes ICU's
  // collator: 8 ms. sockcap's ids are lower-case ASCII letters, which code units order as the
  // collator does (test/cmd/bundle.test.ts checks it)
  { file: 'config/plugin.js', from: '.sort((a, b) => a.id.localeCompare(b.id))', to: '.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))' },
  // Config.load asks getPlatform, which imports wsl-utils (and with it child_process, dgram,
  // powershell-utils...) for its isWsl, a re-export of is-wsl's answer: is-wsl it is (a test
  // checks the two are the same)
  { file: 'util/os.js', from: "return (await import('wsl-utils')).isWsl ? 'wsl' : (0, node_os_1.platform)();", to: "return (await import('is-wsl')).default ? 'wsl' : (0, node_os_1.platform)();" },
  // built-in modules a run never uses, loaded at first use instead: child_process (a Windows
  // shell's name), perf_hooks (OCLIF_PERFORMANCE's marks), readline (arguments from stdin)
  { file: 'util/os.js', from: 'const node_child_process_1 = require("node:child_process");', to: lazyRequire('node_child_process_1', 'node:child_process') },
  { file: 'performance.js', from: 'const node_perf_hooks_1 = require("node:perf_hooks");', to: lazyRequire('node_perf_hooks_1', 'node:perf_hooks') },
  { file: 'parser/parse.js', from: 'const node_readline_1 = require("node:readline");', to: lazyRequire('node_readline_1', 'node:readline') },
  // oclif's theme asks supports-color, which reads tty and os as it loads, only to colour help
  // and errors: loaded when first asked
  { file: 'ux/supports-color.js', from: 'const supports_color_1 = require("supports-color");', to: lazyRequire('supports_color_1', 'supports-color') },
  // modules oclif requires as it loads, of which a run calls nothing (NODE_V8_COVERAGE of a replay:
  // each one's top level ran, none of its functions): command discovery by glob (tinyglobby, with
  // fdir and picomatch; sockcap's commands are explicit), plugin patterns (minimatch), package.json
  // config (lilconfig), templates for help and `config.bin` (ejs), the spinner's table
  // (cli-spinners), and help's and errors' formatting (wrap-ansi, string-width, widest-line):
  // loaded at first use (a test checks that a replay runs none of them and that help uses them).
  // A replay of smtp.pcap: 209 -> 195 million instructions (callgrind), 125 -> 121 ms (medians of
  // 20 alternating runs)
  { file: 'config/plugin.js', from: 'const tinyglobby_1 = require("tinyglobby");', to: lazyRequire('tinyglobby_1', 'tinyglobby') },
  { file: 'config/plugin-loader.js', from: 'const minimatch_1 = require("minimatch");', to: lazyRequire('minimatch_1', 'minimatch') },
  { file: 'util/read-pjson.js', from: 'const lilconfig_1 = require("lilconfig");', to: lazyRequire('lilconfig_1', 'lilconfig') },
  { file: 'config/config.js', from: 'const ejs_1 = __importDefault(require("ejs"));', to: lazyDefault('ejs_1', 'ejs') },
  { file: 'help/util.js', from: 'const ejs_1 = __importDefault(require("ejs"));', to: lazyDefault('ejs_1', 'ejs') },
  { file: 'ux/action/spinner.js', from: 'const cli_spinners_1 = __importDefault(require("cli-spinners"));', to: lazyDefault('cli_spinners_1', 'cli-spinners') },
  { file: 'errors/errors/pretty-print.js', from: 'const wrap_ansi_1 = __importDefault(require("wrap-ansi"));', to: lazyDefault('wrap_ansi_1', 'wrap-ansi') },
  { file: 'errors/errors/cli.js', from: 'const wrap_ansi_1 = __importDefault(require("wrap-ansi"));', to: lazyDefault('wrap_ansi_1', 'wrap-ansi') },
  { file: 'help/formatter.js', from: 'const wrap_ansi_1 = __importDefault(require("wrap-ansi"));', to: lazyDefault('wrap_ansi_1', 'wrap-ansi') },
  { file: 'help/formatter.js', from: 'const string_width_1 = __importDefault(require("string-width"));', to: lazyDefault('string_width_1', 'string-width') },
  { file: 'help/formatter.js', from: 'const widest_line_1 = __importDefault(require("widest-line"));', to: lazyDefault('widest_line_1', 'widest-line') },
  // oclif's logger makes its loggers with `debug`, which prints only for the namespaces DEBUG
  // names as it loads; loading it brought supports-color, tty and net along (with the patch
  // above, 217 -> 210 million instructions for a replay writing to files). Without DEBUG, a
  // logger that does nothing is what debug would have made
  { file: 'logger.js', from: 'const debug_1 = __importDefault(require("debug"));', to: 'const debug_1 = process.env.DEBUG ? __importDefault(require("debug")) : { default: () => () => {} };' },
];
const applied = new Set();
const oclifPatches = {
  name: 'oclif-start-up',
  setup(b) {
    b.onLoad({ filter: /@oclif[\\/]core[\\/]lib[\\/].*\.js$/ }, (args) => {
      const rel = args.path.replace(/\\/g, '/').replace(/^.*@oclif\/core\/lib\//, '');
      const mine = OCLIF_PATCHES.filter((p) => p.file === rel);
      if (mine.length === 0) return undefined;
      let src = readFileSync(args.path, 'utf8');
      for (const p of mine) {
        if (src.split(p.from).length !== 2) throw new Error(`${args.path}: not one "${p.from}" to replace (oclif changed: see scripts/bundle.mjs)`);
        src = src.replace(p.from, p.to);
        applied.add(p);
      }
      return { contents: src, loader: 'js' };
    });
    b.onEnd(() => {
      const missed = OCLIF_PATCHES.filter((p) => !applied.has(p));
      if (missed.length) throw new Error(`oclif patches not applied (file not in the bundle): ${missed.map((p) => p.file).join(', ')}`);
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
  plugins: [oclifPatches],
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
