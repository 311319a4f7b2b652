/**
 * IPFIX / NetFlow v9 packet sections (RFC 7133 §4.7, IANA IEs 313–317): exporters that sample packets
 * (Juniper, Cisco, ipfixprobe) send the first bytes of the packet instead of, or next to, decoded fields.
 * They are parsed by the packet-header parser of sFlow raw headers (sflow/headers.ts) and fill the record:
 *
 *   313 ipHeaderPacketSection     IP header onward (IPv4/IPv6 by the version nibble), transport included
 *   314 ipPayloadPacketSection    the transport header; protocol from 313 or protocolIdentifier (4)
 *   315 dataLinkFrameSection      an Ethernet frame (802.1Q/QinQ, MPLS, pseudowires, tunnels …)
 *   316 mplsLabelStackSection     MPLS label stack entries: mpls_label, mpls_ttl
 *   317 mplsPayloadPacketSection  after the label stack: IP, or a pseudowire with or without control word
 *
 * The compiled record decoder (template.ts) notes where each section is in the Scratch (`sec`: offset and
 * length per IE, −1 when absent) and calls `applySections` at the end of the record. The sections are
 * parsed into a fresh record in the order above (each from a fresh parser state) and copied into the flow
 * field by field, except the fields the template carries as explicit elements: what the exporter sent
 * wins over what the section shows (a template with a source address element keeps it even when it is
 * zero). The raw bytes stay in `extra` under the IE name, as before. Which header of a tunnelled frame the
 * record describes follows the decoder's `tunnelHeader` setting (Scratch.innerTunnel; sflow/headers.ts).
 */
import { FlowRecord } from "../core/flow.ts";
import { type FieldKind, K } from "./fields.ts";
import {
  decodeIpPacket,
  decodeMplsPayload,
  decodeMplsStack,
  decodePacketHeader,
  decodeTransport,
  HEADER_PROTOCOL,
} from "./sflow/headers.ts";
import type { Scratch, TemplateField } from "./template.ts";

export const FIRST_SECTION = 313;
export const LAST_SECTION = 317;

/** Record fields a section can fill, as bits of the explicit-element mask. */
const B = {
  SRC_ADDR: 1,
  DST_ADDR: 2,
  SRC_PORT: 4,
  DST_PORT: 8,
  PROTO: 16,
  ETYPE: 32,
  SRC_MAC: 64,
  DST_MAC: 128,
  VLAN: 256,
  MPLS: 512,
  TTL: 1024,
  FRAG_ID: 2048,
  FRAG_OFFSET: 4096,
  IP_FLAGS: 8192,
  TCP_FLAGS: 16384,
  TOS: 32768,
  ICMP: 65536,
  FLOW_LABEL: 131072,
} as const;

const KIND_BITS: ReadonlyMap<FieldKind, number> = new Map<FieldKind, number>([
  [K.SRC_ADDR4, B.SRC_ADDR | B.ETYPE],
  [K.SRC_ADDR6, B.SRC_ADDR | B.ETYPE],
  [K.DST_ADDR4, B.DST_ADDR | B.ETYPE],
  [K.DST_ADDR6, B.DST_ADDR | B.ETYPE],
  [K.IP_VERSION, B.ETYPE],
  [K.ETYPE, B.ETYPE],
  [K.SRC_PORT, B.SRC_PORT],
  [K.DST_PORT, B.DST_PORT],
  [K.PROTO, B.PROTO],
  [K.SRC_MAC, B.SRC_MAC],
  [K.SRC_MAC_FB, B.SRC_MAC],
  [K.DST_MAC, B.DST_MAC],
  [K.DST_MAC_FB, B.DST_MAC],
  [K.VLAN_ID, B.VLAN],
  [K.SRC_VLAN, B.VLAN],
  [K.MPLS, B.MPLS],
  [K.TTL, B.TTL],
  [K.TTL_FB, B.TTL],
  [K.FRAG_ID, B.FRAG_ID],
  [K.FRAG_OFFSET, B.FRAG_OFFSET],
  [K.IP_FLAGS, B.IP_FLAGS],
  [K.TCP_FLAGS, B.TCP_FLAGS],
  [K.TOS, B.TOS],
  [K.ICMP_TYPECODE, B.ICMP],
  [K.ICMP_TYPE, B.ICMP],
  [K.ICMP_CODE, B.ICMP],
  [K.FLOW_LABEL, B.FLOW_LABEL],
]);

/** The template's packet sections: null when it has none, else the mask of fields it sends explicitly. */
export function sectionLayout(fields: readonly TemplateField[]): { explicit: number } | null {
  let sections = false;
  let explicit = 0;
  for (const f of fields) {
    if (f.kind === K.SECTION) sections = true;
    else explicit |= KIND_BITS.get(f.kind) ?? 0;
  }
  return sections ? { explicit } : null;
}

