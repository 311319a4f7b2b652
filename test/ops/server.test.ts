import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseListQuery, startOpsServer, wantsPrometheus } from "../../src/ops/server.ts";

describe("wantsPrometheus", () => {
  it("serves Prometheus text to Prometheus's Accept headers", () => {
    assert.equal(
      wantsPrometheus(
        "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
      ),
      true,
    );
    assert.equal(wantsPrometheus("text/plain;version=0.0.4;q=1,*/*;q=0.1"), true);
    assert.equal(wantsPrometheus("text/plain"), true);
  });
  it("serves JSON to plain clients", () => {
    assert.equal(wantsPrometheus(undefined), false);
    assert.equal(wantsPrometheus("*/*"), false);
    assert.equal(wantsPrometheus("application/json"), false);
    assert.equal(wantsPrometheus("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"), false);
    assert.equal(wantsPrometheus("application/json, text/plain;q=0.5"), false);
  });
  it("honours ?format=", () => {
    assert.equal(wantsPrometheus("application/json", "prometheus"), true);
    assert.equal(wantsPrometheus("text/plain", "json"), false);
  });
});

describe("ops server", () => {
  it("routes /health, /metrics, /templates, /exporters", async () => {
    let healthy = false;
    const srv = await startOpsServer({
      host: "127.0.0.1",
      port: 0,
      view: {
        health: () => ({ httpStatus: healthy ? 200 : 503, body: { status: healthy ? "ok" : "starting" } }),
        clarionMetrics: () => ({ total_received: 1 }),
        prometheus: async () => ({
          contentType: "text/plain; version=0.0.4; charset=utf-8",
          body: "x_total 1\n",
        }),
        templates: async () => ({ templates: [] }),
        exporters: () => ({ exporters: [] }),
      },
    });
    try {
      const base = `http://127.0.0.1:${srv.port}`;
      assert.equal((await fetch(`${base}/health`)).status, 503);
      healthy = true;
      const h = await fetch(`${base}/health`);
      assert.equal(h.status, 200);
      assert.deepEqual(await h.json(), { status: "ok" });
      assert.deepEqual(await (await fetch(`${base}/metrics`)).json(), { total_received: 1 });
      const p = await fetch(`${base}/metrics`, { headers: { accept: "text/plain;version=0.0.4" } });
      assert.match(p.headers.get("content-type") ?? "", /^text\/plain/);
      assert.equal(await p.text(), "x_total 1\n");
      assert.deepEqual(await (await fetch(`${base}/templates`)).json(), { templates: [] });
      assert.deepEqual(await (await fetch(`${base}/exporters`)).json(), { exporters: [] });
    } finally {
      await srv.close();
    }
  });
});

describe("/templates and /exporters pages", () => {
  it("parses limit, offset and exporter; refuses what is not a page", () => {
    assert.deepEqual(parseListQuery({}), { limit: 1000, offset: 0 });
    assert.deepEqual(parseListQuery({ limit: "5", offset: "10", exporter: "192.0.2.1" }), {
      limit: 5,
      offset: 10,
      exporter: "192.0.2.1",
    });
    for (const bad of [
      { limit: "-1" },
      { limit: "10001" },
      { limit: "1.5" },
      { offset: "x" },
      { offset: "-3" },
    ])
      assert.equal(typeof parseListQuery(bad), "string", JSON.stringify(bad));
  });

  it("hands the page to the view and answers 400 for a bad one", async () => {
    const seen: unknown[] = [];
    const srv = await startOpsServer({
      host: "127.0.0.1",
      port: 0,
      view: {
        health: () => ({ httpStatus: 200, body: {} }),
        clarionMetrics: () => ({}),
        prometheus: async () => ({ contentType: "text/plain", body: "" }),
        templates: async (q) => {
          seen.push(q);
          return { templates: [] };
        },
        exporters: (q) => {
          seen.push(q);
          return { exporters: [] };
        },
      },
    });
    try {
      const base = `http://127.0.0.1:${srv.port}`;
      assert.equal((await fetch(`${base}/templates?limit=2&offset=4&exporter=192.0.2.9`)).status, 200);
      assert.equal((await fetch(`${base}/exporters?offset=1`)).status, 200);
      assert.equal((await fetch(`${base}/templates?limit=100000`)).status, 400);
      assert.equal((await fetch(`${base}/exporters?offset=-1`)).status, 400);
      assert.deepEqual(seen, [
        { limit: 2, offset: 4, exporter: "192.0.2.9" },
        { limit: 1000, offset: 1 },
      ]);
    } finally {
      await srv.close();
    }
  });
});
