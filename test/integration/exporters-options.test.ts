/**
 * /exporters of a running collector (issue 18): each exporter's options dictionary sizes and sampler table
 * as a receive worker learned them, through the worker stats to the main thread's /exporters (two workers;
 * options and flows come from one socket, so one worker has them).
 */
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  type FieldSpec,
  ipfixOptionsTemplate,
  ipfixPacket,
  ipfixTemplate,
  record,
  set,
} from "../helpers/netflow-builder.ts";
import { dirs, getJson, loopbackArgs, send, startService, udpClient, waitFor } from "../helpers/service.ts";

describe("/exporters: dictionaries and the sampler table", () => {
  it("shows a time-based selector's intervals, an n-out-of-N selector's rate and a VRF table", async () => {
    const dir = mkdtempSync(join(tmpdir(), "clarion-exporters-options-"));
    dirs.push(dir);
    const svc = await startService(
      loopbackArgs(
        "--workers",
        "2",
        "--data-dir",
        join(dir, "data"),
        "--output",
        `jsonl:${join(dir, "f.jsonl")}`,
      ),
    );
    const sel: FieldSpec[] = [
      [302, 4],
      [304, 2],
      [307, 4],
      [308, 4],
      [309, 4],
      [310, 4],
    ];
    const vrf: FieldSpec[] = [
      [234, 4],
      [236, 8],
    ];
    const flow: FieldSpec[] = [
      [8, 4],
      [1, 4],
      [302, 4],
      [234, 4],
    ];
    const packet = ipfixPacket(
      [
        set(3, [
          ...ipfixOptionsTemplate(300, [sel[0]!], sel.slice(1)),
          ...ipfixOptionsTemplate(301, [vrf[0]!], vrf.slice(1)),
        ]),
        set(300, [...record(sel, [1, 2, 100_000, 900_000, 0, 0]), ...record(sel, [2, 3, 0, 0, 1, 500])]),
        set(301, record(vrf, [7, "CUST-A"])),
        set(2, ipfixTemplate(256, flow)),
        set(256, [...record(flow, ["10.0.0.1", 100, 1, 7]), ...record(flow, ["10.0.0.2", 100, 2, 7])]),
      ],
      { domain: 4 },
    );
    const s = await udpClient("udp4", "127.0.0.1");
    try {
      await send(s, packet, svc.udpPorts[0]!, "127.0.0.1");
    } finally {
      s.close();
    }
    let ex: Array<{
      exporter: string;
      flows: number;
      dictionaries: Record<string, number>;
      samplers: Array<{
        kind: string;
        id: number;
        domain: number;
        rate: number;
        parameters: Record<string, number>;
      }>;
    }> = [];
    await waitFor("the flows in /exporters", async () => {
      ex = (await getJson(svc.httpPort, "/exporters")).body.exporters as typeof ex;
      return ex.length === 1 && ex[0]!.flows === 2;
    });
    const e = ex[0]!;
    assert.deepEqual(e.dictionaries, { samplers: 1, interfaces: 0, vrfs: 1, rds: 0, applications: 0 });
    const byId = new Map(e.samplers.map((r) => [r.id, r]));
    assert.deepEqual(byId.get(1), {
      kind: "selector",
      id: 1,
      domain: 4,
      rate: 0,
      parameters: {
        selectorAlgorithm: 2,
        samplingTimeInterval: 100_000,
        samplingTimeSpace: 900_000,
        samplingSize: 0,
        samplingPopulation: 0,
      },
    });
    assert.equal(byId.get(2)?.rate, 500);
    svc.proc.kill("SIGTERM");
    assert.equal(await svc.exited, 0, svc.stderr.join("\n"));
  });
});
