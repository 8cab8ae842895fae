import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileChunks } from '../../core/capture/chunks.js';
import { MAX_IFACES } from '../../core/capture/pcapng-reader.js';
import { ARENA_CHUNKS } from '../../core/capture/zone.js';
import { promisify } from 'node:util';
import { fixture, corpus, CORPUS, HAS_CORPUS, HAS_TSHARK } from '../helpers/paths.js';
import { readAll } from '../helpers/read.js';
import { chunked, pcapFile, tcpFrame } from '../helpers/build.js';
import { when } from '../helpers/skip.js';
import { cli } from '../helpers/cli.js';

const run = promisify(execFile);

/** Files tshark cannot read: what sockcap must say instead, and how many frames come first. */
const MALFORMED: Record<string, { code: string; offset: number; frames: number; why: string }> = {
  'node-pcap-parser__malformed.pcap': { code: 'ERR_BAD_MAGIC', offset: 0, frames: 0, why: '30 bytes of text' },
  'suricata-verify__bug-6875-01__fuzz.pcap': { code: 'ERR_BAD_CAPLEN', offset: 228, frames: 1,
    why: 'record 2 claims caplen 1409179648 (tshark guesses a pcap variant and reads 2 frames; the second is garbage)' },
  'suricata-verify__bug-1450-04__tls_DER-incomplete-header.pcap': { code: 'ERR_BAD_CAPLEN', offset: 5035, frames: 6,
    why: 'record 7 claims caplen 4325376 > snaplen 262144' },
  'suricata-verify__http-mime-truncated__input.pcap': { code: 'ERR_TRUNCATED_RECORD', offset: 2715459, frames: 2696,
    why: 'file ends 1 byte into a record header' },
  'libpcap__pcap-invalid-version-1.pcap': { code: 'ERR_BAD_VERSION', offset: 4, frames: 0, why: 'pcap version 1.4' },
  'libpcap__pcapng-invalid-vers-1.pcapng': { code: 'ERR_BAD_VERSION', offset: 12, frames: 0, why: 'SHB version 0.1' },
  'libpcap__shb-option-too-long.pcapng': { code: 'ERR_BAD_BLOCK', offset: 0, frames: 0, why: 'SHB option runs past its block' },
  'libpcap__linktype-reserved-field-not-zero.pcap': { code: 'ERR_BAD_LINKTYPE', offset: 20, frames: 0, why: 'reserved link-type bits set' },
  'gopacket__le__test901.pcapng': { code: 'ERR_BAD_VERSION', offset: 492, frames: 1, why: 'second section has SHB version 2.0' },
};

const corpusFiles = HAS_CORPUS ? readdirSync(CORPUS).filter((f) => /\.pcap(ng)?$/.test(f)) : [];

when(HAS_CORPUS && HAS_TSHARK, 'needs ../shared/corpus and tshark')('every corpus capture tshark reads: same frame count', async (t) => {
  const good = corpusFiles.filter((f) => !(f in MALFORMED));
  t.true(good.length > 60);
  for (const f of good) {
    const { stdout } = await run('tshark', ['-r', corpus(f), '-T', 'fields', '-e', 'frame.number'], { maxBuffer: 1 << 26 });
    const tsharkFrames = stdout.split('\n').filter(Boolean).length;
    const { frames, error, session } = await readAll({ name: corpus(f) });
    t.is(error, null, `${f}: ${error?.message}`);
    // pcapng custom blocks are frames to Wireshark but not packets: they take a frame number only
    t.is(frames.length + session.files[0]!.customBlocks, tsharkFrames, f);
    t.is(session.frames, tsharkFrames, `${f}: last frame number`);
  }
});

for (const [f, want] of Object.entries(MALFORMED)) {
  when(HAS_CORPUS, 'needs ../shared/corpus')(`malformed ${f}: ${want.code} at ${want.offset} after ${want.frames} frames (${want.why})`, async (t) => {
    const { frames, error } = await readAll({ name: corpus(f) });
    t.is(frames.length, want.frames);
    t.is(error?.code, want.code);
    t.is(error?.offset, want.offset);
    t.regex(error!.message, new RegExp(`${f.replace(/[.]/g, '\\.')}: .* at byte offset ${want.offset}$`));
  });
}

