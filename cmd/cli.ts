/**
 * What the CLI runs, in one module so the build can bundle it (scripts/bundle.mjs): oclif's
 * `execute` and the commands (package.json oclif.commands: explicit, identifier COMMANDS).
 *
 * The commands import oclif by its subpaths (@oclif/core/command, /flags, /args, /execute), never
 * its index: the index loads every part of oclif at once and checks the Node version with
 * semver as it loads, so the bundle without it is 70 KB smaller and a start-up runs ~12 million
 * instructions fewer (callgrind, a replay of smtp.pcap: 712 against 725 million; node alone 502).
 */
export { execute } from '@oclif/core/execute';
export { COMMANDS } from './index.js';
export { route } from './argv.js';
