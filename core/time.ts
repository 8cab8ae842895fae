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
