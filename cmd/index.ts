import Replay from './replay.js';

/** oclif explicit command discovery (package.json oclif.commands). */
export const COMMANDS = {
  replay: Replay,
};
