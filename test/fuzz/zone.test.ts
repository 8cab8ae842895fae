import test from 'ava';
import fc from 'fast-check';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CaptureSession } from '../../core/capture/session.js';
import { ChunkZone } from '../../core/capture/zone.js';
import type { Connection } from '../../core/net/in-pcb.js';
import { runPipeline } from '../../core/pipeline.js';
import { type Socket, soreceive_stream } from '../../core/socket/socket.js';
import type { SocketApp } from '../../core/socket/reader.js';
import { Stack } from '../../core/stack.js';
import { TH_ACK, TH_FIN, TH_PUSH, TH_RST, TH_SYN } from '../../core/wire/tcp.js';
import { pcapFile, tcpFrame } from '../helpers/build.js';
import { tmp } from '../helpers/cli.js';
import { runs } from '../helpers/fuzz.js';

/**
 * Reads every socket in small pieces, but only every `every`-th wakeup (the others leave the bytes
 * in so.rcv, where they pin their chunks), copying what it reads: what a reader saw, by stream.
 */
class Lazy implements SocketApp {
  readonly got = new Map<string, Buffer[]>();
  private n = 0;
  constructor(private readonly every: number) {}
  attach(c: Connection): void {
    const rd = (dir: string) => (so: Socket) => {
      if (++this.n % this.every) return;
      this.read(`${c.stream} ${dir}`, so);
    };
    c.server.so.upcall = rd('c2s');
    c.client.so.upcall = rd('s2c');
  }
  detach(c: Connection): void {
    this.read(`${c.stream} c2s`, c.server.so);
    this.read(`${c.stream} s2c`, c.client.so);
  }
  private read(key: string, so: Socket): void {
    for (;;) {
      const r = soreceive_stream(so, 7);
      if (!r.len) return;
      const l = this.got.get(key) ?? [];
      for (const v of r.chunk) l.push(Buffer.from(v));
      this.got.set(key, l);
    }
  }
}

test('fuzz: random segment streams read from a file through tiny reused chunks deliver what fresh chunks deliver', async (t) => {
  const dir = tmp(t);
  let file = 0;
  await fc.assert(fc.asyncProperty(
    fc.uint8Array({ minLength: 1, maxLength: 600 }),
    fc.array(fc.tuple(fc.nat(599), fc.integer({ min: 1, max: 120 }), fc.boolean()), { minLength: 1, maxLength: 60 }),
    fc.constantFrom(0, 0x7fffffff, 0xfffffff0),
    fc.boolean(), fc.boolean(), fc.boolean(),
    fc.integer({ min: 64, max: 1024 }), fc.integer({ min: 1, max: 4 }),
    async (truth, pieces, isn, withSyn, withFin, withRst, chunk, every) => {
      const C = { src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 80 };
      const S = { src: '10.0.0.2', dst: '10.0.0.1', sport: 80, dport: 40000 };
      const frames: Uint8Array[] = [];
      if (withSyn) frames.push(tcpFrame({ ...C, seq: isn, flags: TH_SYN }));
      for (const [off, len, back] of pieces) {
        const o = off % truth.length;
        const payload = truth.subarray(o, Math.min(truth.length, o + len));
        // both directions carry the same random bytes at random offsets: both sockets queue out of order
        frames.push(back
          ? tcpFrame({ ...S, seq: (isn + 7 + o) >>> 0, flags: TH_ACK | TH_PUSH, payload })
          : tcpFrame({ ...C, seq: (isn + 1 + o) >>> 0, flags: TH_ACK | TH_PUSH, payload }));
      }
      if (withFin) frames.push(tcpFrame({ ...C, seq: (isn + 1 + truth.length) >>> 0, flags: TH_FIN | TH_ACK }));
      if (withRst) frames.splice(frames.length >> 1, 0, tcpFrame({ ...C, seq: (isn + 1 + (truth.length >> 1)) >>> 0, flags: TH_RST }));
      const path = join(dir, `f${file++}.pcap`);
      writeFileSync(path, pcapFile(frames.map((data, n) => ({ data, tsSec: 1000 + n }))));
      const run = async (zone: ChunkZone | null) => {
        const session = new CaptureSession();
        session.zone = zone;
        const app = new Lazy(every);
        const stack = new Stack(session, { app, debug: true });
        const res = await runPipeline([{ name: path }], stack);
        return { error: res.error?.message ?? null, got: [...app.got].map(([k, v]) => [k, Buffer.concat(v).toString('hex')]).sort() };
      };
      const fresh = await run(null);
      const reused = await run(new ChunkZone(chunk));
      t.deepEqual(reused, fresh);
      return JSON.stringify(reused) === JSON.stringify(fresh);
    }), runs(150));
});
