import { LiveCapture, type LiveOptions } from '../core/capture/live.js';
import type { CaptureSession } from '../core/capture/session.js';
import type { Stack } from '../core/stack.js';

/** Open a live capture with the wall clock anchored once (hrtime from then on: monotonic, ns). */
export function openLive(o: Omit<LiveOptions, 'clock'>, session: CaptureSession): LiveCapture {
  const base = BigInt(Date.now()) * 1_000_000n;
  const hr0 = process.hrtime.bigint();
  return LiveCapture.open({ ...o, clock: () => base + (process.hrtime.bigint() - hr0) }, session);
}

const num = (n: number) => n.toLocaleString('en-US');

/**
 * The live table on stderr, redrawn every second: totals, drops, the queue, socket-buffer
 * occupancy, and the busiest connections in the table.
 */
export function startLiveTable(stack: Stack, cap: LiveCapture, quiet: boolean): { stop: () => void; clear: () => void } {
  if (quiet) return { stop: () => {}, clear: () => {} };
  let drawn = 0;
  const draw = () => {
    const rows: Array<[number, string]> = [];
    let sb = 0;
    for (const [, c] of stack.pcbs.entries()) {
      const c2s = c.server.so.rcv.total;
      const s2c = c.client.so.rcv.total;
      sb += c.server.so.rcv.cc + c.client.so.rcv.cc;
      rows.push([c2s + s2c, `  ${String(c.stream).padStart(5)}  ${c.clientName.padEnd(22)} ${c.serverName.padEnd(22)} ${c.server.state.padEnd(11)} ${num(c2s).padStart(13)} ${num(s2c).padStart(13)}`]);
    }
    rows.sort((a, b) => b[0] - a[0]);
    const st = stack.stats;
    const lines = [
      `live: ${num(st.frames)} frames, ${(st.bytes / 1e6).toFixed(1)} MB, ${num(stack.pcbs.size)} connections, ${num(sb)} bytes in socket buffers, queue ${num(cap.queued)}, dropped ${num(cap.stats.dropped)}`,
      ...rows.slice(0, 8).map((r) => r[1]),
    ];
    process.stderr.write(`${drawn ? `\x1b[${drawn}A` : ''}\x1b[J${lines.join('\n')}\n`);
    drawn = lines.length;
  };
  const t = setInterval(draw, 1000);
  t.unref();
  // erase it (other output is about to go to the terminal): drawn afresh at the next tick
  const clear = () => {
    if (drawn) process.stderr.write(`\x1b[${drawn}A\x1b[J`);
    drawn = 0;
  };
  return { stop: () => { clearInterval(t); clear(); }, clear };
}
