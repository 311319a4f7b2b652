/**
 * The GoFlow2 JSON encoder (src/encode/goflow2.ts), checked three ways:
 * - a line of real GoFlow2 v2 output and hand-checked renderings of its value types;
 * - golden lines (test/fixtures/golden/goflow2/: the first flows of each corpus case and the crafted records
 *   of test/helpers/goflow2-records.ts), byte for byte, written by `node tools/golden.ts --write`;
 * - a naive renderer written from the format's description (test/helpers/goflow2-naive.ts), which must
 *   give the same bytes as the fast writer for the golden records and for random records (so that its
 *   segment caches hit and miss in every order), in batches, framed and one at a time.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { type Counter, FlowRecord } from "../../src/core/flow.ts";
import {
  encodeGoflow2,
  encodeGoflow2Framed,
  etypeName,
  Goflow2Writer,
  msToNs,
  networkString,
  protoName,
} from "../../src/encode/goflow2.ts";
import { batchBuffers } from "../../src/pipeline/buffer-pool.ts";
import { naiveGoflow2 } from "../helpers/goflow2-naive.ts";
import { CRAFTED, v5Record } from "../helpers/goflow2-records.ts";
import { firstDifference, GOLDEN_DIR, goflow2CorpusGolden, goflow2CraftedGolden } from "../helpers/golden.ts";

const REGENERATE = "(if the change is intended: node tools/golden.ts --write, then review the diff)";
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** A line of real GoFlow2 v2 output (+ switch_id), for v5Record. */
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
    assert.equal(msToNs(-0.5), "-500000", "before the epoch");
    assert.equal(msToNs(-1767324720787.5), "-1767324720787500000");
    assert.equal(msToNs(Number.POSITIVE_INFINITY), "0");
    assert.equal(msToNs(Number.NaN), "0");
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
    assert.equal(protoName(6.5), "unknown");
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
});

