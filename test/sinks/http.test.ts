import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { gunzipSync } from "node:zlib";
import { FlowRecord } from "../../src/core/flow.ts";
import { splitBody } from "../../src/encode/json-batch.ts";
import {
  clarionUriFromBackendUrl,
  createHttpEncoder,
  createHttpSink,
  type HttpEncodedBatch,
  type HttpSink,
  parseHttpSinkUri,
  sinkSlug,
} from "../../src/sinks/http.ts";
import type { SinkContext } from "../../src/sinks/types.ts";
import { FakeBackend } from "../helpers/fake-backend.ts";

const NODE = join(import.meta.dirname, "../../node_modules/.bin/node");
const CHILD = join(import.meta.dirname, "../helpers/http-sink-child.ts");
const dirs: string[] = [];
const backends: FakeBackend[] = [];
const sinks: HttpSink[] = [];
const children: ChildProcess[] = [];

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await Promise.allSettled(sinks.map((s) => s.close()));
  await Promise.allSettled(backends.map((b) => b.close()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "http-sink-test-"));
  dirs.push(d);
  return d;
}

async function backend(): Promise<FakeBackend> {
  const b = new FakeBackend();
  await b.up();
  backends.push(b);
  return b;
}

const quiet = { info() {}, warn() {}, error() {} };

/** Small delays so faults resolve in milliseconds. */
const FAST = {
  retryBaseMs: 5,
  retryMaxMs: 50,
  breakerResetMs: 50,
  breakerMaxResetMs: 200,
  timeoutMs: 2000,
  flushTimeoutMs: 5000,
};

function flows(from: number, n: number, exporters = ["192.0.2.1"]): FlowRecord[] {
  const out: FlowRecord[] = [];
  for (let i = from; i < from + n; i++) {
    const r = new FlowRecord();
    r.src_addr = `10.0.${(i >> 8) & 255}.${i & 255}`;
    r.dst_addr = "198.51.100.7";
    r.src_port = 1024 + (i % 60000);
    r.dst_port = 443;
    r.proto = 6;
    r.bytes = i; // the flow's id
    r.packets = 3;
    r.in_if = 2;
    r.out_if = 0;
    r.sampler_address = exporters[i % exporters.length]!;
    r.time_received_ms = 1_700_000_100_000;
    r.time_flow_start_ms = 1_700_000_000_500;
    r.time_flow_end_ms = 1_700_000_050_900;
    out.push(r);
  }
  return out;
}

async function sinkFor(uri: string, dataDir: string, options: Record<string, unknown>): Promise<HttpSink> {
  const ctx: SinkContext = { dataDir, logger: quiet, options };
  const s = await createHttpSink(uri, ctx);
  sinks.push(s);
  return s;
}

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Flow ids received, sorted (requests run concurrently, so arrival order varies). */
function ids(b: FakeBackend, prefix: string): number[] {
  return b
    .records(prefix)
    .map((r) => Number(r.bytes))
    .sort((x, y) => x - y);
}

function range(from: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => from + i);
}

