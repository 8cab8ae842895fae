/**
 * A probe, not a test and not sockcap: what the layout of connection state costs on the short
 * benchmark capture's pattern (100,000 connections open at once, 13 packets each), measured for
 * the planning of issue 7's "30× tshark on short" (session 30; BENCHMARKS.md).
 *
 *   node dist/test/bench/state-layout.js objects|literals|arrays [random]
 *
 * Each packet hashes its 4-tuple, probes an open-addressing table as PcbTable does, matches the
 * tuple, and updates the fields tcp_input touches most in the sender's and the receiver's state.
 * `objects` keeps that state as sockcap does (a Connection and two Tcpcbs of the same fields per
 * connection, made when its first packet comes); `arrays` keeps the same fields in typed arrays
 * indexed by connection (struct of arrays: nothing for the collector to copy, and no pointer to
 * chase from the table to the connection to its tcpcbs); `literals` the objects' fields made by one
 * object literal with the two tcpcbs' literals nested in it (prototypes set in them), which V8's
 * allocation-site pretenuring places straight in the old generation once it has seen enough of
 * them survive (`--trace-pretenuring-statistics`: "maybe tenure => tenure" after ~3,500
 * connections), so the collector no longer copies them. `random` visits the connections in a new
 * random order in each round instead of the generator's round-robin (which would let the
 * hardware prefetcher walk the arrays).
 */
const N = 100_000;
const P = 13;
const mode = process.argv[2] ?? 'objects';
const shuffle = process.argv[3] === 'random';

const C0 = new Int32Array(N);
const S0 = new Int32Array(N);
const PORTS = new Int32Array(N);
for (let i = 0; i < N; i++) {
  C0[i] = 0x0a000000 + i;
  S0[i] = 0xc0a8c801 | 0;
  PORTS[i] = ((1024 + (i % 60000)) << 16) | (80 + Math.floor(i / 60000));
}

// the packets: connection and direction (bit 0: from the server), round by round
const pk = new Int32Array(N * P);
const perm = Int32Array.from({ length: N }, (_, i) => i);
let seed = 12345;
const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296;
for (let r = 0, k = 0; r < P; r++) {
  if (shuffle) {
    for (let i = N - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      const t = perm[i]!;
      perm[i] = perm[j]!;
      perm[j] = t;
    }
  }
  for (let i = 0; i < N; i++) pk[k++] = (perm[i]! << 1) | (r & 1);
}

const BITS = 18;
const SLOTS = 1 << BITS;
const MASK = SLOTS - 1;
const tupleHash = (c: number, s: number, ports: number): number =>
  (Math.imul(c, 0x9e3779b1) + Math.imul(s, 0x9e3779b1) + Math.imul(ports >>> 16, 0x85ebca6b) + Math.imul(ports & 0xffff, 0x85ebca6b)) | 0;
const home = (h: number): number => Math.imul(h, 0x9e3779b1) >>> (32 - BITS);
/** Each packet's tuple hash, made before the timed loop (hashing is the same in both layouts). */
const PH = new Int32Array(pk.length);
for (let k = 0; k < pk.length; k++) PH[k] = tupleHash(C0[pk[k]! >> 1]!, S0[pk[k]! >> 1]!, PORTS[pk[k]! >> 1]!);

/** Tcpcb's fields (with its socket's and receive buffer's), as many and in the same kinds. */
class State {
  mb: object | null = null;
  mbtail: object | null = null;
  cc = 0;
  total = 0;
  hiwat = 0;
  lowat = 1;
  rare: object | null = null;
  upcall: object | null = null;
  upcallArg: object | null = null;
  flags = 0;
  irs = 0;
  iss = 0;
  sndMax = 0;
  sndUna = 0;
  rcvOff = 0;
  finOff = -1;
  rcvTotal = 0;
  synOpts = 0;
  window = 0;
}

/** Connection's fields. */
class Conn {
  ports: number;
  vlan = 0;
  c0: number;
  s0: number;
  a6: number[] | null = null;
  client = new State();
  server = new State();
  t0s = 0;
  t0n = 0;
  t1s = 0;
  t1n = 0;
  app: object | null = null;
  bits = 0;
  key = 0;
  slot = -1;
  names: string[] | null = null;
  constructor(readonly stream: number) {
    this.ports = PORTS[stream]!;
    this.c0 = C0[stream]!;
    this.s0 = S0[stream]!;
  }
}

