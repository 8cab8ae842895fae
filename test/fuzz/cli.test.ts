import test from 'ava';
import fc from 'fast-check';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, tmp } from '../helpers/cli.js';
import { mutate, mutation, runs } from '../helpers/fuzz.js';
import { fixture, HAS_TCPDUMP } from '../helpers/paths.js';

/*
 * The commands on mutated captures, as a user runs them: whatever the damage, a command ends with
 * a documented exit code and never a stack trace; a file it rejects is named with a byte offset;
 * what it writes (an output capture, extract's index) is whole and reads back. The library-level
 * fuzz (capture.test.ts) covers the readers and the stack far more often; this covers what the
 * commands add on top (output writers, extract's files and names, follow's printing, the models,
 * a capture filter).
 */

const SEEDS = ['tcp/three-http-streams.pcap', 'splice/relay-lo.pcap', 'link/many-interfaces.pcapng', 'ip/frag-http-req.pcap', 'tcp/smtp.pcap.gz']
  .map((f) => ({ name: f.split('/')[1]!, bytes: readFileSync(fixture(f)) }));

/** Exit codes a file command may end with on bad input: 0, bad file (3), nothing processed (6), fuse's claim (8). */
const EXITS = new Set([0, 3, 6, 8]);

test('fuzz: every command on a mutated capture ends with a documented exit code and one line of error, never a stack trace; its outputs read back', async (t) => {
  // the case is named in the test's failure; fast-check stops there (shrinking would rerun the commands)
  const failed = (why: string): false => {
    t.fail(why);
    return false;
  };
  await fc.assert(fc.asyncProperty(fc.nat(SEEDS.length - 1), fc.array(mutation, { minLength: 1, maxLength: 4 }), async (si, ms) => {
    const seed = SEEDS[si]!;
    const dir = tmp(t);
    const file = join(dir, seed.name);
    // a gzip seed's damage is mostly found by zlib (exit 3, naming the file and gzip)
    writeFileSync(file, mutate(seed.bytes, ms));
    const runs: Array<[string, string[]]> = [
      ['replay', ['replay', file, '-w', join(dir, 'out.pcapng'), '--json']],
      // in the input's own format: its records may be written as they lie in the read chunks
      ['replay', ['replay', file, '-w', join(dir, 'same.cap'), '-q']],
      // with a capture filter (one that compiles for every link type sockcap decodes) when tcpdump is here
      ['extract', ['extract', file, ...(HAS_TCPDUMP ? ['tcp', 'or', 'udp'] : []), '-o', join(dir, 'x'), '--json']],
      ['follow', ['follow', file, '-z', '0', '--format', 'hex']],
      ['follow', ['follow', file, '-z', '0', '--format', 'bytes', '--gaps', 'zero']],
      ['fuse', ['fuse', file, '-w', join(dir, 'fused.pcap'), '--json']],
      ['splice', ['splice', file, '--from', '0:c2s', '--to', '1', '-w', join(dir, 'spliced.pcap'), '-q']],
    ];
    for (const [name, args] of runs) {
      const r = await cli(args);
      const where = `${name} on ${seed.name} mutated ${JSON.stringify(ms)}: exit ${r.code}\n${r.stderr}`;
      if (/^\s+at |\b(TypeError|RangeError|ReferenceError|SyntaxError|AssertionError)\b|Error: /m.test(r.stderr)) return failed(`a stack trace or a raw error: ${where}`);
      // splice's selectors may name a stream the damaged capture no longer has: a usage error (2)
      if (!EXITS.has(r.code) && !(name === 'splice' && r.code === 2)) return failed(`undocumented exit: ${where}`);
      const errs = r.stderr.split('\n').filter((l) => l.startsWith('sockcap: '));
      if (r.code === 3 && !(errs.length === 1 && errs[0]!.includes(file) && /byte offset \d+|gzip/.test(errs[0]!))) return failed(`a bad file not named with its offset: ${where}`);
    }
    // what the commands wrote reads back: the output captures, extract's index
    for (const out of ['out.pcapng', 'same.cap', 'fused.pcap', 'spliced.pcap']) {
      if (!existsSync(join(dir, out))) continue;
      const back = await cli(['replay', join(dir, out), '--json']);
      if (back.code !== 0 && back.code !== 6) return failed(`${out} written from ${seed.name} ${JSON.stringify(ms)} does not read back: exit ${back.code}\n${back.stderr}`);
    }
    const index = join(dir, 'x', 'index.json');
    if (existsSync(index)) JSON.parse(readFileSync(index, 'utf8'));
    return true;
  }), { ...runs(6), endOnFailure: true });
  t.pass();
});