describe("Goflow2Writer batches", () => {
  it("writes newline-terminated lines into a view at the start of a transferable pooled buffer", () => {
    const a = v5Record();
    const b = v5Record();
    b.in_if_name = "Wi-Fi ünïcode";
    const writer = new Goflow2Writer();
    const data = writer.lines([a, b]);
    assert.equal(data.byteOffset, 0);
    assert.ok(data.buffer.byteLength >= data.length);
    assert.ok(batchBuffers.owns(data.buffer), "the buffer comes from the batch buffer pool");
    const text = new TextDecoder().decode(data);
    assert.equal(text, `${V5_LINE}\n${encodeGoflow2(b)}\n`);
    assert.equal(JSON.parse(text.split("\n")[1]!).in_if_name, "Wi-Fi ünïcode");
    assert.equal(writer.lines([]).length, 0);
  });

  it("grows past its scratch size", () => {
    const r = v5Record();
    r.extra = { blob: "x".repeat(3 << 20) };
    const data = new Goflow2Writer().lines([r, r]);
    assert.equal(data.length, 2 * (encodeGoflow2(r).length + 1));
  });

  it("frames records for per-record messages", () => {
    const { data, ends } = new Goflow2Writer().framed([v5Record(), v5Record()]);
    assert.equal(ends.length, 2);
    assert.equal(ends[0], V5_LINE.length);
    assert.equal(ends[1], data.length);
    assert.equal(new TextDecoder().decode(data.subarray(ends[0], ends[1])), V5_LINE);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Random records: small value pools, so the writer's segment caches both hit and miss, in every order.

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

/** VRF names and the RD exist only with a VRF id (the decoder resolves them by it): clears them otherwise. */
function resolved(r: FlowRecord): FlowRecord {
  if (r.in_vrf_id === null && r.out_vrf_id === null) {
    r.in_vrf_name = "";
    r.out_vrf_name = "";
    r.mpls_vpn_rd = "";
  }
  return r;
}

function randomRecord(rand: () => number): FlowRecord {
  const pick = <T>(pool: readonly T[]): T => pool[Math.floor(rand() * pool.length)]!;
  const small = (): number =>
    pick([0, 0, 0, 0, 1, 7, 9, 10, 99, 100, 255, 65535, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, -0, 2 ** 53]);
  // integer fields hold integers (FlowRecord); odd ones still must not break the line
  const weird = (): number => pick([0, 0, 1, 42, -1, -0, 2 ** 53 + 2, 1e21, 1e300, NaN, Infinity, -Infinity]);
  const num = (): number => (rand() < 0.9 ? small() : weird());
  const counter = (): Counter =>
    pick<Counter>([0, 1, 143, 2 ** 53, 2n ** 53n + 1n, 2n ** 64n - 1n, 0n, 12345678901234, -3, 1e22]);
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
      "2001:DB8::A:0:0:1",
      "::10.1.2.3",
      "1::2::3",
      "1.2.3.4::",
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
      -0.25,
      NaN,
      Infinity,
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
  r.src_net = pick([0, 0, 8, 16, 24, 24, 31, 32, 33, 64, 128, 129, -1, 1.5, -0]);
  r.dst_net = pick([0, 24, 24, 32, 48, 128]);
  r.bgp_next_hop = rand() < 0.8 ? "" : addr();
  if (rand() < 0.3) r.bgp_next_hop_v4 = v4();
  r.bgp_communities = list();
  r.as_path = list();
  r.mpls_label = list();
  r.mpls_ttl = rand() < 0.9 ? null : list();
  r.mpls_ip = pick([null, null, null, [], ["10.0.0.9", "2001:db8::9"], ['a"b']]);
  r.ipv6_routing_header_addresses = pick([null, null, null, ["2001:db8::a"]]);
  r.ipv6_routing_header_seg_left = rand() < 0.9 ? 0 : num();
  r.observation_domain_id = rand() < 0.8 ? 0 : num();
  r.observation_point_id = rand() < 0.8 ? 0 : num();
  r.src_sgt = pick([null, null, 0, 10, -0]);
  r.dst_sgt = pick([null, null, 0, 20]);
  r.switch_id = pick(["192.168.88.1", "192.168.88.1", "edge-1", 'a"b\\c\u0001\u2028é😀\ud800', ""]);
  r.flow_direction = pick([null, null, 0, 1]);
  r.in_if_name = text();
  r.out_if_name = text();
  // options dictionaries: names only with an id, as the decoder resolves them
  if (rand() < 0.2) {
    r.in_vrf_id = pick([null, 0, 10]);
    r.out_vrf_id = pick([null, 20]);
    if (r.in_vrf_id !== null) r.in_vrf_name = text();
    if (r.out_vrf_id !== null) r.out_vrf_name = text();
    if (r.in_vrf_id !== null || r.out_vrf_id !== null) r.mpls_vpn_rd = pick(["", "65000:10"]);
  }
  if (rand() < 0.1) r.application_name = text();
  if (rand() < 0.2) {
    r.post_nat_src_addr = pick(["", "198.51.100.7", "2001:db8::7"]);
    r.post_nat_dst_addr = pick(["", "198.51.100.8"]);
    r.post_nat_src_port = pick([null, 0, 40000]);
    r.post_nat_dst_port = pick([null, 443]);
    r.reverse_bytes = pick<Counter | null>([null, 0, 2n ** 60n, 1500]);
    r.reverse_packets = pick<Counter | null>([null, 3]);
  }
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

describe("golden lines", () => {
  for (const [file, make] of [
    ["crafted.jsonl", goflow2CraftedGolden],
    ["corpus.jsonl", goflow2CorpusGolden],
  ] as const) {
    it(`writes goflow2/${file} byte for byte`, () => {
      const golden = readFileSync(new URL(`goflow2/${file}`, GOLDEN_DIR), "utf8");
      const diff = firstDifference(golden, make());
      if (diff !== null) assert.fail(`goflow2/${file} ${diff}\n${REGENERATE}`);
      assert.ok(golden.split("\n").length > (file === "crafted.jsonl" ? CRAFTED.length : 100));
    });
  }

  it("the naive renderer gives the golden lines too (the golden files are not just the encoder's word)", () => {
    const crafted = readFileSync(new URL("goflow2/crafted.jsonl", GOLDEN_DIR), "utf8").split("\n");
    CRAFTED.forEach(([what, make], i) => {
      assert.equal(naiveGoflow2(make()), crafted[i], what);
      assert.equal(encodeGoflow2(make()), crafted[i], `${what}: one record with a writer of its own`);
    });
  });
});

describe("differential: the writer vs the naive renderer", () => {
  const naiveLines = (records: readonly FlowRecord[]): string =>
    records.map((r) => `${naiveGoflow2(r)}\n`).join("");

  it("writes the same bytes for random batches (lines, framed, single)", () => {
    const rand = rng(0x5eed);
    const writer = new Goflow2Writer();
    for (let round = 0; round < 300; round++) {
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
          records.push(resolved(r));
        } else {
          records.push(randomRecord(rand));
        }
      }
      // A list shared by reference whose contents change between records (must never be served stale).
      sharedList.length = 0;
      if (round & 1) sharedList.push(round, 7);
      const expected = naiveLines(records);
      const actual = writer.lines(records);
      assert.equal(actual.byteOffset, 0);
      const diff = firstDifference(expected, text(actual));
      if (diff !== null) assert.fail(`round ${round}: ${diff}`);
      const f = writer.framed(records);
      assert.equal(text(f.data), expected.replaceAll("\n", ""), `framed round ${round}`);
      assert.equal(f.ends[n - 1], f.data.length);
      const one = records[Math.floor(rand() * n)]!;
      assert.equal(writer.line(one), naiveGoflow2(one));
    }
  });

  it("writes a BGP next hop given as a number as the same address given as text; runs key on the number", () => {
    const make = (bgp: number | string): FlowRecord => {
      const r = v5Record();
      if (typeof bgp === "number") r.bgp_next_hop_v4 = bgp;
      else r.bgp_next_hop = bgp;
      return r;
    };
    // runs of records that differ only in the BGP next hop, so the tail segment is reused or rewritten
    const values = [
      0x0a000e21,
      0x0a000e21,
      0x0a000e1b,
      0,
      "",
      0,
      "0.0.0.0",
      0xffffffff,
      "10.0.14.27",
      0x0a000e1b,
    ];
    const records = values.map(make);
    const writer = new Goflow2Writer();
    const lines = text(writer.lines(records)).split("\n");
    values.forEach((v, i) => {
      const asText = make(typeof v === "number" ? records[i]!.bgp_next_hop : v);
      assert.equal(asText.bgp_next_hop_v4, -1);
      assert.equal(lines[i], naiveGoflow2(asText), `record ${i} (${v})`);
      assert.equal(writer.line(records[i]!), lines[i]);
    });
    assert.match(lines[0]!, /"bgp_next_hop":"10\.0\.14\.33",/);
    assert.match(lines[3]!, /"bgp_next_hop":"0\.0\.0\.0",/);
    assert.match(lines[4]!, /"bgp_next_hop":"",/);
  });

  it("writes the same text for long runs of single records", () => {
    const rand = rng(7);
    const writer = new Goflow2Writer();
    let prev = randomRecord(rand);
    for (let i = 0; i < 4000; i++) {
      const r = rand() < 0.5 ? Object.assign(new FlowRecord(), prev) : randomRecord(rand);
      if (rand() < 0.5) r.sequence_num = i;
      if (rand() < 0.01) writer.lines([randomRecord(rand)]);
      assert.equal(writer.line(r), naiveGoflow2(r), `record ${i}`);
      prev = r;
    }
  });

  it("does not reuse text across batches or after the buffer grows", () => {
    const rand = rng(42);
    const writer = new Goflow2Writer();
    const a = randomRecord(rand);
    const big = Object.assign(new FlowRecord(), a);
    big.extra = { blob: "z".repeat(3 << 20) };
    const b = Object.assign(new FlowRecord(), a);
    b.switch_id = "other";
    for (const batch of [[a], [a, big, a], [b], [a, b, a, b], [big, big], [a]]) {
      assert.equal(text(writer.lines(batch)), naiveLines(batch));
      assert.equal(writer.line(batch[0]!), naiveGoflow2(batch[0]!));
    }
  });

  it("keeps each writer's state its own: interleaved writers write what each would alone", () => {
    const rand = rng(99);
    const batches = Array.from({ length: 40 }, () => Array.from({ length: 20 }, () => randomRecord(rand)));
    const w1 = new Goflow2Writer();
    const w2 = new Goflow2Writer();
    for (let i = 0; i < batches.length; i += 2) {
      // each writer's segment caches must only ever serve its own batch's bytes
      const one = w1.lines(batches[i]!);
      const two = w2.framed(batches[i + 1]!);
      assert.equal(w1.line(batches[i + 1]![0]!), naiveGoflow2(batches[i + 1]![0]!));
      assert.equal(text(one), naiveLines(batches[i]!));
      assert.equal(text(two.data), naiveLines(batches[i + 1]!).replaceAll("\n", ""));
    }
    assert.equal(
      text(encodeGoflow2Framed(batches[0]!, w2).data),
      naiveLines(batches[0]!).replaceAll("\n", ""),
    );
  });
});
