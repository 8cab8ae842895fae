import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { corpus, CORPUS, HAS_CORPUS, HAS_TSHARK } from '../helpers/paths.js';
import { when } from '../helpers/skip.js';
import { badFrames, fields, fuseRun } from '../helpers/model.js';

/** The loopback sessions of ../shared/corpus/INDEX.md ("loopback sessions (127.0.0.1 / ::1)"). */
const LOOPBACK = [
  'gopacket__test_loopback.pcap', 'tcpflow__local2.pcap', 'zeek__redis__pipelining-example.pcap',
  'suricata-verify__http-range-multiflows__input.pcap', 'suricata-verify__transform-base64-7296__input.pcap',
  'zeek__echo-connections.pcap', 'pcapplusplus__nanosecs_big_endian.pcap', 'scapy__tls_nss_example.pcap',
  'suricata-verify__mqtt-limit-2__input.pcap', 'tcpdump__resp_1_benchmark.pcap',
  'suricata-verify__bug-6887-defrag-ipv6-tcp__frag-ip-tcp.pcap',
];

const tuple = (a: string, b: string) => [a, b].sort().join(' ');

when(HAS_CORPUS && HAS_TSHARK, 'needs ../shared/corpus and tshark')('fuse every loopback capture of the corpus: no payload on a fused connection, sockets get the oracle\'s bytes, output clean in tshark', async (t) => {
  let fusedTotal = 0;
  for (const name of LOOPBACK) {
    const r = await fuseRun(t, corpus(name));
    t.true(r.summary.onlySynFin, `${name}: ${r.summary.violation}`);
    const oracle = new Map<string, string[]>();
    for (const line of readFileSync(join(CORPUS, 'oracle', `${name}.streams.tsv`), 'utf8').trim().split('\n').slice(1)) {
      const row = line.split('\t');
      if (!oracle.has(`${row[1]} ${row[2]}`)) oracle.set(`${row[1]} ${row[2]}`, row);
    }
    const byStream = new Map(r.conns.map((c) => [c.stream, c]));
    const quiet = new Set<string>();
    for (const rec of r.summary.connections.filter((c) => c.fused)) {
      fusedTotal++;
      const c = byStream.get(rec.stream)!;
      t.is(rec.delivered.c2s, c.c2s.bytes, `${name} stream ${rec.stream}: fused c2s bytes are what the capture carried`);
      t.is(rec.delivered.s2c, c.s2c.bytes);
      const o = oracle.get(`${rec.client} ${rec.server}`);
      if (!o && name === 'zeek__echo-connections.pcap') continue; // the oracle has its first 200 of 500 streams
      t.truthy(o, `${name}: ${rec.client} ${rec.server} is in the oracle`);
      t.deepEqual([c.c2s.bytes, c.c2s.sha256, c.s2c.bytes, c.s2c.sha256], [Number(o![3]), o![4], Number(o![5]), o![6]], `${name} stream ${rec.stream}`);
      if (rec.unfused === null || rec.unfused === 'RST') quiet.add(tuple(rec.client, rec.server));
    }
    const withData = fields(r.outPath, ['ip.src', 'ipv6.src', 'tcp.srcport', 'ip.dst', 'ipv6.dst', 'tcp.dstport'], 'tcp.len > 0');
    const leaked = withData.filter(([s4, s6, sp, d4, d6, dp]) => {
      const ep = (a4: string, a6: string, p: string) => (a4 ? `${a4}:${p}` : `[${a6}]:${p}`);
      return quiet.has(tuple(ep(s4!, s6!, sp!), ep(d4!, d6!, dp!)));
    });
    t.deepEqual(leaked, [], `${name}: no payload on a fused connection`);
    // frames written as captured keep whatever the capture had (loopback captures often carry
    // offloaded, unfilled checksums); every frame sockcap built must be clean
    const badIn = new Set(badFrames(r.path).map(Number));
    const expected = r.frames.flatMap((m, i) => (m.hdr!.frameNo > 0 && badIn.has(m.hdr!.frameNo) ? [String(i + 1)] : []));
    t.deepEqual(badFrames(r.outPath), expected, `${name}: only frames written as captured may carry the capture's bad checksums`);
  }
  t.true(fusedTotal >= 560, `${fusedTotal} connections fused`);
  t.log(`${fusedTotal} loopback connections fused over ${LOOPBACK.length} captures`);
});
