/**
 * Crafted flow records for the GoFlow2 encoder's golden lines (test/fixtures/golden/goflow2/crafted.jsonl,
 * written by `node tools/golden.ts --write`): each one takes a path of the encoder that the corpus does not
 * (IPv6, bigints, escapes, lists, our optional fields, extras, odd values). Names say what each one covers.
 */
import { FlowRecord } from "../../src/core/flow.ts";

/** The NetFlow v5 flow of a real GoFlow2 v2 output line (times made whole milliseconds). */
export function v5Record(): FlowRecord {
  const r = new FlowRecord();
  r.type = "NETFLOW_V5";
  r.time_received_ms = 1791480278443;
  r.sequence_num = 1;
  r.sampler_address = "127.0.0.1";
  r.time_flow_start_ms = 1791480277443;
  r.time_flow_end_ms = 1791480278443;
  r.bytes = 8400;
  r.packets = 10;
  r.src_addr = "10.0.0.1";
  r.dst_addr = "10.0.0.2";
  r.etype = 0x0800;
  r.proto = 6;
  r.src_port = 12345;
  r.dst_port = 443;
  r.in_if = 1;
  r.out_if = 2;
  r.tcp_flags = 24;
  r.next_hop = "10.0.0.254";
  r.src_net = 24;
  r.dst_net = 24;
  r.switch_id = "127.0.0.1";
  return r;
}

function make(base: () => FlowRecord, change: (r: FlowRecord) => void): () => FlowRecord {
  return () => {
    const r = base();
    change(r);
    return r;
  };
}

/** An IPv6 sFlow flow with every GoFlow2 field set and our additions. */
function ipv6Everything(): FlowRecord {
  const r = new FlowRecord();
  r.type = "SFLOW_5";
  r.time_received_ms = 1700000000123;
  r.sequence_num = 4294967295;
  r.sampling_rate = 1024;
  r.sampler_address = "2001:db8::1";
  r.bytes = 1500;
  r.packets = 1;
  r.src_addr = "2001:db8:1:0:0:0:0:5";
  r.dst_addr = "fe80::abcd:1";
  r.etype = 0x86dd;
  r.proto = 58;
  r.in_if = 3;
  r.out_if = 4294967295;
  r.src_mac = 0xffffffffffff;
  r.dst_mac = 0x000102030405;
  r.src_vlan = 10;
  r.dst_vlan = 20;
  r.vlan_id = 10;
  r.ip_tos = 184;
  r.forwarding_status = 64;
  r.ip_ttl = 64;
  r.ip_flags = 2;
  r.icmp_type = 128;
  r.ipv6_flow_label = 0xfffff;
  r.fragment_id = 7;
  r.fragment_offset = 8;
  r.src_as = 64512;
  r.dst_as = 4200000000;
  r.next_hop = "2001:db8::fe";
  r.next_hop_as = 65000;
  r.src_net = 48;
  r.dst_net = 10;
  r.bgp_next_hop = "2001:db8::ff";
  r.bgp_communities = [4259840100, 1];
  r.as_path = [64512, 65000];
  r.mpls_label = [16, 17];
  r.mpls_ttl = [64, 63];
  r.mpls_ip = ["10.0.0.9", "2001:db8::9"];
  r.ipv6_routing_header_addresses = ["2001:db8::a", "2001:db8::b"];
  r.ipv6_routing_header_seg_left = 1;
  r.observation_domain_id = 256;
  r.observation_point_id = 9;
  r.src_sgt = 100;
  r.dst_sgt = 0;
  r.switch_id = "core-1";
  r.flow_direction = 1;
  r.in_if_name = 'Gi0/1 "uplink"';
  r.out_if_name = "Port\tä";
  r.extra = {
    postNATSourceIPv4Address: "1.2.3.4",
    octetDeltaCount: 5,
    "9.1232": "0a0b",
    big: 2n ** 64n - 1n,
    ok: true,
    proto: 99,
  };
  return r;
}

