/**
 * Address helpers for the query layer: parse IPv4/IPv6 text into bytes, write an address the way the SQLite
 * sink stores it (dotted IPv4, RFC 5952 IPv6 via src/core/address.ts), and test CIDR membership. Inputs are
 * user text (filters, CLI flags) or stored column values; nothing here is on the receive path.
 */
import { ipv6 } from "../core/address.ts";

/** 4 bytes for IPv4, 16 for IPv6, or null when `s` is not an address. */
export function parseAddress(s: string): Uint8Array | null {
  if (s.includes(":")) return parseIPv6(s);
  return parseIPv4(s);
}

function parseIPv4(s: string): Uint8Array | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^\d{1,3}$/.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    out[i] = v;
  }
  return out;
}

function parseIPv6(s: string): Uint8Array | null {
  if (s.length > 45) return null;
  let text = s;
  const tail: number[] = [];
  // An embedded IPv4 tail (::ffff:192.0.2.1).
  const lastColon = text.lastIndexOf(":");
  if (text.slice(lastColon + 1).includes(".")) {
    const v4 = parseIPv4(text.slice(lastColon + 1));
    if (!v4) return null;
    tail.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
    text = text.slice(0, lastColon);
    if (text.endsWith(":")) text += ":";
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const group = (g: string): number | null => (/^[0-9a-fA-F]{1,4}$/.test(g) ? Number.parseInt(g, 16) : null);
  const side = (h: string): number[] | null => {
    if (h === "") return [];
    const out: number[] = [];
    for (const g of h.split(":")) {
      const v = group(g);
      if (v === null) return null;
      out.push(v);
    }
    return out;
  };
  const head = side(halves[0]!);
  const rest = halves.length === 2 ? side(halves[1]!) : [];
  if (!head || !rest) return null;
  const groups = [...head];
  const given = head.length + rest.length + tail.length;
  if (halves.length === 2) {
    if (given > 7) return null;
    for (let i = given; i < 8; i++) groups.push(0);
  } else if (given !== 8) return null;
  groups.push(...rest, ...tail);
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = groups[i]! >> 8;
    out[2 * i + 1] = groups[i]! & 0xff;
  }
  return out;
}

/** The address as the sinks write it: dotted quad, or RFC 5952 IPv6. */
export function addressText(b: Uint8Array): string {
  return b.length === 4 ? `${b[0]}.${b[1]}.${b[2]}.${b[3]}` : ipv6(b, 0);
}

/** `s` in the stored form when it is an address, else null. */
export function canonicalAddress(s: string): string | null {
  const b = parseAddress(s);
  return b ? addressText(b) : null;
}

/** A network: the address bytes with the host bits cleared, and the prefix length. */
export interface Network {
  bytes: Uint8Array;
  prefix: number;
}

/** Clears the bits after `prefix`. */
export function maskAddress(b: Uint8Array, prefix: number): Uint8Array {
  const out = Uint8Array.from(b);
  for (let i = 0; i < out.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    out[i] = out[i]! & ((0xff << (8 - keep)) & 0xff);
  }
  return out;
}

/** True when the address text `ip` lies in `net` (same family). Null, empty or unparsable text is not. */
export function inNetwork(ip: unknown, net: Network): boolean {
  if (typeof ip !== "string" || ip === "") return false;
  const b = parseAddress(ip);
  if (!b || b.length !== net.bytes.length) return false;
  const full = net.prefix >> 3;
  for (let i = 0; i < full; i++) if (b[i] !== net.bytes[i]) return false;
  const rem = net.prefix & 7;
  if (rem === 0) return true;
  const mask = (0xff << (8 - rem)) & 0xff;
  return (b[full]! & mask) === net.bytes[full];
}
