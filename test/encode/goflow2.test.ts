import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { macString } from "../../src/core/address.ts";
import { type Counter, FlowRecord } from "../../src/core/flow.ts";
import { etypeName, Goflow2Writer, msToNs, networkString, protoName } from "../../src/encode/goflow2.ts";

const W = new Goflow2Writer();
const encodeGoflow2 = (r: FlowRecord) => W.line(r);
const encodeGoflow2Lines = (r: readonly FlowRecord[]) => W.lines(r);
const encodeGoflow2Framed = (r: readonly FlowRecord[]) => W.framed(r);

import { batchBuffers } from "../../src/pipeline/buffer-pool.ts";

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

  it("renders fractional extra elements whole (float32 latitudes), not their first digit", () => {
    const r = v5Record();
    r.extra = { lat: 5.411200046539307, lon: 100.33540344238281, small: 0.5, neg: -1.25, n: 7 };
    const back = JSON.parse(encodeGoflow2(r)) as Record<string, unknown>;
    assert.equal(back.lat, 5.411200046539307);
    assert.equal(back.lon, 100.33540344238281);
    assert.equal(back.small, 0.5);
    assert.equal(back.neg, -1.25);
    assert.equal(back.n, 7);
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
  it("writes newline-terminated lines into a view at the start of a transferable pooled buffer", () => {
    const a = v5Record();
    const b = v5Record();
    b.in_if_name = "Wi-Fi ünïcode";
    const data = encodeGoflow2Lines([a, b]);
    assert.equal(data.byteOffset, 0);
    assert.ok(data.buffer.byteLength >= data.length);
    assert.ok(batchBuffers.owns(data.buffer), "the buffer comes from the batch buffer pool");
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

// ---------------------------------------------------------------------------------------------------------
// Reference: the encoder as it was before the segment caches (commit HEAD at the time), verbatim minus
// comments, name tables imported. The randomized differential test below compares the bytes.

const reference = (() => {
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

  const HEX2: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
  const ZERO_MAC = "00:00:00:00:00:00";

  const PAD6 = ["000000", "00000", "0000", "000", "00", "0", ""];

  function msToNs(ms: number): string {
    if (ms === 0) return "0";
    let whole = Math.floor(ms);
    let frac = 0;
    if (whole !== ms) {
      if (!Number.isFinite(ms)) return "0";
      frac = Math.round((ms - whole) * 1e6); // ms - floor(ms) is exact in binary floating point
      if (frac >= 1e6) {
        whole += 1;
        frac -= 1e6;
      }
    }
    const f = frac === 0 ? "000000" : `${PAD6[`${frac}`.length]}${frac}`;
    if (whole === 0) return `${frac}`;
    if (whole < 0 || whole >= 1e15) return `${BigInt(whole)}${f}`;
    if (whole < 1e6) return `${whole}${f}`;
    const hi = Math.floor(whole / 1e6);
    const lo = whole - hi * 1e6;
    const los = `${lo}`;
    return `${hi}${PAD6[los.length]}${los}${f}`;
  }

  function counterString(v: Counter): string {
    if (typeof v === "bigint") return v.toString();
    if (v < 1e21 && v > -1e21) return `${v}`;
    return Number.isFinite(v) ? BigInt(v).toString() : "0";
  }

  function jsonString(s: string): string {
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x20 || c === 34 || c === 92 || c > 0x7e) return JSON.stringify(s);
    }
    return `"${s}"`;
  }

  const INVALID_PREFIX = '"invalid Prefix"';

  function parseIPv4(
    s: string,
    start: number,
    end: number,
    out: Uint8Array | Uint16Array,
    at: number,
  ): boolean {
    let part = 0;
    let digits = 0;
    let parts = 0;
    for (let i = start; i < end; i++) {
      const c = s.charCodeAt(i);
      if (c === 46) {
        if (digits === 0 || parts === 3) return false;
        out[at + parts++] = part;
        part = 0;
        digits = 0;
      } else if (c >= 48 && c <= 57) {
        part = part * 10 + (c - 48);
        if (++digits > 3 || part > 255) return false;
      } else {
        return false;
      }
    }
    if (digits === 0 || parts !== 3) return false;
    out[at + 3] = part;
    return true;
  }

  function hexDigit(c: number): number {
    if (c >= 48 && c <= 57) return c - 48;
    if (c >= 97 && c <= 102) return c - 87;
    if (c >= 65 && c <= 70) return c - 55;
    return -1;
  }

  const v4tail = new Uint8Array(4);

  function parseIPv6(s: string, out: Uint16Array): boolean {
    let end = s.indexOf("%");
    if (end < 0) end = s.length;
    const head: number[] = [];
    const tail: number[] = [];
    let cur = head;
    let sawDouble = false;
    let i = 0;
    if (s.startsWith("::")) {
      sawDouble = true;
      cur = tail;
      i = 2;
    }
    while (i < end) {
      let j = i;
      let group = 0;
      while (j < end && j - i < 5) {
        const d = hexDigit(s.charCodeAt(j));
        if (d < 0) break;
        group = group * 16 + d;
        j++;
      }
      if (j < end && s.charCodeAt(j) === 46) {
        if (!parseIPv4(s, i, end, v4tail, 0)) return false;
        cur.push((v4tail[0]! << 8) | v4tail[1]!, (v4tail[2]! << 8) | v4tail[3]!);
        i = end;
        break;
      }
      if (j === i || j - i > 4) return false;
      cur.push(group);
      if (j === end) {
        i = end;
        break;
      }
      if (s.charCodeAt(j) !== 58) return false;
      if (j + 1 < end && s.charCodeAt(j + 1) === 58) {
        if (sawDouble) return false;
        sawDouble = true;
        cur = tail;
        i = j + 2;
      } else {
        i = j + 1;
        if (i === end) return false;
      }
    }
    const n = head.length + tail.length;
    if (sawDouble ? n > 7 : n !== 8) return false;
    out.fill(0);
    for (let k = 0; k < head.length; k++) out[k] = head[k]!;
    for (let k = 0; k < tail.length; k++) out[8 - tail.length + k] = tail[k]!;
    return true;
  }

  function ipv6String(g: Uint16Array): string {
    if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
      return `::ffff:${g[6]! >>> 8}.${g[6]! & 0xff}.${g[7]! >>> 8}.${g[7]! & 0xff}`;
    }
    let zs = -1;
    let ze = -1;
    for (let i = 0; i < 8; i++) {
      let j = i;
      while (j < 8 && g[j] === 0) j++;
      if (j - i >= 2 && j - i > ze - zs) {
        zs = i;
        ze = j;
      }
      if (j > i) i = j;
    }
    let s = "";
    for (let i = 0; i < 8; i++) {
      if (i === zs) {
        s += "::";
        i = ze - 1;
        continue;
      }
      if (s !== "" && !s.endsWith(":")) s += ":";
      s += g[i]!.toString(16);
    }
    return s;
  }

  const v4scratch = new Uint8Array(4);
  const v6scratch = new Uint16Array(8);

  function maskOctet(octet: number, bits: number): number {
    return bits >= 8 ? octet : bits <= 0 ? 0 : octet & (0xff << (8 - bits));
  }

  function networkString(addr: string, len: number): string {
    if (addr === "" || !(len >= 0) || !Number.isInteger(len)) return INVALID_PREFIX;
    if (addr.indexOf(":") < 0) {
      if (!parseIPv4(addr, 0, addr.length, v4scratch, 0) || len > 32) return INVALID_PREFIX;
      if (len === 0) return '"0.0.0.0/0"';
      const o = v4scratch;
      return `"${maskOctet(o[0]!, len)}.${maskOctet(o[1]!, len - 8)}.${maskOctet(o[2]!, len - 16)}.${maskOctet(
        o[3]!,
        len - 24,
      )}/${len}"`;
    }
    if (len > 128 || !parseIPv6(addr, v6scratch)) return INVALID_PREFIX;
    if (len === 0) return '"::/0"';
    for (let i = 0; i < 8; i++) {
      const bits = len - i * 16;
      if (bits >= 16) continue;
      v6scratch[i] = bits <= 0 ? 0 : v6scratch[i]! & (0xffff << (16 - bits));
    }
    return `"${ipv6String(v6scratch)}/${len}"`;
  }

  const ENC = new TextEncoder();
  const K = (text: string): Uint8Array => ENC.encode(text);

  let out = new Uint8Array(1 << 20);
  let pos = 0;

  function ensure(extra: number): void {
    if (pos + extra <= out.length) return;
    let size = out.length * 2;
    while (size < pos + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(out.subarray(0, pos));
    out = next;
  }

  function put(bytes: Uint8Array): void {
    const n = bytes.length;
    if (n > 12) {
      out.set(bytes, pos);
    } else {
      const o = out;
      const p = pos;
      for (let i = 0; i < n; i++) o[p + i] = bytes[i]!;
    }
    pos += n;
  }

  function putAscii(text: string): void {
    ensure(text.length);
    const o = out;
    const p = pos;
    for (let i = 0; i < text.length; i++) o[p + i] = text.charCodeAt(i);
    pos += text.length;
  }

  function putUint(n: number): void {
    if (n < 10 && n >= 0) {
      out[pos++] = 48 + n;
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
      const o = out;
      let p = pos + len;
      pos = p;
      let v = n | 0;
      while (v >= 10) {
        const q = (v / 10) | 0;
        o[--p] = 48 + v - q * 10;
        v = q;
      }
      o[--p] = 48 + v;
      return;
    }
    putAscii(Number.isFinite(n) ? counterString(n) : "0");
  }

  function putCounter(v: Counter): void {
    if (typeof v === "number") putUint(v);
    else putAscii(v.toString());
  }

  function putNs(ms: number): void {
    if (ms === 0) {
      out[pos++] = 48;
    } else if (ms >= 1e6 && ms < 1e15 && Math.floor(ms) === ms) {
      const hi = Math.floor(ms / 1e6);
      putUint(hi);
      let lo = (ms - hi * 1e6) | 0;
      const o = out;
      const p = pos;
      for (let i = 5; i >= 0; i--) {
        const q = (lo / 10) | 0;
        o[p + i] = 48 + lo - q * 10;
        lo = q;
      }
      for (let i = 6; i < 12; i++) o[p + i] = 48;
      pos = p + 12;
    } else {
      putAscii(msToNs(ms));
    }
  }

  function putString(text: string): void {
    const n = text.length;
    ensure(n + 2);
    const o = out;
    const start = pos;
    o[start] = 34;
    let p = start + 1;
    for (let i = 0; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c < 0x20 || c === 34 || c === 92 || c > 0x7e) {
        putStringSlow(text, start);
        return;
      }
      o[p++] = c;
    }
    o[p] = 34;
    pos = p + 1;
  }

  function putStringSlow(text: string, start: number): void {
    const json = JSON.stringify(text);
    pos = start;
    ensure(json.length * 3);
    pos += ENC.encodeInto(json, out.subarray(pos)).written;
  }

  const HEXB = new Uint8Array(512);
  for (let i = 0; i < 256; i++) {
    const h = HEX2[i]!;
    HEXB[2 * i] = h.charCodeAt(0);
    HEXB[2 * i + 1] = h.charCodeAt(1);
  }
  const ZERO_MAC_Q = K(`"${ZERO_MAC}"`);

  function putMac(mac: number): void {
    if (mac === 0) {
      put(ZERO_MAC_Q);
      return;
    }
    const hi = Math.floor(mac / 4294967296) & 0xffff;
    const lo = mac >>> 0;
    const o = out;
    const h = HEXB;
    let p = pos;
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
    pos = p;
  }

  const NET_V4_ZERO = K('"0.0.0.0/0"');

  function putNetwork(addr: string, len: number): void {
    if (len > 0 && len <= 32 && addr.indexOf(":") < 0 && parseIPv4(addr, 0, addr.length, v4scratch, 0)) {
      const o = v4scratch;
      out[pos++] = 34;
      putUint(maskOctet(o[0]!, len));
      out[pos++] = 46;
      putUint(maskOctet(o[1]!, len - 8));
      out[pos++] = 46;
      putUint(maskOctet(o[2]!, len - 16));
      out[pos++] = 46;
      putUint(maskOctet(o[3]!, len - 24));
      out[pos++] = 47;
      putUint(len);
      out[pos++] = 34;
    } else if (
      len === 0 &&
      addr !== "" &&
      addr.indexOf(":") < 0 &&
      parseIPv4(addr, 0, addr.length, v4scratch, 0)
    ) {
      put(NET_V4_ZERO);
    } else {
      putAscii(networkString(addr, len));
    }
  }

  function putNumberList(list: readonly number[] | null): void {
    out[pos++] = 91;
    if (list !== null) {
      ensure(list.length * 21);
      for (let i = 0; i < list.length; i++) {
        if (i > 0) out[pos++] = 44;
        putUint(list[i]!);
      }
    }
    out[pos++] = 93;
  }

  function putValue(v: number | bigint | string | boolean): void {
    switch (typeof v) {
      case "string":
        putString(v);
        return;
      case "bigint":
        putAscii(v.toString());
        return;
      case "boolean":
        putAscii(v ? "true" : "false");
        return;
      default:
        if (v >= 0) putUint(v);
        else putAscii(Number.isFinite(v) ? counterString(v) : "null");
    }
  }

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
  const ETYPE_PROTO: readonly (readonly Uint8Array[])[] = [0x0800, 0x86dd, 0x0806, 0].map((e) =>
    PROTO_Q.map((q) => K(`,"etype":${etypeQ(e)},"proto":${q},"src_port":`)),
  );
  const K_DPORT = K(',"dst_port":');
  const K_IN_IF = K(',"in_if":');
  const K_OUT_IF = K(',"out_if":');
  const K_SRC_MAC = K(',"src_mac":');
  const K_DST_MAC = K(',"dst_mac":');

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
  const TAIL_DEFAULT = K(
    ',"bgp_next_hop":"","bgp_communities":[],"as_path":[],"mpls_ttl":[],"mpls_label":[],"mpls_ip":[],' +
      '"observation_domain_id":0,"observation_point_id":0,"layer_stack":[],"layer_size":[],' +
      '"ipv6_routing_header_addresses":[],"ipv6_routing_header_seg_left":0',
  );
  const K_COMMUNITIES = K(',"bgp_communities":');
  const K_AS_PATH = K(',"as_path":');
  const K_MPLS_LABEL = K(',"mpls_ttl":[],"mpls_label":');
  const K_OBS_DOMAIN = K(',"mpls_ip":[],"observation_domain_id":');
  const K_OBS_POINT = K(',"observation_point_id":');
  const TAIL_FIXED = K(
    ',"layer_stack":[],"layer_size":[],"ipv6_routing_header_addresses":[],"ipv6_routing_header_seg_left":0',
  );
  const K_SRC_SGT = K(',"src_sgt":');
  const K_DST_SGT = K(',"dst_sgt":');
  const K_SWITCH = K(',"switch_id":');
  const K_DIRECTION = K(',"flow_direction":');
  const K_IN_NAME = K(',"in_if_name":');
  const K_OUT_NAME = K(',"out_if_name":');

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
  ]);

  function emptyList(list: readonly number[] | null): boolean {
    return list === null || list.length === 0;
  }

  function writeRecord(r: FlowRecord): void {
    ensure(1024);
    put(TYPE_Q[r.type] ?? K(`{"type":${jsonString(String(r.type))},"time_received_ns":`));
    putNs(r.time_received_ms);
    put(K_SEQ);
    putUint(r.sequence_num);
    if (r.sampling_rate === 0) {
      put(K_RATE0_SAMPLER);
    } else {
      put(K_RATE);
      putUint(r.sampling_rate);
      put(K_SAMPLER);
    }
    putString(r.sampler_address);
    put(K_START);
    putNs(r.time_flow_start_ms);
    put(K_END);
    putNs(r.time_flow_end_ms);
    put(K_BYTES);
    putCounter(r.bytes);
    put(K_PACKETS);
    putCounter(r.packets);
    put(K_SRC);
    putString(r.src_addr);
    put(K_DST);
    putString(r.dst_addr);
    const etype = r.etype;
    const proto = r.proto;
    if (proto >= 0 && proto < 256 && (proto | 0) === proto) {
      put(ETYPE_PROTO[etype === 0x0800 ? 0 : etype === 0x86dd ? 1 : etype === 0x0806 ? 2 : 3]![proto]!);
    } else {
      putAscii(`,"etype":${etypeQ(etype)},"proto":${protoQ(proto)},"src_port":`);
    }
    putUint(r.src_port);
    put(K_DPORT);
    putUint(r.dst_port);
    put(K_IN_IF);
    putUint(r.in_if);
    put(K_OUT_IF);
    putUint(r.out_if);
    put(K_SRC_MAC);
    putMac(r.src_mac);
    put(K_DST_MAC);
    putMac(r.dst_mac);
    if (
      r.src_vlan === 0 &&
      r.dst_vlan === 0 &&
      r.vlan_id === 0 &&
      r.ip_tos === 0 &&
      r.forwarding_status === 0 &&
      r.ip_ttl === 0 &&
      r.ip_flags === 0
    ) {
      put(G1_ZERO_TCP);
    } else {
      put(G1_KEYS[0]!);
      putUint(r.src_vlan);
      put(G1_KEYS[1]!);
      putUint(r.dst_vlan);
      put(G1_KEYS[2]!);
      putUint(r.vlan_id);
      put(G1_KEYS[3]!);
      putUint(r.ip_tos);
      put(G1_KEYS[4]!);
      putUint(r.forwarding_status);
      put(G1_KEYS[5]!);
      putUint(r.ip_ttl);
      put(G1_KEYS[6]!);
      putUint(r.ip_flags);
      put(K_TCP);
    }
    putUint(r.tcp_flags);
    if (
      r.icmp_type === 0 &&
      r.icmp_code === 0 &&
      r.ipv6_flow_label === 0 &&
      r.fragment_id === 0 &&
      r.fragment_offset === 0 &&
      r.src_as === 0 &&
      r.dst_as === 0
    ) {
      put(G2_ZERO_NEXT_HOP);
    } else {
      put(G2_KEYS[0]!);
      putUint(r.icmp_type);
      put(G2_KEYS[1]!);
      putUint(r.icmp_code);
      put(G2_KEYS[2]!);
      putUint(r.ipv6_flow_label);
      put(G2_KEYS[3]!);
      putUint(r.fragment_id);
      put(G2_KEYS[4]!);
      putUint(r.fragment_offset);
      put(G2_KEYS[5]!);
      putUint(r.src_as);
      put(G2_KEYS[6]!);
      putUint(r.dst_as);
      put(K_NEXT_HOP);
    }
    putString(r.next_hop);
    if (r.next_hop_as === 0) {
      put(K_NEXT_HOP_AS0_SRC_NET);
    } else {
      put(K_NEXT_HOP_AS);
      putUint(r.next_hop_as);
      put(K_SRC_NET);
    }
    putNetwork(r.src_addr, r.src_net);
    put(K_DST_NET);
    putNetwork(r.dst_addr, r.dst_net);
    if (
      r.bgp_next_hop === "" &&
      emptyList(r.bgp_communities) &&
      emptyList(r.as_path) &&
      emptyList(r.mpls_label) &&
      r.observation_domain_id === 0 &&
      r.observation_point_id === 0
    ) {
      put(TAIL_DEFAULT);
    } else {
      put(K_BGP_NH);
      putString(r.bgp_next_hop);
      put(K_COMMUNITIES);
      putNumberList(r.bgp_communities);
      put(K_AS_PATH);
      putNumberList(r.as_path);
      put(K_MPLS_LABEL);
      putNumberList(r.mpls_label);
      put(K_OBS_DOMAIN);
      putUint(r.observation_domain_id);
      put(K_OBS_POINT);
      putUint(r.observation_point_id);
      put(TAIL_FIXED);
    }
    if (r.src_sgt !== null) {
      put(K_SRC_SGT);
      putUint(r.src_sgt);
    }
    if (r.dst_sgt !== null) {
      put(K_DST_SGT);
      putUint(r.dst_sgt);
    }
    put(K_SWITCH);
    putString(r.switch_id);
    if (r.flow_direction !== null) {
      put(K_DIRECTION);
      putUint(r.flow_direction);
    }
    if (r.in_if_name !== "") {
      put(K_IN_NAME);
      putString(r.in_if_name);
    }
    if (r.out_if_name !== "") {
      put(K_OUT_NAME);
      putString(r.out_if_name);
    }
    const extra = r.extra;
    if (extra !== null) {
      for (const k in extra) {
        if (EMITTED.has(k)) continue;
        ensure(4);
        out[pos++] = 44;
        putString(k);
        out[pos++] = 58;
        putValue(extra[k]!);
      }
    }
    ensure(2);
    out[pos++] = 125;
  }

  function release(): void {
    if (out.length > 16 << 20) out = new Uint8Array(1 << 20);
  }

  function encodeGoflow2(r: FlowRecord): string {
    pos = 0;
    writeRecord(r);
    const text = Buffer.from(out.buffer, out.byteOffset, pos).toString("utf8");
    release();
    return text;
  }

  function encodeGoflow2Lines(records: readonly FlowRecord[]): Uint8Array {
    pos = 0;
    for (let i = 0; i < records.length; i++) {
      writeRecord(records[i]!);
      out[pos++] = 10;
    }
    const data = out.slice(0, pos);
    release();
    return data;
  }

  function encodeGoflow2Framed(records: readonly FlowRecord[]): { data: Uint8Array; ends: Uint32Array } {
    const ends = new Uint32Array(records.length);
    pos = 0;
    for (let i = 0; i < records.length; i++) {
      writeRecord(records[i]!);
      ends[i] = pos;
    }
    const data = out.slice(0, pos);
    release();
    return { data, ends };
  }

  return { one: encodeGoflow2, lines: encodeGoflow2Lines, framed: encodeGoflow2Framed };
})();

