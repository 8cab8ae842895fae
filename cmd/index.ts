import Extract from './extract.js';
import Follow from './follow.js';
import Fuse from './fuse.js';
import Replay from './replay.js';

/** oclif explicit command discovery (package.json oclif.commands). */
export const COMMANDS = {
  extract: Extract,
  follow: Follow,
  fuse: Fuse,
  replay: Replay,
};
