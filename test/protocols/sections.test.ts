/**
 * IPFIX packet sections (issue 19 item 2, IEs 313–317): the frame an exporter sent instead of decoded fields
 * fills the record (addresses, ports, protocol, MACs, VLANs, MPLS labels, TTL, fragment id), through the
 * sFlow packet-header parser; explicit elements win; tunnelled frames describe the outer headers unless
 * the decoder is set to the inner ones. The datagrams are built from frames written with the test packet
 * builders.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { FlowRecord } from "../../src/core/flow.ts";
import { encodeGoflow2 } from "../../src/encode/goflow2.ts";
import { FlowDecoder } from "../../src/protocols/decoder.ts";
import {
  type FieldSpec,
  ipfixPacket,
  ipfixTemplate,
  record,
  set,
  v9Packet,
  v9Template,
  varlen,
} from "../helpers/netflow-builder.ts";
import {
  controlWord,
  eth,
  gre,
  icmp,
  ipv4,
  ipv6,
  macNumber,
  mpls,
  srh,
  tcp,
  udp,
  vxlan,
} from "../helpers/sflow-builder.ts";

const COUNTERS: FieldSpec[] = [
  [1, 8], // octetDeltaCount
  [2, 8], // packetDeltaCount
];
const SECTION_FIELDS: FieldSpec[] = [...COUNTERS, [315, 0xffff]]; // dataLinkFrameSection, variable length

const PROVIDER_DST = "00:00:5e:00:53:01";
const PROVIDER_SRC = "00:00:5e:00:53:02";
const CUSTOMER_DST = "02:42:ac:11:00:02";
const CUSTOMER_SRC = "02:42:ac:11:00:03";

function decode(payloads: Buffer[], tunnelHeader: "outer" | "inner" = "outer"): FlowRecord[] {
  const decoder = new FlowDecoder({ now: () => 1_700_000_000_000, tunnelHeader });
  const flows: FlowRecord[] = [];
  for (const payload of payloads)
    decoder.decode(
      { payload, exporter: "192.0.2.1", port: 40000, receivedAtMs: 1_700_000_000_000, listener: "t" },
      { flow: (r) => flows.push(r) },
    );
  return flows;
}

/** One IPFIX datagram: the template and one record per frame, each frame as a dataLinkFrameSection. */
function frames(frameList: Buffer[], tunnelHeader: "outer" | "inner" = "outer"): FlowRecord[] {
  const body = frameList.flatMap((f) => [...record(COUNTERS, [f.length * 10, 10]), ...varlen([...f])]);
  return decode([ipfixPacket([set(2, ipfixTemplate(500, SECTION_FIELDS)), set(500, body)])], tunnelHeader);
}

const TCP_V4 = () =>
  Buffer.concat([
    ipv4({ src: "198.51.100.7", dst: "203.0.113.9", proto: 6, ttl: 57, id: 0x1234, flags: 2 }),
    tcp({ sport: 51515, dport: 443, flags: 0x18 }),
  ]);

