import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { after, before, describe, it } from "node:test";
import { runTopCommand } from "../../src/commands/top.ts";
import { FlowRecord } from "../../src/core/flow.ts";
import { FilterError } from "../../src/query/filter.ts";
import {
  humanNumber,
  openFlowsDb,
  parseDuration,
  parseTime,
  runSeries,
  runTop,
  type TopQuery,
} from "../../src/query/top.ts";
import { findSink } from "../../src/sinks/index.ts";

const dir = mkdtempSync(join(tmpdir(), "clarion-top-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const quiet = { info() {}, warn() {}, error() {} };
// Ten minutes ago, whole second: every flow but E lies in the last 30 minutes.
const T = Math.floor(Date.now() / 1000) * 1000 - 600_000;

interface F {
  t: number;
  exp: string;
  src: string;
  dst: string;
  sp: number;
  dp: number;
  proto: number;
  bytes: number;
  pkts: number;
  rate?: number;
  srcNet?: number;
}

// A..E: the known data set (scaled bytes: C ×100 = 20,000, D ×100 = 30,000).
const FLOWS: F[] = [
  {
    t: T,
    exp: "192.0.2.1",
    src: "10.0.0.1",
    dst: "198.51.100.7",
    sp: 51000,
    dp: 443,
    proto: 6,
    bytes: 1000,
    pkts: 10,
    srcNet: 24,
  },
  {
    t: T + 1000,
    exp: "192.0.2.1",
    src: "198.51.100.7",
    dst: "10.0.0.1",
    sp: 443,
    dp: 51000,
    proto: 6,
    bytes: 50000,
    pkts: 40,
  },
  {
    t: T + 2000,
    exp: "192.0.2.2",
    src: "10.0.0.2",
    dst: "8.8.8.8",
    sp: 5353,
    dp: 53,
    proto: 17,
    bytes: 200,
    pkts: 2,
    rate: 100,
    srcNet: 24,
  },
  {
    t: T + 3000,
    exp: "192.0.2.2",
    src: "10.0.0.1",
    dst: "8.8.8.8",
    sp: 40000,
    dp: 53,
    proto: 17,
    bytes: 300,
    pkts: 3,
    rate: 100,
    srcNet: 24,
  },
  {
    t: T - 3_600_000,
    exp: "192.0.2.1",
    src: "172.16.5.5",
    dst: "10.0.0.1",
    sp: 22,
    dp: 60000,
    proto: 6,
    bytes: 7000,
    pkts: 7,
  },
];

function record(f: F): FlowRecord {
  const r = new FlowRecord();
  r.type = "NETFLOW_V9";
  r.time_received_ms = f.t;
  r.time_flow_start_ms = f.t - 500;
  r.time_flow_end_ms = f.t - 100;
  r.sampler_address = f.exp;
  r.switch_id = f.exp;
  r.src_addr = f.src;
  r.dst_addr = f.dst;
  r.src_port = f.sp;
  r.dst_port = f.dp;
  r.proto = f.proto;
  r.etype = 0x800;
  r.bytes = f.bytes;
  r.packets = f.pkts;
  r.sampling_rate = f.rate ?? 0;
  r.src_net = f.srcNet ?? 0;
  r.in_if = 1;
  r.out_if = 2;
  return r;
}

const dbPath = join(dir, "data", "flows.db");

before(async () => {
  const uri = `sqlite:${dbPath}`;
  const def = findSink(uri);
  const sink = await def.create(uri, {
    dataDir: join(dir, "data"),
    logger: quiet,
    options: { retentionMs: 0 },
  });
  await sink.write(def.createEncoder(uri, {}).encode(FLOWS.map(record)));
  await sink.close();
});

function top(q: Partial<TopQuery>) {
  const db = openFlowsDb(dbPath);
  try {
    return runTop(db, { by: ["src_ip"], order: "bytes", limit: 10, ...q });
  } finally {
    db.close();
  }
}

const simple = (r: ReturnType<typeof top>) =>
  r.rows.map((x) => [x.labels.join(" "), x.bytes, x.packets, x.flows]);

describe("top query", () => {
  it("sums by source address, scaled by the sampling rate", () => {
    const r = top({});
    assert.deepEqual(simple(r), [
      ["198.51.100.7", 50000, 40, 1],
      ["10.0.0.1", 31000, 310, 2],
      ["10.0.0.2", 20000, 200, 1],
      ["172.16.5.5", 7000, 7, 1],
    ]);
    assert.deepEqual(r.total, { bytes: 108000, packets: 557, flows: 5 });
    assert.equal(r.sampled, true);
    assert.equal(r.scaled, true);
    assert.equal(r.maxSamplingRate, 100);
    assert.equal(r.firstMs, T - 3_600_000);
    assert.equal(r.lastMs, T + 3000);
  });

  it("leaves counters alone without scaling", () => {
    const r = top({ scale: false });
    assert.deepEqual(simple(r), [
      ["198.51.100.7", 50000, 40, 1],
      ["172.16.5.5", 7000, 7, 1],
      ["10.0.0.1", 1300, 13, 2],
      ["10.0.0.2", 200, 2, 1],
    ]);
    assert.equal(r.sampled, true);
    assert.equal(r.scaled, false);
    assert.equal(r.total.bytes, 58500);
  });

  it("counts both directions of a conversation together", () => {
    assert.deepEqual(simple(top({ by: ["conversation"] })), [
      ["10.0.0.1 <-> 198.51.100.7", 51000, 50, 2],
      ["10.0.0.1 <-> 8.8.8.8", 30000, 300, 1],
      ["10.0.0.2 <-> 8.8.8.8", 20000, 200, 1],
      ["10.0.0.1 <-> 172.16.5.5", 7000, 7, 1],
    ]);
  });

  it("orders by flows (ties by key), limits, and windows by receive time", () => {
    assert.deepEqual(simple(top({ by: ["dst_ip"], order: "flows", limit: 2 })), [
      ["10.0.0.1", 57000, 47, 2],
      ["8.8.8.8", 50000, 500, 2],
    ]);
    const w = top({ by: ["proto"], fromMs: T, toMs: T + 2500 });
    assert.deepEqual(simple(w), [
      ["TCP", 51000, 50, 2],
      ["UDP", 20000, 200, 1],
    ]);
    assert.deepEqual(w.total, { bytes: 71000, packets: 250, flows: 3 });
    assert.deepEqual(simple(top({ by: ["proto"], order: "packets", fromMs: T + 1 })), [
      ["UDP", 50000, 500, 2],
      ["TCP", 50000, 40, 1],
    ]);
  });

  it("groups by several keys, networks, exporters, interfaces", () => {
    assert.deepEqual(simple(top({ by: ["exporter", "proto"] })), [
      ["192.0.2.1 TCP", 58000, 57, 3],
      ["192.0.2.2 UDP", 50000, 500, 2],
    ]);
    assert.deepEqual(
      simple(top({ by: ["src_net"] })),
      [
        ["10.0.0.0/24", 51000, 510, 3],
        ["-", 57000, 47, 2],
      ].sort((a, b) => Number(b[1]) - Number(a[1])),
    );
    assert.deepEqual(simple(top({ by: ["in_if", "out_if"] })), [["1 2", 108000, 557, 5]]);
    assert.deepEqual(simple(top({ by: ["sgt"] })), [["- -> -", 108000, 557, 5]]);
  });

  it("applies the filter and the exporter", () => {
    assert.deepEqual(simple(top({ by: ["exporter"], filter: "udp and dst port 53" })), [
      ["192.0.2.2", 50000, 500, 2],
    ]);
    assert.deepEqual(simple(top({ filter: "proto tcp and not src net 10.0.0.0/8" })), [
      ["198.51.100.7", 50000, 40, 1],
      ["172.16.5.5", 7000, 7, 1],
    ]);
    assert.deepEqual(simple(top({ exporter: "192.0.2.2", by: ["dst_port"] })), [["53", 50000, 500, 2]]);
    const none = top({ filter: "port 9999" });
    assert.deepEqual(none.rows, []);
    assert.deepEqual(none.total, { bytes: 0, packets: 0, flows: 0 });
    assert.equal(none.sampled, false);
    assert.throws(() => top({ filter: "port x" }), FilterError);
  });
});

describe("series", () => {
  it("buckets flows, bytes and packets per second, every bucket present", () => {
    const db = openFlowsDb(dbPath);
    try {
      const r = runSeries(db, { fromMs: T - 1000, toMs: T + 4000, stepMs: 1000 });
      assert.deepEqual(r.t, [T - 1000, T, T + 1000, T + 2000, T + 3000]);
      assert.deepEqual(r.flowsPerSec, [0, 1, 1, 1, 1]);
      assert.deepEqual(r.bytesPerSec, [0, 1000, 50000, 20000, 30000]);
      assert.deepEqual(r.packetsPerSec, [0, 10, 40, 200, 300]);
      assert.equal(r.scaled, true);
      // Buckets are aligned to the epoch (T is a whole second, so 1 s steps start at T).
      const two = runSeries(db, {
        fromMs: T + 2000,
        toMs: T + 4000,
        stepMs: 1000,
        filter: "udp",
        scale: false,
      });
      assert.deepEqual(two.t, [T + 2000, T + 3000]);
      assert.deepEqual(two.bytesPerSec, [200, 300]);
      assert.deepEqual(two.flowsPerSec, [1, 1]);
      assert.equal(two.scaled, false);
      assert.throws(() => runSeries(db, { fromMs: 0, toMs: T, stepMs: 1000 }), /1 to 2000 points/);
    } finally {
      db.close();
    }
  });
});

describe("time and units", () => {
  it("parses durations and times", () => {
    assert.equal(parseDuration("15m"), 900_000);
    assert.equal(parseDuration("12h"), 43_200_000);
    assert.equal(parseDuration("7d"), 604_800_000);
    assert.equal(parseDuration("30s"), 30_000);
    assert.equal(parseDuration("1.5h"), 5_400_000);
    for (const bad of ["15", "m", "-1m", "0m", "1w", ""]) assert.equal(parseDuration(bad), null, bad);
    assert.equal(parseTime("2026-12-05T06:00:00Z"), Date.UTC(2026, 11, 5, 6));
    assert.equal(parseTime("2026-12-05T07:00:00+01:00"), Date.UTC(2026, 11, 5, 6));
    assert.equal(parseTime("2026-12-05T06:00:00.250Z"), Date.UTC(2026, 11, 5, 6, 0, 0, 250));
    assert.equal(parseTime("2026-12-05 07:30"), new Date(2026, 11, 5, 7, 30).getTime());
    assert.equal(parseTime("2026-12-05T07:30:15"), new Date(2026, 11, 5, 7, 30, 15).getTime());
    assert.equal(parseTime("2026-12-05"), new Date(2026, 11, 5).getTime());
    const now = new Date(2026, 0, 2, 12);
    assert.equal(parseTime("07:30", now), new Date(2026, 0, 2, 7, 30).getTime());
    for (const bad of ["2026-02-30", "25:00", "yesterday", "2026-12-05T06:00:00X", "1764900000"])
      assert.equal(parseTime(bad), null, bad);
  });

  it("writes human units", () => {
    assert.equal(humanNumber(999), "999");
    assert.equal(humanNumber(35_100), "35.1 k");
    assert.equal(humanNumber(1_234_567_890, "B"), "1.2 GB");
    assert.equal(humanNumber(512, "B"), "512 B");
    assert.equal(humanNumber(250_000), "250 k");
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

describe("top command", () => {
  it("finds <data-dir>/flows.db and prints an aligned table with percentages and the sampling note", async () => {
    const r = await cli(["--data-dir", join(dir, "data"), "--by", "src_ip", "-n", "3"]);
    assert.equal(r.err, "");
    assert.equal(r.code, 0);
    const lines = r.out.split("\n");
    assert.match(lines[0]!, /^Top 3 by src_ip, ordered by bytes — all stored flows$/);
    assert.equal(
      lines[1],
      `Total: 108 kB in 557 packets, 5 flows (first ${new Date(T - 3_600_000).toISOString().replace(".000", "")}, last ${new Date(T + 3000).toISOString().replace(".000", "")})`,
    );
    assert.match(lines[2]!, /^Sampled data \(rates up to 1:100\): bytes and packets scaled/);
    assert.deepEqual(lines.slice(4, 8), [
      "SRC_IP        FLOWS  FLOWS%  PACKETS  PACKETS%    BYTES  BYTES%",
      "198.51.100.7      1   20.0%       40      7.2%  50.0 kB   46.3%",
      "10.0.0.1          2   40.0%      310     55.7%  31.0 kB   28.7%",
      "10.0.0.2          1   20.0%      200     35.9%  20.0 kB   18.5%",
    ]);
  });

  it("writes CSV and JSON, takes the filter as arguments, windows with --last and --from/--to", async () => {
    const csv = await cli([
      "--db",
      dbPath,
      "--by",
      "proto,dst_port",
      "--format",
      "csv",
      "--last",
      "30m",
      "udp",
    ]);
    assert.equal(csv.code, 0, csv.err);
    assert.equal(
      csv.out,
      "proto,dst_port,flows,packets,bytes,flows_pct,packets_pct,bytes_pct\n17,53,2,500,50000,100.00,100.00,100.00\n",
    );
    const json = await cli([
      "--db",
      dbPath,
      "--by",
      "dst_ip",
      "--order",
      "packets",
      "--format",
      "json",
      "--no-scale",
      "--from",
      new Date(T).toISOString(),
      "--to",
      new Date(T + 2500).toISOString(),
      "--filter",
      "not dst port 53",
    ]);
    assert.equal(json.code, 0, json.err);
    const doc = JSON.parse(json.out);
    assert.deepEqual(
      doc.rows.map((x: { key: { dst_ip: string }; packets: number }) => [x.key.dst_ip, x.packets]),
      [
        ["10.0.0.1", 40],
        ["198.51.100.7", 10],
      ],
    );
    assert.equal(doc.scaled, false);
    assert.equal(doc.filter, "not dst port 53");
    const exp = await cli(["--db", dbPath, "--by", "exporter", "--format", "csv", "--exporter", "192.0.2.1"]);
    assert.equal(exp.out.split("\n")[1], "192.0.2.1,3,57,58000,100.00,100.00,100.00");
  });

  it("exits 2 on a bad filter with a caret, and on bad arguments", async () => {
    const bad = await cli(["--db", dbPath, "proto", "tcp", "and", "dst", "port", "x"]);
    assert.equal(bad.code, 2);
    assert.equal(
      bad.err,
      `clarion-collector top: bad filter: expected a number after "port", found "x" (at column 24)\n  proto tcp and dst port x\n                         ^\n`,
    );
    assert.equal((await cli(["--db", dbPath, "--by", "colour"])).code, 2);
    assert.equal((await cli(["--db", dbPath, "--last", "soon"])).code, 2);
    assert.equal((await cli(["--db", dbPath, "--last", "5m", "--from", "07:00"])).code, 2);
    assert.equal((await cli(["--db", dbPath, "-n", "0"])).code, 2);
    assert.equal((await cli(["--db", dbPath, "--order", "colour"])).code, 2);
    const missing = await cli(["--db", join(dir, "nope.db")]);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /no database at/);
  });

  it("reads without creating: a data directory that does not exist stays absent", async () => {
    const absent = join(dir, "never-made");
    const r = await cli(["--data-dir", absent]);
    assert.equal(r.code, 1);
    assert.match(r.err, /no database at/);
    assert.equal(existsSync(absent), false);
  });
});

describe("top by VRF and application (issue 18)", () => {
  const vrfDb = join(dir, "vrf", "flows.db");
  before(async () => {
    const uri = `sqlite:${vrfDb}`;
    const def = findSink(uri);
    const sink = await def.create(uri, { dataDir: dir, logger: quiet, options: { retentionMs: 0 } });
    const flow = (
      bytes: number,
      inVrf: [number, string] | null,
      outVrf: [number, string] | null,
      app: string,
    ) => {
      const r = new FlowRecord();
      r.type = "IPFIX";
      r.time_received_ms = T;
      r.sampler_address = "192.0.2.1";
      r.src_addr = "10.0.0.1";
      r.dst_addr = "10.0.0.2";
      r.proto = 6;
      r.bytes = bytes;
      r.packets = 1;
      if (inVrf !== null) [r.in_vrf_id, r.in_vrf_name] = inVrf;
      if (outVrf !== null) [r.out_vrf_id, r.out_vrf_name] = outVrf;
      r.application_name = app;
      return r;
    };
    await sink.write(
      def.createEncoder(uri, {}).encode([
        flow(1000, [1, "CUST-A"], [3, "INET"], "https"),
        flow(2000, [1, "CUST-A"], [7, ""], "https"), // VRF 7 has no name: grouped by its id
        flow(400, [2, "CUST-B"], [7, ""], "dns"),
        flow(30, null, null, ""), // no VRF, no application: "-"
      ]),
    );
    await sink.close();
  });

  const run = (q: Partial<TopQuery>) => {
    const db = openFlowsDb(vrfDb);
    try {
      return simple(runTop(db, { by: ["in_vrf"], order: "bytes", limit: 10, ...q }));
    } finally {
      db.close();
    }
  };

  it("groups by the VRF name when known, else by its id, and by application name", () => {
    assert.deepEqual(run({}), [
      ["CUST-A", 3000, 2, 2],
      ["CUST-B", 400, 1, 1],
      ["-", 30, 1, 1],
    ]);
    assert.deepEqual(run({ by: ["out_vrf"] }), [
      ["7", 2400, 2, 2],
      ["INET", 1000, 1, 1],
      ["-", 30, 1, 1],
    ]);
    assert.deepEqual(run({ by: ["application", "in_vrf"] }), [
      ["https CUST-A", 3000, 2, 2],
      ["dns CUST-B", 400, 1, 1],
      ["- -", 30, 1, 1],
    ]);
  });

  it("filters by VRF (name or id, either side or in/out) and application", () => {
    assert.deepEqual(run({ filter: "vrf INET" }), [["CUST-A", 1000, 1, 1]]);
    assert.deepEqual(run({ by: ["out_vrf"], filter: "out vrf 7 and app https" }), [["7", 2000, 1, 1]]);
    assert.deepEqual(run({ filter: "in vrf CUST-B or not app https" }), [
      ["CUST-B", 400, 1, 1],
      ["-", 30, 1, 1],
    ]);
    assert.deepEqual(run({ filter: "in_vrf 1" }), [["CUST-A", 3000, 2, 2]]);
    assert.deepEqual(run({ filter: "vrf cust-a" }), [], "names compare exactly");
  });

  it("takes the keys on the command line", async () => {
    const r = await cli(["--db", vrfDb, "--by", "in_vrf,application", "--format", "csv", "vrf", "CUST-A"]);
    assert.equal(r.code, 0, r.err);
    assert.equal(
      r.out,
      "in_vrf,application,flows,packets,bytes,flows_pct,packets_pct,bytes_pct\nCUST-A,https,2,2,3000,100.00,100.00,100.00\n",
    );
  });
});
