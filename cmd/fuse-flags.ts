import * as Flags from '@oclif/core/flags';
import { SockcapError } from '../core/errors.js';
import { parseSelector, selects } from '../core/selector.js';
import { type FuseRecord, TcpFuse } from '../core/tcp/tcp-fuse.js';
import { parseIp } from '../core/wire/bytes.js';

/** Flags shared by `fuse` and `replay --fuse`. */
export const fuseFlags = {
  local: Flags.string({ summary: 'addresses of this host besides loopback (comma-separated, repeatable): connections between them fuse', multiple: true }),
  'fuse-seq': Flags.option({ options: ['freeze', 'advance'] as const, default: 'freeze' as const, summary: 'freeze: fused bytes take no sequence space (FreeBSD); advance: they do (Solaris)' })(),
  packetize: Flags.string({ summary: 'never fuse this connection (stream index, 4-tuple, or a file name extract wrote; repeatable)', multiple: true }),
};

/** The fusing model the flags ask for; bad addresses or selectors are usage errors. */
export function makeFuse(f: { local?: string[]; 'fuse-seq': 'freeze' | 'advance'; packetize?: string[] }, onRecord?: (r: FuseRecord) => void): TcpFuse {
  const local = (f.local ?? []).flatMap((s) => s.split(',')).filter(Boolean).map((a) => {
    const ip = parseIp(a.trim());
    if (!ip) throw new SockcapError('ERR_USAGE', `--local: '${a}' is not an IPv4 or IPv6 address`);
    return ip;
  });
  const sels = (f.packetize ?? []).map(parseSelector);
  return new TcpFuse({ local, seq: f['fuse-seq'], packetize: sels.length ? (c, nets) => sels.some((s) => selects(s, c, nets)) : undefined, onRecord });
}
