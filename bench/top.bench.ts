/**
 * `top` latency over a large store, and what the time index costs at ingest.
 *
 * 1. Builds an SQLite store through the real sink (encoder + writer, default options) with ROWS flows
 *    received evenly over SPAN hours ending now (5,000 sources and 20,000 destinations drawn with a skew,
 *    TCP/UDP/ICMP, a few exporters, a sampled exporter), then times `runTop` (src/query/top.ts, the code
 *    `clarion-collector top` and /ui run) for the last hour and for the whole store: best of 3 after one
 *    warm-up run.
 * 2. Ingest cost: inserts INGEST_ROWS into a fresh store with the schema as shipped, without the
 *    `time_received` index, and with the optional `(exporter, time_received)` index too; rows/s of each.
 *
 * Run: node bench/top.bench.ts [rows=10000000] [spanHours=24] [ingestRows=1000000]   (rows 0: ingest only)
 * Query figures: wall-clock and the CPU time of the querying thread (steadier on a loaded machine); ingest
 * figures are wall-clock (±30 % on the shared benchmark machine).
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FlowRecord } from "../src/core/flow.ts";
import { openFlowsDb, runTop, type TopQuery } from "../src/query/top.ts";
import { createSqliteEncoder } from "../src/sinks/sqlite/columnar.ts";
import { parseSqliteOptions, SqliteSink } from "../src/sinks/sqlite/sink.ts";

const ROWS = Number(process.argv[2] ?? 10_000_000);
const SPAN_H = Number(process.argv[3] ?? 24);
const INGEST_ROWS = Number(process.argv[4] ?? 1_000_000);
const BATCH = 10_000;

function skew(h: number, n: number): number {
  // Roughly Zipf-like: small indexes much more frequent.
  const u = (h >>> 0) / 4294967296;
  return Math.floor(n * u * u * u);
}

function makeRecord(i: number, timeMs: number): FlowRecord {
  const h = Math.imul(i + 1, 2654435761) >>> 0;
  const g = Math.imul(h ^ (h >>> 15), 2246822519) >>> 0;
  const r = new FlowRecord();
  r.type = "IPFIX";
  r.time_received_ms = timeMs;
  r.time_flow_start_ms = timeMs - 2000;
  r.time_flow_end_ms = timeMs - 100;
  const exp = h & 3;
  r.sampler_address = `192.0.2.${1 + exp}`;
  r.switch_id = r.sampler_address;
  r.sampling_rate = exp === 3 ? 512 : 0;
  const s = skew(h, 5000);
  const d = skew(g, 20000);
  r.src_addr = `10.${(s >>> 8) & 255}.${s & 255}.${1 + (s % 200)}`;
  r.dst_addr = `198.${18 + ((d >>> 16) & 1)}.${(d >>> 8) & 255}.${d & 255}`;
  r.proto = g % 10 < 6 ? 6 : g % 10 < 9 ? 17 : 1;
  r.src_port = r.proto === 1 ? 0 : 1024 + (g & 0x7fff);
  r.dst_port = r.proto === 1 ? 0 : [443, 80, 53, 123, 22, 8080][(g >>> 8) % 6]!;
  r.etype = 0x800;
  r.bytes = 64 + (g & 0xffff);
  r.packets = 1 + (g & 63);
  r.in_if = 1 + (h & 7);
  r.out_if = 1 + ((h >>> 3) & 7);
  r.src_as = 64512 + (s & 15);
  r.dst_as = 15169 + (d & 7);
  r.src_net = 24;
  r.dst_net = 16;
  r.tcp_flags = r.proto === 6 ? 0x1b : 0;
  return r;
}

async function fill(sink: SqliteSink, rows: number, endMs: number, spanMs: number): Promise<number> {
  const enc = createSqliteEncoder("bench");
  const start = endMs - spanMs;
  const t0 = performance.now();
  let writeMs = 0;
  for (let i = 0; i < rows; i += BATCH) {
    const n = Math.min(BATCH, rows - i);
    const recs: FlowRecord[] = new Array(n);
    for (let k = 0; k < n; k++) recs[k] = makeRecord(i + k, start + Math.floor(((i + k) * spanMs) / rows));
    const b = enc.encode(recs);
    const w0 = performance.now();
    await sink.write(b);
    writeMs += performance.now() - w0;
  }
  void t0;
  return rows / (writeMs / 1000);
}

/** Best of 3 after a warm-up: wall-clock ms and CPU ms of this (synchronous) thread. */
function time(
  db: ReturnType<typeof openFlowsDb>,
  q: TopQuery,
): { ms: number; cpuMs: number; rows: number; flows: number } {
  runTop(db, q);
  let best = Number.POSITIVE_INFINITY;
  let bestCpu = Number.POSITIVE_INFINITY;
  let flows = 0;
  let rows = 0;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const r = runTop(db, q);
    const c = process.cpuUsage(c0);
    best = Math.min(best, performance.now() - t0);
    bestCpu = Math.min(bestCpu, (c.user + c.system) / 1000);
    flows = r.total.flows;
    rows = r.rows.length;
  }
  return { ms: best, cpuMs: bestCpu, rows, flows };
}

