import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import {
  type AgentCollector,
  type AgentCollectorOptions,
  startAgentCollector,
} from "../../src/inputs/agent.ts";
import { FakeBackend } from "../helpers/fake-backend.ts";

const dirs: string[] = [];
const backends: FakeBackend[] = [];
const collectors: AgentCollector[] = [];
after(async () => {
  await Promise.allSettled(collectors.map((c) => c.close()));
  await Promise.allSettled(backends.map((b) => b.close()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "agent-test-"));
  dirs.push(d);
  return d;
}

const quiet = { info() {}, warn() {}, error() {} };

async function setup(
  extra: Partial<AgentCollectorOptions> = {},
): Promise<{ b: FakeBackend; c: AgentCollector; dataDir: string }> {
  const b = new FakeBackend();
  await b.up();
  backends.push(b);
  const dataDir = extra.dataDir ?? tmp();
  const c = await start(b, dataDir, extra);
  return { b, c, dataDir };
}

async function start(
  b: FakeBackend,
  dataDir: string,
  extra: Partial<AgentCollectorOptions> = {},
): Promise<AgentCollector> {
  const c = await startAgentCollector({
    host: "127.0.0.1",
    port: 0,
    backendUrl: b.url,
    dataDir,
    bodyLimit: 64 * 1024,
    timeoutMs: 500,
    retry: { baseDelayMs: 5, maxDelayMs: 50 },
    breaker: { resetMs: 50, maxResetMs: 200 },
    logger: quiet,
    ...extra,
  });
  collectors.push(c);
  return c;
}

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 5));
  }
}

function sketches(i: number): string {
  return JSON.stringify({
    switch_id: `SW-${i}`,
    timestamp: 1_700_000_000 + i,
    sketch_count: 2,
    sketches: [
      { endpoint_id: "00:1a:2b:3c:4d:5e", unique_peers: i, bytes_in: 10 * i },
      { endpoint_id: "00:1a:2b:3c:4d:5f", unique_peers: i + 1, bytes_in: 11 * i },
    ],
  });
}

