import { Args, Flags } from '@oclif/core';
import { CHUNK_SIZE } from '../core/capture/chunks.js';
import type { CaptureInput } from '../core/capture/reader.js';
import { CaptureSession } from '../core/capture/session.js';
import { ChunkZone } from '../core/capture/zone.js';
import { closeSync, openSync, statSync } from 'node:fs';
import { SockcapError } from '../core/errors.js';

/** Capture files as arguments (any number; `-` is stdin). */
export const fileArgs = {
  file: Args.string({ description: 'capture files, read in the order given (- for stdin; or -r FILE)', required: false }),
};

/** `-r FILE`, as tcpdump and tshark spell it. */
export const readFlag = {
  read: Flags.string({ char: 'r', summary: 'capture file to read, as with tcpdump -r (repeatable; read before files given as arguments)', multiple: true }),
};

/** `--memory`: the stack's budget for queued data and connection state (StackOptions.memoryBudget). */
export const memoryFlag = {
  memory: Flags.string({ summary: 'memory for queued data and connection state (256M, 1G; default 256M): past it the oldest connection is evicted, or the one growing skips its holes (both counted)' }),
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

/** The files of a run: `-r` ones first, then the arguments; none is a usage error. */
export function inputFiles(argv: readonly unknown[], read: readonly string[] | undefined): string[] {
  const files = [...(read ?? []), ...(argv as string[])];
  if (!files.length) throw new SockcapError('ERR_USAGE', 'no capture file: give one as an argument or with -r FILE');
  for (const f of files) if (f !== '-') checkReadable(f);
  return files;
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
export function fileSession(): CaptureSession {
  const session = new CaptureSession();
  session.zone = new ChunkZone(CHUNK_SIZE);
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
