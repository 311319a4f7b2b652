import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
// protobufjs is in the tree as an optional dependency of @platformatic/kafka (the Kafka client), not our
// own: a devDependency would make `npm pack`'s install test see a dev package among the runtime ones.
import protobuf from "protobufjs";
import { FlowRecord } from "../../src/core/flow.ts";
import { encodeGoflow2, protoName } from "../../src/encode/goflow2.ts";
import {
  decodeFrames,
  encodeFlowMessageDelimited,
  encodeKafkaFrames,
  fnv1_32,
  joinFrames,
  keyFunction,
} from "../../src/encode/goflow2-pb.ts";
import {
  decodeProto,
  flowMessageFields,
  parseJsonExact,
  protoVersusJson,
  undelimit,
} from "../helpers/kafka.ts";

const FIELDS = flowMessageFields();

function records(): FlowRecord[] {
  const a = new FlowRecord();
  a.type = "NETFLOW_V9";
  a.time_received_ms = 1_733_380_000_123.4568; // the double nearest 1_733_380_000_123.456789
  a.time_flow_start_ms = 1_733_379_999_000;
  a.time_flow_end_ms = 1_733_380_000_001;
  a.sequence_num = 4_000_000_000;
  a.sampling_rate = 1000;
  a.sampler_address = "192.0.2.1";
  a.src_v4 = 0x0a000001;
  a.dst_v4 = 0xc0a80102;
  a.next_hop_v4 = 0x0a0000fe;
  a.bgp_next_hop_v4 = 0x0a000e21;
  a.bytes = 2 ** 40 + 7;
  a.packets = 12;
  a.etype = 0x800;
  a.proto = 6;
  a.src_port = 443;
  a.dst_port = 51234;
  a.in_if = 3;
  a.out_if = 70000;
  a.src_mac = 0xaabbccddeeff;
  a.dst_mac = 0x010203040506;
  a.src_vlan = 10;
  a.vlan_id = 4094;
  a.ip_tos = 0xb8;
  a.tcp_flags = 0x1b;
  a.ip_ttl = 64;
  a.src_as = 65000;
  a.dst_as = 4_200_000_000;
  a.src_net = 24;
  a.dst_net = 16;
  a.observation_domain_id = 256;
  a.bgp_communities = [65000 * 65536 + 100, 7];
  a.as_path = [65001, 4_200_000_001];
  a.mpls_label = [16001];
  a.src_sgt = 100;
  a.dst_sgt = 200;
  a.switch_id = "core-1";
  a.flow_direction = 1;
  a.in_if_name = "Gi0/1";
  a.out_if_name = "Te1/0/1 ü";
  a.in_vrf_id = 0; // the default VRF: 0 is a value here, written (proto3 optional)
  a.out_vrf_id = 4_000_000_000;
  a.in_vrf_name = "default";
  a.out_vrf_name = "CUST-A ü";
  a.mpls_vpn_rd = "2:4226809910:14";
  a.application_name = "https";
  a.post_nat_src_addr = "198.51.100.7";
  a.post_nat_dst_addr = "2001:db8::7";
  a.post_nat_src_port = 0;
  a.post_nat_dst_port = 65535;
  a.reverse_bytes = 2n ** 64n - 1n;
  a.reverse_packets = 0;

  const b = new FlowRecord();
  b.type = "IPFIX";
  b.time_received_ms = 1_733_380_000_500;
  b.sampler_address = "2001:db8::53";
  b.src_addr = "2001:db8:0:1::10";
  b.dst_addr = "fe80::1";
  b.bgp_next_hop = "2001:db8::ff";
  b.bytes = 2n ** 64n - 1n;
  b.packets = 2n ** 53n + 1n;
  b.etype = 0x86dd;
  b.proto = 58;
  b.icmp_type = 128;
  b.ipv6_flow_label = 0xfffff;
  b.src_net = 64;
  b.dst_net = 200; // longer than the family: GoFlow2 prints "invalid Prefix"
  b.flow_direction = 0;
  b.switch_id = "10.1.1.1";

  const c = new FlowRecord(); // almost everything zero / absent
  c.type = "SFLOW_5";
  c.sampler_address = "10.9.9.9";
  c.etype = 0x8847; // neither IPv4, IPv6 nor ARP: GoFlow2 JSON prints ""
  c.proto = 200;
  return [a, b, c];
}

