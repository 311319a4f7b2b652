/**
 * The sampled packet header parser: fills a FlowRecord from the first bytes of a frame. Used by sFlow raw
 * packet headers (sflow5.ts) and IPFIX packet sections, IEs 313–317 (../sections.ts). Never throws and
 * never reads past `offset + length`: the header is a prefix of the frame, so whatever is present is
 * decoded and a header that stops early is normal.
 *
 * Parsed: Ethernet (802.3/LLC-SNAP too), 802.1Q / QinQ (0x8100, 0x88a8, 0x9100) tags, MPLS label stack
 * (0x8847/0x8848; labels and TTLs; the payload is IPv4 or IPv6 by its first nibble, else a pseudowire:
 * an Ethernet frame (EoMPLS, EVPN) right away when a known EtherType follows its MACs, else after a control
 * word (first nibble 0)), IPv4 (options, fragments: no L4 for non-first fragments), IPv6 with extension headers (hop-by-hop,
 * routing, fragment, destination options, AH; the SRv6 segment routing header, routing type 4, gives
 * ipv6_routing_header_addresses / _seg_left as GoFlow2 does), TCP, UDP, SCTP, UDP-Lite ports, ICMP and
 * ICMPv6 type/code. vlan_id is the outermost 802.1Q tag; QinQ adds extra.dot1qVlanId /
 * extra.dot1qCustomerVlanId. IPv4 ip_flags = the 3 flag bits (DF 2, MF 1); IPv6 fragment header: ip_flags =
 * its low 3 bits (M = 1), fragment_offset in 8-byte units as on the wire.
 *
 * Tunnels: IP-in-IP (IPv4/IPv6 in IPv4/IPv6, protocol 4/41, SRv6 encapsulation included), GRE (IPv4, IPv6,
 * MPLS, transparent Ethernet), VXLAN (UDP port 4789), and Ethernet in SRv6 (next header 143). With
 * `inner` false (the default, `--tunnel-header outer`; what GoFlow2 does) the record describes the outer
 * headers: the tunnel's own addresses, protocol and ports. With `inner` true the parser decapsulates and
 * each field comes from the innermost header that carries it: the inner packet's addresses, protocol,
 * ports, TTL and fragment fields (an inner IP header clears the outer's IP and transport fields first),
 * MACs and VLAN of an inner Ethernet frame, etype of the inner IP header. A pseudowire (MPLS followed by an
 * Ethernet frame) is not an IP tunnel: the outer frame has no IP header, so both modes read the inner
 * frame's IP packet; the outer mode keeps the outer frame's MACs and VLAN.
 * Every walk advances by at least 4 bytes and encapsulation is followed at most 8 levels deep, so the work
 * is bounded by `length`.
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
const ETH_TEB = 0x6558; // GRE transparent Ethernet bridging
const VXLAN_PORT = 4789;
const MAX_NEST = 8;

// Parse state of the current call (the parser is synchronous and not re-entered).
/** Decapsulate tunnels: the record describes the innermost headers. */
let inner = false;
/** MACs and VLAN were taken from an outer frame that the outer mode keeps. */
let l2Done = false;
/** An IP header was decoded: a further one (inner mode) clears the IP and transport fields first. */
let ipDone = false;
/** Encapsulation levels followed so far. */
let nest = 0;

function u16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

function u32(b: Uint8Array, o: number): number {
  return b[o]! * 16777216 + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!);
}

function begin(innerMode: boolean): void {
  inner = innerMode;
  l2Done = false;
  ipDone = false;
  nest = 0;
}

/**
 * Decodes the `length` header bytes at `offset` of `b` into `rec`. `protocol` is a HEADER_PROTOCOL value;
 * other values decode nothing. `innerTunnel`: describe the inner headers of a tunnelled frame (above).
 */
