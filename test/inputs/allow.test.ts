/**
 * The exporter allow-list (issue 12 item 3): parsing (addresses and prefixes, IPv4 and IPv6), the
 * --allow-exporters / CLARION_COLLECTOR_ALLOW_EXPORTERS / allow_exporters settings, and receive workers that
 * drop datagrams from other sources before decoding, counted per source with a bound.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { loadConfig } from "../../src/config/index.ts";
import { ConfigError } from "../../src/core/errors.ts";
import { createLogger } from "../../src/core/log.ts";
import {
  MAX_REFUSED_SOURCES,
  parseAllowEntry,
  RefusedSources,
  SourceFilter,
} from "../../src/inputs/allow.ts";
import { UdpInput } from "../../src/inputs/udp.ts";
import type { WorkerStats } from "../../src/inputs/worker.ts";
import { CollectorMetrics } from "../../src/ops/metrics.ts";
import { netflowV5, send, udpClient, waitFor } from "../helpers/service.ts";

const dir = mkdtempSync(join(tmpdir(), "clarion-allow-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("allow-list entries", () => {
  it("parses addresses and prefixes of both families and refuses the rest", () => {
    assert.deepEqual(parseAllowEntry("192.0.2.1"), { family: "ipv4", address: "192.0.2.1", prefix: 32 });
    assert.deepEqual(parseAllowEntry(" 10.0.0.0/8 "), { family: "ipv4", address: "10.0.0.0", prefix: 8 });
    assert.deepEqual(parseAllowEntry("2001:db8::/32"), { family: "ipv6", address: "2001:db8::", prefix: 32 });
    assert.deepEqual(parseAllowEntry("::1"), { family: "ipv6", address: "::1", prefix: 128 });
    assert.deepEqual(parseAllowEntry("::ffff:192.0.2.7"), {
      family: "ipv4",
      address: "192.0.2.7",
      prefix: 32,
    });
    for (const bad of [
      "",
      "host.example",
      "10.0.0.0/33",
      "2001:db8::/129",
      "10.0.0.0/",
      "10.0.0.0/x",
      "300.1.1.1",
    ])
      assert.equal(parseAllowEntry(bad), null, bad);
  });

  it("matches sources against addresses and prefixes; an empty list allows everyone", () => {
    const f = new SourceFilter(["192.0.2.1", "10.0.0.0/8", "2001:db8::/32", "::ffff:198.51.100.9"]);
    for (const ok of ["192.0.2.1", "10.255.1.2", "2001:db8:1::5", "198.51.100.9"])
      assert.ok(f.allows(ok), ok);
    for (const no of ["192.0.2.2", "11.0.0.1", "2001:db9::1", "::1", "not-an-ip"])
      assert.equal(f.allows(no), false, no);
    assert.ok(f.allows("::ffff:10.0.0.1"), "an IPv4-mapped source matches its IPv4 prefix");
    // the same answers from the decision cache
    assert.ok(f.allows("10.255.1.2"));
    assert.equal(f.allows("11.0.0.1"), false);
    assert.ok(new SourceFilter([]).allows("203.0.113.1"));
    assert.throws(() => new SourceFilter(["10.0.0.0/40"]), /not an IP address or prefix/);
  });

  it("counts refused datagrams per source, at most MAX_REFUSED_SOURCES of them, the rest as other", () => {
    const r = new RefusedSources();
    for (let i = 0; i < MAX_REFUSED_SOURCES + 500; i++) r.count("udp:2055", `10.${i >> 8}.${i & 255}.1`, 100);
    r.count("udp:2055", "10.0.0.1", 50);
    const list = r.list();
    assert.equal(list.length, MAX_REFUSED_SOURCES + 1);
    assert.deepEqual(
      list.find((c) => c.exporter === "10.0.0.1"),
      { listener: "udp:2055", exporter: "10.0.0.1", datagrams: 2, bytes: 150 },
    );
    assert.deepEqual(
      list.find((c) => c.exporter === "other"),
      { listener: "udp:2055", exporter: "other", datagrams: 500, bytes: 50_000 },
    );
  });
});

describe("--allow-exporters setting", () => {
  const load = (argv: string[], env: Record<string, string> = {}) => loadConfig(argv, env, { cwd: dir });

  it("defaults to every source; reads the flag, the variable and the file key (list or string)", () => {
    assert.deepEqual(load([]).allowExporters, []);
    assert.deepEqual(load(["--allow-exporters", "192.0.2.1, 10.0.0.0/8"]).allowExporters, [
      "192.0.2.1",
      "10.0.0.0/8",
    ]);
    assert.deepEqual(load([], { CLARION_COLLECTOR_ALLOW_EXPORTERS: "2001:db8::/32,::1" }).allowExporters, [
      "2001:db8::/32",
      "::1",
    ]);
    const file = join(dir, "c.json");
    writeFileSync(file, JSON.stringify({ allow_exporters: ["10.1.0.0/16", "192.0.2.9"] }));
    assert.deepEqual(load(["--config", file]).allowExporters, ["10.1.0.0/16", "192.0.2.9"]);
  });

  it("stops startup on a bad entry, naming the setting", () => {
    assert.throws(
      () => load(["--allow-exporters", "10.0.0.0/8,router.example"]),
      (e: unknown) => e instanceof ConfigError && /--allow-exporters/.test(e.message),
    );
    assert.throws(
      () => load([], { CLARION_COLLECTOR_ALLOW_EXPORTERS: "10.0.0.0/99" }),
      (e: unknown) => e instanceof ConfigError && /CLARION_COLLECTOR_ALLOW_EXPORTERS/.test(e.message),
    );
  });
});

async function start(allowExporters: string[], bindHost: string, stats: WorkerStats[]) {
  let records = 0;
  const input = await UdpInput.start({
    ports: [{ port: 0, role: "netflow" }],
    bindHost,
    workers: 1,
    state: [],
    logger: createLogger({ level: "silent" }),
    onBatch: (b) => {
      records += b.records;
    },
    onStats: (s) => stats.push(s),
    onWorkerExit: () => {},
    worker: {
      udpRcvbuf: 0,
      allowExporters,
      outputs: [{ uri: "jsonl:-", options: {} }],
      batchSize: 1,
      batchIntervalMs: 600_000,
      decoder: {},
      logLevel: "silent",
      statsIntervalMs: 20,
      tickIntervalMs: 1000,
    },
  });
  return { input, records: () => records };
}

describe("receive workers with an allow-list", () => {
  it("drop datagrams from other sources before decoding and count them per source, v4 and v6", async () => {
    for (const [host, family, refuse, allow] of [
      ["127.0.0.1", "udp4", ["127.0.0.2", "2001:db8::/32"], ["10.0.0.0/8", "127.0.0.0/8"]],
      ["::1", "udp6", ["127.0.0.1", "2001:db8::/32"], ["2001:db8::/32", "::1"]],
    ] as const) {
      let client: Awaited<ReturnType<typeof udpClient>>;
      try {
        client = await udpClient(family, host);
      } catch {
        continue; // no IPv6 loopback here
      }
      const stats: WorkerStats[] = [];
      const { input, records } = await start([...refuse], host, stats);
      const port = input.listeners[0]!.port;
      try {
        for (let i = 0; i < 5; i++) await send(client, netflowV5(i, 1000, 3), port, host);
        await waitFor("5 refused", async () => (stats.at(-1)?.refused ?? []).some((c) => c.datagrams === 5));
        const s = stats.at(-1)!;
        assert.deepEqual(
          s.refused,
          [{ listener: "udp:0", exporter: host, datagrams: 5, bytes: 5 * (24 + 48 * 3) }].map((c) => ({
            ...c,
            listener: s.refused![0]!.listener,
          })),
        );
        assert.equal(s.decoder.datagrams, 0, "nothing decoded");
        assert.deepEqual(s.receive, []);
        assert.equal(records(), 0);
        // the metrics count them per source, in Prometheus and in the JSON totals
        const m = new CollectorMetrics(
          {
            queues: () => [],
            listeners: () => [],
            kernel: async () => new Map(),
            workers: () => ({ configured: 1, listening: 1 }),
          },
          "test",
        );
        m.workerStats(s);
        assert.equal(m.totals.ra, 5);
        assert.match(
          await m.prometheus(),
          new RegExp(`clarion_collector_refused_datagrams_total\\{listener="[^"]+",exporter="${host}"\\} 5`),
        );
      } finally {
        await input.stop();
      }
      const stats2: WorkerStats[] = [];
      const ok = await start([...allow], host, stats2);
      try {
        await send(client, netflowV5(0, 1000, 3), ok.input.listeners[0]!.port, host);
        await waitFor("3 records decoded", async () => ok.records() === 3);
        assert.deepEqual(stats2.at(-1)?.refused ?? [], []);
      } finally {
        client.close();
        await ok.input.stop();
      }
    }
  });
});
