import Extract from './extract.js';
import Follow from './follow.js';
import Fuse from './fuse.js';
import Live from './live.js';
import Replay from './replay.js';
import Splice from './splice.js';

/** oclif explicit command discovery (package.json oclif.commands). */
export const COMMANDS = {
  extract: Extract,
  follow: Follow,
  fuse: Fuse,
  live: Live,
  replay: Replay,
  splice: Splice,
};
