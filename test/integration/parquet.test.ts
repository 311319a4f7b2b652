/**
 * `parquet:DIR` end to end through the real CLI, read back with DuckDB (@duckdb/node-api):
 * - the logstash corpus (every case, each from its own source port) and softflowd's v5/v9/IPFIX export of a
 *   synthetic pcap: every archived row equals, field by field, the GoFlow2 JSON line the same run wrote;
 * - SIGKILL: files finished before the kill are complete and readable; what is lost is at most the open
 *   interval (the rows since the last rotation), and the archive's next start deletes the unfinished file
 *   and counts it.
 */
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { DuckDBInstance } from "@duckdb/node-api";
import { macString } from "../../src/core/address.ts";
import { etypeName, networkString, protoName } from "../../src/encode/goflow2.ts";
import { parquetSink } from "../../src/sinks/parquet.ts";
import type { Sink } from "../../src/sinks/types.ts";
import { runSoftflowd } from "../helpers/exporters.ts";
import { dirs, getJson, loopbackArgs, netflowV5, sleep, startService, waitFor } from "../helpers/service.ts";
import { requireTool } from "../helpers/tools.ts";

const quiet = { info() {}, warn() {}, error() {} };

import { makeTrafficPcap } from "../helpers/traffic.ts";

const FIX = new URL("../fixtures/logstash/", import.meta.url);

interface Case {
  name: string;
  files: string[];
  file_info: { file: string; datagrams?: { offset: number; length: number }[] }[];
}

/** Every datagram of every corpus case, grouped by case. */
function corpusDatagrams(): Buffer[][] {
  const manifest = JSON.parse(readFileSync(new URL("MANIFEST.json", FIX), "utf8")) as Case[];
  return manifest.map((c) =>
    c.files.flatMap((file) => {
      const data = readFileSync(new URL(file, FIX));
      const info = c.file_info.find((f) => f.file === file);
      const slices = info?.datagrams?.length ? info.datagrams : [{ offset: 0, length: data.length }];
      return slices.map((s) => data.subarray(s.offset, s.offset + s.length));
    }),
  );
}

async function sendFrom(address: string, datagrams: Buffer[], port: number): Promise<void> {
  const s = createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, address, () => r()));
  try {
    for (const d of datagrams) {
      await new Promise<void>((resolve, reject) =>
        s.send(d, port, "127.0.0.1", (e) => (e ? reject(e) : resolve())),
      );
      await sleep(1);
    }
  } finally {
    s.close();
  }
}

function parquetFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory() && e.name !== ".tmp") walk(join(d, e.name));
      else if (e.name.endsWith(".parquet")) out.push(join(d, e.name));
    }
  };
  if (existsSync(dir)) walk(dir);
  return out.sort();
}

type Row = Record<string, unknown>;

/** The archive's rows in file order, with times and 64-bit numbers as decimal text. */
async function readArchive(dir: string): Promise<Row[]> {
  const files = parquetFiles(dir);
  if (files.length === 0) return [];
  const db = await DuckDBInstance.create(":memory:");
  const con = await db.connect();
  const list = files.map((f) => `'${f}'`).join(", ");
  const reader = await con.runAndReadAll(
    `SELECT * EXCLUDE (time_received, time_flow_start, time_flow_end),
       epoch_ns(time_received)::VARCHAR AS time_received_ns,
       epoch_ns(time_flow_start)::VARCHAR AS time_flow_start_ns,
       epoch_ns(time_flow_end)::VARCHAR AS time_flow_end_ns
     FROM read_parquet([${list}], filename = true, file_row_number = true)
     ORDER BY filename, file_row_number`,
  );
  const rows = reader.getRowObjectsJson() as Row[];
  con.closeSync();
  db.closeSync();
  return rows;
}

