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

test('a socket makes its send buffer, protocol and out-of-band byte only when used, and reset() drops them', (t) => {
  const so = new Socket();
  t.is(so.sndIfMade, null);
  t.is(so.proto, null);
  t.is(so.oobByte, -1);
  so.oobByte = -1;
  so.proto = null;
  t.is(so.sndIfMade, null, 'clearing what is not there makes nothing');
  const snd = so.snd;
  t.is(so.sndIfMade, snd);
  so.oobByte = 0x41;
  const proto = { name: 'tcp' as const, send: () => null, rcvd: () => {} };
  so.proto = proto;
  t.deepEqual([so.oobByte, so.proto === proto, so.snd === snd], [0x41, true, true]);
  so.reset();
  t.deepEqual([so.sndIfMade, so.proto, so.oobByte], [null, null, -1]);
});
