import * as Args from '@oclif/core/args';
import * as Flags from '@oclif/core/flags';
import { CHUNK_SIZE } from '../core/capture/chunks.js';
import type { CaptureInput } from '../core/capture/reader.js';
import { CaptureSession } from '../core/capture/session.js';
import { ChunkZone } from '../core/capture/zone.js';
import { closeSync, openSync, statSync } from 'node:fs';
import { CaptureFilter } from '../core/capture/bpf.js';
import { LINKTYPE } from '../core/capture/linktypes.js';
import { SockcapError } from '../core/errors.js';

/** Capture files as arguments (any number; `-` is stdin). */
export const fileArgs = {
  file: Args.string({ description: 'capture files, read in the order given (- for stdin; or -r FILE), then an optional capture filter in tcpdump\'s language (tcp port 80)', required: false }),
};

/** `-n`: sockcap never resolves names, and takes tcpdump's and tshark's flag for it, typed by habit. */
export const numericFlag = {
  numeric: Flags.boolean({ char: 'n', summary: 'addresses and ports as numbers, as with tcpdump -n (they always are: accepted, changes nothing)' }),
};

/** `-c N`, as tcpdump counts: frames a filter passes (the files' or libpcap's). */
export const countFlag = {
  count: Flags.integer({ char: 'c', summary: 'stop after this many frames (those the filter passes, as tcpdump -c counts)', min: 1 }),
};

/** `-r FILE`, as tcpdump and tshark spell it, with the flags that go with it: `-c N` and `-n`. */
export const readFlags = {
  read: Flags.string({ char: 'r', summary: 'capture file to read, as with tcpdump -r (repeatable; read before files given as arguments)', multiple: true, multipleNonGreedy: true }),
  ...countFlag,
  ...numericFlag,
};

/** `--memory`: the stack's budget for queued data and connection state (StackOptions.memoryBudget). */
export const memoryFlag = {
  memory: Flags.string({ summary: 'memory for queued data and connection state (256M, 1G; default 256M): past it the oldest connection is evicted, or the one growing skips its holes (both counted)' }),
};

/** `--networks`: whether a VLAN stack or a tunnel tells connections apart (StackOptions.networks). */
export const networksFlag = {
  networks: Flags.option({
    options: ['separate', 'merge'] as const,
    default: 'separate' as const,
    summary: 'separate: each VLAN stack and tunnel is a network of its own (one 4-tuple in two is two connections); merge: the 4-tuple alone, so directions seen through different VLANs, VNIs or mirror sessions meet',
  })(),
};

const UNITS: Readonly<Record<string, number>> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** `--memory`'s value in bytes (256M, 1.5G, 512MiB, 1048576; K, M and G are powers of 1024), or undefined for the default. */
export function memoryBudget(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)([kmg]?)(?:i?b)?$/i.exec(s.trim());
  const n = m ? Math.floor(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!) : NaN;
  if (!(n >= 1 << 20)) throw new SockcapError('ERR_USAGE', `--memory '${s}' is not a size of at least 1M (256M, 1G, 1048576)`);
  return n;
}

/** The capture files of a run and its capture filter (null: none). */
export interface RunInputs {
  files: string[];
  filter: CaptureFilter | null;
}

/**
 * The arguments that are not flags or flags' values, in the order given: oclif's non-strict argv
 * reorders repeated words, which a filter cannot afford. Everything after `--` is taken as is.
 */
export function positional(raw: readonly string[], defs: Record<string, { type: string; char?: string }>): string[] {
  const takesValue = new Set<string>();
  for (const [name, d] of Object.entries(defs)) {
    if (d.type === 'boolean') continue;
    takesValue.add(`--${name}`);
    if (d.char) takesValue.add(`-${d.char}`);
  }
  const words: string[] = [];
  for (let i = 0; i < raw.length; i++) {
    const a = raw[i]!;
    if (a === '--') {
      words.push(...raw.slice(i + 1));
      break;
    }
    if (a.startsWith('-') && a.length > 1) {
      if (takesValue.has(a)) i++;
      continue;
    }
    words.push(a);
  }
  return words;
}

/**
 * A word that names a capture: `-`, a name with a capture's extension, or a path that exists: a
 * bare word naming a directory (`tcp` where a directory tcp/ is) is a filter word, a directory
 * given as a path (`./tcp`, `/tmp/x`) is a capture the run then cannot open.
 */
const CAPTURE_NAME = /\.(pcap|pcapng|cap|dmp|trc|ntar|gz)$/i;
function isFileWord(w: string): boolean {
  if (w === '-' || CAPTURE_NAME.test(w)) return true;
  const st = statSync(w, { throwIfNoEntry: false });
  return st !== undefined && (!st.isDirectory() || w.includes('/'));
}

