import test from 'ava';
import fc from 'fast-check';
import { runs } from '../helpers/fuzz.js';
import { readFileSync } from 'node:fs';
import { CaptureSession } from '../../core/capture/session.js';
import { SockcapError } from '../../core/errors.js';
import { m_length } from '../../core/mbuf/mbuf.js';
import { runPipeline } from '../../core/pipeline.js';
import { parseSelector } from '../../core/selector.js';
import { SpliceModel } from '../../core/splice-model.js';
import { Stack } from '../../core/stack.js';
import { TcpFuse } from '../../core/tcp/tcp-fuse.js';
import { checksum } from '../../core/wire/checksum.js';
import { transportChecksum } from '../../core/wire/checksum.js';
import { chunked } from '../helpers/build.js';
import { fixture } from '../helpers/paths.js';

/** The relay capture, mutated: fusing and splicing must survive whatever the bytes say. */
const SEED = readFileSync(fixture('splice/relay-lo.pcap'));

const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ kind: fc.constant('u32' as const), at: fc.nat(), value: fc.constantFrom(0, 1, 0x7fffffff, 0xffffffff, 65535) }),
  fc.record({ kind: fc.constant('drop' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 2000 }) }),
);

function mutate(ms: Array<{ kind: 'flip' | 'u32' | 'drop'; at: number; bit?: number; value?: number; len?: number }>): Buffer {
  let b = Buffer.from(SEED);
  for (const m of ms) {
    // mutations stay clear of the file header so that most runs reach the models
    const at = 24 + (m.at % (b.length - 24));
    if (m.kind === 'flip') b[at]! ^= 1 << m.bit!;
    else if (m.kind === 'u32' && at + 4 <= b.length) b.writeUInt32LE(m.value! >>> 0, at);
    else if (m.kind === 'drop') b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + m.len!))]);
  }
  return b;
}

/** Every frame sockcap built (not written as captured) has right IPv4 and TCP checksums. */
function builtFramesValid(out: import('../../core/mbuf/mbuf.js').Mbuf[]): boolean {
  for (const m of out) {
    if (m.hdr!.frameNo !== 0) continue;
    const n = m_length(m);
    const b = Buffer.alloc(n);
    let o = 0;
    for (let p: typeof m | null = m; p; p = p.next) { b.set(p.buf.subarray(p.off, p.off + p.len), o); o += p.len; }
    if (m.hdr!.caplen !== n) return false;
    const ip = 14;
    const hl = (b[ip]! & 15) * 4;
    if (checksum(b, ip, hl) !== 0) return false;
    if (transportChecksum(b, ip, 4, 6, ip + hl, b.readUInt16BE(ip + 2) - hl) !== 0) return false;
  }
  return true;
}

test('fuzz: fuse and splice over mutated relay captures: no exception but a SockcapError, invariants hold, every built frame checks', async (t) => {
  let exercised = 0;
  await fc.assert(fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 5 }), fc.constantFrom(64, 4096, 1 << 20), fc.nat(3),
    async (ms, chunk, variant) => {
      const input = mutate(ms);
      const session = new CaptureSession();
      const hooks = variant === 0 ? [new TcpFuse()]
        : [new SpliceModel([{ from: parseSelector('0:c2s'), to: parseSelector('1:c2s'), max: variant === 2 ? 30000 : undefined, idle: variant === 3 ? 0.01 : undefined, close: variant === 3 ? 'keep' : 'fin' },
          { from: parseSelector('1:s2c'), to: parseSelector('0:s2c') }])];
      const stack = new Stack(session, { debug: true, hooks, output: true });
      const out: import('../../core/mbuf/mbuf.js').Mbuf[] = [];
      const res = await runPipeline([{ name: 'fuzz', stream: chunked(input, chunk) }], stack, { onBatch: () => { out.push(...stack.out!); } });
      if (res.error && !(res.error instanceof SockcapError)) return false;
      if (hooks[0] instanceof SpliceModel) for (const r of hooks[0].records()) if (r.spliced < 0 || r.remaining < 0) return false;
      if (out.some((m) => m.hdr!.frameNo === 0)) exercised++;
      return builtFramesValid(out) && stack.stats.frames === res.frames;
    }), runs(300));
  t.true(exercised > runs(300).numRuns / 2, `${exercised} of ${runs(300).numRuns} runs built frames`);
});
