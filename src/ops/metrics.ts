/**
 * Metrics (DESIGN §5, Akvorado's "everything that moves gets a counter"): one prom-client registry fed
 * from the workers' periodic stats (cumulative per worker, turned into counter increments here) and from
 * the sink queues' events. Names: clarion_collector_…, counters end in _total, units spelled out; the
 * exporter is the only high-cardinality label.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { DECODE_ERROR_CODES } from "../core/errors.ts";
import type { KernelUdpCounters, ListenerInfo, WorkerStats } from "../inputs/udp.ts";
import type { DropReason, SinkQueueStats } from "../pipeline/queue.ts";
import { TEMPLATE_REFUSALS } from "../protocols/stats.ts";
import type { EncodedBatch, RemoteSinkStats, SinkSample } from "../sinks/types.ts";

const P = "clarion_collector_";

export interface MetricsSources {
  queues(): SinkQueueStats[];
  listeners(): readonly ListenerInfo[];
  kernel(): Promise<Map<number, KernelUdpCounters>>;
  workers(): { configured: number; listening: number };
  /** Sinks with a disk spool and remote delivery (HTTP, Kafka), polled at scrape time. */
  remoteSinks?(): ReadonlyArray<{ name: string; stats: RemoteSinkStats }>;
  /** Flow records in batches for no configured sink (Fanout.unroutedRecords; a bug if ever non-zero). */
  unroutedRecords?(): number;
  /** Cumulative loss by reason (src/ops/loss.ts). */
  loss?(): Record<string, number>;
  /** The live tail (src/ops/tail.ts): readers now, flows sent to them and dropped for them (cumulative). */
  tail?(): { readers: number; sent: number; dropped: number };
}

/** Why flow records were lost before reaching a sink queue (clarion_collector_dropped_records_total). */
export const PIPELINE_DROP_REASONS = ["worker_exit", "unrouted"] as const;
export type PipelineDropReason = (typeof PIPELINE_DROP_REASONS)[number];

/** The remote-sink series: [metric suffix, type, help, value]. Counters come from cumulative stats. */
const REMOTE_SERIES: ReadonlyArray<
  readonly [string, "gauge" | "counter", string, (s: RemoteSinkStats) => number]
> = [
  [
    "sink_spool_bytes",
    "gauge",
    "Bytes in each remote sink's (HTTP, Kafka) disk spool not yet delivered.",
    (s) => s.spoolBytes,
  ],
  [
    "sink_spool_batches",
    "gauge",
    "Requests in each remote sink's (HTTP, Kafka) disk spool not yet delivered.",
    (s) => s.spoolBatches,
  ],
  [
    "sink_spool_records",
    "gauge",
    "Flow records in each remote sink's (HTTP, Kafka) disk spool not yet delivered.",
    (s) => s.spoolRecords,
  ],
  [
    "sink_spool_oldest_age_seconds",
    "gauge",
    "Age of the oldest undelivered batch in each remote sink's (HTTP, Kafka) spool (0 when empty).",
    (s) => s.oldestAgeMs / 1000,
  ],
  [
    "sink_breaker_open",
    "gauge",
    "1 while a remote sink's circuit breaker is open or half-open, 0 when closed.",
    (s) => (s.breakerState === "closed" ? 0 : 1),
  ],
  ["sink_delivered_flows_total", "counter", "Flow records the destination acknowledged.", (s) => s.delivered],
  [
    "sink_delivered_requests_total",
    "counter",
    "Requests the destination acknowledged.",
    (s) => s.deliveredBatches,
  ],
  [
    "sink_retries_total",
    "counter",
    "Delivery attempts repeated after a retryable failure.",
    (s) => s.retried,
  ],
  [
    "sink_delivery_failures_total",
    "counter",
    "Rounds of delivery attempts all spent (the batch stays spooled and is tried again).",
    (s) => s.failed,
  ],
  [
    "sink_unknown_outcomes_total",
    "counter",
    "Attempts whose outcome is unknown (timeout, reset after sending): a duplicate is possible.",
    (s) => s.unknownOutcomes,
  ],
  ["sink_request_splits_total", "counter", "Requests split in two after a 413.", (s) => s.splits],
  [
    "sink_dead_lettered_total",
    "counter",
    "Requests the destination rejected (4xx), written to the dead-letter file.",
    (s) => s.deadLettered,
  ],
  [
    "sink_dead_lettered_flows_total",
    "counter",
    "Flow records in dead-lettered requests.",
    (s) => s.deadLetteredRecords,
  ],
  [
    "sink_spool_dropped_batches_total",
    "counter",
    "Spooled requests dropped because the spool was full (--spool-max-bytes).",
    (s) => s.droppedOnFull,
  ],
  [
    "sink_spool_dropped_flows_total",
    "counter",
    "Flow records dropped because the spool was full.",
    (s) => s.droppedRecordsOnFull,
  ],
  [
    "sink_spool_write_errors_total",
    "counter",
    "Spool writes that failed (disk full, I/O error): their batches were refused and counted as dropped.",
    (s) => s.spoolWriteErrors,
  ],
  [
    "sink_spool_corrupt_frames_total",
    "counter",
    "Damaged regions of the spool files skipped (each held at least one request; bytes moved to quarantine/).",
    (s) => s.spoolCorruptFrames,
  ],
  [
    "sink_spool_corrupt_bytes_total",
    "counter",
    "Bytes of damaged spool regions skipped and moved to quarantine/.",
    (s) => s.spoolCorruptBytes,
  ],
  [
    "sink_skipped_flows_total",
    "counter",
    "flows-v1: flow records left out because they lack a source or destination address.",
    (s) => s.skippedNoAddress,
  ],
  [
    "sink_breaker_opens_total",
    "counter",
    "Times a remote sink's circuit breaker opened.",
    (s) => s.breakerOpens,
  ],
];