// ---------------------------------------------------------------------------------------------------------
// Randomized differential test: many records from small value pools (so the encoder's segment caches both
// hit and miss, in every order), compared byte for byte with the reference.

/** xorshift32: deterministic, so a failure can be replayed from its seed. */
function rng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

const sharedList: number[] = [];

function randomRecord(rand: () => number): FlowRecord {
  const pick = <T>(pool: readonly T[]): T => pool[Math.floor(rand() * pool.length)]!;
  const small = (): number =>
    pick([0, 0, 0, 0, 1, 7, 9, 10, 99, 100, 255, 65535, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, -0, 2 ** 53]);
  const weird = (): number =>
    pick([0, 0, 1, 42, -1, -0, 1.5, 2 ** 53 + 2, 1e21, 1e300, NaN, Infinity, -Infinity]);
  const num = (): number => (rand() < 0.9 ? small() : weird());
  const counter = (): Counter =>
    pick<Counter>([0, 1, 143, 2 ** 53, 2n ** 53n + 1n, 2n ** 64n - 1n, 0n, 12345678901234, 1.5, -3, 1e22]);
  const addr = (): string =>
    pick([
      "",
      "192.168.88.1",
      "192.168.89.7",
      "10.0.0.1",
      "0.0.0.0",
      "255.255.255.255",
      "2001:db8::1",
      "2001:db8:0:0:1:0:0:1",
      "fe80::1%eth0",
      "::ffff:10.1.2.3",
      "::",
      "1.2.3",
      "010.1.2.3",
      "not an address",
    ]);
  const text = (): string =>
    pick(["", "", "eth0", "Wi-Fi ünïcode", 'a"b\\c', "tab\there", "\u2028", "😀", "\ud800", "x".repeat(70)]);
  const ms = (): number =>
    pick([
      0,
      0,
      1767324720787,
      1767324720787,
      1767324720000,
      1791480278443.5,
      1.25,
      999999,
      1e15 + 1,
      -5,
      NaN,
    ]);
  const list = (): number[] | null => pick([null, null, [], [], [1, 2, 65000], [2 ** 32 - 1], sharedList]);
  const r = new FlowRecord();
  r.type = pick<FlowRecord["type"]>([
    "IPFIX",
    "IPFIX",
    "NETFLOW_V5",
    "NETFLOW_V9",
    "SFLOW_5",
    'X"Y' as "IPFIX",
  ]);
  r.time_received_ms = ms();
  r.sequence_num = num();
  r.sampling_rate = pick([0, 0, 1, 1000, 2 ** 32 - 1]);
  r.sampler_address = pick(["192.168.88.1", "192.168.88.1", "2001:db8::1", "", "é"]);
  r.time_flow_start_ms = ms();
  r.time_flow_end_ms = ms();
  r.bytes = counter();
  r.packets = counter();
  r.src_addr = addr();
  r.dst_addr = addr();
  // IPv4 addresses as decoders leave them (a number; the text is rendered only when read)
  const v4 = (): number => pick([0, 0xc0a85801, 0xc0a85807, 0x0a000001, 0xffffffff, 0x01020300]);
  if (rand() < 0.4) r.src_v4 = v4();
  if (rand() < 0.4) r.dst_v4 = v4();
  r.etype = pick([0x0800, 0x0800, 0x86dd, 0x0806, 0, 0x8100, -0]);
  r.proto = pick([6, 17, 17, 1, 58, 0, 145, 146, 253, 255, 256, -1, 6.5, -0]);
  r.src_port = num();
  r.dst_port = num();
  r.in_if = num();
  r.out_if = num();
  r.src_mac = pick([0, 0, 0x426164555342, 0xffffffffffff, 1, -0, 2 ** 52]);
  r.dst_mac = pick([0, 0x486f73745043, 0xffffffffffff]);
  r.src_vlan = num();
  r.dst_vlan = num();
  r.vlan_id = num();
  r.ip_tos = num();
  r.forwarding_status = num();
  r.ip_ttl = num();
  r.ip_flags = num();
  r.tcp_flags = num();
  r.icmp_type = num();
  r.icmp_code = num();
  r.ipv6_flow_label = num();
  r.fragment_id = num();
  r.fragment_offset = num();
  r.src_as = num();
  r.dst_as = num();
  r.next_hop = addr();
  if (rand() < 0.3) r.next_hop_v4 = v4();
  r.next_hop_as = num();
  r.src_net = pick([0, 0, 8, 16, 24, 24, 31, 32, 33, 64, 128, 129, -1, -0]);
  r.dst_net = pick([0, 24, 24, 32, 48, 128]);
  r.bgp_next_hop = rand() < 0.8 ? "" : addr();
  r.bgp_communities = list();
  r.as_path = list();
  r.mpls_label = list();
  r.observation_domain_id = rand() < 0.8 ? 0 : num();
  r.observation_point_id = rand() < 0.8 ? 0 : num();
  r.src_sgt = pick([null, null, 0, 10, -0]);
  r.dst_sgt = pick([null, null, 0, 20]);
  r.switch_id = pick(["192.168.88.1", "192.168.88.1", "edge-1", 'a"b\\c\u0001\u2028é😀\ud800', ""]);
  r.flow_direction = pick([null, null, 0, 1]);
  r.in_if_name = text();
  r.out_if_name = text();
  r.extra = pick<FlowRecord["extra"]>([
    null,
    null,
    null,
    {},
    { vendor: 1, "9.1": "v\nw", big: 2n ** 70n, flag: true, neg: -1.5, nan: NaN },
    { proto: "dup", src_addr: "dup", 'k"ey': "ü", n: 2 ** 40, s: "" },
    { blob: "y".repeat(3000) },
  ]);
  return r;
}

