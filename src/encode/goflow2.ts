/**
 * GoFlow2 v2 `json` format: one JSON object per flow, byte-for-byte what `goflow2 -format=json` prints for
 * the same flow, followed by our own fields.
 *
 * Grammar (verified against netsampler/goflow2 v2: pb/flow.proto field order, producer/proto/messages.go
 * FormatMessageReflectCustom, producer/proto/render.go renderers):
 *
 *   {"type":"IPFIX","time_received_ns":N,"sequence_num":N,"sampling_rate":N,"sampler_address":IP,
 *    "time_flow_start_ns":N,"time_flow_end_ns":N,"bytes":N,"packets":N,"src_addr":IP,"dst_addr":IP,
 *    "etype":ETYPE,"proto":PROTO,"src_port":N,"dst_port":N,"in_if":N,"out_if":N,"src_mac":MAC,
 *    "dst_mac":MAC,"src_vlan":N,"dst_vlan":N,"vlan_id":N,"ip_tos":N,"forwarding_status":N,"ip_ttl":N,
 *    "ip_flags":N,"tcp_flags":N,"icmp_type":N,"icmp_code":N,"ipv6_flow_label":N,"fragment_id":N,
 *    "fragment_offset":N,"src_as":N,"dst_as":N,"next_hop":IP,"next_hop_as":N,"src_net":NET,"dst_net":NET,
 *    "bgp_next_hop":IP,"bgp_communities":[N,..],"as_path":[N,..],"mpls_ttl":[N,..],"mpls_label":[N,..],
 *    "mpls_ip":[IP,..],"observation_domain_id":N,"observation_point_id":N,"layer_stack":[..],
 *    "layer_size":[..],"ipv6_routing_header_addresses":[..],"ipv6_routing_header_seg_left":N
 *    ── ours, appended ──
 *    [,"src_sgt":N][,"dst_sgt":N],"switch_id":S[,"flow_direction":N][,"in_if_name":S][,"out_if_name":S]
 *    [,"in_vrf_id":N][,"out_vrf_id":N][,"in_vrf_name":S][,"out_vrf_name":S][,"mpls_vpn_rd":S]
 *    [,"application_name":S][,"post_nat_src_addr":IP][,"post_nat_dst_addr":IP][,"post_nat_src_port":N]
 *    [,"post_nat_dst_port":N][,"reverse_bytes":N][,"reverse_packets":N][,"<extra key>":V]...}
 *
 * Value rendering, as GoFlow2 does it:
 * - every field is always present (no omitempty); absent addresses are "" and empty lists are [];
 * - MACs "aa:bb:cc:dd:ee:ff" (lower case, 00:00:00:00:00:00 when unknown);
 * - `etype`: "IPv4" | "IPv6" | "ARP", and "" for any other value (GoFlow2's map lookup miss);
 * - `proto`: the IANA keyword table of GoFlow2's render.go (0 "HOPOPT" ... 145 "NSH"; note 58 is
 *   "IPv6-ICMP"), "unassigned" for 146–252, "experimental" for 253–254, "reserved" for 255;
 * - `src_net`/`dst_net`: the address masked to the prefix length, "addr/len" (netip.Prefix.String():
 *   "10.0.0.0/24", "0.0.0.0/0", "2001:db8::/32"), and "invalid Prefix" when the address is absent or the
 *   length is too long for its family;
 * - times: integer nanoseconds (0 when unknown); counters: exact integers (bigint digits above 2^53).
 * Our additions: `src_sgt`/`dst_sgt`/`flow_direction` only when not null, `switch_id` always,
 * `in_if_name`/`out_if_name` only when not empty, the VRF ids when not null and the names resolved from
 * options data (VRF names, route distinguisher, application name) when not empty, NAT (post-translation
 * addresses and ports) and RFC 5103 reverse counters only when sent, then each `extra` entry (a key that would repeat an
 * emitted field is skipped). Strings are JSON-escaped (GoFlow2 prints its strings raw, but its strings
 * never need escaping; ours may).
 *
 * Writing: a `Goflow2Writer` per encoder (the jsonl sink's, the decode command's, ...) holds the buffer and
 * the segment caches; its `lines`/`framed` write a batch into a pooled transferable buffer, `line` one
 * record as a string. Address parsing, prefix masking and MAC text live in core/address.ts.
 */

import { maskIPv4, parseIPv4Number, prefixText, writeIPv4, writeOctet } from "../core/address.ts";
import type { Counter, FlowRecord } from "../core/flow.ts";
import { batchBuffers } from "../pipeline/buffer-pool.ts";

// ---------------------------------------------------------------------------------------------------------
// Name tables (GoFlow2 producer/proto/render.go)

const PROTO_NAMES: readonly string[] = [
  "HOPOPT",
  "ICMP",
  "IGMP",
  "GGP",
  "IPv4",
  "ST",
  "TCP",
  "CBT",
  "EGP",
  "IGP", // 0-9
  "BBN-RCC-MON",
  "NVP-II",
  "PUP",
  "ARGUS",
  "EMCON",
  "XNET",
  "CHAOS",
  "UDP",
  "MUX",
  "DCN-MEAS", // 10-19
  "HMP",
  "PRM",
  "XNS-IDP",
  "TRUNK-1",
  "TRUNK-2",
  "LEAF-1",
  "LEAF-2",
  "RDP",
  "IRTP",
  "ISO-TP4", // 20-29
  "NETBLT",
  "MFE-NSP",
  "MERIT-INP",
  "DCCP",
  "3PC",
  "IDPR",
  "XTP",
  "DDP",
  "IDPR-CMTP",
  "TP++", // 30-39
  "IL",
  "IPv6",
  "SDRP",
  "IPv6-Route",
  "IPv6-Frag",
  "IDRP",
  "RSVP",
  "GRE",
  "DSR",
  "BNA", // 40-49
  "ESP",
  "AH",
  "I-NLSP",
  "SWIPE",
  "NARP",
  "Min-IPv4",
  "TLSP",
  "SKIP",
  "IPv6-ICMP",
  "IPv6-NoNxt", // 50-59
  "IPv6-Opts",
  "any-host-internal-protocol",
  "CFTP",
  "any-local-network",
  "SAT-EXPAK",
  "KRYPTOLAN", // 60-65
  "RVD",
  "IPPC",
  "any-distributed-file-system",
  "SAT-MON",
  "VISA",
  "IPCV",
  "CPNX",
  "CPHB",
  "WSN", // 66-74
  "PVP",
  "BR-SAT-MON",
  "SUN-ND",
  "WB-MON",
  "WB-EXPAK",
  "ISO-IP",
  "VMTP",
  "SECURE-VMTP",
  "VINES", // 75-83
  "IPTM",
  "NSFNET-IGP",
  "DGP",
  "TCF",
  "EIGRP",
  "OSPFIGP",
  "Sprite-RPC",
  "LARP",
  "MTP",
  "AX.25", // 84-93
  "IPIP",
  "MICP",
  "SCC-SP",
  "ETHERIP",
  "ENCAP",
  "any-private-encryption-scheme",
  "GMTP",
  "IFMP", // 94-101
  "PNNI",
  "PIM",
  "ARIS",
  "SCPS",
  "QNX",
  "A/N",
  "IPComp",
  "SNP",
  "Compaq-Peer",
  "IPX-in-IP",
  "VRRP", // 102-112
  "PGM",
  "any-0-hop-protocol",
  "L2TP",
  "DDX",
  "IATP",
  "STP",
  "SRP",
  "UTI",
  "SMP",
  "SM",
  "PTP", // 113-123
  "ISIS over IPv4",
  "FIRE",
  "CRTP",
  "CRUDP",
  "SSCOPMCE",
  "IPLT",
  "SPS",
  "PIPE",
  "SCTP",
  "FC", // 124-133
  "RSVP-E2E-IGNORE",
  "Mobility Header",
  "UDPLite",
  "MPLS-in-IP",
  "manet",
  "HIP",
  "Shim6",
  "WESP", // 134-141
  "ROHC",
  "Ethernet",
  "AGGFRAG",
  "NSH", // 142-145
];

