import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FlowRecord } from "../../src/core/flow.ts";
import {
  encodeGoflow2,
  encodeGoflow2Framed,
  encodeGoflow2Lines,
  etypeName,
  macString,
  msToNs,
  networkString,
  protoName,
} from "../../src/encode/goflow2.ts";

/** The NetFlow v5 flow of a real GoFlow2 v2 output line (times made whole milliseconds). */
function v5Record(): FlowRecord {
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

const V5_LINE =
  '{"type":"NETFLOW_V5","time_received_ns":1791480278443000000,"sequence_num":1,"sampling_rate":0,' +
  '"sampler_address":"127.0.0.1","time_flow_start_ns":1791480277443000000,"time_flow_end_ns":1791480278443000000,' +
  '"bytes":8400,"packets":10,"src_addr":"10.0.0.1","dst_addr":"10.0.0.2","etype":"IPv4","proto":"TCP",' +
  '"src_port":12345,"dst_port":443,"in_if":1,"out_if":2,"src_mac":"00:00:00:00:00:00","dst_mac":"00:00:00:00:00:00",' +
  '"src_vlan":0,"dst_vlan":0,"vlan_id":0,"ip_tos":0,"forwarding_status":0,"ip_ttl":0,"ip_flags":0,"tcp_flags":24,' +
  '"icmp_type":0,"icmp_code":0,"ipv6_flow_label":0,"fragment_id":0,"fragment_offset":0,"src_as":0,"dst_as":0,' +
  '"next_hop":"10.0.0.254","next_hop_as":0,"src_net":"10.0.0.0/24","dst_net":"10.0.0.0/24","bgp_next_hop":"",' +
  '"bgp_communities":[],"as_path":[],"mpls_ttl":[],"mpls_label":[],"mpls_ip":[],"observation_domain_id":0,' +
  '"observation_point_id":0,"layer_stack":[],"layer_size":[],"ipv6_routing_header_addresses":[],' +
  '"ipv6_routing_header_seg_left":0,"switch_id":"127.0.0.1"}';

describe("encodeGoflow2", () => {
  it("renders an IPv4 NetFlow v5 flow exactly as GoFlow2 v2 does (+ switch_id)", () => {
    assert.equal(encodeGoflow2(v5Record()), V5_LINE);
  });

  it("renders an IPFIX flow with MACs, a zero next hop and zero prefix lengths", () => {
    const r = new FlowRecord();
    r.type = "IPFIX";
    r.time_received_ms = 1767324720787;
    r.sequence_num = 65361;
    r.sampler_address = "192.168.88.1";
    r.time_flow_start_ms = 1767324720000;
    r.time_flow_end_ms = 1767324720000;
    r.bytes = 143;
    r.packets = 1;
    r.src_addr = "192.168.89.2";
    r.dst_addr = "192.168.88.30";
    r.etype = 0x0800;
    r.proto = 17;
    r.src_port = 53;
    r.dst_port = 55743;
    r.in_if = 11;
    r.out_if = 12;
    r.src_mac = 0x426164555342;
    r.dst_mac = 0x486f73745043;
    r.next_hop = "0.0.0.0";
    r.switch_id = "192.168.88.1";
    assert.equal(
      encodeGoflow2(r),
      '{"type":"IPFIX","time_received_ns":1767324720787000000,"sequence_num":65361,"sampling_rate":0,' +
        '"sampler_address":"192.168.88.1","time_flow_start_ns":1767324720000000000,"time_flow_end_ns":1767324720000000000,' +
        '"bytes":143,"packets":1,"src_addr":"192.168.89.2","dst_addr":"192.168.88.30","etype":"IPv4","proto":"UDP",' +
        '"src_port":53,"dst_port":55743,"in_if":11,"out_if":12,"src_mac":"42:61:64:55:53:42","dst_mac":"48:6f:73:74:50:43",' +
        '"src_vlan":0,"dst_vlan":0,"vlan_id":0,"ip_tos":0,"forwarding_status":0,"ip_ttl":0,"ip_flags":0,"tcp_flags":0,' +
        '"icmp_type":0,"icmp_code":0,"ipv6_flow_label":0,"fragment_id":0,"fragment_offset":0,"src_as":0,"dst_as":0,' +
        '"next_hop":"0.0.0.0","next_hop_as":0,"src_net":"0.0.0.0/0","dst_net":"0.0.0.0/0","bgp_next_hop":"",' +
        '"bgp_communities":[],"as_path":[],"mpls_ttl":[],"mpls_label":[],"mpls_ip":[],"observation_domain_id":0,' +
        '"observation_point_id":0,"layer_stack":[],"layer_size":[],"ipv6_routing_header_addresses":[],' +
        '"ipv6_routing_header_seg_left":0,"switch_id":"192.168.88.1"}',
    );
  });

  it("renders an IPv6 flow with every optional field and our additions", () => {
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
    r.icmp_code = 0;
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
    const line = encodeGoflow2(r);
    assert.equal(
      line,
      '{"type":"SFLOW_5","time_received_ns":1700000000123000000,"sequence_num":4294967295,"sampling_rate":1024,' +
        '"sampler_address":"2001:db8::1","time_flow_start_ns":0,"time_flow_end_ns":0,"bytes":1500,"packets":1,' +
        '"src_addr":"2001:db8:1:0:0:0:0:5","dst_addr":"fe80::abcd:1","etype":"IPv6","proto":"IPv6-ICMP","src_port":0,' +
        '"dst_port":0,"in_if":3,"out_if":4294967295,"src_mac":"ff:ff:ff:ff:ff:ff","dst_mac":"00:01:02:03:04:05",' +
        '"src_vlan":10,"dst_vlan":20,"vlan_id":10,"ip_tos":184,"forwarding_status":64,"ip_ttl":64,"ip_flags":2,' +
        '"tcp_flags":0,"icmp_type":128,"icmp_code":0,"ipv6_flow_label":1048575,"fragment_id":7,"fragment_offset":8,' +
        '"src_as":64512,"dst_as":4200000000,"next_hop":"2001:db8::fe","next_hop_as":65000,' +
        '"src_net":"2001:db8:1::/48","dst_net":"fe80::/10","bgp_next_hop":"2001:db8::ff",' +
        '"bgp_communities":[4259840100,1],"as_path":[64512,65000],"mpls_ttl":[],"mpls_label":[16,17],"mpls_ip":[],' +
        '"observation_domain_id":256,"observation_point_id":9,"layer_stack":[],"layer_size":[],' +
        '"ipv6_routing_header_addresses":[],"ipv6_routing_header_seg_left":0,"src_sgt":100,"dst_sgt":0,' +
        '"switch_id":"core-1","flow_direction":1,"in_if_name":"Gi0/1 \\"uplink\\"","out_if_name":"Port\\tä",' +
        '"postNATSourceIPv4Address":"1.2.3.4","octetDeltaCount":5,"9.1232":"0a0b","big":18446744073709551615,"ok":true}',
    );
    const parsed = JSON.parse(line) as Record<string, unknown>;
    assert.equal(parsed.in_if_name, 'Gi0/1 "uplink"');
    assert.equal(parsed.out_if_name, "Port\tä");
    assert.equal(parsed.proto, "IPv6-ICMP", "an extra key repeating a field is skipped");
  });

  it("renders nanoseconds exactly, also for large and fractional milliseconds", () => {
    assert.equal(msToNs(0), "0");
    assert.equal(msToNs(1), "1000000");
    assert.equal(msToNs(999999), "999999000000");
    assert.equal(msToNs(1000000), "1000000000000");
    assert.equal(msToNs(1767324720787), "1767324720787000000");
    assert.equal(msToNs(9007199254740), "9007199254740000000"); // ms·1e6 far above 2^53
    assert.equal(msToNs(253402300799999), "253402300799999000000"); // 9999-12-31T23:59:59.999Z
    assert.equal(msToNs(1.5), "1500000");
    assert.equal(msToNs(0.000001), "1");
    assert.equal(msToNs(1767324720787.5), "1767324720787500000");
    assert.equal(msToNs(1767324720787.25), "1767324720787250000");
    // A fraction rounds to the nearest nanosecond of the double's value (2^-12 ms steps at this magnitude).
    assert.equal(msToNs(1767324720787 + 1 / 4096), "1767324720787000244");
    const r = v5Record();
    r.time_received_ms = 9007199254740;
    r.time_flow_start_ms = 1767324720787.5;
    r.time_flow_end_ms = 0.5;
    const o = encodeGoflow2(r);
    assert.match(o, /"time_received_ns":9007199254740000000,/);
    assert.match(o, /"time_flow_start_ns":1767324720787500000,/);
    assert.match(o, /"time_flow_end_ns":500000,/);
  });

  it("renders counters above 2^53 exactly", () => {
    const r = v5Record();
    r.bytes = 2n ** 64n - 1n;
    r.packets = 2n ** 53n + 1n;
    let o = encodeGoflow2(r);
    assert.match(o, /"bytes":18446744073709551615,"packets":9007199254740993,/);
    r.bytes = 2 ** 53;
    r.packets = 4294967296;
    o = encodeGoflow2(r);
    assert.match(o, /"bytes":9007199254740992,"packets":4294967296,/);
  });

  it("escapes strings that need it and keeps the output valid UTF-8 JSON", () => {
    const r = v5Record();
    r.switch_id = 'a"b\\c\u0001\u2028é😀\ud800';
    r.extra = { 'k"ey': "v\nw" };
    const o = encodeGoflow2(r);
    assert.ok(o.includes(`"switch_id":${JSON.stringify(r.switch_id)}`));
    assert.ok(o.includes('"k\\"ey":"v\\nw"'));
    const back = JSON.parse(o) as Record<string, unknown>;
    assert.equal(back.switch_id, r.switch_id);
    assert.equal(back['k"ey'], "v\nw");
  });
});

describe("renderers", () => {
  it("names protocols and ethertypes like GoFlow2's render.go", () => {
    assert.equal(protoName(0), "HOPOPT");
    assert.equal(protoName(1), "ICMP");
    assert.equal(protoName(6), "TCP");
    assert.equal(protoName(17), "UDP");
    assert.equal(protoName(47), "GRE");
    assert.equal(protoName(50), "ESP");
    assert.equal(protoName(58), "IPv6-ICMP");
    assert.equal(protoName(132), "SCTP");
    assert.equal(protoName(145), "NSH");
    assert.equal(protoName(146), "unassigned");
    assert.equal(protoName(252), "unassigned");
    assert.equal(protoName(253), "experimental");
    assert.equal(protoName(255), "reserved");
    assert.equal(protoName(256), "unknown");
    assert.equal(etypeName(0x0800), "IPv4");
    assert.equal(etypeName(0x86dd), "IPv6");
    assert.equal(etypeName(0x0806), "ARP");
    assert.equal(etypeName(0x8100), "");
    assert.equal(etypeName(0), "");
    const r = v5Record();
    r.etype = 0x8847;
    r.proto = 254;
    assert.match(encodeGoflow2(r), /"etype":"","proto":"experimental",/);
  });

  it("renders networks like netip.Prefix.String()", () => {
    assert.equal(networkString("10.1.2.3", 24), '"10.1.2.0/24"');
    assert.equal(networkString("10.1.2.3", 32), '"10.1.2.3/32"');
    assert.equal(networkString("10.1.2.3", 0), '"0.0.0.0/0"');
    assert.equal(networkString("10.255.2.3", 9), '"10.128.0.0/9"');
    assert.equal(networkString("10.1.2.3", 33), '"invalid Prefix"');
    assert.equal(networkString("", 0), '"invalid Prefix"');
    assert.equal(networkString("2001:db8::1", 0), '"::/0"');
    assert.equal(networkString("2001:db8:abcd:12::1", 33), '"2001:db8:8000::/33"');
    assert.equal(networkString("2001:0:0:1:0:0:0:1", 128), '"2001:0:0:1::1/128"');
    assert.equal(networkString("1:0:0:1:0:0:1:1", 128), '"1::1:0:0:1:1/128"', "first of equal zero runs");
    assert.equal(networkString("1:0:1:1:1:1:1:1", 128), '"1:0:1:1:1:1:1:1/128"', "a single zero group stays");
    assert.equal(networkString("::ffff:10.1.2.3", 120), '"::ffff:10.1.2.0/120"');
    assert.equal(networkString("2001:db8::1", 129), '"invalid Prefix"');
    assert.equal(networkString("not-an-ip", 8), '"invalid Prefix"');
    const r = v5Record();
    r.src_addr = "";
    r.src_net = 0;
    assert.match(encodeGoflow2(r), /"src_net":"invalid Prefix","dst_net":"10.0.0.0\/24"/);
  });

  it("renders MACs", () => {
    assert.equal(macString(0), "00:00:00:00:00:00");
    assert.equal(macString(0xffffffffffff), "ff:ff:ff:ff:ff:ff");
    assert.equal(macString(0x0a1b2c3d4e5f), "0a:1b:2c:3d:4e:5f");
  });
});

describe("encodeGoflow2Lines", () => {
  it("writes newline-terminated lines into one buffer that owns its memory", () => {
    const a = v5Record();
    const b = v5Record();
    b.in_if_name = "Wi-Fi ünïcode";
    const data = encodeGoflow2Lines([a, b]);
    assert.equal(data.byteOffset, 0);
    assert.equal(data.buffer.byteLength, data.length);
    const text = new TextDecoder().decode(data);
    assert.equal(text, `${V5_LINE}\n${encodeGoflow2(b)}\n`);
    assert.equal(JSON.parse(text.split("\n")[1]!).in_if_name, "Wi-Fi ünïcode");
    assert.equal(encodeGoflow2Lines([]).length, 0);
  });

  it("grows past its scratch size", () => {
    const r = v5Record();
    r.extra = { blob: "x".repeat(3 << 20) };
    const data = encodeGoflow2Lines([r, r]);
    assert.equal(data.length, 2 * (encodeGoflow2(r).length + 1));
  });

  it("frames records for per-record messages", () => {
    const { data, ends } = encodeGoflow2Framed([v5Record(), v5Record()]);
    assert.equal(ends.length, 2);
    assert.equal(ends[0], V5_LINE.length);
    assert.equal(ends[1], data.length);
    assert.equal(new TextDecoder().decode(data.subarray(ends[0], ends[1])), V5_LINE);
  });
});
