import { be32 } from '../wire/bytes.js';
import { Connection, type Pcb } from './in-pcb.js';

/** Symmetric hash of a 4-tuple: both directions land in the same bucket. */
function tupleHash(b: Uint8Array, src: number, dst: number, alen: number, sport: number, dport: number): number {
  let hs = 0;
  let hd = 0;
  for (let i = 0; i < alen; i += 4) {
    hs = Math.imul(hs ^ be32(b, src + i), 0x9e3779b1);
    hd = Math.imul(hd ^ be32(b, dst + i), 0x9e3779b1);
  }
  return (hs + hd + Math.imul(sport + dport, 0x85ebca6b) + Math.imul(sport ^ dport, 0xc2b2ae35)) | 0;
}

/** The table's first size (slots), and the most of its slots it fills before it doubles. */
const TABLE_MIN = 1024;
const TABLE_LOAD = 0.7;

/**
 * The connection table (BSD in_pcblookup), keyed by a numeric symmetric hash of the 4-tuple with
 * exact comparison on collision: open addressing with linear probing, the keys in an Int32Array
 * (sixteen to a cache line, so a probe past another key costs no miss) and the entries in an array
 * beside it. It replaced a Map (V8's ordered hash table: a bucket array, then an entry of three
 * words, then the connection, and deleted entries kept until a rehash). A slot is empty when its
 * entry is null; a removal shifts the entries after it back (no deleted markers, so probe runs
 * stay as short as the load allows).
 */
export class PcbTable {
  private keys = new Int32Array(TABLE_MIN);
  private vals: Array<Pcb | null> = new Array<Pcb | null>(TABLE_MIN).fill(null);
  private mask = TABLE_MIN - 1;
  /** log2 of the slots, for the multiplicative hash's shift. */
  private bits = Math.log2(TABLE_MIN);
  /** Entries, tombstones included. */
  private used = 0;
  /** Live connections (tombstones not counted). */
  size = 0;
  /** Connections in creation order, for eviction; a removed one leaves a null (compacted often enough). */
  private order: Array<Connection | null> = [];
  private head = 0;

  /** The key of the last lookup, and the direction it matched (1: from the client). */
  hash = 0;
  dir: 1 | 2 = 1;

  /** The slot a key's probe starts at (Fibonacci hashing: the product's top bits). */
  private home(h: number): number {
    return Math.imul(h, 0x9e3779b1) >>> (32 - this.bits);
  }

  /**
   * The entry for this 4-tuple and VLAN stack, or null; `hash` and `dir` tell the key and the
   * direction (fields, not a returned object: this runs once per packet).
   */
  lookup(b: Uint8Array, src: number, dst: number, alen: number, sport: number, dport: number, vlan = 0): Pcb | null {
    const h = (this.hash = (tupleHash(b, src, dst, alen, sport, dport) + Math.imul(vlan, 0x27d4eb2f)) | 0);
    const keys = this.keys;
    const vals = this.vals;
    const mask = this.mask;
    for (let i = this.home(h); ; i = (i + 1) & mask) {
      const e = vals[i]!;
      if (e === null) return null;
      if (keys[i] !== h || !e.sameNet(alen, vlan)) continue;
      const d = e.match(b, src, dst, sport, dport);
      if (d) {
        this.dir = d;
        return e;
      }
    }
  }

  /** Put `c` in the first empty slot of its key's run. */
  private place(h: number, c: Pcb): void {
    const mask = this.mask;
    let i = this.home(h);
    while (this.vals[i] !== null) i = (i + 1) & mask;
    this.keys[i] = h;
    this.vals[i] = c;
  }

  /** Twice the slots, every entry placed again. */
  private grow(): void {
    const keys = this.keys;
    const vals = this.vals;
    const n = keys.length * 2;
    this.keys = new Int32Array(n);
    this.vals = new Array<Pcb | null>(n).fill(null);
    this.mask = n - 1;
    this.bits++;
    for (let i = 0; i < vals.length; i++) {
      const e = vals[i]!;
      if (e !== null) this.place(keys[i]!, e);
    }
  }

  insert(h: number, c: Pcb): void {
    if (this.used + 1 > this.keys.length * TABLE_LOAD) this.grow();
    this.place(h, c);
    this.used++;
    if (c instanceof Connection) {
      this.size++;
      c.key = h;
      if (this.order.length > 2 * this.size + 4096) this.compact();
      c.slot = this.order.length;
      this.order.push(c);
    }
  }

  /** The connection in the table the longest (O(1) amortized: Map iteration would walk deleted slots). */
  oldest(): Connection | null {
    const o = this.order;
    while (this.head < o.length && o[this.head] === null) this.head++;
    return o[this.head] ?? null;
  }

  /** Drop the nulls: live connections keep their order and learn their new places. */
  private compact(): void {
    const live: Connection[] = [];
    for (let i = this.head; i < this.order.length; i++) {
      const c = this.order[i];
      if (c) {
        c.slot = live.length;
        live.push(c);
      }
    }
    this.order = live;
    this.head = 0;
  }

  remove(h: number, c: Pcb): void {
    const keys = this.keys;
    const vals = this.vals;
    const mask = this.mask;
    let i = this.home(h);
    while (vals[i] !== c && vals[i] !== null) i = (i + 1) & mask;
    if (vals[i] === c) {
      this.used--;
      // backward shift: an entry after the hole whose probe starts at or before it moves into it
      for (let j = (i + 1) & mask; vals[j] !== null; j = (j + 1) & mask) {
        const k = this.home(keys[j]!);
        if (i <= j ? k <= i || k > j : k <= i && k > j) {
          keys[i] = keys[j]!;
          vals[i] = vals[j]!;
          i = j;
        }
      }
      vals[i] = null;
    }
    if (c instanceof Connection && c.slot >= 0) {
      this.size--;
      this.order[c.slot] = null;
      c.slot = -1;
    }
  }

  /**
   * The table's invariant (Stack.check calls it): every entry is reached from its key's first slot
   * without crossing an empty one, and the counts agree with the slots. Throws.
   */
  check(): void {
    const n = this.keys.length;
    let used = 0;
    let live = 0;
    for (let j = 0; j < n; j++) {
      const e = this.vals[j]!;
      if (e === null) continue;
      used++;
      if (e instanceof Connection) live++;
      for (let i = this.home(this.keys[j]!); i !== j; i = (i + 1) & this.mask)
        if (this.vals[i] === null) throw new Error(`pcb table: slot ${j} cannot be reached from its key's slot ${this.home(this.keys[j]!)}`);
    }
    if (used !== this.used || live !== this.size) throw new Error(`pcb table: ${used} entries, ${live} connections in the slots; counted ${this.used}, ${this.size}`);
  }

  /** Every live connection with its key, oldest first. */
  *entries(): Generator<[number, Connection]> {
    // the array of now: a compaction while a caller walks makes a new one, a removal leaves a null
    const o = this.order;
    for (let i = this.head; i < o.length; i++) {
      const c = o[i];
      if (c) yield [c.key, c];
    }
  }
}
