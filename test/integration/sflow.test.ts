/**
 * sFlow v5 through the real CLI: flow samples become SFLOW_5 flow records in JSON lines and SQLite;
 * counter samples become interface-counter rows (their own SQLite table) and SFLOW_5_COUNTERS lines;
 * /exporters and the metrics count the sFlow agent.
 */
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import { dirs, getJson, loopbackArgs, startService, waitFor } from "../helpers/service.ts";
import {
  counterSample,
  datagram,
  eth,
  ethernetCounters,
  extendedSwitch,
  flowSample,
  genericCounters,
  ipv4,
  rawHeader,
  tcp,
} from "../helpers/sflow-builder.ts";

test("sFlow flow and counter samples land in JSON lines and SQLite", async () => {
  const dir = mkdtempSync(join(tmpdir(), "clarion-sflow-"));
  dirs.push(dir);
  const jsonl = join(dir, "flows.jsonl");
  const db = join(dir, "flows.db");
  const svc = await startService(
    loopbackArgs(
      "--workers",
      "1",
      "--batch-size",
      "1000",
      "--batch-interval",
      "600",
      "--data-dir",
      join(dir, "data"),
      "--output",
      `jsonl:${jsonl}`,
      "--output",
      `sqlite:${db}`,
    ),
  );
  const samples = Array.from({ length: 5 }, (_, i) =>
    flowSample({
      sequence: i + 1,
      rate: 512,
      input: 3,
      output: 7,
      records: [
        rawHeader(
          Buffer.concat([
            eth({ etype: 0x0800, tags: [{ tpid: 0x8100, vid: 42 }] }),
            ipv4({ src: "10.9.0.1", dst: "10.9.0.2", proto: 6, tos: 0x20, payloadLength: 20 }),
            tcp({ sport: 40_000 + i, dport: 443, flags: 0x18 }),
          ]),
          { frameLength: 1514 },
        ),
        extendedSwitch({ srcVlan: 42, srcPriority: 0, dstVlan: 43, dstPriority: 0 }),
      ],
    }),
  );
  const counters = counterSample({
    sequence: 9,
    sourceIdIndex: 3,
    records: [
      genericCounters({
        ifIndex: 3,
        ifType: 6,
        ifSpeed: 10_000_000_000n,
        ifDirection: 1,
        ifStatus: 3,
        ifInOctets: 2n ** 40n,
        ifInUcastPkts: 1000,
        ifInMulticastPkts: 10,
        ifInBroadcastPkts: 1,
        ifInDiscards: 2,
        ifInErrors: 3,
        ifInUnknownProtos: 0,
        ifOutOctets: 123456789n,
        ifOutUcastPkts: 900,
        ifOutMulticastPkts: 9,
        ifOutBroadcastPkts: 0,
        ifOutDiscards: 0,
        ifOutErrors: 1,
        ifPromiscuousMode: 0,
      }),
      ethernetCounters([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]),
    ],
  });
  const s = createSocket("udp4");
  const payload = datagram({ agent: "192.0.2.77", sequence: 100, samples: [...samples, counters] });
  await new Promise<void>((resolve, reject) =>
    s.send(payload, svc.udpPorts[2]!, "127.0.0.1", (e) => (e ? reject(e) : resolve())),
  );
  s.close();
  await waitFor(
    "5 sFlow flows decoded",
    async () => (await getJson(svc.httpPort, "/metrics")).body.total_received === 5,
  );
  const ex = (await getJson(svc.httpPort, "/exporters")).body.exporters as Array<Record<string, unknown>>;
  assert.equal(ex.length, 1);
  assert.equal(ex[0]!.exporter, "127.0.0.1");
  assert.equal(ex[0]!.flows, 5);
  const prom = await (
    await fetch(`http://127.0.0.1:${svc.httpPort}/metrics`, { headers: { accept: "text/plain" } })
  ).text();
  assert.match(prom, /clarion_collector_decoded_datagrams_total\{[^}]*protocol="sflow5"[^}]*\} 1/);
  svc.proc.kill("SIGTERM");
  assert.equal(await svc.exited, 0, svc.stderr.join("\n"));

  const lines = readFileSync(jsonl, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const flows = lines.filter((l) => l.type === "SFLOW_5");
  const ctr = lines.filter((l) => l.type === "SFLOW_5_COUNTERS");
  assert.equal(flows.length, 5);
  assert.deepEqual(
    flows.map((f) => f.src_port),
    [40_000, 40_001, 40_002, 40_003, 40_004],
  );
  const f = flows[0]!;
  assert.equal(f.sampler_address, "192.0.2.77");
  assert.equal(f.sampling_rate, 512);
  assert.equal(f.bytes, 1514);
  assert.equal(f.packets, 1);
  assert.equal(f.in_if, 3);
  assert.equal(f.out_if, 7);
  assert.equal(f.src_vlan, 42);
  assert.equal(f.dst_vlan, 43);
  assert.equal(f.proto, "TCP");
  assert.equal(f.ip_tos, 0x20);
  assert.equal(ctr.length, 1);
  assert.equal(ctr[0]!.if_index, 3);
  assert.equal(ctr[0]!.if_in_octets, 2 ** 40);
  assert.equal(ctr[0]!.sampler_address, "192.0.2.77");
  assert.equal(ctr[0]!.dot3_stats_fcs_errors, 2);

  const conn = new DatabaseSync(db, { readOnly: true });
  const n = conn.prepare("SELECT count(*) AS n FROM flows").get() as { n: number };
  assert.equal(n.n, 5);
  const row = conn
    .prepare("SELECT agent, if_index, in_octets, out_errors FROM interface_counters")
    .get() as Record<string, unknown>;
  conn.close();
  assert.deepEqual({ ...row }, { agent: "192.0.2.77", if_index: 3, in_octets: 2 ** 40, out_errors: 1 });
});
