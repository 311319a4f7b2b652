/**
 * The flow archive at scale: writes `--rows` synthetic flows through the parquet archive writer (the
 * receive worker's half, one core, no network), then times DuckDB (@duckdb/node-api) top-10 queries over
 * the whole archive. Reports the write rate (flows per CPU-second), bytes per flow on disk and each
 * query's time.
 *
 * Run: node bench/archive.bench.ts [--rows 10000000] [--dir DIR (kept; default a temp dir, removed)]
 *      [--rotate-ms 300000] [--flows-per-second 2500000 (the simulated receive clock)] [--threads 2]
 *
 * The flows resemble the peer bench's blaster traffic: unique source addresses (10.0.0.0/8, a counter),
 * destinations in 198.18.0.0/15 (skewed), ports, protocols, counters, interfaces and AS numbers varying
 * per record, one exporter, time advancing with the simulated rate (so files rotate as they would).
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { FlowRecord } from "../src/core/flow.ts";
import { ArchiveWriter, parseParquetOptions } from "../src/sinks/parquet.ts";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
}

const rows = Number(arg("rows", "10000000"));
const keep = arg("dir", "");
const dir = keep !== "" ? keep : mkdtempSync(join(tmpdir(), "clarion-archive-bench-"));
const rotateMs = Number(arg("rotate-ms", "300000"));
const rate = Number(arg("flows-per-second", "2500000"));
const threads = arg("threads", "2");

let seed = 12345;
const rnd = (): number => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 4294967296;
};

const t0ms = Date.UTC(2026, 11, 1);
let clock = t0ms;
const w = new ArchiveWriter({ ...parseParquetOptions({ rotateMs }), dir, worker: 0, now: () => clock });
const r = new FlowRecord();
r.type = "IPFIX";
r.sampler_address = "127.0.0.1";
r.switch_id = "127.0.0.1";
r.sampling_rate = 1;
r.etype = 0x800;
r.extra = null;
const cpu0 = process.cpuUsage();
const wall0 = performance.now();
for (let i = 0; i < rows; i++) {
  clock = t0ms + Math.floor((i / rate) * 1000);
  r.time_received_ms = clock;
  r.sequence_num = Math.floor(i / 18);
  r.time_flow_start_ms = clock - 1000 - Math.floor(rnd() * 60_000);
  r.time_flow_end_ms = clock - Math.floor(rnd() * 1000);
  r.src_v4 = (0x0a000000 + (i & 0xffffff)) >>> 0;
  r.dst_v4 = (0xc6120000 + Math.floor(rnd() * rnd() * 131072)) >>> 0;
  r.next_hop_v4 = 0xc0000200 + (i & 255);
  r.src_port = 1024 + ((i >>> 24) ^ Math.floor(rnd() * 64000));
  r.dst_port = rnd() < 0.6 ? [443, 80, 53, 22][i & 3]! : 1024 + Math.floor(rnd() * 64000);
  r.proto = rnd() < 0.7 ? 6 : 17;
  r.tcp_flags = r.proto === 6 ? Math.floor(rnd() * 32) : 0;
  r.bytes = 40 + Math.floor(rnd() * rnd() * 1_500_000);
  r.packets = 1 + Math.floor(rnd() * rnd() * 1000);
  r.in_if = 1 + Math.floor(rnd() * 48);
  r.out_if = 1 + Math.floor(rnd() * 48);
  r.src_as = Math.floor(rnd() * 65000);
  r.dst_as = Math.floor(rnd() * 65000);
  r.src_net = 8 + Math.floor(rnd() * 17);
  r.dst_net = 15;
  r.src_vlan = 100 + (i & 7);
  r.flow_direction = i & 1;
  w.add(r);
}
w.poll(true);
const cpu = process.cpuUsage(cpu0);
const cpuS = (cpu.user + cpu.system) / 1e6;
const wallS = (performance.now() - wall0) / 1000;
let bytes = 0;
let files = 0;
for (const e of readdirSync(dir, { withFileTypes: true, recursive: true }))
  if (e.isFile() && e.name.endsWith(".parquet")) {
    bytes += statSync(join(e.parentPath, e.name)).size;
    files++;
  }
console.log(
  `archive bench: Node ${process.version}, ${rows.toLocaleString("en")} flows, ${files} files, ${dir}`,
);
console.log(
  `write: ${(rows / cpuS / 1e6).toFixed(2)} M flows per CPU-second (${(rows / wallS / 1e6).toFixed(2)} M/s wall), ${(bytes / rows).toFixed(1)} bytes/flow, ${(bytes / 1e9).toFixed(2)} GB`,
);

const db = await DuckDBInstance.create(":memory:", { threads });
const con = await db.connect();
const all = `read_parquet('${dir}/*/*/*/*.parquet')`;
const queries: Array<[string, string]> = [
  ["count", `SELECT count(*) FROM ${all}`],
  [
    "top 10 destinations by bytes",
    `SELECT dst_addr, sum(bytes) AS b FROM ${all} GROUP BY dst_addr ORDER BY b DESC LIMIT 10`,
  ],
  [
    "top 10 destination ports by flows, TCP",
    `SELECT dst_port, count(*) AS n FROM ${all} WHERE proto = 6 GROUP BY dst_port ORDER BY n DESC LIMIT 10`,
  ],
  [
    "top 10 sources by bytes, last hour",
    `SELECT src_addr, sum(bytes) AS b FROM ${all} WHERE time_received >= (SELECT max(time_received) FROM ${all}) - INTERVAL 1 HOUR GROUP BY src_addr ORDER BY b DESC LIMIT 10`,
  ],
];
console.log(`| query (DuckDB, ${threads} threads) | seconds | rows out |`);
console.log("|---|---:|---:|");
for (const [name, sql] of queries) {
  const t = performance.now();
  const out = await con.runAndReadAll(sql);
  console.log(`| ${name} | ${((performance.now() - t) / 1000).toFixed(2)} | ${out.getRows().length} |`);
}
con.closeSync();
db.closeSync();
if (keep === "") rmSync(dir, { recursive: true, force: true });