const STATE_PROTO = { kind: 'tcpcb' };
const CONN_PROTO = { kind: 'connection' };
/** Conn's and State's fields, as one nested literal: an allocation site V8 can pretenure. */
const literal = (stream: number): Conn =>
  ({
    __proto__: CONN_PROTO, stream, ports: PORTS[stream]!, vlan: 0, c0: C0[stream]!, s0: S0[stream]!, a6: null,
    client: { __proto__: STATE_PROTO, mb: null, mbtail: null, cc: 0, total: 0, hiwat: 0, lowat: 1, rare: null, upcall: null, upcallArg: null, flags: 0, irs: 0, iss: 0, sndMax: 0, sndUna: 0, rcvOff: 0, finOff: -1, rcvTotal: 0, synOpts: 0, window: 0 },
    server: { __proto__: STATE_PROTO, mb: null, mbtail: null, cc: 0, total: 0, hiwat: 0, lowat: 1, rare: null, upcall: null, upcallArg: null, flags: 0, irs: 0, iss: 0, sndMax: 0, sndUna: 0, rcvOff: 0, finOff: -1, rcvTotal: 0, synOpts: 0, window: 0 },
    t0s: 0, t0n: 0, t1s: 0, t1n: 0, app: null, bits: 0, key: 0, slot: -1, names: null,
  }) as unknown as Conn;

function objects(make: (stream: number) => Conn): number {
  const keys = new Int32Array(SLOTS);
  const vals = new Array<Conn | null>(SLOTS).fill(null);
  let sum = 0;
  for (let k = 0; k < pk.length; k++) {
    const id = pk[k]! >> 1;
    const h = PH[k]!;
    const c = C0[id]!;
    const s = S0[id]!;
    const ports = PORTS[id]!;
    let conn: Conn | null = null;
    let i = home(h);
    for (; ; i = (i + 1) & MASK) {
      const e = vals[i]!;
      if (e === null) break;
      if (keys[i] === h && e.vlan === 0 && e.ports === ports && e.c0 === c && e.s0 === s) {
        conn = e;
        break;
      }
    }
    if (conn === null) {
      conn = make(id);
      keys[i] = h;
      vals[i] = conn;
      conn.key = h;
    }
    conn.t1s = k >> 10;
    conn.t1n = k & 1023;
    const c2s = (pk[k]! & 1) === 0;
    const rx = c2s ? conn.server : conn.client;
    const tx = c2s ? conn.client : conn.server;
    rx.rcvTotal++;
    tx.sndMax = (tx.sndMax + 1448) | 0;
    tx.window = 65535;
    tx.flags |= 16;
    if (rx.rare === null) {
      rx.rcvOff += 1448;
      rx.total += 1448;
      rx.sndUna = tx.sndMax;
    }
    sum += rx.rcvOff & 15;
  }
  return sum;
}

function arrays(): number {
  const keys = new Int32Array(SLOTS);
  const vals = new Int32Array(SLOTS).fill(-1);
  const cPorts = new Int32Array(N);
  const cC0 = new Int32Array(N);
  const cS0 = new Int32Array(N);
  const cVlan = new Int32Array(N);
  const t1s = new Int32Array(N);
  const t1n = new Int32Array(N);
  const rcvTotal = new Int32Array(2 * N);
  const sndMax = new Int32Array(2 * N);
  const win = new Int32Array(2 * N);
  const flags = new Int32Array(2 * N);
  const rcvOff = new Float64Array(2 * N);
  const total = new Float64Array(2 * N);
  const sndUna = new Int32Array(2 * N);
  let sum = 0;
  let next = 0;
  for (let k = 0; k < pk.length; k++) {
    const id = pk[k]! >> 1;
    const h = PH[k]!;
    const c = C0[id]!;
    const s = S0[id]!;
    const ports = PORTS[id]!;
    let conn = -1;
    let i = home(h);
    for (; ; i = (i + 1) & MASK) {
      const e = vals[i]!;
      if (e < 0) break;
      if (keys[i] === h && cVlan[e] === 0 && cPorts[e] === ports && cC0[e] === c && cS0[e] === s) {
        conn = e;
        break;
      }
    }
    if (conn < 0) {
      conn = next++;
      cPorts[conn] = ports;
      cC0[conn] = c;
      cS0[conn] = s;
      keys[i] = h;
      vals[i] = conn;
    }
    t1s[conn] = k >> 10;
    t1n[conn] = k & 1023;
    const rx = 2 * conn + 1 - (pk[k]! & 1);
    const tx = 2 * conn + (pk[k]! & 1);
    rcvTotal[rx]!++;
    sndMax[tx] = (sndMax[tx]! + 1448) | 0;
    win[tx] = 65535;
    flags[tx]! |= 16;
    rcvOff[rx]! += 1448;
    total[rx]! += 1448;
    sndUna[rx] = sndMax[tx]!;
    sum += rcvOff[rx]! & 15;
  }
  return sum;
}

const t0 = performance.now();
const r = mode === 'arrays' ? arrays() : objects(mode === 'literals' ? literal : (id) => new Conn(id));
console.log(`${mode}${shuffle ? ' random' : ''}: ${(performance.now() - t0).toFixed(0)} ms for ${N * P} packets over ${N} connections (${r})`);