/** Code of the compiled decoder noting a section field (`at`, `len` are expressions). */
export function sectionSlotCode(f: TemplateField, at: string, len: string): string {
  const k = (f.id - FIRST_SECTION) * 2;
  return `s.sec[${k}]=${at};s.sec[${k + 1}]=${len};`;
}

/** The interpreter's form of `sectionSlotCode`. */
export function sectionSlot(f: TemplateField, p: number, len: number, s: Scratch): void {
  const k = (f.id - FIRST_SECTION) * 2;
  s.sec[k] = p;
  s.sec[k + 1] = len;
}

/** Resets the section slots at the start of a record (code of the compiled decoder). */
export const SECTION_RESET = "s.sec.fill(-1);";

/** Parses the record's sections and fills the flow's fields that the template does not send. */
export function applySections(b: Uint8Array, r: FlowRecord, s: Scratch, explicit: number): void {
  const sec = s.sec;
  const inner = s.innerTunnel;
  const t = new FlowRecord();
  let at = sec[(315 - FIRST_SECTION) * 2]!;
  if (at >= 0)
    decodePacketHeader(b, at, sec[(315 - FIRST_SECTION) * 2 + 1]!, HEADER_PROTOCOL.ETHERNET, t, inner);
  at = sec[(316 - FIRST_SECTION) * 2]!;
  if (at >= 0) decodeMplsStack(b, at, sec[(316 - FIRST_SECTION) * 2 + 1]!, t);
  at = sec[(317 - FIRST_SECTION) * 2]!;
  if (at >= 0) decodeMplsPayload(b, at, sec[(317 - FIRST_SECTION) * 2 + 1]!, t, inner);
  at = sec[(313 - FIRST_SECTION) * 2]!;
  if (at >= 0) decodeIpPacket(b, at, sec[(313 - FIRST_SECTION) * 2 + 1]!, t, inner);
  at = sec[(314 - FIRST_SECTION) * 2]!;
  if (at >= 0) {
    const proto = t.proto !== 0 ? t.proto : r.proto;
    decodeTransport(b, at, sec[(314 - FIRST_SECTION) * 2 + 1]!, proto, t, inner);
  }
  merge(r, t, explicit);
}

function merge(r: FlowRecord, t: FlowRecord, explicit: number): void {
  const x = explicit;
  if (!(x & B.SRC_ADDR) && t.src_addr_text !== "") r.src_addr = t.src_addr_text;
  if (!(x & B.DST_ADDR) && t.dst_addr_text !== "") r.dst_addr = t.dst_addr_text;
  if (!(x & B.ETYPE) && t.etype !== 0) r.etype = t.etype;
  if (!(x & B.SRC_PORT) && t.src_port !== 0) r.src_port = t.src_port;
  if (!(x & B.DST_PORT) && t.dst_port !== 0) r.dst_port = t.dst_port;
  if (!(x & B.PROTO) && t.proto !== 0) r.proto = t.proto;
  if (!(x & B.SRC_MAC) && t.src_mac !== 0) r.src_mac = t.src_mac;
  if (!(x & B.DST_MAC) && t.dst_mac !== 0) r.dst_mac = t.dst_mac;
  if (!(x & B.VLAN) && t.vlan_id !== 0) r.vlan_id = t.vlan_id;
  if (!(x & B.MPLS) && t.mpls_label !== null) {
    r.mpls_label = t.mpls_label;
    r.mpls_ttl = t.mpls_ttl;
  }
  if (!(x & B.TTL) && t.ip_ttl !== 0) r.ip_ttl = t.ip_ttl;
  if (!(x & B.FRAG_ID) && t.fragment_id !== 0) r.fragment_id = t.fragment_id;
  if (!(x & B.FRAG_OFFSET) && t.fragment_offset !== 0) r.fragment_offset = t.fragment_offset;
  if (!(x & B.IP_FLAGS) && t.ip_flags !== 0) r.ip_flags = t.ip_flags;
  if (!(x & B.TCP_FLAGS) && t.tcp_flags !== 0) r.tcp_flags = t.tcp_flags;
  if (!(x & B.TOS) && t.ip_tos !== 0) r.ip_tos = t.ip_tos;
  if (!(x & B.ICMP) && (t.icmp_type !== 0 || t.icmp_code !== 0)) {
    r.icmp_type = t.icmp_type;
    r.icmp_code = t.icmp_code;
  }
  if (!(x & B.FLOW_LABEL) && t.ipv6_flow_label !== 0) r.ipv6_flow_label = t.ipv6_flow_label;
  if (t.ipv6_routing_header_addresses !== null)
    r.ipv6_routing_header_addresses = t.ipv6_routing_header_addresses;
  if (t.ipv6_routing_header_seg_left !== 0) r.ipv6_routing_header_seg_left = t.ipv6_routing_header_seg_left;
  if (t.extra !== null) {
    if (r.extra === null) r.extra = {};
    for (const k in t.extra) if (!(k in r.extra)) r.extra[k] = t.extra[k]!;
  }
}
