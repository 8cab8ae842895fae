import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { generate } from '../bench/gen.js';
import { cli, tmp } from '../helpers/cli.js';
import { HAS_TCPFLOW } from '../helpers/paths.js';
import { when } from '../helpers/skip.js';

const run = promisify(execFile);

/**
 * A capture that lost frames: the benchmark generator's flows (2 rounds of 40: data both ways,
 * the receivers' ACKs, ~1% reordering and duplicates), with frames dropped at a rate of 1 in 50 by
 * a fixed LCG, as a capture that cannot keep up drops them (the first round's handshakes kept).
 */
async function lossyCapture(dir: string): Promise<{ cap: string; dropped: number }> {
  const full = join(dir, 'full.pcap');
  await generate({ path: full, bytes: 3 << 20, flows: 40, perFlow: 60_000 });
  const b = readFileSync(full);
  const out: Buffer[] = [b.subarray(0, 24)];
  let seed = 7;
  let dropped = 0;
  for (let p = 24, n = 0; p + 16 <= b.length; n++) {
    const end = p + 16 + b.readUInt32LE(p + 8);
    seed = (seed * 1103515245 + 12345) >>> 0;
    // the first 160 frames, which open the first round's flows (round-robin), are kept
    if (n < 160 || seed / 2 ** 32 >= 0.02) out.push(b.subarray(p, end));
    else dropped++;
    p = end;
  }
  const cap = join(dir, 'lossy.pcap');
  writeFileSync(cap, Buffer.concat(out));
  return { cap, dropped };
}

when(HAS_TCPFLOW, 'needs tcpflow')('a capture that lost 2% of its frames: holes the receivers acknowledged are skipped at their ACKs, and extract --gaps zero still writes tcpflow\'s files, byte for byte', async (t) => {
  const d = tmp(t);
  const { cap, dropped } = await lossyCapture(d);
  t.true(dropped > 20, `${dropped} frames dropped`);
  const rep = await cli(['replay', cap, '--json']);
  t.is(rep.code, 0, rep.stderr);
  const r = JSON.parse(rep.stdout) as { notes: Record<string, number>; tcpstat: Record<string, number> };
  // most holes are skipped at the ACKs that show them lost, not at the end of their connections
  t.true((r.notes['tcp.reass.acked'] ?? 0) > r.tcpstat.gaps! / 2, `${r.notes['tcp.reass.acked']} of ${r.tcpstat.gaps} holes skipped at ACKs`);
  t.log(`${dropped} frames dropped, ${r.tcpstat.gaps} holes, ${r.notes['tcp.reass.acked']} skipped at ACKs`);
  const ours = join(d, 'ours');
  const theirs = join(d, 'theirs');
  mkdirSync(theirs);
  const ex = await cli(['extract', cap, '-o', ours, '-q', '--gaps', 'zero']);
  t.is(ex.code, 0, ex.stderr);
  await run('tcpflow', ['-r', cap, '-o', theirs]);
  const names = readdirSync(theirs).filter((f) => /^\d{3}\./.test(f)).sort();
  t.true(names.length >= 80, `${names.length} files`);
  t.deepEqual(readdirSync(ours).filter((f) => f !== 'sockcap-index.json').sort(), names);
  const differ = names.filter((n) => !readFileSync(join(ours, n)).equals(readFileSync(join(theirs, n))));
  t.deepEqual(differ, [], 'every byte at its stream offset, holes as zeros, as tcpflow writes them');
});
