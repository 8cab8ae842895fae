/**
 * Drop reasons (DESIGN.md channel 1): a bad or unwanted packet is data, counted under a
 * `layer.reason` name, never an exception. Names follow BSD's tcpstat/ipstat fields where one exists.
 */
export type DropReason =
  | 'link.unsupported'
  | 'ether.short'
  | 'ether.unsupported'
  | 'vlan.short'
  | 'pppoe.short'
  | 'pppoe.badver'
  | 'pppoe.unsupported'
  | 'sll.short'
  | 'sll2.short'
  | 'null.short'
  | 'null.unsupported'
  | 'ip.short'
  | 'ip.badvers'
  | 'ip.badhlen'
  | 'ip.badlen'
  | 'ip.badsum'
  | 'ip.truncated'
  | 'ip6.short'
  | 'ip6.badvers'
  | 'ip6.badlen'
  | 'ip6.badext'
  | 'ip6.jumbo'
  | 'ip6.truncated'
  | 'ip.fragment'
  | 'ip.fragtruncated'
  | 'ip.fragbad'
  | 'ip.fragdropped'
  | 'ip.fragtimeout'
  | 'tcp.short'
  | 'tcp.truncated'
  | 'tcp.badoff'
  | 'tcp.badsum'
  | 'udp.short'
  | 'udp.badlen'
  | 'udp.badsum'
  | 'gre.short'
  | 'gre.unsupported'
  | 'erspan.short'
  | 'vxlan.short'
  | 'geneve.short'
  | 'gtp.short'
  | 'gtp.bad'
  | 'l2tp.short'
  | 'teredo.short'
  | 'ppp.short'
  | 'tunnel.depth'
  | 'mpls.short'
  | 'mpls.unsupported';

/** True when a decoder's result is a drop reason rather than a parsed value. */
export function isDrop(x: unknown): x is DropReason {
  return typeof x === 'string';
}
