/**
 * No loss unseen, end to end (issue 11 §2): the real CLI, each loss reason provoked for real, then the
 * counters in JSON /metrics (`dropped_by_reason`) and Prometheus, the exporter's entry in /exporters,
 * /health's reasons and the rate-limited "loss:" warning on stderr asserted.
 * - a tiny receive buffer and a burst: kernel drops, and the same datagrams as a NetFlow v5 sequence gap;
 * - sequence gaps and resets in crafted NetFlow v9, IPFIX and sFlow datagrams;
 * - data with no template: held, then dropped, per exporter and template id;
 * - a stalled stdout reader (queue full), then a closed stdout pipe (write errors, sink failed);
 * - a slow backend: /health says the output is behind while no retry is in progress.
 */
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { FakeBackend } from "../helpers/fake-backend.ts";
import {
  type FieldSpec,
  ipfixPacket,
  ipfixTemplate,
  record,
  set,
  v9Packet,
  v9Template,
} from "../helpers/netflow-builder.ts";
import {
  dirs,
  getJson,
  loopbackArgs,
  netflowV5,
  type Service,
  send,
  sleep,
  startService,
  udpClient,
  waitFor,
} from "../helpers/service.ts";
import { datagram, flowSample, sampledIPv4 } from "../helpers/sflow-builder.ts";

const backends: FakeBackend[] = [];
after(async () => {
  await Promise.allSettled(backends.map((b) => b.close()));
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "clarion-loss-"));
  dirs.push(d);
  return d;
}

type Json = Record<string, unknown>;
const metrics = async (svc: Service) => (await getJson(svc.httpPort, "/metrics")).body;
const byReason = async (svc: Service) => (await metrics(svc)).dropped_by_reason as Record<string, number>;
const health = async (svc: Service) =>
  (await getJson(svc.httpPort, "/health")).body as Json & { reasons: string[] };
async function exporter(svc: Service, ip = "127.0.0.1"): Promise<Json & { loss: Json }> {
  const list = (await getJson(svc.httpPort, "/exporters")).body.exporters as Array<Json & { loss: Json }>;
  const e = list.find((x) => x.exporter === ip);
  assert.ok(e, `exporter ${ip} listed`);
  return e;
}
async function prom(svc: Service, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const r = await fetch(`http://127.0.0.1:${svc.httpPort}/metrics`, { headers: { accept: "text/plain" } });
  const f = parsePrometheusTextFormat(await r.text()).find((x) => x.name === name);
  const m = f?.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
  return m === undefined ? undefined : Number(m.value);
}
/** The "loss:" warnings logged for `reason`. */
function lossLines(svc: Service, reason: string): Json[] {
  return svc.stderr
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Json];
      } catch {
        return [];
      }
    })
    .filter((o) => o.reason === reason && String(o.msg).startsWith("loss: "));
}

const FIELDS: FieldSpec[] = [
  [8, 4],
  [12, 4],
  [2, 4],
];
const recs = (n: number) =>
  Array.from({ length: n }, () => record(FIELDS, ["10.0.0.1", "10.0.0.2", 5])).flat();