const dir = mkdtempSync(join(tmpdir(), "clarion-top-bench-"));
try {
  const now = Date.now();
  // 2. ingest cost of the indexes: a warm-up store first (JIT, page cache), then each variant twice,
  // interleaved, best of the two.
  {
    const warm = new SqliteSink("bench", join(dir, "warm.db"), parseSqliteOptions({ retentionMs: 0 }));
    await fill(warm, Math.min(INGEST_ROWS, 300_000), now, 3_600_000);
    await warm.close();
  }
  const variants = ["no time index", "as shipped (time index)", "+ (exporter, time) index"] as const;
  const best = new Map<string, number>();
  for (let round = 0; round < 2; round++) {
    for (const variant of variants) {
      const path = join(dir, `ingest-${round}-${best.size}-${variant.length}.db`);
      const sink = new SqliteSink(
        "bench",
        path,
        parseSqliteOptions({ retentionMs: 0, exporterIndex: variant.startsWith("+") }),
      );
      if (variant === "no time index") sink.db.exec("DROP INDEX flows_time_received");
      const rate = await fill(sink, INGEST_ROWS, now, 3_600_000);
      await sink.close();
      rmSync(path, { force: true });
      best.set(variant, Math.max(best.get(variant) ?? 0, rate));
    }
  }
  for (const variant of variants)
    console.log(
      `ingest ${INGEST_ROWS} rows, ${variant}: ${Math.round(best.get(variant)!).toLocaleString("en")} rows/s (best of 2)`,
    );
  if (ROWS === 0) process.exit(0);

  // 1. top latency
  const path = join(dir, "flows.db");
  const sink = new SqliteSink("bench", path, parseSqliteOptions({ retentionMs: 0 }));
  const t0 = performance.now();
  const rate = await fill(sink, ROWS, now, SPAN_H * 3_600_000);
  await sink.close();
  console.log(
    `store: ${ROWS.toLocaleString("en")} rows over ${SPAN_H} h written in ${((performance.now() - t0) / 1000).toFixed(1)} s (${Math.round(rate).toLocaleString("en")} rows/s), ${(statSync(path).size / 1e9).toFixed(2)} GB`,
  );
  const db = openFlowsDb(path);
  const hour = { fromMs: now - 3_600_000, toMs: now + 1 };
  const cases: Array<[string, TopQuery]> = [
    ["last hour, top 10 src_ip by bytes", { by: ["src_ip"], order: "bytes", limit: 10, ...hour }],
    ["last hour, top 10 dst_port by flows", { by: ["dst_port"], order: "flows", limit: 10, ...hour }],
    ["last hour, top 10 conversation", { by: ["conversation"], order: "bytes", limit: 10, ...hour }],
    [
      "last hour, top 10 dst_ip, filter proto tcp and dst port 443 and not src net 10.0.0.0/16",
      {
        by: ["dst_ip"],
        order: "bytes",
        limit: 10,
        ...hour,
        filter: "proto tcp and dst port 443 and not src net 10.0.0.0/16",
      },
    ],
    [
      "last 15 min, top 10 src_ip, exporter 192.0.2.4",
      { by: ["src_ip"], order: "bytes", limit: 10, fromMs: now - 900_000, exporter: "192.0.2.4" },
    ],
    ["whole store, top 10 proto", { by: ["proto"], order: "bytes", limit: 10 }],
  ];
  for (const [name, q] of cases) {
    const r = time(db, q);
    console.log(
      `${name}: ${r.ms.toFixed(0)} ms wall, ${r.cpuMs.toFixed(0)} ms CPU (${r.flows.toLocaleString("en")} flows in the window)`,
    );
  }
  const plan = db
    .prepare(
      "EXPLAIN QUERY PLAN SELECT src_ip, TOTAL(bytes) FROM flows WHERE time_received >= ? AND time_received < ? GROUP BY src_ip",
    )
    .all(hour.fromMs, hour.toMs)
    .map((r) => r.detail)
    .join("; ");
  console.log(`plan (last hour): ${plan}`);
  db.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
