import { be16, be32, put16, put32 } from './bytes.js';
import type { DropReason } from './drop.js';

export const TCP_MIN_HDR_LEN = 20;
export const TH_FIN = 0x01;
export const TH_SYN = 0x02;
export const TH_RST = 0x04;
export const TH_PUSH = 0x08;
export const TH_ACK = 0x10;
export const TH_URG = 0x20;
export const TH_ECE = 0x40;
export const TH_CWR = 0x80;

export const TCPOPT_EOL = 0;
export const TCPOPT_NOP = 1;
export const TCPOPT_MAXSEG = 2;
export const TCPOPT_WINDOW = 3;
export const TCPOPT_SACK_PERMITTED = 4;
export const TCPOPT_SACK = 5;
export const TCPOPT_TIMESTAMP = 8;

/** TCP options as parsed; unknown kinds are kept (as views) so they survive a round trip. */
export interface TcpOptions {
  mss?: number;
  wscale?: number;
  sackPermitted?: boolean;
  sack?: Array<[number, number]>;
  ts?: [number, number];
  unknown?: Array<{ kind: number; data: Uint8Array }>;
  /** Order in which the options appeared (kinds, NOP and EOL included), for faithful re-emission. */
  order?: number[];
  /** Set when an option's length ran past the header: parsing stopped there (BSD does the same). */
  malformed?: boolean;
}

/** Parsed TCP header; the payload is described by offset and length, never copied. */
export interface TcpRepr {
  readonly srcPort: number;
  readonly dstPort: number;
  readonly seq: number;
  readonly ack: number;
  readonly flags: number;
  readonly window: number;
  readonly checksum: number;
  readonly urp: number;
  readonly options: TcpOptions;
  /** Header length in bytes (data offset * 4). */
  readonly hlen: number;
}

/**
 * Check-once for the TCP header at `o` with `n` captured bytes: returns the header length or a
 * drop reason. Afterwards the accessors below cannot read out of bounds.
 */
export function checkTcp(b: Uint8Array, o: number, n: number): number | DropReason {
  if (n < TCP_MIN_HDR_LEN) return 'tcp.short';
  const off = (b[o + 12]! >> 4) << 2;
  if (off < TCP_MIN_HDR_LEN) return 'tcp.badoff';
  if (off > n) return 'tcp.short';
  return off;
}

export const tcpSrcPort = (b: Uint8Array, o: number): number => be16(b, o);
export const tcpDstPort = (b: Uint8Array, o: number): number => be16(b, o + 2);
export const tcpSeq = (b: Uint8Array, o: number): number => be32(b, o + 4);
export const tcpAck = (b: Uint8Array, o: number): number => be32(b, o + 8);
export const tcpFlags = (b: Uint8Array, o: number): number => b[o + 13]!;
export const tcpWindow = (b: Uint8Array, o: number): number => be16(b, o + 14);
export const tcpUrp = (b: Uint8Array, o: number): number => be16(b, o + 18);

/**
 * The length of the option at `i` of an options area ending at `end` (NOP: 1), or 0 where BSD
 * tcp_dooptions() stops walking: at EOL or at a bad length.
 */
function optionLen(b: Uint8Array, i: number, end: number): number {
  const kind = b[i]!;
  if (kind === TCPOPT_EOL) return 0;
  const len = kind === TCPOPT_NOP ? 1 : (b[i + 1] ?? 0);
  return len < 1 || (kind !== TCPOPT_NOP && len < 2) || i + len > end ? 0 : len;
}

/**
 * Visit each option of the area [o, o+n) with its kind, offset and length (NOP: 1), as BSD
 * tcp_dooptions() walks them: stop at EOL or at a bad length.
 */
export function walkTcpOptions(b: Uint8Array, o: number, n: number, visit: (kind: number, at: number, len: number) => void): void {
  const end = o + n;
  for (let i = o, len = 0; i < end && (len = optionLen(b, i, end)) > 0; i += len) visit(b[i]!, i, len);
}

