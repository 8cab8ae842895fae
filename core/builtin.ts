import { createRequire } from 'node:module';

const load = createRequire(import.meta.url);

/**
 * A Node built-in module, loaded by the first call rather than at every start-up (zlib, crypto and
 * worker_threads took ~11 ms of it, and most runs need none of them). `require`, not `import()`:
 * the CLI's bundle runs as a vm.Script, which has no dynamic import.
 */
export function builtin<T>(name: string): T {
  return load(name) as T;
}
