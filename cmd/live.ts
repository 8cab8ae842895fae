import * as Flags from '@oclif/core/flags';
import { type LiveCapture, liveDevices } from '../core/capture/live.js';
import { CaptureOutput } from '../core/capture/output.js';
import { CaptureSession } from '../core/capture/session.js';
import { linktypeName } from '../core/capture/linktypes.js';
import { SockcapError } from '../core/errors.js';
import { Follower, type FollowFormat } from '../core/follow.js';
import { runPipeline } from '../core/pipeline.js';
import { formatReplaySummary, replaySummary } from '../core/report.js';
import { parseSelector } from '../core/selector.js';
import { DrainApp } from '../core/socket/reader.js';
import { parseDuration } from '../core/splice-report.js';
import { Stack } from '../core/stack.js';
import { SockcapCommand } from './base.js';
import { ConnReport, connections } from './conn-report.js';
import { checkBytesOut, formatFlag, gapsFlag, gapsFor } from './follow.js';
import { openLive, startLiveTable } from './live-run.js';
import { modelOptionFlags, Models } from './models.js';
import { countFlag, memoryBudget, memoryFlag, networksFlag, numericFlag, positional } from './inputs.js';

export default class Live extends SockcapCommand {
  static override summary = 'Capture on an interface (libpcap) and run the traffic through the stack as it arrives.';
  static override description = `The same pipeline as replay, on a running interface: packets are copied once out of libpcap's buffer, stamped, queued (a bounded queue: what the pipeline cannot keep up with is dropped and counted), and run through if/ether/ip/tcp input into socket buffers. A table on stderr (when it is a terminal) shows connections, bytes, socket-buffer occupancy and drops every second. Ctrl-C or SIGTERM stops cleanly: the output capture is flushed and whole, and the report (replay's, with --json and --hash) is printed. A BPF filter can follow the options, as with tcpdump. Needs root or CAP_NET_RAW.`;
  static override examples = [
    '<%= config.bin %> live -i lo tcp port 8080 -w lo.pcap',
    '<%= config.bin %> live -i lo --follow 0 --duration 10s',
    '<%= config.bin %> live -i lo --fuse -w fused.pcap --json',
    '<%= config.bin %> live --list',
  ];
  static override strict = false;
  static override enableJsonFlag = true;
  static override flags = {
    ...numericFlag,
    interface: Flags.string({ char: 'i', summary: 'interface to capture on (see --list)' }),
    list: Flags.boolean({ char: 'D', summary: 'list the interfaces libpcap can capture on, and exit' }),
    write: Flags.string({ char: 'w', summary: 'write the frames (or, with --fuse/--splice, the resulting traffic) to this capture file' }),
    ...countFlag,
    duration: Flags.string({ summary: 'stop after this long (10s, 2m)' }),
    snaplen: Flags.integer({ char: 's', summary: 'bytes kept per packet (the binding captures at most 65535)', min: 1 }),
    'no-promisc': Flags.boolean({ char: 'p', summary: 'do not put the interface in promiscuous mode (not supported by the binding: it always does)' }),
    buffer: Flags.integer({ char: 'B', summary: 'libpcap kernel buffer, KiB (default 262144: the binding\'s immediate mode takes a ~64 KiB ring slot per packet on Linux)', min: 1 }),
    queue: Flags.integer({ summary: 'frames that may wait for the pipeline before packets are dropped (default 262144)', min: 1 }),
    follow: Flags.string({ summary: 'print this stream\'s bytes as they are reassembled (stream index or 4-tuple, optional :c2s/:s2c); the report goes to stderr' }),
    format: formatFlag,
    gaps: gapsFlag,
    hash: Flags.boolean({ summary: 'SHA-256 of what each socket read, per direction' }),
    quiet: Flags.boolean({ char: 'q', summary: 'no live table on stderr' }),
    ...memoryFlag,
    ...networksFlag,
    ...modelOptionFlags,
  };

