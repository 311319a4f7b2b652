/**
 * The agent collector through the real CLI (`--mode agent` and `--mode both`): POST /api/edge/<path> is
 * answered 202/400/401/413, accepted payloads reach the fake backend byte for byte with their content type,
 * across a backend outage and a restart (SIGTERM, then start again on the same --data-dir); /health and
 * /metrics (Clarion JSON keys, Prometheus text) on the agent port.
 */
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { FakeBackend } from "../helpers/fake-backend.ts";
import { dirs, getJson, netflowV5, send, startService, udpClient, waitFor } from "../helpers/service.ts";

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
  const d = mkdtempSync(join(tmpdir(), "clarion-agent-"));
  dirs.push(d);
  return d;
}

const TOKEN = "agent-secret-3";
const AUTH = { authorization: `Bearer ${TOKEN}` };

function sketch(i: number): string {
  return JSON.stringify({
    switch_id: `SW-${i}`,
    timestamp: 1_700_000_000 + i,
    sketches: [{ endpoint_id: "00:1a:2b:3c:4d:5e", unique_peers: i, bytes_in: 10 * i }],
  });
}

async function post(
  port: number,
  path: string,
  body: string | Uint8Array,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await fetch(`http://127.0.0.1:${port}/api/edge/${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
}

const CLARION_KEYS = [
  "total_received",
  "total_sent",
  "pending",
  "errors",
  "batch_size",
  "batch_interval_seconds",
];

describe("agent collector through the CLI", () => {
  it("--mode agent: 202/400/401/413, byte-for-byte relay across an outage and a restart", async () => {
    const b = await backend();
    const dir = tmp();
    const args = [
      "--mode",
      "agent",
      "--bind-host",
      "127.0.0.1",
      "--agent-port",
      "0",
      "--backend-url",
      b.url,
      "--data-dir",
      join(dir, "data"),
      "--agent-body-limit",
      "64K",
      "--batch-size",
      "500",
    ];
    const env = { CLARION_COLLECTOR_AGENT_TOKEN: TOKEN };
    let svc = await startService(args, { env, wait: "agent" });
    const port = svc.agentPort;
    assert.equal(svc.httpPort, 0, "mode agent runs no ops server");
    assert.ok(!svc.stderr.some((l) => l.includes('"collector listening"')), "mode agent runs no UDP");

    assert.equal((await post(port, "sketches", sketch(0))).status, 401);
    assert.equal((await post(port, "sketches", sketch(0), { authorization: "Bearer no" })).status, 401);
    const bad = await post(port, "sketches", '{"switch_id":', AUTH);
    assert.equal(bad.status, 400);
    assert.match(String(bad.json.detail), /Invalid JSON/);
    const big = JSON.stringify({ switch_id: "x", pad: "a".repeat(70 * 1024) });
    assert.equal((await post(port, "sketches", big, AUTH)).status, 413);

    const sent: Array<{ path: string; raw: Buffer; type: string; encoding?: string }> = [];
    const ok1 = await post(port, "sketches", sketch(1), { ...AUTH, "x-switch-id": "SW-1" });
    assert.equal(ok1.status, 202);
    sent.push({ path: "/api/edge/sketches", raw: Buffer.from(sketch(1)), type: "application/json" });
    const gz = gzipSync(Buffer.from(sketch(2)));
    assert.equal((await post(port, "sketches", gz, { ...AUTH, "content-encoding": "gzip" })).status, 202);
    sent.push({ path: "/api/edge/sketches", raw: gz, type: "application/json", encoding: "gzip" });
    const bin = Buffer.from([0, 1, 2, 250, 255]);
    const ct = "application/octet-stream";
    assert.equal((await post(port, "sketches/binary", bin, { ...AUTH, "content-type": ct })).status, 202);
    sent.push({ path: "/api/edge/sketches/binary", raw: bin, type: ct });

    await waitFor("three payloads relayed", async () => b.accepted.length === 3);
    for (const [i, s] of sent.entries()) {
      const got = b.accepted[i]!;
      assert.equal(got.path, s.path);
      assert.deepEqual(got.raw, s.raw, `payload ${i} byte for byte`);
      assert.equal(got.headers["content-type"], s.type);
      assert.equal(got.headers["content-encoding"], s.encoding);
      assert.equal(got.headers.authorization, undefined, "the agent token is not relayed");
    }
    assert.equal(b.accepted[0]!.headers["x-switch-id"], "SW-1");
    assert.equal(b.accepted[0]!.idempotencyKey, ok1.json.idempotency_key);

    const health = await getJson(port, "/health");
    assert.equal(health.status, 200);
    assert.equal(health.body.status, "healthy");
    assert.equal(health.body.backend_url, b.url);
    const m = (await getJson(port, "/metrics")).body;
    for (const k of CLARION_KEYS) assert.ok(k in m, `metrics JSON has ${k}`);
    assert.equal(m.total_received, 3);
    assert.equal(m.batch_size, 500);
    await waitFor("total_sent", async () => (await getJson(port, "/metrics")).body.total_sent === 3);
    const prom = await (
      await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { accept: "text/plain" } })
    ).text();
    assert.match(prom, /^clarion_collector_agent_received_total 3$/m);
    assert.match(prom, /^clarion_collector_agent_rejected_total\{reason="unauthorized"\} 2$/m);

    // Outage: accepted and spooled, health degraded; SIGTERM; restart on the same data dir.
    await b.down();
    const outage: string[] = [];
    for (let i = 10; i < 20; i++) {
      outage.push(sketch(i));
      assert.equal((await post(port, "sketches", sketch(i), AUTH)).status, 202);
    }
    await waitFor("degraded while spooling", async () => {
      const h = await getJson(port, "/health");
      return h.body.status === "degraded";
    });
    svc.proc.kill("SIGTERM");
    assert.equal(await svc.exited, 0, svc.stderr.join("\n"));
    assert.ok(!svc.stderr.join("\n").includes(TOKEN), "the token is never logged");

    svc = await startService(args, { env, wait: "agent" });
    const port2 = svc.agentPort;
    for (let i = 20; i < 25; i++) {
      outage.push(sketch(i));
      assert.equal((await post(port2, "sketches", sketch(i), AUTH)).status, 202);
    }
    assert.ok(((await getJson(port2, "/metrics")).body.pending as number) >= 15);
    await b.up();
    await waitFor(
      "outage payloads relayed",
      async () => {
        const got = new Set(b.accepted.slice(3).map((r) => r.raw.toString()));
        return outage.every((p) => got.has(p));
      },
      30_000,
    );
    const relayed = b.accepted.slice(3);
    // Exactly once per idempotency key, byte for byte.
    const byKey = new Map(relayed.map((r) => [r.idempotencyKey, r.raw.toString()]));
    assert.deepEqual([...byKey.values()].sort(), [...outage].sort());
    for (const r of relayed) assert.equal(r.headers["content-type"], "application/json");
    await waitFor(
      "healthy after recovery",
      async () => (await getJson(port2, "/health")).body.status === "healthy",
    );
    svc.proc.kill("SIGTERM");
    assert.equal(await svc.exited, 0, svc.stderr.join("\n"));
  });

  it("--mode both: UDP flows to the backend and the edge relay in one process", async () => {
    const b = await backend();
    const dir = tmp();
    const svc = await startService(
      [
        "--mode",
        "both",
        "--bind-host",
        "127.0.0.1",
        "--agent-port",
        "0",
        "--http-port",
        "0",
        "--netflow-port",
        "0",
        "--ipfix-port",
        "0",
        "--sflow-port",
        "0",
        "--workers",
        "1",
        "--batch-interval",
        "0.2",
        "--backend-url",
        b.url,
        "--data-dir",
        join(dir, "data"),
      ],
      { wait: "both" },
    );
    assert.ok(svc.agentPort > 0 && svc.httpPort > 0 && svc.agentPort !== svc.httpPort);
    const client = await udpClient("udp4", "127.0.0.1");
    try {
      await send(client, netflowV5(1, 5000, 20), svc.udpPorts[0]!, "127.0.0.1");
    } finally {
      client.close();
    }
    const payload = sketch(7);
    const r = await post(svc.agentPort, "sketches", payload); // no token configured: open
    assert.equal(r.status, 202);
    await waitFor("flows and payload at the backend", async () => {
      const flows = b.records("/api/netflow/netflow").length;
      return flows === 20 && b.accepted.some((x) => x.path === "/api/edge/sketches");
    });
    assert.equal(b.accepted.find((x) => x.path === "/api/edge/sketches")!.raw.toString(), payload);

    const native = (await getJson(svc.httpPort, "/metrics")).body;
    for (const k of CLARION_KEYS) assert.ok(k in native, `native metrics JSON has ${k}`);
    await waitFor(
      "native total_sent",
      async () => (await getJson(svc.httpPort, "/metrics")).body.total_sent === 20,
    );
    const agent = (await getJson(svc.agentPort, "/metrics")).body;
    for (const k of CLARION_KEYS) assert.ok(k in agent, `agent metrics JSON has ${k}`);
    assert.equal(agent.total_received, 1);
    assert.equal((await getJson(svc.httpPort, "/health")).body.status, "ok");
    assert.equal((await getJson(svc.httpPort, "/health")).body.mode, "both");
    assert.equal((await getJson(svc.agentPort, "/health")).body.status, "healthy");
    // One Prometheus exposition for the process on both ports: native and agent series.
    for (const port of [svc.httpPort, svc.agentPort]) {
      const scrape = async () =>
        (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { accept: "text/plain" } })).text();
      // worker stats arrive every second
      await waitFor("decoded flows in the exposition", async () =>
        /^clarion_collector_decoded_flows_total\{exporter="127.0.0.1"\} 20$/m.test(await scrape()),
      );
      const text = await scrape();
      assert.match(text, /^clarion_collector_agent_received_total 1$/m);
      assert.match(text, /^clarion_collector_sink_delivered_flows_total\{sink="clarion\+http:.*\} 20$/m);
    }
    // Relay spooling shows on the native /health too.
    await b.down();
    assert.equal((await post(svc.agentPort, "sketches", sketch(8))).status, 202);
    await waitFor("native health names the relay", async () => {
      const h = await getJson(svc.httpPort, "/health");
      return (
        h.body.status === "degraded" && (h.body.reasons as string[]).some((x) => x.includes("agent-relay"))
      );
    });
    await b.up();
    await waitFor(
      "relay recovered",
      async () => b.accepted.some((x) => x.raw.toString() === sketch(8)),
      30_000,
    );
    svc.proc.kill("SIGTERM");
    assert.equal(await svc.exited, 0, svc.stderr.join("\n"));
  });
});
