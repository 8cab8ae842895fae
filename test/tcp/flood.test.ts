import test from 'ava';
import { CaptureSession } from '../../core/capture/session.js';
import { Mbuf } from '../../core/mbuf/mbuf.js';
import { Stack } from '../../core/stack.js';
import { TH_SYN } from '../../core/wire/tcp.js';
import { tcpFrame } from '../helpers/build.js';

test('1,000,000 distinct SYNs: the table stays at its cap, evictions are counted, memory stays flat', (t) => {
  const N = 1_000_000;
  const CAP = 10_000;
  const session = new CaptureSession();
  session.addIface({ linktype: 1, snaplen: 65535, tsresol: 6, tsoffset: 0, bigEndian: false, name: undefined, file: 'flood' });
  let reported = 0;
  const stack = new Stack(session, { maxConnections: CAP, checksums: false, onConnection: () => reported++ });
  const tpl = tcpFrame({ src: '10.0.0.1', dst: '192.168.0.1', sport: 1, dport: 80, seq: 1, flags: TH_SYN });
  const B = 8192;
  let peak = 0;
  global.gc?.();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < N; i += B) {
    const slab = new Uint8Array(B * tpl.length);
    const batch: Mbuf[] = [];
    for (let k = 0; k < B && i + k < N; k++) {
      const n = i + k;
      const o = k * tpl.length;
      slab.set(tpl, o);
      slab[o + 27] = n & 0xff; // source address 10.x.y.z and port vary
      slab[o + 28] = (n >> 8) & 0xff;
      slab[o + 29] = (n >> 16) & 0xff;
      slab[o + 34] = n & 0xff;
      batch.push(new Mbuf(slab, o, tpl.length, { caplen: tpl.length, origLen: tpl.length, tsSec: 1e9 + (n >> 10), tsNsec: 0, linktype: 1, ifidx: 0, frameNo: n + 1 }));
    }
    stack.input(batch);
    t.true(stack.pcbs.size <= CAP);
    peak = Math.max(peak, process.memoryUsage().heapUsed - before);
  }
  stack.finish();
  t.is(stack.stats.notes['tcp.pcb.evicted'], N - CAP);
  t.is(reported, N);
  t.is(stack.tcpstat.connections, N);
  t.is(stack.pcbs.size, 0);
  t.true(peak < 256 << 20, `heap grew by ${(peak / 2 ** 20).toFixed(0)} MiB`);
  t.log(`heap peak +${(peak / 2 ** 20).toFixed(0)} MiB for ${N.toLocaleString('en-US')} SYNs with a ${CAP.toLocaleString('en-US')}-connection table`);
});
