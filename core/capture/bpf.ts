import { builtin } from '../builtin.js';
import { SockcapError } from '../errors.js';
import type { Mbuf } from '../mbuf/mbuf.js';
import { be16, be32 } from '../wire/bytes.js';
import { linktypeName, linktypeSupported } from './linktypes.js';
import { MAX_STANDARD_CAPLEN, pcapFileHeader } from './pcap-reader.js';

/**
 * Capture filters for files: the tcpdump filter language (pcap-filter(7)) applied as libpcap
 * applies one to a savefile (pcap_offline_filter), to each frame as it is read. libpcap's
 * compiler is the language's definition and `cap` exposes it only for live capture, so the
 * program comes from `tcpdump -r - -ddd` fed HEADER (libpcap's pcap_compile on a savefile: no
 * interface, no privileges), once per link type and byte order the files hold, and runs here in a
 * classic BPF interpreter: libpcap's bpf_filter(), instruction for instruction. HEADER is a pcap
 * file header alone with that link type and byte order: compiled for a savefile, not a dead
 * handle, the program tests what libpcap tests in one (on BSD loopback, AF_INET6 as each BSD
 * numbers it, in the file's byte order; on a dead handle, only the compiling host's value). No
 * library fits: the npm packages that filter packets bind libpcap for live capture only, as
 * `cap` does.
 */

/** A compiled program: four Int32 words an instruction (code, jt, jf, k), as `tcpdump -ddd` prints them. */
export type BpfProgram = Int32Array;

// instruction classes, sizes, modes, operations and sources (net/bpf.h)
const LD = 0x00, LDX = 0x01, ST = 0x02, STX = 0x03, ALU = 0x04, JMP = 0x05, RET = 0x06, MISC = 0x07;
const W = 0x00, H = 0x08, B = 0x10;
const IMM = 0x00, ABS = 0x20, IND = 0x40, MEM = 0x60, LEN = 0x80, MSH = 0xa0;
const ADD = 0x00, SUB = 0x10, MUL = 0x20, DIV = 0x30, OR = 0x40, AND = 0x50, LSH = 0x60, RSH = 0x70, NEG = 0x80, MOD = 0x90, XOR = 0xa0;
const JA = 0x00, JEQ = 0x10, JGT = 0x20, JGE = 0x30, JSET = 0x40;
const X = 0x08, A = 0x10;
const TXA = 0x80;
/** Scratch memory words (BPF_MEMWORDS). */
const MEMWORDS = 16;

/** The instructions that are valid, as libpcap's bpf_validate() knows them. */
const VALID = new Set<number>([
  RET | 0, RET | A, RET | X,
  LD | W | ABS, LD | H | ABS, LD | B | ABS, LD | W | IND, LD | H | IND, LD | B | IND, LD | W | LEN, LD | IMM, LD | MEM,
  LDX | W | IMM, LDX | W | MEM, LDX | W | LEN, LDX | B | MSH,
  ST, STX,
  ...[ADD, SUB, MUL, DIV, OR, AND, LSH, RSH, MOD, XOR].flatMap((op) => [ALU | op, ALU | op | X]), ALU | NEG,
  JMP | JA, ...[JEQ, JGT, JGE, JSET].flatMap((op) => [JMP | op, JMP | op | X]),
  MISC | 0, MISC | TXA,
]);

/**
 * Parse `tcpdump -ddd` output (the count, then `code jt jf k` a line) into a program, checking
 * it as bpf_validate() does: known instructions, jumps forward and inside the program, scratch
 * indices in range, no division by a constant 0, a return at the end. Throws a RangeError.
 */
export function parseBpf(text: string): BpfProgram {
  const lines = text.trim().split('\n');
  const n = Number(lines[0]);
  if (!Number.isInteger(n) || n < 1 || n > 4096 || lines.length !== n + 1) throw new RangeError(`not a BPF program: ${JSON.stringify(text.slice(0, 80))}`);
  const p = new Int32Array(4 * n);
  for (let i = 0; i < n; i++) {
    const f = lines[i + 1]!.trim().split(/\s+/).map(Number);
    if (f.length !== 4 || f.some((x) => !Number.isInteger(x))) throw new RangeError(`BPF instruction ${i} is not 'code jt jf k': ${lines[i + 1]}`);
    const [code, jt, jf, k] = f as [number, number, number, number];
    if (!VALID.has(code)) throw new RangeError(`BPF instruction ${i}: unknown code 0x${code.toString(16)}`);
    // jump offsets are unsigned bytes: a negative one would jump back (and loop)
    if (jt < 0 || jt > 255 || jf < 0 || jf > 255) throw new RangeError(`BPF instruction ${i}: jump offsets ${jt}, ${jf} are not bytes`);
    const cls = code & 7;
    if (cls === JMP && (code === (JMP | JA) ? i + 1 + (k >>> 0) >= n : i + 1 + Math.max(jt, jf) >= n)) throw new RangeError(`BPF instruction ${i} jumps out of the program`);
    if (((cls === LD || cls === LDX) && (code & 0xe0) === MEM) || cls === ST || cls === STX) {
      if (k < 0 || k >= MEMWORDS) throw new RangeError(`BPF instruction ${i}: scratch word ${k} out of range`);
    }
    if ((code === (ALU | DIV) || code === (ALU | MOD)) && k === 0) throw new RangeError(`BPF instruction ${i} divides by 0`);
    p.set([code, jt, jf, k | 0], 4 * i);
  }
  if ((p[4 * (n - 1)]! & 7) !== RET) throw new RangeError('BPF program does not end with a return');
  return p;
}

