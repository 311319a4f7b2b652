/**
 * How NetFlow v9 / IPFIX elements map onto the flow record (DESIGN §3/§4). Each template field gets a
 * `FieldKind` once, when the template is compiled; the generated record decoder (template.ts) then does
 * one direct assignment per field. Elements without a kind land in `record.extra` under their name.
 */

export const K = {
  EXTRA: 0,
  BYTES: 1,
  BYTES_FB: 2,
  PACKETS: 3,
  PACKETS_FB: 4,
  PROTO: 5,
  TOS: 6,
  TCP_FLAGS: 7,
  SRC_PORT: 8,
  DST_PORT: 9,
  SRC_ADDR4: 10,
  DST_ADDR4: 11,
  SRC_ADDR6: 12,
  DST_ADDR6: 13,
  SRC_NET: 14,
  DST_NET: 15,
  IN_IF: 16,
  OUT_IF: 17,
  IN_IF_FB: 18,
  OUT_IF_FB: 19,
  NEXT_HOP4: 20,
  NEXT_HOP6: 21,
  BGP_NH4: 22,
  BGP_NH6: 23,
  SRC_AS: 24,
  DST_AS: 25,
  NEXT_HOP_AS: 26,
  END_UPTIME: 27,
  START_UPTIME: 28,
  FLOW_LABEL: 29,
  ICMP_TYPECODE: 30,
  ICMP_TYPE: 31,
  ICMP_CODE: 32,
  TTL: 33,
  TTL_FB: 34,
  FRAG_ID: 35,
  FRAG_OFFSET: 36,
  IP_FLAGS: 37,
  SRC_MAC: 38,
  DST_MAC: 39,
  SRC_MAC_FB: 40,
  DST_MAC_FB: 41,
  SRC_VLAN: 42,
  DST_VLAN: 43,
  VLAN_ID: 44,
  IP_VERSION: 45,
  ETYPE: 46,
  DIRECTION: 47,
  FWD_STATUS: 48,
  OBS_POINT: 49,
  OBS_DOMAIN: 50,
  START_S: 51,
  END_S: 52,
  START_MS: 53,
  END_MS: 54,
  START_US: 55,
  END_US: 56,
  START_NS: 57,
  END_NS: 58,
  START_DELTA_US: 59,
  END_DELTA_US: 60,
  SYS_INIT_MS: 61,
  MPLS: 62,
  SRC_SGT: 63,
  DST_SGT: 64,
  SAMPLER_ID: 65,
  IN_VRF: 66,
  OUT_VRF: 67,
  RECORD_RATE: 68,
  /** Packet sections 313–317 (sections.ts), fixed or variable length. */
  SECTION: 69,
  NAT_SRC4: 70,
  NAT_DST4: 71,
  NAT_SRC6: 72,
  NAT_DST6: 73,
  NAT_SRC_PORT: 74,
  NAT_DST_PORT: 75,
  REV_BYTES: 76,
  REV_BYTES_FB: 77,
  REV_PACKETS: 78,
  REV_PACKETS_FB: 79,
  MPLS_IP4: 80,
  MPLS_IP6: 81,
  /** selectionSequenceId (301) in a flow record: the PSAMP selection sequence that selected it. */
  SEQUENCE_ID: 82,
} as const;

export type FieldKind = (typeof K)[keyof typeof K];

/** Kinds that need an exact field length; other lengths fall back to EXTRA. */
const EXACT_LENGTH: Partial<Record<FieldKind, number>> = {
  [K.SRC_ADDR4]: 4,
  [K.DST_ADDR4]: 4,
  [K.NEXT_HOP4]: 4,
  [K.BGP_NH4]: 4,
  [K.SRC_ADDR6]: 16,
  [K.DST_ADDR6]: 16,
  [K.NEXT_HOP6]: 16,
  [K.BGP_NH6]: 16,
  [K.SRC_MAC]: 6,
  [K.DST_MAC]: 6,
  [K.SRC_MAC_FB]: 6,
  [K.DST_MAC_FB]: 6,
  [K.MPLS]: 3,
  [K.NAT_SRC4]: 4,
  [K.NAT_DST4]: 4,
  [K.NAT_SRC6]: 16,
  [K.NAT_DST6]: 16,
  [K.MPLS_IP4]: 4,
  [K.MPLS_IP6]: 16,
  [K.START_US]: 8,
  [K.END_US]: 8,
  [K.START_NS]: 8,
  [K.END_NS]: 8,
};

