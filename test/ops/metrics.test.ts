import assert from "node:assert/strict";
import { describe, it } from "node:test";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import type { KernelUdpCounters, ListenerInfo, WorkerStats } from "../../src/inputs/udp.ts";
import { CollectorMetrics } from "../../src/ops/metrics.ts";
import { emptyStats } from "../../src/protocols/decoder.ts";

const LISTENER: ListenerInfo = {
  name: "udp:2055",
  port: 2055,
  address: "127.0.0.1",
  family: "IPv4",
  receiveBufferBytes: 212_992,
  roles: ["netflow"],
  requestedBufferBytes: 0,
};

function stats(over: Partial<WorkerStats> & { datagrams?: number } = {}): WorkerStats {
  const decoder = emptyStats();
  decoder.datagrams = over.datagrams ?? 0;
  return {
    worker: 0,
    generation: 1,
    decoder,
    exporters: [],
    sequences: [],
    sequenceTotals: { missingFlows: 0, missingDatagrams: 0, resets: 0, late: 0, streams: 0, evicted: 0 },
    missingTemplates: [],
    templates: 0,
    receive: [],
    recordsBatched: 0,
    recordsPending: 0,
    batchesPosted: 0,
    encodeErrors: {},
    internalErrors: 0,
    socketErrors: 0,
    batchBuffers: { hits: 0, misses: 0 },
    encodeMaxMs: 0,
    gcMaxMs: 0,
    ...over,
  };
}

function setup(kernelDrops = 0, unrouted = 0, tail = { readers: 0, sent: 0, dropped: 0 }) {
  const m = new CollectorMetrics(
    {
      queues: () => [],
      listeners: () => [LISTENER],
      kernel: async () =>
        new Map<number, KernelUdpCounters>([[2055, { drops: kernelDrops, rxQueueBytes: 0 }]]),
      workers: () => ({ configured: 1, listening: 1 }),
      unroutedRecords: () => unrouted,
      tail: () => tail,
    },
    "test",
  );
  const scrape = async () => {
    const families = parsePrometheusTextFormat(await m.prometheus());
    return (name: string, labels: Record<string, string> = {}) => {
      const f = families.find((x) => x.name === name);
      assert.ok(f, `metric ${name} is exported`);
      const sample = f.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
      return { type: f.type, value: sample ? Number(sample.value) : undefined };
    };
  };
  return { m, scrape };
}

describe("CollectorMetrics", () => {
  it("exports the kernel's drops as a counter", async () => {
    const { scrape } = setup(17);
    const get = await scrape();
    assert.deepEqual(get("clarion_collector_udp_kernel_dropped_datagrams_total", { listener: "udp:2055" }), {
      type: "COUNTER",
      value: 17,
    });
  });

  it("counts records lost with a dead worker and unrouted records as dropped, by reason", async () => {
    const { m, scrape } = setup(0, 4);
    m.workerStats(stats({ recordsPending: 7 }));
    assert.equal(m.batcherPending(), 7);
    m.workerExited(0, 7);
    assert.equal(m.batcherPending(), 0);
    const get = await scrape();
    assert.equal(get("clarion_collector_dropped_records_total", { reason: "worker_exit" }).value, 7);
    assert.equal(get("clarion_collector_dropped_records_total", { reason: "unrouted" }).value, 4);
    assert.deepEqual(m.pipelineDropped(), { worker_exit: 7, unrouted: 4 });
  });

  it("exports the live tail's readers, and the flows it sent and dropped for them", async () => {
    const { scrape } = setup(0, 0, { readers: 2, sent: 1500, dropped: 42 });
    const get = await scrape();
    assert.deepEqual(get("clarion_collector_tail_readers"), { type: "GAUGE", value: 2 });
    assert.deepEqual(get("clarion_collector_tail_records_total", { result: "sent" }), {
      type: "COUNTER",
      value: 1500,
    });
    assert.deepEqual(get("clarion_collector_tail_records_total", { result: "dropped" }), {
      type: "COUNTER",
      value: 42,
    });
  });

  it("starts a restarted worker's counters again from 0 (by generation)", async () => {
    const { m, scrape } = setup();
    m.workerStats(stats({ internalErrors: 5, datagrams: 10 }));
    // By its first report the restarted worker already counted more than the old one had.
    m.workerStats(stats({ generation: 2, internalErrors: 6, datagrams: 50 }));
    m.workerStats(stats({ generation: 2, internalErrors: 7, datagrams: 60 }));
    const get = await scrape();
    assert.equal(get("clarion_collector_internal_errors_total").value, 12);
  });

  it("counts failed sFlow counter writes by sink", async () => {
    const { m, scrape } = setup();
    m.countersWriteFailed("sqlite:x.db");
    m.countersWriteFailed("sqlite:x.db");
    const get = await scrape();
    assert.equal(
      get("clarion_collector_sink_counters_write_failures_total", { sink: "sqlite:x.db" }).value,
      2,
    );
  });
});