/**
 * Run `prog` on the frame bytes b[o, o+caplen) of a packet `wirelen` bytes long on the wire:
 * the accept length (0: rejected), as libpcap's bpf_filter() returns it. A load past the captured
 * bytes rejects the packet, as there; values are unsigned 32-bit.
 */
export function bpfFilter(prog: BpfProgram, b: Uint8Array, o: number, caplen: number, wirelen: number, mem = new Int32Array(MEMWORDS)): number {
  let a = 0;
  let x = 0;
  for (let pc = 0; ; pc += 4) {
    const code = prog[pc]!;
    const k = prog[pc + 3]!;
    const ku = k >>> 0;
    switch (code) {
      case RET | 0: return ku;
      case RET | A: return a >>> 0;
      case RET | X: return x >>> 0;
      case LD | W | ABS: case LD | W | IND: {
        const at = code === (LD | W | IND) ? (x >>> 0) + ku : ku;
        if (at + 4 > caplen) return 0;
        a = be32(b, o + at) | 0;
        break;
      }
      case LD | H | ABS: case LD | H | IND: {
        const at = code === (LD | H | IND) ? (x >>> 0) + ku : ku;
        if (at + 2 > caplen) return 0;
        a = be16(b, o + at);
        break;
      }
      case LD | B | ABS: case LD | B | IND: {
        const at = code === (LD | B | IND) ? (x >>> 0) + ku : ku;
        if (at >= caplen) return 0;
        a = b[o + at]!;
        break;
      }
      case LD | W | LEN: a = wirelen; break;
      case LDX | W | LEN: x = wirelen; break;
      case LD | IMM: a = k; break;
      case LDX | W | IMM: x = k; break;
      case LD | MEM: a = mem[k]!; break;
      case LDX | W | MEM: x = mem[k]!; break;
      case LDX | B | MSH:
        if (ku >= caplen) return 0;
        x = (b[o + ku]! & 0xf) << 2;
        break;
      case ST: mem[k] = a; break;
      case STX: mem[k] = x; break;
      case JMP | JA: pc += 4 * ku; break;
      case MISC | 0: x = a; break;
      case MISC | TXA: a = x; break;
      default:
        if ((code & 7) === JMP) {
          pc += 4 * (jump(code, a >>> 0, code & X ? x >>> 0 : ku) ? prog[pc + 1]! : prog[pc + 2]!);
          break;
        }
        // ALU: a division or modulo by X = 0 rejects the packet, as in bpf_filter()
        if ((code === (ALU | DIV | X) || code === (ALU | MOD | X)) && x === 0) return 0;
        a = alu(code & 0xf0, a, code & X ? x : k);
    }
  }
}

function jump(code: number, a: number, v: number): boolean {
  switch (code & 0xf0) {
    case JEQ: return a === v;
    case JGT: return a > v;
    case JGE: return a >= v;
    default: return (a & v) !== 0; // JSET
  }
}

/** An ALU operation on unsigned 32-bit values (kept as int32 bits). */
function alu(op: number, a: number, v: number): number {
  const au = a >>> 0;
  const vu = v >>> 0;
  switch (op) {
    case ADD: return (au + vu) | 0;
    case SUB: return (au - vu) | 0;
    case MUL: return Math.imul(a, v);
    case DIV: return Math.floor(au / vu) | 0;
    case MOD: return au % vu | 0;
    case OR: return a | v;
    case AND: return a & v;
    case XOR: return a ^ v;
    case LSH: return vu < 32 ? a << vu : 0;
    case RSH: return vu < 32 ? au >>> vu : 0;
    default: return -a | 0; // NEG
  }
}

/** Compiles a filter for a link type and byte order into `tcpdump -ddd` text (or throws a SockcapError). */
export type BpfCompiler = (expr: string, linktype: number, bigEndian: boolean) => string;

/**
 * libpcap's compiler refused the expression for a link type (a syntax error, or what it cannot
 * test there: `ether host` on raw IP, any filter on USB): tcpdump ran and said why, as opposed to
 * not running at all (missing, hung).
 */
export class FilterRefused extends SockcapError {
  constructor(
    expr: string,
    linktype: number,
    /** tcpdump's reason, in its words. */
    readonly why: string,
  ) {
    super('ERR_USAGE', `filter '${expr}' (link type ${linktypeName(linktype)}): ${why}`);
  }
}

