/**
 * Synthetic capture generator for the benchmark: `flows` TCP connections (handshake, data both
 * ways in MSS-sized segments, FIN exchange) interleaved round-robin, with ~1% of segments swapped
 * with their successor (reordering) and ~1% sent twice (retransmission), until `bytes` are written.
 * Deterministic (a fixed LCG), so every run measures the same file.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { tcpFrame, pcapFile } from '../helpers/build.js';
import { TH_ACK, TH_FIN, TH_PUSH, TH_SYN } from '../../core/wire/tcp.js';

export interface GenOptions {
  path: string;
  bytes: number;
  flows: number;
  /** Payload bytes per flow and direction, client→server; the server sends a tenth. */
  perFlow: number;
  mss?: number;
  /** Loopback addresses (for the fuse benchmark). */
  loopback?: boolean;
}

export async function generate(o: GenOptions): Promise<{ frames: number; bytes: number }> {
  const mss = o.mss ?? 1448;
  const ws = createWriteStream(o.path);
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const payload = new Uint8Array(mss);
  for (let i = 0; i < mss; i++) payload[i] = 32 + (i % 95);
  let written = 0;
  let frames = 0;
  let ts = 1_700_000_000;
  let pending: Uint8Array[] = [];
  const header = pcapFile([]);
  ws.write(header);
  written += header.length;
  const emit = async (f: Uint8Array) => {
    const rec = pcapFile([{ data: f, tsSec: Math.floor(ts), tsFrac: Math.floor((ts % 1) * 1e6) }]).subarray(24);
    ts += 0.00001;
    pending.push(rec);
    written += rec.length;
    frames++;
    if (pending.length >= 4096) {
      if (!ws.write(Buffer.concat(pending))) await once(ws, 'drain');
      pending = [];
    }
  };
  let flowBase = 0;
  while (written < o.bytes) {
    const flows = Array.from({ length: o.flows }, (_, i) => mkFlow(flowBase + i, o, mss, payload, rnd));
    flowBase += o.flows;
    let live = flows;
    while (live.length && written < o.bytes) {
      live = live.filter((f) => !f.done);
      for (const f of live) {
        const seg = f.next();
        if (!seg) continue;
        await emit(seg);
        if (rnd() < 0.01) await emit(seg); // ~1% duplicates
      }
    }
  }
  if (pending.length) ws.write(Buffer.concat(pending));
  ws.end();
  await once(ws, 'finish');
  return { frames, bytes: written };
}

function mkFlow(n: number, o: GenOptions, mss: number, payload: Uint8Array, rnd: () => number) {
  const c = o.loopback ? '127.0.0.1' : `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
  const s = o.loopback ? '127.0.0.2' : '192.168.200.1';
  const sport = 1024 + (n % 60000);
  let cs = (n * 7919) >>> 0;
  let ss = (n * 104729 + 1) >>> 0;
  const steps: Array<() => Uint8Array> = [];
  const C = (spec: Parameters<typeof tcpFrame>[0]) => tcpFrame({ src: c, dst: s, sport, dport: 80, ...spec });
  const S = (spec: Parameters<typeof tcpFrame>[0]) => tcpFrame({ src: s, dst: c, sport: 80, dport: sport, ...spec });
  // every step captures its numbers now (closures would otherwise see the loop's final values)
  const c0 = cs;
  const s0 = ss;
  steps.push(() => C({ seq: c0, flags: TH_SYN, options: { mss, wscale: 7, sackPermitted: true } }));
  steps.push(() => S({ seq: s0, ack: c0 + 1, flags: TH_SYN | TH_ACK, options: { mss, wscale: 7, sackPermitted: true } }));
  cs++; ss++;
  const c1 = cs;
  const s1 = ss;
  steps.push(() => C({ seq: c1, ack: s1 }));
  let left = o.perFlow;
  let sleft = Math.floor(o.perFlow / 10);
  while (left > 0 || sleft > 0) {
    if (left > 0) {
      const k = Math.min(mss, left);
      const seq = cs; cs = (cs + k) >>> 0; left -= k;
      const a = ss;
      steps.push(() => C({ seq, ack: a, flags: TH_ACK | TH_PUSH, payload: payload.subarray(0, k) }));
    }
    if (sleft > 0 && (left <= 0 || left % (10 * mss) < mss)) {
      const k = Math.min(mss, sleft);
      const seq = ss; ss = (ss + k) >>> 0; sleft -= k;
      const a = cs;
      steps.push(() => S({ seq, ack: a, flags: TH_ACK | TH_PUSH, payload: payload.subarray(0, k) }));
    }
  }
  const fc = cs; const fs = ss;
  steps.push(() => C({ seq: fc, ack: fs, flags: TH_FIN | TH_ACK }));
  steps.push(() => S({ seq: fs, ack: fc + 1, flags: TH_FIN | TH_ACK }));
  steps.push(() => C({ seq: fc + 1, ack: fs + 1 }));
  // ~1% reordering within the flow: a data segment swaps places with the next one
  for (let k = 3; k + 1 < steps.length - 3; k++) {
    if (rnd() < 0.01) {
      [steps[k], steps[k + 1]] = [steps[k + 1]!, steps[k]!];
      k++;
    }
  }
  let i = 0;
  const f = { done: false, next: (): Uint8Array | null => { if (i >= steps.length) { f.done = true; return null; } return steps[i++]!(); } };
  return f;
}
