/**
 * The normalized flow record every protocol decodes into and every sink consumes (DESIGN §3).
 *
 * Field names follow GoFlow2's JSON so its consumers keep working. Values are kept in their cheapest exact
 * form and rendered by the encoders (src/encode/):
 * - times are milliseconds since the Unix epoch (a fraction carries sub-millisecond precision); encoders
 *   render GoFlow2's integer `*_ns` from them; 0 means unknown;
 * - addresses read as text ("" when absent); an IPv4 `src_addr`/`dst_addr`/`next_hop`/`bgp_next_hop` decoded
 *   from the wire is kept as its unsigned 32-bit number (`src_v4`...) and rendered to text only when read, so
 *   the encoders write it from the number and no string is made (assigning text sets the number to −1);
 * - MACs are 48-bit integers, etype/proto are numbers;
 * - 64-bit counters are numbers while exact, bigint above 2^53 (never rounded silently);
 * - src_net/dst_net are prefix lengths (GoFlow2 renders "addr/len" from them).
 * Every field is initialized in the constructor so that all records share one hidden class.
 */

// FlowRecord.type values come from the decoder registry (a type-only import: no runtime dependency).
import type { FlowType } from "../protocols/index.ts";
import { ipv4Text } from "./address.ts";

export type { FlowType };

/** A 64-bit counter: a number while exact (≤ 2^53), a bigint above. */
export type Counter = number | bigint;

/** One decoded information element, kept when the decoder is asked for elements (decode --elements). */
export interface DecodedElement {
  /** Private enterprise number; 0 for IANA elements and NetFlow v9 field types. */
  pen: number;
  id: number;
  /** IANA name, known vendor name, or `<pen>.<id>`. */
  name: string;
  /** Rendered by type: number (string above 2^53), address/MAC/text strings, hex for octets. */
  value: number | string | boolean;
}

export class FlowRecord {
  type: FlowType = "IPFIX";
  time_received_ms = 0;
  sequence_num = 0;
  sampling_rate = 0;
  sampler_address = "";
  time_flow_start_ms = 0;
  time_flow_end_ms = 0;
  bytes: Counter = 0;
  packets: Counter = 0;
  /** IPv4 source address as an unsigned 32-bit number; −1 when the address is the text in `src_addr`. */
  src_v4 = -1;
  /** IPv4 destination address as a number, as `src_v4`. */
  dst_v4 = -1;
  /** Text storage of `src_addr`/`dst_addr` while no number is set (own fields, so a copy keeps them). */
  src_addr_text = "";
  dst_addr_text = "";
  etype = 0;
  proto = 0;
  src_port = 0;
  dst_port = 0;
  in_if = 0;
  out_if = 0;
  src_mac = 0;
  dst_mac = 0;
  src_vlan = 0;
  dst_vlan = 0;
  vlan_id = 0;
  ip_tos = 0;
  forwarding_status = 0;
  ip_ttl = 0;
  ip_flags = 0;
  tcp_flags = 0;
  icmp_type = 0;
  icmp_code = 0;
  ipv6_flow_label = 0;
  fragment_id = 0;
  fragment_offset = 0;
  src_as = 0;
  dst_as = 0;
  /** IPv4 next hop as a number, as `src_v4`. */
  next_hop_v4 = -1;
  next_hop_text = "";
  next_hop_as = 0;
  src_net = 0;
  dst_net = 0;
  /** IPv4 BGP next hop as a number, as `src_v4`. */
  bgp_next_hop_v4 = -1;
  bgp_next_hop_text = "";
  bgp_communities: number[] | null = null;
  as_path: number[] | null = null;
  mpls_label: number[] | null = null;
  /** MPLS top label addresses (IEs 47/140), as GoFlow2's mpls_ip. */
  mpls_ip: string[] | null = null;
  /** TTLs of the MPLS label stack entries (parsed packet headers), in `mpls_label` order. */
  mpls_ttl: number[] | null = null;
  /** IPv6 routing header of a parsed packet header: segments left, and the SRv6 segment list. */
  ipv6_routing_header_addresses: string[] | null = null;
  ipv6_routing_header_seg_left = 0;
  observation_domain_id = 0;
  observation_point_id = 0;
  /** Cisco TrustSec source/destination group tags; null when the exporter sent none. */
  src_sgt: number | null = null;
  dst_sgt: number | null = null;
  /** The exporter as Clarion names it (its IP unless configured otherwise). */
  switch_id = "";
  /** 0 ingress, 1 egress (IANA flowDirection); null when not sent. */
  flow_direction: number | null = null;
  /** Interface names learned from options data (IEs 82/83), "" when unknown. */
  in_if_name = "";
  out_if_name = "";
  /** ingressVRFID / egressVRFID (IEs 234/235); null when not sent. */
  in_vrf_id: number | null = null;
  out_vrf_id: number | null = null;
  /** Resolved from options data (issue 18): VRF names (236) by the ids above, "" when unknown; */
  in_vrf_name = "";
  out_vrf_name = "";
  /** the route distinguisher (90) of the flow's VRF (ingress, else egress) as RFC 4364 text; */
  mpls_vpn_rd = "";
  /** the name (96) of the flow's applicationId (95). */
  application_name = "";
  /** NAT (IEs 225/226, IPv6 281/282): the addresses after translation; "" when not sent. */
  post_nat_src_addr = "";
  post_nat_dst_addr = "";
  /** NAPT (IEs 227/228): the ports after translation; null when not sent. */
  post_nat_src_port: number | null = null;
  post_nat_dst_port: number | null = null;
  /**
   * RFC 5103 biflows: the reverse direction's counters (PEN 29305 octet/packetDeltaCount, the total counts
   * as fallback; NetFlow v9 NSEL responderOctets/Packets 232/299 too); null when not sent.
   */
  reverse_bytes: Counter | null = null;
  reverse_packets: Counter | null = null;
  /** Every other decoded element, by IANA name (vendor elements by known name or `<pen>.<id>`). */
  extra: Record<string, number | bigint | string | boolean> | null = null;
  /** All decoded elements in wire order; only filled when the decoder is asked for them. */
  elements: DecodedElement[] | null = null;
  /** Template/set the record came from (0 for v5 and sFlow). */
  template_id = 0;