type Labels = Record<string, string>;

export class CollectorMetrics {
  readonly registry = new Registry();
  readonly #last = new Map<string, number>();
  /** Monotonic sums of the worker-fed counters by short name (rd, rb, df, de...), for the JSON view. */
  readonly totals: Record<string, number> = {};
  readonly #sources: MetricsSources;

  readonly receivedDatagrams: Counter<"listener" | "exporter">;
  readonly receivedBytes: Counter<"listener" | "exporter">;
  readonly refusedDatagrams: Counter<"listener" | "exporter">;
  readonly refusedBytes: Counter<"listener" | "exporter">;
  readonly decodedDatagrams: Counter<"protocol">;
  readonly decodedFlows: Counter<"exporter">;
  readonly exporterErrors: Counter<"exporter">;
  readonly optionsRecords: Counter;
  readonly decodeErrors: Counter<"code">;
  readonly templatesLearned: Counter;
  readonly templatesWithdrawn: Counter;
  readonly templatesExpired: Counter;
  readonly templatesRefused: Counter<"reason">;
  readonly templatesEvicted: Counter;
  readonly sflowMalformedSamples: Counter;
  readonly templateFallbacks: Counter;
  readonly optionEntriesRefused: Counter;
  readonly heldSets: Counter;
  readonly heldDecoded: Counter;
  readonly missingTemplateDrops: Counter;
  readonly sequenceMissingFlows: Counter<"exporter">;
  readonly sequenceMissingDatagrams: Counter<"exporter">;
  readonly sequenceResets: Counter<"exporter">;
  readonly missingTemplateSets: Counter<"exporter">;
  readonly internalErrors: Counter;
  readonly encodeErrors: Counter<"sink">;
  readonly templates: Gauge;
  readonly batchedRecords: Counter;
  readonly batchBuffers: Counter<"result">;
  readonly sinkWrittenRecords: Counter<"sink">;
  readonly sinkWrittenBatches: Counter<"sink">;
  readonly sinkDroppedRecords: Counter<"sink" | "reason">;
  readonly sinkDroppedBatches: Counter<"sink" | "reason">;
  readonly sinkWriteDuration: Histogram<"sink">;
  readonly sinkRecordLatency: Histogram<"sink">;
  readonly sinkCountersFailures: Counter<"sink">;
  /** Records held by receive workers' batchers when they died (cumulative). */
  #lostOnWorkerExit = 0;

