import test from 'ava';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_TEMPLATE, flowName } from '../../core/capture/flow-name.js';
import { readCaptures } from '../../core/capture/reader.js';
import { CaptureSession } from '../../core/capture/session.js';
import { Connection, type Dir } from '../../core/net/in-pcb.js';
import { NetNames, netToken } from '../../core/net/net-names.js';
import { parseSelector, selects, selectsFlow } from '../../core/selector.js';
import { put32 } from '../../core/wire/bytes.js';
import { conversation, pcapFile } from '../helpers/build.js';
import { cli, tmp } from '../helpers/cli.js';
import { fixture, HAS_TCPFLOW } from '../helpers/paths.js';
import { when } from '../helpers/skip.js';

/** The Ethernet frames of a capture (its records' bytes, copied). */
async function framesOf(file: string): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const b of readCaptures([{ name: file }], new CaptureSession())) for (const m of b) out.push(Uint8Array.from(m.buf.subarray(m.off, m.off + m.len)));
  return out;
}

/** 802.1Q tags (outermost first) inserted after the MAC addresses of an Ethernet frame. */
function tagged(f: Uint8Array, ...vids: number[]): Uint8Array {
  const out = new Uint8Array(f.length + 4 * vids.length);
  out.set(f.subarray(0, 12), 0);
  vids.forEach((vid, i) => out.set([i === vids.length - 1 ? 0x81 : 0x88, i === vids.length - 1 ? 0x00 : 0xa8, vid >> 8, vid & 0xff], 12 + 4 * i));
  out.set(f.subarray(12), 12 + 4 * vids.length);
  return out;
}

/** The frame's IPv4 packet in VXLAN (vni) over UDP over IPv4 over Ethernet, checksums left 0 (UDP allows it; the outer IPv4 one is computed by nobody here, and sockcap does not check it). */
function vxlan(f: Uint8Array, vni: number): Uint8Array {
  const inner = f;
  const udpLen = 8 + 8 + inner.length;
  const out = new Uint8Array(14 + 20 + udpLen);
  out.set(f.subarray(0, 12), 0);
  out.set([0x08, 0x00], 12);
  const ip = out.subarray(14);
  ip.set([0x45, 0, (20 + udpLen) >> 8, (20 + udpLen) & 0xff, 0, 0, 0x40, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 9]);
  let s = 0;
  for (let i = 0; i < 20; i += 2) s += (ip[i]! << 8) | ip[i + 1]!;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  ip[10] = (~s >> 8) & 0xff;
  ip[11] = ~s & 0xff;
  const udp = ip.subarray(20);
  udp.set([0xc0, 0x00, 0x12, 0xb5, udpLen >> 8, udpLen & 0xff, 0, 0]);
  udp[8] = 0x08;
  put32(udp, 12, vni << 8);
  udp.set(inner, 16);
  return out;
}

test('netToken: a VLAN stack is its ids (tcpflow writes a VLAN\'s number), any other network its name with dashes for spaces', (t) => {
  t.is(netToken(undefined), '');
  t.is(netToken('vlan 100'), '100');
  t.is(netToken('vlan 30.20.10'), '30.20.10');
  t.is(netToken('vxlan vni 5001'), 'vxlan-vni-5001');
  t.is(netToken('vlan 100 gre key 7'), 'vlan-100-gre-key-7');
  t.is(netToken('net 1a2b'), 'net-1a2b');
  const n = new NetNames();
  n.set(9, 'vlan 100');
  t.is(n.token(9), '100');
  t.is(n.token(0), '');
});