export function decodePacketHeader(
  b: Uint8Array,
  offset: number,
  length: number,
  protocol: number,
  rec: FlowRecord,
  innerTunnel = false,
): void {
  const o = offset;
  const end = Math.min(offset + length, b.length);
  begin(innerTunnel);
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

/** An IP packet, IPv4 or IPv6 by its version nibble (IPFIX ipHeaderPacketSection, 313). */
export function decodeIpPacket(
  b: Uint8Array,
  offset: number,
  length: number,
  rec: FlowRecord,
  innerTunnel = false,
): void {
  begin(innerTunnel);
  decodeIp(b, offset, Math.min(offset + length, b.length), rec);
}

/** An MPLS label stack alone: labels and TTLs (IPFIX mplsLabelStackSection, 316). */
export function decodeMplsStack(b: Uint8Array, offset: number, length: number, rec: FlowRecord): void {
  begin(false);
  mplsLabels(b, offset, Math.min(offset + length, b.length), rec);
}

/**
 * What follows an MPLS label stack: IP, or a pseudowire with or without control word (IPFIX
 * mplsPayloadPacketSection, 317).
 */
export function decodeMplsPayload(
  b: Uint8Array,
  offset: number,
  length: number,
  rec: FlowRecord,
  innerTunnel = false,
): void {
  begin(innerTunnel);
  mplsPayload(b, offset, Math.min(offset + length, b.length), rec);
}

/** A transport header of IP protocol `proto` (IPFIX ipPayloadPacketSection, 314). */
export function decodeTransport(
  b: Uint8Array,
  offset: number,
  length: number,
  proto: number,
  rec: FlowRecord,
  innerTunnel = false,
): void {
  begin(innerTunnel);
  decodeL4(b, offset, Math.min(offset + length, b.length), proto, rec);
}

function decodeEthernet(b: Uint8Array, o: number, end: number, rec: FlowRecord): void {
  const keepL2 = l2Done;
  if (end - o < 14) {
    if (keepL2) return;
    if (end - o >= 6) rec.dst_mac = macInt(b, o);
    if (end - o >= 12) rec.src_mac = macInt(b, o + 6);
    return;
  }
  if (!keepL2) {
    rec.dst_mac = macInt(b, o);
    rec.src_mac = macInt(b, o + 6);
  }
  let etype = u16(b, o + 12);
  o += 14;
  let tags = 0;
  while ((etype === ETH_VLAN || etype === ETH_QINQ || etype === ETH_QINQ_OLD) && end - o >= 4) {
    const vid = u16(b, o) & 0xfff;
    if (keepL2) {
      // the outer frame's tags describe the record
    } else if (tags === 0) rec.vlan_id = vid;
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
  if (!inner) l2Done = true;
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

/** Labels and TTLs of the stack at `o`; returns the offset after the bottom entry (or `end`). */
function mplsLabels(b: Uint8Array, o: number, end: number, rec: FlowRecord): number {
  // count first, so the arrays are allocated once with their size
  let n = 0;
  let p = o;
  while (end - p >= 4) {
    n++;
    const bottom = b[p + 2]! & 1;
    p += 4;
    if (bottom) break;
  }
  if (n === 0) return o;
  const labels = new Array<number>(n);
  const ttls = new Array<number>(n);
  for (let i = 0; i < n; i++, o += 4) {
    labels[i] = (b[o]! << 12) | (b[o + 1]! << 4) | (b[o + 2]! >>> 4);
    ttls[i] = b[o + 3]!;
  }
  rec.mpls_label = labels;
  rec.mpls_ttl = ttls;
  return o;
}

function decodeMpls(b: Uint8Array, o: number, end: number, rec: FlowRecord): void {
  const p = mplsLabels(b, o, end, rec);
  if (p === o) return;
  mplsPayload(b, p, end, rec);
}

function mplsPayload(b: Uint8Array, o: number, end: number, rec: FlowRecord): void {
  if (o >= end) return;
  const nibble = b[o]! >>> 4;
  if (nibble === 4 && (b[o]! & 0x0f) >= 5) {
    rec.etype = ETH_IPV4;
    decodeIPv4(b, o, end, rec);
  } else if (nibble === 6) {
    rec.etype = ETH_IPV6;
    decodeIPv6(b, o, end, rec);
  } else if (nest < MAX_NEST && nibble !== 1) {
    // A pseudowire: an Ethernet frame after a control word (RFC 4385: first nibble 0; 1 is an associated
    // channel, not data) or right away. A frame's first byte is a MAC's and often has nibble 0 too: the
    // frame starts here when a known EtherType follows the MACs (bytes that are a control word's frame
    // put MAC bytes there), else after the control word.
    nest++;
    decodeEthernet(b, nibble === 0 && !etherTypeAt(b, o, end) ? o + 4 : o, end, rec);
  }
}

/** Whether an Ethernet frame at `o` has a known EtherType (IP, ARP, 802.1Q, QinQ, MPLS) after its MACs. */
function etherTypeAt(b: Uint8Array, o: number, end: number): boolean {
  if (end - o < 14) return false;
  const t = u16(b, o + 12);
  return (
    t === ETH_IPV4 ||
    t === ETH_IPV6 ||
    t === 0x0806 ||
    t === ETH_VLAN ||
    t === ETH_QINQ ||
    t === ETH_QINQ_OLD ||
    t === ETH_MPLS ||
    t === ETH_MPLS_MC
  );
}

/** IPv4 or IPv6 by the version nibble. */
function decodeIp(b: Uint8Array, o: number, end: number, rec: FlowRecord): void {
  if (o >= end) return;
  const version = b[o]! >>> 4;
  if (version === 4) {
    rec.etype = ETH_IPV4;
    decodeIPv4(b, o, end, rec);
  } else if (version === 6) {
    rec.etype = ETH_IPV6;
    decodeIPv6(b, o, end, rec);
  }
}

/** Inner mode, a tunnelled IP header follows: the outer's IP and transport fields are not the inner's. */
function clearIp(rec: FlowRecord): void {
  rec.proto = 0;
  rec.src_port = 0;
  rec.dst_port = 0;
  rec.tcp_flags = 0;
  rec.icmp_type = 0;
  rec.icmp_code = 0;
  rec.ip_tos = 0;
  rec.ip_ttl = 0;
  rec.ip_flags = 0;
  rec.fragment_id = 0;
  rec.fragment_offset = 0;
  rec.ipv6_flow_label = 0;
}

/** Inner mode: follow a tunnel to its payload. Returns false when the tunnel is not followed. */
function tunnel(b: Uint8Array, o: number, end: number, next: number, rec: FlowRecord): boolean {
  if (!inner || nest >= MAX_NEST || o >= end) return false;
  nest++;
  if (next === 4 || next === 41) {
    decodeIp(b, o, end, rec);
    return true;
  }
  if (next === 143) {
    decodeEthernet(b, o, end, rec);
    return true;
  }
  if (next === 47) {
    // GRE (RFC 2784/2890): flags C 0x80, K 0x20, S 0x10 each add 4 bytes; version 0 only
    if (end - o < 4 || (b[o + 1]! & 7) !== 0) return false;
    const flags = b[o]!;
    const ptype = u16(b, o + 2);
    const p = o + 4 + (flags & 0x80 ? 4 : 0) + (flags & 0x20 ? 4 : 0) + (flags & 0x10 ? 4 : 0);
    if (ptype === ETH_IPV4 || ptype === ETH_IPV6) decodeIp(b, p, end, rec);
    else if (ptype === ETH_TEB) decodeEthernet(b, p, end, rec);
    else if (ptype === ETH_MPLS || ptype === ETH_MPLS_MC) decodeMpls(b, p, end, rec);
    else return false;
    return true;
  }
  return false;
}

function decodeIPv4(b: Uint8Array, o: number, end: number, rec: FlowRecord): void {
  if (ipDone) clearIp(rec);
  ipDone = true;
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
  if (tunnel(b, o + ihl, end, proto, rec)) return;
  decodeL4(b, o + ihl, end, proto, rec);
}

function decodeIPv6(b: Uint8Array, o: number, end: number, rec: FlowRecord): void {
  if (ipDone) clearIp(rec);
  ipDone = true;
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
      if (next === 43) routingHeader(b, o, Math.min(o + len, end), rec);
      next = b[o]!;
      o += len;
    }
  }
  rec.proto = next;
  if (tunnel(b, o, end, next, rec)) return;
  decodeL4(b, o, end, next, rec);
}

/**
 * A routing header (at least 8 bytes present): segments left, and for a segment routing header (type 4,
 * RFC 8754) its segment list, as GoFlow2 reports them (the first routing header of the packet).
 */
function routingHeader(b: Uint8Array, o: number, end: number, rec: FlowRecord): void {
  if (rec.ipv6_routing_header_addresses !== null || rec.ipv6_routing_header_seg_left !== 0) return;
  rec.ipv6_routing_header_seg_left = b[o + 3]!;
  if (b[o + 2] !== 4) return;
  const n = Math.min(b[o + 4]! + 1, Math.floor((end - o - 8) / 16));
  if (n <= 0) return;
  const list = new Array<string>(n);
  for (let i = 0; i < n; i++) list[i] = ipv6(b, o + 8 + 16 * i);
  rec.ipv6_routing_header_addresses = list;
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
      if (avail >= 4) {
        rec.src_port = u16(b, o);
        rec.dst_port = u16(b, o + 2);
        // VXLAN (RFC 7348): 8-byte header with the I flag, then an Ethernet frame
        if (inner && rec.dst_port === VXLAN_PORT && avail >= 16 && b[o + 8]! & 0x08 && nest < MAX_NEST) {
          nest++;
          decodeEthernet(b, o + 16, end, rec);
        }
      }
      break;
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
