import { statSync } from 'node:fs';
import type { CaptureSession } from '../core/capture/session.js';

/**
 * A progress line on stderr for runs longer than a second, only when stderr is a terminal.
 * Reads the session's counters; the core never sees a clock.
 */
export function startProgress(session: CaptureSession, files: readonly string[], quiet: boolean): { tick: () => void; stop: () => void } {
  if (quiet || !process.stderr.isTTY) return { tick: () => {}, stop: () => {} };
  let total = 0;
  for (const f of files) {
    try {
      if (f !== '-') total += statSync(f).size;
    } catch {
      /* reported by the reader */
    }
  }
  const t0 = process.hrtime.bigint();
  let shown = false;
  let last = 0n;
  const tick = () => {
    const now = process.hrtime.bigint();
    if (now - t0 < 1_000_000_000n || now - last < 250_000_000n) return;
    last = now;
    shown = true;
    const secs = Number(now - t0) / 1e9;
    const pct = total ? ` ${Math.min(100, (100 * session.bytesInFlight) / total).toFixed(0)}%` : '';
    process.stderr.write(`\rreplay:${pct} ${session.frames.toLocaleString('en-US')} frames, ${(session.bytesInFlight / secs / 1e6).toFixed(0)} MB/s `);
  };
  return { tick, stop: () => { if (shown) process.stderr.write('\r\x1b[K'); } };
}
