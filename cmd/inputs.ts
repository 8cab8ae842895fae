import { Args, Flags } from '@oclif/core';
import { CHUNK_SIZE } from '../core/capture/chunks.js';
import type { CaptureInput } from '../core/capture/reader.js';
import { CaptureSession } from '../core/capture/session.js';
import { ChunkZone } from '../core/capture/zone.js';
import { SockcapError } from '../core/errors.js';

/** Capture files as arguments (any number; `-` is stdin). */
export const fileArgs = {
  file: Args.string({ description: 'capture files, read in the order given (- for stdin; or -r FILE)', required: false }),
};

/** `-r FILE`, as tcpdump and tshark spell it. */
export const readFlag = {
  read: Flags.string({ char: 'r', summary: 'capture file to read, as with tcpdump -r (repeatable; read before files given as arguments)', multiple: true }),
};

/** The files of a run: `-r` ones first, then the arguments; none is a usage error. */
export function inputFiles(argv: readonly unknown[], read: readonly string[] | undefined): string[] {
  const files = [...(read ?? []), ...(argv as string[])];
  if (!files.length) throw new SockcapError('ERR_USAGE', 'no capture file: give one as an argument or with -r FILE');
  return files;
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
