import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Datagram } from "../../src/core/datagram.ts";
import { DecodeError } from "../../src/core/errors.ts";
import type { FlowRecord } from "../../src/core/flow.ts";
import { type DecoderStats, emptyStats } from "../../src/protocols/decoder.ts";
import { decodeSflow5, InterfaceCounters, type SflowContext } from "../../src/protocols/sflow5.ts";
import {
  counterSample,
  datagram,
  envelope,
  eth,
  ethernetCounters,
  expandedCounterSample,
  expandedFlowSample,
  extendedGateway,
  extendedRouter,
  extendedSwitch,
  flowSample,
  type GenericCounters,
  genericCounters,
  icmp,
  ipv4,
  ipv6,
  ipv6Ext,
  ipv6Fragment,
  macNumber,
  mpls,
  padTo,
  rawHeader,
  sampledEthernet,
  sampledIPv4,
  sampledIPv6,
  tcp,
  u32,
  udp,
} from "../helpers/sflow-builder.ts";

const RECEIVED = 1_700_000_000_123;

function dgram(payload: Buffer, exporter = "198.51.100.7"): Datagram {
  return { payload, exporter, port: 6343, receivedAtMs: RECEIVED, listener: "test" };
}

interface Result {
  flows: FlowRecord[];
  counters: InterfaceCounters[];
  stats: DecoderStats;
}

function decode(payload: Buffer, opts: Partial<SflowContext> = {}, exporter?: string): Result {
  const ctx: SflowContext = {
    stats: emptyStats(),
    collectElements: false,
    scaleBySampling: false,
    switchIdFromIp: true,
    ...opts,
  };
  const flows: FlowRecord[] = [];
  const counters: InterfaceCounters[] = [];
  decodeSflow5(dgram(payload, exporter), ctx, {
    flow: (r) => flows.push(r),
    counters: (c) => counters.push(c as InterfaceCounters),
  });
  return { flows, counters, stats: ctx.stats };
}

/** One compact flow sample holding one raw Ethernet header; returns its record. */
function one(header: Buffer, opts: { protocol?: number; frameLength?: number } = {}): FlowRecord {
  const r = decode(datagram({ samples: [flowSample({ records: [rawHeader(header, opts)] })] }));
  assert.equal(r.flows.length, 1);
  return r.flows[0]!;
}

const TCP_SYN_ACK = 0x12;

function tcpPacket(): Buffer {
  return padTo(
    Buffer.concat([
      eth({ dst: "00:11:22:33:44:55", src: "66:77:88:99:aa:bb", etype: 0x0800 }),
      ipv4({ src: "10.0.0.1", dst: "10.0.0.2", proto: 6, tos: 0xb8, ttl: 63, id: 0x1234, flags: 2 }),
      tcp({ sport: 443, dport: 51000, flags: TCP_SYN_ACK }),
    ]),
    128,
  );
}

function assertDecodeError(fn: () => unknown, code?: string): DecodeError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof DecodeError, `expected DecodeError, got ${String(e)}`);
    if (code) assert.equal(e.code, code);
    assert.equal(e.protocol, "sflow5");
    return e;
  }
  assert.fail("expected a DecodeError");
}