test('a record straddling read chunks reads the same at every chunk size', async (t) => {
  const bytes = readFileSync(fixture('tcp/smtp.pcap'));
  const whole = await readAll({ name: 'smtp' , path: fixture('tcp/smtp.pcap') });
  t.is(whole.frames.length, 60);
  for (const size of [1, 7, 16, 17, 100, 1514, 4096]) {
    const r = await readAll({ name: `chunks of ${size}`, stream: chunked(bytes, size) });
    t.is(r.error, null);
    t.deepEqual(r.frames, whole.frames, `chunk size ${size}`);
    t.true(r.session.straddleBytes > 0);
  }
  t.is(whole.session.straddleBytes, 0, 'a file read in big chunks copies nothing');
});

test('gzip input is detected by magic and reads like the plain file', async (t) => {
  const plain = await readAll({ name: fixture('tcp/smtp.pcap') });
  const gz = await readAll({ name: fixture('tcp/smtp.pcap.gz') });
  t.is(gz.error, null);
  t.true(gz.session.files[0]!.gzip);
  t.deepEqual(gz.frames, plain.frames);
});

test('a gzip stream cut short: frames before the cut, then ERR_GZIP naming the file', async (t) => {
  const gz = readFileSync(fixture('tcp/smtp.pcap.gz'));
  const r = await readAll({ name: 'cut.gz', stream: chunked(gz.subarray(0, gz.length - 200), 512) });
  t.true(r.frames.length > 40 && r.frames.length < 60);
  t.regex(r.error!.message, /^cut\.gz: /);
  t.true(['ERR_GZIP', 'ERR_TRUNCATED_RECORD'].includes(r.error!.code!));
});

test('truncation at every byte: all complete records first, then an error at the cut record', async (t) => {
  const frames = [0, 1, 2].map((i) => tcpFrame({ seq: i * 10, payload: 'x'.repeat(5 + i) }));
  const file = pcapFile(frames.map((data) => ({ data })));
  const starts = [24];
  for (const f of frames) starts.push(starts.at(-1)! + 16 + f.length);
  for (let cut = 0; cut < file.length; cut++) {
    const r = await readAll({ name: 't', stream: chunked(file.subarray(0, cut), 64) });
    const complete = starts.filter((s, i) => i > 0 && s <= cut).length;
    t.is(r.frames.length, complete, `cut at ${cut}`);
    if (cut === starts[complete]) t.is(r.error, null, `clean end at ${cut}`);
    else {
      t.truthy(r.error, `cut at ${cut}`);
      t.is(r.error!.offset, cut < 24 ? 0 : starts[complete], `offset at cut ${cut}`);
    }
  }
});

test('classic pcap: both byte orders, µs and ns, timestamps exact', async (t) => {
  const data = tcpFrame({ payload: 'hello' });
  for (const bigEndian of [false, true])
    for (const nanos of [false, true]) {
      const frac = nanos ? 999_999_999 : 999_999;
      const file = pcapFile([{ data, tsSec: 4294967295, tsFrac: frac }], { bigEndian, nanos });
      const r = await readAll({ name: 'x', stream: chunked(file, 1 << 20) });
      t.is(r.frames[0]!.tsSec, 4294967295);
      t.is(r.frames[0]!.tsNsec, nanos ? 999_999_999 : 999_999_000);
      t.is(r.frames[0]!.hex, Buffer.from(data).toString('hex'));
      t.is(r.session.files[0]!.nanos, nanos);
      t.is(r.session.files[0]!.bigEndian, bigEndian);
    }
});

