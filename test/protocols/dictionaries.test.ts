import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import type { FlowRecord } from "../../src/core/flow.ts";
import { encodeGoflow2 } from "../../src/encode/goflow2.ts";
import { type DecoderOptions, FlowDecoder } from "../../src/protocols/decoder.ts";
import { rdText } from "../../src/protocols/netflow/sets.ts";
import { MAX_OPTION_ENTRIES } from "../../src/protocols/state/options.ts";
import {
  type FieldSpec,
  ipfixOptionsTemplate,
  ipfixPacket,
  ipfixTemplate,
  record,
  set,
  v9OptionsTemplate,
  v9Packet,
  v9Template,
} from "../helpers/netflow-builder.ts";

function collector(opts: Partial<DecoderOptions> = {}) {
  const decoder = new FlowDecoder({ now: () => 1_700_000_000_000, ...opts });
  const flows: FlowRecord[] = [];
  const handler = { flow: (r: FlowRecord) => flows.push(r) };
  return {
    decoder,
    flows,
    feed(payload: Buffer, port = 40000) {
      decoder.decode(
        { payload, exporter: "192.0.2.9", port, receivedAtMs: 1_700_000_000_000, listener: "t" },
        handler,
      );
    },
  };
}

/** 8 RD bytes from type, administrator and assigned number (RFC 4364 §4.2). */
function rd(type: number, admin: number | string, assigned: number): number[] {
  const b = Buffer.alloc(8);
  b.writeUInt16BE(type, 0);
  if (type === 0) {
    b.writeUInt16BE(admin as number, 2);
    b.writeUInt32BE(assigned, 4);
  } else if (type === 1) {
    (admin as string).split(".").forEach((x, i) => {
      b[2 + i] = Number(x);
    });
    b.writeUInt16BE(assigned, 6);
  } else {
    b.writeUInt32BE(admin as number, 2);
    b.writeUInt16BE(assigned, 6);
  }
  return [...b];
}

describe("route distinguisher text (RFC 4364)", () => {
  test("types 0, 1, 2; anything else is not an RD", () => {
    const hex = (a: number[]) => Buffer.from(a).toString("hex");
    assert.equal(rdText(hex(rd(0, 65000, 1))), "0:65000:1");
    assert.equal(rdText(hex(rd(1, "192.0.2.1", 7))), "1:192.0.2.1:7");
    assert.equal(rdText(hex(rd(2, 4226809910, 14))), "2:4226809910:14");
    assert.equal(rdText(`0003${"00".repeat(6)}`), undefined);
    assert.equal(rdText("0000fde8"), undefined);
    assert.equal(rdText(12), undefined);
  });
});

// Flows: ingressVRFID, egressVRFID, applicationId (4 octets: classification engine 3 (IANA L4) + port).
const FLOW: FieldSpec[] = [
  [8, 4],
  [1, 4],
  [234, 4],
  [235, 4],
  [95, 4],
];
const flowRec = (inVrf: number, outVrf: number, app: number) =>
  record(FLOW, ["10.0.0.1", 100, inVrf, outVrf, 0x03000000 + app]);

const VRF_SCOPE: FieldSpec[] = [[234, 4]];
const VRF_OPT: FieldSpec[] = [
  [236, 32],
  [90, 8],
];
const APP_SCOPE: FieldSpec[] = [[95, 4]];
const APP_OPT: FieldSpec[] = [[96, 24]];

function ipfixOptions(domain: number): Buffer {
  const vrf = (id: number, name: string, rdBytes: number[]) => [
    ...record([...VRF_SCOPE, [236, 32]], [id, name]),
    ...rdBytes,
  ];
  return ipfixPacket(
    [
      set(3, [
        ...ipfixOptionsTemplate(300, VRF_SCOPE, VRF_OPT),
        ...ipfixOptionsTemplate(301, APP_SCOPE, APP_OPT),
      ]),
      set(300, [
        ...vrf(1, "CUST-A", rd(0, 65000, 1)),
        ...vrf(2, "CUST-B", rd(1, "192.0.2.1", 7)),
        ...vrf(3, "INET", rd(2, 4226809910, 14)),
      ]),
      set(301, [...record([...APP_SCOPE, ...APP_OPT], [0x03000000 + 443, "https"])]),
    ],
    { domain },
  );
}

const ipfixFlows = (domain: number, recs: number[][]) =>
  ipfixPacket([set(2, ipfixTemplate(256, FLOW)), set(256, recs.flat())], { domain });

