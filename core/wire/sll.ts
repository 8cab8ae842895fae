import { be16, be32, put16, put32 } from './bytes.js';
import type { DropReason } from './drop.js';

/** Linux cooked capture v1 (LINKTYPE_LINUX_SLL, 113): 16-byte header. */
export interface SllRepr {
  readonly pktType: number;
  readonly arphrd: number;
  readonly addrLen: number;
  /** 8 bytes, of which addrLen are meaningful. */
  readonly addr: Uint8Array;
  readonly protocol: number;
}

export const SLL_HDR_LEN = 16;

export function parseSll(b: Uint8Array, o: number, n: number): SllRepr | DropReason {
  if (n < SLL_HDR_LEN) return 'sll.short';
  return {
    pktType: be16(b, o),
    arphrd: be16(b, o + 2),
    addrLen: be16(b, o + 4),
    addr: b.subarray(o + 6, o + 14),
    protocol: be16(b, o + 14),
  };
}

export function emitSll(r: SllRepr, out: Uint8Array, o: number): number {
  put16(out, o, r.pktType);
  put16(out, o + 2, r.arphrd);
  put16(out, o + 4, r.addrLen);
  out.set(r.addr.subarray(0, 8), o + 6);
  put16(out, o + 14, r.protocol);
  return SLL_HDR_LEN;
}

/** Linux cooked capture v2 (LINKTYPE_LINUX_SLL2, 276): 20-byte header, protocol first. */
export interface Sll2Repr {
  readonly protocol: number;
  readonly ifindex: number;
  readonly arphrd: number;
  readonly pktType: number;
  readonly addrLen: number;
  readonly addr: Uint8Array;
}

export const SLL2_HDR_LEN = 20;

export function parseSll2(b: Uint8Array, o: number, n: number): Sll2Repr | DropReason {
  if (n < SLL2_HDR_LEN) return 'sll2.short';
  return {
    protocol: be16(b, o),
    ifindex: be32(b, o + 4),
    arphrd: be16(b, o + 8),
    pktType: b[o + 10]!,
    addrLen: b[o + 11]!,
    addr: b.subarray(o + 12, o + 20),
  };
}

export function emitSll2(r: Sll2Repr, out: Uint8Array, o: number): number {
  put16(out, o, r.protocol);
  put16(out, o + 2, 0);
  put32(out, o + 4, r.ifindex);
  put16(out, o + 8, r.arphrd);
  out[o + 10] = r.pktType;
  out[o + 11] = r.addrLen;
  out.set(r.addr.subarray(0, 8), o + 12);
  return SLL2_HDR_LEN;
}
