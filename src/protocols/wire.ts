/**
 * Wire readers shared by the decoders: integers of any size 1–8 (reduced-size encoding), addresses, MACs,
 * and the rendering of any element by its abstract type. Callers check bounds before calling.
 */
import { ipv4, ipv6 } from "../core/address.ts";
import type { FlowRecord } from "../core/flow.ts";
import type { AbstractType } from "./elements.ts";

export { ipv4, ipv6 };

const TWO32 = 4294967296;

/**
 * ICMP type and code from the destination port, for exporters that send no ICMP element (DESIGN §3): the
 * NetFlow convention is type × 256 + code in the destination port, which stays as exported.
 */
export function icmpFromDstPort(r: FlowRecord): void {
  // Only where nothing else filled them (a packet section's ICMP header, issue 19, comes first).
  if ((r.proto === 1 || r.proto === 58) && r.icmp_type === 0 && r.icmp_code === 0) {
    r.icmp_type = (r.dst_port >>> 8) & 255;
    r.icmp_code = r.dst_port & 255;
  }
}
const TWO53 = 9007199254740992;

/** Unsigned big-endian integer of 1–8 bytes: a number while exact, a bigint above 2^53. */
export function readUint(b: Uint8Array, o: number, len: number): number | bigint {
  switch (len) {
    case 1:
      return b[o]!;
    case 2:
      return (b[o]! << 8) | b[o + 1]!;
    case 3:
      return (b[o]! << 16) | (b[o + 1]! << 8) | b[o + 2]!;
    case 4:
      return b[o]! * 16777216 + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!);
    default: {
      if (len <= 0) return 0;
      if (len > 8) return readUint(b, o + len - 8, 8);
      // high part: len-4 bytes, low part: 4 bytes
      let hi = 0;
      for (let i = 0; i < len - 4; i++) hi = hi * 256 + b[o + i]!;
      const p = o + len - 4;
      const lo = b[p]! * 16777216 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
      const v = hi * TWO32 + lo;
      if (v < TWO53) return v;
      return (BigInt(hi) << 32n) | BigInt(lo);
    }
  }
}

/** Unsigned integer of 1–8 bytes as a number, saturating precision above 2^53 (for ids, indexes, rates). */
export function readUintNumber(b: Uint8Array, o: number, len: number): number {
  const v = readUint(b, o, len);
  return typeof v === "bigint" ? Number(v) : v;
}

/** Signed big-endian integer of 1–8 bytes. */
export function readInt(b: Uint8Array, o: number, len: number): number | bigint {
  if (len <= 0) return 0;
  const u = readUint(b, o, len);
  const negative = (b[o]! & 0x80) !== 0;
  if (!negative) return u;
  const big = BigInt(u) - (1n << BigInt(len * 8));
  return big >= BigInt(-TWO53) ? Number(big) : big;
}

const HEX2: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** 6-byte MAC as a 48-bit integer (exact in a double). */
export function macInt(b: Uint8Array, o: number): number {
  return (
    ((b[o]! << 8) | b[o + 1]!) * TWO32 +
    b[o + 2]! * 16777216 +
    ((b[o + 3]! << 16) | (b[o + 4]! << 8) | b[o + 5]!)
  );
}

export function formatMac(v: number): string {
  const hi = Math.floor(v / TWO32);
  const lo = v >>> 0;
  return `${HEX2[(hi >>> 8) & 255]}:${HEX2[hi & 255]}:${HEX2[lo >>> 24]}:${HEX2[(lo >>> 16) & 255]}:${HEX2[(lo >>> 8) & 255]}:${HEX2[lo & 255]}`;
}

export function hex(b: Uint8Array, o: number, len: number): string {
  let s = "";
  for (let i = 0; i < len; i++) s += HEX2[b[o + i]!];
  return s;
}

const utf8 = new TextDecoder("utf-8", { fatal: false });

/** Text with trailing NULs (and anything after the first NUL) removed. */
export function text(b: Uint8Array, o: number, len: number): string {
  let end = o;
  const max = o + len;
  while (end < max && b[end] !== 0) end++;
  if (end === o) return "";
  // ASCII fast path
  let ascii = true;
  for (let i = o; i < end; i++) {
    if (b[i]! >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii && end - o < 64) {
    let s = "";
    for (let i = o; i < end; i++) s += String.fromCharCode(b[i]!);
    return s;
  }
  return utf8.decode(b.subarray(o, end));
}

const f32 = new Float32Array(1);
const f32b = new Uint8Array(f32.buffer);
const f64 = new Float64Array(1);
const f64b = new Uint8Array(f64.buffer);
const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function readFloat(b: Uint8Array, o: number, len: number): number {
  if (len === 4) {
    for (let i = 0; i < 4; i++) f32b[LITTLE ? 3 - i : i] = b[o + i]!;
    return f32[0]!;
  }
  if (len === 8) {
    for (let i = 0; i < 8; i++) f64b[LITTLE ? 7 - i : i] = b[o + i]!;
    return f64[0]!;
  }
  return Number.NaN;
}

export type ElementValue = number | bigint | string | boolean;

/**
 * Render one element's bytes by its abstract type (DESIGN §4, decode --elements): integers as numbers
 * (bigint above 2^53), addresses as text, MACs aa:bb:.., strings as text, octets as hex, dateTime* as the
 * integer on the wire. A length that does not fit the type falls back to hex.
 */
export function renderElement(
  type: AbstractType | undefined,
  b: Uint8Array,
  o: number,
  len: number,
): ElementValue {
  switch (type) {
    case "unsigned8":
    case "unsigned16":
    case "unsigned32":
    case "unsigned64":
    case "dateTimeSeconds":
    case "dateTimeMilliseconds":
    case "dateTimeMicroseconds":
    case "dateTimeNanoseconds":
      return len >= 1 && len <= 8 ? readUint(b, o, len) : hex(b, o, len);
    case "signed8":
    case "signed16":
    case "signed32":
    case "signed64":
      return len >= 1 && len <= 8 ? readInt(b, o, len) : hex(b, o, len);
    case "float32":
    case "float64":
      return len === 4 || len === 8 ? readFloat(b, o, len) : hex(b, o, len);
    case "boolean":
      return len === 1 ? b[o] === 1 : hex(b, o, len);
    case "macAddress":
      return len === 6 ? formatMac(macInt(b, o)) : hex(b, o, len);
    case "ipv4Address":
      return len === 4 ? ipv4(b, o) : hex(b, o, len);
    case "ipv6Address":
      return len === 16 ? ipv6(b, o) : hex(b, o, len);
    case "string":
      return text(b, o, len);
    default:
      return hex(b, o, len);
  }
}
