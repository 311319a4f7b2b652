/**
 * Issue 18 against the real captures of test/fixtures/logstash: which of them carry sampler, VRF or
 * application options, and that those decode with the right rates and names. Where a capture has an
 * options template but no data for it (Cisco ASR 9000 templates 257 and 334), the options data is built
 * here in that real template's layout (the field lengths the router announced), so the real template and
 * the real flows of the same router are what is tested.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import type { FlowRecord } from "../../src/core/flow.ts";
import { FlowDecoder } from "../../src/protocols/decoder.ts";
import { type FieldSpec, record, set, v9Packet } from "../helpers/netflow-builder.ts";

const DIR = new URL("../fixtures/logstash/", import.meta.url);

function session() {
  const decoder = new FlowDecoder({ now: () => Date.UTC(2020, 0, 1) });
  const flows: FlowRecord[] = [];
  const feed = (payload: Buffer) =>
    decoder.decode(
      { payload, exporter: "192.0.2.10", port: 2055, receivedAtMs: 1_600_000_000_000, listener: "" },
      { flow: (r: FlowRecord) => flows.push(r) },
    );
  return {
    decoder,
    flows,
    feed,
    file: (...names: string[]) => {
      for (const n of names) feed(readFileSync(new URL(n, DIR)));
    },
    /** One data set for the learned options template `id`, its fields' lengths as the router sent them. */
    optionsData(id: number, domain: number, values: (number | string)[]) {
      const t = decoder.templates().find((x) => x.id === id && x.domain === domain);
      assert.ok(t, `template ${id} learned from the capture`);
      const layout: FieldSpec[] = t.fields.map((f) => [f.id, f.length]);
      assert.equal(values.length, layout.length);
      feed(v9Packet([set(id, record(layout, values))], { sourceId: domain }));
    },
  };
}

describe("sampler and VRF options of the corpus (Cisco ASR 9000, NetFlow v9)", () => {
  // Templates of source id 2177: 256 (scopeSystem, ingressInterface, interfaceDescription), 257 (scopeSystem,
  // samplerId, samplerRandomInterval, samplerMode, samplerName), 334 (scopeSystem, ingressVRFID, VRFname);
  // flows of template 260 carry samplerId 1 and ingress/egress VRF id 0x60000000 (IOS XR's default VRF).
  const ASR = [
    "netflow9_test_cisco_asr9k_opttpl256.dat",
    "netflow9_test_cisco_asr9k_opttpl257.dat",
    "netflow9_test_cisco_asr9k_opttpl334.dat",
    "netflow9_test_cisco_asr9k_data256.dat",
    "netflow9_test_cisco_asr9k_tpl260.dat",
  ];

  test("the real templates carry the sampler and VRF tables; the flows get the rate, VRF and interface names", () => {
    const s = session();
    s.file(...ASR);
    s.optionsData(257, 2177, [0, 1, 1000, 2, "NFS-SAMPLER-MAP"]);
    s.optionsData(334, 2177, [0, 0x60000000, "default"]);
    s.file("netflow9_test_cisco_asr9k_data260.dat");
    assert.equal(s.flows.length, 21);
    for (const r of s.flows) {
      assert.equal(r.sampling_rate, 1000);
      assert.deepEqual(
        [r.in_vrf_id, r.out_vrf_id, r.in_vrf_name, r.out_vrf_name],
        [0x60000000, 0x60000000, "default", "default"],
      );
    }
    // interface names from the real table (data256); some interfaces of the flows are not in it
    assert.deepEqual(
      s.flows.slice(0, 4).map((r) => [r.in_if, r.in_if_name]),
      [
        [110, "TenGigE0_6_1_0"],
        [87, "TenGigE0_1_0_1"],
        [104, "TenGigE0_6_0_2"],
        [86, "TenGigE0_1_0_0"],
      ],
    );
    const ex = s.decoder.exporters()[0]!;
    assert.deepEqual(ex.dictionaries, { samplers: 1, interfaces: 19, vrfs: 1, rds: 0, applications: 0 });
    assert.deepEqual(ex.samplers, [
      {
        kind: "sampler",
        id: 1,
        domain: 2177,
        rate: 1000,
        name: "NFS-SAMPLER-MAP",
        parameters: { flowSamplerMode: 2, flowSamplerRandomInterval: 1000 },
      },
    ]);
  });

  test("without the sampler's options data the flows have no rate (the capture alone announces none)", () => {
    const s = session();
    s.file(...ASR, "netflow9_test_cisco_asr9k_data260.dat");
    assert.deepEqual(new Set(s.flows.map((r) => r.sampling_rate)), new Set([0]));
    assert.deepEqual(new Set(s.flows.map((r) => r.in_vrf_name)), new Set([""]));
  });
});

describe("announced sampling in the corpus", () => {
  test("IPFIX (ipfix.dat): a count-based selector of interval 1, space 0 is rate 1, in the sampler table", () => {
    const s = session();
    s.file("ipfix.dat");
    assert.equal(s.flows.length, 12);
    assert.deepEqual(new Set(s.flows.map((r) => r.sampling_rate)), new Set([1]));
    assert.deepEqual(s.decoder.exporters()[0]!.samplers, [
      {
        kind: "domain",
        id: 0,
        domain: 0,
        rate: 1,
        parameters: { selectorAlgorithm: 1, samplingPacketInterval: 1, samplingPacketSpace: 0 },
      },
    ]);
  });

  test("Juniper MX240 (IPFIX): samplingInterval 1000 for its observation domain", () => {
    const s = session();
    s.file(
      "ipfix_test_juniper_mx240_junos151r6s3_opttpl512.dat",
      "ipfix_test_juniper_mx240_junos151r6s3_data512.dat",
    );
    const ex = s.decoder.exporters()[0]!;
    assert.deepEqual(
      ex.samplers.map((r) => [r.kind, r.domain, r.rate]),
      [["domain", 524288, 1000]],
    );
    assert.equal(ex.samplingRate, 1000);
  });

  test("Juniper SRX and FortiOS 5.2.1 (v9): samplingInterval 1 (random, deterministic) is rate 1", () => {
    const srx = session();
    srx.file("netflow9_test_juniper_srx_tplopt.dat");
    assert.deepEqual(
      srx.decoder.exporters()[0]!.samplers.map((r) => [r.domain, r.rate, r.parameters.samplingAlgorithm]),
      [[142, 1, 2]],
    );
    const forti = session();
    forti.file(
      "netflow9_test_fortigate_fortios_521_tpl.dat",
      "netflow9_test_fortigate_fortios_521_data256.dat",
      "netflow9_test_fortigate_fortios_521_data257.dat",
    );
    assert.deepEqual(
      forti.flows.map((r) => r.sampling_rate),
      [1],
    );
  });
});
