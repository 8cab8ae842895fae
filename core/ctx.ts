import type { Iface } from './capture/session.js';
import type { Mbuf } from './mbuf/mbuf.js';
import type { Stats } from './stats.js';
import type { NetNames } from './net/net-names.js';

/** Options that change how packets are judged. */
export interface InputOptions {
  /** Drop packets whose IP/TCP/UDP checksum is wrong (default: count them and take the data). */
  readonly verifyChecksums: boolean;
}

/**
 * What the input layers see of the stack: counters, interfaces, options and the upper-layer entry
 * points. net/ and tcp/ depend on this interface only (import type), never on Stack itself.
 */
export interface Ctx {
  readonly stats: Stats;
  /** Names of the networks (VLAN stacks, tunnels) the decoders fold into lookup keys. */
  readonly nets: NetNames;
  readonly ifaces: readonly Iface[];
  readonly opts: InputOptions;
  /**
   * Hand a TCP segment up. `ipOff` is the IP header's offset in `m`'s bytes, `thOff` the TCP
   * header's; `ipv` 4 or 6; `end` the offset one past the IP datagram's last captured byte;
   * `wireEnd` where it would end had nothing been cut by the snaplen. `vlan` identifies the VLAN
   * stack the frame came in on (0: none); like a separate ifnet, it is part of every lookup.
   */
  /**
   * Hand an IP fragment to reassembly (BSD ip_reass). `ipOff` is the IP header's offset in `m`;
   * `capLen` the datagram bytes captured, `totalLen` its length on the wire.
   */
  ipReass(m: Mbuf, ipOff: number, ipv: 4 | 6, capLen: number, totalLen: number, vlan: number): void;
  tcpInput(m: Mbuf, ipOff: number, thOff: number, ipv: 4 | 6, end: number, wireEnd: number, vlan: number): void;
}