describe("GoFlow2 protobuf FlowMessage", () => {
  it("decodes, with the shipped .proto, to the same flow as the JSON line", () => {
    for (const r of records()) {
      const value = encodeFlowMessageDelimited(r);
      const pb = decodeProto(undelimit(value), FIELDS);
      const diffs = protoVersusJson(pb, parseJsonExact(encodeGoflow2(r)), protoName);
      assert.deepEqual(diffs, [], `record ${r.type}`);
    }
  });

  it("writes fields in field-number order and leaves zero values out (as Go's proto.Marshal)", () => {
    const [, , c] = records();
    const pb = decodeProto(undelimit(encodeFlowMessageDelimited(c!)), FIELDS); // throws when out of order
    assert.deepEqual(Object.keys(pb).sort(), ["etype", "proto", "sampler_address", "type"]);
    // type=SFLOW_5 (field 1, varint 1), then sampler_address (11, 4 bytes), proto (20), etype (30)
    assert.deepEqual(
      [...encodeFlowMessageDelimited(c!)],
      [17, 0x08, 1, 0x5a, 4, 10, 9, 9, 9, 0xa0, 0x01, 0xc8, 0x01, 0xf0, 0x01, 0xc7, 0x90, 0x02],
    );
  });

  it("writes IPv4 addresses given as numbers (as decoders leave them) as the same bytes as their text", () => {
    const [a] = records();
    for (const bgp of [0x0a000e21, 0, 0xffffffff, -1]) {
      a!.bgp_next_hop_v4 = bgp;
      const asText = Object.assign(new FlowRecord(), a);
      asText.src_addr = a!.src_addr;
      asText.dst_addr = a!.dst_addr;
      asText.next_hop = a!.next_hop;
      asText.bgp_next_hop = a!.bgp_next_hop;
      assert.equal(asText.bgp_next_hop_v4, -1);
      assert.deepEqual(encodeFlowMessageDelimited(a!), encodeFlowMessageDelimited(asText), `bgp ${bgp}`);
      const pb = decodeProto(undelimit(encodeFlowMessageDelimited(a!)), FIELDS);
      const bytes = pb.bgp_next_hop === undefined ? undefined : [...(pb.bgp_next_hop as Uint8Array)];
      const want = bgp < 0 ? undefined : [bgp >>> 24, (bgp >>> 16) & 255, (bgp >>> 8) & 255, bgp & 255];
      assert.deepEqual(bytes, want, `bgp ${bgp}`);
    }
  });

  it("keeps nanosecond times and 64-bit counters exact", () => {
    const [a, b] = records();
    const pa = decodeProto(undelimit(encodeFlowMessageDelimited(a!)), FIELDS);
    assert.equal(pa.time_received_ns, 1_733_380_000_123_456_787n); // the double's nearest ns
    const half = new FlowRecord();
    half.time_flow_end_ms = 1_733_380_000_123.5;
    half.time_flow_start_ms = 2 ** 43 + 1; // year 2248: ns above 2^63 / 1000
    const ph = decodeProto(undelimit(encodeFlowMessageDelimited(half)), FIELDS);
    assert.equal(ph.time_flow_end_ns, 1_733_380_000_123_500_000n);
    assert.equal(ph.time_flow_start_ns, (2n ** 43n + 1n) * 1_000_000n);
    assert.equal(pa.bytes, 2n ** 40n + 7n);
    const pb = decodeProto(undelimit(encodeFlowMessageDelimited(b!)), FIELDS);
    assert.equal(pb.bytes, 2n ** 64n - 1n);
    assert.equal(pb.packets, 2n ** 53n + 1n);
  });
});