describe("sflow5: datagram and flow samples", () => {
  test("IPv4 agent, compact flow sample, Ethernet/IPv4/TCP + extended switch", () => {
    const payload = datagram({
      agent: "192.0.2.10",
      sequence: 77,
      samples: [
        flowSample({
          rate: 512,
          input: 3,
          output: 7,
          records: [
            rawHeader(tcpPacket(), { frameLength: 1514 }),
            extendedSwitch({ srcVlan: 10, srcPriority: 5, dstVlan: 20, dstPriority: 3 }),
          ],
        }),
      ],
    });
    const { flows, stats } = decode(payload);
    assert.equal(flows.length, 1);
    const f = flows[0]!;
    assert.equal(f.type, "SFLOW_5");
    assert.equal(f.sampler_address, "192.0.2.10");
    assert.equal(f.switch_id, "192.0.2.10");
    assert.equal(f.sequence_num, 77);
    assert.equal(f.sampling_rate, 512);
    assert.equal(f.bytes, 1514);
    assert.equal(f.packets, 1);
    assert.equal(f.in_if, 3);
    assert.equal(f.out_if, 7);
    assert.equal(f.time_received_ms, RECEIVED);
    assert.equal(f.time_flow_start_ms, RECEIVED);
    assert.equal(f.time_flow_end_ms, RECEIVED);
    assert.equal(f.dst_mac, macNumber("00:11:22:33:44:55"));
    assert.equal(f.src_mac, macNumber("66:77:88:99:aa:bb"));
    assert.equal(f.etype, 0x0800);
    assert.equal(f.src_addr, "10.0.0.1");
    assert.equal(f.dst_addr, "10.0.0.2");
    assert.equal(f.proto, 6);
    assert.equal(f.ip_tos, 0xb8);
    assert.equal(f.ip_ttl, 63);
    assert.equal(f.ip_flags, 2);
    assert.equal(f.fragment_id, 0x1234);
    assert.equal(f.fragment_offset, 0);
    assert.equal(f.src_port, 443);
    assert.equal(f.dst_port, 51000);
    assert.equal(f.tcp_flags, TCP_SYN_ACK);
    assert.equal(f.src_vlan, 10);
    assert.equal(f.dst_vlan, 20);
    assert.deepEqual(f.extra, { src_priority: 5, dst_priority: 3 });
    assert.equal(f.elements, null);
    assert.equal(stats.sflowSkippedRecords, 0);
  });

  test("IPv6 agent, expanded flow sample with separate interface format words", () => {
    const payload = datagram({
      agent: "2001:db8::1",
      samples: [
        expandedFlowSample({
          rate: 1000,
          sourceIdType: 0,
          sourceIdIndex: 0x12345678,
          input: 0x80000001,
          output: 0x40000002,
          records: [rawHeader(tcpPacket())],
        }),
      ],
    });
    const f = decode(payload).flows[0]!;
    assert.equal(f.sampler_address, "2001:db8::1");
    assert.equal(f.in_if, 0x80000001);
    assert.equal(f.out_if, 0x40000002);
    assert.equal(f.sampling_rate, 1000);
    assert.equal(f.src_port, 443);
  });

  test("agent address type 0 (unknown) falls back to the UDP source", () => {
    const payload = datagram({ agent: "", samples: [flowSample({ records: [rawHeader(tcpPacket())] })] });
    const f = decode(payload, {}, "203.0.113.9").flows[0]!;
    assert.equal(f.sampler_address, "203.0.113.9");
  });

  test("output interface formats: discarded → forwarding_status 128; multiple → out_if 0", () => {
    const discarded = decode(
      datagram({
        samples: [flowSample({ input: 4, outputFormat: 1, output: 13, records: [rawHeader(tcpPacket())] })],
      }),
    ).flows[0]!;
    assert.equal(discarded.out_if, 0);
    assert.equal(discarded.forwarding_status, 128);
    assert.equal(discarded.in_if, 4);
    const multi = decode(
      datagram({
        samples: [expandedFlowSample({ outputFormat: 2, output: 5, records: [rawHeader(tcpPacket())] })],
      }),
    ).flows[0]!;
    assert.equal(multi.out_if, 0);
    assert.equal(multi.forwarding_status, 0);
  });

  test("scaleBySampling multiplies bytes and packets; switchIdFromIp off leaves switch_id empty", () => {
    const payload = datagram({
      samples: [flowSample({ rate: 400, records: [rawHeader(tcpPacket(), { frameLength: 1000 })] })],
    });
    const f = decode(payload, { scaleBySampling: true, switchIdFromIp: false }).flows[0]!;
    assert.equal(f.bytes, 400_000);
    assert.equal(f.packets, 400);
    assert.equal(f.switch_id, "");
    // beyond 2^53 the product is a bigint, never rounded
    const big = datagram({
      samples: [
        flowSample({ rate: 0xffffffff, records: [rawHeader(tcpPacket(), { frameLength: 0xffffffff })] }),
      ],
    });
    const g = decode(big, { scaleBySampling: true }).flows[0]!;
    assert.equal(g.bytes, 0xffffffffn * 0xffffffffn);
    assert.equal(g.packets, 0xffffffff);
  });

  test("several samples in one datagram, each its own record", () => {
    const samples = [1, 2, 3].map((i) =>
      flowSample({ sequence: i, input: i, records: [rawHeader(tcpPacket(), { frameLength: 100 * i })] }),
    );
    const { flows } = decode(datagram({ samples }));
    const ctx: SflowContext = {
      stats: emptyStats(),
      collectElements: false,
      scaleBySampling: false,
      switchIdFromIp: true,
    };
    const extra = counterSample({ records: [] });
    assert.equal(decodeSflow5(dgram(datagram({ samples: [...samples, extra] })), ctx, { flow: () => {} }), 3);
    assert.deepEqual(
      flows.map((f) => [f.in_if, f.bytes]),
      [
        [1, 100],
        [2, 200],
        [3, 300],
      ],
    );
  });
});

