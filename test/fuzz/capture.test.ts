import test from 'ava';
import fc from 'fast-check';
import { mutate, mutation, runs } from '../helpers/fuzz.js';
import { readFileSync } from 'node:fs';
import { CaptureSession } from '../../core/capture/session.js';
import { SockcapError } from '../../core/errors.js';
import { runPipeline } from '../../core/pipeline.js';
import { Stack } from '../../core/stack.js';
import { chunked } from '../helpers/build.js';
import { fixture } from '../helpers/paths.js';

/** Seeds: one capture of each kind, small enough for many runs. */
const SEEDS = ['tcp/three-http-streams.pcap', 'link/many-interfaces.pcapng', 'link/three-sections.pcapng', 'ip/frag-http-req.pcap', 'link/qinqinq.pcap']
  .map((f) => readFileSync(fixture(f)));

test('fuzz: mutated captures never throw anything but a SockcapError, and every frame is accounted for', async (t) => {
  await fc.assert(fc.asyncProperty(fc.nat(SEEDS.length - 1), fc.array(mutation, { minLength: 1, maxLength: 6 }), fc.constantFrom(7, 64, 4096, 1 << 20),
    async (si, ms, chunk) => {
      const input = mutate(SEEDS[si]!, ms);
      const session = new CaptureSession();
      const stack = new Stack(session, { debug: true });
      const res = await runPipeline([{ name: 'fuzz', stream: chunked(input, chunk) }], stack);
      if (res.error && !(res.error instanceof SockcapError)) return false;
      // every frame read went through the stack (decoded, or dropped with a name)
      return stack.stats.frames === res.frames && res.frames === session.frames - session.files.reduce((n, f) => n + f.customBlocks, 0);
    }), runs(400));
  t.pass();
});