describe("our fields (proto/goflow2/clarion.proto), read back by protobufjs with the .proto", () => {
  const root = protobuf.loadSync(
    fileURLToPath(new URL("../../proto/goflow2/clarion.proto", import.meta.url)),
  );
  const Ext = root.lookupType("clarion.ClarionFlowExtensions");
  const Flow = root.lookupType("flowpb.FlowMessage");
  const read = (r: FlowRecord) => {
    const msg = undelimit(encodeFlowMessageDelimited(r));
    assert.equal(Ext.verify(Ext.decode(msg)), null);
    return {
      // protobufjs names fields in camelCase: back to the .proto's (and the JSON line's) names
      ext: Object.fromEntries(
        Object.entries(Ext.toObject(Ext.decode(msg), { longs: String, bytes: Array })).map(([k, v]) => [
          k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`),
          v,
        ]),
      ),
      flow: Flow.toObject(Flow.decode(msg), { longs: String, bytes: Array, enums: String }),
    };
  };

  it("VRF, application, NAT and reverse-counter fields round-trip; 0 is kept where it is a value", () => {
    const [a] = records();
    const { ext, flow } = read(a!);
    assert.deepEqual(ext, {
      src_sgt: 100,
      dst_sgt: 200,
      switch_id: "core-1",
      flow_direction: 1,
      in_if_name: "Gi0/1",
      out_if_name: "Te1/0/1 ü",
      in_vrf_id: 0,
      out_vrf_id: 4_000_000_000,
      in_vrf_name: "default",
      out_vrf_name: "CUST-A ü",
      mpls_vpn_rd: "2:4226809910:14",
      application_name: "https",
      post_nat_src_addr: [198, 51, 100, 7],
      post_nat_dst_addr: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7],
      post_nat_src_port: 0,
      post_nat_dst_port: 65535,
      reverse_bytes: "18446744073709551615",
      reverse_packets: "0",
    });
    // the GoFlow2 message of the same bytes still reads its own fields
    assert.equal(flow.type, "NETFLOW_V9");
    assert.equal(flow.bytes, String(2 ** 40 + 7));
  });

  it("absent fields are not written: a record without them has none of ours but switch_id (flow_direction 0 is proto3 default)", () => {
    const [, b, c] = records();
    assert.deepEqual(Object.keys(read(b!).ext).sort(), ["switch_id"]);
    assert.deepEqual(read(c!).ext, {});
  });
});

describe("Kafka frames", () => {
  it("one message per flow, keyed by exporter address, values identical to the single encoder", () => {
    const recs = records();
    const parts = encodeKafkaFrames(recs, "protobuf", keyFunction([]), 1000, 1_000_000);
    assert.equal(parts.length, 1);
    const frames = decodeFrames(parts[0]!.data);
    assert.equal(frames.length, 3);
    for (const [i, f] of frames.entries()) {
      assert.equal(Buffer.from(f.key).toString(), recs[i]!.sampler_address);
      assert.deepEqual(f.value, encodeFlowMessageDelimited(recs[i]!));
    }
    assert.deepEqual(joinFrames(frames), parts[0]!.data);
  });

  it("json format: the GoFlow2 JSON line as the value", () => {
    const recs = records();
    const frames = decodeFrames(encodeKafkaFrames(recs, "json", keyFunction([]), 1000, 1_000_000)[0]!.data);
    for (const [i, f] of frames.entries())
      assert.equal(Buffer.from(f.value).toString(), encodeGoflow2(recs[i]!));
  });

  it("cuts parts at batch_size messages and at message_max_bytes", () => {
    const recs = Array.from({ length: 25 }, () => records()[0]!);
    const byCount = encodeKafkaFrames(recs, "protobuf", keyFunction([]), 10, 1_000_000);
    assert.deepEqual(
      byCount.map((p) => p.records),
      [10, 10, 5],
    );
    const one = decodeFrames(byCount[0]!.data)[0]!.value.length;
    const byBytes = encodeKafkaFrames(recs, "protobuf", keyFunction([]), 1000, one * 4);
    assert.ok(byBytes.length > 1 && byBytes.every((p) => p.records <= 5));
    assert.equal(
      byBytes.reduce((n, p) => n + p.records, 0),
      25,
    );
  });

  it("key_fields: GoFlow2's 32-bit FNV-1 over the fields as Go prints them", () => {
    // FNV-1 32 reference values (offset basis 0x811c9dc5, prime 0x01000193, multiply then xor)
    assert.deepEqual([...fnv1_32("")], [0x81, 0x1c, 0x9d, 0xc5]);
    assert.deepEqual([...fnv1_32("a")], [0x05, 0x0c, 0x5d, 0x7e]);
    const [a] = records();
    const key = keyFunction(["sampler_address", "dst_port"])(a!);
    assert.deepEqual(key, fnv1_32("[192 0 2 1]51234"));
  });
});