describe("sflow5: sampled packet header", () => {
  test("802.1Q tag", () => {
    const f = one(
      Buffer.concat([
        eth({ tags: [{ tpid: 0x8100, vid: 100, pcp: 5 }], etype: 0x0800 }),
        ipv4({ src: "10.1.1.1", dst: "10.1.1.2", proto: 17 }),
        udp({ sport: 53, dport: 3333 }),
      ]),
    );
    assert.equal(f.vlan_id, 100);
    assert.equal(f.etype, 0x0800);
    assert.equal(f.proto, 17);
    assert.equal(f.src_port, 53);
    assert.equal(f.dst_port, 3333);
    assert.equal(f.extra, null);
  });

  test("QinQ: outer S-tag in vlan_id, both tags in extra", () => {
    const f = one(
      Buffer.concat([
        eth({
          tags: [
            { tpid: 0x88a8, vid: 300 },
            { tpid: 0x8100, vid: 42 },
          ],
          etype: 0x86dd,
        }),
        ipv6({ src: "2001:db8::a", dst: "2001:db8::b", next: 17 }),
        udp({ sport: 1000, dport: 2000 }),
      ]),
    );
    assert.equal(f.vlan_id, 300);
    assert.deepEqual(f.extra, { dot1qVlanId: 300, dot1qCustomerVlanId: 42 });
    assert.equal(f.etype, 0x86dd);
    assert.equal(f.src_addr, "2001:db8::a");
    assert.equal(f.src_port, 1000);
  });

  test("MPLS label stack over IPv4 (guessed by the first nibble)", () => {
    const f = one(
      Buffer.concat([
        eth({ etype: 0x8847 }),
        mpls([16001, 24005]),
        ipv4({ src: "172.16.0.1", dst: "172.16.0.2", proto: 6 }),
        tcp({ sport: 179, dport: 40000, flags: 0x18 }),
      ]),
    );
    assert.deepEqual(f.mpls_label, [16001, 24005]);
    assert.equal(f.etype, 0x0800);
    assert.equal(f.src_addr, "172.16.0.1");
    assert.equal(f.dst_port, 40000);
    assert.equal(f.tcp_flags, 0x18);
  });

  test("MPLS over IPv6, and MPLS with an unrecognised payload keeps the MPLS etype", () => {
    const f = one(
      Buffer.concat([
        eth({ etype: 0x8848 }),
        mpls([100]),
        ipv6({ src: "2001:db8:1::1", dst: "2001:db8:2::2", next: 58 }),
        icmp(128, 0),
      ]),
    );
    assert.deepEqual(f.mpls_label, [100]);
    assert.equal(f.etype, 0x86dd);
    assert.equal(f.icmp_type, 128);
    const g = one(
      Buffer.concat([eth({ etype: 0x8847 }), mpls([7, 8, 9]), Buffer.from([0x00, 0x00, 0x00, 0x00])]),
    );
    assert.deepEqual(g.mpls_label, [7, 8, 9]);
    assert.equal(g.etype, 0x8847);
    assert.equal(g.src_addr, "");
  });

  test("IPv4 with options: L4 found after the options", () => {
    const f = one(
      Buffer.concat([
        eth({ etype: 0x0800 }),
        ipv4({ src: "10.2.0.1", dst: "10.2.0.2", proto: 17, options: Buffer.from([1, 1, 1, 0, 1, 1, 1, 0]) }),
        udp({ sport: 123, dport: 124 }),
      ]),
    );
    assert.equal(f.src_port, 123);
    assert.equal(f.dst_port, 124);
  });

  test("IPv4 fragments: first has ports, later ones have only proto and offset", () => {
    const first = one(
      Buffer.concat([
        eth({ etype: 0x0800 }),
        ipv4({ src: "10.3.0.1", dst: "10.3.0.2", proto: 17, id: 999, flags: 1, fragOffset: 0 }),
        udp({ sport: 5000, dport: 6000 }),
      ]),
    );
    assert.equal(first.ip_flags, 1);
    assert.equal(first.fragment_id, 999);
    assert.equal(first.fragment_offset, 0);
    assert.equal(first.src_port, 5000);
    const later = one(
      Buffer.concat([
        eth({ etype: 0x0800 }),
        ipv4({ src: "10.3.0.1", dst: "10.3.0.2", proto: 17, id: 999, flags: 0, fragOffset: 185 }),
        udp({ sport: 5000, dport: 6000 }), // payload bytes that look like UDP: must not be read
      ]),
    );
    assert.equal(later.proto, 17);
    assert.equal(later.fragment_offset, 185);
    assert.equal(later.fragment_id, 999);
    assert.equal(later.src_port, 0);
    assert.equal(later.dst_port, 0);
  });

  test("IPv6 with hop-by-hop, routing and destination options before TCP; flow label and traffic class", () => {
    const f = one(
      Buffer.concat([
        eth({ etype: 0x86dd }),
        ipv6({
          src: "2001:db8::1",
          dst: "fe80::1:2",
          next: 0,
          trafficClass: 0x28,
          flowLabel: 0xabcde,
          hopLimit: 17,
        }),
        ipv6Ext(43, 0),
        ipv6Ext(60, 1),
        ipv6Ext(6, 0),
        tcp({ sport: 22, dport: 50022, flags: 0x10 }),
      ]),
    );
    assert.equal(f.etype, 0x86dd);
    assert.equal(f.src_addr, "2001:db8::1");
    assert.equal(f.dst_addr, "fe80::1:2");
    assert.equal(f.ip_tos, 0x28);
    assert.equal(f.ipv6_flow_label, 0xabcde);
    assert.equal(f.ip_ttl, 17);
    assert.equal(f.proto, 6);
    assert.equal(f.src_port, 22);
    assert.equal(f.dst_port, 50022);
    assert.equal(f.tcp_flags, 0x10);
  });

  test("IPv6 fragment header: first fragment has ports, non-first does not", () => {
    const first = one(
      Buffer.concat([
        eth({ etype: 0x86dd }),
        ipv6({ src: "2001:db8::1", dst: "2001:db8::2", next: 44 }),
        ipv6Fragment(17, 0, true, 0xdeadbeef),
        udp({ sport: 4500, dport: 4501 }),
      ]),
    );
    assert.equal(first.proto, 17);
    assert.equal(first.fragment_id, 0xdeadbeef);
    assert.equal(first.fragment_offset, 0);
    assert.equal(first.ip_flags, 1);
    assert.equal(first.src_port, 4500);
    const later = one(
      Buffer.concat([
        eth({ etype: 0x86dd }),
        ipv6({ src: "2001:db8::1", dst: "2001:db8::2", next: 44 }),
        ipv6Fragment(17, 100, false, 0xdeadbeef),
        udp({ sport: 4500, dport: 4501 }),
      ]),
    );
    assert.equal(later.proto, 17);
    assert.equal(later.fragment_offset, 100);
    assert.equal(later.ip_flags, 0);
    assert.equal(later.src_port, 0);
  });

  test("ICMP and ICMPv6 type/code", () => {
    const v4 = one(
      Buffer.concat([
        eth({ etype: 0x0800 }),
        ipv4({ src: "10.0.0.1", dst: "10.0.0.9", proto: 1 }),
        icmp(3, 13),
      ]),
    );
    assert.equal(v4.proto, 1);
    assert.equal(v4.icmp_type, 3);
    assert.equal(v4.icmp_code, 13);
    assert.equal(v4.src_port, 0);
    const v6 = one(
      Buffer.concat([eth({ etype: 0x86dd }), ipv6({ src: "::1", dst: "::2", next: 58 }), icmp(135, 0)]),
    );
    assert.equal(v6.proto, 58);
    assert.equal(v6.icmp_type, 135);
    assert.equal(v6.src_addr, "::1");
  });

  test("header protocols 11 (IPv4) and 12 (IPv6) start at the IP header", () => {
    const v4 = one(
      Buffer.concat([ipv4({ src: "10.9.0.1", dst: "10.9.0.2", proto: 17 }), udp({ sport: 1, dport: 2 })]),
      {
        protocol: 11,
      },
    );
    assert.equal(v4.etype, 0x0800);
    assert.equal(v4.src_mac, 0);
    assert.equal(v4.src_addr, "10.9.0.1");
    assert.equal(v4.dst_port, 2);
    const v6 = one(
      Buffer.concat([
        ipv6({ src: "2001:db8::9", dst: "::ffff:10.0.0.1", next: 6 }),
        tcp({ sport: 80, dport: 81, flags: 2 }),
      ]),
      {
        protocol: 12,
      },
    );
    assert.equal(v6.etype, 0x86dd);
    assert.equal(v6.dst_addr, "::ffff:10.0.0.1");
    assert.equal(v6.tcp_flags, 2);
  });

  test("a header cut short is decoded as far as it goes", () => {
    const full = tcpPacket();
    // cut inside the TCP header: ports but no flags
    const f = one(full.subarray(0, 14 + 20 + 6), { frameLength: 1500 });
    assert.equal(f.src_addr, "10.0.0.1");
    assert.equal(f.src_port, 443);
    assert.equal(f.tcp_flags, 0);
    assert.equal(f.bytes, 1500);
    // cut inside the IP header: macs, etype, tos/ttl/proto, source address
    const g = one(full.subarray(0, 14 + 17));
    assert.equal(g.etype, 0x0800);
    assert.equal(g.proto, 6);
    assert.equal(g.src_addr, "10.0.0.1");
    assert.equal(g.dst_addr, "");
    // only the MACs
    const h = one(full.subarray(0, 12));
    assert.equal(h.src_mac, macNumber("66:77:88:99:aa:bb"));
    assert.equal(h.etype, 0);
  });
});

