import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, describe, it } from "node:test";
import { FlowRecord } from "../../src/core/flow.ts";
import { networkString } from "../../src/encode/goflow2.ts";
import { InterfaceCounters } from "../../src/protocols/sflow5.ts";
import { findSink } from "../../src/sinks/index.ts";
import { createSqliteEncoder } from "../../src/sinks/sqlite/columnar.ts";
import { parseSqliteOptions, parseSqliteUri, SqliteSink } from "../../src/sinks/sqlite/sink.ts";

const dir = mkdtempSync(join(tmpdir(), "clarion-sqlite-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const quiet = { info() {}, warn() {}, error() {} };

function record(i: number, timeMs: number, exporter = "192.0.2.1"): FlowRecord {
  const r = new FlowRecord();
  r.type = "IPFIX";
  r.time_received_ms = timeMs;
  r.time_flow_start_ms = timeMs - 1000;
  r.time_flow_end_ms = timeMs - 10.5;
  r.sampler_address = exporter;
  r.switch_id = exporter;
  r.sequence_num = i;
  r.src_addr = "10.0.0.1";
  r.dst_addr = "2001:db8::2";
  r.src_port = 1000 + i;
  r.dst_port = 443;
  r.proto = 6;
  r.etype = 0x0800;
  r.bytes = 100 * (i + 1);
  r.packets = i + 1;
  r.src_mac = 0x0a0b0c0d0e0f;
  r.src_net = 8;
  r.tcp_flags = 0x12;
  return r;
}

function rows(sink: SqliteSink, sql: string): Record<string, unknown>[] {
  const stmt = sink.db.prepare(sql);
  stmt.setReadBigInts(true);
  return stmt.all() as Record<string, unknown>[];
}

{
  const sub = "db";
  describe("sqlite sink", () => {
    it("stores rows with the right values, WAL on, indexed, schema versioned", async () => {
      const uri = `sqlite:${join(dir, sub, "flows.db")}`;
      const def = findSink(uri);
      const sink = (await def.create(uri, {
        dataDir: dir,
        logger: quiet,
        options: {},
      })) as SqliteSink;
      assert.equal(sink.path, join(dir, sub, "flows.db"));
      // relative paths are relative to the working directory; `sqlite:` alone is <data-dir>/flows.db
      assert.equal(parseSqliteUri("sqlite:a/b.db", "/srv/data"), resolve("a/b.db"));
      assert.equal(parseSqliteUri("sqlite:", "/srv/data"), join("/srv/data", "flows.db"));
      assert.equal(parseSqliteUri("sqlite:///var/lib/f.db", "/srv/data"), "/var/lib/f.db");
      const r = record(0, 1700000000123.7);
      r.src_sgt = 7;
      r.flow_direction = 1;
      r.in_if_name = "Gi0/1";
      r.extra = { postNATSourceIPv4Address: "1.2.3.4", big: 2n ** 63n - 1n, "9.1232": 'q"' };
      r.post_nat_src_addr = "203.0.113.5";
      r.post_nat_src_port = 40001;
      r.reverse_bytes = 2n ** 60n;
      r.reverse_packets = 3;
      r.in_vrf_id = 5;
      r.out_vrf_id = 6;
      r.in_vrf_name = "RED";
      r.out_vrf_name = "BLUE";
      r.mpls_vpn_rd = "0:65000:5";
      r.application_name = "ssh";
      await sink.write(def.createEncoder(uri, {}).encode([r, record(1, 1700000000200)]));
      const [a, b] = rows(sink, "SELECT * FROM flows ORDER BY id");
      assert.deepEqual(
        { ...a },
        {
          id: 1n,
          time_received: 1700000000123n,
          time_flow_start: 1699999999123n,
          time_flow_end: 1700000000113n,
          exporter: "192.0.2.1",
          type: "IPFIX",
          sequence_num: 0n,
          sampling_rate: 0n,
          src_ip: "10.0.0.1",
          dst_ip: "2001:db8::2",
          src_port: 1000n,
          dst_port: 443n,
          protocol: 6n,
          etype: 2048n,
          bytes: 100n,
          packets: 1n,
          in_if: 0n,
          out_if: 0n,
          src_mac: "0a:0b:0c:0d:0e:0f",
          dst_mac: null,
          src_vlan: 0n,
          dst_vlan: 0n,
          vlan_id: 0n,
          ip_tos: 0n,
          tcp_flags: 18n,
          icmp_type: 0n,
          icmp_code: 0n,
          src_as: 0n,
          dst_as: 0n,
          next_hop: null,
          src_net: "10.0.0.0/8",
          dst_net: null,
          src_sgt: 7n,
          dst_sgt: null,
          flow_direction: 1n,
          in_if_name: "Gi0/1",
          out_if_name: null,
          observation_domain_id: 0n,
          extra: '{"postNATSourceIPv4Address":"1.2.3.4","big":9223372036854775807,"9.1232":"q\\""}',
          post_nat_src_ip: "203.0.113.5",
          post_nat_dst_ip: null,
          post_nat_src_port: 40001n,
          post_nat_dst_port: null,
          reverse_bytes: 2n ** 60n,
          reverse_packets: 3n,
          in_vrf_id: 5n,
          out_vrf_id: 6n,
          in_vrf_name: "RED",
          out_vrf_name: "BLUE",
          mpls_vpn_rd: "0:65000:5",
          application_name: "ssh",
        },
      );
      assert.equal(b!.extra, null);
      assert.equal(b!.post_nat_src_ip, null);
      assert.equal(b!.reverse_bytes, null);
      assert.equal(b!.bytes, 200n);
      assert.equal(
        (sink.db.prepare("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode,
        "wal",
      );
      assert.equal((sink.db.prepare("PRAGMA synchronous").get() as { synchronous: number }).synchronous, 1);
      assert.equal(
        (sink.db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version,
        1,
      );
      const indexes = rows(
        sink,
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'flows'",
      ).map((x) => x.name);
      assert.ok(indexes.includes("flows_time_received"));
      // the (exporter, time) index costs ~30 % of the insert rate: opt-in (exporterIndex: true)
      assert.ok(!indexes.includes("flows_exporter_time"));
      const plan = rows(sink, "EXPLAIN QUERY PLAN SELECT count(*) FROM flows WHERE time_received > 5");
      assert.match(String(plan[0]!.detail), /flows_time_received/);
      await sink.close();
      // Reopening an existing database keeps its rows.
      const again = new SqliteSink("again", join(dir, sub, "flows.db"), parseSqliteOptions({}));
      assert.equal(rows(again, "SELECT count(*) AS n FROM flows")[0]!.n, 2n);
      await again.close();
    });

    it("keeps counters above 2^53 exact and saturates above 2^63−1 with the exact value in extra", async () => {
      const sink = new SqliteSink("big", join(dir, `big-${sub}.db`), parseSqliteOptions({}));
      const a = record(0, 1000);
      a.bytes = 2n ** 53n + 1n;
      a.packets = 2n ** 62n + 3n;
      const b = record(1, 2000);
      b.bytes = 2n ** 64n - 1n;
      b.packets = 2 ** 53;
      await sink.write(createSqliteEncoder("big").encode([a, b]));
      const [x, y] = rows(sink, "SELECT bytes, packets, typeof(bytes) AS t, extra FROM flows ORDER BY id");
      assert.deepEqual(
        { ...x },
        { bytes: 9007199254740993n, packets: 4611686018427387907n, t: "integer", extra: null },
      );
      assert.deepEqual(
        { ...y },
        {
          bytes: 9223372036854775807n,
          packets: 9007199254740992n,
          t: "integer",
          extra: '{"bytes":18446744073709551615}',
        },
      );
      assert.equal(sink.stats.saturated, 1);
      await sink.close();
    });

    it("upserts the exporters table per batch", async () => {
      const sink = new SqliteSink("exp", join(dir, `exp-${sub}.db`), parseSqliteOptions({}));
      const enc = createSqliteEncoder("exp");
      await sink.write(enc.encode([record(0, 5000), record(1, 4000), record(2, 6000, "192.0.2.9")]));
      await sink.write(enc.encode([record(3, 9000), record(4, 3000)]));
      const ex = rows(sink, "SELECT * FROM exporters ORDER BY exporter");
      assert.deepEqual(
        ex.map((e) => ({ ...e })),
        [
          {
            exporter: "192.0.2.1",
            first_seen: 3000n,
            last_seen: 9000n,
            flows: 4n,
            bytes: 1200n,
            packets: 12n,
          },
          { exporter: "192.0.2.9", first_seen: 6000n, last_seen: 6000n, flows: 1n, bytes: 300n, packets: 3n },
        ],
      );
      await sink.close();
    });
  });
}

describe("sqlite sink columnar batches", () => {
  it("stores non-ASCII text, NULLs and constants exactly across chunk boundaries", async () => {
    const sink = new SqliteSink("many", join(dir, "many.db"), parseSqliteOptions({}));
    const n = 2500; // chunks of 1024, 1024, 256, 128, 64, 16, 8, 4
    const recs = Array.from({ length: n }, (_, i) => {
      const r = record(i, 1_700_000_000_000 + Math.floor(i / 7), `192.0.2.${1 + (i % 3)}`);
      r.src_addr = `10.${i >> 8}.${i & 255}.${i % 5}`;
      r.dst_addr = i % 11 === 0 ? "" : "2001:db8::2";
      r.src_sgt = i >= 1100 && i < 1200 ? i : null;
      r.dst_mac = i < 1024 ? 0 : 0x020000000000 + i;
      r.in_if_name = i % 2 === 0 ? "Gi0/1 – uplink ü" : "";
      if (i === 2049) r.extra = { note: "naïve ✓", n: 1 };
      if (i === 1500) r.bytes = 2n ** 63n + 5n;
      if (i === 700) r.packets = 2n ** 60n;
      return r;
    });
    const enc = createSqliteEncoder("many");
    await sink.write(enc.encode(recs));
    await sink.write(enc.encode(recs.slice(0, 3))); // a second, smaller batch through the same encoder
    const got = rows(
      sink,
      "SELECT id, time_received, exporter, src_ip, dst_ip, src_port, bytes, packets, src_sgt, dst_mac, in_if_name, extra, src_net FROM flows ORDER BY id",
    );
    assert.equal(got.length, n + 3);
    for (let i = 0; i < n + 3; i++) {
      const r = recs[i < n ? i : i - n]!;
      const g = got[i]!;
      const want = {
        id: BigInt(i + 1),
        time_received: BigInt(Math.floor(r.time_received_ms)),
        exporter: r.sampler_address,
        src_ip: r.src_addr,
        dst_ip: r.dst_addr === "" ? null : r.dst_addr,
        src_port: BigInt(r.src_port),
        bytes: typeof r.bytes === "bigint" && r.bytes > 2n ** 63n - 1n ? 2n ** 63n - 1n : BigInt(r.bytes),
        packets: BigInt(r.packets),
        src_sgt: r.src_sgt === null ? null : BigInt(r.src_sgt),
        dst_mac:
          r.dst_mac === 0
            ? null
            : `02:00:00:00:${((r.dst_mac >> 8) & 255).toString(16).padStart(2, "0")}:${(r.dst_mac & 255).toString(16).padStart(2, "0")}`,
        in_if_name: r.in_if_name === "" ? null : r.in_if_name,
        extra: i === 2049 ? '{"note":"naïve ✓","n":1}' : i === 1500 ? '{"bytes":9223372036854775813}' : null,
        src_net: `${r.src_addr.split(".").slice(0, 1).join(".")}.0.0.0/8`,
      };
      assert.deepEqual({ ...g }, want, `row ${i}`);
    }
    assert.equal(sink.stats.saturated, 1);
    const ex = rows(sink, "SELECT exporter, flows FROM exporters ORDER BY exporter");
    assert.deepEqual(
      ex.map((e) => [e.exporter, e.flows]),
      [
        ["192.0.2.1", 835n],
        ["192.0.2.2", 834n],
        ["192.0.2.3", 834n],
      ],
    );
    await sink.close();
  });

  it("stores src_net/dst_net as GoFlow2 renders them, for every prefix length and address kind", async () => {
    const sink = new SqliteSink("nets", ":memory:", parseSqliteOptions({}));
    const addrs = [
      "10.1.2.3",
      "255.255.255.255",
      "0.0.0.1",
      "192.168.77.200",
      "2001:db8:1:2::5",
      "not-an-ip",
    ];
    // an IPv4 address as the decoders leave it: a number (the text is rendered only when read)
    const v4 = (text: string): number =>
      /^\d+\.\d+\.\d+\.\d+$/.test(text) ? text.split(".").reduce((n, o) => n * 256 + Number(o), 0) : -1;
    const recs: FlowRecord[] = [];
    for (const len of [...Array.from({ length: 35 }, (_, i) => i), 1.5, -1, Number.NaN])
      for (const a of addrs)
        for (let rep = 0; rep < 4; rep++) {
          // repeats (same network twice in a row), alternations between the two sides, text and numbers
          const r = record(recs.length, 1_700_000_000_000);
          r.src_addr = a;
          r.src_net = len;
          r.dst_addr = rep % 2 === 0 ? "10.1.2.4" : a;
          r.dst_net = rep % 2 === 0 ? len : 128 - len;
          if (rep >= 2) {
            if (v4(r.src_addr) >= 0) r.src_v4 = v4(r.src_addr);
            if (v4(r.dst_addr) >= 0) r.dst_v4 = v4(r.dst_addr);
            r.next_hop_v4 = rep === 2 ? 0 : 0xc0a80001;
          }
          recs.push(r);
        }
    assert.ok(recs.some((r) => r.src_v4 === 0xffffffff && r.src_addr === "255.255.255.255"));
    await sink.write(createSqliteEncoder("nets").encode(recs));
    const got = rows(sink, "SELECT src_net, dst_net FROM flows ORDER BY id");
    const ips = rows(sink, "SELECT src_ip, dst_ip, next_hop FROM flows ORDER BY id");
    recs.forEach((r, i) => {
      const text = (s: string): string | null => (s === "" ? null : s);
      assert.deepEqual(
        { ...ips[i] },
        { src_ip: text(r.src_addr), dst_ip: text(r.dst_addr), next_hop: text(r.next_hop) },
        `row ${i}`,
      );
    });
    const want = (addr: string, len: number): string | null => {
      if (len <= 0 || addr === "") return null;
      const t = networkString(addr, len);
      return t === '"invalid Prefix"' ? null : t.slice(1, -1);
    };
    assert.equal(got.length, recs.length);
    recs.forEach((r, i) => {
      assert.deepEqual(
        { ...got[i] },
        { src_net: want(r.src_addr, r.src_net), dst_net: want(r.dst_addr, r.dst_net) },
        `row ${i}: ${r.src_addr}/${r.src_net} ${r.dst_addr}/${r.dst_net}`,
      );
    });
    assert.equal(got[4 * 24 * addrs.length]!.src_net, "10.1.2.0/24");
    assert.equal(got[4 * 24 * addrs.length + 2]!.src_net, "10.1.2.0/24");
    await sink.close();
  });

  it("uses large pages for a new database and keeps working on an existing 4 KiB-page one", async () => {
    const fresh = new SqliteSink("fresh", join(dir, "fresh.db"), parseSqliteOptions({}));
    assert.equal((fresh.db.prepare("PRAGMA page_size").get() as { page_size: number }).page_size, 32768);
    await fresh.close();
    const path = join(dir, "old-pages.db");
    const old = new DatabaseSync(path);
    old.exec("PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE t(x)");
    old.close();
    const sink = new SqliteSink("old", path, parseSqliteOptions({}));
    assert.equal((sink.db.prepare("PRAGMA page_size").get() as { page_size: number }).page_size, 4096);
    await sink.write(createSqliteEncoder("old").encode([record(0, 1000), record(1, 2000)]));
    assert.equal(rows(sink, "SELECT count(*) AS n FROM flows")[0]!.n, 2n);
    await sink.close();
  });

  it("adds the NAT and biflow columns to a flows table written before them, and writes to it", async () => {
    const path = join(dir, "v1-columns.db");
    const old = new DatabaseSync(path);
    // the flows table as the collector created it before issue 19 (no NAT / reverse columns)
    old.exec(
      "CREATE TABLE flows (id INTEGER PRIMARY KEY, time_received INTEGER NOT NULL, time_flow_start INTEGER, time_flow_end INTEGER, exporter TEXT NOT NULL, type TEXT, sequence_num INTEGER, sampling_rate INTEGER, src_ip TEXT, dst_ip TEXT, src_port INTEGER, dst_port INTEGER, protocol INTEGER, etype INTEGER, bytes INTEGER, packets INTEGER, in_if INTEGER, out_if INTEGER, src_mac TEXT, dst_mac TEXT, src_vlan INTEGER, dst_vlan INTEGER, vlan_id INTEGER, ip_tos INTEGER, tcp_flags INTEGER, icmp_type INTEGER, icmp_code INTEGER, src_as INTEGER, dst_as INTEGER, next_hop TEXT, src_net TEXT, dst_net TEXT, src_sgt INTEGER, dst_sgt INTEGER, flow_direction INTEGER, in_if_name TEXT, out_if_name TEXT, observation_domain_id INTEGER, extra TEXT); INSERT INTO flows(time_received, exporter) VALUES (1, 'old'); PRAGMA user_version = 1",
    );
    old.close();
    const sink = new SqliteSink("v1", path, parseSqliteOptions({}));
    const r = record(0, 1000);
    r.post_nat_dst_addr = "198.51.100.1";
    r.post_nat_dst_port = 8443;
    await sink.write(createSqliteEncoder("v1").encode([r]));
    const [a, b] = rows(
      sink,
      "SELECT post_nat_dst_ip, post_nat_dst_port, reverse_bytes FROM flows ORDER BY id",
    );
    assert.deepEqual({ ...a }, { post_nat_dst_ip: null, post_nat_dst_port: null, reverse_bytes: null });
    assert.deepEqual(
      { ...b },
      { post_nat_dst_ip: "198.51.100.1", post_nat_dst_port: 8443n, reverse_bytes: null },
    );
    await sink.close();
  });

  it("prepares one INSERT per shape and still inserts right once the statement cache is emptied", async () => {
    const sink = new SqliteSink("shapes", join(dir, "shapes.db"), parseSqliteOptions({}));
    const enc = createSqliteEncoder("shapes");
    const varying = ["src_port", "dst_port", "in_if", "out_if", "src_as", "dst_as", "vlan_id"] as const;
    let want = 0n;
    // 128 batches of 2 rows, each varying another subset of 7 columns: 128 shapes, past the cache's 64
    for (let k = 0; k < 128; k++) {
      const pair = [record(2 * k, 1000), record(2 * k, 1000)];
      pair.forEach((r, i) => {
        for (const [b, c] of varying.entries()) r[c] = (k >> b) & 1 ? k * 10 + i : 0;
        r.in_vrf_id = k;
        r.application_name = `app${k}`;
      });
      for (const r of pair) for (const c of varying) want += BigInt(r[c]);
      await sink.write(enc.encode(pair));
    }
    const [got] = rows(
      sink,
      `SELECT count(*) AS n, ${varying.map((c) => `sum(${c})`).join(" + ")} AS total, count(DISTINCT in_vrf_id || application_name) AS shapes FROM flows WHERE in_vrf_id = CAST(substr(application_name, 4) AS INTEGER)`,
    );
    assert.deepEqual({ ...got }, { n: 256n, total: want, shapes: 128n });
    // the same shape (the last column, application_name, varying) in chunks of 16 and 8 rows (a key of
    // mask × 16 + log2(rows) would have mixed them up: not exact with 50 columns)
    const many = Array.from({ length: 24 }, (_x, i) => {
      const r = record(i, 2000);
      r.application_name = `app${i}`;
      return r;
    });
    await sink.write(enc.encode(many));
    assert.deepEqual(
      rows(
        sink,
        "SELECT application_name AS a, src_port AS p FROM flows WHERE time_received = 2000 ORDER BY id",
      ).map((r) => [r.a, r.p]),
      many.map((r) => [r.application_name, BigInt(r.src_port)]),
    );
    await sink.close();
  });

  it("rejects bytes that are not a columnar batch", async () => {
    const sink = new SqliteSink("bad", join(dir, "bad.db"), parseSqliteOptions({}));
    const data = new TextEncoder().encode('{"s":0,"e":[],"r":[]}');
    await assert.rejects(
      sink.write({ sink: "bad", records: 1, parts: [{ key: "", records: 1, data }], oldestMs: 0 }),
      /not a columnar batch/,
    );
    assert.equal(sink.stats.errors, 1);
    await sink.close();
  });
});

describe("sqlite sink retention and counters", () => {
  it("deletes rows older than the retention in chunks and keeps newer ones", async () => {
    const sink = new SqliteSink(
      "ret",
      join(dir, "ret.db"),
      parseSqliteOptions({ retentionMs: 60_000, retentionChunkRows: 7 }),
    );
    const now = 10_000_000;
    const old = Array.from({ length: 30 }, (_, i) => record(i, now - 120_000 + i));
    const fresh = Array.from({ length: 5 }, (_, i) => record(i, now - 1000 + i));
    await sink.write(createSqliteEncoder("ret").encode([...old, ...fresh]));
    sink.insertCounters([
      { time: now - 120_000, agent: "192.0.2.1", ifIndex: 1, inOctets: 1n },
      {
        time: now,
        agent: "192.0.2.1",
        ifIndex: 1,
        inOctets: 2n ** 64n - 1n,
        ifStatus: 3,
        ifSpeed: 10_000_000_000,
      },
    ]);
    const c = new InterfaceCounters();
    c.time_received_ms = now - 120_000;
    c.sampler_address = "192.0.2.2";
    c.has_generic = true;
    c.if_index = 5;
    assert.equal(
      sink.insertCounters([c, new InterfaceCounters()]),
      1,
      "records without generic counters are skipped",
    );
    const deleted = await sink.runRetention(now);
    assert.equal(deleted, 32);
    assert.deepEqual(
      rows(sink, "SELECT time_received FROM flows ORDER BY time_received").map((r) => r.time_received),
      fresh.map((r) => BigInt(r.time_received_ms)),
    );
    const counters = rows(
      sink,
      "SELECT time, in_octets, if_admin_up, if_oper_up, if_speed FROM interface_counters",
    );
    assert.deepEqual(
      counters.map((c) => ({ ...c })),
      [
        {
          time: BigInt(now),
          in_octets: 9223372036854775807n,
          if_admin_up: 1n,
          if_oper_up: 1n,
          if_speed: 10000000000n,
        },
      ],
    );
    assert.equal(await sink.runRetention(now), 0);
    assert.equal(sink.stats.retentionDeleted, 32);
    await sink.close();
  });

  it("fails fast on a bad path or option, naming it", async () => {
    const file = join(dir, "a-file");
    writeFileSync(file, "");
    const uri = `sqlite:${file}/x.db`;
    const def = findSink(uri);
    await assert.rejects(def.create(uri, { dataDir: dir, logger: quiet, options: {} }), /a-file\/x\.db/);
    await assert.rejects(
      def.create("sqlite:o.db", { dataDir: dir, logger: quiet, options: { retentionMs: -1 } }),
      /retentionMs/,
    );
    assert.throws(() => findSink("nosuch:x"), /unknown sink scheme "nosuch:".*jsonl:.*sqlite:/);
  });
});