describe("options dictionaries (IPFIX)", () => {
  test("VRF names, RD and application name resolved into the flow and its JSON line", () => {
    const c = collector();
    c.feed(ipfixOptions(4), 40001); // options from another source port
    c.feed(ipfixFlows(4, [flowRec(1, 3, 443), flowRec(2, 9, 80), flowRec(9, 0, 443)]));
    const [a, b, x] = c.flows;
    assert.deepEqual(
      [a!.in_vrf_id, a!.out_vrf_id, a!.in_vrf_name, a!.out_vrf_name, a!.mpls_vpn_rd, a!.application_name],
      [1, 3, "CUST-A", "INET", "0:65000:1", "https"],
    );
    assert.deepEqual(
      [b!.in_vrf_name, b!.out_vrf_name, b!.mpls_vpn_rd, b!.application_name],
      ["CUST-B", "", "1:192.0.2.1:7", ""],
    );
    assert.deepEqual(
      [x!.in_vrf_name, x!.mpls_vpn_rd],
      ["", ""],
      "unknown ingress VRF, no RD for VRF 0 either",
    );
    const line = JSON.parse(encodeGoflow2(a!));
    const keys = Object.keys(line);
    assert.deepEqual(keys.slice(keys.indexOf("switch_id")), [
      "switch_id",
      "in_vrf_id",
      "out_vrf_id",
      "in_vrf_name",
      "out_vrf_name",
      "mpls_vpn_rd",
      "application_name",
      "applicationId",
    ]);
    assert.equal(line.mpls_vpn_rd, "0:65000:1");
    assert.equal(line.in_vrf_name, "CUST-A");
    assert.equal(line.ingressVRFID, undefined, "the ids are named fields, not extras");
  });

  test("the exporter's dictionary sizes (/exporters), over its domains", () => {
    const c = collector();
    c.feed(ipfixOptions(4));
    c.feed(ipfixOptions(5));
    const e = c.decoder.exporters().find((x) => x.exporter === "192.0.2.9")!;
    assert.deepEqual(e.dictionaries, { samplers: 0, interfaces: 0, vrfs: 6, rds: 6, applications: 2 });
  });

  test("flows before the options carry the ids only; other domains learn nothing", () => {
    const c = collector();
    c.feed(ipfixFlows(4, [flowRec(1, 3, 443)]));
    c.feed(ipfixOptions(4));
    c.feed(ipfixFlows(5, [flowRec(1, 3, 443)]));
    c.feed(ipfixFlows(4, [flowRec(1, 3, 443)]));
    assert.deepEqual(
      c.flows.map((r) => [r.in_vrf_id, r.in_vrf_name, r.application_name]),
      [
        [1, "", ""],
        [1, "", ""],
        [1, "CUST-A", "https"],
      ],
    );
    const line = JSON.parse(encodeGoflow2(c.flows[0]!));
    assert.equal(line.in_vrf_id, 1);
    assert.equal("in_vrf_name" in line, false, "empty names are left out");
  });

  test("flows without VRF or application fields: no dictionary fields in the JSON line", () => {
    const c = collector();
    c.feed(ipfixOptions(4));
    const plain: FieldSpec[] = [
      [8, 4],
      [1, 4],
    ];
    c.feed(
      ipfixPacket([set(2, ipfixTemplate(257, plain)), set(257, record(plain, ["10.0.0.2", 5]))], {
        domain: 4,
      }),
    );
    const line = encodeGoflow2(c.flows[0]!);
    assert.doesNotMatch(line, /vrf|mpls_vpn_rd|application_name/);
  });

  test("the dictionaries survive a restart (templates.json state)", () => {
    const c = collector();
    c.feed(ipfixOptions(4));
    const saved = JSON.parse(JSON.stringify(c.decoder.saveState()));
    const d = collector();
    d.decoder.loadState(saved);
    d.feed(ipfixFlows(4, [flowRec(2, 1, 443)]));
    const r = d.flows[0]!;
    assert.deepEqual(
      [r.in_vrf_name, r.out_vrf_name, r.mpls_vpn_rd, r.application_name],
      ["CUST-B", "CUST-A", "1:192.0.2.1:7", "https"],
    );
    // a file written before the dictionaries existed still loads
    for (const s of saved.decoders?.[0]?.sampling ?? saved.sampling) {
      delete s.vrfNames;
      delete s.rds;
      delete s.appNames;
    }
    assert.deepEqual(collector().decoder.loadState(saved).sampling, 1);
  });

  test("each dictionary is bounded; refusals are counted", () => {
    const c = collector();
    const scope: FieldSpec[] = [[234, 4]];
    const opt: FieldSpec[] = [[236, 1]];
    const perPacket = 12_000;
    let next = 0;
    while (next < MAX_OPTION_ENTRIES + 10) {
      const rows: number[] = [];
      for (let i = 0; i < perPacket && next < MAX_OPTION_ENTRIES + 10; i++, next++)
        rows.push(...record([...scope, ...opt], [next, "v"]));
      c.feed(ipfixPacket([set(3, ipfixOptionsTemplate(300, scope, opt)), set(300, rows)], { domain: 4 }));
    }
    assert.equal(c.decoder.stats.optionEntriesRefused, 10);
    c.feed(ipfixFlows(4, [flowRec(MAX_OPTION_ENTRIES - 1, MAX_OPTION_ENTRIES + 1, 1)]));
    assert.deepEqual([c.flows[0]!.in_vrf_name, c.flows[0]!.out_vrf_name], ["v", ""]);
  });
});