describe("differential: new encoder vs the reference", () => {
  it("writes the same bytes for random batches (lines, framed, single)", () => {
    const rand = rng(0x5eed);
    for (let round = 0; round < 400; round++) {
      const n = 1 + Math.floor(rand() * (round % 10 === 0 ? 400 : 40));
      // Runs of identical and nearly identical records, as in a datagram.
      const records: FlowRecord[] = [];
      for (let i = 0; i < n; i++) {
        const prev = records[i - 1];
        if (prev !== undefined && rand() < 0.4) {
          const r = Object.assign(new FlowRecord(), prev);
          const fresh = randomRecord(rand);
          const keys = Object.keys(fresh) as (keyof FlowRecord)[];
          for (let k = 0; k < 3; k++) {
            const key = keys[Math.floor(rand() * keys.length)]!;
            (r as unknown as Record<string, unknown>)[key] = fresh[key];
          }
          records.push(r);
        } else {
          records.push(randomRecord(rand));
        }
      }
      // A list shared by reference whose contents change between records (must never be served stale).
      sharedList.length = 0;
      if (round & 1) sharedList.push(round, 7);
      const expected = reference.lines(records);
      const actual = encodeGoflow2Lines(records);
      if (!Buffer.from(actual).equals(Buffer.from(expected))) {
        const a = new TextDecoder().decode(actual).split("\n");
        const e = new TextDecoder().decode(expected).split("\n");
        const i = e.findIndex((line, k) => line !== a[k]);
        assert.equal(a[i], e[i], `round ${round}, record ${i}`);
      }
      assert.equal(actual.byteOffset, 0);
      const f = encodeGoflow2Framed(records);
      const g = reference.framed(records);
      assert.ok(Buffer.from(f.data).equals(Buffer.from(g.data)), `framed round ${round}`);
      assert.deepEqual(f.ends, g.ends);
      const one = records[Math.floor(rand() * n)]!;
      assert.equal(encodeGoflow2(one), reference.one(one));
    }
  });

  it("writes the same text for long runs of single records (encodeGoflow2)", () => {
    const rand = rng(7);
    let prev = randomRecord(rand);
    for (let i = 0; i < 5000; i++) {
      const r = rand() < 0.5 ? Object.assign(new FlowRecord(), prev) : randomRecord(rand);
      if (rand() < 0.5) r.sequence_num = i;
      if (rand() < 0.01) encodeGoflow2Lines([randomRecord(rand)]);
      assert.equal(encodeGoflow2(r), reference.one(r), `record ${i}`);
      prev = r;
    }
  });

  it("does not reuse text across batches or after the scratch buffer grows", () => {
    const rand = rng(42);
    const a = randomRecord(rand);
    const big = Object.assign(new FlowRecord(), a);
    big.extra = { blob: "z".repeat(3 << 20) };
    const b = Object.assign(new FlowRecord(), a);
    b.switch_id = "other";
    for (const batch of [[a], [a, big, a], [b], [a, b, a, b], [big, big], [a]]) {
      assert.ok(Buffer.from(encodeGoflow2Lines(batch)).equals(Buffer.from(reference.lines(batch))));
      assert.equal(encodeGoflow2(batch[0]!), reference.one(batch[0]!));
    }
  });

  it("matches the reference on the benchmark's typical records", () => {
    const records = Array.from({ length: 2000 }, (_, i) => {
      const r = new FlowRecord();
      r.type = "IPFIX";
      r.time_received_ms = 1767324720787 + (i >> 4);
      r.sequence_num = 65361 + i;
      r.sampler_address = "192.168.88.1";
      r.time_flow_start_ms = 1767324720000 - (i & 3);
      r.time_flow_end_ms = 1767324720000;
      r.bytes = 143 + (i & 1023);
      r.packets = 1 + (i & 15);
      r.src_addr = `192.168.${89 + (i & 1)}.${i & 255}`;
      r.dst_addr = "192.168.88.30";
      r.etype = 0x0800;
      r.proto = i & 8 ? 6 : 17;
      r.src_port = 53;
      r.dst_port = 55743 - i;
      r.in_if = 11 + (i & 1);
      r.out_if = 12;
      r.src_mac = 0x426164555342 + (i & 2);
      r.dst_mac = 0x486f73745043;
      r.tcp_flags = i & 0x3f;
      r.src_net = 24 - (i & 4);
      r.dst_net = 24;
      r.next_hop = "0.0.0.0";
      r.switch_id = "192.168.88.1";
      if (i & 32) {
        // as the decoders leave them: numbers
        r.src_v4 = (0xc0a85900 + ((i & 1) << 8) + (i & 255)) >>> 0;
        r.dst_v4 = 0xc0a8581e;
        r.next_hop_v4 = 0;
      }
      return r;
    });
    assert.equal(records[32]!.src_addr, "192.168.89.32");
    assert.ok(Buffer.from(encodeGoflow2Lines(records)).equals(Buffer.from(reference.lines(records))));
  });
});
