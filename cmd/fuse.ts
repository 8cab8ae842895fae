import { FUSE_HEADER, formatFuseRow, formatFuseTotals, fuseClaimError, fuseSummary } from '../core/fuse-report.js';
import type { FuseRecord } from '../core/tcp/tcp-fuse.js';
import { ConnReport, type ItemFormat } from './conn-report.js';
import { SockcapCommand } from './base.js';
import { modelFlags, runModel } from './model-run.js';
import { fileArgs, inputFiles, nothingRead } from './inputs.js';
import { fuseFlags, makeFuse } from './fuse-flags.js';

export default class Fuse extends SockcapCommand {
  static override summary = 'Fuse local TCP connections (FreeBSD tcp_loopfuse, Solaris TCP fusion) and write what the wire would carry.';
  static override description = `A connection whose two ends are on this host (127/8, ::1, the same address on both ends, or addresses given with --local) fuses once its handshake completes: each end's writes go straight into the peer's socket buffer, and only the handshake and the FIN (or RST) exchange remain on the wire. With -w the output capture shows exactly that; other connections pass through unchanged. The report says, per connection, whether it fused and why, its segments before and after, and the bytes each socket received by fusing; then a line that holds only if it is true (otherwise the command names the offending segment and exits 8).`;
  static override examples = [
    '<%= config.bin %> fuse fixtures/splice/relay-lo.pcap -w fused.pcap',
    '<%= config.bin %> fuse lo.pcapng --local 10.0.0.5 --fuse-seq advance --json',
  ];
  static override strict = false;
  static override enableJsonFlag = true;
  static override args = fileArgs;
  static override flags = {
    ...fuseFlags,
    ...modelFlags,
  };

  async run(): Promise<unknown> {
    const { flags } = await this.parse(Fuse);
    const inputs = inputFiles(this.argv, Fuse.flags, flags.read);
    // records are written as connections leave (the first 10,000 sorted), as replay's are: memory
    // holds the connections in flight, and every connection is listed however many there are
    const conns = new ConnReport<FuseRecord>(this.jsonEnabled(), flags.write === '-' ? process.stderr : process.stdout, null, FUSE_ROWS);
    const fuse = makeFuse(flags, (r) => conns.add(r));
    const { stack, res, interrupt } = await runModel(inputs, [fuse], flags, () => conns.flush());
    const summary = fuseSummary(fuse, stack.stats.frames, stack.outFrames);
    const { connections: _, ...rest } = summary;
    await conns.end(rest, [formatFuseTotals(summary).join('\n')]);
    interrupt.report(res.frames);
    const claim = fuseClaimError(summary);
    if (res.error) this.failAfter(res.error);
    else if (res.frames === 0) this.fail(nothingRead(stack.session));
    else if (claim) this.failAfter(claim);
    // the report has been written (ConnReport): nothing for oclif to print
    return undefined;
  }
}

/** fuse's table rows and JSON elements. */
const FUSE_ROWS: ItemFormat<FuseRecord> = {
  header: FUSE_HEADER,
  row: (jb, r) => jb.text(`${formatFuseRow(r)}\n`),
  json: (jb, r) => jb.text(JSON.stringify(r)),
};
