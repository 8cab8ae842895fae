/**
 * A Bloom filter of strings with 2^bits bits and two probes (FNV-1a and a second mix of it): a
 * fixed size, whatever is added. add() says false only for a string never added before.
 */
export class NameFilter {
  private readonly words: Uint32Array;
  private readonly mask: number;

  constructor(bits: number) {
    const b = Math.max(0, Math.min(30, bits));
    this.words = new Uint32Array(Math.max(1, 2 ** (b - 5)));
    this.mask = 2 ** b - 1;
  }

  private static hash(s: string): number {
    let h = 0x811c9dc5;
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
    return h >>> 0;
  }

  private static mix(h: number): number {
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
  }

  /** Add `s`; true when the filter may have held it already (false: it certainly did not). */
  add(s: string): boolean {
    const h = NameFilter.hash(s);
    const a = h & this.mask;
    const b = NameFilter.mix(h) & this.mask;
    const w = this.words;
    const had = (w[a >>> 5]! & (1 << (a & 31))) !== 0 && (w[b >>> 5]! & (1 << (b & 31))) !== 0;
    w[a >>> 5]! |= 1 << (a & 31);
    w[b >>> 5]! |= 1 << (b & 31);
    return had;
  }
}
