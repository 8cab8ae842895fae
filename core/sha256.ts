import type { Hash } from 'node:crypto';
import { createRequire } from 'node:module';

let crypto: typeof import('node:crypto') | null = null;

/**
 * A SHA-256 hash (node:crypto's createHash), with node:crypto loaded by the first one: only --hash
 * and the splice emulator's checks hash, and loading the module took ~4 ms of every run's
 * start-up. (require, not import(): the CLI's bundle runs as a vm.Script, which has no dynamic
 * import.)
 */
export function sha256(): Hash {
  crypto ??= createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto');
  return crypto.createHash('sha256');
}