test('flowName: tcpflow\'s tokens %T (ISO 8601, UTC) and %t (epoch seconds), %V%v the network; the default template carries it after the ports, on the IPv4 fast path as on the general one', (t) => {
  const c = new Connection(3, new Uint8Array([10, 0, 0, 1, 192, 168, 200, 255]), 0, 40001, 4, 80, 4);
  c.began(1_700_000_000, 123_000_000);
  t.is(flowName('%T', c, 'c2s'), '2023-11-14T22:13:20Z');
  t.is(flowName('%t-%#-%d', c, 's2c'), '1700000000-3-s2c');
  // a time no Date holds (a pcapng resolution and 64 bits allow it) is its number, not a crash
  const far = new Connection(0, new Uint8Array(8), 0, 1, 4, 2, 4);
  far.began(2 ** 53, 0);
  t.is(flowName('%T', far, 'c2s'), String(2 ** 53));
  far.began(0, 0);
  t.is(flowName('%T', far, 'c2s'), '1970-01-01T00:00:00Z');
  t.is(flowName('x%V%vy', c, 'c2s'), 'xy', 'no network: both empty');
  t.is(flowName('x%V%vy', c, 'c2s', '100'), 'x--100y');
  t.is(flowName(DEFAULT_TEMPLATE, c, 'c2s'), '010.000.000.001.40001-192.168.200.255.00080');
  t.is(flowName(DEFAULT_TEMPLATE, c, 's2c', 'vxlan-vni-5001'), '192.168.200.255.00080-010.000.000.001.40001--vxlan-vni-5001');
  const v6 = new Connection(0, Uint8Array.from([...new Array(15).fill(0), 1, 0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 2]), 0, 5, 16, 443, 16);
  t.is(flowName(DEFAULT_TEMPLATE, v6, 'c2s', '30.20.10'), '::1.00005-2001:db8::2.00443--30.20.10');
  fc.assert(fc.property(fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 65535 }), fc.boolean(), fc.constantFrom('', '7', '30.20.10', 'gre-key-9'), (addr, cp, sp, c2s, net) => {
    const k = new Connection(0, addr, 0, cp, 4, sp, 4);
    const d: Dir = c2s ? 'c2s' : 's2c';
    t.is(flowName(DEFAULT_TEMPLATE, k, d, net), flowName(`${DEFAULT_TEMPLATE}~`, k, d, net).slice(0, -1));
  }), { numRuns: 500 });
});

test('a selector made from a file name with a network selects the connection in that network only; without one, in any', (t) => {
  const name = '010.000.000.001.40001-192.168.200.255.00080';
  const plain = parseSelector(name);
  t.is(plain.net, null);
  const s100 = parseSelector(`out/${name}--100`);
  t.is(s100.net, '100');
  t.deepEqual(s100.ends, plain.ends);
  const reused = parseSelector(`${name}--vxlan-vni-5001-c7-s2c-2`);
  t.is(reused.net, 'vxlan-vni-5001');
  t.is(reused.stream, 7);
  const nets = new NetNames();
  nets.set(5, 'vlan 100');
  nets.set(6, 'vlan 200');
  const conn = (vlan: number) => new Connection(0, new Uint8Array([10, 0, 0, 1, 192, 168, 200, 255]), 0, 40001, 4, 80, 4, vlan);
  t.true(selects(s100, conn(5), nets));
  t.false(selects(s100, conn(6), nets));
  t.false(selects(s100, conn(0), nets));
  t.false(selects(s100, conn(5), null), 'no names: a network cannot be told');
  t.true(selects(plain, conn(6), nets) && selects(plain, conn(0), null));
  t.true(selectsFlow(s100, 1, '10.0.0.1:40001', '192.168.200.255:80', 'vlan 100'));
  t.false(selectsFlow(s100, 1, '10.0.0.1:40001', '192.168.200.255:80', undefined));
  t.true(selectsFlow(plain, 1, '10.0.0.1:40001', '192.168.200.255:80', 'vlan 200'));
});