describe("dataLinkFrameSection (315)", () => {
  test("plain Ethernet: addresses, ports, protocol, MACs, TTL, fragment id and flags, etype", () => {
    const [r] = frames([
      Buffer.concat([eth({ dst: CUSTOMER_DST, src: CUSTOMER_SRC, etype: 0x0800 }), TCP_V4()]),
    ]);
    assert.equal(r!.src_addr, "198.51.100.7");
    assert.equal(r!.dst_addr, "203.0.113.9");
    assert.equal(r!.proto, 6);
    assert.equal(r!.src_port, 51515);
    assert.equal(r!.dst_port, 443);
    assert.equal(r!.tcp_flags, 0x18);
    assert.equal(r!.dst_mac, macNumber(CUSTOMER_DST));
    assert.equal(r!.src_mac, macNumber(CUSTOMER_SRC));
    assert.equal(r!.ip_ttl, 57);
    assert.equal(r!.fragment_id, 0x1234);
    assert.equal(r!.ip_flags, 2);
    assert.equal(r!.etype, 0x0800);
    assert.equal(r!.bytes, 10 * (14 + 40));
    const line = JSON.parse(encodeGoflow2(r!)) as Record<string, unknown>;
    assert.equal(line.src_addr, "198.51.100.7");
    assert.equal(line.proto, "TCP");
    assert.equal(line.src_mac, CUSTOMER_SRC);
  });

  test("802.1Q and QinQ: vlan_id is the outer tag, the customer tag in dot1qCustomerVlanId", () => {
    const [vlan, qinq] = frames([
      Buffer.concat([eth({ tags: [{ tpid: 0x8100, vid: 120 }], etype: 0x0800 }), TCP_V4()]),
      Buffer.concat([
        eth({
          tags: [
            { tpid: 0x88a8, vid: 300 },
            { tpid: 0x8100, vid: 42 },
          ],
          etype: 0x0800,
        }),
        TCP_V4(),
      ]),
    ]);
    assert.equal(vlan!.vlan_id, 120);
    assert.equal(vlan!.dst_port, 443);
    assert.equal(qinq!.vlan_id, 300);
    assert.equal(qinq!.extra?.dot1qCustomerVlanId, 42);
    assert.equal(qinq!.src_addr, "198.51.100.7");
  });

  test("MPLS (L3VPN): label stack and TTLs as GoFlow2 renders them, then the IPv4 packet", () => {
    const [r] = frames([Buffer.concat([eth({ etype: 0x8847 }), mpls([16004, 24001], 254), TCP_V4()])]);
    assert.deepEqual(r!.mpls_label, [16004, 24001]);
    assert.deepEqual(r!.mpls_ttl, [254, 254]);
    assert.equal(r!.etype, 0x0800);
    assert.equal(r!.dst_addr, "203.0.113.9");
    assert.equal(r!.dst_port, 443);
    const line = JSON.parse(encodeGoflow2(r!)) as Record<string, unknown>;
    assert.deepEqual(line.mpls_label, [16004, 24001]);
    assert.deepEqual(line.mpls_ttl, [254, 254]);
  });

  const eompls = (cw: boolean) =>
    Buffer.concat([
      eth({ dst: PROVIDER_DST, src: PROVIDER_SRC, etype: 0x8847 }),
      mpls([16005, 299776]),
      ...(cw ? [controlWord(7)] : []),
      eth({ dst: CUSTOMER_DST, src: CUSTOMER_SRC, tags: [{ tpid: 0x8100, vid: 10 }], etype: 0x0800 }),
      TCP_V4(),
    ]);

  for (const cw of [true, false]) {
    test(`EoMPLS / EVPN pseudowire ${cw ? "with" : "without"} control word`, () => {
      for (const mode of ["outer", "inner"] as const) {
        const [r] = frames([eompls(cw)], mode);
        assert.deepEqual(r!.mpls_label, [16005, 299776], mode);
        // the customer's IP packet in both modes: the provider frame has no IP header
        assert.equal(r!.src_addr, "198.51.100.7", mode);
        assert.equal(r!.dst_port, 443, mode);
        assert.equal(r!.etype, 0x0800, mode);
        const outer = mode === "outer";
        assert.equal(r!.dst_mac, macNumber(outer ? PROVIDER_DST : CUSTOMER_DST), mode);
        assert.equal(r!.src_mac, macNumber(outer ? PROVIDER_SRC : CUSTOMER_SRC), mode);
        assert.equal(r!.vlan_id, outer ? 0 : 10, mode);
      }
    });
  }

  test("IPv6 with SRv6 (routing type 4) carrying IPv4: outer by default, decapsulated when set to inner", () => {
    const segments = ["fc00:0:3::", "fc00:0:2::", "fc00:0:1::"];
    const frame = Buffer.concat([
      eth({ etype: 0x86dd }),
      ipv6({ src: "2001:db8:a::1", dst: "fc00:0:2::", next: 43, hopLimit: 61, flowLabel: 0xbeef }),
      srh(4, segments, 1),
      ipv4({ src: "10.1.1.1", dst: "10.2.2.2", proto: 17, ttl: 9 }),
      udp({ sport: 5353, dport: 53 }),
    ]);
    const [outer] = frames([frame]);
    assert.equal(outer!.src_addr, "2001:db8:a::1");
    assert.equal(outer!.dst_addr, "fc00:0:2::");
    assert.equal(outer!.etype, 0x86dd);
    assert.equal(outer!.proto, 4);
    assert.equal(outer!.ip_ttl, 61);
    assert.equal(outer!.dst_port, 0);
    assert.deepEqual(outer!.ipv6_routing_header_addresses, segments);
    assert.equal(outer!.ipv6_routing_header_seg_left, 1);
    const line = JSON.parse(encodeGoflow2(outer!)) as Record<string, unknown>;
    assert.deepEqual(line.ipv6_routing_header_addresses, segments);
    assert.equal(line.ipv6_routing_header_seg_left, 1);

    const [inner] = frames([frame], "inner");
    assert.equal(inner!.src_addr, "10.1.1.1");
    assert.equal(inner!.dst_addr, "10.2.2.2");
    assert.equal(inner!.etype, 0x0800);
    assert.equal(inner!.proto, 17);
    assert.equal(inner!.ip_ttl, 9);
    assert.equal(inner!.ipv6_flow_label, 0, "the outer flow label is not the inner packet's");
    assert.equal(inner!.dst_port, 53);
    assert.deepEqual(inner!.ipv6_routing_header_addresses, segments);
  });

  test("IPv4-in-IPv6 (next header 4)", () => {
    const frame = Buffer.concat([
      eth({ etype: 0x86dd }),
      ipv6({ src: "2001:db8::a", dst: "2001:db8::b", next: 4 }),
      TCP_V4(),
    ]);
    const [outer] = frames([frame]);
    assert.equal(outer!.src_addr, "2001:db8::a");
    assert.equal(outer!.proto, 4);
    assert.equal(outer!.src_port, 0);
    const [inner] = frames([frame], "inner");
    assert.equal(inner!.src_addr, "198.51.100.7");
    assert.equal(inner!.etype, 0x0800);
    assert.equal(inner!.proto, 6);
    assert.equal(inner!.src_port, 51515);
    assert.equal(inner!.fragment_id, 0x1234);
  });

  test("GRE (with key) and VXLAN: the tunnel by default, the inner packet when set to inner", () => {
    const greFrame = Buffer.concat([
      eth({ etype: 0x0800 }),
      ipv4({ src: "192.0.2.10", dst: "192.0.2.20", proto: 47, id: 1 }),
      gre(0x86dd, 77),
      ipv6({ src: "2001:db8:1::1", dst: "2001:db8:2::2", next: 6 }),
      tcp({ sport: 1000, dport: 22, flags: 2 }),
    ]);
    const vxlanFrame = Buffer.concat([
      eth({ dst: PROVIDER_DST, src: PROVIDER_SRC, etype: 0x0800 }),
      ipv4({ src: "192.0.2.10", dst: "192.0.2.20", proto: 17 }),
      udp({ sport: 49152, dport: 4789 }),
      vxlan(5001),
      eth({ dst: CUSTOMER_DST, src: CUSTOMER_SRC, etype: 0x0800 }),
      TCP_V4(),
    ]);
    const [g, v] = frames([greFrame, vxlanFrame]);
    assert.equal(g!.src_addr, "192.0.2.10");
    assert.equal(g!.proto, 47);
    assert.equal(v!.proto, 17);
    assert.equal(v!.dst_port, 4789);
    assert.equal(v!.dst_mac, macNumber(PROVIDER_DST));
    const [gi, vi] = frames([greFrame, vxlanFrame], "inner");
    assert.equal(gi!.src_addr, "2001:db8:1::1");
    assert.equal(gi!.etype, 0x86dd);
    assert.equal(gi!.proto, 6);
    assert.equal(gi!.dst_port, 22);
    assert.equal(gi!.fragment_id, 0);
    assert.equal(vi!.src_addr, "198.51.100.7");
    assert.equal(vi!.dst_port, 443);
    assert.equal(vi!.dst_mac, macNumber(CUSTOMER_DST));
  });
});

