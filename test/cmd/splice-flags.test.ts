import test from 'ava';
import { spliceSpecs } from '../../cmd/splice-flags.js';
import { SockcapError } from '../../core/errors.js';
import { cli } from '../helpers/cli.js';
import { fixture } from '../helpers/paths.js';

const base = { from: '0:c2s', to: '1:s2c', close: 'fin' as const, oobinline: true };

test('--at and --until: frame numbers or times; --until not after --at (same kind) is a usage error, a frame and a time are not compared', (t) => {
  const one = (at?: string, until?: string) => spliceSpecs({ ...base, at, until })[0]!;
  t.deepEqual([one('3', '9').at, one('3', '9').until], [{ frame: 3 }, { frame: 9 }]);
  t.deepEqual([one('1s', '2.5s').at, one('1s', '2.5s').until], [{ time: 1 }, { time: 2.5 }]);
  t.deepEqual(one(undefined, '4').until, { frame: 4 });
  t.deepEqual(one('4', undefined).at, { frame: 4 });
  // a frame number and a time: the capture decides which comes first
  t.deepEqual([one('900', '1s').at, one('900', '1s').until], [{ frame: 900 }, { time: 1 }]);
  for (const [at, until] of [['9', '3'], ['5', '5'], ['2s', '1500ms'], ['1s', '1s']] as const) {
    const e = t.throws(() => one(at, until), { instanceOf: SockcapError });
    t.is(e?.code, 'ERR_USAGE');
    t.is(e?.message, `--until ${until} is not after --at ${at}: the splice would be dissolved as it is made`);
  }
});

test('sockcap splice --until before --at: one line, exit 2, nothing on stdout', async (t) => {
  const r = await cli(['splice', fixture('splice/relay-lo.pcap'), '--from', '0:c2s', '--to', '1:s2c', '--at', '8', '--until', '6']);
  t.is(r.code, 2);
  t.is(r.stdout, '');
  t.is(r.stderr, 'sockcap: --until 6 is not after --at 8: the splice would be dissolved as it is made\n');
});