describe("sflow5: other flow records", () => {
  test("sampled Ethernet + sampled IPv4 (no raw header): bytes from the Ethernet length", () => {
    const payload = datagram({
      samples: [
        flowSample({
          records: [
            sampledEthernet({
              length: 1518,
              src: "02:00:00:00:00:01",
              dst: "02:00:00:00:00:02",
              type: 0x0800,
            }),
            sampledIPv4({
              length: 1500,
              protocol: 6,
              src: "192.168.1.1",
              dst: "192.168.1.2",
              srcPort: 80,
              dstPort: 33000,
              tcpFlags: 0x11,
              tos: 0x10,
            }),
          ],
        }),
      ],
    });
    const f = decode(payload).flows[0]!;
    assert.equal(f.bytes, 1518);
    assert.equal(f.src_mac, macNumber("02:00:00:00:00:01"));
    assert.equal(f.dst_mac, macNumber("02:00:00:00:00:02"));
    assert.equal(f.etype, 0x0800);
    assert.equal(f.src_addr, "192.168.1.1");
    assert.equal(f.dst_addr, "192.168.1.2");
    assert.equal(f.proto, 6);
    assert.equal(f.src_port, 80);
    assert.equal(f.dst_port, 33000);
    assert.equal(f.tcp_flags, 0x11);
    assert.equal(f.ip_tos, 0x10);
  });

  test("sampled IPv6 alone: bytes from its length", () => {
    const payload = datagram({
      samples: [
        flowSample({
          records: [
            sampledIPv6({
              length: 1280,
              protocol: 17,
              src: "2001:db8:0:0:1::1",
              dst: "2001:0:0:1::2",
              srcPort: 500,
              dstPort: 4500,
              tos: 3,
            }),
          ],
        }),
      ],
    });
    const f = decode(payload).flows[0]!;
    assert.equal(f.bytes, 1280);
    assert.equal(f.etype, 0x86dd);
    assert.equal(f.src_addr, "2001:db8::1:0:0:1");
    assert.equal(f.dst_addr, "2001:0:0:1::2");
    assert.equal(f.proto, 17);
    assert.equal(f.dst_port, 4500);
    assert.equal(f.ip_tos, 3);
  });

  test("extended router and gateway", () => {
    const payload = datagram({
      samples: [
        flowSample({
          records: [
            rawHeader(tcpPacket()),
            extendedRouter({ nextHop: "10.255.0.1", srcMask: 24, dstMask: 16 }),
            extendedGateway({
              nextHop: "2001:db8::ff",
              as: 65000,
              srcAs: 64500,
              srcPeerAs: 64501,
              segments: [
                { type: 2, path: [64600, 64700] },
                { type: 1, path: [64800] },
              ],
              communities: [0xfde80064, 0xfde800c8],
              localPref: 150,
            }),
          ],
        }),
      ],
    });
    const f = decode(payload).flows[0]!;
    assert.equal(f.next_hop, "10.255.0.1");
    assert.equal(f.next_hop_v4, 0x0aff0001, "an IPv4 next hop is kept as its number");
    assert.equal(f.src_net, 24);
    assert.equal(f.dst_net, 16);
    assert.equal(f.bgp_next_hop, "2001:db8::ff");
    assert.equal(f.src_as, 64500);
    assert.deepEqual(f.as_path, [64600, 64700, 64800]);
    assert.equal(f.next_hop_as, 64600);
    assert.equal(f.dst_as, 64800);
    assert.deepEqual(f.bgp_communities, [0xfde80064, 0xfde800c8]);
    assert.deepEqual(f.extra, { src_peer_as: 64501, local_pref: 150 });
  });

  test("extended router and gateway with IPv6 and IPv4 next hops: IPv4 ones as numbers, 0.0.0.0 too", () => {
    const gateway = (nextHop: string) =>
      extendedGateway({
        nextHop,
        as: 65000,
        srcAs: 0,
        srcPeerAs: 0,
        segments: [],
        communities: [],
        localPref: 100,
      });
    const payload = datagram({
      samples: [
        flowSample({
          records: [extendedRouter({ nextHop: "fe80::1", srcMask: 0, dstMask: 0 }), gateway("192.0.2.254")],
        }),
        flowSample({
          records: [extendedRouter({ nextHop: "0.0.0.0", srcMask: 0, dstMask: 0 }), gateway("0.0.0.0")],
        }),
        flowSample({ records: [gateway("2001:db8::fe")] }),
      ],
    });
    const [a, b, c] = decode(payload).flows;
    assert.equal(a!.next_hop, "fe80::1");
    assert.equal(a!.next_hop_v4, -1);
    assert.equal(a!.bgp_next_hop_v4, 0xc00002fe);
    assert.equal(a!.bgp_next_hop, "192.0.2.254");
    assert.equal(b!.next_hop_v4, 0);
    assert.equal(b!.next_hop, "0.0.0.0");
    assert.equal(b!.bgp_next_hop_v4, 0);
    assert.equal(b!.bgp_next_hop, "0.0.0.0");
    assert.equal(c!.bgp_next_hop_v4, -1);
    assert.equal(c!.bgp_next_hop, "2001:db8::fe");
  });

  test("extended gateway with empty path: dst_as and src_as fall back to the router's AS", () => {
    const payload = datagram({
      samples: [
        flowSample({
          records: [
            extendedGateway({
              nextHop: "",
              as: 65000,
              srcAs: 0,
              srcPeerAs: 0,
              segments: [],
              communities: [],
              localPref: 100,
            }),
          ],
        }),
      ],
    });
    const f = decode(payload).flows[0]!;
    assert.equal(f.dst_as, 65000);
    assert.equal(f.src_as, 65000);
    assert.equal(f.as_path, null);
    assert.equal(f.bgp_communities, null);
    assert.equal(f.bgp_next_hop, "");
  });

  test("collectElements fills IANA-named elements", () => {
    const payload = datagram({
      samples: [
        flowSample({
          rate: 100,
          input: 1,
          output: 2,
          records: [
            rawHeader(tcpPacket(), { frameLength: 1000 }),
            extendedSwitch({ srcVlan: 5, dstVlan: 6, srcPriority: 1 }),
          ],
        }),
      ],
    });
    const f = decode(payload, { collectElements: true }).flows[0]!;
    assert.ok(f.elements);
    const byName = new Map(f.elements.map((e) => [e.name, e.value]));
    assert.equal(byName.get("sourceIPv4Address"), "10.0.0.1");
    assert.equal(byName.get("destinationIPv4Address"), "10.0.0.2");
    assert.equal(byName.get("protocolIdentifier"), 6);
    assert.equal(byName.get("sourceTransportPort"), 443);
    assert.equal(byName.get("destinationTransportPort"), 51000);
    assert.equal(byName.get("tcpControlBits"), TCP_SYN_ACK);
    assert.equal(byName.get("sourceMacAddress"), "66:77:88:99:aa:bb");
    assert.equal(byName.get("ingressInterface"), 1);
    assert.equal(byName.get("egressInterface"), 2);
    assert.equal(byName.get("octetDeltaCount"), 1000);
    assert.equal(byName.get("samplingInterval"), 100);
    assert.equal(byName.get("vlanId"), 5);
    assert.equal(byName.get("postVlanId"), 6);
    assert.equal(byName.get("dot1qPriority"), 1);
    assert.equal(byName.get("exporterIPv4Address"), "192.0.2.1");
    for (const e of f.elements) assert.equal(e.pen, 0);
  });
});