describe("HTTP sink URIs and encoders", () => {
  test("URIs map to endpoints; credentials in URLs are refused", () => {
    assert.equal(parseHttpSinkUri("clarion+http://h:8000").url.href, "http://h:8000/api/netflow/netflow");
    assert.equal(parseHttpSinkUri("clarion+https://h/base/").url.href, "https://h/base/api/netflow/netflow");
    assert.equal(parseHttpSinkUri("flows-v1+http://h:8080").url.href, "http://h:8080/v1/ingest");
    assert.equal(parseHttpSinkUri("flows-v1+https://h/v1/ingest").url.href, "https://h/v1/ingest");
    assert.throws(() => parseHttpSinkUri("flows-v1+http://key@h/v1/ingest"), /credentials/);
    assert.throws(() => parseHttpSinkUri("kafka://h"), /not an HTTP sink/);
    assert.throws(() => createHttpEncoder("flows-v1+http://h", { batchSize: 0 }), /batchSize/);
    assert.equal(clarionUriFromBackendUrl("http://backend:8000"), "clarion+http://backend:8000");
    assert.equal(clarionUriFromBackendUrl("https://b/x/"), "clarion+https://b/x");
  });

  test("flows.v1 records and bodies", () => {
    const r = flows(7, 1)[0]!;
    r.bytes = 2n ** 64n - 1n;
    const batch = createHttpEncoder("flows-v1+http://h", { collectorId: "c1" }).encode([r]);
    const body = JSON.parse(Buffer.from(batch.parts[0]!.data).toString());
    assert.deepEqual(body.records[0], {
      ts: 1_700_000_000,
      src_ip: "10.0.0.7",
      dst_ip: "198.51.100.7",
      src_port: 1031,
      dst_port: 443,
      proto: 6,
      bytes: 18446744073709552000,
      packets: 3,
      ingress_if: 2,
    });
    assert.match(Buffer.from(batch.parts[0]!.data).toString(), /"bytes":18446744073709551615,/);
    assert.equal(body.collector_id, "c1");
    assert.equal(body.format, "flows.v1");
  });

  test("flows.v1 leaves out records without addresses, and counts them", async () => {
    const uri = "flows-v1+http://127.0.0.1:1/v1/ingest";
    const recs = flows(0, 10);
    recs[3]!.src_addr = "";
    recs[7]!.dst_addr = "";
    const batch = createHttpEncoder(uri, {}).encode(recs) as HttpEncodedBatch;
    assert.equal(batch.records, 8);
    assert.equal(batch.skipped, 2);
    assert.equal(JSON.parse(Buffer.from(batch.parts[0]!.data).toString()).records.length, 8);
    const warnings: string[] = [];
    const logger = { ...quiet, warn: (_o: object | string, m?: string) => warnings.push(m ?? "") };
    const sink = await createHttpSink(uri, { dataDir: tmp(), logger, options: FAST });
    sinks.push(sink);
    // through a worker the batch is a structured clone: the count survives it
    await sink.write(structuredClone(batch));
    await sink.write(structuredClone(batch));
    assert.equal(sink.stats().skippedNoAddress, 4);
    assert.equal(warnings.filter((m) => /without a source or destination address/.test(m)).length, 1);
  });

  test("flows.v1 cuts requests at batchSize, maxRecords and maxBytes, gzips above the threshold", () => {
    const enc = createHttpEncoder("flows-v1+http://h", {});
    const b = enc.encode(flows(0, 450));
    assert.deepEqual(
      b.parts.map((p) => p.records),
      [200, 200, 50],
    );
    assert.equal(b.parts[0]!.data[0], 0x7b); // 200 records < 50 KB: plain
    const big = createHttpEncoder("flows-v1+http://h", { batchSize: 20000, maxBytes: 400_000 }).encode(
      flows(0, 12000),
    );
    assert.ok(big.parts.every((p) => p.records <= 10000));
    for (const p of big.parts) {
      assert.equal(p.data[0], 0x1f); // gzip
      assert.ok(gunzipSync(p.data).length <= 400_000);
    }
    assert.equal(
      big.parts.reduce((a, p) => a + p.records, 0),
      12000,
    );
  });

  test("Clarion: one body per exporter, integer seconds, switch_id", () => {
    const recs = flows(0, 10, ["192.0.2.1", "192.0.2.2"]);
    recs[0]!.src_mac = 0x001122aabbcc;
    recs[0]!.src_sgt = 17;
    const b = createHttpEncoder("clarion+http://h", {}).encode(recs);
    assert.deepEqual(
      b.parts.map((p) => [p.key, p.records]),
      [
        ["192.0.2.1", 5],
        ["192.0.2.2", 5],
      ],
    );
    const body = JSON.parse(Buffer.from(b.parts[0]!.data).toString());
    assert.equal(body.switch_id, "192.0.2.1");
    assert.deepEqual(body.records[0], {
      src_ip: "10.0.0.0",
      dst_ip: "198.51.100.7",
      src_port: 1024,
      dst_port: 443,
      protocol: 6,
      bytes: 0,
      packets: 3,
      flow_start: 1_700_000_000,
      flow_end: 1_700_000_050,
      switch_id: "192.0.2.1",
      src_sgt: 17,
      dst_sgt: null,
      src_mac: "00:11:22:aa:bb:cc",
      dst_mac: null,
      vlan_id: null,
    });
    recs[1]!.switch_id = "SW-1";
    const named = createHttpEncoder("clarion+http://h", { switchIdFromIp: false }).encode(recs.slice(1, 2));
    assert.equal(named.parts[0]!.key, "SW-1");
  });

  test("a line-framed body splits in half at the record level", () => {
    const b = createHttpEncoder("flows-v1+http://h", {}).encode(flows(0, 5));
    const [x, y, nx, ny] = splitBody(b.parts[0]!.data)!;
    assert.deepEqual([nx, ny], [2, 3]);
    assert.deepEqual(
      JSON.parse(x.toString()).records.map((r: { bytes: number }) => r.bytes),
      [0, 1],
    );
    assert.deepEqual(
      JSON.parse(y.toString()).records.map((r: { bytes: number }) => r.bytes),
      [2, 3, 4],
    );
    assert.equal(JSON.parse(y.toString()).collector_id, "gw-local");
    assert.equal(
      splitBody(createHttpEncoder("flows-v1+http://h", {}).encode(flows(0, 1)).parts[0]!.data),
      null,
    );
  });
});