/** JSON fields GoFlow2 always prints empty and the archive does not store. */
const CONSTANT_FIELDS: Record<string, unknown> = {
  mpls_ttl: [],
  mpls_ip: [],
  layer_stack: [],
  layer_size: [],
  ipv6_routing_header_addresses: [],
  ipv6_routing_header_seg_left: 0,
};

/** An archived row rendered as the GoFlow2 JSON line would show it (only from the row's own values). */
function asGoflow2(row: Row): Record<string, unknown> {
  const n = (k: string) => Number(row[k]);
  const extra = row.extra === null ? {} : (JSON.parse(String(row.extra)) as Record<string, unknown>);
  const src = String(row.src_addr);
  const dst = String(row.dst_addr);
  const o: Record<string, unknown> = {
    type: row.type,
    time_received_ns: row.time_received_ns,
    sequence_num: n("sequence_num"),
    sampling_rate: row.sampling_rate,
    sampler_address: row.sampler_address,
    time_flow_start_ns: row.time_flow_start_ns,
    time_flow_end_ns: row.time_flow_end_ns,
    bytes: row.bytes,
    packets: row.packets,
    src_addr: src,
    dst_addr: dst,
    etype: etypeName(n("etype")),
    proto: protoName(n("proto")),
    src_port: n("src_port"),
    dst_port: n("dst_port"),
    in_if: n("in_if"),
    out_if: n("out_if"),
    src_mac: macString(Number(row.src_mac)),
    dst_mac: macString(Number(row.dst_mac)),
    src_vlan: n("src_vlan"),
    dst_vlan: n("dst_vlan"),
    vlan_id: n("vlan_id"),
    ip_tos: n("ip_tos"),
    forwarding_status: n("forwarding_status"),
    ip_ttl: n("ip_ttl"),
    ip_flags: n("ip_flags"),
    tcp_flags: n("tcp_flags"),
    icmp_type: n("icmp_type"),
    icmp_code: n("icmp_code"),
    ipv6_flow_label: n("ipv6_flow_label"),
    fragment_id: n("fragment_id"),
    fragment_offset: n("fragment_offset"),
    src_as: n("src_as"),
    dst_as: n("dst_as"),
    next_hop: row.next_hop,
    next_hop_as: n("next_hop_as"),
    src_net: JSON.parse(networkString(src, n("src_net"))),
    dst_net: JSON.parse(networkString(dst, n("dst_net"))),
    bgp_next_hop: row.bgp_next_hop,
    bgp_communities: extra.bgp_communities ?? [],
    as_path: extra.as_path ?? [],
    mpls_label: extra.mpls_label ?? [],
    observation_domain_id: n("observation_domain_id"),
    observation_point_id: n("observation_point_id"),
    switch_id: row.switch_id,
  };
  if (row.src_sgt !== null) o.src_sgt = n("src_sgt");
  if (row.dst_sgt !== null) o.dst_sgt = n("dst_sgt");
  if (row.flow_direction !== null) o.flow_direction = n("flow_direction");
  if (row.in_if_name !== null) o.in_if_name = row.in_if_name;
  if (row.out_if_name !== null) o.out_if_name = row.out_if_name;
  for (const [k, v] of Object.entries(extra)) {
    if (k === "bgp_communities" || k === "as_path" || k === "mpls_label") continue;
    if (!(k in o)) o[k] = v;
  }
  return o;
}

/** A JSON line parsed with its big integers kept as text (times, counters). */
function parseLine(line: string): Record<string, unknown> {
  const o = JSON.parse(line, (_k, v, ctx?: { source?: string }) =>
    typeof v === "number" && Number.isInteger(v) && !Number.isSafeInteger(v) && ctx?.source ? ctx.source : v,
  ) as Record<string, unknown>;
  for (const k of [
    "time_received_ns",
    "time_flow_start_ns",
    "time_flow_end_ns",
    "bytes",
    "packets",
    "sampling_rate",
  ]) {
    if (typeof o[k] === "number") o[k] = String(o[k]);
  }
  for (const [k, v] of Object.entries(CONSTANT_FIELDS)) {
    assert.deepEqual(o[k], v, `JSON field ${k} is GoFlow2's constant`);
    delete o[k];
  }
  return o;
}