test('fixtures: big-endian ns, SLL ns, multi-section and multi-interface pcapng', async (t) => {
  const be = await readAll({ name: fixture('link/nanosecs-big-endian.pcap') });
  t.true(be.session.files[0]!.bigEndian && be.session.files[0]!.nanos);
  const sll = await readAll({ name: fixture('link/sll-nano.pcap') });
  t.is(sll.frames[0]!.linktype, 113);
  t.not(sll.frames[0]!.tsNsec % 1000, 0, 'nanosecond digits survive');
  const three = await readAll({ name: fixture('link/three-sections.pcapng') });
  t.is(three.error, null);
  t.is(three.session.files[0]!.sections, 3);
  t.is(three.session.files[0]!.customBlocks, 3);
  t.deepEqual(new Set(three.frames.map((f) => f.linktype)), new Set([1, 0]));
  const many = await readAll({ name: fixture('link/many-interfaces.pcapng') });
  t.is(many.session.ifaces.length, 11);
  t.deepEqual(new Set(many.frames.map((f) => f.linktype)), new Set([1, 0]));
});

test('several files in one run: frame numbers and interfaces continue', async (t) => {
  const r = await readAll([{ name: fixture('tcp/smtp.pcap') }, { name: fixture('link/many-interfaces.pcapng') }]);
  t.is(r.error, null);
  t.deepEqual(r.frames.map((f) => f.frameNo), r.frames.map((_, i) => i + 1));
  t.is(r.session.ifaces.length, 12);
  t.is(r.session.files.length, 2);
});

test('a missing file is ERR_OPEN naming it', async (t) => {
  const r = await readAll({ name: '/nonexistent/x.pcap' });
  t.is(r.error?.code, 'ERR_OPEN');
  t.regex(r.error!.message, /^\/nonexistent\/x\.pcap: cannot open/);
});

test('pcapng: block length not a multiple of 4, too small, and a packet for an undeclared interface', async (t) => {
  const base = readFileSync(fixture('link/many-interfaces.pcapng'));
  const shbLen = base.readUInt32LE(4);
  for (const [len, re] of [[shbLen + 2, /not a multiple of 4/], [8, /too small/]] as const) {
    const b = Buffer.from(base);
    b.writeUInt32LE(len, shbLen + 4); // the first IDB's length
    const r = await readAll({ name: 'p', stream: chunked(b, 1 << 20) });
    t.is(r.error?.code, 'ERR_BAD_BLOCK');
    t.is(r.error?.offset, shbLen);
    t.regex(r.error!.message, re);
  }
});

test('pcapng: a packet for an undeclared interface after good ones: each good frame delivered once, then ERR_BAD_BLOCK at its block, at any chunk size', async (t) => {
  const base = readFileSync(fixture('link/many-interfaces.pcapng'));
  // the offsets of the file's enhanced packet blocks (type 6)
  const epbs: number[] = [];
  for (let o = 0; o < base.length; o += base.readUInt32LE(o + 4)) if (base.readUInt32LE(o) === 6) epbs.push(o);
  t.true(epbs.length >= 4);
  for (const k of [1, 2, epbs.length - 1]) {
    const b = Buffer.from(base);
    b.writeUInt32LE(60000, epbs[k]! + 8); // interface 60000: no IDB describes it
    for (const chunk of [7, 64, 1 << 20]) {
      const r = await readAll({ name: 'p', stream: chunked(b, chunk) });
      t.is(r.error?.code, 'ERR_BAD_BLOCK', `packet ${k}, chunks of ${chunk}`);
      t.is(r.error?.offset, epbs[k]);
      t.regex(r.error!.message, /packet refers to interface 60000, which the section has not described/);
      // the walker writes frames into one array it reuses: a block that fails must not hand on a
      // stale entry of it (a frame of the batch before, delivered twice)
      t.deepEqual(r.frames.map((f) => f.frameNo), Array.from({ length: k }, (_, i) => i + 1), `packet ${k}, chunks of ${chunk}`);
    }
  }
});

/** A little-endian pcapng interface description block without options: Ethernet, this snaplen. */
function idbBlock(snaplen: number): Buffer {
  const idb = Buffer.alloc(20);
  idb.writeUInt32LE(1, 0);
  idb.writeUInt32LE(20, 4);
  idb.writeUInt16LE(1, 8);
  idb.writeUInt32LE(snaplen, 12);
  idb.writeUInt32LE(20, 16);
  return idb;
}

