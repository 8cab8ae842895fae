import test, { type ExecutionContext } from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Connection, type Dir } from '../../core/net/in-pcb.js';
import { FlowFiles, type FlowIndexEntry } from '../../core/capture/flow-files.js';
import { flowName, safePath, templateError } from '../../core/capture/flow-name.js';
import fc from 'fast-check';
import { CREATED, FileSlots, USED } from '../../core/capture/file-slots.js';
import { cli, tmp } from '../helpers/cli.js';
import { fixture, HAS_TCPFLOW, HAS_TSHARK } from '../helpers/paths.js';
import { when } from '../helpers/skip.js';
import { execFileSync } from 'node:child_process';

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

test('templateError: empty, a path out of the output directory, or an unknown token; extract refuses them as usage errors', async (t) => {
  t.is(templateError('%A.%a-%B.%b'), null);
  t.is(templateError('100%%-%#-%d-%T'), null);
  t.is(templateError('%A/%a/%B/%b/%c%N.flow'), null, "tcpflow's own example");
  t.is(templateError('%G/%M/%K/%N%C%c'), null);
  t.is(templateError(''), 'is empty');
  t.regex(templateError('../x%A')!, /has a '\.\.' part/);
  t.regex(templateError('a/./b%A')!, /has a '\.' part/);
  t.regex(templateError('/tmp/%A')!, /starts with '\/'/);
  t.regex(templateError('a//%A')!, /has an empty part/);
  t.regex(templateError('%A/')!, /has an empty part/);
  t.regex(templateError('%Z')!, /unknown token '%Z'/);
  t.regex(templateError('x%')!, /unknown token '%'/);
  t.regex(templateError('%%%')!, /unknown token '%'/);
  const out = tmp(t);
  for (const [tpl, msg] of [['../x%A', "has a '..' part"], ['%Z', "has an unknown token '%Z'"], ['', 'is empty']] as const) {
    const r = await cli(['extract', fixture('tcp/three-http-streams.pcap'), '-o', join(out, 'o'), '-T', tpl]);
    t.is(r.code, 2, tpl);
    t.true(r.stderr.startsWith(`sockcap: template '${tpl}' ${msg}`), r.stderr);
  }
  t.deepEqual(readdirSync(out), [], 'nothing written, not even the directory');
});

/** Four connections of one 4-tuple (stream 1 twice), both directions each, through a FlowFiles with `template`. */
async function sameTuple(t: ExecutionContext, template: string, small: boolean): Promise<{ dir: string; index: FlowIndexEntry[] }> {
  const d = tmp(t);
  const index: FlowIndexEntry[] = [];
  const ff = new FlowFiles(d, template, false, (e) => index.push(e), null, small);
  const addr = new Uint8Array([10, 0, 0, 1, 10, 0, 0, 2]);
  for (const stream of [0, 1, 2, 1]) {
    const c = new Connection(stream, addr, 0, 1000, 4, 80, 4);
    for (const dir of ['c2s', 's2c'] as Dir[]) ff.data(c, dir, [Buffer.from(`${stream} ${dir} of ${index.length}`)]);
    ff.closed(c);
  }
  await ff.close();
  ff.check();
  for (const e of index) t.regex(readFileSync(join(d, e.file), 'latin1'), new RegExp(`^${e.stream} ${e.dir} of \\d+$`), e.file);
  return { dir: d, index };
}

test("tcpflow's %c and %C: a name given before takes the next count, as tcpflow counts the connections given it; once a count changes nothing (%C alone), the -c<stream> suffixes", async (t) => {
  for (const small of [false, true]) {
    const counted = await sameTuple(t, 'x%C%c', small);
    t.deepEqual(counted.index.map((e) => e.file), ['x', 'xc1', 'xc2', 'xc3', 'xc4', 'xc5', 'xc6', 'xc7'], `small ${small}`);
    // the count is of this name's connections: a name met for the first time has none
    const perDir = await sameTuple(t, '%d%c', small);
    t.deepEqual(perDir.index.map((e) => e.file), ['c2s', 's2c', 'c2s1', 's2c1', 'c2s2', 's2c2', 'c2s3', 's2c3']);
    const onlyC = await sameTuple(t, 'x%C', small);
    const files = onlyC.index.map((e) => e.file);
    t.deepEqual(files.slice(0, 3), ['x', 'xc', 'x-c1']);
    t.is(new Set(files).size, 8, files.join(' '));
    t.deepEqual(readdirSync(onlyC.dir).sort(), [...files].sort());
  }
});

