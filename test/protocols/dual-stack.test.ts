/**
 * Dual-stack templates (issue 19 item 1, DESIGN §4): one template carries both address families, as Cisco,
 * Juniper and Huawei send them; each flow is decoded in its own family (ipVersion, else the non-zero one)
 * for addresses, prefix lengths, next hops and etype. Elements repeated for the outer and the inner header
 * (Huawei): the last one is the flow's.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
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

function decode(...payloads: Buffer[]): FlowRecord[] {
  const decoder = new FlowDecoder({ now: () => 1_700_000_000_000, collectElements: true });
  const flows: FlowRecord[] = [];
  for (const payload of payloads)
    decoder.decode(
      { payload, exporter: "192.0.2.1", port: 40000, receivedAtMs: 1_700_000_000_000, listener: "t" },
      { flow: (r) => flows.push(r) },
    );
  return flows;
}

/** Field order of a Cisco IOS-XE dual-stack IPFIX template: IPv4 elements first, then IPv6. */
const CISCO: FieldSpec[] = [
  [8, 4], // sourceIPv4Address
  [12, 4], // destinationIPv4Address
  [9, 1], // sourceIPv4PrefixLength
  [13, 1], // destinationIPv4PrefixLength
  [15, 4], // ipNextHopIPv4Address
  [18, 4], // bgpNextHopIPv4Address
  [27, 16], // sourceIPv6Address
  [28, 16], // destinationIPv6Address
  [29, 1], // sourceIPv6PrefixLength
  [30, 1], // destinationIPv6PrefixLength
  [62, 16], // ipNextHopIPv6Address
  [63, 16], // bgpNextHopIPv6Address
  [7, 2],
  [11, 2],
  [4, 1],
  [1, 8],
  [2, 8],
];
const V4_FLOW = ["10.1.2.3", "192.168.7.9", 16, 24, "10.0.0.254", "203.0.113.1"];
const V4_ZERO = ["0.0.0.0", "0.0.0.0", 0, 0, "0.0.0.0", "0.0.0.0"];
const V6_FLOW = ["2001:db8:1::5", "2001:db8:2::7", 48, 64, "fe80::1", "2001:db8:ff::1"];
const V6_ZERO = ["::", "::", 0, 0, "::", "::"];
const L4 = [40000, 443, 6, 1500, 3];

function assertV4(r: FlowRecord): void {
  assert.equal(r.src_addr, "10.1.2.3");
  assert.equal(r.dst_addr, "192.168.7.9");
  assert.equal(r.src_net, 16);
  assert.equal(r.dst_net, 24);
  assert.equal(r.next_hop, "10.0.0.254");
  assert.equal(r.bgp_next_hop, "203.0.113.1");
  assert.equal(r.bgp_next_hop_v4, 0xcb007101, "an IPv4 BGP next hop is kept as its number");
  assert.equal(r.etype, 0x0800);
  assert.equal(r.src_port, 40000);
  assert.equal(r.bytes, 1500);
  const line = JSON.parse(encodeGoflow2(r)) as Record<string, unknown>;
  assert.equal(line.src_addr, "10.1.2.3");
  assert.equal(line.src_net, "10.1.0.0/16");
  assert.equal(line.dst_net, "192.168.7.0/24");
  assert.equal(line.etype, "IPv4");
}

function assertV6(r: FlowRecord): void {
  assert.equal(r.src_addr, "2001:db8:1::5");
  assert.equal(r.dst_addr, "2001:db8:2::7");
  assert.equal(r.src_net, 48);
  assert.equal(r.dst_net, 64);
  assert.equal(r.next_hop, "fe80::1");
  assert.equal(r.bgp_next_hop, "2001:db8:ff::1");
  assert.equal(r.bgp_next_hop_v4, -1);
  assert.equal(r.etype, 0x86dd);
  const line = JSON.parse(encodeGoflow2(r)) as Record<string, unknown>;
  assert.equal(line.src_net, "2001:db8:1::/48");
  assert.equal(line.etype, "IPv6");
}

