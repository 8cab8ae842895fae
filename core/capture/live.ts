import { createRequire } from 'node:module';
import { SockcapError } from '../errors.js';
import { Mbuf, PacketHeader } from '../mbuf/mbuf.js';
import { type Batch, type CaptureSession, type FileInfo, MAX_BATCH } from './session.js';

/** What sockcap uses of the `cap` binding (libpcap). */
interface CapInstance {
  open(device: string, filter: string, bufSize: number, buffer: Buffer): string;
  close(): void;
  on(ev: 'packet', fn: (nbytes: number) => void): void;
}
interface CapModule {
  Cap: { new (): CapInstance; deviceList(): LiveDevice[] };
}

/** An interface libpcap can capture on (`sockcap live --list`, as `tcpdump -D`). */
export interface LiveDevice {
  name: string;
  description?: string;
  addresses: Array<{ addr: string; netmask?: string }>;
  flags?: string;
}

export interface LiveOptions {
  /** Interface name (`-i`). */
  readonly iface: string;
  /** BPF filter (pcap-filter syntax); empty for everything. */
  readonly filter?: string;
  /** Bytes kept per packet. The binding captures at most 65,535. */
  readonly snaplen?: number;
  /**
   * libpcap's kernel buffer, bytes (`-B`). Default 256 MiB: the binding opens libpcap in immediate
   * mode with a 65,535-byte snapshot, which on Linux means TPACKET_V2, one ~64 KiB ring slot per
   * packet whatever its size: 256 MiB hold about 4,000 packets of burst.
   */
  readonly bufferSize?: number;
  /** Most frames waiting for the pipeline; beyond it packets are dropped and counted. Default 262,144. */
  readonly queueFrames?: number;
  /** Most bytes waiting for the pipeline. Default 256 MiB. */
  readonly queueBytes?: number;
  /** Module name of the binding (default `cap`). */
  readonly binding?: string;
  /** Wall-clock time in nanoseconds since the epoch (cmd/ supplies it: core has no clock). */
  readonly clock: () => bigint;
}

/** Counters of a live capture. libpcap's own drop counters are not exposed by the binding. */
export interface LiveStats {
  /** Packets the binding delivered. */
  received: number;
  /** Packets dropped because sockcap's queue was full (the pipeline fell behind). */
  dropped: number;
  /** Most frames that waited in the queue at once. */
  maxQueued: number;
}

/** The binding's link-type names (it reports strings, not numbers), as LINKTYPE_* values. */
const LINK: Record<string, number> = { NULL: 0, ETHERNET: 1, LINKTYPE_LINUX_SLL: 113, RAW: 101, IEEE802_11_RADIO: 127 };
const CAP_MAX = 65535;
const SLAB = 4 << 20;

/** Load the binding (`cap`, or another module name: tests use one that does not exist); a clear error when it is missing or was not built. */
function loadCap(name = 'cap'): CapModule {
  try {
    return createRequire(import.meta.url)(name) as CapModule;
  } catch (e) {
    throw new SockcapError('ERR_CAP_MISSING',
      `live capture needs the libpcap binding 'cap', which is not installed or did not build (${(e as Error).message.split('\n')[0]}): install libpcap-dev (apt-get install libpcap-dev) and run 'npm rebuild cap'`);
  }
}

/** Interfaces libpcap can open. */
export function liveDevices(binding?: string): LiveDevice[] {
  return loadCap(binding).Cap.deviceList();
}

/**
 * A live capture through libpcap (npm `cap`): the only file that touches it. The binding writes
 * every packet into one shared buffer and gives no timestamp, so each packet is copied once into
 * a slab (fresh 4 MiB slabs: Mbufs keep referencing theirs) and stamped when its event arrives. A
 * bounded queue sits between the binding's events and the pipeline's batches; what does not fit
 * is dropped and counted.
 */
export class LiveCapture {
  readonly stats: LiveStats = { received: 0, dropped: 0, maxQueued: 0 };
  readonly linktype: number;
  readonly snaplen: number;
  private readonly cap: CapInstance;
  private readonly buf = Buffer.alloc(CAP_MAX);
  private slab = new Uint8Array(0);
  private used = 0;
  private queue: Mbuf[] = [];
  private queuedBytes = 0;
  private wake: (() => void) | null = null;
  private stopped = false;
  private readonly ifidx: number;
  private readonly file: FileInfo;
  /**
   * Holds the process up until stop(): the binding's poll handle does while libpcap delivers, but
   * if it ever stops (an interface that goes away), an empty event loop would end the process in
   * the middle of the run (node exits 13, an unsettled await) with nothing reported or flushed.
   * The capture then waits for Ctrl-C, -c or --duration like any quiet interface. Made once the
   * interface is open (a constructor that throws leaves nothing running).
   */
  private readonly alive: ReturnType<typeof setInterval>;

