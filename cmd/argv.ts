/**
 * What the CLI does with its arguments before oclif sees them: `sockcap help [COMMAND]` and
 * `sockcap -h` are the help oclif gives for `--help` (oclif's own help command is a plugin sockcap
 * does not load, so they were "command not found"), and a word that names no command is one line
 * with the nearest command, as git suggests one, instead of oclif's "command X:Y not found".
 */
export type Route = { args: string[] } | { error: string };

export function route(argv: readonly string[], commands: readonly string[]): Route {
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '--version') return { args: [...argv] };
  if (first === '-h' || (first === 'help' && rest.length === 0)) return { args: ['--help'] };
  if (first === 'help') return route([rest[0]!, '--help'], commands);
  if (first.startsWith('-') || commands.includes(first)) return { args: [...argv] };
  const near = nearest(first, commands);
  // a capture named where a command goes (`sockcap x.pcap`): the command that reads one
  const hint = near ? `did you mean '${near}'?` : /[./]/.test(first) ? `to read a capture: sockcap replay ${first}` : '';
  return { error: `'${first}' is not a command${hint ? `: ${hint}` : ''} (commands: ${commands.join(', ')}; sockcap --help)` };
}

/** The word of `words` nearest to `w`, at most two edits away; null when none is. */
export function nearest(w: string, words: readonly string[]): string | null {
  let best: string | null = null;
  let bestD = 3;
  for (const c of words) {
    const d = distance(w, c);
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best;
}

/**
 * oclif's usage error `err` as one line (without "sockcap: "), or null when `err` is not one: a
 * mistyped flag (NonExistentFlagsError: its class is not exported by name, its message and list
 * are) names the nearest flag of the command; the others are put on one line.
 */
export function usageLine(command: string, err: { message: string; flags?: unknown }, flags: Readonly<Record<string, { allowNo?: boolean; char?: string }>>): string | null {
  if (Array.isArray(err.flags) && /^Nonexistent flags?:/.test(err.message)) return unknownFlags(command, err.flags as string[], flags);
  return parseErrorLine(command, err.message);
}

/**
 * A mistyped flag: one line naming the nearest flag of the command, instead of oclif's error
 * followed by the whole help.
 */
function unknownFlags(command: string, given: readonly string[], flags: Readonly<Record<string, { allowNo?: boolean; char?: string }>>): string {
  const names = ['json', 'help'];
  for (const [k, f] of Object.entries(flags)) names.push(k, ...(f.allowNo ? [`no-${k}`] : []));
  const one = (g: string) => {
    const near = g.startsWith('--') ? nearest(g.slice(2).split('=')[0]!, names) : null;
    return `${g}${near ? ` (did you mean --${near}?)` : ''}`;
  };
  return `${command}: unknown flag${given.length === 1 ? '' : 's'} ${given.map(one).join(', ')}; sockcap ${command} --help lists them`;
}

/** What oclif's parse errors end with (their class names are not exported; this is). */
const HELP_TAIL = /\s*See more help with --help\s*$/;
/** The one that does not: a flag given without its value (`--overlap` last on the line). */
const NO_VALUE = /^Flag --\S+ expects /;

/**
 * oclif's other parse errors (a missing required flag, a value not among the options, a number
 * that is not one) as one line, as every sockcap error is (DESIGN.md channel 3); null for any other
 * error. oclif wrote them over two to four lines, indented, with its own prefix.
 */
export function parseErrorLine(command: string, message: string): string | null {
  if (!HELP_TAIL.test(message) && !NO_VALUE.test(message)) return null;
  const lines = message.replace(HELP_TAIL, '').replace(/^The following errors? occurred:/, '').split('\n').map((l) => l.trim()).filter(Boolean);
  // "Parsing --count" then what was wrong with its value: one clause
  if (lines.length > 1 && /^Parsing --\S+$/.test(lines[0]!)) lines.splice(0, 2, `${lines[0]}: ${lines[1]}`);
  const text = lines.join('; ');
  return `${command}: ${text.charAt(0).toLowerCase()}${text.slice(1)}; sockcap ${command} --help`;
}

/** Levenshtein distance (commands are short words: the full table is nothing). */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}