/** A little-endian pcapng section header block without options (version 1.0, length unknown). */
function shbBlock(): Buffer {
  const shb = Buffer.alloc(28);
  shb.writeUInt32LE(0x0a0d0d0a, 0);
  shb.writeUInt32LE(28, 4);
  shb.writeUInt32LE(0x1a2b3c4d, 8);
  shb.writeUInt16LE(1, 12);
  shb.writeBigInt64LE(-1n, 16);
  shb.writeUInt32LE(28, 24);
  return shb;
}

test('pcapng: a run may describe MAX_IFACES interfaces (a packet on the last is read); one more, in one section or in sections of their own, is a bad block at its offset, before memory grows with a file of nothing but interface blocks', async (t) => {
  t.is(MAX_IFACES, 65536);
  const shb = shbBlock();
  const idb = idbBlock(65535);
  const frame = Buffer.from(tcpFrame({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2, seq: 1, flags: 2 }));
  const epb = Buffer.alloc(32 + ((frame.length + 3) & ~3));
  epb.writeUInt32LE(6, 0);
  epb.writeUInt32LE(epb.length, 4);
  epb.writeUInt32LE(MAX_IFACES - 1, 8);
  epb.writeUInt32LE(frame.length, 20);
  epb.writeUInt32LE(frame.length, 24);
  frame.copy(epb, 28);
  epb.writeUInt32LE(epb.length, epb.length - 4);
  const read = (parts: Buffer[]) => readAll({ name: 'p', stream: chunked(Buffer.concat(parts), 1 << 20) });
  const most = await read([shb, ...Array(MAX_IFACES).fill(idb), epb]);
  t.is(most.error, null);
  t.is(most.frames.length, 1);
  t.is(most.session.ifaces.length, MAX_IFACES);
  const over = await read([shb, ...Array(MAX_IFACES + 1).fill(idb), epb]);
  t.is(over.error?.code, 'ERR_BAD_BLOCK');
  t.is(over.error?.offset, 28 + 20 * MAX_IFACES);
  t.regex(over.error!.message, /more than 65,536 interfaces in the run/);
  const sections = await read(Array(MAX_IFACES + 1).fill(Buffer.concat([shb, idb])));
  t.is(sections.error?.code, 'ERR_BAD_BLOCK');
  t.is(sections.error?.offset, 48 * MAX_IFACES + 28);
});

test('pcapng: an interface name (if_name) is kept to its first 256 bytes, whatever the option holds', async (t) => {
  const shb = shbBlock();
  const name = 'eth0-'.padEnd(60000, 'x');
  const idb = Buffer.alloc(20 + 4 + 60000 + 4);
  idb.writeUInt32LE(1, 0);
  idb.writeUInt32LE(idb.length, 4);
  idb.writeUInt16LE(1, 8);
  idb.writeUInt32LE(65535, 12);
  idb.writeUInt16LE(2, 16); // if_name
  idb.writeUInt16LE(60000, 18);
  idb.write(name, 20, 'latin1');
  idb.writeUInt32LE(idb.length, idb.length - 4);
  const r = await readAll({ name: 'p', stream: chunked(Buffer.concat([shb, idb]), 1 << 20) });
  t.is(r.error, null);
  t.is(r.session.ifaces[0]!.name, name.slice(0, 256));
});

