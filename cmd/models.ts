import * as Flags from '@oclif/core/flags';
import type { SockcapError } from '../core/errors.js';
import { formatFuseSummary, fuseClaimError, fuseSummary } from '../core/fuse-report.js';
import type { StackHook } from '../core/hook.js';
import { SpliceModel } from '../core/splice-model.js';
import { formatSplices } from '../core/splice-report.js';
import type { Stack } from '../core/stack.js';
import type { TcpFuse } from '../core/tcp/tcp-fuse.js';
import { fuseFlags, makeFuse } from './fuse-flags.js';
import { spliceOptionFlags, spliceSpecs } from './splice-flags.js';

/** `--fuse` and `--splice` with their options, for the commands that run the whole stack (replay, live). */
export const modelOptionFlags = {
  fuse: Flags.boolean({ summary: 'fuse local connections (see `sockcap fuse`): -w then shows only their SYN/FIN exchanges' }),
  ...fuseFlags,
  splice: Flags.string({ summary: 'splice FROM=TO (see `sockcap splice`), repeatable', multiple: true }),
  ...spliceOptionFlags,
};

type ModelFlags = Parameters<typeof makeFuse>[0] & Parameters<typeof spliceSpecs>[0] & { fuse: boolean };

/** The models the flags ask for, as stack hooks, and what they report after the run. */
export class Models {
  readonly fuse: TcpFuse | null;
  readonly splicer: SpliceModel | null;

  constructor(f: ModelFlags) {
    this.fuse = f.fuse ? makeFuse(f) : null;
    const specs = spliceSpecs(f);
    this.splicer = specs.length ? new SpliceModel(specs) : null;
  }

  get hooks(): StackHook[] {
    return [...(this.fuse ? [this.fuse] : []), ...(this.splicer ? [this.splicer] : [])];
  }

  /** Whether the stack must produce output frames: -w is given and a model shapes them. */
  output(write: string | undefined): boolean {
    return !!write && !!(this.fuse || this.splicer);
  }

  /** JSON keys and text sections of the models' reports, and the claim that did not hold, if one. */
  report(stack: Stack): { json: object; text: string[]; claim: SockcapError | null } {
    const fs = this.fuse ? fuseSummary(this.fuse, stack.stats.frames, stack.outFrames) : undefined;
    const splices = this.splicer?.records();
    return {
      json: { ...(fs ? { fuse: fs } : {}), ...(splices ? { splices, copiedBytes: splices.reduce((a, s) => a + s.copiedBytes, 0) } : {}) },
      text: [...(fs ? [formatFuseSummary(fs)] : []), ...(splices ? [formatSplices(splices)] : [])],
      claim: fs ? fuseClaimError(fs) : null,
    };
  }
}
