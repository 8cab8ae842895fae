/**
 * The time from one capture timestamp to another, in seconds. Frame headers give a timestamp as
 * whole seconds and nanoseconds (PktHdr); as one number (s + ns / 1e9) a time of this century is a
 * double with steps of ~0.24 µs, so the difference of two such numbers carries their two roundings:
 * a connection of 7.577713 s came out as 7.5777130126953125. Here the span is counted in
 * nanoseconds first, exactly, and divided once: the result is the double nearest to the exact span,
 * which JSON.stringify and String print as its decimal (7.577713) whenever that decimal has at most
 * 15 significant digits (spans under a million seconds; DBL_DIG).
 *
 * Beyond 9,000,000 s (~104 days) the nanoseconds would pass 2^53 and stop being exact: the span is
 * then the difference of the two times as numbers, as before. Nanosecond parts need not be
 * normalised (a header may carry 1e9 or more): the arithmetic is the same either way.
 */
export function spanSeconds(s0: number, n0: number, s1: number, n1: number): number {
  const ds = s1 - s0;
  if (ds <= MAX_EXACT_S && ds >= -MAX_EXACT_S) return (ds * 1e9 + (n1 - n0)) / 1e9;
  return s1 + n1 / 1e9 - (s0 + n0 / 1e9);
}

/** Whole seconds up to which spanSeconds counts exactly: 9e6 s of nanoseconds, plus two nanosecond parts under 2^32, stay under 2^53. */
const MAX_EXACT_S = 9e6;

/**
 * True when the time (s1, n1) is later than (s0, n0), by their exact difference in nanoseconds (two
 * timestamps a double as s + ns / 1e9 cannot tell apart are told apart; unnormalised nanosecond
 * parts count as they are). The difference is exact within 9,000,000 s; beyond, the seconds
 * dominate it and its sign is still right. An infinite time (no timestamp yet) is earlier or later
 * than every other.
 */
export function later(s0: number, n0: number, s1: number, n1: number): boolean {
  return (s1 - s0) * 1e9 + (n1 - n0) > 0;
}

/**
 * The time from (s0, n0) to (s1, n1) in whole nanoseconds: exact within 9,000,000 s, as in
 * spanSeconds (beyond, the nearest double; a clock that far from its start still counts forward).
 */
export function spanNanos(s0: number, n0: number, s1: number, n1: number): number {
  return (s1 - s0) * 1e9 + (n1 - n0);
}

/**
 * A duration given in seconds (a parsed `3s`, `0.3s`, `500ms`), to the nearest nanosecond: the
 * decimal's own nanoseconds for up to nine decimals and durations under 2^22 s (~48 days), where
 * the decimal's rounding to a double (under 0.24 ns) and the product's (under 0.25 ns) stay under
 * half a nanosecond together (4.1 * 1e9 is 4099999999.9999995). Beyond, within a nanosecond.
 */
export function secondsToNanos(s: number): number {
  return Math.round(s * 1e9);
}

/**
 * The time `ns` nanoseconds after (sec, nsec), as `seconds.micros` (six decimals, rounded to the
 * nearest microsecond, a carry into the seconds included). Counted in integers, so a time of this
 * century prints exactly, which `(sec + nsec / 1e9 + ns / 1e9).toFixed(6)` does not: its sum is a
 * double with ~0.24 µs steps.
 */
export function microsAfter(sec: number, nsec: number, ns: number): string {
  const total = nsec + ns;
  // % of doubles is exact, and total - r a multiple of 1e9: both integers under 2^53
  let r = total % 1e9;
  if (r < 0) r += 1e9;
  let s = sec + (total - r) / 1e9;
  let us = Math.round(r / 1000);
  if (us === 1e6) {
    s += 1;
    us = 0;
  }
  return `${s}.${String(us).padStart(6, '0')}`;
}
