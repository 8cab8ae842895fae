import { be32, le32, put32 } from './bytes.js';
import type { DropReason } from './drop.js';

/**
 * BSD loopback encapsulations: LINKTYPE_NULL (0) stores the address family in the byte order of
 * the host that wrote the file; LINKTYPE_LOOP (108, OpenBSD) stores it in network order.
 */
export const LOOP_HDR_LEN = 4;

/** Address-family values seen in loopback headers (AF_INET6 differs between BSDs and Linux). */
export const AF_INET = 2;
const AF_INET6_VALUES = new Set([10, 24, 28, 30]);

export type LoopFamily = 4 | 6 | 0;

export interface LoopRepr {
  readonly family: number;
}

/**
 * Parse a NULL/LOOP header. `bigEndian` is the byte order to read the family in (the file's for
 * NULL, true for LOOP). Like Wireshark, a value that only makes sense byte-swapped is swapped.
 */
export function parseLoop(b: Uint8Array, o: number, n: number, bigEndian: boolean): LoopRepr | DropReason {
  if (n < LOOP_HDR_LEN) return 'null.short';
  let family = bigEndian ? be32(b, o) : le32(b, o);
  if (family > 0xffff) family = bigEndian ? le32(b, o) : be32(b, o);
  return { family };
}

/** IP version a loopback family value carries, or 0 when it is not IP. */
export function loopFamilyToIp(family: number): LoopFamily {
  if (family === AF_INET) return 4;
  if (AF_INET6_VALUES.has(family)) return 6;
  return 0;
}

export function emitLoop(r: LoopRepr, out: Uint8Array, o: number, bigEndian: boolean): number {
  if (bigEndian) put32(out, o, r.family);
  else {
    out[o] = r.family;
    out[o + 1] = r.family >>> 8;
    out[o + 2] = r.family >>> 16;
    out[o + 3] = r.family >>> 24;
  }
  return LOOP_HDR_LEN;
}