  /**
   * Puts every field back to its initial value and returns the record: for a decoder that refills one
   * record per flow when its consumer copies what it keeps (RecordHandler.scratch). Must list every field
   * above (test/core/flow.test.ts checks it against a new record).
   */
  clear(): this {
    this.type = "IPFIX";
    this.time_received_ms = 0;
    this.sequence_num = 0;
    this.sampling_rate = 0;
    this.sampler_address = "";
    this.time_flow_start_ms = 0;
    this.time_flow_end_ms = 0;
    this.bytes = 0;
    this.packets = 0;
    this.src_v4 = -1;
    this.dst_v4 = -1;
    this.src_addr_text = "";
    this.dst_addr_text = "";
    this.etype = 0;
    this.proto = 0;
    this.src_port = 0;
    this.dst_port = 0;
    this.in_if = 0;
    this.out_if = 0;
    this.src_mac = 0;
    this.dst_mac = 0;
    this.src_vlan = 0;
    this.dst_vlan = 0;
    this.vlan_id = 0;
    this.ip_tos = 0;
    this.forwarding_status = 0;
    this.ip_ttl = 0;
    this.ip_flags = 0;
    this.tcp_flags = 0;
    this.icmp_type = 0;
    this.icmp_code = 0;
    this.ipv6_flow_label = 0;
    this.fragment_id = 0;
    this.fragment_offset = 0;
    this.src_as = 0;
    this.dst_as = 0;
    this.next_hop_v4 = -1;
    this.next_hop_text = "";
    this.next_hop_as = 0;
    this.src_net = 0;
    this.dst_net = 0;
    this.bgp_next_hop_v4 = -1;
    this.bgp_next_hop_text = "";
    this.bgp_communities = null;
    this.as_path = null;
    this.mpls_label = null;
    this.mpls_ip = null;
    this.mpls_ttl = null;
    this.ipv6_routing_header_addresses = null;
    this.ipv6_routing_header_seg_left = 0;
    this.observation_domain_id = 0;
    this.observation_point_id = 0;
    this.src_sgt = null;
    this.dst_sgt = null;
    this.switch_id = "";
    this.flow_direction = null;
    this.in_if_name = "";
    this.out_if_name = "";
    this.in_vrf_id = null;
    this.out_vrf_id = null;
    this.in_vrf_name = "";
    this.out_vrf_name = "";
    this.mpls_vpn_rd = "";
    this.application_name = "";
    this.post_nat_src_addr = "";
    this.post_nat_dst_addr = "";
    this.post_nat_src_port = null;
    this.post_nat_dst_port = null;
    this.reverse_bytes = null;
    this.reverse_packets = null;
    this.extra = null;
    this.elements = null;
    this.template_id = 0;
    return this;
  }

