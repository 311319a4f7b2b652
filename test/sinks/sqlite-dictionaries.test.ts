import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { FlowRecord } from "../../src/core/flow.ts";
import { findSink } from "../../src/sinks/index.ts";
import type { SqliteSink } from "../../src/sinks/sqlite/sink.ts";

const dir = mkdtempSync(join(tmpdir(), "clarion-sqlite-dict-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const quiet = { info() {}, warn() {}, error() {} };

describe("sqlite sink: options dictionaries (issue 18)", () => {
  it("keeps the VRF ids and resolved names in `extra`, after the other elements", async () => {
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
    a.application_name = 'h"ttp';
    a.extra = { applicationId: "03000050" };
    const b = rec();
    await sink.write(def.createEncoder(uri, {}).encode([a, b]));
    const got = sink.db.prepare("SELECT extra FROM flows ORDER BY id").all() as { extra: string | null }[];
    assert.deepEqual(JSON.parse(got[0]!.extra!), {
      applicationId: "03000050",
      in_vrf_id: 1,
      out_vrf_id: 0,
      in_vrf_name: "CUST-A",
      mpls_vpn_rd: "0:65000:1",
      application_name: 'h"ttp',
    });
    assert.equal(got[1]!.extra, null);
    await sink.close();
  });
});
