/**
 * What the CLI runs, in one module so the build can bundle it (scripts/bundle.mjs): oclif's
 * `execute` and the commands (package.json oclif.commands: explicit, identifier COMMANDS).
 */
export { execute } from '@oclif/core';
export { COMMANDS } from './index.js';
export { route } from './argv.js';