test('extract names a connection in a VLAN or a tunnel with its network after the ports; follow takes each name back to its own connection', async (t) => {
  const dir = tmp(t);
  const smtp = await framesOf(fixture('tcp/smtp.pcap'));
  const cap = join(dir, 'nets.pcap');
  // one conversation five times: untagged, VLAN 100, VLAN 200, QinQ 30.20, VXLAN 5001
  const copies = [smtp, smtp.map((f) => tagged(f, 100)), smtp.map((f) => tagged(f, 200)), smtp.map((f) => tagged(f, 30, 20)), smtp.map((f) => vxlan(f, 5001))];
  writeFileSync(cap, pcapFile(copies.flat().map((data) => ({ data }))));
  const out = join(dir, 'out');
  const r = await cli(['extract', cap, '-o', out, '-q']);
  t.is(r.code, 0, r.stderr);
  const files = readdirSync(out).filter((f) => f !== 'sockcap-index.json').sort();
  const base = files.filter((f) => !f.includes('--'));
  t.is(base.length, 2, files.join(' '));
  const nets = ['', '--100', '--200', '--30.20', '--vxlan-vni-5001'];
  t.deepEqual(files, nets.flatMap((n) => base.map((b) => b + n)).sort());
  for (const f of files) t.true(readFileSync(join(out, f)).equals(readFileSync(join(out, base.find((b) => f.startsWith(b))!))), `${f}: the same bytes`);
  const index = JSON.parse(readFileSync(join(out, 'sockcap-index.json'), 'utf8')) as Array<{ stream: number; file: string; net?: string }>;
  t.deepEqual([...new Set(index.map((e) => e.net))], [undefined, 'vlan 100', 'vlan 200', 'vlan 30.20', 'vxlan vni 5001'], 'the index names each network');
  for (const [i, n] of nets.entries()) {
    const want = index.find((e) => e.file === base[0] + n)!.stream;
    t.is(want, i, `${n || 'untagged'}: stream ${i}`);
    const f = await cli(['follow', cap, '-z', join(out, base[0] + n)]);
    t.is(f.code, 0, f.stderr);
    t.true(f.stdout.includes(`Filter: tcp.stream eq ${want}\n`), `${base[0] + n} follows stream ${want}: ${f.stdout.slice(0, 200)}`);
  }
  const none = await cli(['follow', cap, '-z', `${base[0]}--300`]);
  t.not(none.code, 0, 'a network the capture does not have selects nothing');
  // tcpflow's -T tokens: %t, %T and %V%v, one file per direction and network
  const tpl = join(dir, 'tpl');
  const r2 = await cli(['extract', cap, '-o', tpl, '-q', '-T', '%T_%t_%#%V%v_%d']);
  t.is(r2.code, 0, r2.stderr);
  const names = readdirSync(tpl).filter((f) => f !== 'sockcap-index.json').sort();
  t.is(names.length, 10);
  t.true(names.every((n) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ_\d+_\d(--[\w.-]+)?_(c2s|s2c)$/.test(n)), names.join(' '));
  // a name that is no file's (empty, a dot) gets the stream as a name given twice does
  for (const [tpl, want] of [['%v', ['-c0', '-c0-s2c', '100', '100-c1', '200', '200-c2', '30.20', '30.20-c3', 'vxlan-vni-5001', 'vxlan-vni-5001-c4']], ['.%V', ['.-c0', '.-c0-s2c', '.--', '.---c1', '.---c2', '.---c2-s2c', '.---c3', '.---c3-s2c', '.---c4', '.---c4-s2c']]] as const) {
    const o = join(dir, `odd${tpl.length}`);
    const r3 = await cli(['extract', cap, '-o', o, '-q', '-T', tpl]);
    t.is(r3.code, 0, r3.stderr);
    t.deepEqual(readdirSync(o).filter((f) => f !== 'sockcap-index.json').sort(), [...want].sort(), tpl);
  }
  for (const end of [/_0_c2s$/, /_1--100_s2c$/, /_3--30\.20_c2s$/, /_4--vxlan-vni-5001_s2c$/]) t.true(names.some((n) => end.test(n)), `${end}`);
});

when(HAS_TCPFLOW, 'needs tcpflow')('extract\'s names on VLAN-tagged traffic are tcpflow\'s (--<vlan> after the ports), byte for byte', async (t) => {
  const dir = tmp(t);
  // (not the smtp fixture: tcpflow splits its server's last 6 bytes into a file of their own, c1)
  const conv = conversation('10.1.2.3', '10.9.8.7', 40001, 8080);
  const cap = join(dir, 'vlans.pcap');
  writeFileSync(cap, pcapFile([...conv, ...conv.map((f) => tagged(f, 6)), ...conv.map((f) => tagged(f, 4094))].map((data) => ({ data }))));
  const ours = join(dir, 'ours');
  const theirs = join(dir, 'theirs');
  const r = await cli(['extract', cap, '-o', ours, '-q', '--gaps', 'zero']);
  t.is(r.code, 0, r.stderr);
  const tf = spawnSync('tcpflow', ['-r', cap, '-o', theirs], { encoding: 'utf8' });
  t.is(tf.status, 0, tf.stderr);
  const names = readdirSync(ours).filter((f) => f !== 'sockcap-index.json').sort();
  t.deepEqual(names.map((n) => n.replace(/^.*?(--|$)/, '$1')), ['', '--4094', '--6', '', '--4094', '--6']);
  t.deepEqual(readdirSync(theirs).filter((f) => f !== 'report.xml').sort(), names);
  for (const n of names) t.true(readFileSync(join(ours, n)).equals(readFileSync(join(theirs, n))), n);
});

test('fuse --packetize takes a file name with its network: only the connection in that VLAN stays unfused; fuse\'s records name each network', async (t) => {
  const dir = tmp(t);
  const lo = conversation('127.0.0.1', '127.0.0.2', 40001, 8080);
  const cap = join(dir, 'lo.pcap');
  writeFileSync(cap, pcapFile([...lo.map((f) => tagged(f, 100)), ...lo.map((f) => tagged(f, 200))].map((data) => ({ data }))));
  const name = '127.000.000.001.40001-127.000.000.002.08080';
  for (const [net, out] of [['--200', 1], ['--100', 0]] as const) {
    const r = await cli(['replay', cap, '--fuse', '--packetize', name + net, '--json']);
    t.is(r.code, 0, r.stderr);
    const fuse = (JSON.parse(r.stdout) as { fuse: { connections: Array<{ stream: number; fused: boolean; reason: string; net?: string }> } }).fuse.connections;
    t.deepEqual(fuse.map((c) => [c.stream, c.fused, c.reason, c.net]), [0, 1].map((s) => (s === out ? [s, false, 'opted out (--packetize)'] : [s, true, 'loopback']).concat(`vlan ${(s + 1) * 100}`)), net);
  }
  // fuse's own table names each connection's network at the end of its row
  const f = await cli(['fuse', cap]);
  t.is(f.code, 0, f.stderr);
  const rows = f.stdout.split('\n').filter((l) => /^[01] /.test(l));
  t.deepEqual(rows.map((l) => / {2}(vlan \d+)$/.exec(l)?.[1]), ['vlan 100', 'vlan 200'], f.stdout);
});