/** GoFlow2's rendering of an IP protocol number (render.go ProtoName). */
export function protoName(proto: number): string {
  if (!Number.isInteger(proto)) return "unknown";
  if (proto >= 0 && proto < PROTO_NAMES.length) return PROTO_NAMES[proto]!;
  if (proto >= 146 && proto <= 252) return "unassigned";
  if (proto === 253 || proto === 254) return "experimental";
  if (proto === 255) return "reserved";
  return "unknown";
}

/** GoFlow2's rendering of an EtherType: a name for IPv4/IPv6/ARP, "" otherwise. */
export function etypeName(etype: number): string {
  if (etype === 0x0800) return "IPv4";
  if (etype === 0x86dd) return "IPv6";
  if (etype === 0x0806) return "ARP";
  return "";
}

// Pre-quoted so the hot path concatenates constants.
const PROTO_Q: readonly string[] = Array.from({ length: 256 }, (_, i) => `"${protoName(i)}"`);

function protoQ(proto: number): string {
  return proto >= 0 && proto < 256 && Number.isInteger(proto) ? PROTO_Q[proto]! : `"${protoName(proto)}"`;
}

function etypeQ(etype: number): string {
  if (etype === 0x0800) return '"IPv4"';
  if (etype === 0x86dd) return '"IPv6"';
  if (etype === 0x0806) return '"ARP"';
  return '""';
}

// ---------------------------------------------------------------------------------------------------------
// Scalars

const PAD6 = ["000000", "00000", "0000", "000", "00", "0", ""];

/**
 * Milliseconds since the epoch as integer nanoseconds, exact: integer ms get "000000" appended (the digits
 * are built from two small integers, never through a float multiplication); a fraction is rounded to the
 * nearest nanosecond of the double's exact value.
 */
export function msToNs(ms: number): string {
  if (ms === 0 || !Number.isFinite(ms)) return "0";
  let whole = Math.floor(ms);
  let frac = 0;
  if (whole !== ms) {
    frac = Math.round((ms - whole) * 1e6); // ms - floor(ms) is exact in binary floating point
    if (frac >= 1e6) {
      whole += 1;
      frac -= 1e6;
    }
  }
  const f = frac === 0 ? "000000" : `${PAD6[`${frac}`.length]}${frac}`;
  if (whole === 0) return `${frac}`;
  if (whole < 0 || whole >= 1e15) return (BigInt(whole) * 1000000n + BigInt(frac)).toString();
  if (whole < 1e6) return `${whole}${f}`;
  const hi = Math.floor(whole / 1e6);
  const lo = whole - hi * 1e6;
  const los = `${lo}`;
  return `${hi}${PAD6[los.length]}${los}${f}`;
}

/** A counter as exact integer text. */
export function counterString(v: Counter): string {
  if (typeof v === "bigint") return v.toString();
  if (v < 1e21 && v > -1e21) return `${v}`;
  return Number.isFinite(v) ? BigInt(v).toString() : "0";
}

// ---------------------------------------------------------------------------------------------------------
// Networks: netip.Addr.Prefix(len).String()

const INVALID_PREFIX = '"invalid Prefix"';

/** `"addr/len"` as GoFlow2's NetworkRenderer prints it (quoted JSON string), `"invalid Prefix"` when none. */
export function networkString(addr: string, len: number): string {
  const text = prefixText(addr, len);
  return text === null ? INVALID_PREFIX : `"${text}"`;
}

// ---------------------------------------------------------------------------------------------------------
// Constant text, pre-encoded

const ENC = new TextEncoder();
const K = (text: string): Uint8Array => ENC.encode(text);

/** The two lower-case hex digits of each byte value, as ASCII. */
const HEXB = new Uint8Array(512);
for (let i = 0; i < 256; i++) {
  const h = i.toString(16).padStart(2, "0");
  HEXB[2 * i] = h.charCodeAt(0);
  HEXB[2 * i + 1] = h.charCodeAt(1);
}
const ZERO_MAC_Q = K('"00:00:00:00:00:00"');
const NET_V4_ZERO = K('"0.0.0.0/0"');

/** `sAddr`/`tAddr` of a network segment rendered from an IPv4 number (no address text equals it). */
const FROM_NUMBER = "\u0000v4";

/** The IPv4 address `addr` masked to `len` bits (an integer 1..32) as an unsigned number; −1 otherwise. */
function maskedIPv4(addr: string, len: number): number {
  if (!(len > 0 && len <= 32 && Number.isInteger(len))) return -1;
  const v = parseIPv4Number(addr);
  return v < 0 ? -1 : maskIPv4(v, len);
}

// Keys, each with its leading separator; `Z` variants carry the value 0 as well.
const TYPE_Q: Record<string, Uint8Array> = {
  NETFLOW_V5: K('{"type":"NETFLOW_V5","time_received_ns":'),
  NETFLOW_V9: K('{"type":"NETFLOW_V9","time_received_ns":'),
  IPFIX: K('{"type":"IPFIX","time_received_ns":'),
  SFLOW_5: K('{"type":"SFLOW_5","time_received_ns":'),
};

const K_SEQ = K(',"sequence_num":');
const K_RATE = K(',"sampling_rate":');
const K_SAMPLER = K(',"sampler_address":');
const K_RATE0_SAMPLER = K(',"sampling_rate":0,"sampler_address":');
const K_START = K(',"time_flow_start_ns":');
const K_END = K(',"time_flow_end_ns":');
const K_BYTES = K(',"bytes":');
const K_PACKETS = K(',"packets":');
const K_SRC = K(',"src_addr":');
const K_DST = K(',"dst_addr":');

/** `,"etype":E,"proto":P,"src_port":` for E in IPv4, IPv6, ARP, "" and every protocol byte. */
const ETYPE_PROTO: readonly (readonly Uint8Array[])[] = [0x0800, 0x86dd, 0x0806, 0].map((e) =>
  PROTO_Q.map((q) => K(`,"etype":${etypeQ(e)},"proto":${q},"src_port":`)),
);

const K_DPORT = K(',"dst_port":');
const K_IN_IF = K(',"in_if":');
const K_OUT_IF = K(',"out_if":');
const K_SRC_MAC = K(',"src_mac":');
const K_DST_MAC = K(',"dst_mac":');

/** Fields written as one block: all zero → one constant copy; otherwise key by key. */
const GROUP1 = [
  "src_vlan",
  "dst_vlan",
  "vlan_id",
  "ip_tos",
  "forwarding_status",
  "ip_ttl",
  "ip_flags",
] as const;
const GROUP2 = [
  "icmp_type",
  "icmp_code",
  "ipv6_flow_label",
  "fragment_id",
  "fragment_offset",
  "src_as",
  "dst_as",
] as const;
const G1_ZERO_TCP = K(`${GROUP1.map((k) => `,"${k}":0`).join("")},"tcp_flags":`);
const G1_KEYS = GROUP1.map((k) => K(`,"${k}":`));
const K_TCP = K(',"tcp_flags":');
const G2_ZERO_NEXT_HOP = K(`${GROUP2.map((k) => `,"${k}":0`).join("")},"next_hop":`);
const G2_KEYS = GROUP2.map((k) => K(`,"${k}":`));
const K_NEXT_HOP = K(',"next_hop":');
const K_NEXT_HOP_AS = K(',"next_hop_as":');
const K_NEXT_HOP_AS0_SRC_NET = K(',"next_hop_as":0,"src_net":');
const K_SRC_NET = K(',"src_net":');
const K_DST_NET = K(',"dst_net":');
const K_BGP_NH = K(',"bgp_next_hop":');
/** What follows the BGP next hop when every list is empty and both observation ids are 0. */
const TAIL_DEFAULT = K(
  ',"bgp_communities":[],"as_path":[],"mpls_ttl":[],"mpls_label":[],"mpls_ip":[],' +
    '"observation_domain_id":0,"observation_point_id":0,"layer_stack":[],"layer_size":[],' +
    '"ipv6_routing_header_addresses":[],"ipv6_routing_header_seg_left":0',
);

