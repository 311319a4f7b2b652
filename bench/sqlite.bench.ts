/**
 * SQLite sink throughput, both halves: the worker-side encoder (FlowRecords → one columnar batch) and the
 * main-thread writer (columnar batch → multi-row INSERTs, one transaction a batch), WAL +
 * synchronous=NORMAL on a file in the temp directory. Two record mixes: `typical` (bench/encode.bench.ts:
 * one exporter, few varying columns) and `varied` (addresses, ports, protocols, flags, interfaces, times
 * all vary: the writer binds most columns per row). Best of 3 rounds each.
 * Run: node bench/sqlite.bench.ts [batches=40] [batchSize=1000]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FlowRecord } from "../src/core/flow.ts";
import { createSqliteEncoder } from "../src/sinks/sqlite/columnar.ts";
import { parseSqliteOptions, SqliteSink } from "../src/sinks/sqlite/sink.ts";
import type { EncodedBatch } from "../src/sinks/types.ts";
import { typicalRecord } from "./encode.bench.ts";

export interface SqliteBenchResult {
  mix: string;
  encodeRowsPerSec: number;
  insertRowsPerSec: number;
}

export function variedRecord(i: number): FlowRecord {
  const r = typicalRecord(i);
  const h = Math.imul(i + 1, 2654435761) >>> 0;
  r.sampler_address = `192.0.2.${1 + (i & 3)}`;
  r.switch_id = r.sampler_address;
  r.time_flow_start_ms = r.time_received_ms - 1000 - (h & 4095);
  r.time_flow_end_ms = r.time_received_ms - (h & 511);
  r.src_addr = `10.${(h >>> 8) & 255}.${(h >>> 16) & 255}.${i & 255}`;
  r.dst_addr = `172.16.${(h >>> 4) & 255}.${(h >>> 12) & 255}`;
  r.src_port = 1024 + (h & 0x7fff);
  r.dst_port = [53, 80, 443, 123, 22][h % 5]!;
  r.proto = (h & 1) === 0 ? 6 : 17;
  r.tcp_flags = r.proto === 6 ? (h >>> 3) & 0x3f : 0;
  r.in_if = 1 + (h & 7);
  r.out_if = 1 + ((h >>> 3) & 7);
  r.ip_tos = (h >>> 20) & 0xfc;
  r.src_as = 64512 + (h & 15);
  r.dst_as = 64512 + ((h >>> 4) & 15);
  r.src_mac = 0x020000000000 + (h & 0xffff);
  r.dst_mac = 0x020000000000 + ((h >>> 16) & 0xffff);
  return r;
}

function insertRate(batches: readonly EncodedBatch[]): number {
  const dir = mkdtempSync(join(tmpdir(), "clarion-sqlite-bench-"));
  try {
    const sink = new SqliteSink("bench", join(dir, "flows.db"), parseSqliteOptions({ retentionMs: 0 }));
    void sink.write(batches[0]!); // warm up (statements, page cache)
    let rows = 0;
    const start = performance.now();
    for (let i = 1; i < batches.length; i++) {
      void sink.write(batches[i]!);
      rows += batches[i]!.records;
    }
    const rate = rows / ((performance.now() - start) / 1000);
    void sink.close();
    return rate;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function benchSqlite(
  batchCount = 40,
  batchSize = 1000,
  mix: "typical" | "varied" = "typical",
): SqliteBenchResult {
  const make = mix === "typical" ? typicalRecord : variedRecord;
  const records = Array.from({ length: batchSize }, (_, i) => make(i));
  const encode: number[] = [];
  const insert: number[] = [];
  let batches: EncodedBatch[] = [];
  for (let round = 0; round < 3; round++) {
    const encoder = createSqliteEncoder("bench");
    batches = [];
    const t0 = performance.now();
    for (let b = 0; b < batchCount; b++) batches.push(encoder.encode(records));
    encode.push((batchCount * batchSize) / ((performance.now() - t0) / 1000));
    insert.push(insertRate(batches));
  }
  return { mix, encodeRowsPerSec: Math.max(...encode), insertRowsPerSec: Math.max(...insert) };
}

if (import.meta.main) {
  const batches = Number(process.argv[2] ?? 40);
  const size = Number(process.argv[3] ?? 1000);
  const f = (n: number): string => Math.round(n).toLocaleString("en");
  for (const mix of ["typical", "varied"] as const) {
    const r = benchSqlite(batches, size, mix);
    console.log(`sqlite ${mix.padEnd(7)} encode (worker side): ${f(r.encodeRowsPerSec).padStart(10)} rows/s`);
    console.log(`sqlite ${mix.padEnd(7)} insert (main thread): ${f(r.insertRowsPerSec).padStart(10)} rows/s`);
  }
}