  /** Latest stats per worker index (for the JSON view and gauges). */
  readonly #workerStats = new Map<number, WorkerStats>();

  constructor(sources: MetricsSources, version: string) {
    this.#sources = sources;
    const r = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: P });
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
      new Counter<L>({ name: P + name, help, labelNames, registers: r });

    new Gauge({
      name: `${P}build_info`,
      help: "Build information (always 1).",
      labelNames: ["version"],
      registers: r,
    }).set({ version }, 1);
    this.receivedDatagrams = counter("received_datagrams_total", "UDP datagrams received.", [
      "listener",
      "exporter",
    ]);
    this.receivedBytes = counter("received_bytes_total", "UDP payload bytes received.", [
      "listener",
      "exporter",
    ]);
    this.refusedDatagrams = counter(
      "refused_datagrams_total",
      'UDP datagrams dropped before decoding because their source is not in --allow-exporters (per source; past 1000 sources per worker as exporter="other").',
      ["listener", "exporter"],
    );
    this.refusedBytes = counter(
      "refused_bytes_total",
      "UDP payload bytes of datagrams refused by --allow-exporters.",
      ["listener", "exporter"],
    );
    this.decodedDatagrams = counter("decoded_datagrams_total", "Datagrams by detected protocol.", [
      "protocol",
    ]);
    this.decodedFlows = counter("decoded_flows_total", "Flow records decoded.", ["exporter"]);
    this.exporterErrors = counter("exporter_decode_errors_total", "Malformed datagrams per exporter.", [
      "exporter",
    ]);
    this.optionsRecords = counter("options_records_total", "NetFlow v9/IPFIX options data records decoded.");
    this.decodeErrors = counter("decode_errors_total", "Malformed datagrams by error code.", ["code"]);
    for (const code of DECODE_ERROR_CODES) this.decodeErrors.inc({ code }, 0);
    this.templatesLearned = counter(
      "templates_learned_total",
      "Templates learned or refreshed with a change.",
    );
    this.templatesWithdrawn = counter("templates_withdrawn_total", "IPFIX template withdrawals applied.");
    this.templatesExpired = counter(
      "templates_expired_total",
      "Templates expired (neither refreshed nor used).",
    );
    this.templatesRefused = counter(
      "templates_refused_total",
      "Templates refused by the template-state bounds (per exporter in /exporters), by reason.",
      ["reason"],
    );
    for (const reason of TEMPLATE_REFUSALS) this.templatesRefused.inc({ reason }, 0);
    this.templatesEvicted = counter(
      "templates_evicted_total",
      "Templates evicted, least recently used first, to stay within the template memory budget.",
    );
    this.templateFallbacks = counter(
      "template_fallbacks_total",
      "Data sets decoded with the template of another source port of the same exporter (--template-scope fallback).",
    );
    this.optionEntriesRefused = counter(
      "option_entries_refused_total",
      "Options-data entries (sampler rates, interface, VRF and application names, RDs) refused: the per-exporter map is full.",
    );
    this.sflowMalformedSamples = counter(
      "sflow_malformed_samples_total",
      "sFlow flow samples with no record that describes a flow (none, only skipped ones, empty header): skipped.",
    );
    this.heldSets = counter("held_sets_total", "Data sets held because their template had not arrived yet.");
    this.heldDecoded = counter(
      "held_sets_decoded_total",
      "Held data sets decoded once their template arrived.",
    );
    this.missingTemplateDrops = counter(
      "missing_template_drops_total",
      "Data sets dropped because their template never arrived (hold expired or full).",
    );
    this.sequenceMissingFlows = counter(
      "sequence_missing_flows_total",
      "Flows the exporter's sequence numbers show it sent but that never arrived (NetFlow v5 flows, IPFIX data records, sFlow flow samples).",
      ["exporter"],
    );
    this.sequenceMissingDatagrams = counter(
      "sequence_missing_datagrams_total",
      "Datagrams the exporter's sequence numbers show it sent but that never arrived (NetFlow v9, sFlow).",
      ["exporter"],
    );
    this.sequenceResets = counter(
      "sequence_resets_total",
      "Export sequence resets (exporter restarts: uptime back, or a jump too large for a gap), not counted as loss.",
      ["exporter"],
    );
    this.missingTemplateSets = counter(
      "missing_template_dropped_sets_total",
      "Data sets dropped because their template never arrived, per exporter (template ids in /exporters).",
      ["exporter"],
    );
    this.internalErrors = counter("internal_errors_total", "Unexpected failures in the receive path (bugs).");
    this.encodeErrors = counter(
      "encode_errors_total",
      "Encoder failures by sink: one per record an encoder's append or add failed on, one per batch its cut, encode or poll failed on.",
      ["sink"],
    );
    this.batchedRecords = counter("batched_records_total", "Flow records handed to the sink encoders.");
    this.batchBuffers = counter(
      "batch_buffers_total",
      "Buffers the receive workers encoded batches into: reused (handed back after a sink wrote them) or allocated.",
      ["result"],
    );
    this.templates = new Gauge({
      name: `${P}templates`,
      help: "Active templates over all workers.",
      registers: r,
    });
    this.sinkWrittenRecords = counter("sink_written_records_total", "Flow records written by each sink.", [
      "sink",
    ]);
    this.sinkWrittenBatches = counter("sink_written_batches_total", "Batches written by each sink.", [
      "sink",
    ]);
    this.sinkDroppedRecords = counter(
      "sink_dropped_records_total",
      "Flow records dropped, by sink and reason.",
      ["sink", "reason"],
    );
    this.sinkDroppedBatches = counter("sink_dropped_batches_total", "Batches dropped, by sink and reason.", [
      "sink",
      "reason",
    ]);
    this.sinkWriteDuration = new Histogram({
      name: `${P}sink_write_duration_seconds`,
      help: "Time a sink took to write one batch.",
      labelNames: ["sink"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: r,
    });
    this.sinkRecordLatency = new Histogram({
      name: `${P}sink_delivery_latency_seconds`,
      help: "Age of a batch's oldest record when its sink finished writing it.",
      labelNames: ["sink"],
      buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900],
      registers: r,
    });

    this.sinkCountersFailures = counter(
      "sink_counters_write_failures_total",
      "sFlow interface counter writes that failed, by sink (those counter records are lost for that sink).",
      ["sink"],
    );

    const self = this;
    new Counter({
      name: `${P}dropped_records_total`,
      help: "Flow records lost before reaching a sink queue, by reason: worker_exit (held in a receive worker's batcher when it died), unrouted (in a batch for no configured sink; a bug).",
      labelNames: ["reason"],
      registers: r,
      collect() {
        this.reset();
        const lost = self.pipelineDropped();
        for (const reason of PIPELINE_DROP_REASONS) this.inc({ reason }, lost[reason]);
      },
    });
    new Counter({
      name: `${P}loss_total`,
      help: "Everything lost, by reason (units: kernel_drops and sequence_gap_datagrams datagrams, missing_template data sets, encode_error batches, the rest flows). See README, Loss and how to see it.",
      labelNames: ["reason"],
      registers: r,
      collect() {
        this.reset();
        for (const [reason, n] of Object.entries(self.#sources.loss?.() ?? {})) this.inc({ reason }, n);
      },
    });
    new Gauge({
      name: `${P}tail_readers`,
      help: "Readers of the live tail (/tail, the tail command) connected now.",
      registers: r,
      collect() {
        this.set(self.#sources.tail?.().readers ?? 0);
      },
    });
    new Counter({
      name: `${P}tail_records_total`,
      help: "Flows the live tail sent to its readers (result=sent) or dropped for a slow reader or over the per-batch cap (result=dropped); a view only: the outputs are not affected.",
      labelNames: ["result"],
      registers: r,
      collect() {
        this.reset();
        const t = self.#sources.tail?.();
        this.inc({ result: "sent" }, t?.sent ?? 0);
        this.inc({ result: "dropped" }, t?.dropped ?? 0);
      },
    });
    new Gauge({
      name: `${P}missing_template_held_sets`,
      help: "Data sets waiting for their template now, per exporter.",
      labelNames: ["exporter"],
      registers: r,
      collect() {
        this.reset();
        const held = new Map<string, number>();
        for (const w of self.#workerStats.values())
          for (const e of w.missingTemplates) held.set(e.exporter, (held.get(e.exporter) ?? 0) + e.heldSets);
        for (const [exporter, n] of held) this.set({ exporter }, n);
      },
    });
    new Gauge({
      name: `${P}sink_queue_batches`,
      help: "Batches waiting in each sink's queue.",
      labelNames: ["sink"],
      registers: r,
      collect() {
        this.reset();
        for (const q of self.#sources.queues()) this.set({ sink: q.name }, q.length);
      },
    });
    new Gauge({
      name: `${P}sink_queue_capacity_batches`,
      help: "Batches each sink's queue holds before dropping.",
      labelNames: ["sink"],
      registers: r,
      collect() {
        for (const q of self.#sources.queues()) this.set({ sink: q.name }, q.capacity);
      },
    });
    new Gauge({
      name: `${P}sink_queue_records`,
      help: "Flow records waiting in (or being written from) each sink's queue.",
      labelNames: ["sink"],
      registers: r,
      collect() {
        this.reset();
        for (const q of self.#sources.queues()) this.set({ sink: q.name }, q.pendingRecords);
      },
    });
    for (const [suffix, type, help, pick] of REMOTE_SERIES) {
      const collect = function (this: Gauge<"sink"> | Counter<"sink">): void {
        this.reset();
        for (const { name, stats } of self.#sources.remoteSinks?.() ?? []) {
          const v = pick(stats);
          if (this instanceof Gauge) this.set({ sink: name }, v);
          else this.inc({ sink: name }, v);
        }
      };
      const cfg = { name: P + suffix, help, labelNames: ["sink"] as const, registers: r, collect };
      if (type === "gauge") new Gauge<"sink">(cfg);
      else new Counter<"sink">(cfg);
    }
    new Gauge({
      name: `${P}receive_stall_max_seconds`,
      help: "Longest a receive worker's thread was kept from its sockets since it started, by cause: encode (one batch for every output) or gc (one garbage-collection pause). A burst arriving meanwhile must fit in the socket's receive buffer.",
      labelNames: ["worker", "cause"],
      registers: r,
      collect() {
        this.reset();
        for (const w of self.#workerStats.values()) {
          this.set({ worker: String(w.worker), cause: "encode" }, w.encodeMaxMs / 1000);
          this.set({ worker: String(w.worker), cause: "gc" }, w.gcMaxMs / 1000);
        }
      },
    });
    new Gauge({
      name: `${P}batcher_records`,
      help: "Flow records waiting in the workers' batchers.",
      registers: r,
      collect() {
        this.set(self.batcherPending());
      },
    });
    new Gauge({
      name: `${P}udp_receive_buffer_bytes`,
      help: "SO_RCVBUF granted by the kernel per socket (Linux reports double the requested size).",
      labelNames: ["listener"],
      registers: r,
      collect() {
        for (const l of self.#sources.listeners()) this.set({ listener: l.name }, l.receiveBufferBytes);
      },
    });
    new Gauge({
      name: `${P}udp_receive_buffer_requested_bytes`,
      help: "SO_RCVBUF requested (UDP_RCVBUF; 0 is the system default).",
      labelNames: ["listener"],
      registers: r,
      collect() {
        for (const l of self.#sources.listeners()) this.set({ listener: l.name }, l.requestedBufferBytes);
      },
    });
    const kernel = async (
      pick: (c: KernelUdpCounters) => number,
      set: (labels: { listener: string }, v: number) => void,
    ): Promise<void> => {
      const counters = await self.#sources.kernel();
      for (const l of self.#sources.listeners()) {
        const c = counters.get(l.port);
        if (c) set({ listener: l.name }, pick(c));
      }
    };
    // Cumulative in the kernel: a counter set from the current value at scrape time. It falls back (a
    // counter reset for Prometheus) when a socket closes, e.g. when a worker restarts.
    new Counter({
      name: `${P}udp_kernel_dropped_datagrams_total`,
      help: "Datagrams the kernel dropped before the collector read them (drops of /proc/net/udp{,6}), summed over our sockets.",
      labelNames: ["listener"],
      registers: r,
      async collect() {
        this.reset();
        await kernel(
          (c) => c.drops,
          (l, v) => this.inc(l, v),
        );
      },
    });
    new Gauge({
      name: `${P}udp_receive_queue_bytes`,
      help: "Bytes waiting in our sockets' kernel receive queues.",
      labelNames: ["listener"],
      registers: r,
      async collect() {
        await kernel(
          (c) => c.rxQueueBytes,
          (l, v) => this.set(l, v),
        );
      },
    });
    new Gauge({
      name: `${P}workers`,
      help: "Receive workers configured.",
      registers: r,
      collect() {
        this.set(self.#sources.workers().configured);
      },
    });
    new Gauge({
      name: `${P}workers_listening`,
      help: "Receive workers alive and listening.",
      registers: r,
      collect() {
        this.set(self.#sources.workers().listening);
      },
    });
  }

  /** Increments `c` by how much a worker's cumulative `value` grew since its last report. */
  #sync(name: string, c: Counter<string>, worker: number, labels: Labels, value: number): void {
    const key = `${name}|${worker}|${Object.values(labels).join("|")}`;
    const last = this.#last.get(key) ?? 0;
    const delta = value >= last ? value - last : value; // a restarted worker starts again from 0
    this.#last.set(key, value);
    if (delta > 0) {
      c.inc(labels, delta);
      this.totals[name] = (this.totals[name] ?? 0) + delta;
    }
  }

  /** Folds one worker's periodic, cumulative stats into the counters. */
  workerStats(s: WorkerStats): void {
    const prev = this.#workerStats.get(s.worker);
    if (prev && prev.generation !== s.generation) {
      // restarted worker: its cumulative values start again from 0
      for (const k of [...this.#last.keys()]) if (k.split("|")[1] === String(s.worker)) this.#last.delete(k);
    }
    this.#workerStats.set(s.worker, s);
    const w = s.worker;
    for (const rc of s.receive) {
      const l = { listener: rc.listener, exporter: rc.exporter };
      this.#sync("rd", this.receivedDatagrams, w, l, rc.datagrams);
      this.#sync("rb", this.receivedBytes, w, l, rc.bytes);
    }
    for (const rc of s.refused ?? []) {
      const l = { listener: rc.listener, exporter: rc.exporter };
      this.#sync("ra", this.refusedDatagrams, w, l, rc.datagrams);
      this.#sync("rB", this.refusedBytes, w, l, rc.bytes);
    }
    const d = s.decoder;
    for (const [protocol, n] of Object.entries(d.byProtocol))
      this.#sync("dp", this.decodedDatagrams, w, { protocol }, n);
    for (const e of s.exporters) {
      this.#sync("df", this.decodedFlows, w, { exporter: e.exporter }, e.flows);
      this.#sync("ee", this.exporterErrors, w, { exporter: e.exporter }, e.errors);
    }
    for (const [code, n] of Object.entries(d.errors))
      this.#sync("de", this.decodeErrors, w, { code }, n ?? 0);
    this.#sync("or", this.optionsRecords, w, {}, d.optionsRecords);
    this.#sync("tl", this.templatesLearned, w, {}, d.templatesLearned);
    this.#sync("tw", this.templatesWithdrawn, w, {}, d.templatesWithdrawn);
    this.#sync("te", this.templatesExpired, w, {}, d.templatesExpired);
    for (const [reason, n] of Object.entries(d.templatesRefused ?? {}))
      this.#sync("tr", this.templatesRefused, w, { reason }, n ?? 0);
    this.#sync("tv", this.templatesEvicted, w, {}, d.templatesEvicted ?? 0);
    this.#sync("tf", this.templateFallbacks, w, {}, d.templateFallbacks ?? 0);
    this.#sync("oe", this.optionEntriesRefused, w, {}, d.optionEntriesRefused ?? 0);
    this.#sync("sm", this.sflowMalformedSamples, w, {}, d.sflowMalformedSamples ?? 0);
    this.#sync("hs", this.heldSets, w, {}, d.heldSets);
    this.#sync("hd", this.heldDecoded, w, {}, d.heldDecoded);
    this.#sync("mt", this.missingTemplateDrops, w, {}, d.missingTemplateDrops);
    for (const e of s.sequences) {
      const l = { exporter: e.exporter };
      this.#sync("sf", this.sequenceMissingFlows, w, l, e.missingFlows);
      this.#sync("sd", this.sequenceMissingDatagrams, w, l, e.missingDatagrams);
      this.#sync("sr", this.sequenceResets, w, l, e.resets);
    }
    for (const e of s.missingTemplates)
      this.#sync("mx", this.missingTemplateSets, w, { exporter: e.exporter }, e.droppedSets);
    this.#sync("ie", this.internalErrors, w, {}, s.internalErrors);
    this.#sync("br", this.batchedRecords, w, {}, s.recordsBatched);
    this.#sync("bb", this.batchBuffers, w, { result: "reused" }, s.batchBuffers.hits);
    this.#sync("bB", this.batchBuffers, w, { result: "allocated" }, s.batchBuffers.misses);
    for (const [sink, n] of Object.entries(s.encodeErrors))
      this.#sync("en", this.encodeErrors, w, { sink }, n);
    let templates = 0;
    for (const ws of this.#workerStats.values()) templates += ws.templates;
    this.templates.set(templates);
  }

  sinkWritten(batch: EncodedBatch, seconds: number): void {
    const l = { sink: batch.sink };
    this.sinkWrittenRecords.inc(l, batch.records);
    this.sinkWrittenBatches.inc(l);
    this.sinkWriteDuration.observe(l, seconds);
    if (batch.oldestMs > 0)
      this.sinkRecordLatency.observe(l, Math.max(0, (Date.now() - batch.oldestMs) / 1000));
  }

  sinkDropped(batch: EncodedBatch, reason: DropReason): void {
    const l = { sink: batch.sink, reason };
    this.sinkDroppedRecords.inc(l, batch.records);
    this.sinkDroppedBatches.inc(l);
  }

  /** A sink's writeCounters() failed. */
  countersWriteFailed(sink: string): void {
    this.sinkCountersFailures.inc({ sink });
  }

  /**
   * A receive worker died holding `lostRecords` in its batcher: counted as dropped (worker_exit), and
   * its pending records no longer count as pending.
   */
  workerExited(worker: number, lostRecords: number): void {
    this.#lostOnWorkerExit += lostRecords;
    const s = this.#workerStats.get(worker);
    if (s) this.#workerStats.set(worker, { ...s, recordsPending: 0 });
  }

  /** Flow records lost before reaching a sink queue, by reason (cumulative). */
  pipelineDropped(): Record<PipelineDropReason, number> {
    return { worker_exit: this.#lostOnWorkerExit, unrouted: this.#sources.unroutedRecords?.() ?? 0 };
  }

  /** Latest stats per worker. */
  get workers(): readonly WorkerStats[] {
    return [...this.#workerStats.values()];
  }

  batcherPending(): number {
    let n = 0;
    for (const s of this.#workerStats.values()) n += s.recordsPending;
    return n;
  }

  /** Prometheus text exposition. */
  async prometheus(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

function labelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

/**
 * Prometheus text of the sinks' own samples (Sink.samples), grouped by metric so each family is written
 * once with its HELP and TYPE whatever the number of sinks reporting it.
 */
export function renderSinkSamples(samples: readonly SinkSample[]): string {
  const families = new Map<string, SinkSample[]>();
  for (const s of samples) {
    const list = families.get(s.name);
    if (list) list.push(s);
    else families.set(s.name, [s]);
  }
  let text = "";
  for (const [name, list] of families) {
    const full = P + name;
    text += `# HELP ${full} ${list[0]!.help}\n# TYPE ${full} ${list[0]!.type}\n`;
    for (const s of list) {
      const labels = Object.entries(s.labels)
        .map(([k, v]) => `${k}="${labelValue(v)}"`)
        .join(",");
      text += `${full}${labels ? `{${labels}}` : ""} ${Number.isFinite(s.value) ? s.value : 0}\n`;
    }
  }
  return text;
}