const K_COMMUNITIES = K(',"bgp_communities":');
const K_AS_PATH = K(',"as_path":');
const K_MPLS_TTL = K(',"mpls_ttl":');
const K_MPLS_LABEL = K(',"mpls_label":');
const K_MPLS_IP = K(',"mpls_ip":');
const K_OBS_DOMAIN = K(',"observation_domain_id":');
const K_OBS_POINT = K(',"observation_point_id":');
const K_RH_ADDRESSES = K(',"layer_stack":[],"layer_size":[],"ipv6_routing_header_addresses":');
const K_RH_SEG_LEFT = K(',"ipv6_routing_header_seg_left":');
const K_SRC_SGT = K(',"src_sgt":');
const K_DST_SGT = K(',"dst_sgt":');
const K_SWITCH = K(',"switch_id":');
const K_DIRECTION = K(',"flow_direction":');
const K_IN_NAME = K(',"in_if_name":');
const K_OUT_NAME = K(',"out_if_name":');
const K_NAT_SRC = K(',"post_nat_src_addr":');
const K_NAT_DST = K(',"post_nat_dst_addr":');
const K_NAT_SRC_PORT = K(',"post_nat_src_port":');
const K_NAT_DST_PORT = K(',"post_nat_dst_port":');
const K_REV_BYTES = K(',"reverse_bytes":');
const K_REV_PACKETS = K(',"reverse_packets":');
const K_IN_VRF_ID = K(',"in_vrf_id":');
const K_OUT_VRF_ID = K(',"out_vrf_id":');
const K_IN_VRF_NAME = K(',"in_vrf_name":');
const K_OUT_VRF_NAME = K(',"out_vrf_name":');
const K_RD = K(',"mpls_vpn_rd":');
const K_APP_NAME = K(',"application_name":');

/** Field names we emit; an `extra` key equal to one of them is skipped (no duplicate keys). */
const EMITTED = new Set([
  "type",
  "time_received_ns",
  "sequence_num",
  "sampling_rate",
  "sampler_address",
  "time_flow_start_ns",
  "time_flow_end_ns",
  "bytes",
  "packets",
  "src_addr",
  "dst_addr",
  "etype",
  "proto",
  "src_port",
  "dst_port",
  "in_if",
  "out_if",
  "src_mac",
  "dst_mac",
  ...GROUP1,
  "tcp_flags",
  ...GROUP2,
  "next_hop",
  "next_hop_as",
  "src_net",
  "dst_net",
  "bgp_next_hop",
  "bgp_communities",
  "as_path",
  "mpls_ttl",
  "mpls_label",
  "mpls_ip",
  "observation_domain_id",
  "observation_point_id",
  "layer_stack",
  "layer_size",
  "ipv6_routing_header_addresses",
  "ipv6_routing_header_seg_left",
  "src_sgt",
  "dst_sgt",
  "switch_id",
  "flow_direction",
  "in_if_name",
  "out_if_name",
  "in_vrf_id",
  "out_vrf_id",
  "in_vrf_name",
  "out_vrf_name",
  "mpls_vpn_rd",
  "application_name",
  "post_nat_src_addr",
  "post_nat_dst_addr",
  "post_nat_src_port",
  "post_nat_dst_port",
  "reverse_bytes",
  "reverse_packets",
]);

function emptyList(list: readonly number[] | null): boolean {
  return list === null || list.length === 0;
}

const SINGLES_LIMIT = 768 << 10;

/**
 * The byte writer: one per encoder (a sink's encoder in a receive worker, the decode command, ...), never
 * shared, so no two streams of records interleave in its buffer and segment caches.
 *
 * Building the line as a JS string and converting it costs more than writing the bytes: a record is ~100
 * concatenated pieces and V8 flattens such a rope slowly. So the writer writes ASCII straight into one
 * growing buffer (constant keys are pre-encoded and copied, numbers are written digit by digit): a scratch
 * buffer for single records (`line`), a pooled transferable buffer for a batch (`framed`), or one record at a
 * time between `begin` and `end` (`append`, which keeps no reference to the record; `lines` too).
 *
 * Segment caches. Most of a line is constant text and values that repeat from one record to the next (the
 * exporter, the datagram's receive time, interfaces, MACs, the all-defaults tail), so the record is cut into
 * segments, each the bytes between two fast-changing values. A segment's key is the record fields it is
 * rendered from; when they equal (===) those of the last rendered occurrence, the bytes are copied from that
 * occurrence, which is still in the buffer earlier in the same batch (one `copyWithin`, no allocation,
 * nothing saved on a miss). Rendering is a pure function of the key values (±0 render alike), so a copy is
 * byte-identical to a fresh rendering. Every batch starts at offset 0 and invalidates all segments
 * (`#resetSegments`); growing the buffer keeps earlier bytes at their offsets.
 */
export class Goflow2Writer {
  /** The buffer being written: the scratch buffer of `line` (allocated on first use), or a batch buffer. */
  #out = new Uint8Array(0);
  #pos = 0;
  /** A: `{"type":T,"time_received_ns":N,"sequence_num":` by (type, time_received_ms). */
  #aStart = -1;
  #aEnd = 0;
  #aType = "";
  #aMs = 0;
  /** B1: `,"sampling_rate":N,"sampler_address":S,"time_flow_start_ns":` by (sampling_rate, sampler_address). */
  #b1Start = -1;
  #b1End = 0;
  #b1Rate = 0;
  #b1Sampler = "";
  /** B2: `N,"time_flow_end_ns":N,"bytes":` by (time_flow_start_ms, time_flow_end_ms). */
  #b2Start = -1;
  #b2End = 0;
  #b2First = 0;
  #b2Last = 0;
  /** C: `,"dst_addr":S,"etype":E,"proto":P,"src_port":` by (dst_addr or dst_v4, etype, proto). */
  #cStart = -1;
  #cEnd = 0;
  #cDst = "";
  #cDst4 = -1;
  #cEtype = 0;
  #cProto = 0;
  /** D1: `,"in_if":N,"out_if":N,"src_mac":M,"dst_mac":M,` ... `"ip_flags":N,"tcp_flags":`. */
  #d1Start = -1;
  #d1End = 0;
  #d1InIf = 0;
  #d1OutIf = 0;
  #d1SrcMac = 0;
  #d1DstMac = 0;
  #d1SrcVlan = 0;
  #d1DstVlan = 0;
  #d1VlanId = 0;
  #d1Tos = 0;
  #d1Fwd = 0;
  #d1Ttl = 0;
  #d1Flags = 0;
  /** D2: `,"icmp_type":N,` ... `"next_hop":S,"next_hop_as":N,"src_net":`. */
  #d2Start = -1;
  #d2End = 0;
  #d2IcmpType = 0;
  #d2IcmpCode = 0;
  #d2Label = 0;
  #d2FragId = 0;
  #d2FragOff = 0;
  #d2SrcAs = 0;
  #d2DstAs = 0;
  #d2NextHop = "";
  #d2NextHop4 = -1;
  #d2NextHopAs = 0;
  /** S: `NET,"dst_net":` by (src_addr, src_net), or by the masked IPv4 network (FROM_NUMBER: from src_v4). */
  #sStart = -1;
  #sEnd = 0;
  #sAddr = "";
  #sLen = 0;
  /**
   * The masked IPv4 network (as an unsigned 32-bit number) the S bytes were rendered from; −2 for an IPv4
   * number with length 0 ("0.0.0.0/0", writeNumberNetS); −1 for anything else (keyed by the text alone).
   */
  #sMasked = -1;
  /** T: `NET` by (dst_addr, dst_net), or by the masked IPv4 network like S. */
  #tStart = -1;
  #tEnd = 0;
  #tAddr = "";
  #tLen = 0;
  #tMasked = -1;
  /**
   * E: `,"bgp_next_hop":S,` ... `"switch_id":S` + the optional fields up to `out_if_name`, by those fields;
   * only while the three lists are empty (a list is not a value: its contents may change under one reference).
   * When only the BGP next hop differs (it varies from flow to flow on real routers), the new value is
   * written and the bytes after the old one are copied.
   */
  #eStart = -1;
  /** Where E's bytes after the BGP next hop's value start (reused when only the BGP next hop changed). */
  #eRest = 0;
  #eEnd = 0;
  #eBgpNh = "";
  #eBgpNh4 = -1;
  #eObsDomain = 0;
  #eObsPoint = 0;
  #eSrcSgt: number | null = null;
  #eDstSgt: number | null = null;
  #eSwitch = "";
  #eDirection: number | null = null;
  #eInName = "";
  #eOutName = "";
  /** True while `#pos` and the segments belong to a run of `line` calls. */
  #singles = false;
  /** Bytes per record of recent batches (moving average), to size a batch's buffer up front. */
  #bytesPerRecord = 1100;
  /** The pooled buffer the next streamed batch (`begin` … `end`) is written into. */
  #streamed = new Uint8Array(0);
  /** While a batch is open (`begin` … `end`): the scratch buffer to put back, and the records appended. */
  #openScratch: Uint8Array<ArrayBuffer> | null = null;
  #openRecords = 0;
  /** Where the last appended line starts. */
  #lastStart = 0;

