/** LINKTYPE_* values sockcap decodes (tcpdump.org/linktypes.html), with their libpcap names. */
export const LINKTYPE = {
  NULL: 0,
  ETHERNET: 1,
  RAW_12: 12,
  RAW_14: 14,
  RAW: 101,
  LOOP: 108,
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const;

const NAMES: Record<number, string> = {
  0: 'NULL',
  1: 'EN10MB',
  12: 'RAW',
  14: 'RAW',
  101: 'RAW',
  108: 'LOOP',
  113: 'LINUX_SLL',
  228: 'IPV4',
  229: 'IPV6',
  276: 'LINUX_SLL2',
};

/** libpcap's name for a link type, or `LINKTYPE_<n>` for one sockcap does not decode. */
export function linktypeName(lt: number): string {
  return NAMES[lt] ?? `LINKTYPE_${lt}`;
}

/** True when sockcap has a decoder for this link type. */
export function linktypeSupported(lt: number): boolean {
  return lt in NAMES;
}