/** What a SYN's options tell tcp_input: MSS (0: none), window shift (-1: none), SACK permitted, timestamps. */
export interface SynOptions {
  mss: number;
  wscale: number;
  sackPermitted: boolean;
  timestamps: boolean;
}

/**
 * The options area [o, o+n) of a SYN, read into `into` (a caller's object, used again for every
 * SYN: parseTcpOptions made ~200 bytes of garbage a SYN, 12% of all replay allocated on 100,000
 * short flows). Walked as walkTcpOptions walks, an option of the wrong length ignored.
 */
export function synOptions(b: Uint8Array, o: number, n: number, into: SynOptions): SynOptions {
  into.mss = 0;
  into.wscale = -1;
  into.sackPermitted = false;
  into.timestamps = false;
  const end = o + n;
  for (let i = o, len = 0; i < end && (len = optionLen(b, i, end)) > 0; i += len) {
    const kind = b[i]!;
    if (kind === TCPOPT_MAXSEG && len === 4) into.mss = be16(b, i + 2);
    else if (kind === TCPOPT_WINDOW && len === 3) into.wscale = b[i + 2]!;
    else if (kind === TCPOPT_SACK_PERMITTED && len === 2) into.sackPermitted = true;
    else if (kind === TCPOPT_TIMESTAMP && len === 10) into.timestamps = true;
  }
  return into;
}

/** Parse the options area [o, o+n). BSD tcp_dooptions(): stop at EOL or at a bad length. */
export function parseTcpOptions(b: Uint8Array, o: number, n: number): TcpOptions {
  const opts: TcpOptions = { order: [] };
  const end = o + n;
  for (let i = o; i < end; ) {
    const kind = b[i]!;
    opts.order!.push(kind);
    const len = optionLen(b, i, end);
    if (len === 0) {
      // where the walk stops: an EOL ends the options, anything else there is a bad length
      if (kind !== TCPOPT_EOL) opts.malformed = true;
      break;
    }
    if (kind !== TCPOPT_NOP) readOption(opts, kind, b, i, len);
    i += len;
  }
  return opts;
}

function readOption(opts: TcpOptions, kind: number, b: Uint8Array, i: number, len: number): void {
  if (kind === TCPOPT_MAXSEG && len === 4) opts.mss = be16(b, i + 2);
  else if (kind === TCPOPT_WINDOW && len === 3) opts.wscale = b[i + 2]!;
  else if (kind === TCPOPT_SACK_PERMITTED && len === 2) opts.sackPermitted = true;
  else if (kind === TCPOPT_TIMESTAMP && len === 10) opts.ts = [be32(b, i + 2), be32(b, i + 6)];
  else if (kind === TCPOPT_SACK && (len - 2) % 8 === 0) {
    const blocks: Array<[number, number]> = [];
    for (let k = i + 2; k < i + len; k += 8) blocks.push([be32(b, k), be32(b, k + 4)]);
    opts.sack = blocks;
  } else (opts.unknown ??= []).push({ kind, data: b.subarray(i + 2, i + len) });
}

export function parseTcp(b: Uint8Array, o: number, n: number): TcpRepr | DropReason {
  const hlen = checkTcp(b, o, n);
  if (typeof hlen !== 'number') return hlen;
  return {
    srcPort: tcpSrcPort(b, o),
    dstPort: tcpDstPort(b, o),
    seq: tcpSeq(b, o),
    ack: tcpAck(b, o),
    flags: tcpFlags(b, o),
    window: tcpWindow(b, o),
    checksum: be16(b, o + 16),
    urp: tcpUrp(b, o),
    options: parseTcpOptions(b, o + TCP_MIN_HDR_LEN, hlen - TCP_MIN_HDR_LEN),
    hlen,
  };
}