  private constructor(private readonly o: LiveOptions, private readonly session: CaptureSession) {
    const { Cap } = loadCap(o.binding);
    // the binding prints libpcap's warning for an unknown device on stderr: check first
    if (!Cap.deviceList().some((d) => d.name === o.iface))
      throw new SockcapError('ERR_CAPTURE_OPEN', `cannot capture on ${o.iface}: no such interface (sockcap live --list shows them)`);
    this.cap = new Cap();
    this.snaplen = Math.min(o.snaplen || CAP_MAX, CAP_MAX);
    let lt: string;
    try {
      lt = this.cap.open(o.iface, o.filter ?? '', o.bufferSize ?? 256 << 20, this.buf);
    } catch (e) {
      const msg = (e as Error).message;
      if (/permission|not permitted|EPERM|EACCES/i.test(msg))
        throw new SockcapError('ERR_CAPTURE_PERM', `cannot capture on ${o.iface}: ${msg}: run as root or give node CAP_NET_RAW (setcap cap_net_raw,cap_net_admin+eip "$(command -v node)")`);
      throw new SockcapError('ERR_CAPTURE_OPEN', `cannot capture on ${o.iface}: ${msg}`);
    }
    const unknown = /^Unknown linktype (\d+)$/.exec(lt);
    this.linktype = LINK[lt] ?? (unknown ? Number(unknown[1]) : -1);
    this.ifidx = session.addIface({ linktype: this.linktype, snaplen: this.snaplen, tsresol: 9, tsoffset: 0, bigEndian: false, name: o.iface, file: `live:${o.iface}` }).ifidx;
    this.file = { name: `live:${o.iface}`, format: 'pcap', gzip: false, nanos: true, bigEndian: false, sections: 1, frames: 0, snaplen: this.snaplen, customBlocks: 0 };
    session.files.push(this.file);
    // the binding's buffer is its snapshot length (65,535): it never has to cut a packet itself
    this.cap.on('packet', (n) => this.packet(n));
    this.alive = setInterval(() => {}, 1 << 30);
  }

  /** Open an interface; SockcapError with a code when the binding, the device or the rights are missing. */
  static open(o: LiveOptions, session: CaptureSession): LiveCapture {
    return new LiveCapture(o, session);
  }

  /** One packet event: copy it out of the shared buffer, stamp it, queue it (or count the drop). */
  private packet(n: number): void {
    const st = this.stats;
    st.received++;
    if (this.stopped) return;
    const len = Math.min(n, this.snaplen);
    if (this.queue.length >= (this.o.queueFrames ?? 262144) || this.queuedBytes + len > (this.o.queueBytes ?? 256 << 20)) {
      st.dropped++;
      return;
    }
    if (this.used + len > this.slab.length) {
      this.slab = new Uint8Array(Math.max(SLAB, len));
      this.session.memory.add(this.slab.buffer);
      this.used = 0;
    }
    this.slab.set(this.buf.subarray(0, len), this.used);
    const ns = this.o.clock();
    const m = new Mbuf(this.slab, this.used, len, new PacketHeader(
      len, n, Number(ns / 1_000_000_000n), Number(ns % 1_000_000_000n), this.linktype, this.ifidx, ++this.session.frames,
    ));
    this.used += len;
    this.queue.push(m);
    this.queuedBytes += len;
    if (this.queue.length > st.maxQueued) st.maxQueued = this.queue.length;
    this.session.bytesInFlight += len;
    this.file.frames++;
    // wake the pipeline once the binding has handed over every packet ready now (the check
    // phase, after this poll callback): one batch per burst, not one promise per packet
    if (this.wake && !this.wakeQueued) {
      this.wakeQueued = true;
      setImmediate(this.wakeNow);
    }
  }

  private wakeQueued = false;
  private readonly wakeNow = (): void => {
    this.wakeQueued = false;
    const w = this.wake;
    this.wake = null;
    w?.();
  };

  /** Frames in arrival order, as batches, until stop(); then what is still queued. */
  async *batches(): AsyncGenerator<Batch> {
    for (;;) {
      if (!this.queue.length) {
        if (this.stopped) return;
        await new Promise<void>((r) => (this.wake = r));
        continue;
      }
      const batch = this.queue.length <= MAX_BATCH ? this.queue : this.queue.slice(0, MAX_BATCH);
      this.queue = this.queue.length <= MAX_BATCH ? [] : this.queue.slice(MAX_BATCH);
      for (const m of batch) this.queuedBytes -= m.len;
      yield batch;
    }
  }

  /** Frames waiting for the pipeline now. */
  get queued(): number {
    return this.queue.length;
  }

  /** Stop capturing: the binding is closed, what is queued is still delivered. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.alive);
    this.cap.close();
    const w = this.wake;
    this.wake = null;
    w?.();
  }
}
