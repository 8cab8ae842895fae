import type { Hash } from 'node:crypto';
import { builtin } from './builtin.js';

let crypto: typeof import('node:crypto') | null = null;

/**
 * A SHA-256 hash (node:crypto's createHash), with node:crypto loaded by the first one: only --hash
 * and the splice emulator's checks hash.
 */
export function sha256(): Hash {
  crypto ??= builtin<typeof import('node:crypto')>('node:crypto');
  return crypto.createHash('sha256');
}
