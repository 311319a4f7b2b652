import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, describe, it } from "node:test";
import { FlowRecord } from "../../src/core/flow.ts";
import { FlowDecoder } from "../../src/protocols/decoder.ts";
import { findSink } from "../../src/sinks/index.ts";
import { createSqliteEncoder } from "../../src/sinks/sqlite/columnar.ts";
import { parseSqliteOptions, SqliteSink } from "../../src/sinks/sqlite/sink.ts";
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

const dir = mkdtempSync(join(tmpdir(), "clarion-sqlite-dict-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const quiet = { info() {}, warn() {}, error() {} };

const DICT_COLUMNS = "in_vrf_id, out_vrf_id, in_vrf_name, out_vrf_name, mpls_vpn_rd, application_name";

function rows(sink: SqliteSink, sql: string): Record<string, unknown>[] {
  return (sink.db.prepare(sql).all() as Record<string, unknown>[]).map((r) => ({ ...r }));
}

/** Decodes the datagrams (one exporter) and writes the flows through the sqlite encoder and sink. */
async function decodeInto(sink: SqliteSink, datagrams: Buffer[]): Promise<FlowRecord[]> {
  const decoder = new FlowDecoder({ now: () => 1_700_000_000_000 });
  const flows: FlowRecord[] = [];
  for (const payload of datagrams)
    decoder.decode(
      { payload, exporter: "192.0.2.9", port: 2055, receivedAtMs: 1_700_000_000_000, listener: "t" },
      { flow: (r) => flows.push(r) },
    );
  await sink.write(createSqliteEncoder(sink.name).encode(flows));
  return flows;
}

describe("sqlite sink: options dictionaries (issue 18) in their own columns", () => {
  it("writes the VRF ids and resolved names to their columns, NULL when unknown; extra keeps the rest", async () => {
    const uri = `sqlite:${join(dir, "flows.db")}`;
    const def = findSink(uri);
    const sink = (await def.create(uri, { dataDir: dir, logger: quiet, options: {} })) as SqliteSink;
    const rec = () => {
      const r = new FlowRecord();
      r.time_received_ms = 1_700_000_000_000;
      r.sampler_address = "192.0.2.1";
      r.src_addr = "10.0.0.1";
      return r;
    };
    const a = rec();
    a.in_vrf_id = 1;
    a.out_vrf_id = 0;
    a.in_vrf_name = "CUST-A";
    a.mpls_vpn_rd = "0:65000:1";
    a.application_name = 'h"ttp é';
    a.extra = { applicationId: "03000050" };
    const b = rec();
    const c = rec();
    c.out_vrf_id = 4_294_967_295;
    c.out_vrf_name = "CUST-A";
    await sink.write(def.createEncoder(uri, {}).encode([a, b, c]));
    const got = rows(sink, `SELECT ${DICT_COLUMNS}, extra FROM flows ORDER BY id`);
    assert.deepEqual(got, [
      {
        in_vrf_id: 1,
        out_vrf_id: 0, // VRF 0 (the default VRF) is a value, not NULL
        in_vrf_name: "CUST-A",
        out_vrf_name: null,
        mpls_vpn_rd: "0:65000:1",
        application_name: 'h"ttp é',
        extra: '{"applicationId":"03000050"}',
      },
      {
        in_vrf_id: null,
        out_vrf_id: null,
        in_vrf_name: null,
        out_vrf_name: null,
        mpls_vpn_rd: null,
        application_name: null,
        extra: null,
      },
      {
        in_vrf_id: null,
        out_vrf_id: 4_294_967_295,
        in_vrf_name: null,
        out_vrf_name: "CUST-A",
        mpls_vpn_rd: null,
        application_name: null,
        extra: null,
      },
    ]);
    await sink.close();
  });

  it("adds the dictionary columns to a flows table of the previous schema (issue 19), NULL in its rows", async () => {
    const path = join(dir, "issue19.db");
    const old = new DatabaseSync(path);
    // the flows table (and its index) as the collector created it after issue 19, before issue 18's columns
    old.exec(`CREATE TABLE flows (
  id INTEGER PRIMARY KEY, time_received INTEGER NOT NULL, time_flow_start INTEGER, time_flow_end INTEGER,
  exporter TEXT NOT NULL, type TEXT, sequence_num INTEGER, sampling_rate INTEGER, src_ip TEXT, dst_ip TEXT,
  src_port INTEGER, dst_port INTEGER, protocol INTEGER, etype INTEGER, bytes INTEGER, packets INTEGER,
  in_if INTEGER, out_if INTEGER, src_mac TEXT, dst_mac TEXT, src_vlan INTEGER, dst_vlan INTEGER,
  vlan_id INTEGER, ip_tos INTEGER, tcp_flags INTEGER, icmp_type INTEGER, icmp_code INTEGER, src_as INTEGER,
  dst_as INTEGER, next_hop TEXT, src_net TEXT, dst_net TEXT, src_sgt INTEGER, dst_sgt INTEGER,
  flow_direction INTEGER, in_if_name TEXT, out_if_name TEXT, observation_domain_id INTEGER, extra TEXT,
  post_nat_src_ip TEXT, post_nat_dst_ip TEXT, post_nat_src_port INTEGER, post_nat_dst_port INTEGER,
  reverse_bytes INTEGER, reverse_packets INTEGER);
CREATE INDEX flows_time_received ON flows(time_received);
INSERT INTO flows(time_received, exporter, bytes, extra)
  VALUES (1, 'old', 10, '{"in_vrf_id":1,"in_vrf_name":"CUST-A"}');
PRAGMA user_version = 1;`);
    old.close();
    const sink = new SqliteSink("issue19", path, parseSqliteOptions({}));
    const cols = rows(sink, "PRAGMA table_info(flows)");
    const types = Object.fromEntries(cols.map((c) => [c.name, c.type]));
    assert.deepEqual(
      DICT_COLUMNS.split(", ").map((c) => types[c]),
      ["INTEGER", "INTEGER", "TEXT", "TEXT", "TEXT", "TEXT"],
    );
    assert.equal(rows(sink, "PRAGMA user_version")[0]!.user_version, 1, "additive: the version stays 1");
    const r = new FlowRecord();
    r.time_received_ms = 2000;
    r.sampler_address = "192.0.2.1";
    r.in_vrf_id = 2;
    r.in_vrf_name = "CUST-B";
    await sink.write(createSqliteEncoder("issue19").encode([r]));
    assert.deepEqual(rows(sink, `SELECT exporter, ${DICT_COLUMNS}, extra FROM flows ORDER BY id`), [
      {
        exporter: "old",
        in_vrf_id: null,
        out_vrf_id: null,
        in_vrf_name: null,
        out_vrf_name: null,
        mpls_vpn_rd: null,
        application_name: null,
        extra: '{"in_vrf_id":1,"in_vrf_name":"CUST-A"}', // old rows are not rewritten
      },
      {
        exporter: "192.0.2.1",
        in_vrf_id: 2,
        out_vrf_id: null,
        in_vrf_name: "CUST-B",
        out_vrf_name: null,
        mpls_vpn_rd: null,
        application_name: null,
        extra: null,
      },
    ]);
    await sink.close();
    // a second open finds nothing to add
    const again = new SqliteSink("issue19", path, parseSqliteOptions({}));
    assert.equal(rows(again, "SELECT count(*) AS n FROM flows")[0]!.n, 2);
    await again.close();
  });

  it("IPFIX VRF and application options decoded end to end land in the columns", async () => {
    const FLOW: FieldSpec[] = [
      [8, 4],
      [1, 4],
      [234, 4],
      [235, 4],
      [95, 4],
    ];
    const VRF: FieldSpec[] = [
      [234, 4],
      [236, 32],
      [90, 8],
    ];
    const APP: FieldSpec[] = [
      [95, 4],
      [96, 24],
    ];
    // route distinguishers: type 0 (65000:1) and type 1 (192.0.2.1:7), RFC 4364 §4.2
    const rd0 = [0, 0, 0xfd, 0xe8, 0, 0, 0, 1];
    const rd1 = [0, 1, 192, 0, 2, 1, 0, 7];
    const options = ipfixPacket(
      [
        set(3, [
          ...ipfixOptionsTemplate(300, [VRF[0]!], VRF.slice(1)),
          ...ipfixOptionsTemplate(301, [APP[0]!], [APP[1]!]),
        ]),
        set(300, [
          ...record(VRF.slice(0, 2), [1, "CUST-A"]),
          ...rd0,
          ...record(VRF.slice(0, 2), [2, "CUST-B"]),
          ...rd1,
        ]),
        set(301, record(APP, [0x03000000 + 443, "https"])),
      ],
      { domain: 4 },
    );
    const flows = ipfixPacket(
      [
        set(2, ipfixTemplate(256, FLOW)),
        set(256, [
          ...record(FLOW, ["10.0.0.1", 100, 1, 2, 0x03000000 + 443]),
          ...record(FLOW, ["10.0.0.2", 200, 2, 9, 0x03000000 + 80]),
          ...record(FLOW, ["10.0.0.3", 300, 9, 0, 0x03000000 + 443]),
        ]),
      ],
      { domain: 4 },
    );
    const sink = new SqliteSink("e2e", join(dir, "e2e-ipfix.db"), parseSqliteOptions({}));
    const decoded = await decodeInto(sink, [options, flows]);
    assert.equal(decoded.length, 3);
    assert.deepEqual(rows(sink, `SELECT src_ip, ${DICT_COLUMNS}, extra FROM flows ORDER BY id`), [
      {
        src_ip: "10.0.0.1",
        in_vrf_id: 1,
        out_vrf_id: 2,
        in_vrf_name: "CUST-A",
        out_vrf_name: "CUST-B",
        mpls_vpn_rd: "0:65000:1",
        application_name: "https",
        extra: '{"applicationId":"030001bb"}',
      },
      {
        src_ip: "10.0.0.2",
        in_vrf_id: 2,
        out_vrf_id: 9,
        in_vrf_name: "CUST-B",
        out_vrf_name: null,
        mpls_vpn_rd: "1:192.0.2.1:7",
        application_name: null,
        extra: '{"applicationId":"03000050"}',
      },
      {
        src_ip: "10.0.0.3",
        in_vrf_id: 9,
        out_vrf_id: 0,
        in_vrf_name: null,
        out_vrf_name: null,
        mpls_vpn_rd: null,
        application_name: "https",
        extra: '{"applicationId":"030001bb"}',
      },
    ]);
    await sink.close();
  });

  it("NetFlow v9 VRF options scoped by System land in the columns", async () => {
    const FLOW: FieldSpec[] = [
      [8, 4],
      [1, 4],
      [234, 4],
      [235, 4],
    ];
    const scope: FieldSpec[] = [[1, 4]];
    const vrfOpt: FieldSpec[] = [
      [234, 4],
      [236, 16],
    ];
    const sink = new SqliteSink("e2e", join(dir, "e2e-v9.db"), parseSqliteOptions({}));
    await decodeInto(sink, [
      v9Packet(
        [
          set(1, v9OptionsTemplate(300, scope, vrfOpt)),
          set(300, [
            ...record([...scope, ...vrfOpt], [0, 7, "RED"]),
            ...record([...scope, ...vrfOpt], [0, 8, "BLUE"]),
          ]),
        ],
        { sourceId: 2 },
      ),
      v9Packet([set(0, v9Template(256, FLOW)), set(256, record(FLOW, ["10.0.0.1", 1, 8, 7]))], {
        sourceId: 2,
      }),
    ]);
    assert.deepEqual(rows(sink, `SELECT ${DICT_COLUMNS} FROM flows`), [
      {
        in_vrf_id: 8,
        out_vrf_id: 7,
        in_vrf_name: "BLUE",
        out_vrf_name: "RED",
        mpls_vpn_rd: null,
        application_name: null,
      },
    ]);
    await sink.close();
  });

  it("a Cisco NBAR capture (v9, test/fixtures/logstash): application names where the table has them, else NULL", async () => {
    const fixtures = new URL("../fixtures/logstash/", import.meta.url);
    const sink = new SqliteSink("nbar", join(dir, "nbar.db"), parseSqliteOptions({}));
    await decodeInto(
      sink,
      [
        "netflow9_test_cisco_nbar_opttpl260.dat",
        "netflow9_test_cisco_nbar_tpl262.dat",
        "netflow9_test_cisco_nbar_data262.dat",
      ].map((f) => readFileSync(new URL(f, fixtures))),
    );
    assert.deepEqual(
      rows(
        sink,
        "SELECT json_extract(extra, '$.applicationId') AS app_id, application_name FROM flows ORDER BY id",
      ).map((r) => [r.app_id, r.application_name]),
      [
        ["01000001", "icmp"],
        ["05000026", null],
        ["01000001", "icmp"],
        ["0300007b", null],
        ["05000026", null],
      ],
    );
    await sink.close();
  });
});
