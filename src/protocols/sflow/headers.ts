/**
 * The sampled packet header parser (sFlow raw packet headers; also meant for IPFIX packet sections,
 * IEs 313–317): fills a FlowRecord from the first bytes of a frame. Never throws and never reads past
 * `offset + length`: the header is a prefix of the frame, so whatever is present is decoded and a header
 * that stops early is normal.
 *
 * Parsed: Ethernet (802.3/LLC-SNAP too), 802.1Q / QinQ (0x8100, 0x88a8, 0x9100) tags, MPLS label stack
 * (0x8847/0x8848, payload guessed IPv4/IPv6 by its first nibble), IPv4 (options, fragments: no L4 for
 * non-first fragments), IPv6 with extension headers (hop-by-hop, routing, fragment, destination options,
 * AH), TCP, UDP, SCTP, UDP-Lite ports, ICMP and ICMPv6 type/code. vlan_id is the outermost 802.1Q tag; QinQ
 * adds extra.dot1qVlanId / extra.dot1qCustomerVlanId. IPv4 ip_flags = the 3 flag bits (DF 2, MF 1); IPv6
 * fragment header: ip_flags = its low 3 bits (M = 1), fragment_offset in 8-byte units as on the wire.
 * Every walk advances by at least 4 bytes, so the work is bounded by `length`.
 */
import type { FlowRecord } from "../../core/flow.ts";
import { ipv4, ipv6, macInt } from "../wire.ts";

/** What the first byte of the header is (sFlow header_protocol numbering, sflow_version_5.txt). */
export const HEADER_PROTOCOL = { ETHERNET: 1, IPV4: 11, IPV6: 12, MPLS: 13 } as const;

const ETH_IPV4 = 0x0800;
const ETH_IPV6 = 0x86dd;
const ETH_VLAN = 0x8100;
const ETH_QINQ = 0x88a8;
const ETH_QINQ_OLD = 0x9100;
const ETH_MPLS = 0x8847;
const ETH_MPLS_MC = 0x8848;

function u16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

function u32(b: Uint8Array, o: number): number {
  return b[o]! * 16777216 + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!);
}

/**
 * Decodes the `length` header bytes at `offset` of `b` into `rec`. `protocol` is a HEADER_PROTOCOL value;
 * other values decode nothing.
 */
export function decodePacketHeader(
  b: Uint8Array,
  offset: number,
  length: number,
  protocol: number,
  rec: FlowRecord,
): void {
  const o = offset;
  const end = Math.min(offset + length, b.length);
  switch (protocol) {
    case HEADER_PROTOCOL.ETHERNET:
      decodeEthernet(b, o, end, rec);
      break;
    case HEADER_PROTOCOL.IPV4:
      rec.etype = ETH_IPV4;
      decodeIPv4(b, o, end, rec);
      break;
    case HEADER_PROTOCOL.IPV6:
      rec.etype = ETH_IPV6;
      decodeIPv6(b, o, end, rec);
      break;
    case HEADER_PROTOCOL.MPLS:
      rec.etype = ETH_MPLS;
      decodeMpls(b, o, end, rec);
      break;
  }
}

function decodeEthernet(b: Uint8Array, o: number, end: number, rec: FlowRecord): void {
  if (end - o < 14) {
    if (end - o >= 6) rec.dst_mac = macInt(b, o);
    if (end - o >= 12) rec.src_mac = macInt(b, o + 6);
    return;
  }
  rec.dst_mac = macInt(b, o);
  rec.src_mac = macInt(b, o + 6);
  let etype = u16(b, o + 12);
  o += 14;
  let tags = 0;
  while ((etype === ETH_VLAN || etype === ETH_QINQ || etype === ETH_QINQ_OLD) && end - o >= 4) {
    const vid = u16(b, o) & 0xfff;
    if (tags === 0) rec.vlan_id = vid;
    else if (tags === 1) {
      if (rec.extra === null) rec.extra = { dot1qVlanId: rec.vlan_id, dot1qCustomerVlanId: vid };
      else {
        rec.extra.dot1qVlanId = rec.vlan_id;
        rec.extra.dot1qCustomerVlanId = vid;
      }
    }
    tags++;
    etype = u16(b, o + 2);
    o += 4;
  }
  if (etype < 0x0600) {
    // 802.3 length field: LLC, maybe SNAP (AA AA 03 + OUI(3) + type(2))
    if (end - o >= 8 && b[o] === 0xaa && b[o + 1] === 0xaa && b[o + 2] === 0x03) {
      etype = u16(b, o + 6);
      o += 8;
    } else {
      return;
    }
  }
  rec.etype = etype;
  if (etype === ETH_IPV4) decodeIPv4(b, o, end, rec);
  else if (etype === ETH_IPV6) decodeIPv6(b, o, end, rec);
  else if (etype === ETH_MPLS || etype === ETH_MPLS_MC) decodeMpls(b, o, end, rec);
}

