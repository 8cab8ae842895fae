import { Args, Flags } from '@oclif/core';
import { CaptureOutput } from '../core/capture/output.js';
import { CaptureSession } from '../core/capture/session.js';
import { SockcapError } from '../core/errors.js';
import { formatFuseSummary, fuseSummary } from '../core/fuse-report.js';
import { runPipeline } from '../core/pipeline.js';
import { Stack } from '../core/stack.js';
import { SockcapCommand } from './base.js';
import { fuseFlags, makeFuse } from './fuse-flags.js';
import { captureInputs } from './inputs.js';
import { startProgress } from './progress.js';

export default class Fuse extends SockcapCommand {
  static override summary = 'Fuse local TCP connections (FreeBSD tcp_loopfuse, Solaris TCP fusion) and write what the wire would carry.';
  static override description = `A connection whose two ends are on this host (127/8, ::1, the same address on both ends, or addresses given with --local) fuses once its handshake completes: each end's writes go straight into the peer's socket buffer, and only the handshake and the FIN (or RST) exchange remain on the wire. With -w the output capture shows exactly that; other connections pass through unchanged. The report says, per connection, whether it fused and why, its segments before and after, and the bytes each socket received by fusing; then a line that holds only if it is true (otherwise the command names the offending segment and exits 8).`;
  static override examples = [
    '<%= config.bin %> fuse fixtures/fuse/loopback-http.pcap -w fused.pcap',
    '<%= config.bin %> fuse lo.pcapng --local 10.0.0.5 --fuse-seq advance --json',
  ];
  static override strict = false;
  static override enableJsonFlag = true;
  static override args = {
    file: Args.string({ description: 'capture files, read in the order given (- for stdin)', required: true }),
  };
  static override flags = {
    write: Flags.string({ char: 'w', summary: 'write the fused traffic to this capture file (- for stdout)' }),
    'out-format': Flags.option({ options: ['pcap', 'pcapng'] as const, summary: 'output format (default: the first input\'s)' })(),
    ...fuseFlags,
    quiet: Flags.boolean({ char: 'q', summary: 'no progress on stderr' }),
    debug: Flags.boolean({ summary: 'check socket-buffer and reassembly invariants after every batch (slow)' }),
  };

  async run(): Promise<unknown> {
    const { argv, flags } = await this.parse(Fuse);
    const files = argv as string[];
    const toStdout = flags.write === '-';
    const fuse = makeFuse(flags);
    const session = new CaptureSession();
    const stack = new Stack(session, { hooks: [fuse], debug: flags.debug, onConnection: () => {} });
    const output = flags.write ? await CaptureOutput.open(toStdout ? process.stdout : flags.write, session, flags['out-format']) : undefined;
    const progress = startProgress(session, files, flags.quiet || toStdout);
    let res;
    try {
      res = await runPipeline(captureInputs(files), stack, { output });
    } finally {
      progress.stop();
    }
    if (output) await output.close();
    const summary = fuseSummary(fuse, stack.stats.frames, stack.outFrames);
    if (!this.jsonEnabled()) (toStdout ? process.stderr : process.stdout).write(formatFuseSummary(summary) + '\n');
    if (res.error) this.failAfter(res.error);
    else if (res.frames === 0) this.fail(new SockcapError('ERR_NOTHING', 'no frames were read'));
    else if (!summary.onlySynFin) this.failAfter(new SockcapError('ERR_CLAIM', `a fused connection sent more than SYN/FIN segments: ${summary.violation}`));
    return summary;
  }
}