/**
 * The files of a run, `-r` ones first, then the arguments up to the first word that names no
 * capture; that word and those after it are the capture filter, as tcpdump takes one after
 * `-r FILE` (`sockcap replay a.pcap b.pcap tcp port 80`). No file is a usage error, and so is a
 * capture named after the filter began. A filter is compiled at once (for Ethernet), so a syntax
 * error is a usage error before anything is read.
 */
export function inputFiles(raw: readonly string[], defs: Record<string, { type: string; char?: string }>, read: readonly string[] | undefined): RunInputs {
  const words = positional(raw, defs);
  let i = 0;
  while (i < words.length && isFileWord(words[i]!)) i++;
  const rest = words.slice(i);
  const late = rest.find(isFileWord);
  if (late !== undefined) throw new SockcapError('ERR_USAGE', `capture files go before the filter: '${late}' follows '${rest.slice(0, rest.indexOf(late)).join(' ')}'`);
  const files = [...(read ?? []), ...words.slice(0, i)];
  if (!files.length) throw new SockcapError('ERR_USAGE', `no capture file: give one as an argument or with -r FILE${rest.length ? ` ('${rest[0]}' is no file, so it began a filter)` : ''}`);
  for (const f of files) if (f !== '-') checkReadable(f);
  const filter = rest.length ? new CaptureFilter(rest.join(' ')) : null;
  try {
    filter?.program(LINKTYPE.ETHERNET);
  } catch (e) {
    // a mistyped file name begins a filter that does not compile: say what it was taken for
    if (e instanceof SockcapError && /[/.]/.test(rest[0]!)) throw new SockcapError(e.code, `'${rest[0]}' is no file, so it began a filter: ${e.message}`, { cause: e });
    throw e;
  }
  return { files, filter };
}

/** The error of a run that read no frame: none at all, or none the filter let through. */
export function nothingRead(session: CaptureSession): SockcapError {
  const f = session.filter;
  return new SockcapError('ERR_NOTHING', f && f.rejected ? `no frames passed the filter '${f.expr}' (${f.rejected} read)` : 'no frames were read');
}

/**
 * A file the run could not open fails it before anything is read or written, as tcpdump -r does:
 * a mistyped name, after the other files of a long run, would otherwise end it with an empty
 * report or index. (The reader still reports a file that goes away in between.)
 */
function checkReadable(f: string): void {
  let fd: number | undefined;
  try {
    const st = statSync(f);
    if (st.isDirectory()) throw new Error('is a directory');
    // a regular file is opened to check the right to read it; a FIFO is not (opening it would
    // wait for its writer, and closing it would give that writer EPIPE)
    if (st.isFile()) fd = openSync(f, 'r');
  } catch (e) {
    throw new SockcapError('ERR_OPEN', `${f}: cannot open: ${(e as Error).message}`, { cause: e });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Turn command-line file arguments into capture inputs; `-` reads standard input. */
export function captureInputs(files: readonly string[]): CaptureInput[] {
  return files.map((f) => (f === '-' ? { name: '-', stream: process.stdin } : { name: f }));
}

/**
 * The session of a command that reads capture files: its read chunks come from a zone and are
 * reused once nothing references them. The commands' readers keep no view past their read (they
 * drain, hash, render text, or write holding references), and whatever keeps an Mbuf longer
 * counts its references (queues, -w's pending writes, extract's writes in flight, the splice
 * model's kept frames).
 */
export function fileSession(filter: CaptureFilter | null = null): CaptureSession {
  const session = new CaptureSession();
  session.zone = new ChunkZone(CHUNK_SIZE);
  session.filter = filter;
  return session;
}

/**
 * Refuse an output capture that is one of the inputs (`replay x.pcap -w x.pcap`): opening it for
 * writing truncates it before a byte is read, and the capture is gone. Known by device and inode
 * when it exists (a link or another path to it), else it is not an input.
 */
export function checkOutputNotInput(out: string | undefined, files: readonly string[]): void {
  if (out === undefined || out === '-') return;
  const o = statSync(out, { throwIfNoEntry: false });
  if (!o || !o.isFile()) return;
  for (const f of files) {
    if (f === '-') continue;
    const i = statSync(f, { throwIfNoEntry: false });
    if (i && i.dev === o.dev && i.ino === o.ino)
      throw new SockcapError('ERR_USAGE', `-w ${out} is the input capture ${f}: writing it would destroy what is being read`);
  }
}