test("ICMP in a section: type and code from the ICMP header (no ICMP element, no port)", () => {
  const [r, r6] = frames([
    Buffer.concat([eth({ etype: 0x0800 }), ipv4({ src: "10.0.0.1", dst: "10.0.0.2", proto: 1 }), icmp(8, 0)]),
    Buffer.concat([
      eth({ etype: 0x86dd }),
      ipv6({ src: "2001:db8::1", dst: "2001:db8::2", next: 58 }),
      icmp(1, 4),
    ]),
  ]);
  assert.equal(r!.proto, 1);
  assert.equal(r!.icmp_type, 8);
  assert.equal(r!.icmp_code, 0);
  assert.equal(r6!.proto, 58);
  assert.equal(r6!.icmp_type, 1);
  assert.equal(r6!.icmp_code, 4);
});

describe("explicit elements win over the section", () => {
  test("a source address and a protocol element are kept (even zero), the rest comes from the frame", () => {
    const fields: FieldSpec[] = [[8, 4], [4, 1], ...SECTION_FIELDS];
    const frame = Buffer.concat([eth({ etype: 0x0800 }), TCP_V4()]);
    const body = [...record(fields.slice(0, 4), ["100.64.0.1", 0, 1, 1]), ...varlen([...frame])];
    const [r] = decode([ipfixPacket([set(2, ipfixTemplate(501, fields)), set(501, body)])]);
    assert.equal(r!.src_addr, "100.64.0.1");
    assert.equal(r!.proto, 0);
    assert.equal(r!.dst_addr, "203.0.113.9");
    assert.equal(r!.dst_port, 443);
  });

  test("NetFlow v9 with a fixed-length section and the element after it", () => {
    const frame = Buffer.concat([eth({ etype: 0x0800 }), TCP_V4()]);
    const fields: FieldSpec[] = [
      [315, frame.length],
      [11, 2], // destination port, explicit
    ];
    const [r] = decode([v9Packet([set(0, v9Template(502, fields)), set(502, [...frame, 0x1f, 0x90])])]);
    assert.equal(r!.dst_port, 8080);
    assert.equal(r!.src_port, 51515);
    assert.equal(r!.src_addr, "198.51.100.7");
  });
});

