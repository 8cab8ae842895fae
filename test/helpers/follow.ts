import type { ExecutionContext } from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TH_ACK, TH_SYN } from '../../core/wire/tcp.js';
import { pcapFile, tcpFrame } from './build.js';
import { tmp } from './cli.js';

/** Bytes per direction from tshark-style raw follow output (node 1 lines are tab-indented). */
export function rawBytes(out: string): { c2s: Buffer; s2c: Buffer; header: string[] } {
  const lines = out.split('\n');
  const hex = lines.filter((l) => /^\t?[0-9a-f]+$/.test(l));
  return {
    c2s: Buffer.from(hex.filter((l) => !l.startsWith('\t')).join(''), 'hex'),
    s2c: Buffer.from(hex.filter((l) => l.startsWith('\t')).map((l) => l.slice(1)).join(''), 'hex'),
    header: lines.filter((l) => /^(Follow|Filter|Node \d):/.test(l)),
  };
}

/**
 * A connection with holes: 4 bytes the capture never had (c2s 3..7), then a segment the snaplen cut
 * to 2 of its 8 bytes (c2s 10..16 on the wire only), 5 more missing (c2s 18..23), and data around them.
 * Without `cut`, the cut segment is not in the capture at all (one hole, c2s 10..23).
 */
export function holesCapture(t: ExecutionContext, cut = true): string {
  const c = { src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 80 };
  const s = { src: c.dst, dst: c.src, sport: c.dport, dport: c.sport };
  const cutFrame = tcpFrame({ ...c, seq: 110, ack: 500, payload: 'QQQQQQQQ' });
  const frames = [
    { data: tcpFrame({ ...c, seq: 99, flags: TH_SYN }) },
    { data: tcpFrame({ ...s, seq: 499, ack: 100, flags: TH_SYN | TH_ACK }) },
    { data: tcpFrame({ ...c, seq: 100, ack: 500, payload: 'abc' }) },
    { data: tcpFrame({ ...c, seq: 107, ack: 500, payload: 'xyz' }) },
    { data: tcpFrame({ ...s, seq: 500, ack: 110, payload: 'HELLO' }) },
    ...(cut ? [{ data: cutFrame.subarray(0, cutFrame.length - 6), origLen: cutFrame.length }] : []),
    { data: tcpFrame({ ...c, seq: 123, ack: 505, payload: 'RR' }) },
    { data: tcpFrame({ ...s, seq: 505, ack: 125, payload: 'BYE' }) },
  ];
  const cap = join(tmp(t), 'holes.pcap');
  writeFileSync(cap, pcapFile(frames.map((f, i) => ({ ...f, tsSec: 1_700_000_000 + i }))));
  return cap;
}