const GENERIC: GenericCounters = {
  ifIndex: 5,
  ifType: 6,
  ifSpeed: 10_000_000_000,
  ifDirection: 1,
  ifStatus: 3,
  ifInOctets: 2n ** 60n + 5n,
  ifInUcastPkts: 100,
  ifInMulticastPkts: 101,
  ifInBroadcastPkts: 102,
  ifInDiscards: 103,
  ifInErrors: 104,
  ifInUnknownProtos: 105,
  ifOutOctets: 123456789012,
  ifOutUcastPkts: 200,
  ifOutMulticastPkts: 201,
  ifOutBroadcastPkts: 202,
  ifOutDiscards: 203,
  ifOutErrors: 204,
  ifPromiscuousMode: 1,
};

describe("sflow5: counter samples", () => {
  test("generic + Ethernet counters in a compact counter sample", () => {
    const payload = datagram({
      agent: "192.0.2.20",
      subAgent: 3,
      sequence: 9,
      uptime: 123456,
      samples: [
        counterSample({
          sequence: 42,
          sourceIdType: 0,
          sourceIdIndex: 5,
          records: [genericCounters(GENERIC), ethernetCounters([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13])],
        }),
      ],
    });
    const { flows, counters, stats } = decode(payload);
    assert.equal(flows.length, 0);
    assert.equal(counters.length, 1);
    assert.equal(stats.counterRecords, 1);
    const c = counters[0]!;
    assert.ok(c instanceof InterfaceCounters);
    assert.equal(c.type, "SFLOW_5");
    assert.equal(c.sampler_address, "192.0.2.20");
    assert.equal(c.sub_agent_id, 3);
    assert.equal(c.sequence_num, 9);
    assert.equal(c.uptime_ms, 123456);
    assert.equal(c.sample_sequence_num, 42);
    assert.equal(c.source_id_type, 0);
    assert.equal(c.source_id_index, 5);
    assert.equal(c.time_received_ms, RECEIVED);
    assert.equal(c.has_generic, true);
    assert.equal(c.has_ethernet, true);
    assert.equal(c.if_index, 5);
    assert.equal(c.if_type, 6);
    assert.equal(c.if_speed, 10_000_000_000);
    assert.equal(c.if_direction, 1);
    assert.equal(c.if_admin_status_up, true);
    assert.equal(c.if_oper_status_up, true);
    assert.equal(c.if_in_octets, 2n ** 60n + 5n);
    assert.equal(c.if_in_ucast_pkts, 100);
    assert.equal(c.if_in_multicast_pkts, 101);
    assert.equal(c.if_in_broadcast_pkts, 102);
    assert.equal(c.if_in_discards, 103);
    assert.equal(c.if_in_errors, 104);
    assert.equal(c.if_in_unknown_protos, 105);
    assert.equal(c.if_out_octets, 123456789012);
    assert.equal(c.if_out_ucast_pkts, 200);
    assert.equal(c.if_out_multicast_pkts, 201);
    assert.equal(c.if_out_broadcast_pkts, 202);
    assert.equal(c.if_out_discards, 203);
    assert.equal(c.if_out_errors, 204);
    assert.equal(c.if_promiscuous_mode, 1);
    assert.deepEqual(
      [
        c.dot3_stats_alignment_errors,
        c.dot3_stats_fcs_errors,
        c.dot3_stats_single_collision_frames,
        c.dot3_stats_multiple_collision_frames,
        c.dot3_stats_sqe_test_errors,
        c.dot3_stats_deferred_transmissions,
        c.dot3_stats_late_collisions,
        c.dot3_stats_excessive_collisions,
        c.dot3_stats_internal_mac_transmit_errors,
        c.dot3_stats_carrier_sense_errors,
        c.dot3_stats_frame_too_longs,
        c.dot3_stats_internal_mac_receive_errors,
        c.dot3_stats_symbol_errors,
      ],
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13],
    );
  });

  test("expanded counter sample; other counter formats skipped and counted", () => {
    const payload = datagram({
      samples: [
        expandedCounterSample({
          sourceIdType: 2,
          sourceIdIndex: 0x01000002,
          records: [
            envelope(1001, Buffer.alloc(28)), // processor counters: skipped
            genericCounters({ ...GENERIC, ifStatus: 1 }),
          ],
        }),
        counterSample({ records: [envelope(2000, Buffer.alloc(16))] }), // host counters only: nothing emitted
      ],
    });
    const { counters, stats } = decode(payload);
    assert.equal(counters.length, 1);
    const c = counters[0]!;
    assert.equal(c.source_id_type, 2);
    assert.equal(c.source_id_index, 0x01000002);
    assert.equal(c.has_generic, true);
    assert.equal(c.has_ethernet, false);
    assert.equal(c.if_admin_status_up, true);
    assert.equal(c.if_oper_status_up, false);
    assert.equal(stats.sflowSkippedRecords, 2);
    assert.equal(stats.counterRecords, 1);
  });

  test("a handler without counters() is fine", () => {
    const ctx: SflowContext = {
      stats: emptyStats(),
      collectElements: false,
      scaleBySampling: false,
      switchIdFromIp: true,
    };
    decodeSflow5(
      dgram(datagram({ samples: [counterSample({ records: [genericCounters(GENERIC)] })] })),
      ctx,
      {
        flow: () => assert.fail("no flows expected"),
      },
    );
    assert.equal(ctx.stats.counterRecords, 1);
  });
});

