import type { CaptureInput } from '../core/capture/reader.js';

/** Turn command-line file arguments into capture inputs; `-` reads standard input. */
export function captureInputs(files: readonly string[]): CaptureInput[] {
  return files.map((f) => (f === '-' ? { name: '-', stream: process.stdin } : { name: f }));
}
