#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS node --max-semi-space-size=4
/**
 * The `sockcap` executable, which the build bundles into dist/cmd/run.cjs (with heap-flags.ts
 * and errors.ts; scripts/bundle.mjs): node starts a CommonJS entry without its ES module loader,
 * 8-10 ms sooner (a replay of a small capture, medians of 30 alternating runs: 201 against
 * 212 ms). oclif and the commands come from one CommonJS bundle,
 * dist/sockcap.cjs (made by `npm run build` from cli.ts: one file to load instead of ~150), which
 * this compiles with a V8 code cache beside it (dist/sockcap.cjs.v8cache): V8 then deserializes
 * the bytecode of the bundle and of every function an earlier run compiled instead of parsing
 * and compiling them again. A replay of a small capture started 35-40 ms sooner (0.22 s against
 * 0.26 s; Node 20 has no compile cache of its own, and none at all for ES modules).
 *
 * The cache is written after a run that found none, or found it rejected (another Node, other V8
 * flags) or stale: V8 checks only the source's length, so the cache file begins with a line naming
 * the Node version and the bundle's size and modification time, and is used only when they match.
 * Writes go to a temporary file renamed into place; a directory that cannot be written to (a
 * read-only install) just gets no cache. SOCKCAP_CODE_CACHE=off compiles without one;
 * SOCKCAP_CODE_CACHE=verbose says on stderr what happened to it.
 */
// node:module, node:fs, node:path and node:url are loaded by node before any script runs; node:vm is
// loaded below, once the flags are back to V8's defaults (startFlags)
import Module, { createRequire } from 'node:module';
import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFlags, v8Flags } from './heap-flags.js';
import { ERROR_EXIT } from '../core/errors.js';

// First thing: the semi-space flag from the first line has sized the young generation and goes
// back to V8's default, so that node takes its code cache of the modules it loads from here on
// (heap-flags.ts); the growth flag is set just before the command runs.
//
// The first line also drops NODE_EXTRA_CA_CERTS from node's environment: node reads and parses
// every certificate of that file as it starts, before any script runs, for TLS connections
// sockcap never makes. With Debian's bundle of ~140 certificates that was 413 of the 681 million
// instructions a replay of smtp.pcap ran (callgrind; node alone, without it: 84 million), ~80 ms
// of every run wherever the variable is set (proxies and sandboxes set it for every program)
const v8 = v8Flags();
const { growth } = startFlags(v8, process.execArgv, process.env.NODE_OPTIONS);
const { Script } = createRequire(import.meta.url)('node:vm') as typeof import('node:vm');

// `sockcap follow ... | head`: a reader that went away is not an error. Any other failure to
// write the output (a full disk, /dev/full) is one line and ERR_WRITE's exit status, as a file's is
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  process.stderr.write(`sockcap: standard output: cannot write: ${e.message}\n`);
  process.exit(ERROR_EXIT.ERR_WRITE);
});

const mode = process.env.SOCKCAP_CODE_CACHE ?? 'on';
const bundle = fileURLToPath(new URL('../sockcap.cjs', import.meta.url));
const cacheFile = `${bundle}.v8cache`;
const st = statSync(bundle);
const stamp = `${process.version} ${process.arch} ${st.size} ${st.mtimeMs}\n`;
let cached: Buffer | undefined;
let status = 'none';
if (mode !== 'off') {
  try {
    const c = readFileSync(cacheFile);
    const nl = c.indexOf(10);
    if (c.toString('latin1', 0, nl + 1) === stamp) cached = c.subarray(nl + 1);
    else status = 'stale';
  } catch {
    // none yet
  }
}
const script = new Script(Module.wrap(readFileSync(bundle, 'utf8')), { filename: bundle, cachedData: cached });
if (cached) status = script.cachedDataRejected ? 'rejected' : 'used';
// the tag a code cache is checked against (V8's version, the flags' hash, the CPU), for the tests
const tag = mode === 'verbose' ? ` (V8 tag ${v8.tag()})` : '';
if (mode !== 'off' && status !== 'used') {
  // after the run, so the cache holds the functions this run compiled as well
  process.on('exit', () => {
    const tmp = `${cacheFile}.${process.pid}`;
    try {
      // under the flags the next run compiles the bundle with: the growth flag comes later
      if (growth) v8.set('--heap-growing-percent=0');
      writeFileSync(tmp, Buffer.concat([Buffer.from(stamp, 'latin1'), script.createCachedData()]));
      renameSync(tmp, cacheFile);
      if (mode === 'verbose') process.stderr.write(`sockcap: code cache ${status}, written${tag}\n`);
    } catch (e) {
      if (mode === 'verbose') process.stderr.write(`sockcap: code cache ${status}, not written: ${(e as Error).message}${tag}\n`);
    }
  });
} else if (mode === 'verbose') process.stderr.write(`sockcap: code cache ${status}${tag}\n`);

// a module of Node's own, put in require's cache (documented), so that oclif's require of its
// commands target (package.json oclif.commands.target, this same bundle) finds it loaded
const mod = new Module(bundle);
mod.filename = bundle;
const req = createRequire(bundle);
req.cache[bundle] = mod;
(script.runInThisContext() as (...a: unknown[]) => void)(mod.exports, req, mod, bundle, dirname(bundle));
mod.loaded = true;
const cli = mod.exports as typeof import('./cli.js');
const routed = cli.route(process.argv.slice(2), Object.keys(cli.COMMANDS));
if ('error' in routed) {
  process.stderr.write(`sockcap: ${routed.error}\n`);
  process.exit(ERROR_EXIT.ERR_USAGE);
}
// every module the command uses is loaded now (the bundle requires them as it starts): the growth
// flag no longer keeps node from its code cache
if (growth) v8.set(growth);
// a CommonJS entry has no top-level await; oclif's execute handles every error of the command
void cli.execute({ args: routed.args, dir: import.meta.url });
