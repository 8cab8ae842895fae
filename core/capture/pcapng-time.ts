/**
 * pcapng timestamps: 64-bit tick counts in the interface's if_tsresol units, plus if_tsoffset
 * seconds. Converted exactly to seconds + nanoseconds for decimal resolutions up to 10^-9 without
 * BigInt (the common case); other resolutions go through BigInt.
 */

/** Ticks per second for an if_tsresol byte, as a BigInt. */
function ticksPerSecond(tsresol: number): bigint {
  return tsresol & 0x80 ? 1n << BigInt(tsresol & 0x7f) : 10n ** BigInt(tsresol & 0x7f);
}

/** Seconds and nanoseconds for (hi, lo) ticks; `out` receives them (no allocation per packet). */
export function ticksToTime(hi: number, lo: number, tsresol: number, tsoffset: number, out: { tsSec: number; tsNsec: number }): void {
  const k = tsresol & 0x7f;
  if (!(tsresol & 0x80) && k <= 9) {
    const d = 10 ** k;
    const r1 = hi % d;
    const q1 = (hi - r1) / d;
    const x = r1 * 65536 + (lo >>> 16);
    const qx = Math.floor(x / d);
    const y = (x - qx * d) * 65536 + (lo & 0xffff);
    const qy = Math.floor(y / d);
    out.tsSec = q1 * 4294967296 + qx * 65536 + qy + tsoffset;
    out.tsNsec = (y - qy * d) * 10 ** (9 - k);
    return;
  }
  const ticks = (BigInt(hi) << 32n) | BigInt(lo);
  const tps = ticksPerSecond(tsresol);
  out.tsSec = Number(ticks / tps) + tsoffset;
  out.tsNsec = Number(((ticks % tps) * 1_000_000_000n) / tps);
}

/** Inverse for the writer: ticks (hi, lo) at a decimal resolution 10^-k, k <= 9. */
export function timeToTicks(tsSec: number, tsNsec: number, k: number): [number, number] {
  const d = 10 ** k;
  const f = Math.floor(tsNsec / 10 ** (9 - k));
  if (tsSec >= 0 && tsSec < 2 ** 34) {
    // S*D + f without BigInt: S = a*2^16 + c; a*D = p*2^16 + q; S*D = p*2^32 + q*2^16 + c*D
    const a = Math.floor(tsSec / 65536);
    const c = tsSec % 65536;
    const ad = a * d;
    const q = ad % 65536;
    const p = (ad - q) / 65536;
    const low = q * 65536 + c * d + f;
    const carry = Math.floor(low / 4294967296);
    return [p + carry, low - carry * 4294967296];
  }
  const ticks = BigInt(tsSec) * BigInt(d) + BigInt(f);
  return [Number((ticks >> 32n) & 0xffffffffn), Number(ticks & 0xffffffffn)];
}
