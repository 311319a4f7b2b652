import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { evaluateHealth } from "../../src/ops/health.ts";
import type { SinkQueueStats } from "../../src/pipeline/queue.ts";

function sink(over: Partial<SinkQueueStats> = {}): SinkQueueStats {
  const z = { queue_full: 0, write_error: 0, closed: 0 };
  return {
    name: "jsonl:-",
    length: 0,
    capacity: 10,
    pendingRecords: 0,
    writtenBatches: 0,
    writtenRecords: 0,
    droppedBatches: { ...z },
    droppedRecords: { ...z },
    lastDropMs: 0,
    lastErrorMs: 0,
    ...over,
  };
}

describe("evaluateHealth", () => {
  const base = { workersConfigured: 2, workersListening: 2, sinks: [sink()], nowMs: 1_000_000 };
  it("is starting (503) until listening", () => {
    assert.deepEqual(
      { ...evaluateHealth({ ...base, phase: "starting" }), reasons: [] },
      { status: "starting", httpStatus: 503, reasons: [] },
    );
  });
  it("is ok when all is well", () => {
    const h = evaluateHealth({ ...base, phase: "running" });
    assert.equal(h.status, "ok");
    assert.equal(h.httpStatus, 200);
  });
  it("is degraded when a worker is down or a sink dropped recently or is nearly full", () => {
    assert.equal(evaluateHealth({ ...base, phase: "running", workersListening: 1 }).status, "degraded");
    assert.equal(
      evaluateHealth({ ...base, phase: "running", sinks: [sink({ lastDropMs: base.nowMs - 1000 })] }).status,
      "degraded",
    );
    assert.equal(
      evaluateHealth({ ...base, phase: "running", sinks: [sink({ lastDropMs: base.nowMs - 120_000 })] })
        .status,
      "ok",
    );
    assert.equal(
      evaluateHealth({ ...base, phase: "running", sinks: [sink({ length: 9 })] }).status,
      "degraded",
    );
  });
  it("is degraded (200) while a remote sink spools, naming it and its last error", () => {
    const remote = [
      { name: "flows-v1+http://h/v1/ingest", spooling: true, spoolBatches: 3, lastError: "HTTP 503" },
      { name: "clarion+http://b:8000", spooling: false, spoolBatches: 0, lastError: "" },
    ];
    const h = evaluateHealth({ ...base, phase: "running", remote });
    assert.equal(h.status, "degraded");
    assert.equal(h.httpStatus, 200);
    assert.deepEqual(h.reasons, [
      "sink flows-v1+http://h/v1/ingest spooling: 3 batches wait on disk for delivery (last error: HTTP 503)",
    ]);
    const ok = evaluateHealth({ ...base, phase: "running", remote: [remote[1]!] });
    assert.equal(ok.status, "ok");
  });
  it("is 503 while stopping or with no worker listening", () => {
    assert.equal(evaluateHealth({ ...base, phase: "stopping" }).httpStatus, 503);
    assert.equal(evaluateHealth({ ...base, phase: "running", workersListening: 0 }).httpStatus, 503);
  });
});

describe("evaluateHealth: loss and backlog", () => {
  const base = {
    workersConfigured: 1,
    workersListening: 1,
    sinks: [],
    nowMs: 1_000_000,
    phase: "running" as const,
  };
  it("is degraded with the recent loss lines and a sink's lasting failure", () => {
    const h = evaluateHealth({
      ...base,
      loss: ["loss in the last 5 min (kernel_drops): 3 datagrams …"],
      sinkFailures: [{ name: "jsonl:-", failure: "output closed (broken pipe): its flows are dropped" }],
    });
    assert.equal(h.status, "degraded");
    assert.equal(h.httpStatus, 200);
    assert.deepEqual(h.reasons, [
      "sink jsonl:- failed: output closed (broken pipe): its flows are dropped",
      "loss in the last 5 min (kernel_drops): 3 datagrams …",
    ]);
  });
  it("is degraded while a remote sink is behind even though nothing is retried", () => {
    const r = { name: "clarion+http://b", spooling: false, spoolBatches: 5, spoolRecords: 50, lastError: "" };
    assert.equal(evaluateHealth({ ...base, remote: [{ ...r, oldestAgeMs: 1000 }] }).status, "ok");
    const old = evaluateHealth({ ...base, remote: [{ ...r, oldestAgeMs: 31_000 }] });
    assert.equal(old.status, "degraded");
    assert.deepEqual(old.reasons, [
      "sink clarion+http://b behind: 5 batches (50 flows) wait for delivery, the oldest for 31 s",
    ]);
    const deep = evaluateHealth({ ...base, remote: [{ ...r, spoolBatches: 101, oldestAgeMs: 0 }] });
    assert.equal(deep.status, "degraded");
  });
});