  #ensure(extra: number): void {
    if (this.#pos + extra <= this.#out.length) return;
    let size = Math.max(this.#out.length * 2, 1 << 16);
    while (size < this.#pos + extra) size *= 2;
    // a batch's bytes are returned in (and transferred with) this buffer: the pool's
    const next =
      this.#openScratch !== null ? batchBuffers.own(size) : new Uint8Array(batchBuffers.take(size).buffer);
    next.set(this.#out.subarray(0, this.#pos));
    this.#out = next;
  }

  #put(bytes: Uint8Array): void {
    const n = bytes.length;
    if (n > 12) {
      this.#out.set(bytes, this.#pos);
    } else {
      const o = this.#out;
      const p = this.#pos;
      for (let i = 0; i < n; i++) o[p + i] = bytes[i]!;
    }
    this.#pos += n;
  }

  /** ASCII text we produce ourselves (digits, names): no escaping needed. */
  #putAscii(text: string): void {
    this.#ensure(text.length);
    const o = this.#out;
    const p = this.#pos;
    for (let i = 0; i < text.length; i++) o[p + i] = text.charCodeAt(i);
    this.#pos += text.length;
  }

  /** A non-negative integer below 2^32 (the fast path); anything else through its exact text. */
  #putUint(n: number): void {
    if (n < 10 && n >= 0) {
      this.#out[this.#pos++] = 48 + n;
      return;
    }
    if (n < 2147483648 && n > 0 && (n | 0) === n) {
      const len =
        n < 100
          ? 2
          : n < 1000
            ? 3
            : n < 10000
              ? 4
              : n < 100000
                ? 5
                : n < 1000000
                  ? 6
                  : n < 10000000
                    ? 7
                    : n < 100000000
                      ? 8
                      : n < 1000000000
                        ? 9
                        : 10;
      const o = this.#out;
      let p = this.#pos + len;
      this.#pos = p;
      let v = n | 0;
      while (v >= 10) {
        const q = (v / 10) | 0;
        o[--p] = 48 + v - q * 10;
        v = q;
      }
      o[--p] = 48 + v;
      return;
    }
    this.#putAscii(Number.isFinite(n) ? counterString(n) : "0");
  }

