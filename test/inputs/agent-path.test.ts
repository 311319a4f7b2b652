/**
 * The agent relay must only ever POST to `{backend}/api/edge/<plain path>`: every encoding trick a client
 * can put in the request target is refused with 400, and what reaches a recording backend is asserted.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { type AgentCollector, bearerToken, startAgentCollector } from "../../src/inputs/agent.ts";
import { checkPath, edgePath, relayUrl } from "../../src/inputs/edge-path.ts";
import { Spool } from "../../src/pipeline/spool.ts";
import { FakeBackend } from "../helpers/fake-backend.ts";

const dirs: string[] = [];
const backends: FakeBackend[] = [];
const collectors: AgentCollector[] = [];
after(async () => {
  await Promise.allSettled(collectors.map((c) => c.close()));
  await Promise.allSettled(backends.map((b) => b.close()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const quiet = { info() {}, warn() {}, error() {} };

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "agent-path-"));
  dirs.push(d);
  return d;
}

async function setup(token?: string, dataDir = tmp(), backendPath = "") {
  const b = new FakeBackend();
  await b.up();
  backends.push(b);
  const c = await startAgentCollector({
    host: "127.0.0.1",
    port: 0,
    backendUrl: `${b.url}${backendPath}`,
    dataDir,
    token,
    timeoutMs: 500,
    retry: { baseDelayMs: 5, maxDelayMs: 50 },
    breaker: { resetMs: 50, maxResetMs: 200 },
    logger: quiet,
  });
  collectors.push(c);
  return { b, c, dataDir };
}

/** A POST with the request target exactly as given (fetch and URL would normalise it). */
function rawPost(
  port: number,
  target: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const body = '{"sketches":[1]}';
    const req = request(
      {
        host: "127.0.0.1",
        port,
        method: "POST",
        path: target,
        headers: { "content-type": "application/json", "content-length": body.length, ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Request targets that must never be relayed. */
const ATTACKS = [
  "/api/edge/",
  "/api/edge/..",
  "/api/edge/.",
  "/api/edge/...",
  "/api/edge/a/..",
  "/api/edge/a/../../admin",
  "/api/edge/../../v1/ingest",
  "/api/edge/./sketches",
  "/api/edge/..%2fadmin",
  "/api/edge/..%2Fadmin",
  "/api/edge/%2e%2e/admin",
  "/api/edge/%2E%2E/%2E%2E/admin",
  "/api/edge/.%2e/admin",
  "/api/edge/%252e%252e/%252e%252e/admin",
  "/api/edge/%252e%252e%252f%252e%252e%252fadmin",
  "/api/edge/%25252e%25252e/admin",
  "/api/edge/a%2F..%2F..%2Fadmin",
  "/api/edge/a%252F..%252F..%252Fadmin",
  "/api/edge/a\\..\\..\\admin",
  "/api/edge/a%5c..%5c..%5cadmin",
  "/api/edge/a%255c..%255cadmin",
  "/api/edge/..;/admin",
  "/api/edge/a;/../admin",
  "/api/edge/sketches;jsessionid=1",
  "/api/edge/sketches%3finject=1",
  "/api/edge/sketches%253finject=1",
  "/api/edge/sketches%23frag",
  "/api/edge/sketches#frag",
  "/api/edge/a//b",
  "/api/edge//admin",
  "/api/edge/a/b/",
  "/api/edge/%c0%ae%c0%ae/admin",
  "/api/edge/%u002e%u002e/admin",
  "/api/edge/%e2%80%a4%e2%80%a4/admin",
  "/api/edge/caf%C3%A9",
  "/api/edge/a%00b",
  "/api/edge/a:b",
  "/api/edge/@evil.example",
  "/api/edge/%40evil.example",
  `/api/edge/${"a".repeat(129)}`,
  `/api/edge/${Array.from({ length: 100 }, () => "abcdef").join("/")}`,
  `/api/edge/${Array.from({ length: 17 }, () => "a").join("/")}`,
];

describe("edge path rules", () => {
  test("plain paths pass, the query string is dropped", () => {
    assert.deepEqual(edgePath("/api/edge/sketches"), { path: "sketches" });
    assert.deepEqual(edgePath("/api/edge/sketches/binary?x=1&y=2"), { path: "sketches/binary" });
    assert.deepEqual(edgePath("/api/edge/v1.2/sk_x-y~z"), { path: "v1.2/sk_x-y~z" });
    assert.deepEqual(edgePath(`/api/edge/${Array.from({ length: 16 }, () => "a").join("/")}`), {
      path: Array.from({ length: 16 }, () => "a").join("/"),
    });
  });

  test("every trick is refused with a reason", () => {
    for (const t of ATTACKS) {
      const r = edgePath(t);
      assert.ok("error" in r, `${t} must be refused, got ${JSON.stringify(r)}`);
    }
    assert.ok("error" in edgePath("/API/edge/x"));
    assert.ok("error" in edgePath("/api/edgex/x"));
  });

  test("relayUrl keeps the backend's own path, credentials and nothing else", () => {
    assert.equal(relayUrl(new URL("http://b:8000"), "sketches").href, "http://b:8000/api/edge/sketches");
    assert.equal(
      relayUrl(new URL("https://u:p@b/base/?q=1#f"), "a/b").href,
      "https://u:p@b/base/api/edge/a/b",
    );
    assert.throws(() => relayUrl(new URL("http://b"), "../admin"), /dot segments/);
    assert.throws(() => relayUrl(new URL("http://b"), "a?x=1"), /letters, digits/);
    assert.deepEqual(checkPath("x"), { path: "x" });
  });

  test("the bearer scheme is case-insensitive (RFC 7235)", () => {
    assert.equal(bearerToken("Bearer abc"), "abc");
    assert.equal(bearerToken("bearer abc"), "abc");
    assert.equal(bearerToken("BEARER   abc"), "abc");
    assert.equal(bearerToken("Basic abc"), null);
    assert.equal(bearerToken("Bearer"), null);
    assert.equal(bearerToken("Bearer "), null);
    assert.equal(bearerToken(undefined), null);
  });
});

describe("agent relay against a recording backend", () => {
  test("every trick gets 400 and nothing reaches the backend; plain paths reach exactly /api/edge/<path>", async () => {
    const { b, c } = await setup();
    for (const t of ATTACKS) {
      const r = await rawPost(c.port, t);
      // 400 from our check, or 404/400 from the router for targets it does not even route to us
      assert.ok(r.status === 400 || r.status === 404, `${t}: ${r.status} ${r.body}`);
    }
    assert.equal((await rawPost(c.port, "/api/edge/sketches?inject=1&admin=true")).status, 202);
    assert.equal((await rawPost(c.port, "/api/edge/v1.2/sk_x-y~z")).status, 202);
    await until(() => b.accepted.length === 2);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(
      b.log.map((l) => l.path),
      ["/api/edge/sketches", "/api/edge/v1.2/sk_x-y~z"],
    );
    assert.ok(c.stats().rejected.invalid >= ATTACKS.length - 5);
  });

  test("a backend URL with a path prefix stays under it", async () => {
    const { b, c } = await setup(undefined, tmp(), "/prefix/");
    assert.equal((await rawPost(c.port, "/api/edge/a/b")).status, 202);
    assert.equal((await rawPost(c.port, "/api/edge/%2e%2e/%2e%2e/admin")).status, 400);
    await until(() => b.log.length === 1);
    assert.equal(b.log[0]?.path, "/prefix/api/edge/a/b");
  });

  test("token: any case of the scheme, checked on every path but the ops endpoints", async () => {
    const { b, c } = await setup("s3cret");
    assert.equal((await rawPost(c.port, "/api/edge/x", { authorization: "bearer s3cret" })).status, 202);
    assert.equal((await rawPost(c.port, "/api/edge/x", { authorization: "BEARER s3cret" })).status, 202);
    assert.equal((await rawPost(c.port, "/api/edge/x", { authorization: "Bearer s3cre" })).status, 401);
    assert.equal((await rawPost(c.port, "/api/edge/x", { authorization: "Basic s3cret" })).status, 401);
    assert.equal((await rawPost(c.port, "/api/edge/x")).status, 401);
    assert.equal((await rawPost(c.port, "/API/edge/x")).status, 401);
    assert.equal((await rawPost(c.port, "//api/edge/x")).status, 401);
    assert.equal((await fetch(`${c.url}/health`)).status, 200);
    await until(() => b.accepted.length === 2);
    assert.equal(c.stats().rejected.unauthorized, 5);
  });

  test("an unsafe path spooled by an older version is dead-lettered, never sent", async () => {
    const dataDir = tmp();
    const spool = await Spool.open({ dir: join(dataDir, "spool", "agent-relay") });
    for (const [id, key] of [
      ["1", "../../admin"],
      ["2", "sketches?inject=1"],
      ["3", "sketches"],
    ] as const) {
      await spool.append({ id, key, meta: "{}", records: 1, createdMs: Date.now(), data: Buffer.from("{}") });
    }
    await spool.close();
    const { b, c } = await setup(undefined, dataDir);
    await until(() => c.stats().spoolBatches === 0);
    assert.deepEqual(
      b.log.map((l) => l.path),
      ["/api/edge/sketches"],
    );
    assert.equal(c.stats().relay.deadLettered, 2);
  });
});
