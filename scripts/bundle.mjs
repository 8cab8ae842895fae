// `npm run build`, after tsc: bundle oclif and the commands into one file, dist/sockcap.js, which
// dist/cmd/run.js loads and package.json's oclif.commands.target names. Loading them module by
// module (~150 files: resolution, stats, compiles) took ~0.1 s of every run's start-up (measured:
// a 60-frame replay 0.26 -> 0.15 s). The library (dist/core) stays unbundled.
import { build } from 'esbuild';

await build({
  entryPoints: ['dist/cmd/cli.js'],
  outfile: 'dist/sockcap.js',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  logLevel: 'warning',
  // oclif is CommonJS: inside an ES module bundle its require() of Node's modules needs one
  banner: { js: "import { createRequire as __sockcapRequire } from 'node:module'; const require = __sockcapRequire(import.meta.url);" },
});
