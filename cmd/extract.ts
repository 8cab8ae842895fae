import * as Flags from '@oclif/core/flags';
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { FlowFiles, type FlowIndexEntry } from '../core/capture/flow-files.js';
import { DEFAULT_TEMPLATE, templateError } from '../core/capture/flow-name.js';
import { indexJson, JsonBuf } from '../core/json-buf.js';
import { O_MAKE, outputFileError } from '../core/capture/sink.js';
import { SockcapError } from '../core/errors.js';
import { runPipeline } from '../core/pipeline.js';
import { thousands } from '../core/report.js';
import { DrainApp } from '../core/socket/reader.js';
import { Stack } from '../core/stack.js';
import { SockcapCommand } from './base.js';
import { captureInputs, fileSession, fileArgs, inputFiles, memoryBudget, nothingRead, memoryFlag, networksFlag, readFlags } from './inputs.js';
import { Interrupt } from './interrupt.js';

/**
 * mkdir -p, one directory at a time from the root. Node's own recursive mkdirSync never returns
 * where mkdir says ENOENT about a parent that exists (extract -o /proc/x spun at 100% CPU, Node
 * 20.20); here that ENOENT is the error reported.
 */
function mkdirs(dir: string): void {
  const chain: string[] = [];
  for (let p = resolve(dir); ; p = dirname(p)) {
    chain.push(p);
    if (dirname(p) === p) break;
  }
  for (const p of chain.reverse()) {
    try {
      mkdirSync(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
}

export default class Extract extends SockcapCommand {
  static override summary = 'Write every direction of every TCP connection to its own file, in one pass.';
  static override description = `The same TCP input path as replay; each socket's reader writes what it reads to a file named like tcpflow's (source and destination address and port, zero padded so names sort), and an index (sockcap-index.json) lists every file with its stream, endpoints, length and, with --hash, SHA-256. Directions that carried no bytes get no file. A connection in a VLAN or a tunnel has its network after the ports, as tcpflow writes a VLAN (--100; --30.20.10 for a VLAN stack, --vxlan-vni-5001). Template tokens (tcpflow's -T): %A %a source address and port, %B %b destination, %T start time (ISO 8601, UTC), %t start time (epoch seconds), %V '--' when the connection is in a network of its own, %v that network, %c the count of connections given the name before (when above 0), %C a 'c' then, %N %K %M %G the stream index's units, thousands, millions, billions (three digits each), %E %e the source and destination MAC address of the direction's first frame (zeros off Ethernet), %# stream index, %d direction (c2s/s2c), %% a '%'. A '/' makes directories inside the output directory (-T %A/%a/%B/%b/%c%N.flow). Without %c or %C, a name given before gets -c<stream>.`;
  static override examples = ['<%= config.bin %> extract fixtures/tcp/three-http-streams.pcap -o /tmp/flows'];
  static override strict = false;
  static override enableJsonFlag = true;
  static override args = fileArgs;
  static override flags = {
    ...readFlags,
    ...memoryFlag,
    ...networksFlag,
    outdir: Flags.string({ char: 'o', summary: 'directory for the files (created if missing)', required: true }),
    template: Flags.string({ char: 'T', summary: "file name template: tcpflow's -T tokens (%A %a %B %b %T %t %V %v %c %C %N %K %M %G %E %e %%), %# stream, %d direction; a '/' makes directories (see DESCRIPTION)", default: DEFAULT_TEMPLATE }),
    hash: Flags.boolean({ summary: 'SHA-256 of each file in the index' }),
    overlap: Flags.option({ options: ['first', 'last'] as const, default: 'first' as const, summary: 'overlapping data: first copy (BSD) or last' })(),
    gaps: Flags.option({ options: ['skip', 'zero'] as const, default: 'skip' as const, summary: 'holes that never filled: skipped (the bytes after follow at once) or left as zeros, every byte at its stream offset as tcpflow writes it; the index lists them either way' })(),
    direction: Flags.option({ options: ['both', 'c2s', 's2c'] as const, default: 'both' as const, summary: 'which directions get files: both, or only what clients sent (c2s) or what servers sent (s2c); the other is reassembled and read all the same' })(),
    quiet: Flags.boolean({ char: 'q', summary: 'no summary line' }),
  };

  async run(): Promise<{ files: number; bytes: number; connections: number; index: string; copiedBytes: number } | undefined> {
    const { flags } = await this.parse(Extract);
    const { files: inputs, filter } = inputFiles(this.argv, Extract.flags, flags.read);
    const budget = memoryBudget(flags.memory);
    const bad = templateError(flags.template);
    if (bad) this.fail(new SockcapError('ERR_USAGE', `template '${flags.template}' ${bad}`));
    try {
      mkdirs(flags.outdir);
    } catch (e) {
      this.fail(new SockcapError('ERR_WRITE', `${flags.outdir}: cannot create: ${(e as Error).message}`));
    }
    // the index is appended batch by batch, so memory does not grow with the number of flows
    // (its descriptor is opened first and kept: the flow files may use every other one)
    const indexPath = join(flags.outdir, 'sockcap-index.json');
    let indexFd: number;
    try {
      indexFd = openSync(indexPath, O_MAKE);
    } catch (e) {
      return this.fail(outputFileError(indexPath, e));
    }
    // a failed write of the index (a full disk) names it: it stops the run as a flow file's does
    const writeIndex = (b: Uint8Array | string) => {
      try {
        if (typeof b === 'string') b = Buffer.from(b);
        for (let at = 0; at < b.length; ) at += writeSync(indexFd, b, at);
      } catch (e) {
        throw new SockcapError('ERR_WRITE', `${indexPath}: cannot write: ${(e as Error).message}`, { cause: e });
      }
    };
    writeIndex('[');
    // entries are written byte by byte into buffers (JSON.stringify's text), sent at each batch
    const jb = new JsonBuf();
    let entries = 0;
    const flushIndex = () => {
      for (const b of jb.take()) writeIndex(b);
      jb.written();
    };
    // FlowFiles' writes in the thread pool hold references to the read chunks until they end
    const session = fileSession(filter);
    const files = new FlowFiles(flags.outdir, flags.template, flags.hash, (e: FlowIndexEntry) => {
      jb.raw(entries++ ? ',\n' : '\n');
      indexJson(jb, e);
    }, session.zone, true, undefined, flags.gaps === 'zero');
    // --direction: the other direction's socket is drained as ever (its reader keeps the stack's memory bounded), unwritten
    const only = flags.direction === 'both' ? null : flags.direction;
    const stack = new Stack(session, {
      // bad checksums never change what is taken (see replay), and nothing here reports their count
      checksums: false,
      policy: flags.overlap,
      // SO_RCVLOWAT 64 KiB: each socket is read (and written) 64 KiB at a time, or at its end
      app: new DrainApp(false, 1 << 20, (c, d, chunk) => {
        if (only === null || d === only) files.data(c, d, chunk);
      }, (c) => files.closed(c), 64 << 10),
      // the index has what it needs from FlowFiles: no connection summaries
      onConnection: null,
      // %E/%e: FlowFiles takes each direction's Ethernet addresses from its first frame
      frameSeen: files.frameSeen,
      memoryBudget: budget,
      networks: flags.networks,
    });
    files.nets = stack.nets;
    const intr = new Interrupt();
    const res = await runPipeline(captureInputs(inputs), stack, {
      count: flags.count,
      signal: intr.signal,
      onBatch: async () => {
        files.check();
        flushIndex();
        await files.drain();
      },
    });
    await files.close();
    // after a failure the index is left as far as it got (the files it lists are written)
    try {
      flushIndex();
      writeIndex('\n]\n');
    } catch (e) {
      if (!res.error) res.error = e as SockcapError;
    }
    closeSync(indexFd);
    // copiedBytes: the small files' bytes put in the writer thread's ring; the rest went to writev
    // as views of capture memory (the kernel copies)
    const out = { files: files.filesWritten, bytes: files.written, connections: stack.tcpstat.connections, index: indexPath, copiedBytes: files.copiedBytes };
    if (!this.jsonEnabled() && !flags.quiet)
      this.log(`${thousands(out.files)} files, ${thousands(out.bytes)} bytes from ${thousands(out.connections)} connections in ${flags.outdir} (index: ${indexPath})`);
    intr.report(res.frames);
    const err = res.error ?? files.failure;
    if (err) {
      this.failAfter(err);
      return out;
    }
    if (res.frames === 0) this.fail(nothingRead(session));
    return out;
  }
}