test('--networks merge finds connections by their 4-tuple alone: directions seen through different VLANs or VNIs meet in one connection (separate, the default, keeps them apart)', async (t) => {
  const dir = tmp(t);
  const conv = conversation('10.1.2.3', '10.9.8.7', 40001, 8080);
  const fromClient = (f: Uint8Array) => f[26 + 3] === 3;
  const cap = join(dir, 'asym.pcap');
  // client to server on VLAN 10, server to client on VLAN 20 (asymmetric routing, a SPAN per direction)
  writeFileSync(cap, pcapFile(conv.map((f) => ({ data: tagged(f, fromClient(f) ? 10 : 20) }))));
  const vx = join(dir, 'vx.pcap');
  writeFileSync(vx, pcapFile(conv.map((f) => ({ data: vxlan(f, fromClient(f) ? 1 : 2) }))));
  type Summary = { connections: Array<{ net?: string; clientGuessed: boolean; c2s: { bytes: number }; s2c: { bytes: number } }> };
  for (const file of [cap, vx]) {
    const sep = await cli(['replay', file, '--json']);
    t.is(sep.code, 0, sep.stderr);
    const s = (JSON.parse(sep.stdout) as Summary).connections;
    t.is(s.length, 2, 'separate: each direction a connection of its own network');
    t.deepEqual(s.map((c) => c.c2s.bytes + c.s2c.bytes).sort((a, b) => a - b), [700, 3000]);
    const mer = await cli(['replay', file, '--json', '--networks', 'merge']);
    t.is(mer.code, 0, mer.stderr);
    const m = (JSON.parse(mer.stdout) as Summary).connections;
    t.deepEqual(m.map((c) => [c.net, c.clientGuessed, c.c2s.bytes, c.s2c.bytes]), [[undefined, false, 3000, 700]], 'merge: one connection, its handshake seen, both directions whole');
  }
  const out = join(dir, 'out');
  const r = await cli(['extract', cap, '-o', out, '-q', '--networks', 'merge']);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(readdirSync(out).filter((f) => f !== 'sockcap-index.json').sort(), ['010.001.002.003.40001-010.009.008.007.08080', '010.009.008.007.08080-010.001.002.003.40001']);
  const bad = await cli(['replay', cap, '--networks', 'both']);
  t.is(bad.code, 2, 'an unknown value is a usage error');
});

test('a default file name is a selector of its own connection, direction and network, for any addresses, ports and network (the name and the parser agree); any other text parses or is a usage error, never a crash', (t) => {
  const token = fc.oneof(fc.constant(''), fc.array(fc.integer({ min: 1, max: 4094 }), { minLength: 1, maxLength: 3 }).map((v) => v.join('.')),
    fc.constantFrom('vxlan-vni-5001', 'vlan-100-gre-key-7', 'erspan-session-42', 'pptp-call-4660', 'ipip', 'net-1a2b'));
  fc.assert(fc.property(fc.boolean(), fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 65535 }), fc.boolean(), token, (v6, addr, cp, sp, c2s, net) => {
    const alen = v6 ? 16 : 4;
    const c = new Connection(9, addr, 0, cp, alen, sp, alen);
    const d: Dir = c2s ? 'c2s' : 's2c';
    const sel = parseSelector(flowName(DEFAULT_TEMPLATE, c, d, net));
    t.deepEqual(sel.ends, c2s ? [c.clientName, c.serverName] : [c.serverName, c.clientName]);
    t.is(sel.from, c2s ? c.clientName : c.serverName);
    t.is(sel.net, net === '' ? null : net);
    t.is(sel.stream, null);
  }), { numRuns: 1000 });
  fc.assert(fc.property(fc.string(), (s) => {
    try {
      parseSelector(s);
    } catch (e) {
      if ((e as { code?: string }).code !== 'ERR_USAGE') throw e;
    }
  }), { numRuns: 2000 });
  t.pass();
});
