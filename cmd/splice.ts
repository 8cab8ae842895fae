import * as Flags from '@oclif/core/flags';
import { SockcapError } from '../core/errors.js';
import { SpliceModel } from '../core/splice-model.js';
import { formatSplices } from '../core/splice-report.js';
import { SockcapCommand } from './base.js';
import { modelFlags, runModel } from './model-run.js';
import { fileArgs, inputFiles, nothingRead } from './inputs.js';
import { spliceOptionFlags, spliceSpecs } from './splice-flags.js';

export default class Splice extends SockcapCommand {
  static override summary = 'Splice one captured flow onto another connection (OpenBSD SO_SPLICE) and write the result.';
  static override description = `The socket that receives the --from flow stops being read by its application; once both connections are established (or --at), it is spliced to the socket that sends the --to flow: somove moves its receive buffer's Mbufs into the drain's send buffer (references: no byte copied) and the drain's tcp_output sends them. The drain connection is re-synthesised in the output (its handshake as captured; its data from the splice; the peer's segments with renumbered acknowledgements); everything else passes through unchanged. The report gives, per splice, the bytes moved, why and when it ended (EOF, EFBIG, ETIMEDOUT, EPIPE, ECONNRESET...), what was left in the source, the segments sent, and what a read/write relay would have cost.`;
  static override examples = [
    '<%= config.bin %> splice fixtures/splice/relay-lo.pcap --from 0:c2s --to 1:c2s -w spliced.pcap',
    '<%= config.bin %> splice relay.pcap --splice 0:c2s=1:c2s --splice 1:s2c=0:s2c --max 65536 --json',
  ];
  static override strict = false;
  static override enableJsonFlag = true;
  static override args = fileArgs;
  static override flags = {
    from: Flags.string({ summary: 'source flow: stream index or 4-tuple with a direction (3:c2s, 10.0.0.1:5555>10.0.0.2:8080)' }),
    to: Flags.string({ summary: 'drain flow, the same way (its sender is the relay\'s socket)' }),
    splice: Flags.string({ summary: 'FROM=TO, repeatable (two give a bidirectional relay)', multiple: true }),
    ...spliceOptionFlags,
    ...modelFlags,
  };

  async run(): Promise<unknown> {
    const { flags } = await this.parse(Splice);
    const inputs = inputFiles(this.argv, Splice.flags, flags.read);
    const specs = spliceSpecs(flags);
    if (!specs.length) throw new SockcapError('ERR_USAGE', 'nothing to splice: give --from and --to, or --splice FROM=TO');
    const model = new SpliceModel(specs);
    const { stack, res, report, interrupt } = await runModel(inputs, [model], flags);
    const splices = model.records();
    const result = { splices, copiedBytes: splices.reduce((a, s) => a + s.copiedBytes, 0), framesIn: stack.stats.frames, framesOut: stack.outFrames };
    if (!this.jsonEnabled()) report.write(`${formatSplices(splices)}\nframes: ${result.framesIn} in, ${result.framesOut} out\n`);
    interrupt.report(res.frames);
    if (res.error) this.failAfter(res.error);
    else if (res.frames === 0) this.fail(nothingRead(stack.session));
    return result;
  }
}