/** The program of a link type the filter cannot be applied to: every frame rejected (ret #0). */
const REJECT_ALL: BpfProgram = Int32Array.of(RET, 0, 0, 0);

/**
 * A capture filter over the link types of a run: the program for each link type (and byte order)
 * compiled when a frame of it is first seen. The filter is applied to every frame, whatever its
 * link type, as libpcap applies it to a savefile: frames of a link type sockcap does not decode
 * are filtered too (a PPP interface of a pcapng file, say: libpcap compiles `tcp port 80` for it),
 * so that `-w` writes only what the filter passed. Where libpcap cannot filter such a link type
 * (tcpdump: "USB link-layer type filtering not implemented"), its frames cannot match and are
 * rejected, and `unfilterable` says why; for a link type sockcap decodes, an expression that does
 * not apply is a usage error.
 */
export class CaptureFilter {
  private readonly progs = new Map<number, BpfProgram>();
  private readonly mem = new Int32Array(MEMWORDS);
  /** Frames the filter rejected. */
  rejected = 0;
  /** Link types sockcap does not decode whose frames the filter could not be compiled for (so rejected): libpcap's reason, and the frames. */
  readonly unfilterable = new Map<number, { reason: string; frames: number }>();

  constructor(
    /** The filter expression, as tcpdump takes it. */
    readonly expr: string,
    /** Compiles the expression (tcpdump by default; tests give their own). */
    private readonly compile: BpfCompiler = tcpdumpCompile,
  ) {}

  /**
   * The program for link type `lt` in a file of this byte order, compiled now if it was not. When
   * the expression does not compile for it, a usage error for a link type sockcap decodes, and
   * REJECT_ALL (recorded in `unfilterable`) for one it does not.
   */
  program(lt: number, bigEndian = false): BpfProgram {
    const key = bigEndian ? -1 - lt : lt;
    let p = this.progs.get(key);
    if (!p) {
      let text: string;
      try {
        text = this.compile(this.expr, lt, bigEndian);
      } catch (e) {
        if (!(e instanceof FilterRefused) || linktypeSupported(lt)) throw e;
        this.unfilterable.set(lt, { reason: e.why, frames: 0 });
        this.progs.set(key, REJECT_ALL);
        return REJECT_ALL;
      }
      try {
        p = parseBpf(text);
      } catch (e) {
        throw new SockcapError('ERR_USAGE', `filter '${this.expr}' (link type ${linktypeName(lt)}): the compiled program is not one sockcap runs (${(e as Error).message})`);
      }
      this.progs.set(key, p);
    }
    return p;
  }

  /** True when the frame passes (libpcap: a non-zero accept length); `bigEndian`: its file's (or section's) byte order. */
  match(m: Mbuf, bigEndian = false): boolean {
    const h = m.hdr!;
    const p = this.program(h.linktype, bigEndian);
    if (p === REJECT_ALL) {
      this.unfilterable.get(h.linktype)!.frames++;
      this.rejected++;
      return false;
    }
    const ok = bpfFilter(p, m.buf, m.off, m.len, h.origLen, this.mem) !== 0;
    if (!ok) this.rejected++;
    return ok;
  }
}

/** How long tcpdump may take to compile a filter before the run gives up (never a hang). */
const COMPILE_TIMEOUT_MS = 10_000;

/**
 * `tcpdump -r - -ddd EXPR` fed HEADER (see the top of this file): the program, or a usage error with
 * tcpdump's own words. `tool` and `timeoutMs` are for tests (a stand-in that hangs or is missing).
 */
export function tcpdumpCompile(expr: string, linktype: number, bigEndian: boolean, tool = 'tcpdump', timeoutMs = COMPILE_TIMEOUT_MS): string {
  const h = pcapFileHeader(linktype, MAX_STANDARD_CAPLEN, false, bigEndian);
  try {
    // the header on its standard input: no file to make (or to be refused in a read-only /tmp)
    // child_process loaded here, for runs with a filter only (with net, dgram and more: ~7 ms)
    const { execFileSync } = builtin<typeof import('node:child_process')>('node:child_process');
    return execFileSync(tool, ['-r', '-', '-ddd', '--', expr], { input: h, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string; signal?: string };
    if (err.code === 'ETIMEDOUT' || err.signal === 'SIGTERM') throw new SockcapError('ERR_USAGE', `filter '${expr}': tcpdump did not compile it within ${timeoutMs / 1000} s`);
    if (err.code === 'ENOENT')
      throw new SockcapError('ERR_USAGE', `filter '${expr}': a capture filter on files is compiled by tcpdump (libpcap's compiler), which is not installed (apt-get install tcpdump), or filter in a pipe: tcpdump -r FILE -w - '${expr}' | sockcap ...`);
    const why = (err.stderr ?? '').split('\n').filter((l) => l.startsWith('tcpdump: ')).at(-1)?.slice(9) ?? err.message;
    throw new FilterRefused(expr, linktype, why);
  }
}
