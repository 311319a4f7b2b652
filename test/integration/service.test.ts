/**
 * End to end: the real CLI as a child process on free ports, NetFlow v5 datagrams built here, both a
 * jsonl and a sqlite output; the ops endpoints; SIGTERM with a batch pending loses nothing; --workers 2.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, it } from "node:test";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import {
  dirs,
  getJson,
  loopbackArgs,
  netflowV5,
  send,
  startService,
  udpClient,
  waitFor,
} from "../helpers/service.ts";

function jsonlSrcPorts(path: string): number[] {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => (JSON.parse(l) as { src_port: number }).src_port)
    .sort((a, b) => a - b);
}

function sqliteSrcPorts(path: string): number[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return (
      db.prepare("SELECT src_port FROM flows ORDER BY src_port").all() as Array<{ src_port: number }>
    ).map((r) => r.src_port);
  } finally {
    db.close();
  }
}

function range(from: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => from + i);
}

describe("collector service", () => {
  it("receives NetFlow v5 into jsonl and sqlite, serves ops endpoints, and loses nothing on SIGTERM", async () => {
    const dir = mkdtempSync(join(tmpdir(), "clarion-svc-"));
    dirs.push(dir);
    const jsonl = join(dir, "out", "flows.jsonl");
    const db = join(dir, "out", "flows.db");
    const svc = await startService(
      loopbackArgs(
        "--workers",
        "1",
        "--batch-size",
        "100",
        "--batch-interval",
        "600",
        "--data-dir",
        join(dir, "data"),
        "--output",
        `jsonl:${jsonl}`,
        "--output",
        `sqlite:${db}`,
      ),
    );
    assert.equal(svc.udpPorts.length, 3);

    const health = await getJson(svc.httpPort, "/health");
    assert.equal(health.status, 200);
    assert.equal(health.body.status, "ok");
    assert.equal(health.body.service, "clarion-collector");
    assert.equal(health.body.backend_url, "http://localhost:8000");

    // 250 records over the three ports: 2 full batches of 100 go out at once, 50 stay pending.
    // One exporter (source port) per collector port, each with its own flow_sequence: no sequence gap.
    const clients = await Promise.all([0, 1, 2].map(() => udpClient("udp4", "127.0.0.1")));
    try {
      for (let d = 0; d < 10; d++) {
        const seq = Math.floor(d / 3) * 25;
        await send(clients[d % 3]!, netflowV5(seq, 1000 + d * 25, 25), svc.udpPorts[d % 3]!, "127.0.0.1");
      }
    } finally {
      for (const c of clients) c.close();
    }
    await waitFor(
      "250 records decoded",
      async () => (await getJson(svc.httpPort, "/metrics")).body.total_received === 250,
    );

    const m = (await getJson(svc.httpPort, "/metrics")).body;
    for (const k of [
      "total_received",
      "total_sent",
      "pending",
      "errors",
      "batch_size",
      "batch_interval_seconds",
    ]) {
      assert.ok(k in m, `metrics JSON has ${k}`);
    }
    assert.equal(m.batch_size, 100);
    assert.equal(m.batch_interval_seconds, 600);
    assert.equal(m.errors, 0);
    await waitFor("two batches written to both sinks", async () => {
      const b = (await getJson(svc.httpPort, "/metrics")).body;
      const sinks = b.sinks as Record<string, { sent: number; pending: number }>;
      // total_sent and pending are the first output's (not summed over outputs); each output has its own.
      return (
        b.total_sent === 200 &&
        b.pending === 50 &&
        b.primary_output === `jsonl:${jsonl}` &&
        sinks[`jsonl:${jsonl}`]?.sent === 200 &&
        sinks[`sqlite:${db}`]?.sent === 200
      );
    });
    {
      // The totals add up: received = sent + pending + dropped, for the primary output.
      const b = (await getJson(svc.httpPort, "/metrics")).body;
      assert.equal(
        b.total_received,
        (b.total_sent as number) + (b.pending as number) + (b.dropped as number),
      );
      assert.equal(b.dropped, 0);
      assert.deepEqual(
        Object.values(b.dropped_by_reason as Record<string, number>).filter((n) => n !== 0),
        [],
      );
    }

    const prom = await fetch(`http://127.0.0.1:${svc.httpPort}/metrics`, {
      headers: { accept: "text/plain;version=0.0.4;q=0.9,*/*;q=0.1" },
    });
    assert.match(prom.headers.get("content-type") ?? "", /^text\/plain/);
    const families = parsePrometheusTextFormat(await prom.text());
    const fam = (name: string) => {
      const f = families.find((x) => x.name === name);
      assert.ok(f, `metric ${name} is exported`);
      return f;
    };
    const sum = (name: string, filter: (l: Record<string, string>) => boolean = () => true) =>
      fam(name)
        .metrics.filter((x) => filter(x.labels ?? {}))
        .reduce((n, x) => n + Number(x.value), 0);
    assert.equal(sum("clarion_collector_received_datagrams_total"), 10);
    assert.equal(
      sum("clarion_collector_received_datagrams_total", (l) => l.exporter === "127.0.0.1"),
      10,
    );
    assert.equal(sum("clarion_collector_decoded_flows_total"), 250);
    assert.equal(sum("clarion_collector_decode_errors_total"), 0);
    assert.equal(
      sum("clarion_collector_sink_written_records_total", (l) => l.sink === `jsonl:${jsonl}`),
      200,
    );
    assert.equal(
      sum("clarion_collector_sink_written_records_total", (l) => l.sink === `sqlite:${db}`),
      200,
    );
    assert.equal(sum("clarion_collector_sink_dropped_records_total"), 0);
    assert.equal(fam("clarion_collector_sink_write_duration_seconds").type, "HISTOGRAM");
    assert.equal(fam("clarion_collector_sink_queue_batches").metrics.length, 2);
    assert.equal(fam("clarion_collector_udp_receive_buffer_bytes").metrics.length, 3);
    assert.ok(sum("clarion_collector_udp_receive_buffer_bytes") > 0);
    assert.equal(fam("clarion_collector_udp_kernel_dropped_datagrams_total").type, "COUNTER");
    assert.equal(sum("clarion_collector_udp_kernel_dropped_datagrams_total"), 0);
    assert.equal(sum("clarion_collector_dropped_records_total"), 0);
    assert.equal(fam("clarion_collector_dropped_records_total").metrics.length, 2);
    fam("clarion_collector_templates");
    fam("clarion_collector_held_sets_total");
    fam("clarion_collector_missing_template_drops_total");

    const exporters = (await getJson(svc.httpPort, "/exporters")).body.exporters as Array<
      Record<string, unknown>
    >;
    assert.equal(exporters.length, 1);
    assert.equal(exporters[0]!.exporter, "127.0.0.1");
    assert.equal(exporters[0]!.packets, 10);
    assert.equal(exporters[0]!.flows, 250);
    assert.equal(exporters[0]!.errors, 0);
    assert.ok("sampling_rate" in exporters[0]! && "last_seen" in exporters[0]!);

    const templates = await getJson(svc.httpPort, "/templates");
    assert.equal(templates.status, 200);
    assert.ok(Array.isArray(templates.body.templates));

    // A written batch's buffers go back to its worker, and the next batch is encoded into them.
    assert.equal(
      sum("clarion_collector_batch_buffers_total", (l) => l.result === "reused"),
      0,
    );
    assert.equal(
      sum("clarion_collector_batch_buffers_total", (l) => l.result === "allocated"),
      4,
    );
    const more = await udpClient("udp4", "127.0.0.1");
    try {
      for (let d = 10; d < 14; d++) {
        await send(more, netflowV5(d * 25, 1000 + d * 25, 25), svc.udpPorts[0]!, "127.0.0.1");
      }
    } finally {
      more.close();
    }
    await waitFor("the third batch encoded into reused buffers (both sinks)", async () => {
      const text = await (
        await fetch(`http://127.0.0.1:${svc.httpPort}/metrics`, { headers: { accept: "text/plain" } })
      ).text();
      const f = parsePrometheusTextFormat(text).find(
        (x) => x.name === "clarion_collector_batch_buffers_total",
      );
      const n = (result: string) =>
        Number(f?.metrics.find((x) => x.labels?.result === result)?.value ?? Number.NaN);
      return n("reused") === 2 && n("allocated") === 4;
    });

    svc.proc.kill("SIGTERM");
    assert.equal(await svc.exited, 0, svc.stderr.join("\n"));
    const want = range(1000, 350);
    assert.deepEqual(jsonlSrcPorts(jsonl), want);
    assert.deepEqual(sqliteSrcPorts(db), want);
  });

  it("runs two workers on a dual-stack socket and loses nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "clarion-svc2-"));
    dirs.push(dir);
    const jsonl = join(dir, "flows.jsonl");
    const svc = await startService([
      "--bind-host",
      "::",
      "--netflow-port",
      "0",
      "--ipfix-port",
      "0",
      "--sflow-port",
      "0",
      "--http-port",
      "0",
      "--workers",
      "2",
      "--batch-size",
      "1000",
      "--batch-interval",
      "600",
      "--data-dir",
      join(dir, "data"),
      "--output",
      `jsonl:${jsonl}`,
    ]);
    const h = await getJson(svc.httpPort, "/health");
    assert.equal(h.status, 200);
    assert.deepEqual(h.body.workers, { configured: 2, listening: 2 });
    // Many source sockets so the kernel spreads them over both workers; IPv4 and IPv6.
    let base = 20_000;
    for (let c = 0; c < 8; c++) {
      const v6 = c % 2 === 1;
      const s = await udpClient(v6 ? "udp6" : "udp4", v6 ? "::1" : "127.0.0.1");
      try {
        for (let d = 0; d < 3; d++) {
          await send(s, netflowV5(d, base, 10), svc.udpPorts[0]!, v6 ? "::1" : "127.0.0.1");
          base += 10;
        }
      } finally {
        s.close();
      }
    }
    await waitFor(
      "240 records decoded",
      async () => (await getJson(svc.httpPort, "/metrics")).body.total_received === 240,
    );
    const ex = (await getJson(svc.httpPort, "/exporters")).body.exporters as Array<{
      exporter: string;
      flows: number;
    }>;
    assert.deepEqual(
      ex.map((e) => [e.exporter, e.flows]).sort((a, b) => String(a[0]).localeCompare(String(b[0]), "en")),
      [
        ["::1", 120],
        ["127.0.0.1", 120],
      ],
    );
    svc.proc.kill("SIGTERM");
    assert.equal(await svc.exited, 0, svc.stderr.join("\n"));
    assert.deepEqual(jsonlSrcPorts(jsonl), range(20_000, 240));
  });
});
