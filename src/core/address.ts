/** IP addresses from wire bytes to text (shared by the decoders and the capture reader). */

const BYTE_STR: string[] = Array.from({ length: 256 }, (_, i) => String(i));

/** The 4 bytes at `o` as an unsigned 32-bit number (an IPv4 address). */
export function ipv4Number(b: Uint8Array, o: number): number {
  return b[o]! * 16777216 + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!);
}

/** Each byte value's decimal digits as ASCII, 3 bytes a value (unused ones 0), and how many there are. */
const OCTET = new Uint8Array(768);
const OCTET_LEN = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  const t = String(i);
  OCTET_LEN[i] = t.length;
  for (let j = 0; j < t.length; j++) OCTET[3 * i + j] = t.charCodeAt(j);
}

/** Writes the decimal digits of `v` (0..255) at `p` in `out` (3 bytes of room); returns the end. */
export function writeOctet(out: Uint8Array, p: number, v: number): number {
  const at = 3 * v;
  out[p] = OCTET[at]!;
  out[p + 1] = OCTET[at + 1]!;
  out[p + 2] = OCTET[at + 2]!;
  return p + OCTET_LEN[v]!;
}

/**
 * Writes the dotted text of the IPv4 address `v` (an unsigned 32-bit number) at `p` in `out` as ASCII
 * (15 bytes of room: two more may be overwritten with zeros past the end); returns the end. For encoders
 * that build their output in bytes, so no string is made.
 */
export function writeIPv4(out: Uint8Array, p: number, v: number): number {
  p = writeOctet(out, p, v >>> 24);
  out[p++] = 46;
  p = writeOctet(out, p, (v >>> 16) & 255);
  out[p++] = 46;
  p = writeOctet(out, p, (v >>> 8) & 255);
  out[p++] = 46;
  return writeOctet(out, p, v & 255);
}

/** Dotted IPv4 text. */
export function ipv4(b: Uint8Array, o: number): string {
  return `${BYTE_STR[b[o]!]}.${BYTE_STR[b[o + 1]!]}.${BYTE_STR[b[o + 2]!]}.${BYTE_STR[b[o + 3]!]}`;
}

const fromCharCode = String.fromCharCode;
const codes: number[] = new Array(15).fill(0);

/**
 * Dotted text of an IPv4 address given as an unsigned 32-bit number, built as one string from character
 * codes: where V8 does not inline `ipv4`'s template literal, each `+` of it is a string-add call
 * (~600 instructions an address); this is about half.
 */
export function ipv4Text(v: number): string {
  const c = codes;
  let n = 0;
  for (let shift = 24; shift >= 0; shift -= 8) {
    const x = (v >>> shift) & 255;
    if (shift !== 24) c[n++] = 46;
    if (x >= 100) {
      const h = (x / 100) | 0;
      const t = ((x - h * 100) / 10) | 0;
      c[n++] = 48 + h;
      c[n++] = 48 + t;
      c[n++] = 48 + x - h * 100 - t * 10;
    } else if (x >= 10) {
      const t = (x / 10) | 0;
      c[n++] = 48 + t;
      c[n++] = 48 + x - t * 10;
    } else {
      c[n++] = 48 + x;
    }
  }
  // explicit argument counts: apply() or a spread would allocate and go through a slower builtin path
  switch (n) {
    case 7:
      return fromCharCode(c[0]!, c[1]!, c[2]!, c[3]!, c[4]!, c[5]!, c[6]!);
    case 8:
      return fromCharCode(c[0]!, c[1]!, c[2]!, c[3]!, c[4]!, c[5]!, c[6]!, c[7]!);
    case 9:
      return fromCharCode(c[0]!, c[1]!, c[2]!, c[3]!, c[4]!, c[5]!, c[6]!, c[7]!, c[8]!);
    case 10:
      return fromCharCode(c[0]!, c[1]!, c[2]!, c[3]!, c[4]!, c[5]!, c[6]!, c[7]!, c[8]!, c[9]!);
    case 11:
      return fromCharCode(c[0]!, c[1]!, c[2]!, c[3]!, c[4]!, c[5]!, c[6]!, c[7]!, c[8]!, c[9]!, c[10]!);
    case 12:
      return fromCharCode(
        c[0]!,
        c[1]!,
        c[2]!,
        c[3]!,
        c[4]!,
        c[5]!,
        c[6]!,
        c[7]!,
        c[8]!,
        c[9]!,
        c[10]!,
        c[11]!,
      );
    case 13:
      return fromCharCode(
        c[0]!,
        c[1]!,
        c[2]!,
        c[3]!,
        c[4]!,
        c[5]!,
        c[6]!,
        c[7]!,
        c[8]!,
        c[9]!,
        c[10]!,
        c[11]!,
        c[12]!,
      );
    case 14:
      return fromCharCode(
        c[0]!,
        c[1]!,
        c[2]!,
        c[3]!,
        c[4]!,
        c[5]!,
        c[6]!,
        c[7]!,
        c[8]!,
        c[9]!,
        c[10]!,
        c[11]!,
        c[12]!,
        c[13]!,
      );
    default:
      return fromCharCode(
        c[0]!,
        c[1]!,
        c[2]!,
        c[3]!,
        c[4]!,
        c[5]!,
        c[6]!,
        c[7]!,
        c[8]!,
        c[9]!,
        c[10]!,
        c[11]!,
        c[12]!,
        c[13]!,
        c[14]!,
      );
  }
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
