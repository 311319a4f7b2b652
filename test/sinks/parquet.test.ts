/**
 * The parquet archive's worker half (ArchiveWriter: rotation by time and size, temp + rename, failures) and
 * main-thread half (receipts, retention), and the writer's types, read back with DuckDB. The clock is
 * stepped by hand: no test waits on time.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { DuckDBInstance } from "@duckdb/node-api";
import { FlowRecord } from "../../src/core/flow.ts";
import { msToNs } from "../../src/encode/goflow2.ts";
import {
  ArchiveWriter,
  type ArchiveWriterOptions,
  archiveFileName,
  archivePrometheus,
  parquetSink,
  parseParquetOptions,
  type Receipt,
} from "../../src/sinks/parquet.ts";
import type { EncodedBatch, Sink } from "../../src/sinks/types.ts";

const roots: string[] = [];
after(() => {
  for (const d of roots) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "clarion-parquet-unit-"));
  roots.push(d);
  return d;
}

const quiet = { info() {}, warn() {}, error() {} };

function flow(i: number, ms: number): FlowRecord {
  const r = new FlowRecord();
  r.type = "IPFIX";
  r.time_received_ms = ms;
  r.sampler_address = "192.0.2.1";
  r.switch_id = "192.0.2.1";
  r.src_v4 = 0x0a000000 + i;
  r.dst_addr = "2001:db8::1";
  r.src_port = i & 0xffff;
  r.dst_port = 443;
  r.proto = 6;
  r.etype = 0x86dd;
  r.bytes = i * 1000;
  r.packets = i;
  r.time_flow_start_ms = ms - 1000.5;
  r.time_flow_end_ms = ms;
  return r;
}

function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return (readdirSync(dir, { recursive: true }) as string[])
    .filter((n) => n.endsWith(".parquet") && !n.startsWith(".tmp"))
    .sort();
}

async function query(sql: string): Promise<Record<string, unknown>[]> {
  const db = await DuckDBInstance.create(":memory:");
  const con = await db.connect();
  try {
    return (await con.runAndReadAll(sql)).getRowObjectsJson() as Record<string, unknown>[];
  } finally {
    con.closeSync();
    db.closeSync();
  }
}

const T0 = Date.UTC(2026, 11, 5, 4, 5, 0); // 04:05:00 UTC, on a 5-minute boundary

function writer(
  dir: string,
  clock: { now: number },
  over: Partial<ArchiveWriterOptions> = {},
): ArchiveWriter {
  return new ArchiveWriter({
    ...parseParquetOptions({}),
    dir,
    worker: 3,
    now: () => clock.now,
    ...over,
  });
}

describe("ArchiveWriter", () => {
  test("rotates on the interval boundary; files appear only when finished, named by interval start", async () => {
    const dir = tempDir();
    const clock = { now: T0 + 10_000 };
    const w = writer(dir, clock, { rowGroupRows: 100 });
    w.append(Array.from({ length: 250 }, (_, i) => flow(i, clock.now)));
    assert.deepEqual(files(dir), [], "nothing visible while the interval is open");
    assert.equal(readdirSync(join(dir, ".tmp")).length, 1, "two row groups written to the temporary file");
    clock.now = T0 + 299_999; // last ms of the interval
    w.poll(false);
    w.append([flow(250, clock.now)]);
    assert.deepEqual(files(dir), []);
    clock.now = T0 + 300_000; // the boundary
    w.append([flow(251, clock.now)]); // finishes the first file first, then opens the next interval
    assert.deepEqual(files(dir), ["2026/12/05/flows-040500-w3.parquet"]);
    clock.now = T0 + 600_000;
    w.poll(false); // a tick at the next boundary finishes the second (its rows were only buffered)
    assert.deepEqual(files(dir), [
      "2026/12/05/flows-040500-w3.parquet",
      "2026/12/05/flows-041000-w3.parquet",
    ]);
    const receipts = w.takeReceipts();
    const done = receipts.flatMap((r) => r.files);
    assert.deepEqual(
      done.map((f) => f.rows),
      [251, 1],
    );
    assert.ok(receipts.every((r) => r.error === undefined));
    const counts = await query(
      `SELECT filename.split('/')[-1] AS f, count(*)::INT AS n, min(src_port)::INT AS lo, max(src_port)::INT AS hi
       FROM read_parquet('${dir}/*/*/*/*.parquet', filename = true) GROUP BY ALL ORDER BY f`,
    );
    assert.deepEqual(counts, [
      { f: "flows-040500-w3.parquet", n: 251, lo: 0, hi: 250 },
      { f: "flows-041000-w3.parquet", n: 1, lo: 251, hi: 251 },
    ]);
    assert.deepEqual(readdirSync(join(dir, ".tmp")), [], "no temporary file left");
  });

  test("rotates on size within an interval, with unique names", async () => {
    const dir = tempDir();
    const clock = { now: T0 };
    const w = writer(dir, clock, { rowGroupRows: 50, maxFileBytes: 1 });
    w.append(Array.from({ length: 120 }, (_, i) => flow(i, clock.now)));
    w.poll(true);
    const names = files(dir);
    assert.equal(names.length, 3, "one file per row group (each is over 1 byte)");
    assert.equal(new Set(names).size, 3);
    const [row] = await query(
      `SELECT count(*)::INT AS n, count(DISTINCT src_port)::INT AS d FROM read_parquet('${dir}/*/*/*/*.parquet')`,
    );
    assert.deepEqual(row, { n: 120, d: 120 });
  });

  test("a file that cannot be written is reported lost with its rows, and the next one works", () => {
    const dir = tempDir();
    writeFileSync(join(dir, ".tmp"), "not a directory");
    const clock = { now: T0 };
    const w = writer(dir, clock, { rowGroupRows: 10 });
    w.append(Array.from({ length: 25 }, (_, i) => flow(i, clock.now)));
    w.poll(true);
    const r = w.takeReceipts();
    const failed = r.filter((x) => x.error !== undefined);
    assert.ok(failed.length >= 1);
    assert.equal(
      failed.reduce((n, x) => n + (x.lostRows ?? 0), 0),
      25,
      "every row is accounted lost",
    );
    rmSync(join(dir, ".tmp"));
    w.append([flow(1, clock.now)]);
    w.poll(true);
    assert.equal(files(dir).length, 1, "writes resume once the directory is usable");
  });

  test("exporter-controlled text bounds a row group's memory (64 MiB), whatever rowGroupRows says", () => {
    const dir = tempDir();
    const clock = { now: T0 };
    const w = writer(dir, clock, { rowGroupRows: 100_000 });
    const big = "x".repeat(1 << 20);
    w.append(
      Array.from({ length: 70 }, (_, i) => {
        const r = flow(i, clock.now);
        r.in_if_name = big;
        return r;
      }),
    );
    const groups = w.takeReceipts().reduce((n, r) => n + r.rowGroups, 0);
    assert.equal(groups, 1, "one row group written early, at 64 MiB of names");
    assert.ok(w.openRows === 70);
    w.poll(true);
    assert.equal(files(dir).length, 1);
  });

  test("file names sort by time", () => {
    const a = archiveFileName(Date.UTC(2026, 0, 2, 3, 4, 5), 0);
    assert.equal(a, "2026/01/02/flows-030405-w0.parquet");
    const names = [Date.UTC(2026, 11, 31, 23, 59), Date.UTC(2026, 0, 1), Date.UTC(2026, 5, 1, 12)].map((t) =>
      archiveFileName(t, 1),
    );
    assert.deepEqual([...names].sort(), [names[1], names[2], names[0]]);
  });
});

describe("parquet writer types", () => {
  test("nulls, 64-bit counters, ns times before and after 1970, UTF-8 and extras read back exactly", async () => {
    const dir = tempDir();
    const clock = { now: T0 };
    const w = writer(dir, clock);
    const a = flow(1, T0 + 0.000123); // a sub-ms fraction (the nearest double: 244 ns past the ms)
    a.bytes = 18446744073709551615n;
    a.packets = 2 ** 53;
    a.src_sgt = 4_000_000_000;
    a.flow_direction = 1;
    a.in_if_name = "Gi0/1 – été";
    a.src_mac = 0xaabbccddeeff;
    a.extra = { big: 12345678901234567890n, lat: 5.4112, name: "x" };
    a.as_path = [64500, 64501];
    const b = flow(2, T0);
    b.time_flow_start_ms = -4294455296; // an exporter clock before 1970
    w.append([a, b]);
    w.poll(true);
    const rows = await query(
      `SELECT bytes::VARCHAR AS bytes, packets::VARCHAR AS packets, src_sgt, dst_sgt, flow_direction,
         in_if_name, out_if_name, src_mac::VARCHAR AS src_mac, extra, src_addr, dst_addr,
         epoch_ns(time_received)::VARCHAR AS tr, epoch_ns(time_flow_start)::VARCHAR AS ts, typeof(time_received) AS tt
       FROM read_parquet('${dir}/*/*/*/*.parquet')`,
    );
    assert.deepEqual(rows[0], {
      bytes: "18446744073709551615",
      packets: "9007199254740992",
      src_sgt: 4000000000,
      dst_sgt: null,
      flow_direction: 1,
      in_if_name: "Gi0/1 – été",
      out_if_name: null,
      src_mac: String(0xaabbccddeeff),
      extra: '{"big":12345678901234567890,"lat":5.4112,"name":"x","as_path":[64500,64501]}',
      src_addr: "10.0.0.1",
      dst_addr: "2001:db8::1",
      tr: msToNs(a.time_received_ms), // the JSON lines' rendering of the same double
      ts: msToNs(a.time_flow_start_ms),
      tt: "TIMESTAMP_NS",
    });
    assert.equal(rows[1]!.ts, "-4294455296000000");
    assert.notEqual(rows[0]!.tr, `${T0}000000`, "the fraction is kept");
    assert.equal(rows[1]!.extra, null);
    const [stats] = await query(
      `SELECT stats_min_value, stats_max_value FROM parquet_metadata('${dir}/2026/12/05/flows-040500-w3.parquet')
       WHERE path_in_schema = 'time_received'`,
    );
    assert.ok(stats!.stats_min_value !== null && stats!.stats_max_value !== null, "time statistics written");
  });
});

describe("string columns", () => {
  test("repeats, nulls and changes in any order read back in order", async () => {
    const dir = tempDir();
    const clock = { now: T0 };
    const w = writer(dir, clock, { rowGroupRows: 7 });
    const names = ["a", "a", "", "a", "bé", "bé", "bé", "", "", "c", "a", "a", "a", "a", "", "x"];
    w.append(
      names.map((n, i) => {
        const r = flow(i, clock.now);
        r.in_if_name = n;
        r.switch_id = i < 9 ? "sw1" : "sw2";
        return r;
      }),
    );
    w.poll(true);
    const rows = await query(
      `SELECT in_if_name, switch_id FROM read_parquet('${dir}/*/*/*/*.parquet', file_row_number = true)
       ORDER BY file_row_number`,
    );
    assert.deepEqual(
      rows.map((r) => r.in_if_name),
      names.map((n) => (n === "" ? null : n)),
    );
    assert.deepEqual(
      rows.map((r) => r.switch_id),
      names.map((_, i) => (i < 9 ? "sw1" : "sw2")),
    );
  });
});

describe("extra column", () => {
  test("remembered JSON follows every record: values, key order, other types, beyond the memo's bound", async () => {
    const dir = tempDir();
    const clock = { now: T0 };
    const w = writer(dir, clock, { rowGroupRows: 1000 });
    const extras: Array<FlowRecord["extra"]> = [];
    for (let i = 0; i < 6000; i++) {
      // a few recurring objects, then distinct values past the memo's 4096 nodes (it starts again)
      const k = i % 7;
      extras.push(
        i >= 3000
          ? { flowEndReason: i, ingressPhysicalInterface: i % 3 }
          : k === 0
            ? { flowEndReason: 1 }
            : k === 1
              ? { flowEndReason: 2 }
              : k === 2
                ? { ingressPhysicalInterface: 5, flowEndReason: 1 } // same pairs, other order
                : k === 3
                  ? { flowEndReason: 1, ingressPhysicalInterface: 5 }
                  : k === 4
                    ? { flowEndReason: 1, name: "x" } // a string: rendered each time
                    : k === 5
                      ? null
                      : { flowEndReason: -0, ratio: 0.5 },
      );
    }
    w.append(
      extras.map((e, i) => {
        const r = flow(i, clock.now);
        r.extra = e;
        return r;
      }),
    );
    w.poll(true);
    const rows = await query(
      `SELECT extra FROM read_parquet('${dir}/*/*/*/*.parquet', file_row_number = true) ORDER BY file_row_number`,
    );
    assert.equal(rows.length, extras.length);
    for (let i = 0; i < extras.length; i++) {
      const want = extras[i] === null ? null : JSON.stringify(extras[i]);
      if (rows[i]!.extra !== want) assert.fail(`row ${i}: ${rows[i]!.extra} !== ${want}`);
    }
  });

  test("one-value column chunks are stored uncompressed, the others with the codec", async () => {
    const dir = tempDir();
    const w = writer(dir, { now: T0 });
    w.append([flow(1, T0), flow(2, T0), flow(3, T0)]);
    w.poll(true);
    const rows = await query(
      `SELECT path_in_schema AS col, compression FROM parquet_metadata('${dir}/*/*/*/*.parquet')`,
    );
    const codec = new Map(rows.map((r) => [r.col as string, r.compression as string]));
    assert.equal(codec.get("dst_port"), "UNCOMPRESSED"); // 443 throughout
    assert.equal(codec.get("switch_id"), "UNCOMPRESSED");
    assert.equal(codec.get("src_port"), "ZSTD");
    assert.equal(codec.get("src_addr"), "ZSTD");
  });

  test("a BGP next hop decoded as one IPv4 number throughout is a one-value chunk and reads back as its text", async () => {
    const dir = tempDir();
    const w = writer(dir, { now: T0 });
    w.append(
      [1, 2, 3].map((i) => {
        const r = flow(i, T0);
        r.bgp_next_hop_v4 = 0x0a000e21;
        return r;
      }),
    );
    w.poll(true);
    const meta = await query(
      `SELECT compression FROM parquet_metadata('${dir}/*/*/*/*.parquet') WHERE path_in_schema = 'bgp_next_hop'`,
    );
    assert.deepEqual(meta, [{ compression: "UNCOMPRESSED" }]);
    const rows = await query(`SELECT DISTINCT bgp_next_hop FROM '${dir}/*/*/*/*.parquet'`);
    assert.deepEqual(rows, [{ bgp_next_hop: "10.0.14.33" }]);
  });
});

describe("many strings", () => {
  test("few and many distinct values, IPv4 numbers and text, nulls, non-ASCII read back in order", async () => {
    const dir = tempDir();
    const clock = { now: T0 };
    const rows = 20_000;
    const w = writer(dir, clock, { rowGroupRows: rows });
    const mods = [2, 3, 255, 256, 257, 8192];
    const want: Array<Record<string, string | null>> = [];
    w.append(
      Array.from({ length: rows }, (_, i) => {
        const r = flow(i, clock.now);
        // src_addr: distinct IPv4 numbers with text now and then
        if (i % 5 === 0) r.src_addr = `2001:db8::${i.toString(16)}`;
        else r.src_v4 = 0x0a000000 + i;
        // next_hop: 2..8192 distinct values in turn, as numbers and as text of the same addresses
        const k = mods[Math.floor(i / 1000) % mods.length]!;
        if (i % 2 === 0) r.next_hop_v4 = 0xc0000200 + (i % k);
        else r.next_hop = `192.0.${2 + ((i % k) >> 8)}.${(i % k) & 255}`;
        // bgp_next_hop: runs of one value, as numbers (0.0.0.0 included), as text of the same address, absent
        const run = Math.floor(i / 64) % 4;
        const bgp = run === 3 ? 0 : 0x0a000e00 + run;
        if (i % 3 === 0) r.bgp_next_hop_v4 = bgp;
        else if (i % 3 === 1) r.bgp_next_hop = `10.0.14.${run}`;
        else if (i % 9 === 2) r.bgp_next_hop = "";
        else r.bgp_next_hop_v4 = bgp;
        r.in_if_name = i % 7 === 0 ? "" : `if${i % k}`; // nullable
        r.out_if_name = i % 4 !== 0 ? `é${i}` : ""; // nullable, distinct, non-ASCII
        want.push({
          src_addr: r.src_addr,
          next_hop: r.next_hop,
          bgp_next_hop: r.bgp_next_hop,
          in_if_name: r.in_if_name === "" ? null : r.in_if_name,
          out_if_name: r.out_if_name === "" ? null : r.out_if_name,
        });
        return r;
      }),
    );
    w.poll(true);
    const got = await query(
      `SELECT src_addr, next_hop, bgp_next_hop, in_if_name, out_if_name
       FROM read_parquet('${dir}/*/*/*/*.parquet', file_row_number = true) ORDER BY file_row_number`,
    );
    assert.equal(got.length, rows);
    for (let i = 0; i < rows; i++) assert.deepEqual(got[i], want[i], `row ${i}`);
  });
});

describe("ParquetSink (main thread)", () => {
  function receipt(over: Partial<Receipt>): EncodedBatch {
    const r: Receipt = {
      worker: 0,
      files: [],
      compressMs: 2,
      writeMs: 3,
      rowGroups: 1,
      abandonedFiles: 0,
      ...over,
    };
    const records = r.error ? (r.lostRows ?? 0) : r.files.reduce((n, f) => n + f.rows, 0);
    return {
      sink: "parquet:x",
      records,
      parts: [{ key: "parquet", records, data: new TextEncoder().encode(JSON.stringify(r)) }],
      oldestMs: 0,
    };
  }

  test("counts finished files, rejects a failed one (the queue counts its rows as write errors)", async () => {
    const dir = tempDir();
    const sink = (await parquetSink.create(`parquet:${dir}`, {
      dataDir: dir,
      logger: quiet,
      options: { retentionIntervalMs: 3_600_000 },
    })) as Sink & { stats(): Record<string, unknown> };
    await sink.write(receipt({ files: [{ path: join(dir, "a.parquet"), rows: 10, bytes: 500 }] }));
    await assert.rejects(
      sink.write(receipt({ error: "ENOSPC: no space left", lostRows: 7 })),
      /ENOSPC.*7 flows lost/,
    );
    const s = sink.stats();
    assert.equal(s.files, 1);
    assert.equal(s.rows, 10);
    assert.equal(s.bytes, 500);
    assert.equal(s.writeErrors, 1);
    assert.equal(s.lostRows, 7);
    assert.equal(s.writeSeconds, 0.006);
    assert.equal(s.compressSeconds, 0.004);
    const text = archivePrometheus([sink]);
    assert.match(text, new RegExp(`clarion_collector_archive_rows_total\\{sink="parquet:${dir}"\\} 10`));
    assert.match(text, /clarion_collector_archive_lost_records_total\{sink="[^"]+"\} 7/);
    await sink.close();
  });

  test("retention deletes by age, then the oldest beyond the size limit, and empty directories", async () => {
    const dir = tempDir();
    const day = (d: string) => {
      mkdirSync(join(dir, d), { recursive: true });
      return join(dir, d);
    };
    const now = Date.now() / 1000;
    const make = (path: string, bytes: number, ageS: number) => {
      writeFileSync(path, Buffer.alloc(bytes));
      utimesSync(path, now - ageS, now - ageS);
    };
    make(join(day("2026/11/01"), "flows-000000-w0.parquet"), 100, 40 * 86400); // too old
    make(join(day("2026/12/01"), "flows-000000-w0.parquet"), 100, 4 * 86400);
    make(join(day("2026/12/02"), "flows-000000-w0.parquet"), 100, 3 * 86400);
    make(join(day("2026/12/03"), "flows-000000-w0.parquet"), 100, 2 * 86400);
    make(join(day("2026/12/03"), "flows-000000-w1.parquet"), 100, 2 * 86400 - 1);
    make(join(dir, "2026/12/03/notes.txt"), 10_000, 90 * 86400); // not ours: untouched
    const sink = (await parquetSink.create(`parquet:${dir}`, {
      dataDir: dir,
      logger: quiet,
      options: { retentionMs: 30 * 86_400_000, maxBytes: 250, retentionIntervalMs: 3_600_000 },
    })) as Sink & { stats(): Record<string, unknown> };
    assert.deepEqual(files(dir), [
      "2026/12/03/flows-000000-w0.parquet",
      "2026/12/03/flows-000000-w1.parquet",
    ]);
    assert.ok(!existsSync(join(dir, "2026/11")), "an emptied month directory goes");
    assert.ok(!existsSync(join(dir, "2026/12/01")), "an emptied day directory goes");
    assert.ok(existsSync(join(dir, "2026/12/03/notes.txt")));
    const s = sink.stats();
    assert.equal(s.retentionDeletedFiles, 3);
    assert.equal(s.diskFiles, 2);
    assert.equal(s.diskBytes, 200);
    await sink.close();
  });

  test("leftover temporary files of an earlier run are deleted and counted at start", async () => {
    const dir = tempDir();
    mkdirSync(join(dir, ".tmp"));
    writeFileSync(join(dir, ".tmp", "flows-040500-w0.parquet.tmp"), "PAR1...");
    const sink = (await parquetSink.create(`parquet:${dir}`, {
      dataDir: dir,
      logger: quiet,
      options: {},
    })) as Sink & { stats(): Record<string, unknown> };
    assert.equal(sink.stats().abandonedFiles, 1);
    assert.deepEqual(readdirSync(join(dir, ".tmp")), []);
    await sink.close();
  });

  test("options are checked", () => {
    assert.throws(() => parseParquetOptions({ codec: "lz4" }), /codec/);
    assert.throws(() => parseParquetOptions({ rotateMs: 10 }), /rotateMs/);
    assert.equal(parseParquetOptions({ rotateMs: "60000" }).rotateMs, 60_000);
    assert.throws(() => parquetSink.createEncoder("parquet:", {}), /directory/);
  });
});