/** Bytes the options take when emitted (unpadded), following `order` when present. */
function optionBytes(opts: TcpOptions): number[] {
  const out: number[] = [];
  const order = opts.order ?? defaultOrder(opts);
  let unknownIdx = 0;
  const seen = new Set<number>();
  for (const kind of order) {
    if (kind === TCPOPT_EOL || kind === TCPOPT_NOP) {
      out.push(kind);
      if (kind === TCPOPT_EOL) break;
      continue;
    }
    // a known option is written once (from its parsed value); unknown ones as often as they came
    if (!isUnknownKind(kind)) {
      if (seen.has(kind)) continue;
      seen.add(kind);
    }
    writeOption(out, opts, kind, () => opts.unknown?.[unknownIdx++]);
  }
  return out;
}

function isUnknownKind(kind: number): boolean {
  return ![TCPOPT_MAXSEG, TCPOPT_WINDOW, TCPOPT_SACK_PERMITTED, TCPOPT_SACK, TCPOPT_TIMESTAMP].includes(kind);
}

function defaultOrder(opts: TcpOptions): number[] {
  const o: number[] = [];
  if (opts.mss !== undefined) o.push(TCPOPT_MAXSEG);
  if (opts.sackPermitted) o.push(TCPOPT_SACK_PERMITTED);
  if (opts.ts) o.push(TCPOPT_TIMESTAMP);
  if (opts.wscale !== undefined) o.push(TCPOPT_NOP, TCPOPT_WINDOW);
  if (opts.sack) o.push(TCPOPT_NOP, TCPOPT_NOP, TCPOPT_SACK);
  for (const u of opts.unknown ?? []) o.push(u.kind);
  return o;
}

function writeOption(
  out: number[],
  opts: TcpOptions,
  kind: number,
  nextUnknown: () => { kind: number; data: Uint8Array } | undefined,
): void {
  const w32 = (v: number) => out.push(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  if (kind === TCPOPT_MAXSEG && opts.mss !== undefined) out.push(2, 4, opts.mss >>> 8, opts.mss & 0xff);
  else if (kind === TCPOPT_WINDOW && opts.wscale !== undefined) out.push(3, 3, opts.wscale);
  else if (kind === TCPOPT_SACK_PERMITTED && opts.sackPermitted) out.push(4, 2);
  else if (kind === TCPOPT_TIMESTAMP && opts.ts) {
    out.push(8, 10);
    w32(opts.ts[0]);
    w32(opts.ts[1]);
  } else if (kind === TCPOPT_SACK && opts.sack) {
    out.push(5, 2 + 8 * opts.sack.length);
    for (const [l, r] of opts.sack) {
      w32(l);
      w32(r);
    }
  } else {
    const u = nextUnknown();
    if (u) out.push(u.kind, u.data.length + 2, ...u.data);
  }
}

/** Header length `emitTcp` will write for these options (padded to 4 bytes). */
export function tcpHeaderLen(opts: TcpOptions): number {
  return TCP_MIN_HDR_LEN + ((optionBytes(opts).length + 3) & ~3);
}

/**
 * Write the header at `o`; returns its length. The checksum field is written as `r.checksum`
 * (callers that build new segments fill it with tcpChecksum afterwards).
 */
export function emitTcp(r: Omit<TcpRepr, 'hlen'>, out: Uint8Array, o: number): number {
  const ob = optionBytes(r.options);
  const hlen = TCP_MIN_HDR_LEN + ((ob.length + 3) & ~3);
  put16(out, o, r.srcPort);
  put16(out, o + 2, r.dstPort);
  put32(out, o + 4, r.seq);
  put32(out, o + 8, r.ack);
  out[o + 12] = (hlen >> 2) << 4;
  out[o + 13] = r.flags;
  put16(out, o + 14, r.window);
  put16(out, o + 16, r.checksum);
  put16(out, o + 18, r.urp);
  out.fill(0, o + TCP_MIN_HDR_LEN, o + hlen);
  out.set(ob, o + TCP_MIN_HDR_LEN);
  return hlen;
}
