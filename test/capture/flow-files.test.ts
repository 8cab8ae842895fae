import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Connection, type Dir } from '../../core/net/in-pcb.js';
import { FlowFiles, type FlowIndexEntry } from '../../core/capture/flow-files.js';
import { templateError } from '../../core/capture/flow-name.js';
import { CREATED, FileSlots, USED } from '../../core/capture/file-slots.js';
import { cli, tmp } from '../helpers/cli.js';
import { fixture } from '../helpers/paths.js';

test('FlowFiles: a template that names many directions the same gives each its own file (-c<stream>, then the direction, then a count)', async (t) => {
  for (const small of [false, true]) {
    for (const template of ['same', '%#']) {
      const d = tmp(t);
      const index: FlowIndexEntry[] = [];
      const ff = new FlowFiles(d, template, false, (e) => index.push(e), null, small);
      const addr = new Uint8Array([10, 0, 0, 1, 10, 0, 0, 2]);
      // the same stream index twice as well (a name with -c<stream> and the direction given already)
      for (const stream of [0, 1, 2, 1]) {
        const c = new Connection(stream, addr, 0, 1000 + stream, 4, 80, 4);
        for (const dir of ['c2s', 's2c'] as Dir[]) ff.data(c, dir, [Buffer.from(`${stream} ${dir} of ${index.length}`)]);
        ff.closed(c);
      }
      await ff.close();
      ff.check();
      const files = index.map((e) => e.file);
      t.is(new Set(files).size, 8, `${template}: every direction its own file (${files.join(' ')})`);
      t.deepEqual(readdirSync(d).sort(), [...files].sort());
      for (const e of index) t.regex(readFileSync(join(d, e.file), 'latin1'), new RegExp(`^${e.stream} ${e.dir} of \\d+$`), e.file);
      if (template === 'same') t.deepEqual(files.slice(0, 6), ['same', 'same-c0', 'same-c1', 'same-c1-s2c', 'same-c2', 'same-c2-s2c']);
      if (template === 'same') t.deepEqual(files.slice(6), ['same-c1-c2s', 'same-c1-s2c-2']);
    }
  }
});

test('templateError: empty, a path, or an unknown token; extract refuses them as usage errors', async (t) => {
  t.is(templateError('%A.%a-%B.%b'), null);
  t.is(templateError('100%%-%#-%d-%T'), null);
  t.is(templateError(''), 'is empty');
  t.regex(templateError('../x%A')!, /has a '\/'/);
  t.regex(templateError('%A/%B')!, /has a '\/'/);
  t.regex(templateError('%Z')!, /unknown token '%Z'/);
  t.regex(templateError('x%')!, /unknown token '%'/);
  t.regex(templateError('%%%')!, /unknown token '%'/);
  const out = tmp(t);
  for (const [tpl, msg] of [['../x%A', "has a '/'"], ['%Z', "has an unknown token '%Z'"], ['', 'is empty']] as const) {
    const r = await cli(['extract', fixture('tcp/three-http-streams.pcap'), '-o', join(out, 'o'), '-T', tpl]);
    t.is(r.code, 2, tpl);
    t.true(r.stderr.startsWith(`sockcap: template '${tpl}' ${msg}`), r.stderr);
  }
  t.deepEqual(readdirSync(out), [], 'nothing written, not even the directory');
});

test('FileSlots: a pair comes back as new, pairs are reused (the arrays grow with the connections open at once, not with all seen), and growing keeps every value', (t) => {
  const fs = new FileSlots(true);
  const held: number[] = [];
  for (let i = 0; i < 3000; i++) {
    const p = fs.alloc();
    for (const s of [2 * p, 2 * p + 1]) {
      t.is(fs.flags[s], 0);
      t.is(fs.pos[s], 0);
      t.is(fs.bytes[s], 0);
      t.is(fs.gi[s], 0);
      t.is(fs.hash[s], null);
      t.false(fs.names.has(s));
    }
    fs.flags[2 * p] = USED | CREATED;
    fs.pos[2 * p] = fs.bytes[2 * p + 1] = 2 ** 40 + p; // past 32 bits: files larger than 4 GiB
    fs.gi[2 * p + 1] = p;
    fs.names.set(2 * p, `name-${p}`);
    // every third is done at once: its pair goes back
    if (i % 3 === 0) fs.free(p);
    else held.push(p);
  }
  t.is(new Set(held).size, held.length, 'no pair handed out twice');
  t.true(Math.max(...held) < 2100, 'freed pairs were reused');
  t.true(fs.flags.length >= 2 * 2000 && fs.flags.length <= 2 * 4096);
  for (const p of held) {
    t.is(fs.flags[2 * p], USED | CREATED);
    t.is(fs.pos[2 * p], 2 ** 40 + p);
    t.is(fs.bytes[2 * p + 1], 2 ** 40 + p);
    t.is(fs.gi[2 * p + 1], p);
    t.is(fs.names.get(2 * p), `name-${p}`);
  }
  for (const p of held) fs.free(p);
  t.is(fs.names.size, 0);
  const again = new Set(Array.from({ length: 2000 }, () => fs.alloc()));
  t.true(Math.max(...again) < 2100, 'after all are freed, the same pairs again');
});