/** IANA element id → kind (IPFIX pen 0; NetFlow v9 field types below 32768 share these numbers). */
const IANA_KINDS: ReadonlyMap<number, FieldKind> = new Map<number, FieldKind>([
  [1, K.BYTES],
  [23, K.BYTES],
  [85, K.BYTES_FB],
  [231, K.BYTES_FB],
  [2, K.PACKETS],
  [24, K.PACKETS],
  [86, K.PACKETS_FB],
  [298, K.PACKETS_FB],
  [4, K.PROTO],
  [5, K.TOS],
  [6, K.TCP_FLAGS],
  [7, K.SRC_PORT],
  [11, K.DST_PORT],
  [8, K.SRC_ADDR4],
  [12, K.DST_ADDR4],
  [27, K.SRC_ADDR6],
  [28, K.DST_ADDR6],
  [9, K.SRC_NET],
  [29, K.SRC_NET],
  [13, K.DST_NET],
  [30, K.DST_NET],
  [10, K.IN_IF],
  [14, K.OUT_IF],
  [252, K.IN_IF_FB],
  [253, K.OUT_IF_FB],
  [15, K.NEXT_HOP4],
  [62, K.NEXT_HOP6],
  [18, K.BGP_NH4],
  [63, K.BGP_NH6],
  [16, K.SRC_AS],
  [17, K.DST_AS],
  [128, K.NEXT_HOP_AS],
  [21, K.END_UPTIME],
  [22, K.START_UPTIME],
  [31, K.FLOW_LABEL],
  [32, K.ICMP_TYPECODE],
  [139, K.ICMP_TYPECODE],
  [176, K.ICMP_TYPE],
  [178, K.ICMP_TYPE],
  [177, K.ICMP_CODE],
  [179, K.ICMP_CODE],
  [192, K.TTL],
  [52, K.TTL_FB],
  [54, K.FRAG_ID],
  [88, K.FRAG_OFFSET],
  [197, K.IP_FLAGS],
  [56, K.SRC_MAC],
  [80, K.DST_MAC],
  [81, K.SRC_MAC_FB],
  [57, K.DST_MAC_FB],
  [58, K.SRC_VLAN],
  [59, K.DST_VLAN],
  [243, K.VLAN_ID],
  [60, K.IP_VERSION],
  [256, K.ETYPE],
  [61, K.DIRECTION],
  [89, K.FWD_STATUS],
  [138, K.OBS_POINT],
  [149, K.OBS_DOMAIN],
  [150, K.START_S],
  [151, K.END_S],
  [152, K.START_MS],
  [153, K.END_MS],
  [154, K.START_US],
  [155, K.END_US],
  [156, K.START_NS],
  [157, K.END_NS],
  [158, K.START_DELTA_US],
  [159, K.END_DELTA_US],
  [160, K.SYS_INIT_MS],
  [70, K.MPLS],
  [71, K.MPLS],
  [72, K.MPLS],
  [73, K.MPLS],
  [74, K.MPLS],
  [75, K.MPLS],
  [76, K.MPLS],
  [77, K.MPLS],
  [78, K.MPLS],
  [79, K.MPLS],
  [48, K.SAMPLER_ID],
  [302, K.SAMPLER_ID],
  [301, K.SEQUENCE_ID],
  [234, K.IN_VRF],
  [235, K.OUT_VRF],
  [34, K.RECORD_RATE], // samplingInterval in a flow record: that flow's own rate
  [50, K.RECORD_RATE], // flowSamplerRandomInterval, likewise
  [47, K.MPLS_IP4],
  [140, K.MPLS_IP6],
  [225, K.NAT_SRC4],
  [226, K.NAT_DST4],
  [281, K.NAT_SRC6],
  [282, K.NAT_DST6],
  [227, K.NAT_SRC_PORT],
  [228, K.NAT_DST_PORT],
  [232, K.REV_BYTES_FB], // responderOctets (NSEL biflows)
  [299, K.REV_PACKETS_FB], // responderPackets
]);

/** RFC 5103 reverse elements (PEN 29305) with a record field. */
const REVERSE_PEN = 29305;
const REVERSE_KINDS: ReadonlyMap<number, FieldKind> = new Map<number, FieldKind>([
  [1, K.REV_BYTES],
  [23, K.REV_BYTES],
  [85, K.REV_BYTES_FB],
  [2, K.REV_PACKETS],
  [24, K.REV_PACKETS],
  [86, K.REV_PACKETS_FB],
]);

/** Cisco TrustSec: NetFlow v9 field types 34000/34001; over IPFIX PEN 9 elements 1232/1233 (DESIGN §4). */
export const V9_SGT_SRC = 34000;
export const V9_SGT_DST = 34001;
export const CISCO_PEN = 9;
export const IPFIX_SGT_SRC = 1232;
export const IPFIX_SGT_DST = 1233;

/**
 * The kind of a template field. `pen` is 0 for IANA elements and for every NetFlow v9 field type (v9 has no
 * enterprise bit; its vendor types live above 32767). `length` 0xFFFF means variable length.
 */
export function fieldKind(pen: number, id: number, length: number, v9: boolean): FieldKind {
  let kind: FieldKind = K.EXTRA;
  if (pen === 0) {
    if (v9 && id === V9_SGT_SRC) kind = K.SRC_SGT;
    else if (v9 && id === V9_SGT_DST) kind = K.DST_SGT;
    else kind = IANA_KINDS.get(id) ?? K.EXTRA;
  } else if (pen === REVERSE_PEN) {
    kind = REVERSE_KINDS.get(id) ?? K.EXTRA;
  } else if (pen === CISCO_PEN) {
    if (id === IPFIX_SGT_SRC) kind = K.SRC_SGT;
    else if (id === IPFIX_SGT_DST) kind = K.DST_SGT;
  }
  if (pen === 0 && id >= 313 && id <= 317) return length === 0 ? K.EXTRA : K.SECTION;
  if (kind === K.EXTRA) return kind;
  if (length === 0xffff || length === 0) return K.EXTRA;
  const exact = EXACT_LENGTH[kind];
  if (exact !== undefined) return exact === length ? kind : K.EXTRA;
  // Everything else is an unsigned integer of 1..8 bytes (reduced-size encoding allowed).
  return length <= 8 ? kind : K.EXTRA;
}
