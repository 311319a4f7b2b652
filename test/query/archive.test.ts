/**
 * `top` over the flow archive (src/query/archive.ts, `top --archive`): the same flows written through the
 * real archive writer (two workers, 5-minute rotation on a stepped clock) and the real SQLite sink give the
 * same top-N answer (groups, sums, totals, first/last) for every key, several filters, windows, orders and
 * scaling. The flows: every record the logstash-codec-netflow corpus decodes to (test/fixtures/logstash,
 * one exporter address per case) plus synthetic ones for what the corpus lacks (IPv6 networks, SGTs,
 * sampling, exporters known only by switch id, absent addresses). Also: the window prunes files by name,
 * damaged files are skipped and named, a missing DuckDB package is an error naming it.
 */
import assert from "node:assert/strict";
import {
  cpSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import { PassThrough } from "node:stream";
import { after, before, describe, it } from "node:test";
import { runTopCommand } from "../../src/commands/top.ts";
import { DecodeError } from "../../src/core/errors.ts";
import { FlowRecord } from "../../src/core/flow.ts";
import { networkString } from "../../src/encode/goflow2.ts";
import { FlowDecoder } from "../../src/protocols/decoder.ts";
import {
  type ArchiveFile,
  archiveKeyMissing,
  closeArchiveEngine,
  filesForWindow,
  listArchiveFiles,
  loadArchiveEngine,
  runArchiveTop,
} from "../../src/query/archive.ts";
import { parseFilter, toPredicate } from "../../src/query/filter.ts";
import {
  openFlowsDb,
  runTop,
  TOP_KEYS,
  type TopQuery,
  TopQueryError,
  type TopResult,
} from "../../src/query/top.ts";
import { ArchiveWriter, parseParquetOptions } from "../../src/sinks/parquet.ts";
import { createSqliteEncoder } from "../../src/sinks/sqlite/columnar.ts";
import { parseSqliteOptions, SqliteSink } from "../../src/sinks/sqlite/sink.ts";

const root = mkdtempSync(join(tmpdir(), "clarion-archive-top-"));
after(() => rmSync(root, { recursive: true, force: true }));
const archive = join(root, "archive");
const dbPath = join(root, "flows.db");
let db: DatabaseSync;

const T0 = Date.UTC(2026, 11, 5, 8, 0, 0);
const FIXTURES = new URL("../fixtures/logstash/", import.meta.url);

/** Every flow record of the corpus, case i received from 192.0.2.(10 + i) at T0 + i × 97 s + 1 s a datagram. */
function corpusFlows(): FlowRecord[] {
  const manifest = JSON.parse(readFileSync(new URL("MANIFEST.json", FIXTURES), "utf8")) as Array<{
    files: string[];
    file_info: { file: string; datagrams?: { offset: number; length: number }[] }[];
  }>;
  const out: FlowRecord[] = [];
  manifest.forEach((c, i) => {
    const decoder = new FlowDecoder({ now: () => T0 });
    let t = T0 + i * 97_000;
    for (const f of c.files) {
      const data = readFileSync(new URL(f, FIXTURES));
      const info = c.file_info.find((x) => x.file === f);
      for (const s of info?.datagrams?.length ? info.datagrams : [{ offset: 0, length: data.length }]) {
        try {
          decoder.decode(
            {
              payload: data.subarray(s.offset, s.offset + s.length),
              exporter: `192.0.2.${10 + (i % 200)}`,
              port: 2055,
              receivedAtMs: t,
              listener: "",
            },
            { flow: (r) => out.push(r) },
          );
        } catch (e) {
          if (!(e instanceof DecodeError)) throw e;
        }
        t += 1000;
      }
    }
  });
  return out;
}

/** What the corpus lacks: IPv6 and odd prefixes, SGTs, sampling, switch-id-only exporters, empty addresses. */
function syntheticFlows(n: number): FlowRecord[] {
  const out: FlowRecord[] = [];
  for (let i = 0; i < n; i++) {
    const r = new FlowRecord();
    r.type = i % 3 === 0 ? "NETFLOW_V9" : "IPFIX";
    r.time_received_ms = T0 + Math.floor((i * 5_400_000) / n) + 0.25; // 90 minutes, sub-ms part
    r.time_flow_start_ms = r.time_received_ms - 5000;
    r.time_flow_end_ms = r.time_received_ms - 10;
    if (i % 7 === 0) {
      r.sampler_address = "";
      r.switch_id = "edge-7";
    } else {
      r.sampler_address = `198.51.100.${1 + (i % 4)}`;
      r.switch_id = r.sampler_address;
    }
    const v6 = i % 5 === 0;
    if (v6) {
      r.etype = 0x86dd;
      r.src_addr = `2001:db8:${(i % 3).toString(16)}::${(i % 11) + 1}`;
      r.dst_addr = i % 10 === 0 ? "2001:db8::1" : `fd00:${i % 4}::${(i % 13).toString(16)}`;
      r.src_net = [0, 32, 48, 64, 129][Math.floor(i / 5) % 5]!;
      r.dst_net = [0, 56, 128][i % 3]!;
    } else {
      r.etype = 0x800;
      r.src_addr = `10.${i % 3}.${i % 17}.${i % 29}`;
      r.dst_addr = i % 23 === 0 ? "" : `203.0.113.${i % 40}`;
      r.src_net = [0, 8, 16, 24, 25, 32, 33][i % 7]!;
      r.dst_net = [0, 24, 30][i % 3]!;
    }
    r.proto = [6, 17, 1, 58, 47][i % 5]!;
    r.src_port = r.proto === 6 || r.proto === 17 ? 1024 + (i % 300) : 0;
    r.dst_port = r.proto === 6 || r.proto === 17 ? [443, 53, 80, 8080][i % 4]! : 0;
    r.icmp_type = r.proto === 1 ? i % 9 : 0;
    r.bytes = 40 + ((i * 7919) % 150_000);
    r.packets = 1 + (i % 97);
    r.sampling_rate = [0, 1, 100, 0, 512][i % 5]!;
    r.in_if = i % 6;
    r.out_if = (i * 5) % 7;
    r.src_as = i % 4 === 0 ? 0 : 64512 + (i % 5);
    r.dst_as = 15169 + (i % 3);
    r.src_sgt = i % 4 === 1 ? 10 + (i % 3) : null;
    r.dst_sgt = i % 6 === 1 ? 20 : null;
    r.vlan_id = i % 8 === 0 ? 100 : 0;
    r.ip_tos = i % 9 === 0 ? 0x20 : 0;
    // VRFs (named, id only, none) and applications (issue 18): SQLite columns, archive `extra` members
    if (i % 4 !== 3) {
      r.in_vrf_id = 1 + (i % 3);
      r.out_vrf_id = 1 + ((i >> 1) % 3);
      if (r.in_vrf_id !== 3) r.in_vrf_name = ["", "red", "blue"][r.in_vrf_id]!;
      if (r.out_vrf_id !== 3) r.out_vrf_name = ["", "red", "blue"][r.out_vrf_id]!;
    }
    if (i % 3 !== 0) r.application_name = ["http", "dns", "ssh"][i % 3]!;
    out.push(r);
  }
  return out;
}

before(async () => {
  const flows = [...corpusFlows(), ...syntheticFlows(4000)].sort(
    (a, b) => a.time_received_ms - b.time_received_ms,
  );
  assert.ok(flows.length > 4400, `${flows.length} flows`);
  // The archive: two workers, each its own files, 5-minute rotation, small row groups (several per file).
  const clock = { now: T0 };
  const writers = [0, 1].map(
    (worker) =>
      new ArchiveWriter({
        ...parseParquetOptions({ rotateMs: 300_000, rowGroupRows: 500 }),
        dir: archive,
        worker,
        now: () => clock.now,
      }),
  );
  flows.forEach((r, i) => {
    clock.now = Math.floor(r.time_received_ms);
    writers[i % 2]!.add(r);
    if (i % 100 === 0) for (const w of writers) w.poll(false);
  });
  for (const w of writers) w.poll(true);
  // The SQLite store: the same flows through the real sink.
  const sink = new SqliteSink("sqlite", dbPath, parseSqliteOptions({ retentionMs: 0 }));
  const enc = createSqliteEncoder("sqlite");
  for (let i = 0; i < flows.length; i += 700) await sink.write(enc.encode(flows.slice(i, i + 700)));
  await sink.close();
  db = openFlowsDb(dbPath);
});
after(async () => {
  db?.close();
  await closeArchiveEngine();
});

const comparable = (r: TopResult) => ({
  by: r.by,
  order: r.order,
  rows: r.rows,
  total: r.total,
  sampled: r.sampled,
  scaled: r.scaled,
  maxSamplingRate: r.maxSamplingRate,
  fromMs: r.fromMs,
  toMs: r.toMs,
  firstMs: r.firstMs,
  lastMs: r.lastMs,
});

/** Runs q over both; asserts equal answers; returns the archive's. */
async function same(q: TopQuery, dir = archive) {
  const want = runTop(db, q);
  const got = await runArchiveTop(dir, q);
  assert.deepEqual(comparable(got), comparable(want), JSON.stringify(q));
  return { got, want };
}

describe("top over the archive = top over SQLite for the same flows", () => {
  it("writes the fixture: both stores hold every flow, the archive in many files of two workers", async () => {
    const files = listArchiveFiles(archive);
    assert.ok(files.length >= 30, `${files.length} files`);
    assert.deepEqual([...new Set(files.map((f) => f.worker))].sort(), [0, 1]);
    const { got } = await same({ by: ["exporter"], order: "flows", limit: 10_000 });
    const stored = Number((db.prepare("SELECT COUNT(*) AS n FROM flows").get() as { n: number | bigint }).n);
    assert.equal(got.total.flows, stored);
    assert.equal(got.files.read, files.length);
    assert.deepEqual(got.skipped, []);
  });

  it("every key (all groups, so every sum is compared), each order, scaled and not", async () => {
    assert.deepEqual(archiveKeyMissing(), []);
    const orders = ["bytes", "packets", "flows"] as const;
    for (const [i, key] of TOP_KEYS.entries()) {
      const { got } = await same({ by: [key], order: orders[i % 3]!, limit: 10_000, scale: i % 2 === 0 });
      assert.ok(got.rows.length > 1, `${key}: ${got.rows.length} groups`);
    }
  });

  it("groups the way SQLite does where it is subtle: absent values, networks, conversations, SGT pairs", async () => {
    const nets = (await same({ by: ["src_net"], order: "flows", limit: 10_000 })).got.rows.map(
      (r) => r.key.src_net,
    );
    for (const want of [null, "10.0.0.0/8", "10.1.0.0/16", "2001:db8:1::/48", "2001:db8::/32"])
      assert.ok(nets.includes(want), `src_net ${want} in ${JSON.stringify(nets)}`);
    assert.ok(!nets.some((n) => typeof n === "string" && /\/(33|129)$/.test(n)), "invalid prefixes are NULL");
    const conv = (await same({ by: ["conversation"], order: "bytes", limit: 10_000 })).got.rows;
    assert.ok(conv.some((r) => r.key.conversation === "- <-> -"));
    const sgt = (await same({ by: ["sgt", "proto"], order: "flows", limit: 10_000 })).got.rows;
    assert.ok(sgt.some((r) => /^1[0-2] -> 20$/.test(r.labels[0]!)));
    assert.ok(sgt.some((r) => r.labels[0] === "- -> -"));
    await same({ by: ["exporter", "proto", "dst_port"], order: "bytes", limit: 10_000 });
  });

  it("IPv6 networks: the RFC 5952 text SQL builds per group is networkString's, for every zero-run shape", async () => {
    const dir = mkdtempSync(join(root, "v6-"));
    const w = new ArchiveWriter({ ...parseParquetOptions({}), dir, worker: 0, now: () => T0 });
    const addrs = [
      "2001:db8:1:2:3:4:5:6",
      "2001:db8::1",
      "::1",
      "::",
      "fe80::1:2",
      "1:0:0:1:0:0:0:1",
      "1:0:0:1:0:0:1:1",
      "0:0:1:0:0:0:0:1",
      "1:0:1:0:1:0:1:0",
      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
      "::ffff:192.0.2.1",
      "64:ff9b::c000:201",
    ];
    const lens = [1, 15, 16, 17, 31, 33, 48, 63, 64, 65, 80, 96, 112, 120, 127, 128, 129, 0];
    const want = new Map<string | null, number>();
    let i = 0;
    for (const a of addrs)
      for (const len of lens) {
        const r = new FlowRecord();
        r.time_received_ms = T0;
        r.src_addr = a;
        r.src_net = len;
        r.bytes = ++i;
        w.add(r);
        const text = networkString(a, len);
        const key = len === 0 || text.charCodeAt(1) === 105 ? null : text.slice(1, -1);
        want.set(key, (want.get(key) ?? 0) + i);
      }
    w.poll(true);
    const got = await runArchiveTop(dir, { by: ["src_net"], order: "bytes", limit: 10_000, scale: false });
    assert.deepEqual(
      new Map(got.rows.map((r) => [r.key.src_net, r.bytes])),
      want,
      "groups and sums by network text",
    );
    // and the filter over the same addresses agrees with the JS predicate of the tail
    // whole leading groups (the text alone), a partial group after non-zero ones, zero groups, one address
    for (const net of [
      "2001:db8::/32",
      "2001:db8::/33",
      "2001:db8::/47",
      "::/0",
      "fe80::/10",
      "1::/16",
      "1:0:0:1::/64",
      "::ffff:192.0.2.0/120",
      "2001:db8::1/128",
      "fe80::1:2/128",
      "::1/128",
      "64:ff9b::/96",
    ]) {
      const pred = toPredicate(parseFilter(`src net ${net}`));
      const expected = [...new Set(addrs.filter((a) => pred({ src_ip: a })))].length * lens.length;
      const r = await runArchiveTop(dir, {
        by: ["src_ip"],
        order: "flows",
        limit: 100,
        filter: `src net ${net}`,
      });
      assert.equal(r.total.flows, expected, net);
      assert.ok(expected > 0, `${net} selects some`);
      if (!net.startsWith("::/")) assert.ok(expected < addrs.length * lens.length, `${net} not all`);
    }
  });

  it("the filter language, term by term and combined", async () => {
    const filters = [
      "proto tcp",
      "udp and dst port 53",
      "not src net 10.0.0.0/8",
      "src net 10.1.0.0/16 or dst net 203.0.113.0/27",
      "net 2001:db8::/32",
      "dst net fd00:1::/32 and not ipv4",
      "host 2001:db8::1",
      "src host 10.1.1.1 or dst host 203.0.113.7",
      "port 53 or port 443",
      "src port > 1100 and src port <= 1200",
      "bytes > 100k",
      "packets < 10",
      "exporter 198.51.100.2",
      "exporter edge-7",
      "in_if 3 or out if 5",
      "if 0",
      "ipv6",
      "inet",
      "src sgt 10 or dst sgt 20",
      "sgt != 0",
      "vlan 100 and tos 32",
      "icmp and icmp_type 3",
      "as 64513",
      "dst as 15170 and not src as 0",
      "net 0.0.0.0/0",
      "not (tcp or udp)",
      "vrf red",
      "in vrf blue or out vrf 3",
      "not vrf 2",
      "app dns and tcp",
      "not app ssh",
    ];
    for (const filter of filters) {
      const { got } = await same({ by: ["src_ip"], order: "bytes", limit: 10_000, filter });
      assert.ok(got.total.flows > 0, `${filter}: no flow matched, the comparison proves little`);
    }
  });

  it("windows, --exporter and small -n", async () => {
    const windows: Array<{ fromMs?: number; toMs?: number }> = [
      { fromMs: T0 + 1_800_000 },
      { toMs: T0 + 600_000 },
      { fromMs: T0 + 1_234_567, toMs: T0 + 2_345_678 },
      { fromMs: T0 + 3_000_000, toMs: T0 + 3_000_001 },
      { fromMs: T0 + 30 * 86_400_000 },
    ];
    for (const w of windows) {
      await same({ by: ["dst_ip"], order: "bytes", limit: 5, ...w });
      await same({ by: ["proto", "dst_port"], order: "flows", limit: 3, exporter: "198.51.100.3", ...w });
    }
  });
});

describe("the window prunes files by name", () => {
  const f = (min: number, worker: number, seq = 0): ArchiveFile => ({
    path: `${min}-${worker}-${seq}`,
    ms: T0 + min * 60_000,
    worker,
    seq,
  });

  it("keeps a file when [name − margin, its worker's next name + margin) meets the window", () => {
    // worker 0 every 5 minutes, worker 1 from minute 2 and then silent (its last file is open-ended)
    const files = [f(0, 0), f(2, 1), f(5, 0), f(10, 0), f(15, 0)];
    const names = (from?: number, to?: number) =>
      filesForWindow(
        files,
        from === undefined ? undefined : T0 + from * 60_000,
        to === undefined ? undefined : T0 + to * 60_000,
      ).map((x) => x.path);
    assert.deepEqual(names(), ["0-0-0", "2-1-0", "5-0-0", "10-0-0", "15-0-0"]);
    assert.deepEqual(names(11, 12), ["2-1-0", "10-0-0"]);
    // the margin (1 min): a window starting 30 s into the next file still opens the previous one
    assert.deepEqual(names(10.5, 12), ["2-1-0", "5-0-0", "10-0-0"]);
    assert.deepEqual(names(11, 14.5), ["2-1-0", "10-0-0", "15-0-0"]);
    assert.deepEqual(names(undefined, 1), ["0-0-0"]);
    assert.deepEqual(names(16.5), ["2-1-0", "15-0-0"]);
  });

  it("lists only finished files named like the writer names them, in time order per worker", () => {
    const dir = mkdtempSync(join(root, "names-"));
    for (const p of [
      "2026/12/05/flows-080000-w0.parquet",
      "2026/12/05/flows-080000-w0-1.parquet",
      "2026/12/05/flows-075959-w3.parquet",
      "2026/12/04/flows-235500-w0.parquet",
      "2026/12/05/notes.parquet",
      "2026/12/05/flows-080000-w0.parquet.tmp",
      ".tmp/flows-080500-w0.parquet.tmp",
      "x/12/05/flows-080000-w0.parquet",
    ]) {
      cpSync(listArchiveFiles(archive)[0]!.path, join(dir, p), { force: true });
    }
    assert.deepEqual(
      listArchiveFiles(dir).map((x) => x.path.slice(dir.length + 1)),
      [
        "2026/12/04/flows-235500-w0.parquet",
        "2026/12/05/flows-075959-w3.parquet",
        "2026/12/05/flows-080000-w0.parquet",
        "2026/12/05/flows-080000-w0-1.parquet",
      ],
    );
  });

  it("does not open files outside the window (garbage there goes unnoticed) and opens those inside", async () => {
    const dir = join(root, "pruned");
    cpSync(archive, dir, { recursive: true });
    const files = listArchiveFiles(dir);
    const from = T0 + 2_400_000;
    const to = T0 + 3_000_000;
    const inside = filesForWindow(files, from, to);
    assert.ok(inside.length >= 2 && inside.length <= 8, `${inside.length} of ${files.length} files`);
    const outside = files.filter((x) => !inside.includes(x));
    for (const x of outside) writeFileSync(x.path, "not a parquet file");
    const q: TopQuery = { by: ["src_ip"], order: "bytes", limit: 50, fromMs: from, toMs: to };
    const { got } = await same(q, dir);
    assert.ok(got.total.flows > 100);
    assert.deepEqual(got.skipped, []);
    assert.deepEqual(got.files, { total: files.length, selected: inside.length, read: inside.length });
    // the whole archive does open them: each is named as unreadable
    const all = await runArchiveTop(dir, { ...q, fromMs: undefined, toMs: undefined });
    assert.deepEqual(all.skipped.map((s) => s.path).sort(), outside.map((x) => x.path).sort());
  });
});

describe("damaged files", () => {
  it("skips a half-written and a corrupt file, names both, and counts everything else", async () => {
    const dir = join(root, "damaged");
    const clean = join(root, "damaged-clean");
    cpSync(archive, dir, { recursive: true });
    cpSync(archive, clean, { recursive: true });
    const files = listArchiveFiles(dir);
    const half = files[3]!.path;
    const corrupt = files[8]!.path;
    truncateSync(half, Math.floor(statSync(half).size / 2));
    // the framing is intact (magic at both ends, a footer length that fits) but the footer is garbage
    const bytes = readFileSync(corrupt);
    const footer = bytes.readUInt32LE(bytes.length - 8);
    bytes.fill(0x5a, bytes.length - 8 - footer, bytes.length - 8);
    writeFileSync(corrupt, bytes);
    for (const p of [half, corrupt]) unlinkSync(join(clean, p.slice(dir.length + 1)));

    const q: TopQuery = { by: ["dst_port"], order: "flows", limit: 100 };
    const got = await runArchiveTop(dir, q);
    const want = await runArchiveTop(clean, q);
    assert.deepEqual(comparable(got), comparable(want));
    assert.ok(got.total.flows < runTop(db, q).total.flows);
    assert.deepEqual(got.skipped.map((s) => s.path).sort(), [half, corrupt].sort());
    assert.match(got.skipped.find((s) => s.path === half)!.reason, /no Parquet magic at the end/);
    assert.equal(got.files.read, files.length - 2);

    const out = await cli(["--archive", dir, "--by", "dst_port"]);
    assert.equal(out.code, 0);
    assert.match(out.err, new RegExp(`skipped ${half.replace(/[.]/g, "\\.")} \\(unreadable`));
    assert.match(out.out, /read, 2 unreadable skipped/);
  });

  it("a missing DuckDB package is an error naming it", async () => {
    const missing = Object.assign(new Error("Cannot find package '@duckdb/node-api'"), {
      code: "ERR_MODULE_NOT_FOUND",
    });
    await assert.rejects(
      loadArchiveEngine(() => Promise.reject(missing)),
      (e: unknown) => e instanceof TopQueryError && /npm install @duckdb\/node-api/.test(e.message),
    );
  });
});

function io() {
  const out = new PassThrough();
  const err = new PassThrough();
  let o = "";
  let e = "";
  out.on("data", (c: Buffer) => {
    o += c.toString();
  });
  err.on("data", (c: Buffer) => {
    e += c.toString();
  });
  return { io: { out, err }, text: () => ({ out: o, err: e }) };
}

async function cli(args: string[]) {
  const c = io();
  const code = await runTopCommand(args, c.io, {});
  await new Promise((r) => setImmediate(r));
  return { code, ...c.text() };
}

describe("top --archive (the command)", () => {
  it("prints what top --db prints for the same flows, in every format", async () => {
    const args = ["--by", "proto,dst_port", "-n", "7", "--from", new Date(T0 + 600_000).toISOString()];
    const filter = ["not", "src", "net", "10.2.0.0/16"];
    const a = await cli(["--archive", archive, ...args, "--format", "json", ...filter]);
    const s = await cli(["--db", dbPath, ...args, "--format", "json", ...filter]);
    assert.equal(a.code, 0, a.err);
    assert.equal(s.code, 0, s.err);
    const aj = JSON.parse(a.out);
    const sj = JSON.parse(s.out);
    assert.equal(aj.archive, archive);
    assert.ok(aj.files.read > 0 && aj.files.read < aj.files.total);
    assert.deepEqual(comparable(aj), comparable(sj));
    assert.ok(aj.rows.length === 7);
    for (const format of ["csv", "table"]) {
      const ac = await cli(["--archive", archive, ...args, "--format", format, ...filter]);
      const sc = await cli(["--db", dbPath, ...args, "--format", format, ...filter]);
      // the header's window end is "now" when --to is absent: compare everything else
      const body = (t: string) =>
        t.split("\n").filter((l) => !l.startsWith("Archive ") && !l.startsWith("Top "));
      assert.deepEqual(body(ac.out), body(sc.out));
    }
  });

  it("reads the collector's parquet: output when it has no sqlite: output; errors as top --db does", async () => {
    const config = join(root, "collector.yaml");
    writeFileSync(config, `data_dir: ${join(root, "data")}\noutputs:\n  - uri: parquet:${archive}\n`);
    const r = await cli(["--config", config, "--by", "exporter", "--format", "csv", "--no-scale"]);
    assert.equal(r.code, 0, r.err);
    const s = await cli(["--db", dbPath, "--by", "exporter", "--format", "csv", "--no-scale"]);
    assert.equal(r.out, s.out);
    writeFileSync(
      config,
      `data_dir: ${join(root, "data")}\noutputs:\n  - uri: parquet:${archive}\n  - uri: sqlite:${dbPath}\n`,
    );
    const both = await cli(["--config", config, "--by", "exporter", "--format", "json"]);
    assert.equal(JSON.parse(both.out).database, dbPath);

    const bad = await cli(["--archive", archive, "proto", "tcp", "and", "port", "x"]);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /bad filter: expected a number after "port"/);
    assert.equal((await cli(["--archive", archive, "--db", dbPath])).code, 2);
    const none = await cli(["--archive", join(root, "nothing-here")]);
    assert.equal(none.code, 1);
    assert.match(none.err, /no archive at/);
  });
});