test('fileChunks reads ahead and still yields the file exactly, in order, at any size around the chunk size', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sockcap-chunks-'));
  try {
    for (const size of [0, 1, 999, 1000, 1001, 2999, 3000, 3001, 10_500]) {
      const data = Buffer.alloc(size);
      for (let i = 0; i < size; i++) data[i] = (i * 131) & 0xff;
      const p = join(dir, `f${size}`);
      writeFileSync(p, data);
      for (const ahead of [1, 3]) {
        const parts: Buffer[] = [];
        for await (const c of fileChunks(p, 1000, ahead)) parts.push(Buffer.from(c));
        t.true(Buffer.concat(parts).equals(data), `size ${size} ahead ${ahead}`);
        t.true(parts.every((c, i) => c.length === 1000 || i === parts.length - 1), 'only the last chunk is short');
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Feed `data` into the FIFO at `path` from another process, in pieces smaller than a pipe's buffer. */
function feedFifo(path: string, data: Buffer): Promise<unknown> {
  // a shell reading the bytes from a file and writing them with dd in 1,000-byte blocks
  const src = `${path}.src`;
  writeFileSync(src, data);
  return run('sh', ['-c', 'dd if="$1" of="$2" bs=1000 2>/dev/null', 'sh', src, path]);
}

test('fileChunks reads a FIFO (no offsets: ESPIPE) in order, every chunk full but the last, with any read-ahead', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sockcap-fifo-'));
  try {
    for (const size of [0, 999, 1000, 70_000, 300_001]) {
      const data = Buffer.alloc(size);
      for (let i = 0; i < size; i++) data[i] = (i * 131 + (i >> 8)) & 0xff;
      for (const ahead of [1, 3]) {
        const p = join(dir, `fifo${size}-${ahead}`);
        await run('mkfifo', [p]);
        const fed = feedFifo(p, data);
        const parts: Buffer[] = [];
        for await (const c of fileChunks(p, 100_000, ahead)) parts.push(Buffer.from(c));
        await fed;
        t.true(Buffer.concat(parts).equals(data), `size ${size} ahead ${ahead}`);
        t.true(parts.every((c, i) => c.length === 100_000 || i === parts.length - 1), 'only the last chunk is short');
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a capture read through a pipe (a FIFO, as `<(tcpdump -w -)` gives) reads as the file does, gzip too', async (t) => {
  const { cli } = await import('../helpers/cli.js');
  const dir = mkdtempSync(join(tmpdir(), 'sockcap-fifo-'));
  try {
    for (const name of ['tcp/smtp.pcap', 'tcp/smtp.pcap.gz', 'tcp/three-http-streams.pcap']) {
      const p = join(dir, 'capture');
      await run('mkfifo', [p]);
      const fed = feedFifo(p, readFileSync(fixture(name)));
      const piped = await cli(['replay', p, '--json', '--hash']);
      await fed;
      rmSync(p);
      t.is(piped.code, 0, piped.stderr);
      const file = await cli(['replay', fixture(name), '--json', '--hash']);
      // the file list, and the arena: sized to a regular file, every slot for a pipe (its size is unknown)
      const norm = (s: string) => {
        const r = JSON.parse(s);
        return JSON.stringify({ ...r, files: undefined, chunks: { ...r.chunks, arenaSlots: undefined } });
      };
      t.is(norm(piped.stdout), norm(file.stdout), name);
      if (!name.endsWith('.gz')) t.is(JSON.parse(piped.stdout).chunks.arenaSlots, ARENA_CHUNKS, `${name}: a pipe gets every arena slot`);
      t.true(JSON.parse(piped.stdout).frames > 0);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the snaplen a file declares is in its FileInfo: pcap\'s header, pcapng\'s smallest over its interfaces (0, no limit, left out), null when none declares one; replay shows it', async (t) => {
  const read = async (parts: Buffer[]) => (await readAll({ name: 'p', stream: chunked(Buffer.concat(parts), 1 << 20) })).session.files[0]!.snaplen;
  t.is(await read([shbBlock(), idbBlock(0), idbBlock(1500), idbBlock(96), idbBlock(0)]), 96);
  t.is(await read([shbBlock(), idbBlock(0), idbBlock(0)]), null);
  t.is(await read([shbBlock(), idbBlock(200), shbBlock(), idbBlock(150)]), 150, 'over every section of the file');
  const frame = tcpFrame({ payload: 'x'.repeat(20) });
  t.is(await read([pcapFile([{ data: frame }], { snaplen: 40 })]), 40);
  const r = await cli(['replay', fixture('link/three-sections.pcapng')]);
  t.regex(r.stdout, /three-sections\.pcapng: pcapng, big-endian, \S*s, 3 section\(s\), snaplen 96, 8 frames/);
  const j = JSON.parse((await cli(['replay', fixture('tcp/smtp.pcap'), '--json'])).stdout);
  t.is(j.files[0].snaplen, 65535);
});