describe("ipHeader/ipPayload (313/314) and mplsLabelStack/mplsPayload (316/317) sections", () => {
  test("an IPv6 header section and its payload section", () => {
    const fields: FieldSpec[] = [
      [313, 0xffff],
      [314, 0xffff],
    ];
    const header = ipv6({ src: "2001:db8::1", dst: "2001:db8::2", next: 17, hopLimit: 3 });
    const payload = udp({ sport: 123, dport: 123 });
    const body = [...varlen([...header]), ...varlen([...payload])];
    const [r] = decode([ipfixPacket([set(2, ipfixTemplate(503, fields)), set(503, body)])]);
    assert.equal(r!.src_addr, "2001:db8::1");
    assert.equal(r!.etype, 0x86dd);
    assert.equal(r!.proto, 17);
    assert.equal(r!.ip_ttl, 3);
    assert.equal(r!.dst_port, 123);
  });

  test("a label stack section and an MPLS payload section with a control word and Ethernet", () => {
    const fields: FieldSpec[] = [
      [316, 0xffff],
      [317, 0xffff],
    ];
    const stack = mpls([3000, 4000], 10);
    const pw = Buffer.concat([controlWord(1), eth({ dst: CUSTOMER_DST, etype: 0x0800 }), TCP_V4()]);
    const body = [...varlen([...stack]), ...varlen([...pw])];
    const [r] = decode([ipfixPacket([set(2, ipfixTemplate(504, fields)), set(504, body)])]);
    assert.deepEqual(r!.mpls_label, [3000, 4000]);
    assert.deepEqual(r!.mpls_ttl, [10, 10]);
    assert.equal(r!.dst_mac, macNumber(CUSTOMER_DST));
    assert.equal(r!.dst_addr, "203.0.113.9");
  });

  test("a truncated or garbage section fills what it has and never throws", () => {
    const frame = Buffer.concat([eth({ etype: 0x8847 }), mpls([1, 2, 3]), Buffer.from([0x00, 0x00])]);
    const [a, b] = frames([frame.subarray(0, 20), Buffer.alloc(64, 0xff)]);
    assert.deepEqual(a!.mpls_label, [1]);
    assert.equal(b!.src_addr, "");
  });
});
