/** TCP sequence arithmetic modulo 2^32 (BSD tcp_seq.h SEQ_LT and friends; RFC 793 §3.3). */

export const seqLt = (a: number, b: number): boolean => ((a - b) | 0) < 0;
export const seqLeq = (a: number, b: number): boolean => ((a - b) | 0) <= 0;
export const seqGt = (a: number, b: number): boolean => ((a - b) | 0) > 0;
export const seqGeq = (a: number, b: number): boolean => ((a - b) | 0) >= 0;
/** Signed distance a - b, correct while |a - b| < 2^31. */
export const seqDiff = (a: number, b: number): number => (a - b) | 0;
/** a + n as a sequence number. */
export const seqAdd = (a: number, n: number): number => (a + n) >>> 0;
