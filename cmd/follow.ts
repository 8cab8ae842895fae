import * as Flags from '@oclif/core/flags';
import { once } from 'node:events';
import { SockcapError } from '../core/errors.js';
import { Follower, followFooter, type FollowFormat, type FollowGaps } from '../core/follow.js';
import { runPipeline } from '../core/pipeline.js';
import { parseSelector } from '../core/selector.js';
import { DrainApp } from '../core/socket/reader.js';
import { Stack } from '../core/stack.js';
import { StreamSink } from '../core/capture/sink.js';
import { SockcapCommand } from './base.js';
import { Interrupt } from './interrupt.js';
import { captureInputs, fileSession, fileArgs, inputFiles, memoryBudget, memoryFlag, networksFlag, readFlags } from './inputs.js';

/** What follow prints at a hole that never filled (shared with `live --follow`). */
export const gapsFlag = Flags.option({ options: ['marker', 'skip', 'zero'] as const, summary: 'holes that never filled: tshark\'s "[N bytes missing in capture file]" marker (the default), nothing (the bytes after follow at once; the default with --format bytes), or as many zero bytes (each byte at its stream offset)' })();

/** The format flag of follow and live --follow. */
export const formatFlag = Flags.option({ options: ['raw', 'hex', 'ascii', 'yaml', 'bytes'] as const, default: 'ascii' as const, summary: 'output format: tshark\'s follow modes (raw is hex text; yaml gives each chunk its frame number and time, data in base64), or bytes: the stream\'s own bytes and nothing else, to pipe or redirect' })();

/** --gaps as given, or its default for the format: markers are text, which bytes do not get unasked. */
export function gapsFor(format: FollowFormat, gaps: FollowGaps | undefined): FollowGaps {
  return gaps ?? (format === 'bytes' ? 'skip' : 'marker');
}

/**
 * --format bytes refuses a terminal for its standard output, as curl does for binary: the stream's
 * bytes would reach it as control sequences (a title, a cleared screen, a changed character set).
 * Redirected or piped, they go out as they are; `| cat` writes them to the terminal anyway.
 */
export function checkBytesOut(format: FollowFormat, isTTY = process.stdout.isTTY === true): void {
  if (format === 'bytes' && isTTY)
    throw new SockcapError('ERR_USAGE', "--format bytes writes the stream's own bytes, which a terminal would take as control sequences: redirect them (> file), pipe them (| xxd, | less; | cat to write them here anyway), or read them with --format ascii or hex");
}

export default class Follow extends SockcapCommand {
  static override summary = 'Print one reassembled TCP stream, like tshark -z follow,tcp.';
  static override description = `Reassembles every connection (the same TCP input path as replay) and prints the bytes the sockets of one connection read, chunk by chunk as they arrive, in the text tshark -z follow,tcp prints: node 0 sent the connection's first frame, and node 1's data is marked by a tab; with --format bytes, the bytes themselves and nothing else (to pipe or redirect). The stream is a Wireshark tcp.stream index or a 4-tuple (10.0.0.1:5555-10.0.0.2:80, [::1]:5555-[::1]:80, or tshark's 10.0.0.1:5555,10.0.0.2:80); a direction can follow (3:c2s) or be given with --direction. The name of a file extract wrote picks the direction it holds.`;
  static override examples = [
    '<%= config.bin %> follow fixtures/tcp/three-http-streams.pcap -z 1 --format ascii',
    '<%= config.bin %> follow fixtures/tcp/smtp.pcap -z 10.10.1.4:1470-74.53.140.153:25 --direction s2c --format raw',
    '<%= config.bin %> follow fixtures/tcp/three-http-streams.pcap -z 1:s2c --format bytes',
  ];
  static override strict = false;
  static override args = fileArgs;
  static override flags = {
    ...readFlags,
    ...memoryFlag,
    ...networksFlag,
    stream: Flags.string({ char: 'z', summary: 'stream index, 4-tuple, or a file name extract wrote, to follow', required: true }),
    format: formatFlag,
    direction: Flags.option({ options: ['both', 'c2s', 's2c'] as const, default: 'both' as const, summary: 'which direction to print' })(),
    overlap: Flags.option({ options: ['first', 'last'] as const, default: 'first' as const, summary: 'overlapping data: first copy (BSD) or last' })(),
    gaps: gapsFlag,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Follow);
    const { files, filter } = inputFiles(this.argv, Follow.flags, flags.read);
    const sel = parseSelector(flags.stream);
    const format = flags.format as FollowFormat;
    checkBytesOut(format);
    const session = fileSession(filter);
    let pending: string[] = [];
    // bytes: views of what the sockets read go to stdout as they are, each holding its read chunk
    // until stdout has taken it (no copy); the text formats render what they read at once
    const out = format === 'bytes' ? new StreamSink(process.stdout, false) : null;
    const follower = new Follower(sel, format, flags.direction === 'both' ? null : flags.direction, (o) => {
      if (typeof o === 'string') pending.push(o);
      else for (const v of o) out!.push(v, session.zone?.extOf(v) ?? null);
    }, gapsFor(format, flags.gaps));
    const flush = async () => {
      // each batch's bytes go out with it, as the text does (a pipe still being written is followed as it comes)
      if (out) return out.flush();
      if (!pending.length) return;
      const text = pending.join('');
      pending = [];
      if (!process.stdout.write(text)) await once(process.stdout, 'drain');
    };
    // of the connections that leave, only the count is kept here (and the first the selector names,
    // by the follower, for its header if it carried no data): memory does not grow with the
    // connections seen
    let streams = 0;
    // once the followed connection has left the table nothing later can add to what is printed (a
    // late segment meets its tombstone, a new SYN on the same ports is another stream): reading
    // stops there, at the end of the batch, instead of at the end of the capture
    const done = new AbortController();
    const stack = new Stack(session, {
      // bad checksums never change what is taken (see replay), and nothing here reports their count
      checksums: false,
      policy: flags.overlap,
      memoryBudget: memoryBudget(flags.memory),
      networks: flags.networks,
      app: new DrainApp(false, 1 << 20, follower.sink, follower.closed),
      onConnection: (c) => {
        streams++;
        if (sel.stream !== null ? c.stream === sel.stream : c.stream === follower.followed) done.abort();
      },
    });
    follower.nets = stack.nets;
    follower.clock = stack;
    const intr = new Interrupt();
    const res = await runPipeline(captureInputs(files), stack, { count: flags.count, onBatch: flush, signal: AbortSignal.any([intr.signal, done.signal]) });
    const found = follower.finish();
    if (found && !out) pending.push(followFooter(format));
    await flush();
    intr.report(res.frames);
    if (res.error) return this.failAfter(res.error);
    if (!found)
      this.fail(new SockcapError('ERR_NOTHING', `no TCP stream matches '${sel.text}' (the capture has ${streams} TCP streams)`));
  }
}
