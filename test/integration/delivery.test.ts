/**
 * Reliable delivery end to end (issue 5): the real CLI with a flows-v1 output and the Clarion output of
 * --backend-url, NetFlow v5 datagrams in, a fake backend out (test/helpers/fake-backend.ts). Every flow is
 * identified by its source port. Checks: exactly once (after de-duplicating by idempotency key, as a backend
 * does), Bearer key and collector id, gzip, a backend outage (refused connections, then 503s) with /health
 * degraded while spooling, SIGKILL during the outage and a restart on the same --data-dir, spool gauges.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { Spool, type SpooledEntry } from "../../src/pipeline/spool.ts";
import { FakeBackend, type ReceivedRequest } from "../helpers/fake-backend.ts";
import {
  dirs,
  getJson,
  loopbackArgs,
  netflowV5,
  type Service,
  send,
  startService,
  udpClient,
  waitFor,
} from "../helpers/service.ts";

const backends: FakeBackend[] = [];
after(async () => {
  await Promise.allSettled(backends.map((b) => b.close()));
});

async function backend(): Promise<FakeBackend> {
  const b = new FakeBackend();
  await b.up();
  backends.push(b);
  return b;
}

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "clarion-delivery-"));
  dirs.push(d);
  return d;
}

const COMMON = [...loopbackArgs(), "--workers", "1", "--batch-size", "1000", "--batch-interval", "0.3"];

/** Sends flows with src ports from..from+n-1, 30 per datagram. */
async function sendFlows(svc: Service, from: number, n: number): Promise<void> {
  const client = await udpClient("udp4", "127.0.0.1");
  try {
    for (let i = 0; i < n; i += 30) {
      await send(client, netflowV5(i, from + i, Math.min(30, n - i)), svc.udpPorts[0]!, "127.0.0.1");
    }
  } finally {
    client.close();
  }
}

/** Requests accepted on a path, one per idempotency key (a backend drops repeats by key). */
function unique(b: FakeBackend, prefix: string): ReceivedRequest[] {
  const byKey = new Map<string, ReceivedRequest>();
  for (const r of b.accepted) if (r.path.startsWith(prefix)) byKey.set(r.idempotencyKey, r);
  return [...byKey.values()];
}

/** Source ports of the flows accepted on a path, de-duplicated by idempotency key, sorted. */
function ports(b: FakeBackend, prefix: string): number[] {
  const out: number[] = [];
  for (const r of unique(b, prefix)) {
    for (const rec of (r.json as { records: Array<{ src_port: number }> }).records) out.push(rec.src_port);
  }
  return out.sort((x, y) => x - y);
}

function range(from: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => from + i);
}

async function prometheus(port: number) {
  const r = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { accept: "text/plain" } });
  return parsePrometheusTextFormat(await r.text());
}

function sample(
  families: ReturnType<typeof parsePrometheusTextFormat>,
  name: string,
  sink: string,
): number | undefined {
  const f = families.find((x) => x.name === name);
  const m = f?.metrics.find((x) => x.labels?.sink === sink);
  return m === undefined ? undefined : Number(m.value);
}