function compare(lines: string[], rows: Row[], what: string): void {
  assert.equal(rows.length, lines.length, `${what}: as many archived rows as JSON lines`);
  for (let i = 0; i < lines.length; i++) {
    const want = parseLine(lines[i]!);
    const got = asGoflow2(rows[i]!);
    // extra elements: the JSON line's other keys, values as the archive's JSON renders them
    for (const k of Object.keys(want)) if (!(k in got)) got[k] = undefined;
    assert.deepEqual(got, want, `${what}: row ${i}`);
  }
}

async function runTwoOutputs(
  dir: string,
  feed: (port: number) => Promise<number>,
  parquetOptions: Record<string, unknown> = {},
): Promise<{ lines: string[]; rows: Row[]; metrics: Record<string, unknown> }> {
  const jsonl = join(dir, "flows.jsonl");
  const archive = join(dir, "archive");
  const config = join(dir, "config.json");
  writeFileSync(
    config,
    JSON.stringify({ outputs: [`jsonl:${jsonl}`, { uri: `parquet:${archive}`, ...parquetOptions }] }),
  );
  const svc = await startService(
    loopbackArgs(
      "--config",
      config,
      "--workers",
      "1",
      "--batch-size",
      "100",
      "--batch-interval",
      "0.2",
      "--data-dir",
      join(dir, "data"),
    ),
  );
  const sent = await feed(svc.udpPorts[0]!);
  await waitFor(
    `${sent} datagrams received`,
    async () => (await getJson(svc.httpPort, "/metrics")).body.datagrams_received === sent,
  );
  const metrics = (await getJson(svc.httpPort, "/metrics")).body;
  svc.proc.kill("SIGTERM");
  assert.equal(await svc.exited, 0, svc.stderr.join("\n"));
  const lines = readFileSync(jsonl, "utf8").trim().split("\n").filter(Boolean);
  return { lines, rows: await readArchive(archive), metrics };
}

/** The archive alone (one record refilled per flow in the worker, RecordHandler.scratch): its rows. */
async function runArchiveOnly(dir: string, feed: (port: number) => Promise<number>): Promise<Row[]> {
  const archive = join(dir, "archive");
  const svc = await startService(
    loopbackArgs("--output", `parquet:${archive}`, "--workers", "1", "--data-dir", join(dir, "data")),
  );
  const sent = await feed(svc.udpPorts[0]!);
  await waitFor(
    `${sent} datagrams received`,
    async () => (await getJson(svc.httpPort, "/metrics")).body.datagrams_received === sent,
  );
  svc.proc.kill("SIGTERM");
  assert.equal(await svc.exited, 0, svc.stderr.join("\n"));
  return readArchive(archive);
}

