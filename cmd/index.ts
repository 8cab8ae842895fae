import Follow from './follow.js';
import Replay from './replay.js';

/** oclif explicit command discovery (package.json oclif.commands). */
export const COMMANDS = {
  follow: Follow,
  replay: Replay,
};