describe("loss is visible everywhere", () => {
  it("a tiny receive buffer and a burst: kernel drops and the same loss as a v5 sequence gap", async () => {
    const dir = tmp();
    const svc = await startService(
      loopbackArgs(
        "--workers",
        "1",
        "--udp-rcvbuf",
        "2048",
        "--batch-interval",
        "0.2",
        "--data-dir",
        join(dir, "data"),
        "--output",
        `jsonl:${join(dir, "flows.jsonl")}`,
      ),
    );
    const port = svc.udpPorts[0]!;
    const c = await udpClient("udp4", "127.0.0.1");
    let seq = 0;
    let sent = 0;
    try {
      for (let round = 0; round < 5; round++) {
        // Back to back, far more than a few KB of receive buffer holds.
        await Promise.all(
          Array.from({ length: 400 }, () => {
            const p = send(c, netflowV5(seq, 1, 30), port, "127.0.0.1");
            seq += 30;
            sent++;
            return p;
          }),
        );
        await sleep(300);
        // One more once the socket has drained: it closes the gap, so none is trailing.
        await send(c, netflowV5(seq, 1, 30), port, "127.0.0.1");
        seq += 30;
        sent++;
        await sleep(300);
        if (((await byReason(svc)).kernel_datagrams ?? 0) > 0) break;
      }
    } finally {
      c.close();
    }
    let kernel = 0;
    await waitFor("kernel drops, every one seen as 30 missing flows", async () => {
      const m = await metrics(svc);
      const d = m.dropped_by_reason as Record<string, number>;
      kernel = d.kernel_datagrams!;
      return kernel > 0 && d.sequence_gap_flows === kernel * 30 && m.total_received === (sent - kernel) * 30;
    });
    assert.equal(await prom(svc, "clarion_collector_loss_total", { reason: "kernel_drops" }), kernel);
    assert.deepEqual((await metrics(svc)).udp_kernel_dropped_datagrams, {
      [`udp:${svc.udpPorts[0]}`]: kernel,
      [`udp:${svc.udpPorts[1]}`]: 0,
      [`udp:${svc.udpPorts[2]}`]: 0,
    });
    assert.equal(
      await prom(svc, "clarion_collector_loss_total", { reason: "sequence_gap_flows" }),
      kernel * 30,
    );
    assert.equal(
      await prom(svc, "clarion_collector_udp_kernel_dropped_datagrams_total", { listener: `udp:${port}` }),
      kernel,
    );
    assert.equal(
      await prom(svc, "clarion_collector_sequence_missing_flows_total", { exporter: "127.0.0.1" }),
      kernel * 30,
    );
    const e = await exporter(svc);
    assert.equal(e.loss.sequence_missing_flows, kernel * 30);
    const streams = e.loss.sequence_streams as Array<Json>;
    assert.equal(streams[0]!.protocol, "netflow5");
    assert.equal(streams[0]!.scope, "engine 0/0");
    assert.equal(streams[0]!.missing, kernel * 30);
    const h = await health(svc);
    assert.equal(h.status, "degraded");
    assert.ok(
      h.reasons.some((r) => r.includes("(kernel_drops)") && r.includes(`udp:${port}`)),
      h.reasons.join("\n"),
    );
    assert.ok(
      h.reasons.some((r) => r.includes("(sequence_gap_flows)") && r.includes("127.0.0.1")),
      h.reasons.join("\n"),
    );
    await waitFor("the kernel-drop warning", async () => lossLines(svc, "kernel_drops").length > 0);
    const [w] = lossLines(svc, "kernel_drops");
    assert.equal(w!.level, "warn");
    assert.deepEqual(w!.where, [`udp:${port}`]);
    assert.match(String(w!.remedy), /net\.core\.rmem_max/);
    assert.equal(lossLines(svc, "kernel_drops").length, 1, "at most one warning a minute per reason");
    const [g] = lossLines(svc, "sequence_gap_flows");
    assert.match(
      String(g!.msg),
      /flows missing in the exporters' sequence numbers \(127\.0\.0\.1 netflow5 engine 0\/0\)/,
    );
    svc.proc.kill("SIGTERM");
    assert.equal(await svc.exited, 0);
  });

  it("sequence gaps and resets in NetFlow v9, IPFIX and sFlow datagrams, per exporter and domain", async () => {
    const dir = tmp();
    const svc = await startService(
      loopbackArgs(
        "--workers",
        "2",
        "--data-dir",
        join(dir, "data"),
        "--output",
        `jsonl:${join(dir, "f.jsonl")}`,
      ),
    );
    const port = svc.udpPorts[0]!;
    const [a, b, c] = await Promise.all([0, 1, 2].map(() => udpClient("udp4", "127.0.0.1")));
    try {
      const v9 = (sequence: number, uptimeMs: number) =>
        v9Packet([set(0, v9Template(256, FIELDS)), set(256, recs(2))], { sequence, sourceId: 3, uptimeMs });
      for (const [s, up] of [
        [10, 100_000],
        [11, 101_000],
        [14, 102_000], // 12, 13 missing
        [0, 500], // restart
        [1, 600],
      ] as const)
        await send(a!, v9(s, up), port, "127.0.0.1");
      const ipfix = (sequence: number, n: number) =>
        ipfixPacket([set(2, ipfixTemplate(300, FIELDS)), set(300, recs(n))], { sequence, domain: 9 });
      await send(b!, ipfix(0, 4), port, "127.0.0.1");
      await send(b!, ipfix(4, 4), port, "127.0.0.1");
      await send(b!, ipfix(20, 4), port, "127.0.0.1"); // 12 records missing
      const sample = (sequence: number) =>
        flowSample({
          sequence,
          records: [
            sampledIPv4({
              length: 100,
              protocol: 6,
              src: "10.0.0.1",
              dst: "10.0.0.2",
              srcPort: 1,
              dstPort: 2,
            }),
          ],
        });
      await send(c!, datagram({ sequence: 1, uptime: 600_000, samples: [sample(1)] }), port, "127.0.0.1");
      await send(c!, datagram({ sequence: 3, uptime: 601_000, samples: [sample(5)] }), port, "127.0.0.1");
    } finally {
      for (const s of [a, b, c]) s!.close();
    }
    // v9: 2 datagrams, sFlow: 1 datagram; IPFIX: 12 records, sFlow: 3 samples.
    await waitFor("sequence loss counted", async () => {
      const d = await byReason(svc);
      return d.sequence_gap_datagrams === 3 && d.sequence_gap_flows === 15;
    });
    const m = await metrics(svc);
    assert.equal(m.sequence_resets, 1);
    assert.equal(m.total_received, 5 * 2 + 3 * 4 + 2);
    assert.equal(
      await prom(svc, "clarion_collector_sequence_missing_datagrams_total", { exporter: "127.0.0.1" }),
      3,
    );
    assert.equal(await prom(svc, "clarion_collector_sequence_resets_total", { exporter: "127.0.0.1" }), 1);
    const e = await exporter(svc);
    assert.equal(e.loss.sequence_missing_flows, 15);
    assert.equal(e.loss.sequence_missing_datagrams, 3);
    assert.equal(e.loss.sequence_resets, 1);
    const streams = (e.loss.sequence_streams as Array<Json>)
      .map((s) => `${s.protocol} ${s.scope}: ${s.missing} ${s.unit}, ${s.resets} resets`)
      .sort();
    assert.deepEqual(streams, [
      "ipfix domain 9: 12 flows, 0 resets",
      "netflow9 domain 3: 2 datagrams, 1 resets",
      "sflow5 agent 192.0.2.1/0 source 1: 3 flows, 0 resets",
      "sflow5 agent 192.0.2.1/0: 1 datagrams, 0 resets",
    ]);
    const h = await health(svc);
    assert.equal(h.status, "degraded");
    assert.ok(
      h.reasons.some((r) => r.includes("(sequence_gap_datagrams)")),
      h.reasons.join("\n"),
    );
    await waitFor("the sequence warnings", async () => lossLines(svc, "sequence_gap_datagrams").length > 0);
    assert.match(String(lossLines(svc, "sequence_gap_datagrams")[0]!.remedy), /network path/);
    svc.proc.kill("SIGTERM");
    assert.equal(await svc.exited, 0);
  });

  it("data with no template: held, then dropped, per exporter and template id", async () => {
    const dir = tmp();
    const svc = await startService(
      loopbackArgs(
        "--workers",
        "1",
        "--data-dir",
        join(dir, "data"),
        "--output",
        `jsonl:${join(dir, "f.jsonl")}`,
      ),
    );
    const c = await udpClient("udp4", "127.0.0.1");
    try {
      await send(
        c,
        v9Packet([set(256, recs(3))], { sequence: 1, sourceId: 4 }),
        svc.udpPorts[0]!,
        "127.0.0.1",
      );
    } finally {
      c.close();
    }
    await waitFor("held", async () => (await metrics(svc)).held_sets === 1);
    let e = await exporter(svc);
    assert.equal(e.loss.missing_template_held_sets, 1);
    assert.deepEqual(e.loss.missing_templates, [
      { version: 9, domain: 4, template_id: 256, dropped: 0, held: 1 },
    ]);
    // The hold lasts a few seconds, then the set is dropped and counted.
    await waitFor("dropped", async () => (await byReason(svc)).missing_template_sets === 1, 30_000);
    e = await exporter(svc);
    assert.equal(e.loss.missing_template_dropped_sets, 1);
    assert.deepEqual(e.loss.missing_templates, [
      { version: 9, domain: 4, template_id: 256, dropped: 1, held: 0 },
    ]);
    assert.equal(
      await prom(svc, "clarion_collector_missing_template_dropped_sets_total", { exporter: "127.0.0.1" }),
      1,
    );
    assert.equal(await prom(svc, "clarion_collector_loss_total", { reason: "missing_template" }), 1);
    const h = await health(svc);
    assert.ok(
      h.reasons.some((r) => r.includes("(missing_template)") && r.includes("template 256")),
      h.reasons.join("\n"),
    );
    await waitFor("the warning", async () => lossLines(svc, "missing_template").length > 0);
    assert.match(String(lossLines(svc, "missing_template")[0]!.msg), /127\.0\.0\.1 v9 domain 4 template 256/);
    svc.proc.kill("SIGTERM");
    assert.equal(await svc.exited, 0);
  });

  it("a stalled stdout reader fills the queue (queue_full); a closed stdout pipe fails the output", async () => {
    const dir = tmp();
    const svc = await startService(
      loopbackArgs(
        "--workers",
        "1",
        "--batch-size",
        "30",
        "--queue-size",
        "2",
        "--data-dir",
        join(dir, "data"),
        "--output",
        "jsonl:-",
      ),
    );
    svc.proc.stdout!.pause(); // nobody reads: the pipe fills, then the queue
    const c = await udpClient("udp4", "127.0.0.1");
    try {
      for (let i = 0; i < 400; i++) await send(c, netflowV5(i * 30, 1, 30), svc.udpPorts[0]!, "127.0.0.1");
    } finally {
      c.close();
    }
    // 12,000 flows against a 64 KiB pipe and a 2-batch queue: drops are certain, only slow on a loaded machine
    await waitFor("queue drops", async () => ((await byReason(svc)).queue_full ?? 0) > 0, 60_000);
    const m = await metrics(svc);
    const sink = (m.sinks as Record<string, Json>)["jsonl:-"]!;
    assert.ok((sink.dropped as Record<string, number>).queue_full! > 0);
    assert.equal(m.dropped, sink.dropped_total);
    assert.ok((await prom(svc, "clarion_collector_loss_total", { reason: "queue_full" }))! > 0);
    let h = await health(svc);
    assert.equal(h.status, "degraded");
    assert.ok(
      h.reasons.some((r) => r.includes("(queue_full)") && r.includes("jsonl:-")),
      h.reasons.join("\n"),
    );
    await waitFor("the queue warning", async () => lossLines(svc, "queue_full").length > 0);
    assert.match(String(lossLines(svc, "queue_full")[0]!.remedy), /--queue-size/);

    // The reader goes away for good.
    svc.proc.stdout!.destroy();
    const c2 = await udpClient("udp4", "127.0.0.1");
    try {
      for (let i = 0; i < 20; i++) {
        await send(c2, netflowV5(i * 30, 1, 30), svc.udpPorts[0]!, "127.0.0.1");
        await sleep(20);
      }
    } finally {
      c2.close();
    }
    await waitFor("write errors", async () => ((await byReason(svc)).write_error ?? 0) > 0);
    h = await health(svc);
    assert.ok(
      h.reasons.some((r) => r === "sink jsonl:- failed: output closed (broken pipe): its flows are dropped"),
      h.reasons.join("\n"),
    );
    await waitFor("the write-error warning", async () => lossLines(svc, "write_error").length > 0);
    svc.proc.kill("SIGTERM");
    await svc.exited;
  });

  it("a slow backend: /health says the output is behind while no retry is in progress", async () => {
    const b = new FakeBackend();
    await b.up();
    backends.push(b);
    b.fault = () => ({ kind: "slow", delayMs: 4000 });
    const dir = tmp();
    const svc = await startService(
      loopbackArgs(
        "--workers",
        "1",
        "--batch-size",
        "1",
        "--queue-size",
        "1000", // a burst of 150 one-record batches waits for the spool's appends, not dropped
        "--data-dir",
        join(dir, "data"),
        "--backend-url",
        b.url,
        "--output",
        `clarion+http://127.0.0.1:${b.port}`,
      ),
    );
    const c = await udpClient("udp4", "127.0.0.1");
    try {
      for (let i = 0; i < 150; i++) await send(c, netflowV5(i, 1 + i, 1), svc.udpPorts[0]!, "127.0.0.1");
    } finally {
      c.close();
    }
    await waitFor("behind", async () =>
      (await health(svc)).reasons.some((r) => / behind: \d+ batches/.test(r)),
    );
    const h = await health(svc);
    assert.equal(h.status, "degraded");
    const sinks = h.sinks as Array<Json>;
    assert.equal(sinks[0]!.spooling, false, "no retry in progress: the backend answers, slowly");
    assert.ok(!h.reasons.some((r) => r.includes("spooling")), h.reasons.join("\n"));
    assert.equal((await byReason(svc)).queue_full, 0, "slow, not lossy");
    b.fault = null;
    svc.proc.kill("SIGKILL");
    await svc.exited;
  });
});
