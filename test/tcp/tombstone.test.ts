import test from 'ava';
import { Readable } from 'node:stream';
import { readCaptures } from '../../core/capture/reader.js';
import { CaptureSession } from '../../core/capture/session.js';
import { DrainApp } from '../../core/socket/reader.js';
import { Stack } from '../../core/stack.js';
import type { ConnSummary } from '../../core/tcp/summary.js';
import { TH_ACK, TH_FIN, TH_PUSH, TH_SYN } from '../../core/wire/tcp.js';
import { pcapFile, tcpFrame, type RecSpec } from '../helpers/build.js';

/**
 * Tombstones: what stays in the table when a connection closes (BSD's TIME_WAIT, tcptw), so its
 * late packets (a retransmitted FIN) are counted as tcp.afterclose instead of starting a bogus
 * stream; they expire after tombstoneTtl seconds and expired ones are made again for the next
 * connections that close. Each flow: handshake, 5 bytes, FIN both ways, last ACK.
 */
function flow(k: number, t: number): RecSpec[] {
  const c = { src: `10.0.${k >> 8}.${k & 255}`, dst: '10.9.9.9', sport: 4000 + k, dport: 80 };
  const s = { src: c.dst, dst: c.src, sport: 80, dport: c.sport };
  return [
    tcpFrame({ ...c, seq: 100, flags: TH_SYN }),
    tcpFrame({ ...s, seq: 500, ack: 101, flags: TH_SYN | TH_ACK }),
    tcpFrame({ ...c, seq: 101, ack: 501 }),
    tcpFrame({ ...c, seq: 101, ack: 501, flags: TH_PUSH | TH_ACK, payload: `hi${String(k).padStart(3, '0')}` }),
    tcpFrame({ ...s, seq: 501, ack: 106 }),
    tcpFrame({ ...c, seq: 106, ack: 501, flags: TH_FIN | TH_ACK }),
    tcpFrame({ ...s, seq: 501, ack: 107, flags: TH_FIN | TH_ACK }),
    tcpFrame({ ...c, seq: 107, ack: 502 }),
  ].map((data) => ({ data, tsSec: t, tsFrac: 0 }));
}

/** The server's FIN again, late. */
const lateFin = (k: number, t: number): RecSpec => ({
  data: tcpFrame({ src: '10.9.9.9', dst: `10.0.${k >> 8}.${k & 255}`, sport: 80, dport: 4000 + k, seq: 501, ack: 107, flags: TH_FIN | TH_ACK }),
  tsSec: t,
  tsFrac: 0,
});

async function run(recs: RecSpec[]) {
  const session = new CaptureSession();
  const conns: ConnSummary[] = [];
  const stack = new Stack(session, { app: new DrainApp(false), onConnection: (c) => conns.push(c), tombstoneTtl: 1 });
  for await (const b of readCaptures([{ name: 'mem.pcap', stream: Readable.from([pcapFile(recs)]) }], session)) stack.input(b);
  stack.finish();
  return { stack, conns };
}

test('a late FIN of a closed connection is counted after close while its tombstone lives, and starts a stream once it expired', async (t) => {
  const { stack, conns } = await run([...flow(1, 0), lateFin(1, 0), lateFin(1, 5)]);
  t.is(stack.stats.notes['tcp.afterclose'], 1);
  t.is(conns.length, 2, 'the FIN after the tombstone expired starts a (guessed) stream');
  t.is(conns[0]!.c2s.bytes, 5);
  t.true(conns[1]!.clientGuessed);
});

test('expired tombstones made again for later connections recognise the later connections, not the earlier ones', async (t) => {
  const N = 300;
  const recs: RecSpec[] = [];
  for (let k = 0; k < N; k++) recs.push(...flow(k, 0));
  // ten seconds on: the first round's tombstones have expired and are made again for the second's
  for (let k = N; k < 2 * N; k++) recs.push(...flow(k, 10));
  for (let k = N; k < 2 * N; k++) recs.push(lateFin(k, 10));
  for (let k = 0; k < N; k += 10) recs.push(lateFin(k, 10));
  const { stack, conns } = await run(recs);
  t.is(stack.stats.notes["tcp.afterclose"], N, 'every late FIN of the second round, none of the first');
  t.is(conns.length, 2 * N + N / 10);
  t.deepEqual(conns.slice(0, 2 * N).map((c) => c.c2s.bytes), Array(2 * N).fill(5));
  t.true(conns.slice(2 * N).every((c) => c.clientGuessed && c.c2s.bytes + c.s2c.bytes === 0));
});
