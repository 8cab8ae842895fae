/** `hex` template tag: bytes from pasted `tcpdump -xx` hex (whitespace ignored). */
export function hex(strings: TemplateStringsArray, ...values: unknown[]): Uint8Array {
  const s = String.raw(strings, ...values).replace(/\s+/g, '');
  if (s.length % 2) throw new Error(`odd hex length: ${s}`);
  return Uint8Array.from(Buffer.from(s, 'hex'));
}
