/**
 * The minimal reader: the JavaScript bound for reading a classic pcap. It reads 4 MiB chunks with
 * readSync and walks the record headers, touching nothing else. Prints frames and bytes.
 */
import { closeSync, openSync, readSync } from 'node:fs';

const fd = openSync(process.argv[2]!, 'r');
const CH = 4 << 20;
let buf = Buffer.allocUnsafe(CH);
let have = readSync(fd, buf, 0, CH, null);
let pos = 24;
let frames = 0;
let bytes = 0;
for (;;) {
  if (have - pos < 16 || have - pos < 16 + buf.readUInt32LE(pos + 8)) {
    const rest = have - pos;
    const next = Buffer.allocUnsafe(CH);
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