describe("sflow5: skipping and errors", () => {
  test("a flow sample with no records, only skipped records or an empty raw header is counted, not a flow", () => {
    const payload = datagram({
      samples: [
        flowSample({ records: [] }),
        expandedFlowSample({ records: [] }),
        flowSample({ records: [envelope(1004, Buffer.alloc(12))] }), // only a record we skip
        flowSample({ records: [rawHeader(Buffer.alloc(0))] }), // a raw header of 0 bytes
        flowSample({ sequence: 9, records: [rawHeader(tcpPacket())] }), // the one real flow
      ],
    });
    const ctx: SflowContext = {
      stats: emptyStats(),
      collectElements: false,
      scaleBySampling: false,
      switchIdFromIp: true,
    };
    const flows: FlowRecord[] = [];
    assert.equal(decodeSflow5(dgram(payload), ctx, { flow: (r) => flows.push(r) }), 1);
    assert.equal(flows.length, 1);
    assert.equal(flows[0]!.src_port, 443);
    assert.equal(ctx.stats.sflowMalformedSamples, 4);
    assert.equal(ctx.stats.flows, 1);
  });

  test("unknown samples and records are skipped by length and counted; the rest still decodes", () => {
    const payload = datagram({
      samples: [
        envelope(1, Buffer.alloc(20, 0xee), 4413), // vendor sample
        envelope(5, Buffer.alloc(12)), // unknown standard sample format
        flowSample({
          records: [
            envelope(1004, Buffer.alloc(12)), // extended user: skipped
            envelope(7, Buffer.alloc(8), 8800), // vendor record: skipped
            rawHeader(tcpPacket()),
            envelope(2100, Buffer.alloc(0)), // empty unknown record
          ],
        }),
      ],
    });
    const { flows, stats } = decode(payload);
    assert.equal(flows.length, 1);
    assert.equal(flows[0]!.src_port, 443);
    assert.equal(stats.sflowSkippedRecords, 5);
  });

  test("header protocols we do not parse leave the packet fields empty", () => {
    const f = one(Buffer.alloc(40, 0x45), { protocol: 4, frameLength: 40 }); // FDDI
    assert.equal(f.bytes, 40);
    assert.equal(f.etype, 0);
    assert.equal(f.src_addr, "");
  });

  test("malformed structure → DecodeError with a code", () => {
    const good = datagram({ samples: [flowSample({ records: [rawHeader(tcpPacket())] })] });
    assertDecodeError(() => decode(Buffer.alloc(3)), "TRUNCATED");
    assertDecodeError(() => decode(datagram({ version: 4, samples: [] })), "BAD_VERSION");
    const badAddr = Buffer.from(good);
    badAddr.writeUInt32BE(7, 4);
    assertDecodeError(() => decode(badAddr), "BAD_RECORD");
    // sample count larger than the samples present
    assertDecodeError(
      () => decode(datagram({ count: 2, samples: [flowSample({ records: [] })] })),
      "TRUNCATED",
    );
    // sample length past the end
    const longSample = Buffer.from(good);
    longSample.writeUInt32BE(0xfffffff0, 28 + 4);
    assertDecodeError(() => decode(longSample), "TRUNCATED");
    // record count larger than the records present
    assertDecodeError(
      () => decode(datagram({ samples: [flowSample({ count: 3, records: [rawHeader(tcpPacket())] })] })),
      "BAD_SAMPLE",
    );
    // header length longer than its record
    const rec = rawHeader(Buffer.alloc(16));
    rec.writeUInt32BE(0x7fffffff, 8 + 12);
    assertDecodeError(() => decode(datagram({ samples: [flowSample({ records: [rec] })] })), "BAD_SAMPLE");
    // fixed-size records too short
    for (const format of [2, 3, 4, 1001, 1002, 1003]) {
      assertDecodeError(
        () => decode(datagram({ samples: [flowSample({ records: [envelope(format, Buffer.alloc(0))] })] })),
        "BAD_SAMPLE",
      );
    }
    assertDecodeError(
      () => decode(datagram({ samples: [counterSample({ records: [envelope(1, Buffer.alloc(84))] })] })),
      "BAD_SAMPLE",
    );
    // a flow sample shorter than its fixed part
    assertDecodeError(() => decode(datagram({ samples: [envelope(1, Buffer.alloc(28))] })), "BAD_SAMPLE");
  });

  test("huge counts in the gateway record neither allocate nor loop: BAD_SAMPLE", () => {
    const body = Buffer.concat([u32(1), Buffer.from([10, 0, 0, 1]), u32(1), u32(2), u32(3), u32(0xffffffff)]);
    assertDecodeError(
      () => decode(datagram({ samples: [flowSample({ records: [envelope(1003, body)] })] })),
      "BAD_SAMPLE",
    );
    const comm = Buffer.concat([u32(0), u32(1), u32(2), u32(3), u32(0), u32(0x40000000), u32(0)]);
    assertDecodeError(
      () => decode(datagram({ samples: [flowSample({ records: [envelope(1003, comm)] })] })),
      "BAD_SAMPLE",
    );
  });

  test("a huge sample count with few bytes fails fast", () => {
    const start = performance.now();
    assertDecodeError(() => decode(datagram({ count: 0xffffffff, samples: [] })), "TRUNCATED");
    assert.ok(performance.now() - start < 50);
  });
});

