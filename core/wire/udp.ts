import { be16, put16 } from './bytes.js';
import type { DropReason } from './drop.js';

export const UDP_HDR_LEN = 8;

export interface UdpRepr {
  readonly srcPort: number;
  readonly dstPort: number;
  readonly length: number;
  readonly checksum: number;
}

export function parseUdp(b: Uint8Array, o: number, n: number): UdpRepr | DropReason {
  if (n < UDP_HDR_LEN) return 'udp.short';
  const length = be16(b, o + 4);
  if (length < UDP_HDR_LEN) return 'udp.badlen';
  return { srcPort: be16(b, o), dstPort: be16(b, o + 2), length, checksum: be16(b, o + 6) };
}

export function emitUdp(r: UdpRepr, out: Uint8Array, o: number): number {
  put16(out, o, r.srcPort);
  put16(out, o + 2, r.dstPort);
  put16(out, o + 4, r.length);
  put16(out, o + 6, r.checksum);
  return UDP_HDR_LEN;
}
