/** What the list links through: an entry's neighbours (OpenFile's fields). */
export interface Linked<T> {
  older: T | null;
  newer: T | null;
}

/**
 * The open descriptors as a list, least recently used first, linked through the files themselves:
 * O(1) to use, add and remove (a Map re-inserted on every use walks its deleted slots when
 * iterated: quadratic with 100,000 flows, measured).
 */
export class FdList<T extends Linked<T>> {
  oldest: T | null = null;
  private newest: T | null = null;
  size = 0;

  add(f: T): void {
    f.older = this.newest;
    f.newer = null;
    if (this.newest) this.newest.newer = f;
    else this.oldest = f;
    this.newest = f;
    this.size++;
  }

  delete(f: T): void {
    if (f.older) f.older.newer = f.newer;
    else this.oldest = f.newer;
    if (f.newer) f.newer.older = f.older;
    else this.newest = f.older;
    f.older = f.newer = null;
    this.size--;
  }

  touch(f: T): void {
    if (this.newest === f) return;
    this.delete(f);
    this.add(f);
  }
}
