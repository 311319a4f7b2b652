/** IP addresses from wire bytes to text (shared by the decoders and the capture reader). */

const BYTE_STR: string[] = Array.from({ length: 256 }, (_, i) => String(i));

/** Dotted IPv4 text. */
export function ipv4(b: Uint8Array, o: number): string {
  return `${BYTE_STR[b[o]!]}.${BYTE_STR[b[o + 1]!]}.${BYTE_STR[b[o + 2]!]}.${BYTE_STR[b[o + 3]!]}`;
}

/** IPv6 in RFC 5952 form (longest run of ≥2 zero groups compressed, lower case, IPv4-mapped dotted). */
export function ipv6(b: Uint8Array, o: number): string {
  const g = [0, 0, 0, 0, 0, 0, 0, 0];
  for (let i = 0; i < 8; i++) g[i] = (b[o + 2 * i]! << 8) | b[o + 2 * i + 1]!;
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${ipv4(b, o + 12)}`;
  }
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  let s = "";
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      s += i === 0 ? "::" : ":";
      i += bestLen - 1;
      continue;
    }
    s += g[i]!.toString(16);
    if (i < 7) s += ":";
  }
  return s;
}
