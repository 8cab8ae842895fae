/**
 * RFC 1071 internet checksum. The fast path sums 32-bit big-endian words through a DataView into a
 * float accumulator (exact up to 2^53, far beyond any packet), folding once at the end.
 */

/** One's-complement sum of bytes [o, o+n) added to `acc` (not folded, not inverted). */
export function sum16(b: Uint8Array, o: number, n: number, acc = 0): number {
  if (n <= 64) {
    // short ranges (IP headers): byte reads beat creating a DataView
    let i = o;
    const end = o + n;
    for (; i + 1 < end; i += 2) acc += (b[i]! << 8) | b[i + 1]!;
    if (i < end) acc += b[i]! << 8;
    return acc;
  }
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let i = o;
  const end4 = o + (n & ~3);
  for (; i < end4; i += 4) acc += dv.getUint32(i);
  // a 32-bit word is two 16-bit words: fold the high halves down later; the sum stays exact
  if (n & 2) {
    acc += dv.getUint16(i);
    i += 2;
  }
  if (n & 1) acc += b[i]! << 8;
  return acc;
}

/** Fold a sum16 accumulator to 16 bits and complement it: the checksum field value. */
export function fold(acc: number): number {
  return ~fold16(acc) & 0xffff;
}

/** Checksum of a byte range (e.g. an IPv4 header): 0 when the stored checksum is correct. */
export function checksum(b: Uint8Array, o: number, n: number): number {
  return fold(sum16(b, o, n));
}

/** Pseudo-header sum for TCP/UDP over IPv4 (RFC 793) or IPv6 (RFC 8200 §8.1). */
export function pseudoSum(b: Uint8Array, srcOff: number, addrLen: number, proto: number, len: number): number {
  // source and destination are adjacent in both IPv4 and IPv6 headers
  return sum16(b, srcOff, 2 * addrLen, proto + len);
}

/**
 * Checksum of a TCP or UDP segment [thOff, thOff+len) of `b` whose IP header is at `ipOff`
 * (version `ipv`). Returns the value for the checksum field when that field holds 0, or 0 when
 * verifying a segment whose stored checksum is right.
 */
export function transportChecksum(b: Uint8Array, ipOff: number, ipv: 4 | 6, proto: number, thOff: number, len: number): number {
  const acc = ipv === 4 ? pseudoSum(b, ipOff + 12, 4, proto, len) : pseudoSum(b, ipOff + 8, 16, proto, len);
  return fold(sum16(b, thOff, len, acc));
}

/**
 * sum16 over a DataView that spans a whole read chunk (callers cache one per chunk: creating a
 * DataView per packet costs as much as summing it). `o` is relative to the DataView.
 */
export function sumDv(dv: DataView, o: number, n: number, acc = 0): number {
  let i = o;
  const e8 = o + (n & ~7);
  for (; i < e8; i += 8) acc += dv.getUint32(i) + dv.getUint32(i + 4);
  const end = o + n;
  for (; i + 1 < end; i += 2) acc += dv.getUint16(i);
  if (i < end) acc += dv.getUint8(i) << 8;
  return acc;
}

/**
 * Fold a sum to 16 bits, one's complement, not inverted. A sum that fits 31 bits (every header,
 * every segment of up to 64 KiB) folds with shifts on a small integer; only a larger one takes
 * the division and modulo on a double, which were 4% of bulk replay's profile when every IPv4
 * header's 20-byte sum went through them.
 */
export function fold16(acc: number): number {
  let s = acc <= 0x7fffffff ? (acc & 0xffff) + (acc >>> 16) : (acc % 0x10000) + (Math.floor(acc / 0x10000) % 0x10000) + Math.floor(acc / 0x100000000);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