async function postEdge(
  c: AgentCollector,
  path: string,
  body: Uint8Array | string,
  headers: Record<string, string> = {},
) {
  const res = await fetch(`${c.url}/api/edge/${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe("agent collector", () => {
  test("202 and byte-for-byte relay (plain, gzip, binary), headers and idempotency key", async () => {
    const { b, c } = await setup();
    const plain = sketches(1);
    const r1 = await postEdge(c, "sketches", plain, { "x-switch-id": "SW-1" });
    assert.equal(r1.status, 202);
    assert.equal(r1.json.items, 2);
    const gz = gzipSync(Buffer.from(sketches(2)));
    const r2 = await postEdge(c, "sketches", gz, { "content-encoding": "gzip" });
    assert.equal(r2.status, 202);
    const bin = Buffer.from([0, 1, 2, 3, 254, 255]);
    const r3 = await postEdge(c, "sketches/binary", bin, {
      "content-type": "application/octet-stream",
      "x-switch-id": "SW-9",
      "x-sketch-count": "4",
    });
    assert.equal(r3.status, 202);
    await until(() => b.accepted.length === 3);
    // Relays may run concurrently, so the backend's order is not the posts' order: match by idempotency key.
    const relayOf = (r: { json: Record<string, unknown> }) =>
      b.accepted.find((a) => a.idempotencyKey === r.json.idempotency_key);
    const [a1, a2, a3] = [relayOf(r1), relayOf(r2), relayOf(r3)];
    assert.ok(a1 && a2 && a3, "each post relayed under the key it was answered with");
    assert.equal(a1.path, "/api/edge/sketches");
    assert.equal(a1.raw.toString(), plain);
    assert.equal(a1.headers["content-type"], "application/json");
    assert.equal(a1.headers["x-switch-id"], "SW-1");
    assert.equal(a1.idempotencyKey, r1.json.idempotency_key);
    assert.deepEqual(a2.raw, gz);
    assert.equal(a2.headers["content-encoding"], "gzip");
    assert.equal(a2.body.toString(), sketches(2));
    assert.equal(a3.path, "/api/edge/sketches/binary");
    assert.deepEqual(a3.raw, bin);
    assert.equal(a3.headers["content-type"], "application/octet-stream");
    assert.equal(a3.headers["x-sketch-count"], "4");
    const m = (await (await fetch(`${c.url}/metrics`)).json()) as Record<string, number>;
    for (const k of [
      "total_received",
      "total_sent",
      "pending",
      "errors",
      "batch_size",
      "batch_interval_seconds",
    ]) {
      assert.ok(k in m, k);
    }
    assert.equal(m.total_received, 5);
    await until(() => c.stats().relay.delivered === 5);
    const h = (await (await fetch(`${c.url}/health`)).json()) as Record<string, string>;
    assert.deepEqual([h.status, h.service, h.backend_url], ["healthy", "agent-collector", b.url]);
    const prom = await (await fetch(`${c.url}/metrics`, { headers: { accept: "text/plain" } })).text();
    assert.match(prom, /clarion_collector_agent_received_total 5/);
  });

  test("400 with the reason, 401 without the token, 413 above the limit", async () => {
    const { b, c } = await setup({ token: "agent-secret" });
    const auth = { authorization: "Bearer agent-secret" };
    assert.equal((await postEdge(c, "sketches", sketches(1))).status, 401);
    assert.equal((await postEdge(c, "sketches", sketches(1), { authorization: "Bearer nope" })).status, 401);
    const bad = await postEdge(c, "sketches", '{"switch_id": "x", ', auth);
    assert.equal(bad.status, 400);
    assert.match(String(bad.json.detail), /Invalid JSON/);
    const badGz = await postEdge(c, "sketches", Buffer.from("not gzip"), {
      ...auth,
      "content-encoding": "gzip",
    });
    assert.equal(badGz.status, 400);
    const big = JSON.stringify({ switch_id: "x", sketches: ["a".repeat(70 * 1024)] });
    assert.equal((await postEdge(c, "sketches", big, auth)).status, 413);
    // a small gzip body that inflates past the limit
    const bomb = gzipSync(Buffer.from(JSON.stringify({ s: "a".repeat(200 * 1024) })));
    assert.ok(bomb.length < 64 * 1024);
    assert.equal((await postEdge(c, "sketches", bomb, { ...auth, "content-encoding": "gzip" })).status, 413);
    assert.equal((await postEdge(c, "sketches", sketches(3), auth)).status, 202);
    await until(() => b.accepted.length === 1);
    assert.equal(b.accepted[0]!.raw.toString(), sketches(3));
    const st = c.stats();
    assert.equal(st.rejected.unauthorized, 2);
    assert.equal(st.rejected.tooLarge, 2);
    assert.equal(st.rejected.invalid, 2);
    // health and metrics need no token
    assert.equal((await fetch(`${c.url}/health`)).status, 200);
  });

  test("relays across a backend outage and a restart, nothing lost", async () => {
    const { b, c, dataDir } = await setup();
    await b.down();
    const sent: string[] = [];
    for (let i = 0; i < 20; i++) {
      sent.push(sketches(i));
      assert.equal((await postEdge(c, "sketches", sketches(i))).status, 202);
    }
    await until(() => c.stats().spooling);
    const h = (await (await fetch(`${c.url}/health`)).json()) as Record<string, string>;
    assert.equal(h.status, "degraded");
    await c.close();
    // restart on the same data directory, then more payloads while the backend is still down
    const c2 = await start(b, dataDir);
    for (let i = 20; i < 30; i++) {
      sent.push(sketches(i));
      assert.equal((await postEdge(c2, "sketches", sketches(i))).status, 202);
    }
    await b.up();
    await until(() => c2.stats().spoolBatches === 0);
    const got = b.accepted.map((r) => r.raw.toString());
    assert.deepEqual([...new Set(got)].sort(), [...sent].sort());
    assert.equal(c2.stats().relay.delivered, 60);
  });

  test("backend 400 on a relayed payload is dead-lettered, not retried", async () => {
    const { b, c, dataDir } = await setup();
    b.fault = ({ n }) =>
      n === 1 ? { kind: "status", status: 422, body: '{"detail":"switch_id is required"}' } : null;
    assert.equal((await postEdge(c, "sketches", '{"sketches":[]}')).status, 202);
    assert.equal((await postEdge(c, "sketches", sketches(5))).status, 202);
    await until(() => c.stats().spoolBatches === 0);
    assert.equal(b.accepted.length, 1);
    assert.equal(c.stats().relay.deadLettered, 1);
    const dl = JSON.parse(readFileSync(join(dataDir, "deadletter", "agent-relay.jsonl"), "utf8").trim());
    assert.equal(dl.status, 422);
    assert.equal(Buffer.from(dl.body_base64, "base64").toString(), '{"sketches":[]}');
  });

  test("backend 401/403 on the relay: payloads stay spooled and are relayed once the token is fixed", async () => {
    const { b, c, dataDir } = await setup();
    let refuse = 403;
    b.fault = () => (refuse ? { kind: "status", status: refuse } : null);
    for (let i = 0; i < 3; i++) assert.equal((await postEdge(c, "sketches", sketches(i))).status, 202);
    await until(() => b.log.length >= 6);
    refuse = 401;
    await until(() => b.log.filter((l) => l.status === 401).length >= 2);
    assert.equal(c.stats().relay.deadLettered, 0);
    assert.equal(c.stats().spoolBatches, 3);
    assert.ok(!existsSync(join(dataDir, "deadletter", "agent-relay.jsonl")));
    refuse = 0;
    await until(() => c.stats().spoolBatches === 0);
    assert.deepEqual(
      [...new Set(b.accepted.map((r) => r.raw.toString()))].sort(),
      [0, 1, 2].map(sketches).sort(),
    );
    assert.equal(c.stats().relay.deadLettered, 0);
  });
});
