/** Network names a run keeps at most. */
export const MAX_NET_NAMES = 65536;

/**
 * What the network numbers of a run stand for. A connection's lookup key holds its network as one
 * number (the VLAN stack and tunnels it came through, folded: ether.ts, tunnel.ts), which says
 * nothing to a reader; the decoders name each network here the first time they see it ("vlan
 * 100.200", "vxlan 5001", "vlan 10 gre key 7"), and the reports look connections' networks up. A
 * run holds a few networks, so this costs an entry per network, not a field per connection.
 */
export class NetNames {
  private readonly names = new Map<number, string>();

  constructor(
    /**
     * Names kept at most (MAX_NET_NAMES): a capture of a million GRE keys or VLAN stacks is a
     * million networks, and memory must not grow with the capture. Networks past it are named by
     * their number.
     */
    private readonly max = MAX_NET_NAMES,
  ) {}

  /** True when `net` should be named now: not named yet, and room for it (the decoders check before building a name). */
  wants(net: number): boolean {
    return this.names.size < this.max && !this.names.has(net);
  }

  set(net: number, name: string): void {
    if (this.names.size < this.max) this.names.set(net, name);
  }

  /** The name of network `net` (0: the capture's own, unnamed); its number in hex if it was never named. */
  get(net: number): string | undefined {
    if (net === 0) return undefined;
    return this.names.get(net) ?? `net ${(net >>> 0).toString(16)}`;
  }

  /** The network's name in a file name or a selector (netToken), '' for the capture's own. */
  token(net: number): string {
    return netToken(this.get(net));
  }

  /** The name of `parent` followed by `what` (a network inside another). */
  inside(parent: number, what: string): string {
    const p = this.get(parent);
    return p === undefined ? what : `${p} ${what}`;
  }
}

/**
 * A network's name as extract's file names carry it (the template's %v) and flow selectors take
 * it back: a VLAN stack alone is its ids, as tcpflow writes a VLAN's number (`100`, `30.20.10`
 * outermost first); any other name has its spaces as dashes (`vxlan-vni-5001`,
 * `vlan-100-gre-key-7`). '' for none. The names the decoders make hold only letters, digits, dots
 * and spaces, so the token is one file-name component.
 */
export function netToken(name: string | undefined): string {
  if (name === undefined) return '';
  const m = /^vlan ([\d.]+)$/.exec(name);
  return m ? m[1]! : name.replace(/ /g, '-');
}
