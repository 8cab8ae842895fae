import { Args, Flags } from '@oclif/core';
import { CaptureOutput } from '../core/capture/output.js';
import { SockcapError } from '../core/errors.js';
import { runPipeline } from '../core/pipeline.js';
import { formatReplaySummary, replaySummary, type ReplaySummary } from '../core/report.js';
import { Stack } from '../core/stack.js';
import { CaptureSession } from '../core/capture/session.js';
import { SockcapCommand } from './base.js';
import { DrainApp } from '../core/socket/reader.js';
import { captureInputs } from './inputs.js';
import { startProgress } from './progress.js';

export default class Replay extends SockcapCommand {
  static override summary = 'Run captures through the stack and report what it saw.';
  static override description = `Reads pcap, pcapng or gzip-compressed captures (detected by their magic bytes; '-' is stdin), runs every frame through if/ether/ip input, and prints frames, bytes, link types, protocols and counted drops. With -w the frames are written back unchanged (pcap or pcapng).`;
  static override examples = [
    '<%= config.bin %> replay fixtures/tcp/http-two-conns.pcap',
    '<%= config.bin %> replay a.pcap b.pcapng.gz -w merged.pcapng --json',
  ];
  static override strict = false;
  static override enableJsonFlag = true;
  static override args = {
    file: Args.string({ description: 'capture files, read in the order given (- for stdin)', required: true }),
  };
  static override flags = {
    write: Flags.string({ char: 'w', summary: 'write the frames to this capture file (- for stdout)' }),
    count: Flags.integer({ char: 'c', summary: 'stop after this many frames', min: 1 }),
    'out-format': Flags.option({ options: ['pcap', 'pcapng'] as const, summary: 'output format (default: the first input\'s)' })(),
    'verify-checksums': Flags.boolean({ summary: 'drop packets with bad IP/TCP checksums instead of counting them' }),
    checksums: Flags.boolean({ allowNo: true, default: true, summary: 'compute TCP checksums to count bad ones (--no-checksums: faster, bad ones go uncounted)' }),
    quiet: Flags.boolean({ char: 'q', summary: 'no progress on stderr' }),
    hash: Flags.boolean({ summary: 'SHA-256 of what each socket read, per direction' }),
    overlap: Flags.option({ options: ['first', 'last'] as const, default: 'first' as const, summary: 'overlapping data: keep the first copy (BSD) or the last' })(),
  };

  async run(): Promise<ReplaySummary> {
    const { argv, flags } = await this.parse(Replay);
    const files = argv as string[];
    const session = new CaptureSession();
    const stack = new Stack(session, {
      verifyChecksums: flags['verify-checksums'],
      policy: flags.overlap,
      checksums: flags.checksums,
      app: new DrainApp(flags.hash),
    });
    const toStdout = flags.write === '-';
    const output = flags.write
      ? await CaptureOutput.open(toStdout ? process.stdout : flags.write, session, flags['out-format'])
      : undefined;
    const progress = startProgress(session, files, flags.quiet || toStdout);
    let res;
    try {
      res = await runPipeline(captureInputs(files), stack, { count: flags.count, output, onBatch: progress.tick });
    } finally {
      progress.stop();
    }
    if (output) await output.close();
    const summary = replaySummary(stack, res.error);
    if (!this.jsonEnabled()) (toStdout ? process.stderr : process.stdout).write(formatReplaySummary(summary) + '\n');
    if (res.error) {
      this.failAfter(res.error);
      return summary;
    }
    if (res.frames === 0) this.fail(new SockcapError('ERR_NOTHING', 'no frames were read'));
    return summary;
  }
}