describe("HTTP sink delivery", () => {
  test("no fault: every flow exactly once, gzip, Bearer and idempotency keys seen", async () => {
    const b = await backend();
    process.env.TEST_FLOWS_KEY = "s3cret-key";
    const uri = `flows-v1+http://127.0.0.1:${b.port}/v1/ingest`;
    const opts = { ...FAST, tokenEnv: "TEST_FLOWS_KEY", batchSize: 1000, collectorId: "test-c" };
    const sink = await sinkFor(uri, tmp(), opts);
    const enc = createHttpEncoder(uri, opts);
    for (let i = 0; i < 10_000; i += 2500) await sink.write(enc.encode(flows(i, 2500)));
    await sink.flush();
    assert.deepEqual(ids(b, "/v1/ingest"), range(0, 10_000));
    assert.ok(b.accepted.every((r) => r.headers.authorization === "Bearer s3cret-key"));
    assert.ok(b.accepted.some((r) => r.gzip));
    assert.ok(b.accepted.every((r) => r.gzip === r.raw.length < r.body.length));
    const keys = b.accepted.map((r) => r.idempotencyKey);
    assert.equal(new Set(keys).size, keys.length);
    assert.ok(keys.every((k) => k.length >= 16));
    assert.ok(b.accepted.every((r) => (r.json as { collector_id: string }).collector_id === "test-c"));
    const st = sink.stats();
    assert.equal(st.delivered, 10_000);
    assert.equal(st.spoolBatches, 0);
    assert.equal(st.retried, 0);
    assert.equal(st.breakerState, "closed");
  });

  test("Clarion: one request per exporter batch, every flow once", async () => {
    const b = await backend();
    const uri = `clarion+http://127.0.0.1:${b.port}`;
    const sink = await sinkFor(uri, tmp(), FAST);
    const enc = createHttpEncoder(uri, {});
    for (let i = 0; i < 3000; i += 1000)
      await sink.write(enc.encode(flows(i, 1000, ["192.0.2.1", "192.0.2.2", "192.0.2.3"])));
    await sink.flush();
    assert.equal(b.accepted.length, 9);
    assert.ok(b.accepted.every((r) => r.path === "/api/netflow/netflow" && !r.gzip));
    for (const r of b.accepted) {
      const body = r.json as { switch_id: string; records: { switch_id: string; bytes: number }[] };
      assert.ok(body.records.every((x) => x.switch_id === body.switch_id));
    }
    assert.deepEqual(
      ids(b, "/api/netflow/netflow").sort((x, y) => x - y),
      range(0, 3000),
    );
  });

  test("faults and an outage: nothing lost, duplicates only after timeouts and with the same key", async () => {
    const b = await backend();
    const uri = `flows-v1+http://127.0.0.1:${b.port}/v1/ingest`;
    const opts = {
      ...FAST,
      batchSize: 400,
      // a timeout must come only from the slow fault, not from a loaded machine: 1 s against a 2.5 s stall
      timeoutMs: 1000,
      maxRetryAfterMs: 150,
      retryAttempts: 3,
      concurrency: 4,
    };
    const sink = await sinkFor(uri, tmp(), opts);
    const enc = createHttpEncoder(uri, opts);
    b.maxRecords = 250; // 413 above 250 records: every 400-record batch is split
    const slowKeys = new Set<string>();
    const retryAfterAt = new Map<string, number>();
    const gaps: number[] = [];
    b.fault = ({ n, idempotencyKey }) => {
      const seen = retryAfterAt.get(idempotencyKey);
      if (seen !== undefined) {
        gaps.push(Date.now() - seen);
        retryAfterAt.delete(idempotencyKey);
      }
      if (n % 7 === 0) return { kind: "status", status: 500 };
      if (n % 11 === 0) {
        retryAfterAt.set(idempotencyKey, Date.now());
        return { kind: "status", status: 429, retryAfter: "1" };
      }
      if (n % 13 === 0) {
        slowKeys.add(idempotencyKey);
        return { kind: "slow", delayMs: 2500 };
      }
      if (n % 17 === 0) return { kind: "reset" };
      return null;
    };
    const total = 12_000;
    let written = 0;
    for (; written < 4000; written += 400) await sink.write(enc.encode(flows(written, 400)));
    // outage: connections refused for a while, data keeps flowing into the spool
    await b.down();
    for (; written < 8000; written += 400) await sink.write(enc.encode(flows(written, 400)));
    await until(() => sink.stats().breakerState !== "closed");
    assert.equal(sink.stats().spooling, true);
    assert.ok(sink.stats().spoolBatches > 0);
    await new Promise((r) => setTimeout(r, 200));
    await b.up();
    for (; written < total; written += 400) await sink.write(enc.encode(flows(written, 400)));
    await until(() => sink.stats().spoolBatches === 0, 20_000);

    const got = ids(b, "/v1/ingest");
    assert.deepEqual(
      [...new Set(got)].sort((x, y) => x - y),
      range(0, total),
      "every flow delivered",
    );
    // duplicates only where a timeout left the outcome unknown, and with the same idempotency key
    const keyOf = new Map<number, Set<string>>();
    for (const r of b.accepted) {
      for (const rec of (r.json as { records: { bytes: number }[] }).records) {
        const s = keyOf.get(rec.bytes) ?? new Set();
        s.add(r.idempotencyKey);
        keyOf.set(rec.bytes, s);
      }
    }
    const dupCount = got.length - total;
    let dupIds = 0;
    for (const [, keys] of keyOf) assert.equal(keys.size, 1, "a flow always travels under one key");
    const counts = new Map<number, number>();
    for (const id of got) counts.set(id, (counts.get(id) ?? 0) + 1);
    for (const [id, c] of counts) {
      if (c > 1) {
        dupIds++;
        assert.ok(slowKeys.has([...keyOf.get(id)!][0]!), `duplicate ${id} was not in a timed-out request`);
      }
    }
    assert.ok(dupCount >= 0);
    assert.ok(slowKeys.size > 0 && dupIds > 0, "the slow fault produced at least one duplicate");
    const st = sink.stats();
    assert.ok(st.retried > 0);
    assert.ok(st.splits > 0);
    assert.ok(st.breakerOpens > 0);
    assert.ok(st.unknownOutcomes > 0);
    assert.equal(st.deadLettered, 0);
    assert.ok(b.log.some((l) => l.status === 413));
    assert.ok(gaps.length > 0 && gaps.every((g) => g >= 140), `Retry-After honoured: ${gaps.join(",")}`);
  });

  test("a dead backend is not hammered: the breaker opens and probes", async () => {
    const b = await backend();
    const uri = `flows-v1+http://127.0.0.1:${b.port}`;
    const sink = await sinkFor(uri, tmp(), {
      ...FAST,
      breakerThreshold: 3,
      breakerResetMs: 100,
      breakerMaxResetMs: 100,
    });
    b.fault = () => ({ kind: "status", status: 503 });
    const enc = createHttpEncoder(uri, {});
    await sink.write(enc.encode(flows(0, 1000)));
    await new Promise((r) => setTimeout(r, 600));
    // without a breaker, 4 workers with 5-50 ms backoffs would send ~100 requests in 600 ms
    assert.ok(b.log.length <= 12, `${b.log.length} requests to a dead backend`);
    assert.equal(sink.stats().spoolBatches, 5);
    b.fault = null;
    await until(() => sink.stats().spoolBatches === 0);
    assert.deepEqual(ids(b, "/v1/ingest"), range(0, 1000));
    assert.equal(sink.stats().breakerState, "closed");
  });

  test("400 goes to the dead-letter file with the response, once, and is not retried", async () => {
    const b = await backend();
    const dataDir = tmp();
    const uri = `flows-v1+http://127.0.0.1:${b.port}`;
    const sink = await sinkFor(uri, dataDir, { ...FAST, concurrency: 1 });
    let bad = "";
    b.fault = ({ n, idempotencyKey }) => {
      if (n === 2) {
        bad = idempotencyKey;
        return { kind: "status", status: 400, body: '{"detail":"Invalid payload: src_ip"}' };
      }
      return null;
    };
    const enc = createHttpEncoder(uri, {});
    await sink.write(enc.encode(flows(0, 600)));
    await sink.flush();
    assert.deepEqual(ids(b, "/v1/ingest"), [...range(0, 200), ...range(400, 200)]);
    assert.equal(b.log.filter((l) => l.idempotencyKey === bad).length, 1);
    const st = sink.stats();
    assert.equal(st.deadLettered, 1);
    assert.equal(st.deadLetteredRecords, 200);
    assert.equal(st.spoolBatches, 0);
    const file = join(dataDir, "deadletter", `${sinkSlug(uri)}.jsonl`);
    const lines = readFileSync(file, "utf8").trim().split("\n");
    assert.equal(lines.length, 1);
    const dl = JSON.parse(lines[0]!);
    assert.equal(dl.status, 400);
    assert.equal(dl.idempotency_key, bad);
    assert.match(dl.response, /Invalid payload/);
    assert.equal(JSON.parse(dl.body).records.length, 200);
  });

  test("the bearer key is never logged", async () => {
    const b = await backend();
    const lines: string[] = [];
    const logger = {
      info: (o: object | string, m?: string) => lines.push(JSON.stringify(o) + (m ?? "")),
      warn: (o: object | string, m?: string) => lines.push(JSON.stringify(o) + (m ?? "")),
      error: (o: object | string, m?: string) => lines.push(JSON.stringify(o) + (m ?? "")),
    };
    const uri = `flows-v1+http://127.0.0.1:${b.port}`;
    const s = await createHttpSink(uri, {
      dataDir: tmp(),
      logger,
      options: { ...FAST, token: "never-log-me", retryAttempts: 1 },
    });
    sinks.push(s);
    b.fault = ({ n }) =>
      n === 1 ? { kind: "status", status: 401 } : n < 4 ? { kind: "status", status: 500 } : null;
    await s.write(createHttpEncoder(uri, {}).encode(flows(0, 400)));
    await s.flush();
    assert.ok(lines.length > 0);
    assert.ok(lines.every((l) => !l.includes("never-log-me")));
  });

  test("spool full during an outage: oldest dropped and counted, newest delivered", async () => {
    const b = await backend();
    await b.down();
    const uri = `flows-v1+http://127.0.0.1:${b.port}`;
    const opts = {
      ...FAST,
      spoolMaxBytes: 256 * 1024,
      spoolSegmentBytes: 64 * 1024,
      concurrency: 1,
      batchSize: 100,
    };
    const sink = await sinkFor(uri, tmp(), opts);
    const enc = createHttpEncoder(uri, opts);
    const total = 20_000;
    for (let i = 0; i < total; i += 1000) await sink.write(enc.encode(flows(i, 1000)));
    const st = sink.stats();
    assert.ok(st.droppedOnFull > 0, "batches dropped");
    assert.ok(st.spoolBytes <= 256 * 1024);
    await b.up();
    await until(() => sink.stats().spoolBatches === 0);
    const got = ids(b, "/v1/ingest");
    const st2 = sink.stats();
    assert.ok(got.includes(total - 1), "newest kept");
    assert.ok(!got.includes(0) || got.length < total, "oldest dropped");
    // delivered + dropped account for every flow (the batch in flight when the outage began may be both)
    assert.ok(new Set(got).size + st2.droppedRecordsOnFull >= total);
    assert.equal(st2.droppedRecordsOnFull, st2.droppedOnFull * 100);
  });

  test("SIGKILL during an outage, then restart: every spooled flow is delivered, under its first key", async () => {
    const b = await backend();
    b.fault = () => ({ kind: "status", status: 503 }); // the outage: every request fails
    const dataDir = tmp();
    const uri = `flows-v1+http://127.0.0.1:${b.port}/v1/ingest`;
    const options = { ...FAST, batchSize: 500 };
    const run = (write: [number, number, number] | null) => {
      const c = spawn(NODE, [CHILD], {
        env: { ...process.env, CHILD_CONFIG: JSON.stringify({ uri, dataDir, options, write }) },
        stdio: ["ignore", "pipe", "inherit"],
      });
      children.push(c);
      let out = "";
      c.stdout?.on("data", (d: Buffer) => {
        out += d.toString();
      });
      return { c, saw: (w: string) => out.includes(w) };
    };
    const first = run([0, 20_000, 1000]);
    await until(() => first.saw("WRITTEN"), 20_000);
    await until(() => b.log.length >= 2);
    first.c.kill("SIGKILL");
    await new Promise((r) => first.c.once("exit", r));
    assert.equal(b.accepted.length, 0);
    const triedBefore = new Set(b.log.map((l) => l.idempotencyKey));
    b.fault = null;
    const second = run(null);
    await until(() => second.saw("DRAINED"), 20_000);
    second.c.kill("SIGKILL");
    assert.deepEqual(
      [...new Set(ids(b, "/v1/ingest"))].sort((x, y) => x - y),
      range(0, 20_000),
    );
    // batches attempted before the crash are delivered with the idempotency key they had then
    const acceptedKeys = new Set(b.accepted.map((r) => r.idempotencyKey));
    for (const k of triedBefore) assert.ok(acceptedKeys.has(k), `key ${k} kept across the restart`);
    assert.ok(existsSync(join(dataDir, "spool", sinkSlug(uri))));
  });

  test("401/403 keep the data spooled and are retried through the breaker, with one clear error", async () => {
    const b = await backend();
    const dataDir = tmp();
    const errors: string[] = [];
    const logger = { ...quiet, error: (_o: object | string, m?: string) => errors.push(m ?? "") };
    const uri = `flows-v1+http://127.0.0.1:${b.port}`;
    const sink = await createHttpSink(uri, {
      dataDir,
      logger,
      options: { ...FAST, token: "rotated", breakerThreshold: 3, breakerResetMs: 30, breakerMaxResetMs: 60 },
    });
    sinks.push(sink);
    let refuse = 401;
    b.fault = () => (refuse ? { kind: "status", status: refuse } : null);
    await sink.write(createHttpEncoder(uri, {}).encode(flows(0, 400)));
    await until(() => b.log.length >= 6);
    refuse = 403;
    await until(() => b.log.filter((l) => l.status === 403).length >= 3);
    let st = sink.stats();
    assert.equal(st.deadLettered, 0);
    assert.equal(st.spoolBatches, 2);
    assert.ok(st.retried > 0);
    assert.ok(st.breakerOpens > 0, "the breaker opened");
    assert.match(st.lastError, /HTTP 40[13]/);
    assert.ok(!existsSync(join(dataDir, "deadletter", `${sinkSlug(uri)}.jsonl`)));
    assert.equal(errors.filter((m) => /refused the credentials/.test(m)).length, 1, "rate-limited");
    refuse = 0; // the token is fixed
    await until(() => sink.stats().spoolBatches === 0);
    assert.deepEqual(ids(b, "/v1/ingest"), range(0, 400));
    st = sink.stats();
    assert.equal(st.deadLettered, 0);
    assert.equal(st.delivered, 400);
  });

  test("a dead-letter file that cannot be written keeps the batch spooled until it can", async () => {
    const b = await backend();
    const dataDir = tmp();
    writeFileSync(join(dataDir, "deadletter"), "a file where the directory should be");
    const uri = `flows-v1+http://127.0.0.1:${b.port}`;
    const sink = await sinkFor(uri, dataDir, { ...FAST, concurrency: 1 });
    b.fault = ({ n }) => (n === 1 ? { kind: "status", status: 400, body: '{"detail":"bad"}' } : null);
    await sink.write(createHttpEncoder(uri, {}).encode(flows(0, 400)));
    await until(() => sink.stats().lastError.startsWith("dead-letter file"));
    await new Promise((r) => setTimeout(r, 100));
    let st = sink.stats();
    assert.equal(st.deadLettered, 0);
    assert.equal(st.spoolBatches, 2, "the rejected batch is still spooled (and the next waits behind it)");
    assert.equal(st.spooling, true);
    rmSync(join(dataDir, "deadletter"));
    await until(() => sink.stats().spoolBatches === 0);
    st = sink.stats();
    assert.equal(st.deadLettered, 1);
    assert.equal(st.deadLetteredRecords, 200);
    const lines = readFileSync(join(dataDir, "deadletter", `${sinkSlug(uri)}.jsonl`), "utf8")
      .trim()
      .split("\n");
    assert.equal(lines.length, 1);
    assert.deepEqual(ids(b, "/v1/ingest"), range(200, 200));
    assert.equal(b.log.filter((l) => l.status === 400).length, 1, "not sent again");
  });
});