/** [what it covers, a fresh record]: the order of the golden file's lines. */
export const CRAFTED: readonly (readonly [string, () => FlowRecord])[] = [
  ["v5 flow of a real GoFlow2 line", v5Record],
  [
    "IPFIX flow with MACs, a zero next hop and zero prefix lengths",
    make(v5Record, (r) => {
      r.type = "IPFIX";
      r.src_addr = "192.168.89.2";
      r.dst_addr = "192.168.88.30";
      r.proto = 17;
      r.src_mac = 0x426164555342;
      r.dst_mac = 0x486f73745043;
      r.next_hop = "0.0.0.0";
      r.src_net = 0;
      r.dst_net = 0;
    }),
  ],
  ["IPv6 sFlow flow with every field, lists, our additions and extras", ipv6Everything],
  [
    "IPv4 addresses as the decoders leave them (numbers), prefix lengths 32 and 9",
    make(v5Record, (r) => {
      r.src_v4 = 0xc0a85901;
      r.dst_v4 = 0x0affffff;
      r.next_hop_v4 = 0;
      r.src_net = 32;
      r.dst_net = 9;
    }),
  ],
  [
    "counters above 2^53, large and fractional times",
    make(v5Record, (r) => {
      r.bytes = 2n ** 64n - 1n;
      r.packets = 2n ** 53n + 1n;
      r.time_received_ms = 9007199254740;
      r.time_flow_start_ms = 1767324720787.5;
      r.time_flow_end_ms = 0.5;
    }),
  ],
  [
    "strings that need escaping, an unknown type, an unnamed etype and protocol",
    make(v5Record, (r) => {
      r.type = 'X"Y' as FlowRecord["type"];
      r.switch_id = 'a"b\\c\u0001\u2028é😀\ud800';
      r.etype = 0x8847;
      r.proto = 254;
      r.extra = { 'k"ey': "v\nw", lat: 5.411200046539307, neg: -1.25, nan: Number.NaN };
    }),
  ],
  [
    "absent and invalid prefixes",
    make(v5Record, (r) => {
      r.src_addr = "";
      r.src_net = 0;
      r.dst_addr = "10.1.2.3";
      r.dst_net = 33;
    }),
  ],
  [
    "IPv6 prefixes: 4in6, a zone, /0 and /128",
    make(ipv6Everything, (r) => {
      r.src_addr = "::ffff:10.1.2.3";
      r.src_net = 120;
      r.dst_addr = "fe80::1%eth0";
      r.dst_net = 0;
      r.next_hop = "1:0:0:1:0:0:1:1";
      r.bgp_next_hop = "";
      r.extra = null;
    }),
  ],
  [
    "options dictionaries: VRF ids and names, RD, application name",
    make(v5Record, (r) => {
      r.in_vrf_id = 10;
      r.out_vrf_id = 0;
      r.in_vrf_name = "blue";
      r.out_vrf_name = "global";
      r.mpls_vpn_rd = "65000:10";
      r.application_name = "https";
    }),
  ],
  [
    "NAT addresses and ports, RFC 5103 reverse counters",
    make(v5Record, (r) => {
      r.post_nat_src_addr = "198.51.100.7";
      r.post_nat_dst_addr = "2001:db8::7";
      r.post_nat_src_port = 40000;
      r.post_nat_dst_port = 0;
      r.reverse_bytes = 2n ** 60n;
      r.reverse_packets = 3;
    }),
  ],
  [
    "sampling rate, VLANs and ICMP set; observation ids without lists",
    make(v5Record, (r) => {
      r.sampling_rate = 1000;
      r.src_vlan = 100;
      r.vlan_id = 100;
      r.proto = 1;
      r.icmp_type = 8;
      r.src_port = 0;
      r.dst_port = 2048;
      r.observation_domain_id = 7;
      r.observation_point_id = 1;
      r.flow_direction = 0;
    }),
  ],
];
