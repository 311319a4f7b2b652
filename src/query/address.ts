/**
 * Address helpers for the query layer: IPv4/IPv6 text into bytes (core/address.ts), write an address the way the SQLite
 * sink stores it (dotted IPv4, RFC 5952 IPv6 via src/core/address.ts), and test CIDR membership. Inputs are
 * user text (filters, CLI flags) or stored column values; nothing here is on the receive path.
 */
import { addressBytes, ipv6 } from "../core/address.ts";

/**
 * 4 bytes for IPv4, 16 for IPv6, or null when `s` is not an address (the parser of src/core/address.ts; an
 * IPv6 zone such as `%eth0` is ignored).
 */
export function parseAddress(s: string): Uint8Array | null {
  return addressBytes(s);
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