describe("reliable delivery through the CLI", () => {
  it("delivers every flow once to flows-v1 (Bearer, collector id) and to the --backend-url Clarion output", async () => {
    const b = await backend();
    const dir = tmp();
    const ingest = `flows-v1+http://127.0.0.1:${b.port}/v1/ingest`;
    const clarion = `clarion+http://127.0.0.1:${b.port}`;
    const svc = await startService(
      [
        ...COMMON,
        "--data-dir",
        join(dir, "data"),
        "--output",
        ingest,
        "--backend-url",
        b.url,
        "--collector-id",
        "gw-test",
      ],
      { env: { CLARION_COLLECTOR_INGEST_TOKEN: "ingest-secret-1" } },
    );
    await sendFlows(svc, 1000, 450);
    await waitFor("all flows at both endpoints", async () => {
      return ports(b, "/v1/ingest").length >= 450 && ports(b, "/api/netflow/netflow").length >= 450;
    });
    assert.deepEqual(ports(b, "/v1/ingest"), range(1000, 450));
    assert.deepEqual(ports(b, "/api/netflow/netflow"), range(1000, 450));
    for (const r of b.accepted) assert.ok(r.idempotencyKey, "every request has an Idempotency-Key");
    for (const r of unique(b, "/v1/ingest")) {
      assert.equal(r.headers.authorization, "Bearer ingest-secret-1");
      const body = r.json as { collector_id: string; format: string; records: unknown[] };
      assert.equal(body.collector_id, "gw-test");
      assert.equal(body.format, "flows.v1");
      assert.ok(body.records.length <= 200, "flows-v1 requests carry at most 200 records");
    }
    for (const r of unique(b, "/api/netflow/netflow")) {
      assert.equal(r.headers.authorization, undefined, "the ingest key never goes to the Clarion backend");
      assert.equal((r.json as { switch_id: string }).switch_id, "127.0.0.1");
    }
    await waitFor("total_sent counts the backend's flows", async () => {
      const m = (await getJson(svc.httpPort, "/metrics")).body;
      return m.total_received === 450 && m.total_sent === 450 && m.pending === 0;
    });
    const m = (await getJson(svc.httpPort, "/metrics")).body;
    assert.equal(m.backend_output, clarion);
    const sinks = m.sinks as Record<string, Record<string, unknown>>;
    assert.equal(sinks[ingest]?.sent, 450);
    assert.equal(sinks[ingest]?.spool_batches, 0);
    assert.equal(sinks[clarion]?.sent, 450);
    const h = await getJson(svc.httpPort, "/health");
    assert.equal(h.body.status, "ok");
    assert.equal(h.body.backend_url, b.url);
    svc.proc.kill("SIGTERM");
    assert.equal(await svc.exited, 0, svc.stderr.join("\n"));
    assert.ok(!svc.stderr.join("\n").includes("ingest-secret-1"), "the key is never logged");
  });

  it("spools through an outage and a SIGKILL, delivers everything after the restart", async () => {
    const b = await backend();
    const dir = tmp();
    const ingest = `flows-v1+http://127.0.0.1:${b.port}/v1/ingest`;
    const clarion = `clarion+http://127.0.0.1:${b.port}`;
    const keyFile = join(dir, "ingest.key");
    writeFileSync(keyFile, "file-secret-2\n");
    const config = join(dir, "collector.yaml");
    // Short retry and breaker delays for the flows-v1 output; the Clarion output keeps the defaults.
    writeFileSync(
      config,
      JSON.stringify({
        outputs: [
          {
            uri: ingest,
            batchSize: 1000,
            gzipThreshold: 16_384,
            retryBaseMs: 50,
            retryMaxMs: 200,
            breakerResetMs: 200,
            breakerMaxResetMs: 400,
          },
        ],
      }),
    );
    const args = [
      ...COMMON,
      "--config",
      config,
      "--data-dir",
      join(dir, "data"),
      "--backend-url",
      b.url,
      "--ingest-token-file",
      keyFile,
    ];
    let svc = await startService(args);

    // Wave 1, backend up.
    await sendFlows(svc, 2000, 150);
    await waitFor("wave 1 delivered", async () => {
      return ports(b, "/v1/ingest").length === 150 && ports(b, "/api/netflow/netflow").length === 150;
    });

    // Wave 2, connections refused: spooled, health degraded, spool gauges up.
    await b.down();
    await sendFlows(svc, 2150, 300);
    await waitFor(
      "health degraded while spooling",
      async () => {
        const h = await getJson(svc.httpPort, "/health");
        const reasons = (h.body.reasons as string[]).join("; ");
        return (
          h.status === 200 &&
          h.body.status === "degraded" &&
          reasons.includes(`sink ${ingest} spooling`) &&
          reasons.includes(`sink ${clarion} spooling`)
        );
      },
      20_000,
    );
    await waitFor("wave 2 in both spools", async () => {
      const s = (await getJson(svc.httpPort, "/metrics")).body.sinks as Record<
        string,
        { spool_records: number }
      >;
      return s[ingest]?.spool_records === 300 && s[clarion]?.spool_records === 300;
    });
    const fam = await prometheus(svc.httpPort);
    for (const sink of [ingest, clarion]) {
      assert.ok((sample(fam, "clarion_collector_sink_spool_bytes", sink) ?? 0) > 0, `spool bytes ${sink}`);
      assert.ok((sample(fam, "clarion_collector_sink_spool_batches", sink) ?? 0) > 0);
      assert.ok((sample(fam, "clarion_collector_sink_spool_oldest_age_seconds", sink) ?? -1) >= 0);
      assert.equal(sample(fam, "clarion_collector_sink_delivered_flows_total", sink), 150);
      assert.ok((sample(fam, "clarion_collector_sink_retries_total", sink) ?? 0) > 0);
      assert.equal(sample(fam, "clarion_collector_sink_dead_lettered_total", sink), 0);
      assert.equal(sample(fam, "clarion_collector_sink_spool_dropped_batches_total", sink), 0);
      assert.equal(sample(fam, "clarion_collector_sink_spool_write_errors_total", sink), 0);
      assert.equal(sample(fam, "clarion_collector_sink_skipped_flows_total", sink), 0);
      assert.ok(sample(fam, "clarion_collector_sink_breaker_open", sink) !== undefined);
    }
    const jm = (await getJson(svc.httpPort, "/metrics")).body;
    assert.equal(jm.total_sent, 150);
    assert.equal(jm.pending, 300);

    // Then 503s; SIGKILL while the backend still fails.
    b.fault = () => ({ kind: "status", status: 503 });
    await b.up();
    await waitFor("503s answered", async () => b.log.some((l) => l.status === 503));
    svc.proc.kill("SIGKILL");
    await svc.exited;

    // Restart on the same data dir; wave 3 while still failing; then the backend recovers.
    svc = await startService(args);
    await sendFlows(svc, 2450, 60);
    await waitFor("wave 3 spooled", async () => {
      const s = (await getJson(svc.httpPort, "/metrics")).body.sinks as Record<
        string,
        { spool_records: number }
      >;
      return (s[ingest]?.spool_records ?? 0) >= 360 && (s[clarion]?.spool_records ?? 0) >= 360;
    });
    b.fault = null;
    await waitFor(
      "everything delivered after recovery",
      async () => ports(b, "/v1/ingest").length >= 510 && ports(b, "/api/netflow/netflow").length >= 510,
      30_000,
    );
    assert.deepEqual(ports(b, "/v1/ingest"), range(2000, 510));
    assert.deepEqual(ports(b, "/api/netflow/netflow"), range(2000, 510));
    for (const r of unique(b, "/v1/ingest")) assert.equal(r.headers.authorization, "Bearer file-secret-2");
    assert.ok(
      unique(b, "/v1/ingest").some((r) => r.gzip && r.records > 100),
      "a big flows-v1 batch went gzipped",
    );
    assert.ok(!unique(b, "/api/netflow/netflow").some((r) => r.gzip), "Clarion requests are never gzipped");
    await waitFor("health ok after recovery", async () => {
      const h = await getJson(svc.httpPort, "/health");
      return h.body.status === "ok";
    });
    const fam2 = await prometheus(svc.httpPort);
    for (const sink of [ingest, clarion]) {
      assert.equal(sample(fam2, "clarion_collector_sink_spool_batches", sink), 0);
      assert.equal(sample(fam2, "clarion_collector_sink_breaker_open", sink), 0);
    }
    svc.proc.kill("SIGTERM");
    assert.equal(await svc.exited, 0, svc.stderr.join("\n"));
    assert.ok(!svc.stderr.join("\n").includes("file-secret-2"), "the key is never logged");
  });

  it("a flipped byte in the spool costs only its frame: the rest is delivered, counted, health degraded until restart", async () => {
    const b = await backend();
    await b.down();
    const dir = tmp();
    const clarion = `clarion+http://127.0.0.1:${b.port}`;
    const args = [...COMMON, "--data-dir", join(dir, "data"), "--backend-url", b.url];
    args[args.indexOf("--batch-size") + 1] = "30";
    let svc = await startService(args);
    await sendFlows(svc, 5000, 300);
    await waitFor("all flows spooled", async () => {
      const s = (await getJson(svc.httpPort, "/metrics")).body.sinks as Record<
        string,
        { spool_records: number }
      >;
      return s[clarion]?.spool_records === 300;
    });
    svc.proc.kill("SIGKILL");
    await svc.exited;

    // Damage one frame in the middle of the segment, as a bad sector or a stray write would.
    const spoolRoot = join(dir, "data", "spool");
    const spoolDir = join(spoolRoot, readdirSync(spoolRoot)[0]!);
    const reader = await Spool.open({ dir: spoolDir });
    const entries: SpooledEntry[] = [];
    for (let e = reader.next(); e !== null; e = reader.next()) entries.push(e);
    await reader.close();
    assert.ok(entries.length >= 5, `${entries.length} spooled requests`);
    const victim = entries[Math.floor(entries.length / 2)]!;
    const segFile = join(spoolDir, `${String(victim.seg).padStart(16, "0")}.seg`);
    const bytes = readFileSync(segFile);
    bytes[victim.off + Math.floor(victim.size / 2)]! ^= 0x20;
    writeFileSync(segFile, bytes);

    await b.up();
    svc = await startService(args);
    const want = 300 - victim.records;
    await waitFor(
      "every intact frame delivered",
      async () => ports(b, "/api/netflow/netflow").length >= want,
    );
    const got = ports(b, "/api/netflow/netflow");
    assert.equal(got.length, want);
    assert.equal(new Set(got).size, want);
    for (const p of got) assert.ok(p >= 5000 && p < 5300);
    const m = (await getJson(svc.httpPort, "/metrics")).body.sinks as Record<string, Record<string, unknown>>;
    assert.equal(m[clarion]?.spool_corrupt_frames, 1);
    assert.equal(m[clarion]?.spool_corrupt_bytes, victim.size);
    const fam = await prometheus(svc.httpPort);
    assert.equal(sample(fam, "clarion_collector_sink_spool_corrupt_frames_total", clarion), 1);
    assert.equal(sample(fam, "clarion_collector_sink_spool_corrupt_bytes_total", clarion), victim.size);
    const h = await getJson(svc.httpPort, "/health");
    assert.equal(h.body.status, "degraded");
    assert.match((h.body.reasons as string[]).join("; "), /corrupt frames.*restart to acknowledge/);
    assert.equal(readdirSync(join(spoolDir, "quarantine")).length, 1);
    assert.ok(svc.stderr.some((l) => l.includes("spool: corrupt frame skipped")));
    svc.proc.kill("SIGTERM");
    assert.equal(await svc.exited, 0, svc.stderr.join("\n"));

    // The restart acknowledges it: the repaired segment is not counted again.
    svc = await startService(args);
    await waitFor("health ok after the restart", async () => {
      const h2 = await getJson(svc.httpPort, "/health");
      return h2.body.status === "ok";
    });
    const fam2 = await prometheus(svc.httpPort);
    assert.equal(sample(fam2, "clarion_collector_sink_spool_corrupt_frames_total", clarion), 0);
    assert.equal(ports(b, "/api/netflow/netflow").length, want);
    svc.proc.kill("SIGTERM");
    assert.equal(await svc.exited, 0, svc.stderr.join("\n"));
  });

  it("flushes a flows-v1 output every second even with a long --batch-interval", async () => {
    const b = await backend();
    const dir = tmp();
    const args = [...COMMON, "--data-dir", join(dir, "data")];
    args[args.indexOf("--batch-interval") + 1] = "600";
    const svc = await startService([...args, "--output", `flows-v1+http://127.0.0.1:${b.port}/v1/ingest`]);
    const t0 = Date.now();
    await sendFlows(svc, 3000, 10);
    await waitFor("flows within the 1 s flush", async () => ports(b, "/v1/ingest").length === 10, 5000);
    assert.ok(Date.now() - t0 < 4000, `took ${Date.now() - t0} ms`);
    svc.proc.kill("SIGTERM");
    assert.equal(await svc.exited, 0, svc.stderr.join("\n"));
  });
});