test("a template with '/' makes directories inside the output directory (tcpflow's -T %A/%a/...), on either writer; %N %K %M %G bin by the stream index; a part that would be no name gets -c<stream>", async (t) => {
  for (const small of [false, true]) {
    const { dir, index } = await sameTuple(t, '%K/%N/%d%C%c', small);
    t.deepEqual(index.map((e) => e.file), ['000/000/c2s', '000/000/s2c', '000/001/c2s', '000/001/s2c', '000/002/c2s', '000/002/s2c', '000/001/c2sc1', '000/001/s2cc1']);
    t.deepEqual(readdirSync(join(dir, '000')).sort(), ['000', '001', '002']);
    // %v of a connection in no network is empty: that part becomes -c<stream>, never '' or '..'
    const empty = await sameTuple(t, 'a/%v/%d-%#', small);
    t.deepEqual(empty.index.slice(0, 2).map((e) => e.file), ['a/-c0/c2s-0', 'a/-c0/s2c-0']);
    const dots = await sameTuple(t, '.%v./%d%c', small);
    t.is(dots.index[0]!.file, '..-c0/c2s', 'never a way out of the directory');
    t.deepEqual(readdirSync(dots.dir).sort(), ['..-c0', '..-c1', '..-c2'].sort());
  }
  // extract: tcpflow's own example template; each file is the default run's file of its direction
  const out = tmp(t);
  const cap = fixture('tcp/three-http-streams.pcap');
  for (const [o, tpl] of [['flat', '%A.%a-%B.%b'], ['tree', '%A/%a/%B/%b/%c%N.flow']]) {
    const r = await cli(['extract', cap, '-o', join(out, o), '-T', tpl, '-q']);
    t.is(r.code, 0, r.stderr);
  }
  type Entry = { stream: number; dir: string; file: string };
  const flat = JSON.parse(readFileSync(join(out, 'flat', 'sockcap-index.json'), 'utf8')) as Entry[];
  const tree = JSON.parse(readFileSync(join(out, 'tree', 'sockcap-index.json'), 'utf8')) as Entry[];
  t.is(tree.length, flat.length);
  t.true(tree.length >= 4);
  for (const e of tree) {
    const f = flat.find((x) => x.stream === e.stream && x.dir === e.dir)!;
    t.is(e.file, `${f.file.replace(/^(.*)\.(\d{5})-(.*)\.(\d{5})$/, '$1/$2/$3/$4')}/${String(e.stream).padStart(3, '0')}.flow`);
    t.true(readFileSync(join(out, 'tree', e.file)).equals(readFileSync(join(out, 'flat', f.file))), e.file);
  }
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

test('property: a template templateError accepts names a path inside the output directory for any connection, network, direction and count (no empty, "." or ".." part, no leading "/")', (t) => {
  const piece = fc.constantFrom('%A', '%a', '%B', '%b', '%#', '%d', '%t', '%V', '%v', '%c', '%C', '%N', '%K', '%M', '%G', '%E', '%e', '%%', '/', '.', '..', 'x', '-', '');
  fc.assert(
    fc.property(
      fc.array(piece, { minLength: 1, maxLength: 8 }).map((p) => p.join('')),
      fc.nat(2_000_000_000),
      fc.constantFrom('', '100', '30.20.10', 'vxlan-vni-5001', '.', '..'),
      fc.constantFrom<Dir>('c2s', 's2c'),
      fc.nat(20),
      fc.boolean(),
      (tpl, stream, net, dir, count, v6) => {
        if (templateError(tpl) !== null) return true;
        const addr = v6 ? new Uint8Array(32).fill(0).map((_, i) => (i % 16 === 15 ? 1 + (i >> 4) : 0)) : new Uint8Array([10, 0, 0, 1, 10, 0, 0, 2]);
        const c = new Connection(stream, addr, 0, 1000, v6 ? 16 : 4, 80, v6 ? 16 : 4);
        const name = safePath(flowName(tpl, c, dir, net, count), stream);
        t.false(name.startsWith('/'), name);
        return name.split('/').every((p) => p !== '' && p !== '.' && p !== '..');
      },
    ),
    { numRuns: 2000 },
  );
});

when(HAS_TSHARK, 'needs tshark')("tcpflow's %E/%e: each direction's file carries the source and destination MAC address of the direction's first frame (tshark's eth.src and eth.dst); zeros off Ethernet; tcpflow's own names, when it is installed", async (t) => {
  const out = tmp(t);
  type Entry = { stream: number; dir: string; src: string; file: string };
  for (const cap of ['tcp/smtp.pcap', 'tcp/three-http-streams.pcap', 'link/qinqinq.pcap', 'ip/frag-http-req.pcap', 'ip/frag-ipv6-tcp.pcap']) {
    const o = join(out, cap.replace(/\W/g, '_'));
    const r = await cli(['extract', fixture(cap), '-o', o, '-q', '-T', '%E_%e_%#_%d']);
    t.is(r.code, 0, r.stderr);
    const index = JSON.parse(readFileSync(join(o, 'sockcap-index.json'), 'utf8')) as Entry[];
    t.true(index.length >= 1, cap);
    // (a datagram in fragments: tshark's row is its last fragment's frame, sockcap takes the first's; here they agree)
    const rows = execFileSync('tshark', ['-r', fixture(cap), '-T', 'fields', '-e', 'tcp.stream', '-e', 'tcp.srcport', '-e', 'eth.src', '-e', 'eth.dst'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .trim().split('\n').map((l) => l.split('\t'));
    for (const e of index) {
      const port = e.src.slice(e.src.lastIndexOf(':') + 1);
      const first = rows.find(([s, p]) => Number(s) === e.stream && p === port)!;
      // raw IPv6: no Ethernet header to take them from
      const [src, dst] = cap.includes('ipv6') ? ['00:00:00:00:00:00', '00:00:00:00:00:00'] : [first[2], first[3]];
      t.is(e.file, `${src}_${dst}_${e.stream}_${e.dir}`, `${cap} stream ${e.stream} ${e.dir}`);
    }
    t.deepEqual(readdirSync(o).filter((f) => f !== 'sockcap-index.json').sort(), index.map((e) => e.file).sort());
  }
  if (!HAS_TCPFLOW) return t.log('tcpflow is not installed: compared with tshark only');
  // tcpflow's own names for the same template (its count after them: the files it did not split)
  const tf = join(out, 'tcpflow');
  execFileSync('tcpflow', ['-r', fixture('tcp/three-http-streams.pcap'), '-o', tf, '-T', '%E_%e_%A.%a-%B.%b%C%c'], { stdio: 'ignore' });
  t.true(readdirSync(tf).length > 2, 'tcpflow wrote its files');
  const mine = join(out, 'mine');
  t.is((await cli(['extract', fixture('tcp/three-http-streams.pcap'), '-o', mine, '-q', '-T', '%E_%e_%A.%a-%B.%b%C%c'])).code, 0);
  const names = (d: string) => readdirSync(d).filter((f) => /^[0-9a-f]{2}:/.test(f)).sort();
  const theirs = names(tf);
  t.deepEqual(names(mine), theirs.filter((f) => !/c\d+$/.test(f)), 'the same name for every direction');
  // tcpflow also splits a direction's tail into a file of its own (c1: seen on the smtp fixture too)
  for (const f of theirs.filter((f) => /c\d+$/.test(f))) t.true(names(mine).includes(f.replace(/c\d+$/, '')), f);
});

test('follow -z takes back a file of a tree whose names end as the default template writes them (-T %K/%N/%A.%a-%B.%b): its bytes are the file\'s', async (t) => {
  const out = tmp(t);
  const cap = fixture('tcp/three-http-streams.pcap');
  t.is((await cli(['extract', cap, '-o', out, '-q', '-T', '%K/%N/%A.%a-%B.%b'])).code, 0);
  const index = JSON.parse(readFileSync(join(out, 'sockcap-index.json'), 'utf8')) as Array<{ file: string }>;
  t.true(index.length >= 4);
  for (const e of index) {
    t.regex(e.file, /^000\/00\d\/[\d.]+-[\d.]+$/);
    const r = await cli(['follow', cap, '-z', join(out, e.file), '--format', 'bytes']);
    t.is(r.code, 0, r.stderr);
    t.true(Buffer.from(r.stdout, 'latin1').equals(readFileSync(join(out, e.file))), e.file);
  }
});
