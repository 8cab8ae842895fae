import test from 'ava';
import fc from 'fast-check';
import { parseSelector } from '../../core/selector.js';
import { SockcapError } from '../../core/errors.js';

test('parseSelector: any text is a selector or a usage error naming it, nothing else', (t) => {
  const parts = fc.constantFrom('010.000.000.001', '::1', '[::1]', '10.0.0.1', '.', '-', ',', ':', '>', '00080', '80', 'c2s', '-c', '12', 'x', '/');
  fc.assert(fc.property(fc.oneof(fc.string(), fc.array(parts, { maxLength: 12 }).map((a) => a.join(''))), (text) => {
    try {
      const s = parseSelector(text);
      return s.text === text && (s.stream !== null || s.ends !== null);
    } catch (e) {
      return e instanceof SockcapError && e.code === 'ERR_USAGE' && e.message.includes(`'${text}'`);
    }
  }), { numRuns: 3000 });
  t.pass();
});

test('parseSelector: file names extract writes (IPv4 padded, IPv6, -c<stream> and its -dir-k forms, a path) are that direction; tshark\'s comma form is a 4-tuple', (t) => {
  const v4 = parseSelector('out/010.000.000.001.05555-010.000.000.002.00080');
  t.deepEqual([v4.stream, v4.ends, v4.from], [null, ['10.0.0.1:5555', '10.0.0.2:80'], '10.0.0.1:5555']);
  const v6 = parseSelector('2001:db8::2.00080-2001:db8::1.40001-c7-s2c-2');
  t.deepEqual([v6.stream, v6.ends, v6.from], [7, ['[2001:db8::2]:80', '[2001:db8::1]:40001'], '[2001:db8::2]:80']);
  t.deepEqual(parseSelector('10.0.0.1:5555,10.0.0.2:80').ends, parseSelector('10.0.0.1:5555-10.0.0.2:80').ends);
  // not a name extract writes: unpadded, a port past 65535
  t.throws(() => parseSelector('10.0.0.1.05555-10.0.0.2.00080'), { instanceOf: SockcapError });
  t.throws(() => parseSelector('010.000.000.001.99999-010.000.000.002.00080'), { instanceOf: SockcapError });
});