  async run(): Promise<unknown> {
    const { flags } = await this.parse(Live);
    const filter = positional(this.argv, Live.flags).join(' ');
    if (flags.list) {
      const devs = liveDevices(process.env.SOCKCAP_CAP_MODULE);
      const lines = devs.map((d, i) => `${i + 1}.${d.name}${d.description ? ` (${d.description})` : ''}${d.addresses.length ? ` [${d.addresses.map((a) => a.addr).join(', ')}]` : ''}${d.flags ? ` {${d.flags}}` : ''}`);
      if (!this.jsonEnabled()) process.stdout.write(lines.join('\n') + '\n');
      return devs;
    }
    if (!flags.interface) throw new SockcapError('ERR_USAGE', 'give an interface with -i (sockcap live --list shows them)');
    const duration = flags.duration === undefined ? undefined : parseDuration(flags.duration);
    if (duration === null) throw new SockcapError('ERR_USAGE', `--duration '${flags.duration}' is not a duration (10s, 2m)`);
    if (flags['no-promisc']) process.stderr.write('sockcap: -p: the cap binding always opens the interface in promiscuous mode\n');
    const models = new Models(flags);
    if (flags.follow) checkBytesOut(flags.format as FollowFormat);
    const report = flags.follow ? process.stderr : process.stdout;
    const follow = flags.follow ? new Follower(parseSelector(flags.follow), flags.format as FollowFormat, null, (o) => {
      // live's slabs are never reused: the views can go to stdout as they are
      if (typeof o === 'string') process.stdout.write(o);
      else for (const v of o) process.stdout.write(v);
    }, gapsFor(flags.format as FollowFormat, flags.gaps)) : undefined;
    // connections are written as they finish (the first 10,000 held to be sorted), as replay's
    // are: a long capture's memory holds what is in flight, not every connection seen. The live
    // table on the terminal steps aside for them (it is redrawn at its next tick).
    let table: { stop: () => void; clear: () => void };
    const session = new CaptureSession();
    const stack = new Stack(session, {
      app: new DrainApp(flags.hash, 1 << 20, follow?.sink, follow?.closed),
      hooks: models.hooks,
      output: models.output(flags.write),
      onConnection: null,
      onRetire: (c) => conns.add(c),
      memoryBudget: memoryBudget(flags.memory),
      networks: flags.networks,
    });
    const conns = new ConnReport(this.jsonEnabled(), report, () => table.clear(), connections(stack));
    if (follow) {
      follow.nets = stack.nets;
      follow.clock = stack;
    }
    const cap: LiveCapture = openLive({ binding: process.env.SOCKCAP_CAP_MODULE, iface: flags.interface, filter, snaplen: flags.snaplen, bufferSize: flags.buffer ? flags.buffer * 1024 : undefined, queueFrames: flags.queue }, session);
    process.stderr.write(`sockcap: listening on ${flags.interface}, link-type ${linktypeName(cap.linktype)} (${cap.linktype}), snapshot length ${cap.snaplen} bytes\n`);
    const output = flags.write ? await CaptureOutput.open(flags.write, session) : undefined;
    const stop = () => cap.stop();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const timer = duration !== undefined ? setTimeout(stop, duration * 1000) : null;
    table = startLiveTable(stack, cap, flags.quiet || !process.stderr.isTTY);
    const onBatch = async () => {
      if (follow) await stdoutDrained();
      await conns.flush();
    };
    let res;
    try {
      res = await runPipeline(cap.batches(), stack, { count: flags.count, output, onBatch });
    } finally {
      cap.stop();
      table.stop();
      if (timer) clearTimeout(timer);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
    if (output) await output.close();
    follow?.finish();
    if (follow) await stdoutDrained();
    const { connections: _, ...summary } = replaySummary(stack, res.error);
    // libpcap's filter, named as replay names a file's
    const rs = filter ? { ...summary, filter } : summary;
    const live = { ...cap.stats, libpcapDrops: 'not exposed by the cap binding' };
    const mr = models.report(stack);
    const liveLine = `live: ${cap.stats.received.toLocaleString('en-US')} packets received, ${cap.stats.dropped.toLocaleString('en-US')} dropped by sockcap's queue (at most ${cap.stats.maxQueued.toLocaleString('en-US')} waiting); libpcap's own drop counters are not exposed by the binding`;
    await conns.end({ ...rs, live, ...mr.json }, [`${formatReplaySummary({ ...rs, connections: [] })}\n${liveLine}`, ...mr.text]);
    if (res.error) this.failAfter(res.error);
    else if (mr.claim) this.failAfter(mr.claim);
    // the JSON has been written (ConnReport): nothing for oclif to print
    return undefined;
  }
}

/** Resolves once stdout has room again (what --follow wrote is being read). */
function stdoutDrained(): Promise<void> {
  return new Promise((r) => (process.stdout.writableNeedDrain ? process.stdout.once('drain', () => r()) : r()));
}

