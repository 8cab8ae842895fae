import * as Flags from '@oclif/core/flags';
import { CaptureOutput } from '../core/capture/output.js';
import { runPipeline } from '../core/pipeline.js';
import { formatReplaySummary, replaySummary } from '../core/report.js';
import { DrainApp } from '../core/socket/reader.js';
import { Stack } from '../core/stack.js';
import { SockcapCommand } from './base.js';
import { ConnReport, connections } from './conn-report.js';
import { checkOutputNotInput, captureInputs, fileSession, fileArgs, inputFiles, memoryBudget, nothingRead, memoryFlag, networksFlag, readFlags } from './inputs.js';
import { startProgress } from './progress.js';
import { Interrupt } from './interrupt.js';
import { modelOptionFlags, Models } from './models.js';
import { outFormatFlag } from './model-run.js';

export default class Replay extends SockcapCommand {
  static override summary = 'Run captures through the stack and report what it saw.';
  static override description = `Reads pcap, pcapng or gzip-compressed captures (detected by their magic bytes; '-' is stdin), runs every frame through if/ether/ip/tcp input into socket buffers, drains every socket as data arrives, and reports frames, link types, protocols, counted drops, every TCP connection and netstat-style counters. With -w the frames are written back unchanged (pcap or pcapng).`;
  static override examples = [
    '<%= config.bin %> replay fixtures/tcp/smtp.pcap --hash',
    '<%= config.bin %> replay a.pcap b.pcapng.gz -w merged.pcapng --json',
  ];
  static override strict = false;
  static override enableJsonFlag = true;
  static override args = fileArgs;
  static override flags = {
    ...readFlags,
    ...memoryFlag,
    ...networksFlag,
    write: Flags.string({ char: 'w', summary: 'write the frames to this capture file (- for stdout)' }),
    ...outFormatFlag,
    'verify-checksums': Flags.boolean({ summary: 'drop packets with bad IP/TCP checksums instead of counting them' }),
    checksums: Flags.boolean({ allowNo: true, default: true, summary: 'compute TCP checksums to count bad ones (--no-checksums: faster, bad ones go uncounted)' }),
    quiet: Flags.boolean({ char: 'q', summary: 'no progress on stderr' }),
    tcp: Flags.boolean({ allowNo: true, default: true, summary: 'TCP input (--no-tcp: decode up to the TCP header only; no connections)' }),
    debug: Flags.boolean({ summary: 'check socket-buffer and reassembly invariants after every batch (slow)' }),
    hash: Flags.boolean({ summary: 'SHA-256 of what each socket read, per direction' }),
    ...modelOptionFlags,
    overlap: Flags.option({ options: ['first', 'last'] as const, default: 'first' as const, summary: 'overlapping data: keep the first copy (BSD) or the last' })(),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Replay);
    const { files, filter } = inputFiles(this.argv, Replay.flags, flags.read);
    checkOutputNotInput(flags.write, files);
    const json = this.jsonEnabled();
    const toStdout = flags.write === '-';
    const report = toStdout ? process.stderr : process.stdout;
    const flush = () => conns.flush();
    const session = fileSession(filter);
    const models = new Models(flags);
    const stack = new Stack(session, {
      hooks: models.hooks,
      output: models.output(flags.write),
      verifyChecksums: flags['verify-checksums'],
      checksums: flags.checksums,
      policy: flags.overlap,
      app: new DrainApp(flags.hash),
      onConnection: null,
      onRetire: (c) => conns.add(c),
      debug: flags.debug,
      tcp: flags.tcp,
      memoryBudget: memoryBudget(flags.memory),
      networks: flags.networks,
    });
    // connections are written as they finish: memory holds what is in flight, not the whole run
    const conns = new ConnReport(json, report, null, connections(stack));
    const output = flags.write ? await CaptureOutput.open(toStdout ? process.stdout : flags.write, session, flags['out-format']) : undefined;
    const progress = startProgress(session, files, flags.quiet || toStdout);
    const intr = new Interrupt();
    let res;
    try {
      res = await runPipeline(captureInputs(files), stack, { count: flags.count, output, onBatch: flush, signal: intr.signal });
    } finally {
      progress.stop();
    }
    if (output) await output.close();
    const { connections: _, ...rs } = replaySummary(stack, res.error);
    const mr = models.report(stack);
    await conns.end({ ...rs, ...mr.json }, [formatReplaySummary({ ...rs, connections: [] }), ...mr.text]);
    intr.report(res.frames);
    if (res.error) return this.failAfter(res.error);
    if (mr.claim) return this.failAfter(mr.claim);
    if (res.frames === 0) this.fail(nothingRead(session));
  }
}
