import type { Writable } from 'node:stream';
import { SockcapError } from '../errors.js';
import type { Mbuf } from '../mbuf/mbuf.js';
import type { CaptureSession } from './session.js';
import { type ByteSink, FileSink, StreamSink } from './sink.js';
import { type FrameWriter, PcapngWriter, PcapWriter } from './writer.js';

export type OutFormat = 'pcap' | 'pcapng';

/**
 * An output capture whose format is settled at its first frame: the one asked for, pcapng for a
 * file named *.pcapng, or else the first input's (classic pcap keeps the input's link type,
 * snaplen and resolution, the snaplen raised if a later input's frame is longer: PcapWriter.grow;
 * pcapng keeps one IDB per input interface, each with its own).
 */
export class CaptureOutput {
  private writer: FrameWriter | null = null;

  private constructor(
    private readonly sink: ByteSink,
    private readonly session: CaptureSession,
    private readonly format: OutFormat | undefined,
  ) {}

  /** Open `path` (or a Writable, e.g. stdout for `-w -`). */
  static async open(target: string | Writable, session: CaptureSession, format?: OutFormat): Promise<CaptureOutput> {
    const sink = typeof target === 'string' ? await FileSink.open(target) : new StreamSink(target, false);
    // a name that says pcapng gets pcapng (it holds whatever the inputs hold); *.pcap is left to
    // the first input, since classic pcap cannot hold every pcapng input
    const named = typeof target === 'string' && /\.pcapng$/i.test(target) ? 'pcapng' : undefined;
    return new CaptureOutput(sink, session, format ?? named);
  }

  /** Frames written so far. */
  get frames(): number {
    return this.writer?.frames ?? 0;
  }

  /** The writer, for the interface of the first frame (classic pcap takes its link type). */
  private make(ifidx: number): FrameWriter {
    const s = this.session;
    const fmt = this.format ?? s.files[0]?.format ?? 'pcap';
    if (fmt === 'pcapng') return new PcapngWriter(this.sink, s.ifaces);
    const iface = s.ifaces[ifidx];
    const nanos = s.files.some((f) => f.nanos) || s.ifaces.some((i) => i.tsresol !== 6);
    return new PcapWriter(this.sink, iface?.linktype ?? 1, iface?.snaplen || 262144, nanos);
  }

  writeFrame(m: Mbuf): void {
    if (!m.hdr) throw new SockcapError('ERR_OUTPUT_FORMAT', 'internal: frame without a packet header');
    (this.writer ??= this.make(m.hdr.ifidx)).writeFrame(m);
  }

  /** Give the sink a chance to write (once per batch: honours backpressure). */
  maybeFlush(): Promise<void> {
    return this.sink.maybeFlush();
  }

  /** Flush and close; an output with no frame still gets a valid header. */
  async close(): Promise<void> {
    this.writer ??= this.make(0);
    await this.sink.close();
  }
}
