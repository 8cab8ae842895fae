import type { CaptureOutput } from './capture/output.js';
import { type CaptureInput, readCaptures } from './capture/reader.js';
import { SockcapError } from './errors.js';
import type { Stack } from './stack.js';
import type { Mbuf } from './mbuf/mbuf.js';
import type { Batch } from './capture/session.js';

/** Connections retired at the end of the input between two onBatch calls. */
const FINISH_SLICE = 8192;

/** How one pass over the inputs ended. */
export interface PipelineResult {
  /** Frames handed to the stack. */
  frames: number;
  /** Set when an input could not be read to its end; every good frame before it was processed. */
  error: SockcapError | null;
  /** True when `count` stopped the run early. */
  stoppedAtCount: boolean;
  /** True when `signal` stopped the run early. */
  interrupted: boolean;
}

export interface PipelineOptions {
  /** Stop after this many frames (tcpdump -c). */
  readonly count?: number;
  /** Pass every input frame through to this output unchanged. */
  readonly output?: CaptureOutput;
  /**
   * Called after each batch (progress, output with backpressure): awaited before the next. When
   * the stack produces output frames, `stack.out` holds the batch's until this returns.
   */
  readonly onBatch?: () => void | Promise<void>;
  /**
   * Stop reading when aborted (Ctrl-C), at the end of the batch in progress: what was read is then
   * finished as at the end of the input.
   */
  readonly signal?: AbortSignal;
}

/**
 * Drive the stack with every frame of the inputs (capture files, or any source of batches such as
 * a live capture), in order, batch by batch. Operational errors
 * (SockcapError) end the pass and are returned, not thrown, so the caller can still report and
 * close what was processed; anything else is a bug and is thrown.
 */
export async function runPipeline(inputs: readonly CaptureInput[] | AsyncIterable<Batch>, stack: Stack, opts: PipelineOptions = {}): Promise<PipelineResult> {
  const res: PipelineResult = { frames: 0, error: null, stoppedAtCount: false, interrupted: false };
  const limit = opts.count ?? Infinity;
  try {
    const source = Array.isArray(inputs) ? readCaptures(inputs as readonly CaptureInput[], stack.session) : (inputs as AsyncIterable<Batch>);
    // a command's frames from files (its chunks come from a zone: nothing keeps views past the
    // batch) go back to the readers' pool once processed, unless the stack keeps frames; -w's
    // writers take views of a frame's bytes (and a reference to its chunk) within the batch,
    // never the frame
    const pool = Array.isArray(inputs) && stack.session.zone !== null && !stack.keepsFrames ? stack.session.pool : null;
    for await (let batch of source) {
      if (res.frames + batch.length >= limit) {
        batch = batch.slice(0, limit - res.frames);
        res.stoppedAtCount = true;
      }
      stack.input(batch);
      res.frames += batch.length;
      if (opts.output) {
        writeOut(stack, batch, opts.output);
        await opts.output.maybeFlush();
      }
      await opts.onBatch?.();
      if (stack.out) stack.out.length = 0;
      pool?.recycle(batch);
      if (res.stoppedAtCount) break;
      if (opts.signal?.aborted) {
        res.interrupted = true;
        break;
      }
    }
  } catch (e) {
    if (!(e instanceof SockcapError)) throw e;
    res.error = e;
  }
  // what is still open leaves in slices, each slice's reports and output sent before the next
  // (an operational error here ends it too: a full disk stops the writes with the first failure)
  try {
    for (let done = false; !done; ) {
      done = stack.finish(FINISH_SLICE);
      if (opts.output) writeOut(stack, [], opts.output);
      await opts.onBatch?.();
      if (stack.out) stack.out.length = 0;
    }
  } catch (e) {
    if (!(e instanceof SockcapError)) throw e;
    res.error ??= e;
  }
  return res;
}

/** Write a batch's output: the stack's own when it produces one (hooks), else the input frames. */
function writeOut(stack: Stack, batch: Mbuf[], output: CaptureOutput): void {
  const out = stack.out;
  if (!out) {
    for (const m of batch) output.writeFrame(m);
    return;
  }
  for (const m of out) output.writeFrame(m);
}
