import * as Flags from '@oclif/core/flags';
import { CaptureOutput } from '../core/capture/output.js';
import type { StackHook } from '../core/hook.js';
import { type PipelineResult, runPipeline } from '../core/pipeline.js';
import { DrainApp } from '../core/socket/reader.js';
import { Stack } from '../core/stack.js';
import { captureInputs, checkOutputNotInput, fileSession, memoryBudget, memoryFlag, networksFlag, readFlags, type RunInputs } from './inputs.js';
import { startProgress } from './progress.js';
import { Interrupt } from './interrupt.js';

/** `--out-format` of every command that writes a capture with -w (CaptureOutput picks the default). */
export const outFormatFlag = {
  'out-format': Flags.option({ options: ['pcap', 'pcapng'] as const, summary: 'output format (default: pcapng for a file named *.pcapng, else the first input\'s)' })(),
};

/** Flags of the commands that model the stack and write its output (fuse, splice). */
export const modelFlags = {
  ...readFlags,
  ...memoryFlag,
  ...networksFlag,
  write: Flags.string({ char: 'w', summary: 'write the resulting traffic to this capture file (- for stdout)' }),
  ...outFormatFlag,
  quiet: Flags.boolean({ char: 'q', summary: 'no progress on stderr' }),
  debug: Flags.boolean({ summary: 'check socket-buffer and reassembly invariants after every batch (slow)' }),
};

/** Run the inputs through a stack with these hooks, writing its output with -w (the caller reports an interrupt after its own output). */
export async function runModel({ files, filter }: RunInputs, hooks: StackHook[], f: { write?: string; 'out-format'?: 'pcap' | 'pcapng'; quiet: boolean; debug: boolean; memory?: string; networks?: 'separate' | 'merge'; count?: number }, onBatch?: () => Promise<void>): Promise<{ stack: Stack; res: PipelineResult; report: NodeJS.WritableStream; interrupt: Interrupt }> {
  checkOutputNotInput(f.write, files);
  const toStdout = f.write === '-';
  const session = fileSession(filter);
  const stack = new Stack(session, { hooks, output: !!f.write, app: new DrainApp(false), debug: f.debug, onConnection: null, memoryBudget: memoryBudget(f.memory), networks: f.networks });
  const output = f.write ? await CaptureOutput.open(toStdout ? process.stdout : f.write, session, f['out-format']) : undefined;
  const progress = startProgress(session, files, f.quiet || toStdout);
  const interrupt = new Interrupt();
  let res;
  try {
    res = await runPipeline(captureInputs(files), stack, { count: f.count, output, signal: interrupt.signal, onBatch });
  } finally {
    progress.stop();
  }
  if (output) await output.close();
  return { stack, res, report: toStdout ? process.stderr : process.stdout, interrupt };
}
