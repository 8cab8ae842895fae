/**
 * The minimal reader: the JavaScript bound for reading a classic pcap. It reads 4 MiB chunks with
 * readSync and walks the record headers, touching nothing else. Prints frames and bytes.
 *
 * By default it reads into two buffers it reuses (the bound: no memory is faulted in after the
 * first two chunks). With `--fresh` every chunk is a new allocation, as sockcap's readers made
 * before they took chunks from a zone: the difference is the kernel's cost of faulting in and
 * zeroing fresh memory (about 1 s per GiB on the benchmark machine).
 */
import { closeSync, openSync, readSync } from 'node:fs';

const fresh = process.argv.includes('--fresh');
const file = process.argv.slice(2).find((a) => a !== '--fresh')!;
const fd = openSync(file, 'r');
const CH = 4 << 20;
const pool = [Buffer.allocUnsafeSlow(CH), Buffer.allocUnsafeSlow(CH)];
let turn = 0;
let buf = pool[0]!;
let have = readSync(fd, buf, 0, CH, null);
let pos = 24;
let frames = 0;
let bytes = 0;
for (;;) {
  if (have - pos < 16 || have - pos < 16 + buf.readUInt32LE(pos + 8)) {
    const rest = have - pos;
    const next = fresh ? Buffer.allocUnsafeSlow(CH) : pool[(turn ^= 1)]!;
    buf.copy(next, 0, pos, have);
    const n = readSync(fd, next, rest, CH - rest, null);
    if (n === 0) break;
    buf = next;
    have = rest + n;
    pos = 0;
    continue;
  }
  const caplen = buf.readUInt32LE(pos + 8);
  frames++;
  bytes += caplen;
  pos += 16 + caplen;
}
closeSync(fd);
console.log(JSON.stringify({ frames, bytes }));
