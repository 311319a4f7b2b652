/**
 * NAT and RFC 5103 biflow counters as named record fields (issue 19 "while there"), and MPLS label stacks
 * (70–79) and top-label addresses (47/140) as GoFlow2 renders them: synthetic datagrams, then the vendor
 * captures of test/fixtures/logstash that carry them (Cisco ASA, Fortigate, MikroTik, YAF, IXIA).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import type { FlowRecord } from "../../src/core/flow.ts";
import { encodeGoflow2 } from "../../src/encode/goflow2.ts";
import { FlowDecoder } from "../../src/protocols/decoder.ts";
import { type FieldSpec, ipfixPacket, ipfixTemplate, record, set } from "../helpers/netflow-builder.ts";

function decode(payloads: Buffer[], collectElements = false): FlowRecord[] {
  const decoder = new FlowDecoder({ now: () => Date.UTC(2020, 0, 1), collectElements });
  const flows: FlowRecord[] = [];
  for (const payload of payloads)
    decoder.decode(
      { payload, exporter: "192.0.2.10", port: 2055, receivedAtMs: 1_600_000_000_000, listener: "t" },
      { flow: (r) => flows.push(r) },
    );
  return flows;
}

const REVERSE = 29305;

describe("NAT, biflow and MPLS fields", () => {
  test("NAT (225–228, 281/282) and reverse counters (PEN 29305) become named fields, not extra", () => {
    const v4: FieldSpec[] = [
      [8, 4],
      [12, 4],
      [225, 4],
      [226, 4],
      [227, 2],
      [228, 2],
      [1, 8],
      [2, 4],
      [1, 8, REVERSE], // reverseOctetDeltaCount
      [2, 4, REVERSE], // reversePacketDeltaCount
    ];
    const v6: FieldSpec[] = [
      [27, 16],
      [28, 16],
      [281, 16],
      [282, 16],
      [85, 8, REVERSE], // reverseOctetTotalCount: the fallback
      [86, 8, REVERSE],
    ];
    const [a, b] = decode([
      ipfixPacket([
        set(2, [...ipfixTemplate(600, v4), ...ipfixTemplate(601, v6)]),
        set(
          600,
          record(v4, ["10.0.0.5", "8.8.8.8", "203.0.113.5", "8.8.8.8", 40001, 53, 120, 2, 2n ** 60n, 1]),
        ),
        set(601, record(v6, ["fd00::5", "2001:db8::53", "2001:db8:ff::5", "2001:db8::53", 900, 3])),
      ]),
    ]);
    assert.equal(a!.post_nat_src_addr, "203.0.113.5");
    assert.equal(a!.post_nat_dst_addr, "8.8.8.8");
    assert.equal(a!.post_nat_src_port, 40001);
    assert.equal(a!.post_nat_dst_port, 53);
    assert.equal(a!.reverse_bytes, 2n ** 60n);
    assert.equal(a!.reverse_packets, 1);
    assert.equal(a!.extra, null, "nothing left in extra");
    const line = encodeGoflow2(a!);
    assert.match(
      line,
      /"post_nat_src_addr":"203\.0\.113\.5","post_nat_dst_addr":"8\.8\.8\.8","post_nat_src_port":40001,"post_nat_dst_port":53,"reverse_bytes":1152921504606846976,"reverse_packets":1\}$/,
    );
    assert.equal(b!.post_nat_src_addr, "2001:db8:ff::5");
    assert.equal(b!.post_nat_src_port, null);
    assert.equal(b!.reverse_bytes, 900);
    assert.equal(b!.reverse_packets, 3);
    const json = JSON.parse(encodeGoflow2(b!)) as Record<string, unknown>;
    assert.equal(json.post_nat_dst_addr, "2001:db8::53");
    assert.equal("post_nat_src_port" in json, false, "absent fields are not written");
  });

  test("a flow without NAT or reverse elements writes none of them", () => {
    const f: FieldSpec[] = [
      [8, 4],
      [12, 4],
    ];
    const [r] = decode([
      ipfixPacket([set(2, ipfixTemplate(602, f)), set(602, record(f, ["10.0.0.1", "10.0.0.2"]))]),
    ]);
    assert.doesNotMatch(encodeGoflow2(r!), /post_nat|reverse_/);
  });

  test("MPLS label stack elements fill mpls_label by position (70 → 0, 72 → 2) and 47 fills mpls_ip", () => {
    const f: FieldSpec[] = [
      [8, 4],
      [72, 3],
      [70, 3],
      [47, 4],
    ];
    const label = (n: number, bottom = false) => (n << 4) | (bottom ? 1 : 0);
    const [r] = decode([
      ipfixPacket([
        set(2, ipfixTemplate(603, f)),
        set(603, record(f, ["10.0.0.1", label(300, true), label(16001), "192.0.2.77"])),
      ]),
    ]);
    assert.deepEqual(r!.mpls_label, [16001, 0, 300]);
    assert.deepEqual(r!.mpls_ip, ["192.0.2.77"]);
    const json = JSON.parse(encodeGoflow2(r!)) as Record<string, unknown>;
    assert.deepEqual(json.mpls_label, [16001, 0, 300]);
    assert.deepEqual(json.mpls_ip, ["192.0.2.77"]);
    assert.deepEqual(json.mpls_ttl, []);
  });
});

describe("vendor captures with NAT and biflow elements (test/fixtures/logstash)", () => {
  const dir = new URL("../fixtures/logstash/", import.meta.url);
  const capture = (...files: string[]) =>
    decode(
      files.map((f) => readFileSync(new URL(f, dir))),
      true,
    );
  const element = (r: FlowRecord, name: string) => r.elements!.find((e) => e.name === name)?.value;

  /** Every flow carrying `name` has it in `field`; returns how many did. */
  function same(flows: FlowRecord[], name: string, field: keyof FlowRecord): number {
    let n = 0;
    for (const r of flows) {
      const v = element(r, name);
      if (v === undefined) continue;
      n++;
      const got = r[field];
      assert.equal(typeof got === "bigint" ? got.toString() : got, v, `${name} → ${String(field)}`);
      assert.equal(r.extra?.[name], undefined, `${name} is not repeated in extra`);
    }
    return n;
  }

  test("Cisco ASA (NetFlow v9 NSEL): post-NAT addresses and ports", () => {
    const flows = capture(
      "netflow9_test_cisco_asa_2_tpl_26x.dat",
      "netflow9_test_cisco_asa_2_tpl_27x.dat",
      "netflow9_test_cisco_asa_2_data.dat",
    );
    assert.ok(same(flows, "postNATSourceIPv4Address", "post_nat_src_addr") > 0);
    assert.ok(same(flows, "postNATDestinationIPv4Address", "post_nat_dst_addr") > 0);
    assert.ok(same(flows, "postNAPTSourceTransportPort", "post_nat_src_port") > 0);
    assert.ok(same(flows, "postNAPTDestinationTransportPort", "post_nat_dst_port") > 0);
  });

  test("Fortigate (NetFlow v9) and MikroTik (IPFIX): NAT", () => {
    const forti = capture(
      "netflow9_test_fortigate_fortios_542_appid_tpl258-269.dat",
      "netflow9_test_fortigate_fortios_542_appid_data258_262.dat",
    );
    assert.ok(same(forti, "postNAPTSourceTransportPort", "post_nat_src_port") > 0);
    const mikrotik = capture(
      "ipfix_test_mikrotik_tpl.dat",
      "ipfix_test_mikrotik_data258.dat",
      "ipfix_test_mikrotik_data259.dat",
    );
    assert.ok(same(mikrotik, "postNATDestinationIPv4Address", "post_nat_dst_addr") > 0);
  });

  test("YAF (IPFIX biflows): reverse counters", () => {
    const yaf = capture(
      "ipfix_test_yaf_tpls_option_tpl.dat",
      "ipfix_test_yaf_tpl45841.dat",
      "ipfix_test_yaf_data45841.dat",
      "ipfix_test_yaf_data45873.dat",
      "ipfix_test_yaf_data53248.dat",
    );
    const withReverse = yaf.filter((r) => r.reverse_packets !== null);
    assert.ok(withReverse.length > 0);
    for (const r of withReverse) {
      const total = element(r, "reversePacketTotalCount") ?? element(r, "reversePacketDeltaCount");
      assert.equal(String(r.reverse_packets), String(total));
    }
  });
});