describe("dual-stack templates", () => {
  test("IPFIX: an IPv4 and an IPv6 flow from one template without ipVersion (by the non-zero family)", () => {
    const [v4, v6] = decode(
      ipfixPacket([
        set(2, ipfixTemplate(300, CISCO)),
        set(300, [
          ...record(CISCO, [...V4_FLOW, ...V6_ZERO, ...L4]),
          ...record(CISCO, [...V4_ZERO, ...V6_FLOW, ...L4]),
        ]),
      ]),
    );
    assertV4(v4!);
    assertV6(v6!);
  });

  test("NetFlow v9: the same template and flows", () => {
    const [v4, v6] = decode(
      v9Packet([
        set(0, v9Template(300, CISCO)),
        set(300, [
          ...record(CISCO, [...V4_FLOW, ...V6_ZERO, ...L4]),
          ...record(CISCO, [...V4_ZERO, ...V6_FLOW, ...L4]),
        ]),
      ]),
    );
    assertV4(v4!);
    assertV6(v6!);
  });

  test("ipVersion (60) decides, even against a non-zero address of the other family", () => {
    const fields: FieldSpec[] = [[60, 1], ...CISCO];
    const [v4, v6] = decode(
      ipfixPacket([
        set(2, ipfixTemplate(301, fields)),
        set(301, [
          // stale IPv6 bytes in an IPv4 flow, and stale IPv4 bytes in an IPv6 flow
          ...record(fields, [4, ...V4_FLOW, ...V6_FLOW, ...L4]),
          ...record(fields, [6, ...V4_FLOW, ...V6_FLOW, ...L4]),
        ]),
      ]),
    );
    assertV4(v4!);
    assertV6(v6!);
  });

  test("IPv6 elements first, and a variable-length field before them (offsets found at run time)", () => {
    const fields: FieldSpec[] = [
      [82, 0xffff], // interfaceName (variable length)
      [27, 16],
      [28, 16],
      [8, 4],
      [12, 4],
      [4, 1],
    ];
    const name = varlen([...Buffer.from("Gi0/0/1")]);
    const body = (src6: string, dst6: string, src4: string, dst4: string) => [
      ...name,
      ...record(fields.slice(1), [src6, dst6, src4, dst4, 17]),
    ];
    const [v4, v6] = decode(
      ipfixPacket([
        set(2, ipfixTemplate(302, fields)),
        set(302, [
          ...body("::", "::", "10.9.8.7", "10.6.5.4"),
          ...body("2001:db8::1", "2001:db8::2", "0.0.0.0", "0.0.0.0"),
        ]),
      ]),
    );
    assert.equal(v4!.src_addr, "10.9.8.7");
    assert.equal(v4!.dst_addr, "10.6.5.4");
    assert.equal(v4!.etype, 0x0800);
    assert.equal(v6!.src_addr, "2001:db8::1");
    assert.equal(v6!.dst_addr, "2001:db8::2");
    assert.equal(v6!.etype, 0x86dd);
    assert.equal(v6!.proto, 17);
  });

  test("next hops: the flow's family when non-zero, else the other's (IPv4 route over an IPv6 next hop)", () => {
    const fields: FieldSpec[] = [
      [8, 4],
      [12, 4],
      [15, 4],
      [62, 16],
    ];
    const [a, b] = decode(
      ipfixPacket([
        set(2, ipfixTemplate(303, fields)),
        set(303, [
          ...record(fields, ["10.0.0.1", "10.0.0.2", "0.0.0.0", "2001:db8::99"]),
          ...record(fields, ["10.0.0.1", "10.0.0.2", "0.0.0.0", "::"]),
        ]),
      ]),
    );
    assert.equal(a!.src_addr, "10.0.0.1");
    assert.equal(a!.next_hop, "2001:db8::99");
    assert.equal(b!.next_hop, "0.0.0.0");
    assert.equal(b!.etype, 0x0800);
  });

  test("single-family templates: an IPv4 BGP next hop (0.0.0.0 too) as its number, an IPv6 one as text", () => {
    const v4: FieldSpec[] = [
      [8, 4],
      [12, 4],
      [18, 4],
    ];
    const v6: FieldSpec[] = [
      [27, 16],
      [28, 16],
      [63, 16],
    ];
    for (const [fields, packet] of [
      [v4, ipfixPacket],
      [v4, v9Packet],
      [v6, ipfixPacket],
    ] as const) {
      const four = fields === v4;
      const [a, b] = decode(
        packet([
          set(packet === v9Packet ? 0 : 2, (packet === v9Packet ? v9Template : ipfixTemplate)(304, fields)),
          set(304, [
            ...record(
              fields,
              four ? ["10.0.0.1", "10.0.0.2", "10.0.14.33"] : ["2001:db8::1", "::2", "2001:db8::ff"],
            ),
            ...record(fields, four ? ["10.0.0.1", "10.0.0.2", "0.0.0.0"] : ["2001:db8::1", "::2", "::"]),
          ]),
        ]),
      );
      assert.equal(a!.bgp_next_hop_v4, four ? 0x0a000e21 : -1);
      assert.equal(a!.bgp_next_hop, four ? "10.0.14.33" : "2001:db8::ff");
      assert.equal(b!.bgp_next_hop_v4, four ? 0 : -1);
      assert.equal(b!.bgp_next_hop, four ? "0.0.0.0" : "::");
      assert.equal(JSON.parse(encodeGoflow2(b!)).bgp_next_hop, four ? "0.0.0.0" : "::");
    }
  });

  test("Huawei outer/inner: a repeated element's last occurrence is the flow's, in one family or two", () => {
    const same: FieldSpec[] = [
      [8, 4],
      [12, 4],
      [8, 4],
      [12, 4],
    ];
    const mixed: FieldSpec[] = [
      [8, 4],
      [12, 4],
      [27, 16],
      [28, 16],
    ];
    const [a, b, c] = decode(
      ipfixPacket([
        set(2, [...ipfixTemplate(304, same), ...ipfixTemplate(305, mixed)]),
        set(304, record(same, ["100.64.0.1", "100.64.0.2", "10.0.0.1", "10.0.0.2"])),
        set(305, [
          // outer IPv4 tunnel, inner IPv6 flow: both non-zero, the last (inner) family wins
          ...record(mixed, ["100.64.0.1", "100.64.0.2", "2001:db8::1", "2001:db8::2"]),
          // no inner header: only the IPv4 outer is non-zero
          ...record(mixed, ["100.64.0.1", "100.64.0.2", "::", "::"]),
        ]),
      ]),
    );
    assert.equal(a!.src_addr, "10.0.0.1");
    assert.equal(a!.dst_addr, "10.0.0.2");
    assert.equal(b!.src_addr, "2001:db8::1");
    assert.equal(b!.etype, 0x86dd);
    assert.equal(c!.src_addr, "100.64.0.1");
    assert.equal(c!.etype, 0x0800);
  });

  test("single-family templates are decoded as before", () => {
    const fields: FieldSpec[] = [
      [8, 4],
      [12, 4],
      [9, 1],
      [13, 1],
      [15, 4],
    ];
    const [r] = decode(
      ipfixPacket([
        set(2, ipfixTemplate(306, fields)),
        set(306, record(fields, ["0.0.0.0", "10.0.0.2", 0, 8, "10.0.0.1"])),
      ]),
    );
    assert.equal(r!.src_addr, "0.0.0.0");
    assert.equal(r!.dst_addr, "10.0.0.2");
    assert.equal(r!.dst_net, 8);
    assert.equal(r!.next_hop, "10.0.0.1");
    assert.equal(r!.etype, 0x0800);
  });

  test("a real dual-stack capture (Procera IPFIX, test/fixtures/logstash): every flow in its own family", () => {
    const dir = new URL("../fixtures/logstash/", import.meta.url);
    const flows = decode(
      readFileSync(new URL("ipfix_test_procera_tpl52935.dat", dir)),
      readFileSync(new URL("ipfix_test_procera_data52935.dat", dir)),
    );
    assert.equal(flows.length, 8);
    const el = (r: FlowRecord, name: string) => r.elements!.find((e) => e.name === name)?.value;
    for (const r of flows) {
      const v4 = el(r, "sourceIPv4Address");
      const v6 = el(r, "sourceIPv6Address");
      assert.ok(v4 !== undefined && v6 !== undefined, "the template carries both families");
      assert.equal(r.src_addr, v4 !== "0.0.0.0" ? v4 : v6);
      assert.equal(
        r.dst_addr,
        v4 !== "0.0.0.0" ? el(r, "destinationIPv4Address") : el(r, "destinationIPv6Address"),
      );
      assert.equal(r.etype, v4 !== "0.0.0.0" ? 0x0800 : 0x86dd);
    }
    // record 7 as logstash-codec-netflow's own test states it
    assert.equal(flows[7]!.src_addr, "138.44.161.14");
    assert.equal(flows[7]!.dst_addr, "138.44.161.13");
  });
});
