/**
 * Address code shared by the decoders, the capture reader, the encoders and the sinks: IP addresses from
 * wire bytes to text (and to bytes of ASCII), address text back to numbers and bytes, prefix masking and
 * Go netip's prefix text, MAC text. Text parsing accepts what Go's netip prints (and IPv6 zones, ignored);
 * it never throws: a text that is not an address is −1, null or false.
 */

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

const groups = new Uint16Array(8);

/** IPv6 in RFC 5952 form (longest run of ≥2 zero groups compressed, lower case, IPv4-mapped dotted). */
export function ipv6(b: Uint8Array, o: number): string {
  const g = groups;
  for (let i = 0; i < 8; i++) g[i] = (b[o + 2 * i]! << 8) | b[o + 2 * i + 1]!;
  return ipv6Text(g);
}

/**
 * IPv6 text of 8 groups as Go's netip prints it: RFC 5952 (the first longest run of ≥2 zero groups
 * compressed, lower case) and `::ffff:a.b.c.d` for an IPv4-mapped address.
 */
export function ipv6Text(g: Uint16Array): string {
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${g[6]! >>> 8}.${g[6]! & 0xff}.${g[7]! >>> 8}.${g[7]! & 0xff}`;
  }
  let zs = -1;
  let ze = -1;
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i >= 2 && j - i > ze - zs) {
      zs = i;
      ze = j;
    }
    if (j > i) i = j;
  }
  let s = "";
  for (let i = 0; i < 8; i++) {
    if (i === zs) {
      s += i === 0 ? "::" : ":"; // the group before wrote its ":" already
      i = ze - 1;
      continue;
    }
    s += g[i]!.toString(16);
    if (i < 7) s += ":";
  }
  return s;
}

// ---------------------------------------------------------------------------------------------------------
// Text to numbers and bytes

/** IPv4 text (a dotted quad of 1–3 digit decimals ≤ 255) into 4 octets at `out[at]`; false when not one. */
function parseIPv4(
  s: string,
  start: number,
  end: number,
  out: Uint8Array | Uint16Array,
  at: number,
): boolean {
  let part = 0;
  let digits = 0;
  let parts = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || parts === 3) return false;
      out[at + parts++] = part;
      part = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return false;
    } else {
      return false;
    }
  }
  if (digits === 0 || parts !== 3) return false;
  out[at + 3] = part;
  return true;
}

const v4scratch = new Uint8Array(4);
const v4tail = new Uint8Array(4);
const v6scratch = new Uint16Array(8);

/**
 * IPv4 dotted-quad text as an unsigned 32-bit number; −1 when `s` is not one. (The wire form is
 * `ipv4Number(bytes, offset)`.)
 */
export function parseIPv4Number(s: string): number {
  if (!parseIPv4(s, 0, s.length, v4scratch, 0)) return -1;
  const o = v4scratch;
  return ((o[0]! << 24) | (o[1]! << 16) | (o[2]! << 8) | o[3]!) >>> 0;
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Parses IPv6 text (with an optional dotted IPv4 tail, zone ignored) into 8 groups; false on bad input. */
function parseIPv6(s: string, out: Uint16Array): boolean {
  let end = s.indexOf("%");
  if (end < 0) end = s.length;
  const head: number[] = [];
  const tail: number[] = [];
  let cur = head;
  let sawDouble = false;
  let i = 0;
  if (s.startsWith("::")) {
    sawDouble = true;
    cur = tail;
    i = 2;
  }
  while (i < end) {
    // one group, or a dotted IPv4 tail
    let j = i;
    let group = 0;
    while (j < end && j - i < 5) {
      const d = hexDigit(s.charCodeAt(j));
      if (d < 0) break;
      group = group * 16 + d;
      j++;
    }
    if (j < end && s.charCodeAt(j) === 46) {
      if (!parseIPv4(s, i, end, v4tail, 0)) return false;
      cur.push((v4tail[0]! << 8) | v4tail[1]!, (v4tail[2]! << 8) | v4tail[3]!);
      i = end;
      break;
    }
    if (j === i || j - i > 4) return false;
    cur.push(group);
    if (j === end) {
      i = end;
      break;
    }
    if (s.charCodeAt(j) !== 58) return false;
    if (j + 1 < end && s.charCodeAt(j + 1) === 58) {
      if (sawDouble) return false;
      sawDouble = true;
      cur = tail;
      i = j + 2;
    } else {
      i = j + 1;
      if (i === end) return false;
    }
  }
  const n = head.length + tail.length;
  if (sawDouble ? n > 7 : n !== 8) return false;
  out.fill(0);
  for (let k = 0; k < head.length; k++) out[k] = head[k]!;
  for (let k = 0; k < tail.length; k++) out[8 - tail.length + k] = tail[k]!;
  return true;
}

/**
 * Address text as its network bytes (as GoFlow2's protobuf carries addresses): 4 octets for IPv4, 16 for
 * IPv6 (a fresh array); null when `s` is not an address ("" included).
 */
export function addressBytes(s: string): Uint8Array | null {
  if (s === "") return null;
  if (parseIPv4(s, 0, s.length, v4scratch, 0)) return v4scratch.slice();
  if (!parseIPv6(s, v6scratch)) return null;
  const b = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    b[2 * i] = v6scratch[i]! >>> 8;
    b[2 * i + 1] = v6scratch[i]! & 0xff;
  }
  return b;
}

// ---------------------------------------------------------------------------------------------------------
// Prefixes

/** The IPv4 address `v` (unsigned 32-bit number) masked to `len` bits (an integer 1..32); −1 for any other length. */
export function maskIPv4(v: number, len: number): number {
  if (!(len > 0 && len <= 32 && Number.isInteger(len))) return -1;
  return len === 32 ? v : (v & ~(0xffffffff >>> len)) >>> 0;
}

function maskOctet(octet: number, bits: number): number {
  return bits >= 8 ? octet : bits <= 0 ? 0 : octet & (0xff << (8 - bits));
}

/**
 * `addr` masked to `len` bits as `"addr/len"`, as Go's netip.Addr.Prefix(len).String() prints it
 * ("10.0.0.0/24", "0.0.0.0/0", "2001:db8::/32"); null when `addr` is not an address ("" included) or
 * `len` is not a prefix length of its family.
 */
export function prefixText(addr: string, len: number): string | null {
  if (addr === "" || !(len >= 0) || !Number.isInteger(len)) return null;
  if (addr.indexOf(":") < 0) {
    if (!parseIPv4(addr, 0, addr.length, v4scratch, 0) || len > 32) return null;
    if (len === 0) return "0.0.0.0/0";
    const o = v4scratch;
    return `${maskOctet(o[0]!, len)}.${maskOctet(o[1]!, len - 8)}.${maskOctet(o[2]!, len - 16)}.${maskOctet(
      o[3]!,
      len - 24,
    )}/${len}`;
  }
  if (len > 128 || !parseIPv6(addr, v6scratch)) return null;
  if (len === 0) return "::/0";
  for (let i = 0; i < 8; i++) {
    const bits = len - i * 16;
    if (bits >= 16) continue;
    v6scratch[i] = bits <= 0 ? 0 : v6scratch[i]! & (0xffff << (16 - bits));
  }
  return `${ipv6Text(v6scratch)}/${len}`;
}

// ---------------------------------------------------------------------------------------------------------
// MACs

const HEX2: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const ZERO_MAC = "00:00:00:00:00:00";
/** "aa:bb" for each 16-bit value, filled lazily (at most 65536 short strings). */
const HEX_PAIRS: (string | undefined)[] = new Array(65536).fill(undefined);

function hexPair(v: number): string {
  let s = HEX_PAIRS[v];
  if (s === undefined) {
    s = `${HEX2[v >>> 8]}:${HEX2[v & 0xff]}`;
    HEX_PAIRS[v] = s;
  }
  return s;
}

/** A 48-bit MAC (as an integer) rendered "aa:bb:cc:dd:ee:ff" (lower case; bits above 48 are ignored). */
export function macString(mac: number): string {
  if (mac === 0) return ZERO_MAC;
  // mac >>> 16 and mac & 0xffff take ToUint32 (exact modulo 2^32 for integers below 2^53).
  return `${hexPair(Math.floor(mac / 4294967296) & 0xffff)}:${hexPair(mac >>> 16)}:${hexPair(mac & 0xffff)}`;
}