describe("parquet:DIR archive", () => {
  test("corpus flows read back with DuckDB equal the JSON lines of the same run, field by field", async () => {
    const dir = mkdtempSync(join(tmpdir(), "clarion-parquet-"));
    dirs.push(dir);
    const cases = corpusDatagrams();
    const { lines, rows, metrics } = await runTwoOutputs(dir, async (port) => {
      // each case from its own source port: its own transport session, as its exporter had
      for (const c of cases) await sendFrom("127.0.0.1", c, port);
      return cases.reduce((n, c) => n + c.length, 0);
    });
    assert.ok(lines.length > 400, `the corpus gave flows (${lines.length})`);
    compare(lines, rows, "corpus");
    // the README's top-10 query, against the same flows summed from the JSON lines
    const db = await DuckDBInstance.create(":memory:");
    const con = await db.connect();
    const top = (
      await con.runAndReadAll(
        `SELECT src_addr, sum(bytes)::VARCHAR AS bytes, count(*)::INT AS flows
         FROM read_parquet('${join(dir, "archive")}/*/*/*/*.parquet')
         WHERE time_received >= TIMESTAMP '2000-01-01 00:00' AND proto = 6
         GROUP BY src_addr ORDER BY sum(bytes) DESC, src_addr LIMIT 10`,
      )
    ).getRowObjectsJson();
    con.closeSync();
    db.closeSync();
    const sums = new Map<string, { bytes: bigint; flows: number }>();
    for (const l of lines.map(parseLine)) {
      if (l.proto !== "TCP" || BigInt(String(l.time_received_ns)) < 946684800000000000n) continue;
      const e = sums.get(String(l.src_addr)) ?? { bytes: 0n, flows: 0 };
      e.bytes += BigInt(String(l.bytes));
      e.flows++;
      sums.set(String(l.src_addr), e);
    }
    const want = [...sums.entries()]
      .sort((a, b) => (a[1].bytes === b[1].bytes ? (a[0] < b[0] ? -1 : 1) : a[1].bytes > b[1].bytes ? -1 : 1))
      .slice(0, 10)
      .map(([src_addr, e]) => ({ src_addr, bytes: String(e.bytes), flows: e.flows }));
    assert.ok(want.length > 0);
    assert.deepEqual(top, want, "top 10 by bytes");
    const sink = (metrics.sinks as Record<string, { archive?: { dir: string } }>)[
      `parquet:${join(dir, "archive")}`
    ];
    assert.equal(sink?.archive?.dir, join(dir, "archive"), "/metrics shows the archive");
  });

  test("the archive alone (one record refilled per flow) stores the rows it stores next to JSON lines", async () => {
    const cases = corpusDatagrams();
    const feed = async (port: number): Promise<number> => {
      for (const c of cases) await sendFrom("127.0.0.1", c, port);
      return cases.reduce((n, c) => n + c.length, 0);
    };
    const a = mkdtempSync(join(tmpdir(), "clarion-parquet-both-"));
    const b = mkdtempSync(join(tmpdir(), "clarion-parquet-only-"));
    dirs.push(a, b);
    const both = (await runTwoOutputs(a, feed)).rows;
    const only = await runArchiveOnly(b, feed);
    // the receive time and the file differ between the runs; every other column must not
    const strip = (r: Row): Row => {
      const { time_received_ns: _t, filename: _f, file_row_number: _n, ...rest } = r;
      return rest;
    };
    assert.ok(both.length > 400, `the corpus gave flows (${both.length})`);
    assert.equal(only.length, both.length, "as many rows");
    for (let i = 0; i < both.length; i++) assert.deepEqual(strip(only[i]!), strip(both[i]!), `row ${i}`);
  });

  test("softflowd v5, v9 and IPFIX flows read back equal the JSON lines, field by field", async (t) => {
    if (!requireTool(t, "softflowd")) return;
    const dir = mkdtempSync(join(tmpdir(), "clarion-parquet-sfd-"));
    dirs.push(dir);
    const traffic = makeTrafficPcap({ flows: 60, ipv6: true, seed: 17 });
    const pcapPath = join(dir, "traffic.pcap");
    writeFileSync(pcapPath, traffic.pcap);
    const exports: Array<[string, Buffer[]]> = [
      ["127.0.0.21", await runSoftflowd(pcapPath, { version: 5, timeoutMs: 15_000 })],
      ["127.0.0.22", await runSoftflowd(pcapPath, { version: 9, timeoutMs: 15_000 })],
      ["127.0.0.23", await runSoftflowd(pcapPath, { version: 10, absoluteTime: "micro", timeoutMs: 15_000 })],
    ];
    const { lines, rows } = await runTwoOutputs(dir, async (port) => {
      for (const [from, datagrams] of exports) await sendFrom(from, datagrams, port);
      return exports.reduce((n, [, d]) => n + d.length, 0);
    });
    assert.ok(lines.length >= 150, `softflowd exported flows (${lines.length})`);
    for (const exporter of ["127.0.0.21", "127.0.0.22", "127.0.0.23"])
      assert.ok(
        rows.some((r) => r.sampler_address === exporter),
        `${exporter}'s flows are archived`,
      );
    assert.ok(
      rows.some((r) => String(r.src_addr).includes(":")),
      "IPv6 flows are archived",
    );
    compare(lines, rows, "softflowd");
  });

  test("SIGKILL loses at most the open interval; the next start deletes the unfinished file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "clarion-parquet-kill-"));
    dirs.push(dir);
    const archive = join(dir, "archive");
    const config = join(dir, "config.json");
    // a 1 s interval: what a crash can lose is the flows since the last rotation
    writeFileSync(config, JSON.stringify({ outputs: [{ uri: `parquet:${archive}`, rotateMs: 1000 }] }));
    const args = loopbackArgs(
      "--config",
      config,
      "--workers",
      "1",
      "--batch-size",
      "100",
      "--batch-interval",
      "0.1",
      "--data-dir",
      join(dir, "data"),
    );
    const svc = await startService(args);
    const port = svc.udpPorts[0]!;
    const sink = `parquet:${archive}`;
    const archived = async (): Promise<number> => {
      const m = (await getJson(svc.httpPort, "/metrics")).body.sinks as Record<
        string,
        { archive: { rows: number } }
      >;
      return m[sink]?.archive.rows ?? 0;
    };
    // A: 20 datagrams × 10 flows (src ports 1000..), until they are in finished files
    const a: Buffer[] = [];
    for (let i = 0; i < 20; i++) a.push(netflowV5(i, 1000 + 10 * i, 10));
    await sendFrom("127.0.0.1", a, port);
    await waitFor("the first flows archived in finished files", async () => (await archived()) === 200);
    // B: sent, received, then the process is killed
    const b: Buffer[] = [];
    for (let i = 0; i < 20; i++) b.push(netflowV5(100 + i, 30000 + 10 * i, 10));
    await sendFrom("127.0.0.1", b, port);
    await waitFor(
      "the last flows received",
      async () => (await getJson(svc.httpPort, "/metrics")).body.datagrams_received === 40,
    );
    svc.proc.kill("SIGKILL");
    await svc.exited;

    const files = parquetFiles(archive);
    assert.ok(files.length >= 1, "finished files are in place");
    const rows = await readArchive(archive); // every finished file is complete: DuckDB reads them all
    const ports = rows.map((r) => Number(r.src_port));
    for (let p = 1000; p < 1200; p++)
      assert.ok(ports.includes(p), `flow ${p} (before the last rotation) kept`);
    assert.ok(
      ports.every((p) => (p >= 1000 && p < 1200) || (p >= 30000 && p < 30200)),
      "nothing but the sent flows",
    );
    assert.equal(new Set(ports).size, ports.length, "no flow twice");
    const leftovers = readdirSync(join(archive, ".tmp")).filter((n) => n.endsWith(".tmp"));
    assert.ok(leftovers.length <= 1, "at most the open file of the one worker is unfinished");
    // B (the open interval) may be lost whole or in part: it was buffered, or in the unfinished file

    // the next start (the archive's main-thread half, in process: one collector start less on a busy
    // machine) removes the unfinished file and counts it
    const again = (await parquetSink.create(sink, { dataDir: dir, logger: quiet, options: {} })) as Sink & {
      stats(): { abandonedFiles: number; diskFiles: number };
    };
    assert.equal(again.stats().abandonedFiles, leftovers.length);
    assert.equal(again.stats().diskFiles, files.length);
    assert.deepEqual(
      readdirSync(join(archive, ".tmp")).filter((n) => n.endsWith(".tmp")),
      [],
    );
    await again.close();
  });
});