function decodeMpls(b: Uint8Array, o: number, end: number, rec: FlowRecord): void {
  // count first, so the label array is allocated once with its size
  let n = 0;
  let p = o;
  while (end - p >= 4) {
    n++;
    const bottom = b[p + 2]! & 1;
    p += 4;
    if (bottom) break;
  }
  if (n === 0) return;
  const labels = new Array<number>(n);
  for (let i = 0; i < n; i++, o += 4) labels[i] = (b[o]! << 12) | (b[o + 1]! << 4) | (b[o + 2]! >>> 4);
  rec.mpls_label = labels;
  if (o >= end) return;
  const nibble = b[o]! >>> 4;
  if (nibble === 4) {
    rec.etype = ETH_IPV4;
    decodeIPv4(b, o, end, rec);
  } else if (nibble === 6) {
    rec.etype = ETH_IPV6;
    decodeIPv6(b, o, end, rec);
  }
}

function decodeIPv4(b: Uint8Array, o: number, end: number, rec: FlowRecord): void {
  const avail = end - o;
  if (avail < 20) {
    // a truncated IP header: take the fields that are complete
    if (avail >= 2) rec.ip_tos = b[o + 1]!;
    if (avail >= 8) {
      rec.fragment_id = u16(b, o + 4);
      const ff = u16(b, o + 6);
      rec.ip_flags = ff >>> 13;
      rec.fragment_offset = ff & 0x1fff;
    }
    if (avail >= 10) {
      rec.ip_ttl = b[o + 8]!;
      rec.proto = b[o + 9]!;
    }
    if (avail >= 16) rec.src_addr = ipv4(b, o + 12);
    return;
  }
  const ihl = (b[o]! & 0x0f) * 4;
  rec.ip_tos = b[o + 1]!;
  rec.fragment_id = u16(b, o + 4);
  const ff = u16(b, o + 6);
  rec.ip_flags = ff >>> 13;
  const fragOffset = ff & 0x1fff;
  rec.fragment_offset = fragOffset;
  rec.ip_ttl = b[o + 8]!;
  const proto = b[o + 9]!;
  rec.proto = proto;
  rec.src_addr = ipv4(b, o + 12);
  rec.dst_addr = ipv4(b, o + 16);
  if (ihl < 20 || fragOffset !== 0) return;
  decodeL4(b, o + ihl, end, proto, rec);
}

function decodeIPv6(b: Uint8Array, o: number, end: number, rec: FlowRecord): void {
  if (end - o < 40) {
    if (end - o >= 4) {
      const w = u32(b, o);
      rec.ip_tos = (w >>> 20) & 0xff;
      rec.ipv6_flow_label = w & 0xfffff;
    }
    if (end - o >= 8) {
      rec.proto = b[o + 6]!;
      rec.ip_ttl = b[o + 7]!;
    }
    if (end - o >= 24) rec.src_addr = ipv6(b, o + 8);
    return;
  }
  const w = u32(b, o);
  rec.ip_tos = (w >>> 20) & 0xff;
  rec.ipv6_flow_label = w & 0xfffff;
  let next = b[o + 6]!;
  rec.ip_ttl = b[o + 7]!;
  rec.src_addr = ipv6(b, o + 8);
  rec.dst_addr = ipv6(b, o + 24);
  o += 40;
  // extension headers; each is at least 8 bytes, so the walk is bounded by the header length
  while (next === 0 || next === 43 || next === 44 || next === 60 || next === 51) {
    if (end - o < 8) {
      // the upper-layer protocol is behind headers we cannot see
      rec.proto = next;
      return;
    }
    if (next === 44) {
      const field = u16(b, o + 2);
      rec.fragment_offset = field >>> 3;
      rec.ip_flags = field & 7;
      rec.fragment_id = u32(b, o + 4);
      next = b[o]!;
      o += 8;
      if (rec.fragment_offset !== 0) {
        rec.proto = next;
        return;
      }
    } else {
      const len = next === 51 ? (b[o + 1]! + 2) * 4 : (b[o + 1]! + 1) * 8;
      next = b[o]!;
      o += len;
    }
  }
  rec.proto = next;
  decodeL4(b, o, end, next, rec);
}

function decodeL4(b: Uint8Array, o: number, end: number, proto: number, rec: FlowRecord): void {
  const avail = end - o;
  switch (proto) {
    case 6:
      if (avail >= 4) {
        rec.src_port = u16(b, o);
        rec.dst_port = u16(b, o + 2);
      }
      if (avail >= 14) rec.tcp_flags = ((b[o + 12]! & 1) << 8) | b[o + 13]!;
      break;
    case 17:
    case 132:
    case 136:
      if (avail >= 4) {
        rec.src_port = u16(b, o);
        rec.dst_port = u16(b, o + 2);
      }
      break;
    case 1:
    case 58:
      if (avail >= 2) {
        rec.icmp_type = b[o]!;
        rec.icmp_code = b[o + 1]!;
      }
      break;
  }
}