  // Addresses: `src_v4` ≥ 0 is the address; else `src_addr_text` is. Assigning `src_addr` sets the text and
  // clears the number; a decoder sets the number alone on a fresh record. Encoders read the number when set.

  /** Source address text ("" when absent): from `src_v4` when that is set, else as assigned. */
  get src_addr(): string {
    return this.src_v4 >= 0 ? ipv4Text(this.src_v4) : this.src_addr_text;
  }
  set src_addr(text: string) {
    this.src_addr_text = text;
    this.src_v4 = -1;
  }
  get dst_addr(): string {
    return this.dst_v4 >= 0 ? ipv4Text(this.dst_v4) : this.dst_addr_text;
  }
  set dst_addr(text: string) {
    this.dst_addr_text = text;
    this.dst_v4 = -1;
  }
  get next_hop(): string {
    return this.next_hop_v4 >= 0 ? ipv4Text(this.next_hop_v4) : this.next_hop_text;
  }
  set next_hop(text: string) {
    this.next_hop_text = text;
    this.next_hop_v4 = -1;
  }
  get bgp_next_hop(): string {
    return this.bgp_next_hop_v4 >= 0 ? ipv4Text(this.bgp_next_hop_v4) : this.bgp_next_hop_text;
  }
  set bgp_next_hop(text: string) {
    this.bgp_next_hop_text = text;
    this.bgp_next_hop_v4 = -1;
  }
}

/** An options data record (NetFlow v9 / IPFIX): exporter metadata, never a flow; sinks do not see them. */
export interface OptionsRecord {
  type: FlowType;
  exporter: string;
  time_received_ms: number;
  observation_domain_id: number;
  template_id: number;
  /** Scope fields by name. */
  scope: Record<string, number | bigint | string | boolean>;
  /** Option values by name. */
  values: Record<string, number | bigint | string | boolean>;
  elements: DecodedElement[] | null;
}

/** One export message's header, announced before its records (decode summaries, tests, debugging). */
export interface MessageInfo {
  /** 5, 9, 10 (IPFIX) or 5 for sFlow v5 with `protocol` telling them apart. */
  version: number;
  protocol: "netflow5" | "netflow9" | "ipfix" | "sflow5";
  exporter: string;
  /** Header record count (v5, v9; sFlow samples), 0 where the header has none (IPFIX). */
  count: number;
  sequence: number;
  /** Export time from the header, ms since the epoch (0 for sFlow, whose header has only uptime). */
  exportTimeMs: number;
  /** v9 source id / IPFIX observation domain (0 for v5). */
  domain: number;
}

/** What a decoder hands its records to. Only `flow` is required; the rest are optional consumers. */
export interface RecordHandler {
  flow(record: FlowRecord): void;
  /**
   * When set, a decoder may hand every flow in this one record, cleared and refilled (no allocation per
   * flow): only for a handler whose consumers copy what they keep before `flow` returns (the archive's
   * column append, the streaming encoders' `append`: src/inputs/outputs.ts). Every decoder of the registry
   * uses it (v5 records, v9/IPFIX data records, sFlow flow samples).
   */
  scratch?: FlowRecord;
  message?(info: MessageInfo): void;
  options?(record: OptionsRecord): void;
  /** sFlow counter samples (interface counters); the record type lives in src/protocols/sflow5.ts. */
  counters?(record: unknown): void;
}
