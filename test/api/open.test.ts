import test from 'ava';
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { open } from '../../core/index.js';
import { fixture, HAS_TCPDUMP } from '../helpers/paths.js';
import { when } from '../helpers/skip.js';

/** A slow consumer: backpressure must hold the capture back, not lose or reorder bytes. */
function slowHasher(delayEvery: number): { sink: Writable; digest: () => string } {
  const h = createHash('sha256');
  let n = 0;
  const sink = new Writable({
    highWaterMark: 16,
    async write(chunk: Buffer, _e, cb) {
      h.update(chunk);
      if (++n % delayEvery === 0) await sleep(1);
      cb();
    },
  });
  return { sink, digest: () => h.digest('hex') };
}

test('open(): connections as Node Readables; bytes equal replay --hash, through slow consumers', async (t) => {
  const seen: Array<Promise<[number, string, string]>> = [];
  for await (const conn of open(fixture('tcp/three-http-streams.pcap'), { highWaterMark: 64 })) {
    const a = slowHasher(2);
    const b = slowHasher(3);
    seen.push(Promise.all([pipeline(conn.c2s, a.sink), pipeline(conn.s2c, b.sink)]).then(() => [conn.stream, a.digest(), b.digest()]));
  }
  const got = await Promise.all(seen);
  t.deepEqual(got, [
    [0, '91157e5a56f59fb1e3e3263e5c329d6b33243483e743cce6de658a4d2a30f2ae', '18d1e4f9823f94a9d01d628d323a78861366a7d1221d456d36e0e64dcaa98823'],
    [1, '01fd305c6e7aaea138f2c8467213ae4e8976686b088fa9e19303858d54239011', '8b9b115dd6ed91fb2b78dcbbadcadaadfa512d2f0edd1db7deb579025edbce8f'],
    [2, 'eff41584f45c727b75e9f2459d2c3f5aa62634ac5e441a62747c4944de30b23f', '37b61988ddf82c0a10a5b88b8bca11b8430e051cfedacae3b8da1ad287cae591'],
  ]);
});

test('open(): summaries resolve, and the client/server names are the report\'s', async (t) => {
  const work: Array<Promise<void>> = [];
  for await (const conn of open([fixture('tcp/smtp.pcap')])) {
    t.is(conn.client, '10.10.1.4:1470');
    t.is(conn.server, '74.53.140.153:25');
    conn.s2c.resume();
    // consume concurrently: the capture advances only while the loop asks for more
    work.push((async () => {
      let bytes = 0;
      for await (const chunk of conn.c2s) bytes += (chunk as Buffer).length;
      t.is(bytes, 14705);
      const s = await conn.summary;
      t.is(s.state, 'CLOSED');
      t.is(s.s2c.bytes, 538);
    })());
  }
  await Promise.all(work);
  t.is(work.length, 1);
});

when(HAS_TCPDUMP, 'needs tcpdump')('open() with a filter: only the connections the filter passes, with their bytes', async (t) => {
  const seen: string[] = [];
  for await (const conn of open(fixture('tcp/three-http-streams.pcap'), { filter: 'host 98.139.161.29' })) {
    const [a, b] = await Promise.all([conn.c2s.toArray(), conn.s2c.toArray()]);
    seen.push(`${conn.server} ${Buffer.concat(a).length} ${Buffer.concat(b).length}`);
  }
  t.deepEqual(seen, ['98.139.161.29:80 377 441']);
  await t.throwsAsync(async () => {
    for await (const _ of open(fixture('tcp/smtp.pcap'), { filter: 'tcp prot 25' }));
  }, { message: /syntax error/ });
});
