import test from 'ava';
import { Mbuf } from '../../core/mbuf/mbuf.js';
import { sbappendstream, sbcheck, sbdrop, sbspace } from '../../core/socket/sockbuf.js';
import { MSG_PEEK, MSG_WAITALL, Socket, soreceive_stream } from '../../core/socket/socket.js';

const mb = (s: string) => { const b = Buffer.from(s); return new Mbuf(b, 0, b.length); };
const text = (r: { chunk: Uint8Array[] }) => r.chunk.map((v) => Buffer.from(v).toString()).join('');

function sock(...parts: string[]): Socket {
  const so = new Socket();
  so.connected = true;
  for (const p of parts) sbappendstream(so.rcv, mb(p));
  sbcheck(so.rcv);
  return so;
}

test('soreceive_stream returns chunks sized to the read, crossing mbufs, as views', (t) => {
  const so = sock('abc', 'defg', 'hi');
  const r = soreceive_stream(so, 5);
  t.is(r.len, 5);
  t.is(text(r), 'abcde');
  t.is(r.chunk.length, 2);
  t.is(so.rcv.cc, 4);
  sbcheck(so.rcv);
  t.is(text(soreceive_stream(so, 100)), 'fghi');
  t.is(soreceive_stream(so, 1).error, 'EAGAIN');
});

test('MSG_PEEK leaves data and error in place', (t) => {
  const so = sock('xyz');
  t.is(text(soreceive_stream(so, 10, MSG_PEEK)), 'xyz');
  t.is(so.rcv.cc, 3);
  so.error = 'ECONNRESET';
  t.is(text(soreceive_stream(so, 10)), 'xyz', 'data first, then the error');
  t.is(soreceive_stream(so, 10, MSG_PEEK).error, 'ECONNRESET');
  t.is(soreceive_stream(so, 10).error, 'ECONNRESET');
  t.is(so.error as string | null, null, 'read clears it');
});

test('MSG_WAITALL waits for the full request, or EOF', (t) => {
  const so = sock('ab');
  t.is(soreceive_stream(so, 4, MSG_WAITALL).error, 'EAGAIN');
  sbappendstream(so.rcv, mb('cd'));
  t.is(text(soreceive_stream(so, 4, MSG_WAITALL)), 'abcd');
  sbappendstream(so.rcv, mb('e'));
  so.cantRcvMore = true;
  t.is(text(soreceive_stream(so, 4, MSG_WAITALL)), 'e');
  t.true(soreceive_stream(so, 4).eof);
});

test('resid 0 is EINVAL; never connected is ENOTCONN; sbspace and sbdrop account', (t) => {
  t.is(soreceive_stream(sock('a'), 0).error, 'EINVAL');
  t.is(soreceive_stream(new Socket(), 1).error, 'ENOTCONN');
  const so = sock('hello', 'world');
  t.is(sbspace(so.rcv), so.rcv.hiwat - 10);
  sbdrop(so.rcv, 7);
  sbcheck(so.rcv);
  t.is(text(soreceive_stream(so, 10)), 'rld');
  t.throws(() => sbdrop(so.rcv, 1), { instanceOf: RangeError });
});

test('a socket makes its send buffer, protocol, splice state, error and urgent data only when used, and reset() drops them', (t) => {
  const so = new Socket();
  t.deepEqual([so.sndIfMade, so.proto, so.sp, so.error, so.oobmark, so.oobByte], [null, null, null, null, -1, -1]);
  so.oobByte = -1;
  so.oobmark = -1;
  so.proto = null;
  so.sp = null;
  so.error = null;
  t.is((so as unknown as { rare: unknown }).rare, null, 'clearing what is not there makes nothing');
  const snd = so.snd;
  t.is(so.sndIfMade, snd);
  t.not(snd, so.rcv, 'the send buffer is a buffer of its own');
  so.oobByte = 0x41;
  so.oobmark = 7;
  so.error = 'ECONNRESET';
  const proto = { name: 'tcp' as const, send: () => null, rcvd: () => {} };
  so.proto = proto;
  t.deepEqual([so.oobByte, so.oobmark, so.error, so.proto === proto, so.snd === snd], [0x41, 7, 'ECONNRESET', true, true]);
  so.error = null;
  t.is(so.error, null);
  sbappendstream(so.rcv, mb('abc'));
  so.rcv.lowat = 100;
  so.reset();
  t.deepEqual([so.sndIfMade, so.proto, so.oobByte, so.oobmark, so.error], [null, null, -1, -1, null]);
  t.deepEqual([so.rcv.cc, so.rcv.total, so.rcv.mb, so.rcv.lowat, so.rcv.hiwat], [0, 0, null, 1, 65536], 'the embedded receive buffer is as new');
});

test('the receive buffer is embedded in the socket (BSD so_rcv): what is appended to it is read from it, and sbcheck holds', (t) => {
  const a = sock('hello ', 'world');
  const b = sock('other');
  t.is(a.rcv.cc, 11);
  t.is(b.rcv.cc, 5, 'each socket its own buffer');
  t.is(text(soreceive_stream(a, 100)), 'hello world');
  t.is(a.rcv.cc, 0);
  sbcheck(a.rcv);
  t.is(b.rcv.cc, 5);
});