  #putCounter(v: Counter): void {
    if (typeof v === "number") this.#putUint(v);
    else this.#putAscii(v.toString());
  }

  /**
   * Integer nanoseconds from ms; integer ms (the common case) written as digits + six digits of the
   * millisecond remainder + "000000", never through a float multiplication.
   */
  #putNs(ms: number): void {
    if (ms === 0) {
      this.#out[this.#pos++] = 48;
    } else if (ms >= 1e6 && ms < 1e15 && Math.floor(ms) === ms) {
      const hi = Math.floor(ms / 1e6);
      this.#putUint(hi);
      let lo = (ms - hi * 1e6) | 0;
      const o = this.#out;
      const p = this.#pos;
      for (let i = 5; i >= 0; i--) {
        const q = (lo / 10) | 0;
        o[p + i] = 48 + lo - q * 10;
        lo = q;
      }
      for (let i = 6; i < 12; i++) o[p + i] = 48;
      this.#pos = p + 12;
    } else {
      this.#putAscii(msToNs(ms));
    }
  }

  /**
   * A JSON string: printable ASCII copied as is, anything else through JSON.stringify and UTF-8. The caller
   * has ensured room for the ASCII case (length + 2); the escaping path ensures for itself.
   */
  #putString(text: string): void {
    const n = text.length;
    const o = this.#out;
    const start = this.#pos;
    o[start] = 34;
    let p = start + 1;
    for (let i = 0; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c < 0x20 || c === 34 || c === 92 || c > 0x7e) {
        this.#putStringSlow(text, start);
        return;
      }
      o[p++] = c;
    }
    o[p] = 34;
    this.#pos = p + 1;
  }

  #putStringSlow(text: string, start: number): void {
    const json = JSON.stringify(text);
    this.#pos = start;
    this.#ensure(json.length * 3);
    this.#pos += ENC.encodeInto(json, this.#out.subarray(this.#pos)).written;
  }

  #putMac(mac: number): void {
    if (mac === 0) {
      this.#put(ZERO_MAC_Q);
      return;
    }
    const hi = Math.floor(mac / 4294967296) & 0xffff;
    const lo = mac >>> 0;
    const o = this.#out;
    const h = HEXB;
    let p = this.#pos;
    o[p] = 34;
    let b = (hi >>> 8) * 2;
    o[p + 1] = h[b]!;
    o[p + 2] = h[b + 1]!;
    o[p + 3] = 58;
    b = (hi & 0xff) * 2;
    o[p + 4] = h[b]!;
    o[p + 5] = h[b + 1]!;
    o[p + 6] = 58;
    b = (lo >>> 24) * 2;
    o[p + 7] = h[b]!;
    o[p + 8] = h[b + 1]!;
    o[p + 9] = 58;
    b = ((lo >>> 16) & 0xff) * 2;
    o[p + 10] = h[b]!;
    o[p + 11] = h[b + 1]!;
    o[p + 12] = 58;
    b = ((lo >>> 8) & 0xff) * 2;
    o[p + 13] = h[b]!;
    o[p + 14] = h[b + 1]!;
    o[p + 15] = 58;
    b = (lo & 0xff) * 2;
    o[p + 16] = h[b]!;
    o[p + 17] = h[b + 1]!;
    o[p + 18] = 34;
    p += 19;
    this.#pos = p;
  }

  /** `"a.b.c.d"`: an IPv4 address given as an unsigned 32-bit number, quoted (room ensured by the caller). */
  #putIPv4(v: number): void {
    this.#out[this.#pos] = 34;
    const p = writeIPv4(this.#out, this.#pos + 1, v);
    this.#out[p] = 34;
    this.#pos = p + 1;
  }

  /** `"a.b.c.d/len"` of a masked IPv4 network (as putNetwork renders it). */
  #putIPv4Network(masked: number, len: number): void {
    this.#out[this.#pos] = 34;
    let p = writeIPv4(this.#out, this.#pos + 1, masked);
    this.#out[p++] = 47;
    p = writeOctet(this.#out, p, len);
    this.#out[p] = 34;
    this.#pos = p + 1;
  }

  /** `"addr/len"` of an address given as text (as networkString renders it). */
  #putNetwork(addr: string, len: number): void {
    if (len === 0 && parseIPv4Number(addr) >= 0) this.#put(NET_V4_ZERO);
    else this.#putAscii(networkString(addr, len));
  }

  #putNumberList(list: readonly number[] | null): void {
    this.#out[this.#pos++] = 91;
    if (list !== null) {
      this.#ensure(list.length * 21);
      for (let i = 0; i < list.length; i++) {
        if (i > 0) this.#out[this.#pos++] = 44;
        this.#putUint(list[i]!);
      }
    }
    this.#out[this.#pos++] = 93;
  }

  #putStringList(list: readonly string[] | null): void {
    this.#out[this.#pos++] = 91;
    if (list !== null) {
      for (let i = 0; i < list.length; i++) {
        this.#ensure(list[i]!.length * 6 + 4);
        if (i > 0) this.#out[this.#pos++] = 44;
        this.#putString(list[i]!);
      }
    }
    this.#ensure(1);
    this.#out[this.#pos++] = 93;
  }

  #putValue(v: number | bigint | string | boolean): void {
    switch (typeof v) {
      case "string":
        this.#ensure(v.length + 2);
        this.#putString(v);
        return;
      case "bigint":
        this.#putAscii(v.toString());
        return;
      case "boolean":
        this.#putAscii(v ? "true" : "false");
        return;
      default:
        // putUint writes integers only (a fraction below 10 would come out as its first digit)
        if (v >= 0 && Number.isInteger(v)) this.#putUint(v);
        else this.#putAscii(Number.isFinite(v) ? (Number.isInteger(v) ? counterString(v) : `${v}`) : "null");
    }
  }

  /** The options-dictionary fields (issue 18), each only when known; off the common path (no VRF, no app). */
  #putDictionaries(r: FlowRecord): void {
    const inName = r.in_vrf_name;
    const outName = r.out_vrf_name;
    const rd = r.mpls_vpn_rd;
    const app = r.application_name;
    this.#ensure(256 + 6 * (inName.length + outName.length + rd.length + app.length));
    if (r.in_vrf_id !== null) {
      this.#put(K_IN_VRF_ID);
      this.#putUint(r.in_vrf_id);
    }
    if (r.out_vrf_id !== null) {
      this.#put(K_OUT_VRF_ID);
      this.#putUint(r.out_vrf_id);
    }
    if (inName !== "") {
      this.#put(K_IN_VRF_NAME);
      this.#putString(inName);
    }
    if (outName !== "") {
      this.#put(K_OUT_VRF_NAME);
      this.#putString(outName);
    }
    if (rd !== "") {
      this.#put(K_RD);
      this.#putString(rd);
    }
    if (app !== "") {
      this.#put(K_APP_NAME);
      this.#putString(app);
    }
  }

  #copySeg(start: number, end: number): void {
    this.#out.copyWithin(this.#pos, start, end);
    this.#pos += end - start;
  }

  #resetSegments(): void {
    this.#aStart = -1;
    this.#b1Start = -1;
    this.#b2Start = -1;
    this.#cStart = -1;
    this.#d1Start = -1;
    this.#d2Start = -1;
    this.#sStart = -1;
    this.#tStart = -1;
    this.#eStart = -1;
  }

  /**
   * `"a.b.c.d/len",` + `"dst_net":` (segment S) for an IPv4 source given as a number. Segment key: the masked
   * network and length, with sAddr = FROM_NUMBER; length 0 renders "0.0.0.0/0" (key −2); a length no IPv4
   * prefix has renders "invalid Prefix" and is not kept as a segment.
   */
  #writeNumberNetS(v: number, len: number): void {
    const masked = len === 0 ? -2 : maskIPv4(v, len);
    if (masked === -1) {
      this.#putAscii(INVALID_PREFIX);
      this.#put(K_DST_NET);
      this.#sStart = -1;
      return;
    }
    if (this.#sStart >= 0 && this.#sAddr === FROM_NUMBER && masked === this.#sMasked && len === this.#sLen) {
      this.#copySeg(this.#sStart, this.#sEnd);
      return;
    }
    this.#sStart = this.#pos;
    if (masked >= 0) this.#putIPv4Network(masked, len);
    else this.#put(NET_V4_ZERO);
    this.#put(K_DST_NET);
    this.#sEnd = this.#pos;
    this.#sLen = len;
    this.#sMasked = masked;
    this.#sAddr = FROM_NUMBER;
  }

  /** `"a.b.c.d/len"` (segment T) for an IPv4 destination given as a number; keyed as writeNumberNetS. */
  #writeNumberNetT(v: number, len: number): void {
    const masked = len === 0 ? -2 : maskIPv4(v, len);
    if (masked === -1) {
      this.#putAscii(INVALID_PREFIX);
      this.#tStart = -1;
      return;
    }
    if (this.#tStart >= 0 && this.#tAddr === FROM_NUMBER && masked === this.#tMasked && len === this.#tLen) {
      this.#copySeg(this.#tStart, this.#tEnd);
      return;
    }
    this.#tStart = this.#pos;
    if (masked >= 0) this.#putIPv4Network(masked, len);
    else this.#put(NET_V4_ZERO);
    this.#tEnd = this.#pos;
    this.#tLen = len;
    this.#tMasked = masked;
    this.#tAddr = FROM_NUMBER;
  }

  /** Appends one record's JSON object to the scratch buffer. */
  #writeRecord(r: FlowRecord): void {
    const sampler = r.sampler_address;
    // IPv4 addresses decoded from the wire are numbers (written digit by digit, no string); text otherwise
    const src4 = r.src_v4;
    const dst4 = r.dst_v4;
    const nextHop4 = r.next_hop_v4;
    const src = src4 >= 0 ? "" : r.src_addr_text;
    const dst = dst4 >= 0 ? "" : r.dst_addr_text;
    const nextHop = nextHop4 >= 0 ? "" : r.next_hop_text;
    const bgpNh4 = r.bgp_next_hop_v4;
    const bgpNh = bgpNh4 >= 0 ? "" : r.bgp_next_hop_text;
    const switchId = r.switch_id;
    const inName = r.in_if_name;
    const outName = r.out_if_name;
    // One bound for the whole record: every fixed-size fast path fits in 2048 bytes, a string takes at most
    // 6 bytes per UTF-16 unit (+ quotes); slow paths (bigints, lists, extras, escapes) ensure for themselves.
    this.#ensure(
      2048 +
        6 *
          (sampler.length +
            src.length +
            dst.length +
            nextHop.length +
            bgpNh.length +
            switchId.length +
            inName.length +
            outName.length),
    );

    const type = r.type;
    const received = r.time_received_ms;
    if (this.#aStart >= 0 && type === this.#aType && received === this.#aMs) {
      this.#copySeg(this.#aStart, this.#aEnd);
    } else {
      this.#aStart = this.#pos;
      this.#put(TYPE_Q[type] ?? K(`{"type":${JSON.stringify(String(type))},"time_received_ns":`));
      this.#putNs(received);
      this.#put(K_SEQ);
      this.#aEnd = this.#pos;
      this.#aType = type;
      this.#aMs = received;
    }
    this.#putUint(r.sequence_num);

    const rate = r.sampling_rate;
    if (this.#b1Start >= 0 && rate === this.#b1Rate && sampler === this.#b1Sampler) {
      this.#copySeg(this.#b1Start, this.#b1End);
    } else {
      this.#b1Start = this.#pos;
      if (rate === 0) {
        this.#put(K_RATE0_SAMPLER);
      } else {
        this.#put(K_RATE);
        this.#putUint(rate);
        this.#put(K_SAMPLER);
      }
      this.#putString(sampler);
      this.#put(K_START);
      this.#b1End = this.#pos;
      this.#b1Rate = rate;
      this.#b1Sampler = sampler;
    }

    const first = r.time_flow_start_ms;
    const last = r.time_flow_end_ms;
    if (this.#b2Start >= 0 && first === this.#b2First && last === this.#b2Last) {
      this.#copySeg(this.#b2Start, this.#b2End);
    } else {
      this.#b2Start = this.#pos;
      this.#putNs(first);
      this.#put(K_END);
      this.#putNs(last);
      this.#put(K_BYTES);
      this.#b2End = this.#pos;
      this.#b2First = first;
      this.#b2Last = last;
    }
    this.#putCounter(r.bytes);
    this.#put(K_PACKETS);
    this.#putCounter(r.packets);
    this.#put(K_SRC);
    if (src4 >= 0) this.#putIPv4(src4);
    else this.#putString(src);

    const etype = r.etype;
    const proto = r.proto;
    if (
      this.#cStart >= 0 &&
      dst4 === this.#cDst4 &&
      dst === this.#cDst &&
      etype === this.#cEtype &&
      proto === this.#cProto
    ) {
      this.#copySeg(this.#cStart, this.#cEnd);
    } else {
      this.#cStart = this.#pos;
      this.#put(K_DST);
      if (dst4 >= 0) this.#putIPv4(dst4);
      else this.#putString(dst);
      if (proto >= 0 && proto < 256 && (proto | 0) === proto) {
        this.#put(
          ETYPE_PROTO[etype === 0x0800 ? 0 : etype === 0x86dd ? 1 : etype === 0x0806 ? 2 : 3]![proto]!,
        );
      } else {
        this.#putAscii(`,"etype":${etypeQ(etype)},"proto":${protoQ(proto)},"src_port":`);
      }
      this.#cEnd = this.#pos;
      this.#cDst = dst;
      this.#cDst4 = dst4;
      this.#cEtype = etype;
      this.#cProto = proto;
    }
    this.#putUint(r.src_port);
    this.#put(K_DPORT);
    this.#putUint(r.dst_port);

    const inIf = r.in_if;
    const outIf = r.out_if;
    const srcMac = r.src_mac;
    const dstMac = r.dst_mac;
    const srcVlan = r.src_vlan;
    const dstVlan = r.dst_vlan;
    const vlanId = r.vlan_id;
    const tos = r.ip_tos;
    const fwd = r.forwarding_status;
    const ttl = r.ip_ttl;
    const flags = r.ip_flags;
    if (
      this.#d1Start >= 0 &&
      inIf === this.#d1InIf &&
      outIf === this.#d1OutIf &&
      srcMac === this.#d1SrcMac &&
      dstMac === this.#d1DstMac &&
      srcVlan === this.#d1SrcVlan &&
      dstVlan === this.#d1DstVlan &&
      vlanId === this.#d1VlanId &&
      tos === this.#d1Tos &&
      fwd === this.#d1Fwd &&
      ttl === this.#d1Ttl &&
      flags === this.#d1Flags
    ) {
      this.#copySeg(this.#d1Start, this.#d1End);
    } else {
      this.#d1Start = this.#pos;
      this.#put(K_IN_IF);
      this.#putUint(inIf);
      this.#put(K_OUT_IF);
      this.#putUint(outIf);
      this.#put(K_SRC_MAC);
      this.#putMac(srcMac);
      this.#put(K_DST_MAC);
      this.#putMac(dstMac);
      if (
        srcVlan === 0 &&
        dstVlan === 0 &&
        vlanId === 0 &&
        tos === 0 &&
        fwd === 0 &&
        ttl === 0 &&
        flags === 0
      ) {
        this.#put(G1_ZERO_TCP);
      } else {
        this.#put(G1_KEYS[0]!);
        this.#putUint(srcVlan);
        this.#put(G1_KEYS[1]!);
        this.#putUint(dstVlan);
        this.#put(G1_KEYS[2]!);
        this.#putUint(vlanId);
        this.#put(G1_KEYS[3]!);
        this.#putUint(tos);
        this.#put(G1_KEYS[4]!);
        this.#putUint(fwd);
        this.#put(G1_KEYS[5]!);
        this.#putUint(ttl);
        this.#put(G1_KEYS[6]!);
        this.#putUint(flags);
        this.#put(K_TCP);
      }
      this.#d1End = this.#pos;
      this.#d1InIf = inIf;
      this.#d1OutIf = outIf;
      this.#d1SrcMac = srcMac;
      this.#d1DstMac = dstMac;
      this.#d1SrcVlan = srcVlan;
      this.#d1DstVlan = dstVlan;
      this.#d1VlanId = vlanId;
      this.#d1Tos = tos;
      this.#d1Fwd = fwd;
      this.#d1Ttl = ttl;
      this.#d1Flags = flags;
    }
    this.#putUint(r.tcp_flags);

    const icmpType = r.icmp_type;
    const icmpCode = r.icmp_code;
    const label = r.ipv6_flow_label;
    const fragId = r.fragment_id;
    const fragOff = r.fragment_offset;
    const srcAs = r.src_as;
    const dstAs = r.dst_as;
    const nextHopAs = r.next_hop_as;
    if (
      this.#d2Start >= 0 &&
      nextHop4 === this.#d2NextHop4 &&
      nextHop === this.#d2NextHop &&
      nextHopAs === this.#d2NextHopAs &&
      icmpType === this.#d2IcmpType &&
      icmpCode === this.#d2IcmpCode &&
      label === this.#d2Label &&
      fragId === this.#d2FragId &&
      fragOff === this.#d2FragOff &&
      srcAs === this.#d2SrcAs &&
      dstAs === this.#d2DstAs
    ) {
      this.#copySeg(this.#d2Start, this.#d2End);
    } else {
      this.#d2Start = this.#pos;
      if (
        icmpType === 0 &&
        icmpCode === 0 &&
        label === 0 &&
        fragId === 0 &&
        fragOff === 0 &&
        srcAs === 0 &&
        dstAs === 0
      ) {
        this.#put(G2_ZERO_NEXT_HOP);
      } else {
        this.#put(G2_KEYS[0]!);
        this.#putUint(icmpType);
        this.#put(G2_KEYS[1]!);
        this.#putUint(icmpCode);
        this.#put(G2_KEYS[2]!);
        this.#putUint(label);
        this.#put(G2_KEYS[3]!);
        this.#putUint(fragId);
        this.#put(G2_KEYS[4]!);
        this.#putUint(fragOff);
        this.#put(G2_KEYS[5]!);
        this.#putUint(srcAs);
        this.#put(G2_KEYS[6]!);
        this.#putUint(dstAs);
        this.#put(K_NEXT_HOP);
      }
      if (nextHop4 >= 0) this.#putIPv4(nextHop4);
      else this.#putString(nextHop);
      if (nextHopAs === 0) {
        this.#put(K_NEXT_HOP_AS0_SRC_NET);
      } else {
        this.#put(K_NEXT_HOP_AS);
        this.#putUint(nextHopAs);
        this.#put(K_SRC_NET);
      }
      this.#d2End = this.#pos;
      this.#d2NextHop = nextHop;
      this.#d2NextHop4 = nextHop4;
      this.#d2NextHopAs = nextHopAs;
      this.#d2IcmpType = icmpType;
      this.#d2IcmpCode = icmpCode;
      this.#d2Label = label;
      this.#d2FragId = fragId;
      this.#d2FragOff = fragOff;
      this.#d2SrcAs = srcAs;
      this.#d2DstAs = dstAs;
    }

    const srcNet = r.src_net;
    if (src4 >= 0) {
      this.#writeNumberNetS(src4, srcNet);
    } else if (this.#sStart >= 0 && src === this.#sAddr && srcNet === this.#sLen) {
      this.#copySeg(this.#sStart, this.#sEnd);
    } else {
      // Another address of the same IPv4 network renders the same text: key on the masked address too.
      const masked = maskedIPv4(src, srcNet);
      if (this.#sStart >= 0 && masked >= 0 && masked === this.#sMasked && srcNet === this.#sLen) {
        this.#copySeg(this.#sStart, this.#sEnd);
      } else {
        this.#sStart = this.#pos;
        if (masked >= 0) this.#putIPv4Network(masked, srcNet);
        else this.#putNetwork(src, srcNet);
        this.#put(K_DST_NET);
        this.#sEnd = this.#pos;
        this.#sLen = srcNet;
        this.#sMasked = masked;
      }
      this.#sAddr = src;
    }
    const dstNet = r.dst_net;
    if (dst4 >= 0) {
      this.#writeNumberNetT(dst4, dstNet);
    } else if (this.#tStart >= 0 && dst === this.#tAddr && dstNet === this.#tLen) {
      this.#copySeg(this.#tStart, this.#tEnd);
    } else {
      const masked = maskedIPv4(dst, dstNet);
      if (this.#tStart >= 0 && masked >= 0 && masked === this.#tMasked && dstNet === this.#tLen) {
        this.#copySeg(this.#tStart, this.#tEnd);
      } else {
        this.#tStart = this.#pos;
        if (masked >= 0) this.#putIPv4Network(masked, dstNet);
        else this.#putNetwork(dst, dstNet);
        this.#tEnd = this.#pos;
        this.#tLen = dstNet;
        this.#tMasked = masked;
      }
      this.#tAddr = dst;
    }

    const communities = r.bgp_communities;
    const asPath = r.as_path;
    const labels = r.mpls_label;
    const obsDomain = r.observation_domain_id;
    const obsPoint = r.observation_point_id;
    const srcSgt = r.src_sgt;
    const dstSgt = r.dst_sgt;
    const direction = r.flow_direction;
    const mplsTtl = r.mpls_ttl;
    const mplsIp = r.mpls_ip;
    const rhAddresses = r.ipv6_routing_header_addresses;
    const rhSegLeft = r.ipv6_routing_header_seg_left;
    const listsEmpty =
      emptyList(communities) &&
      emptyList(asPath) &&
      emptyList(labels) &&
      emptyList(mplsTtl) &&
      (mplsIp === null || mplsIp.length === 0) &&
      (rhAddresses === null || rhAddresses.length === 0) &&
      rhSegLeft === 0;
    const eHit =
      this.#eStart >= 0 &&
      listsEmpty &&
      switchId === this.#eSwitch &&
      obsDomain === this.#eObsDomain &&
      obsPoint === this.#eObsPoint &&
      srcSgt === this.#eSrcSgt &&
      dstSgt === this.#eDstSgt &&
      direction === this.#eDirection &&
      inName === this.#eInName &&
      outName === this.#eOutName;
    if (eHit && bgpNh4 === this.#eBgpNh4 && bgpNh === this.#eBgpNh) {
      this.#copySeg(this.#eStart, this.#eEnd);
    } else if (eHit) {
      // another BGP next hop (they vary from flow to flow): write it, copy what follows it
      const start = this.#pos;
      this.#put(K_BGP_NH);
      if (bgpNh4 >= 0) this.#putIPv4(bgpNh4);
      else this.#putString(bgpNh);
      const rest = this.#pos;
      this.#copySeg(this.#eRest, this.#eEnd);
      this.#eStart = start;
      this.#eRest = rest;
      this.#eEnd = this.#pos;
      this.#eBgpNh = bgpNh;
      this.#eBgpNh4 = bgpNh4;
    } else {
      const start = this.#pos;
      this.#put(K_BGP_NH);
      if (bgpNh4 >= 0) this.#putIPv4(bgpNh4);
      else this.#putString(bgpNh);
      const rest = this.#pos;
      if (listsEmpty && obsDomain === 0 && obsPoint === 0) {
        this.#put(TAIL_DEFAULT);
      } else {
        this.#put(K_COMMUNITIES);
        this.#putNumberList(communities);
        this.#put(K_AS_PATH);
        this.#putNumberList(asPath);
        this.#put(K_MPLS_TTL);
        this.#putNumberList(mplsTtl);
        this.#put(K_MPLS_LABEL);
        this.#putNumberList(labels);
        this.#put(K_MPLS_IP);
        this.#putStringList(mplsIp);
        this.#put(K_OBS_DOMAIN);
        this.#putUint(obsDomain);
        this.#put(K_OBS_POINT);
        this.#putUint(obsPoint);
        this.#put(K_RH_ADDRESSES);
        this.#putStringList(rhAddresses);
        this.#put(K_RH_SEG_LEFT);
        this.#putUint(rhSegLeft);
      }
      if (srcSgt !== null) {
        this.#put(K_SRC_SGT);
        this.#putUint(srcSgt);
      }
      if (dstSgt !== null) {
        this.#put(K_DST_SGT);
        this.#putUint(dstSgt);
      }
      this.#put(K_SWITCH);
      this.#putString(switchId);
      if (direction !== null) {
        this.#put(K_DIRECTION);
        this.#putUint(direction);
      }
      if (inName !== "") {
        this.#put(K_IN_NAME);
        this.#putString(inName);
      }
      if (outName !== "") {
        this.#put(K_OUT_NAME);
        this.#putString(outName);
      }
      if (listsEmpty) {
        this.#eStart = start;
        this.#eRest = rest;
        this.#eEnd = this.#pos;
        this.#eSwitch = switchId;
        this.#eBgpNh = bgpNh;
        this.#eBgpNh4 = bgpNh4;
        this.#eObsDomain = obsDomain;
        this.#eObsPoint = obsPoint;
        this.#eSrcSgt = srcSgt;
        this.#eDstSgt = dstSgt;
        this.#eDirection = direction;
        this.#eInName = inName;
        this.#eOutName = outName;
      }
    }

    if (r.in_vrf_id !== null || r.out_vrf_id !== null || r.application_name !== "") this.#putDictionaries(r);
    if (
      r.post_nat_src_addr !== "" ||
      r.post_nat_dst_addr !== "" ||
      r.post_nat_src_port !== null ||
      r.post_nat_dst_port !== null ||
      r.reverse_bytes !== null ||
      r.reverse_packets !== null
    )
      this.#writeNatReverse(r);
    const extra = r.extra;
    if (extra !== null) {
      for (const k in extra) {
        if (EMITTED.has(k)) continue;
        this.#ensure(k.length + 32);
        this.#out[this.#pos++] = 44;
        this.#putString(k);
        this.#out[this.#pos++] = 58;
        this.#putValue(extra[k]!);
      }
      this.#ensure(2);
    }
    this.#out[this.#pos++] = 125;
  }

  /** Our NAT and biflow fields, each only when the exporter sent it. */
  #writeNatReverse(r: FlowRecord): void {
    this.#ensure(256 + 6 * (r.post_nat_src_addr.length + r.post_nat_dst_addr.length));
    if (r.post_nat_src_addr !== "") {
      this.#put(K_NAT_SRC);
      this.#putString(r.post_nat_src_addr);
    }
    if (r.post_nat_dst_addr !== "") {
      this.#put(K_NAT_DST);
      this.#putString(r.post_nat_dst_addr);
    }
    if (r.post_nat_src_port !== null) {
      this.#put(K_NAT_SRC_PORT);
      this.#putUint(r.post_nat_src_port);
    }
    if (r.post_nat_dst_port !== null) {
      this.#put(K_NAT_DST_PORT);
      this.#putUint(r.post_nat_dst_port);
    }
    if (r.reverse_bytes !== null) {
      this.#put(K_REV_BYTES);
      this.#putCounter(r.reverse_bytes);
    }
    if (r.reverse_packets !== null) {
      this.#put(K_REV_PACKETS);
      this.#putCounter(r.reverse_packets);
    }
  }

  #release(): void {
    if (this.#out.length > 16 << 20) {
      this.#out = new Uint8Array(1 << 20);
      this.#singles = false;
    }
  }

  /**
   * A batch is written straight into a buffer from the batch buffer pool, sized from recent batches (grown
   * by `ensure` when a batch is larger), so the bytes are not copied out of the scratch buffer afterwards.
   * Returns the scratch buffer, which the caller puts back into `#out` when done.
   */
  #beginBatch(records: number): Uint8Array<ArrayBuffer> {
    const scratch = this.#out;
    this.#out = new Uint8Array(
      batchBuffers.take(Math.ceil(records * this.#bytesPerRecord * 1.1) + 4096).buffer,
    );
    this.#pos = 0;
    this.#resetSegments();
    this.#singles = false;
    return scratch;
  }

  /** The batch's bytes: a view at offset 0 of the (pooled, transferable) buffer they were written into. */
  #endBatch(records: number): Uint8Array {
    if (records > 0) this.#bytesPerRecord = this.#bytesPerRecord * 0.75 + (this.#pos / records) * 0.25;
    return new Uint8Array(this.#out.buffer, 0, this.#pos);
  }

  /** One flow as a GoFlow2 v2 JSON object (no trailing newline). */
  line(r: FlowRecord): string {
    if (this.#openScratch !== null) throw new Error("Goflow2Writer: line() while a batch is open");
    // Successive single records are written one after another into the scratch buffer (so the segments of
    // the previous ones stay valid), restarting at 0 when it fills or after a batch.
    if (!this.#singles || this.#pos > SINGLES_LIMIT) {
      if (this.#out.length === 0) this.#out = new Uint8Array(1 << 16);
      this.#pos = 0;
      this.#resetSegments();
      this.#singles = true;
    }
    const start = this.#pos;
    this.#writeRecord(r);
    const text = Buffer.from(this.#out.buffer, this.#out.byteOffset + start, this.#pos - start).toString(
      "utf8",
    );
    this.#release();
    return text;
  }

  /**
   * Newline-terminated GoFlow2 lines: a view at offset 0 of a transferable buffer from the batch buffer pool
   * (src/pipeline/buffer-pool.ts; the buffer may be longer than the view). The same bytes as `begin`, one
   * `append` per record and `end`.
   */
  lines(records: readonly FlowRecord[]): Uint8Array {
    this.begin(records.length);
    try {
      for (let i = 0; i < records.length; i++) this.append(records[i]!);
    } catch (err) {
      this.end(); // the batch is lost; the writer is ready for the next
      throw err;
    }
    return this.end();
  }

  /** True between `begin` and `end` (a batch is open). */
  get open(): boolean {
    return this.#openScratch !== null;
  }

  /**
   * Opens a batch of lines written one record at a time (`append`), into the buffer the last `end` took
   * from the batch buffer pool (the first: a buffer of the pool's, uncounted; grown as needed). Taking a
   * pooled buffer only when the batch opens would hold it while the batch fills, so the pool would serve
   * one fewer batch from recycled buffers; copying the lines out at `end` cost more than the streaming
   * saved. `line` and `framed` must not be called until `end`.
   */
  begin(expected: number): void {
    if (this.#openScratch !== null) throw new Error("Goflow2Writer: a batch is already open");
    this.#openScratch = this.#out;
    const want = Math.ceil(expected * this.#bytesPerRecord * 1.1) + 4096;
    if (this.#streamed.length < want) this.#streamed = batchBuffers.own(want);
    this.#out = this.#streamed;
    this.#pos = 0;
    this.#resetSegments();
    this.#singles = false;
    this.#openRecords = 0;
  }

  /**
   * Writes one record's line into the open batch. Keeps nothing of the record (only its values, in the
   * segment caches): the caller may refill it afterwards. When it throws, the batch is as before the call.
   */
  append(r: FlowRecord): void {
    const at = this.#pos;
    try {
      this.#writeRecord(r);
      this.#out[this.#pos++] = 10;
    } catch (err) {
      this.#pos = at;
      this.#resetSegments(); // a segment may lie in the bytes just dropped
      throw err;
    }
    this.#lastStart = at;
    this.#openRecords++;
  }

  /** Bytes of the last appended record's JSON object (its line without the newline). */
  get lastLength(): number {
    return this.#pos - 1 - this.#lastStart;
  }

  /** Copies the last appended record's JSON object (no newline) into `dst` at `at`. */
  copyLast(dst: Uint8Array, at: number): void {
    dst.set(this.#out.subarray(this.#lastStart, this.#pos - 1), at);
  }

  /** Closes the open batch, if any, dropping its bytes (a consumer that copied what it needed). */
  drop(): void {
    if (this.#openScratch === null) return;
    this.#streamed = this.#out.length > 64 << 20 ? new Uint8Array(0) : this.#out;
    this.#out = this.#openScratch;
    this.#openScratch = null;
    this.#openRecords = 0;
  }

  /**
   * Closes the open batch: its lines (as `lines`), a view at offset 0 of a pooled transferable buffer, or
   * an empty array when nothing was appended.
   */
  end(): Uint8Array {
    const scratch = this.#openScratch;
    if (scratch === null) throw new Error("Goflow2Writer: no batch is open");
    const n = this.#pos;
    let data: Uint8Array = new Uint8Array(0);
    if (n > 0) {
      // the batch leaves in this buffer; the next one is written into a buffer taken from the pool now,
      // when a batch encoded at once would have taken its own
      data = new Uint8Array(this.#out.buffer, 0, n);
      this.#streamed = new Uint8Array(batchBuffers.take(n).buffer);
      const records = this.#openRecords;
      if (records > 0) this.#bytesPerRecord = this.#bytesPerRecord * 0.75 + (n / records) * 0.25;
    }
    this.#out = scratch;
    this.#openScratch = null;
    this.#openRecords = 0;
    return data;
  }

  /**
   * The records' JSON objects (no newlines) back to back in one transferable buffer, with `ends[i]` the end
   * offset of record i (for per-record messages, e.g. Kafka).
   */
  framed(records: readonly FlowRecord[]): { data: Uint8Array; ends: Uint32Array } {
    if (this.#openScratch !== null) throw new Error("Goflow2Writer: framed() while a batch is open");
    const ends = new Uint32Array(records.length);
    const scratch = this.#beginBatch(records.length);
    try {
      for (let i = 0; i < records.length; i++) {
        this.#writeRecord(records[i]!);
        ends[i] = this.#pos;
      }
      return { data: this.#endBatch(records.length), ends };
    } finally {
      this.#out = scratch;
    }
  }
}

/**
 * One flow as a GoFlow2 v2 JSON object (no trailing newline), with a writer of its own: for one-off use
 * (tests, examples). A stream of records keeps a `Goflow2Writer` and calls `line`.
 */
export function encodeGoflow2(r: FlowRecord): string {
  return new Goflow2Writer().line(r);
}

/**
 * `Goflow2Writer.framed` for callers without a writer of their own (a fresh writer per call, so the batch
 * buffer is sized without the moving average of earlier batches).
 */
export function encodeGoflow2Framed(
  records: readonly FlowRecord[],
  writer: Goflow2Writer = new Goflow2Writer(),
): { data: Uint8Array; ends: Uint32Array } {
  return writer.framed(records);
}