describe("sflow5: robustness", () => {
  function rich(): Buffer {
    return datagram({
      agent: "2001:db8::7",
      samples: [
        flowSample({
          rate: 64,
          records: [
            rawHeader(
              Buffer.concat([
                eth({
                  tags: [
                    { tpid: 0x88a8, vid: 9 },
                    { tpid: 0x8100, vid: 10 },
                  ],
                  etype: 0x8847,
                }),
                mpls([1, 2]),
                ipv6({ src: "2001:db8::1", dst: "2001:db8::2", next: 0 }),
                ipv6Ext(44),
                ipv6Fragment(6, 0, true, 5),
                tcp({ sport: 1, dport: 2, flags: 2 }),
              ]),
            ),
            extendedSwitch({ srcVlan: 1, dstVlan: 2 }),
            extendedRouter({ nextHop: "10.0.0.1", srcMask: 8, dstMask: 8 }),
            extendedGateway({
              nextHop: "10.0.0.2",
              as: 1,
              srcAs: 2,
              srcPeerAs: 3,
              segments: [{ type: 2, path: [4, 5] }],
              communities: [6],
              localPref: 7,
            }),
          ],
        }),
        expandedFlowSample({
          records: [
            sampledEthernet({ length: 64, src: "00:00:00:00:00:01", dst: "00:00:00:00:00:02", type: 0x800 }),
            sampledIPv4({ length: 50, protocol: 1, src: "1.1.1.1", dst: "2.2.2.2" }),
            sampledIPv6({ length: 50, protocol: 17, src: "::1", dst: "::2" }),
            rawHeader(Buffer.concat([ipv4({ src: "3.3.3.3", dst: "4.4.4.4", proto: 1 }), icmp(8, 0)]), {
              protocol: 11,
            }),
          ],
        }),
        counterSample({ records: [genericCounters(GENERIC), ethernetCounters(new Array(13).fill(1))] }),
        expandedCounterSample({ records: [genericCounters(GENERIC)] }),
      ],
    });
  }

  function survive(payload: Buffer, opts: Partial<SflowContext> = {}): "ok" | "error" {
    try {
      decode(payload, opts);
      return "ok";
    } catch (e) {
      if (e instanceof DecodeError) return "error";
      throw e;
    }
  }

  test("the rich datagram decodes whole", () => {
    const { flows, counters } = decode(rich(), { collectElements: true });
    assert.equal(flows.length, 2);
    assert.equal(counters.length, 2);
    assert.deepEqual(flows[0]!.mpls_label, [1, 2]);
    assert.equal(flows[0]!.fragment_id, 5);
    assert.equal(flows[0]!.dst_port, 2);
  });

  test("every prefix of the datagram: records or DecodeError only", () => {
    const full = rich();
    let errors = 0;
    for (let n = 0; n < full.length; n++) {
      if (survive(full.subarray(0, n), { collectElements: true }) === "error") errors++;
    }
    assert.ok(errors > 0);
  });

  test("random bit flips: records or DecodeError only, bounded time", () => {
    const full = rich();
    let seed = 0x12345678;
    const rand = () => {
      // xorshift32
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) / 4294967296;
    };
    const start = performance.now();
    for (let i = 0; i < 20_000; i++) {
      const p = Buffer.from(full);
      const flips = 1 + Math.floor(rand() * 4);
      for (let k = 0; k < flips; k++) {
        const bit = Math.floor(rand() * p.length * 8);
        p[bit >> 3]! ^= 1 << (bit & 7);
      }
      survive(p, { collectElements: i % 2 === 0, scaleBySampling: i % 3 === 0 });
    }
    // also random bytes in the length/count words, the most dangerous places
    for (let i = 0; i < 5_000; i++) {
      const p = Buffer.from(full);
      const at = Math.floor(rand() * (p.length / 4)) * 4;
      p.writeUInt32BE(Math.floor(rand() * 4294967296), at);
      survive(p);
    }
    assert.ok(performance.now() - start < 10_000, "fuzzing took too long");
  });
});
