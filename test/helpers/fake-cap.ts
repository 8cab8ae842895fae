import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A stand-in for the `cap` binding, for SOCKCAP_CAP_MODULE: one device, `fake0`, whose open()
 * delivers the frames of the classic little-endian pcap named by FAKE_CAP_PCAP, a few per turn of
 * the event loop, each copied into the caller's buffer as the binding copies libpcap's (the
 * buffer is reused, the event gives the length), then waits, open, until closed. Live capture's
 * path from the binding on can then be tested without root or traffic.
 */
const SOURCE = `'use strict';
const { readFileSync } = require('node:fs');
class Cap {
  static deviceList() { return [{ name: 'fake0', description: 'frames of ' + process.env.FAKE_CAP_PCAP, addresses: [] }]; }
  open(device, filter, bufSize, buffer) {
    const f = readFileSync(process.env.FAKE_CAP_PCAP);
    const frames = [];
    for (let o = 24; o + 16 <= f.length; ) {
      const len = f.readUInt32LE(o + 8);
      frames.push(f.subarray(o + 16, o + 16 + len));
      o += 16 + len;
    }
    let i = 0;
    const turn = () => {
      for (let k = 0; k < 3 && i < frames.length && !this.closed; k++, i++) {
        frames[i].copy(buffer, 0);
        this.onPacket(frames[i].length, false);
      }
      if (i < frames.length && !this.closed) setImmediate(turn);
    };
    setImmediate(turn);
    // an open capture keeps the process alive, as the binding's poll handle does (FAKE_CAP_GONE:
    // as if that handle had stopped, an interface that went away)
    if (!process.env.FAKE_CAP_GONE) this.alive = setInterval(() => {}, 1 << 30);
    return 'ETHERNET';
  }
  on(ev, fn) { if (ev === 'packet') this.onPacket = fn; }
  close() { this.closed = true; clearInterval(this.alive); }
}
module.exports = { Cap };
`;

/** Writes the stand-in binding into `dir`; returns its path (for SOCKCAP_CAP_MODULE). */
export function fakeCap(dir: string): string {
  const path = join(dir, 'fake-cap.cjs');
  writeFileSync(path, SOURCE);
  return path;
}
