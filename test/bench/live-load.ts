/**
 * Load generator for the live benchmark (a child process): `small RATE SECONDS PORT CONNS` writes
 * 64-byte messages with TCP_NODELAY (one segment each) at RATE segments/s spread over CONNS
 * connections; `bulk RATE SECONDS PORT CONNS` writes 64 KiB at RATE bits/s, or with RATE 0 as fast
 * as the sockets take it. Prints
 * the payload bytes and writes it made, as JSON, when done.
 */
import net from 'node:net';

const [mode, rateS, secsS, portS, connsS] = process.argv.slice(2);
const rate = Number(rateS);
const secs = Number(secsS);
const port = Number(portS);
const n = Number(connsS);
const msg = Buffer.alloc(64, 0x61);
const big = Buffer.alloc(64 << 10, 0x62);
let bytes = 0;
let writes = 0;

const socks = await Promise.all(Array.from({ length: n }, () => new Promise<net.Socket>((r) => {
  const s = net.connect({ port, host: '127.0.0.1' }, () => r(s));
  s.setNoDelay(true);
})));
const t0 = process.hrtime.bigint();
const elapsed = () => Number(process.hrtime.bigint() - t0) / 1e9;

/** Write `buf` round-robin over the connections, `perSec` writes a second, until `secs` have passed. */
function paced(buf: Buffer, perSec: number): Promise<void> {
  return new Promise<void>((done) => {
    const tick = () => {
      const e = elapsed();
      const due = Math.floor(perSec * Math.min(e, secs));
      while (writes < due) {
        socks[writes % n]!.write(buf);
        writes++;
        bytes += buf.length;
      }
      if (e >= secs) return done();
      setImmediate(tick);
    };
    tick();
  });
}

if (mode === 'small') await paced(msg, rate);
else if (rate > 0) await paced(big, rate / 8 / big.length); // `rate` bits/s of 64 KiB writes
else {
  await Promise.all(socks.map((s) => new Promise<void>((done) => {
    const pump = () => {
      while (elapsed() < secs) {
        writes++;
        bytes += big.length;
        if (!s.write(big)) return void s.once('drain', pump);
      }
      done();
    };
    pump();
  })));
}
await Promise.all(socks.map((s) => new Promise<void>((r) => s.end(() => r()))));
process.stdout.write(JSON.stringify({ bytes, writes, secs: elapsed() }));