describe("a flow's own applicationName (96, nProbe style)", () => {
  test("is its application_name, before the dictionary's; an empty one leaves the dictionary's", () => {
    const c = collector();
    const flow: FieldSpec[] = [
      [8, 4],
      [95, 4],
      [96, 0xffff],
    ];
    const name = (s: string) => [s.length, ...Buffer.from(s)];
    c.feed(ipfixOptions(4));
    c.feed(
      ipfixPacket(
        [
          set(2, ipfixTemplate(260, flow)),
          set(260, [
            ...record(
              [
                [8, 4],
                [95, 4],
              ],
              ["10.0.0.1", 0x03000000 + 443],
            ),
            ...name("TLS/Google"),
            ...record(
              [
                [8, 4],
                [95, 4],
              ],
              ["10.0.0.2", 0x03000000 + 443],
            ),
            ...name(""),
          ]),
        ],
        { domain: 4 },
      ),
    );
    assert.deepEqual(
      c.flows.map((r) => r.application_name),
      ["TLS/Google", "https"],
    );
  });
});

describe("options dictionaries (NetFlow v9)", () => {
  test("VRF table and application table options scoped by System", () => {
    const c = collector();
    const scope: FieldSpec[] = [[1, 4]];
    const vrfOpt: FieldSpec[] = [
      [234, 4],
      [236, 16],
    ];
    const appOpt: FieldSpec[] = [
      [95, 4],
      [96, 16],
    ];
    c.feed(
      v9Packet(
        [
          set(1, [...v9OptionsTemplate(300, scope, vrfOpt), ...v9OptionsTemplate(301, scope, appOpt)]),
          set(300, [
            ...record([...scope, ...vrfOpt], [0, 7, "RED"]),
            ...record([...scope, ...vrfOpt], [0, 8, "BLUE"]),
          ]),
          set(301, record([...scope, ...appOpt], [0, 0x0d000050, "http"])),
        ],
        { sourceId: 2 },
      ),
    );
    c.feed(
      v9Packet([set(0, v9Template(256, FLOW)), set(256, record(FLOW, ["10.0.0.1", 1, 8, 7, 0x0d000050]))], {
        sourceId: 2,
      }),
    );
    const r = c.flows[0]!;
    assert.deepEqual(
      [r.in_vrf_id, r.out_vrf_id, r.in_vrf_name, r.out_vrf_name, r.mpls_vpn_rd, r.application_name],
      [8, 7, "BLUE", "RED", "", "http"],
    );
  });
});

describe("options dictionaries in the corpus (test/fixtures/logstash)", () => {
  test("Cisco NBAR (v9): the application table of options template 260 names the flows of template 262", () => {
    const dir = new URL("../fixtures/logstash/", import.meta.url);
    const c = collector();
    for (const f of [
      "netflow9_test_cisco_nbar_opttpl260.dat",
      "netflow9_test_cisco_nbar_tpl262.dat",
      "netflow9_test_cisco_nbar_data262.dat",
    ])
      c.feed(readFileSync(new URL(f, dir)), 2055);
    assert.deepEqual(
      c.flows.map((r) => [r.extra?.applicationId, r.application_name]),
      [
        ["01000001", "icmp"],
        ["05000026", ""],
        ["01000001", "icmp"],
        ["0300007b", ""],
        ["05000026", ""],
      ],
    );
  });
});
