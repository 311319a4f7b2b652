/**
 * Assembles the service (DESIGN §2): sinks and their bounded queues, the receive workers, the ops server,
 * the template state file. `startCollector(config)` runs in-process (tests) or from src/cli.ts.
 *
 * Components (by --mode): the native UDP collector (native, both) and the agent collector, the edge-agent
 * HTTP relay of src/inputs/agent.ts on --agent-port (agent, both). In mode both the native /health counts
 * the relay's spool, and both Prometheus endpoints expose every series of the process.
 */
import { readFile, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import type { Config, OutputConfig } from "./config/options.ts";
import { ConfigError } from "./core/errors.ts";
import { openPrivate } from "./core/fs.ts";
import { createLogger, type Logger, RateLimitedLogger } from "./core/log.ts";
import { type AgentCollector, agentPrometheusText, startAgentCollector } from "./inputs/agent.ts";
import {
  type KernelUdpCounters,
  type ListenerInfo,
  readKernelUdpCounters,
  UdpInput,
  type WorkerStats,
} from "./inputs/udp.ts";
import { evaluateHealth, type Phase, type RemoteHealth } from "./ops/health.ts";
import { LossMonitor } from "./ops/loss.ts";
import { CollectorMetrics, renderSinkSamples } from "./ops/metrics.ts";
import { type OpsServer, type OpsView, startOpsServer } from "./ops/server.ts";
import { TailHub } from "./ops/tail.ts";
import { Fanout } from "./pipeline/fanout.ts";
import { SinkQueue } from "./pipeline/queue.ts";
import type { ExporterStats } from "./protocols/decoder.ts";
import type { SequenceExporterStats } from "./protocols/sequence.ts";
import type { InterfaceCounters } from "./protocols/sflow5.ts";
import type { MissingTemplateExporterStats } from "./protocols/state/missing-templates.ts";
import { decoderStateSchema, describeIssues } from "./protocols/state/persist.ts";
import { mergeExporterStats } from "./protocols/stats.ts";
import { QueryWorker } from "./query/worker.ts";
import { findSink } from "./sinks/index.ts";
import { archiveMetricsJson, archivePrometheus } from "./sinks/parquet.ts";
import { parseSqliteUri } from "./sinks/sqlite/sink.ts";
import type { RemoteSinkStats, Sink } from "./sinks/types.ts";

export interface Collector {
  readonly config: Config;
  /**
   * The port serving /health and /metrics: the ops server's (differs from config.httpPort when that was
   * 0), or in mode agent the agent collector's.
   */
  readonly httpPort: number;
  /** The agent collector's port (mode agent/both), 0 when it does not run. */
  readonly agentPort: number;
  /** UDP listeners actually bound. */
  readonly listeners: readonly ListenerInfo[];
  /** Writes the template state file now. */
  saveState(): Promise<void>;
  /** SIGHUP: reopen sinks that have files. */
  reopen(): Promise<void>;
  /**
   * Stops receiving, writes the state file, then flushes every queue and sink (the state is saved before
   * waiting on a possibly hanging backend). Idempotent.
   */
  stop(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** Interval of the periodic template state save, ms (default 60 s). */
  stateSaveIntervalMs?: number;
  /** Interval of worker stats reports, ms (default 1 s). */
  statsIntervalMs?: number;
}

export const STATE_FILE = "templates.json";
const STATE_FORMAT = "clarion-collector/templates";

interface StateFile {
  format: typeof STATE_FORMAT;
  version: 1;
  savedAt: string;
  /** One decoder state per receive worker of the run that saved it. */
  states: object[];
}

function version(): string {
  return process.env.npm_package_version ?? "0.1.0";
}

/** The state file as read back: its envelope, then every decoder state (decoderStateSchema). */
const stateFileSchema = z.object({
  format: z.literal(STATE_FORMAT),
  version: z.literal(1),
  savedAt: z.string().max(64),
  states: z.array(decoderStateSchema).max(1024),
});

/**
 * Reads the saved decoder states. A missing file means starting empty; a file that cannot be read, is not
 * JSON or does not match the schema (issue 12 item 6) is moved aside to `<path>.bad-<time>` with one
 * warning naming the reason, and the collector starts empty: startup never fails on it.
 */
export async function readStateFile(path: string, log: Logger): Promise<object[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    return moveAside(path, log, `cannot read it: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return moveAside(path, log, `not JSON: ${(err as Error).message}`);
  }
  const parsed = stateFileSchema.safeParse(doc);
  if (!parsed.success) return moveAside(path, log, describeIssues(parsed.error));
  return parsed.data.states;
}

async function moveAside(path: string, log: Logger, reason: string): Promise<object[]> {
  const bad = `${path}.bad-${new Date().toISOString().replace(/[:.]/g, "-")}`;
  let movedTo: string | null = bad;
  await rename(path, bad).catch(() => {
    movedTo = null;
  });
  log.warn(
    { path, movedTo, reason },
    "template state file is damaged: set aside, starting with no templates",
  );
  return [];
}

/**
 * Writes the state file atomically: temporary file, fsync, rename. On any failure (ENOSPC, EIO...) the
 * temporary file is removed, so a full disk leaves no `templates.json.tmp-<pid>` behind.
 */
export async function writeStateFile(path: string, states: object[]): Promise<void> {
  const doc: StateFile = { format: STATE_FORMAT, version: 1, savedAt: new Date().toISOString(), states };
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const fh = await openPrivate(tmp, "w");
    try {
      await fh.writeFile(JSON.stringify(doc));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

/**
 * Serializes state saves: one `write` at a time, in the order asked, so two never race on the temporary
 * file; the final save at stop (explicit states) is always written after any earlier one. A save without
 * states asked while another such save already waits to start shares that one. `write` must not reject.
 */
export function serialSaves(
  write: (states?: object[]) => Promise<void>,
): (states?: object[]) => Promise<void> {
  let last: Promise<void> = Promise.resolve();
  let waiting: Promise<void> | null = null;
  return (states) => {
    if (states === undefined && waiting !== null) return waiting;
    const run: Promise<void> = last.then(() => {
      if (waiting === run) waiting = null;
      return write(states);
    });
    if (states === undefined) waiting = run;
    last = run.catch(() => {});
    return run;
  };
}

/**
 * Hands sFlow interface counters (rare, small) straight to the sinks that keep them. A failure, even a
 * synchronous throw, goes to `onFailure` and never escapes into the receive path; `settled()` waits for
 * the writes in flight (before the sinks close).
 */
export class CountersWriter {
  readonly #sinks: readonly Sink[];
  readonly #onFailure: (sink: string, err: unknown, records: number) => void;
  readonly #inFlight = new Set<Promise<void>>();

  constructor(sinks: readonly Sink[], onFailure: (sink: string, err: unknown, records: number) => void) {
    this.#sinks = sinks;
    this.#onFailure = onFailure;
  }

  write(records: readonly InterfaceCounters[]): void {
    for (const s of this.#sinks) {
      if (!s.writeCounters) continue;
      const p: Promise<void> = Promise.resolve()
        .then(() => s.writeCounters?.(records))
        .catch((err: unknown) => this.#onFailure(s.name, err, records.length))
        .finally(() => this.#inFlight.delete(p));
      this.#inFlight.add(p);
    }
  }

  async settled(): Promise<void> {
    await Promise.allSettled([...this.#inFlight]);
  }
}

async function openSinks(config: Config, log: Logger): Promise<Sink[]> {
  const sinks: Sink[] = [];
  try {
    for (const o of config.outputs) sinks.push(await openSink(config, o, log));
  } catch (err) {
    await Promise.allSettled(sinks.map((s) => s.close()));
    throw err;
  }
  return sinks;
}

async function openSink(config: Config, o: OutputConfig, log: Logger): Promise<Sink> {
  try {
    const def = findSink(o.uri);
    return await def.create(o.uri, {
      dataDir: config.dataDir,
      logger: log.child({ sink: o.uri }),
      options: o.options,
    });
  } catch (err) {
    throw new ConfigError("--output", `cannot open output "${o.uri}": ${(err as Error).message}`);
  }
}

/** Per exporter over all workers: export sequence gaps and data sets lost for a missing template. */
function exporterLoss(workers: readonly WorkerStats[]): Map<string, object> {
  const seq = new Map<string, SequenceExporterStats>();
  const tpl = new Map<string, MissingTemplateExporterStats>();
  for (const w of workers) {
    for (const e of w.sequences) {
      const m = seq.get(e.exporter);
      if (!m) {
        seq.set(e.exporter, { ...e, streams: [...e.streams] });
        continue;
      }
      m.missingFlows += e.missingFlows;
      m.missingDatagrams += e.missingDatagrams;
      m.resets += e.resets;
      m.late += e.late;
      m.streams.push(...e.streams);
    }
    for (const e of w.missingTemplates) {
      const m = tpl.get(e.exporter);
      if (!m) {
        tpl.set(e.exporter, { ...e, templates: [...e.templates] });
        continue;
      }
      m.droppedSets += e.droppedSets;
      m.heldSets += e.heldSets;
      m.templates.push(...e.templates);
    }
  }
  const out = new Map<string, object>();
  for (const ip of new Set([...seq.keys(), ...tpl.keys()])) {
    const q = seq.get(ip);
    const t = tpl.get(ip);
    out.set(ip, {
      sequence_missing_flows: q?.missingFlows ?? 0,
      sequence_missing_datagrams: q?.missingDatagrams ?? 0,
      sequence_resets: q?.resets ?? 0,
      sequence_late: q?.late ?? 0,
      sequence_streams: (q?.streams ?? []).map((x) => ({
        ...x,
        last_gap: x.last_gap_ms ? new Date(x.last_gap_ms).toISOString() : null,
      })),
      missing_template_dropped_sets: t?.droppedSets ?? 0,
      missing_template_held_sets: t?.heldSets ?? 0,
      missing_templates: t?.templates ?? [],
    });
  }
  return out;
}

function mergeExporters(workers: readonly WorkerStats[]): { exporter: string }[] {
  const loss = exporterLoss(workers);
  const byIp = new Map<string, ExporterStats>();
  for (const w of workers) {
    for (const e of w.exporters) mergeExporterStats(byIp, e);
  }
  return [...byIp.values()]
    .sort((a, b) => (a.exporter < b.exporter ? -1 : a.exporter > b.exporter ? 1 : 0))
    .map((e) => ({
      exporter: e.exporter,
      packets: e.datagrams,
      bytes: e.bytes,
      flows: e.flows,
      errors: e.errors,
      sampling_rate: e.samplingRate,
      last_seen: e.lastSeenMs ? new Date(e.lastSeenMs).toISOString() : null,
      last_seen_ms: e.lastSeenMs,
      protocols: e.protocols,
      loss: loss.get(e.exporter) ?? null,
      templates_refused: e.templatesRefused,
      templates_evicted: e.templatesEvicted,
      dictionaries: e.dictionaries,
      samplers: e.samplers,
    }));
}

/** What the native collector shows of the other component (the agent relay in mode both). */
interface NativeHooks {
  remote(): RemoteHealth[];
  prometheusExtra(): string;
}

interface NativeCollector extends Omit<Collector, "agentPort"> {
  /** The process's Prometheus text (the agent collector serves it too in mode both). */
  prometheus(): Promise<string>;
}

/** /health's view of a remote destination (an HTTP output or the agent relay). */
function remoteHealth(
  name: string,
  s: {
    spooling: boolean;
    spoolBatches: number;
    spoolRecords?: number;
    oldestAgeMs?: number;
    spoolCorruptFrames: number;
    spoolCorruptBytes: number;
    problem?: string;
  },
  lastError: string,
): RemoteHealth {
  return {
    name,
    spooling: s.spooling,
    spoolBatches: s.spoolBatches,
    spoolRecords: s.spoolRecords ?? 0,
    oldestAgeMs: s.oldestAgeMs ?? 0,
    lastError,
    corruptFrames: s.spoolCorruptFrames,
    corruptBytes: s.spoolCorruptBytes,
    problem: s.problem ?? "",
  };
}

/**
 * Maps a listen failure to the ConfigError naming the setting at fault (exit 2): the address for a name
 * that does not resolve or is not local, `portSetting` for a port in use or not allowed. Anything else is
 * returned as is.
 */
function listenError(err: unknown, portSetting: string, bindHost: string): unknown {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === "ENOTFOUND" || e?.code === "EAI_AGAIN" || e?.code === "EADDRNOTAVAIL") {
    return new ConfigError("--bind-host", `cannot listen on "${bindHost}": ${e.message}`);
  }
  if (e?.code === "EADDRINUSE" && Array.isArray((e as { roles?: unknown }).roles)) {
    // A UDP port another process holds (UdpInput's check): name the flag of that port.
    const roles = (e as unknown as { roles: string[] }).roles;
    return new ConfigError(roles.map((r) => `--${r}-port`).join("/"), e.message);
  }
  if (e?.code === "EADDRINUSE" || e?.code === "EACCES") {
    return new ConfigError(portSetting, `cannot listen on ${bindHost}: ${e.message}`);
  }
  return err;
}

/** The native UDP collector: workers, pipeline, sinks, ops server. */
async function startNative(
  config: Config,
  log: Logger,
  opts: StartOptions,
  hooks: NativeHooks,
): Promise<NativeCollector> {
  const started = Date.now();
  let phase: Phase = "starting";
  let udp: UdpInput | null = null;
  const statePath = join(config.dataDir, STATE_FILE);

  const sinks = await openSinks(config, log);
  // Sinks with a spool and remote delivery (HTTP, Kafka): their state shows in /health and /metrics.
  const remoteSinks = sinks.filter(
    (s): s is Sink & { remoteStats(): RemoteSinkStats } => typeof s.remoteStats === "function",
  );
  const backendSink = remoteSinks.find((s) => s.name === config.backendOutput) ?? null;
  let metrics: CollectorMetrics | null = null;
  const queueLog = log.child({ component: "queue" });
  let lastDropLog = 0;
  const queues = sinks.map(
    (s) =>
      new SinkQueue(s, config.queueSize, {
        written: (b, sec) => metrics?.sinkWritten(b, sec),
        release: (b) => udp?.recycle(b),
        dropped: (b, reason, err) => {
          metrics?.sinkDropped(b, reason);
          const now = Date.now();
          if (now - lastDropLog > 5000) {
            lastDropLog = now;
            queueLog.error({ sink: b.sink, reason, records: b.records, err }, "batch dropped");
          }
        },
      }),
  );
  const fanout = new Fanout(queues);
  const tail = new TailHub();
  const sqliteOut = config.outputs.find((o) => o.uri.toLowerCase().startsWith("sqlite:"));
  const queries = sqliteOut ? new QueryWorker(parseSqliteUri(sqliteOut.uri, config.dataDir)) : null;

  let kernelCache: { at: number; value: Map<number, KernelUdpCounters> } | null = null;
  const kernel = async (): Promise<Map<number, KernelUdpCounters>> => {
    if (kernelCache && Date.now() - kernelCache.at < 1000) return kernelCache.value;
    const value = await readKernelUdpCounters((udp?.listeners ?? []).map((l) => l.port));
    kernelCache = { at: Date.now(), value };
    return value;
  };
  const loss = new LossMonitor({ logger: log.child({ component: "loss" }) });
  metrics = new CollectorMetrics(
    {
      loss: () => {
        observeLoss();
        return loss.totals();
      },
      queues: () => fanout.stats(),
      listeners: () => udp?.listeners ?? [],
      kernel,
      workers: () => ({ configured: config.workers, listening: udp?.workersListening ?? 0 }),
      remoteSinks: () => remoteSinks.map((s) => ({ name: s.name, stats: s.remoteStats() })),
      unroutedRecords: () => fanout.unroutedRecords,
      tail: () => tail.stats,
    },
    version(),
  );
  const m = metrics;

  /** Folds the current cumulative loss counters of every synchronous source into `loss`. */
  const observeLoss = (): void => {
    for (const w of m.workers) {
      const src = `worker ${w.worker}/${w.generation}`;
      for (const e of w.sequences) {
        const at = (unit: "flows" | "datagrams"): string => {
          const s = e.streams.find((x) => x.unit === unit && x.missing > 0);
          return s ? `${e.exporter} ${s.protocol} ${s.scope}` : e.exporter;
        };
        loss.observe("sequence_gap_flows", e.exporter, e.missingFlows, { source: src, label: at("flows") });
        loss.observe("sequence_gap_datagrams", e.exporter, e.missingDatagrams, {
          source: src,
          label: at("datagrams"),
        });
      }
      for (const e of w.missingTemplates) {
        const ids = e.templates
          .filter((t) => t.dropped > 0)
          .slice(0, 3)
          .map((t) => `${t.version === 9 ? "v9" : "ipfix"} domain ${t.domain} template ${t.template_id}`);
        loss.observe("missing_template", e.exporter, e.droppedSets, {
          source: src,
          label: ids.length ? `${e.exporter} ${ids.join(", ")}` : e.exporter,
        });
      }
      for (const [sink, n] of Object.entries(w.encodeErrors))
        loss.observe("encode_error", sink, n, { source: src });
      if (w.ringDrops !== undefined)
        loss.observe("decode_ring_full", `worker ${w.worker}`, w.ringDrops, { source: src });
    }
    for (const q of fanout.stats()) {
      loss.observe("queue_full", q.name, q.droppedRecords.queue_full);
      loss.observe("write_error", q.name, q.droppedRecords.write_error);
      loss.observe("closed", q.name, q.droppedRecords.closed);
    }
    for (const h of remoteSinks) {
      const st = h.remoteStats();
      loss.observe("spool_full", h.name, st.droppedRecordsOnFull);
      loss.observe("dead_lettered", h.name, st.deadLetteredRecords);
    }
    const lost = m.pipelineDropped();
    loss.observe("worker_exit", "receive workers", lost.worker_exit);
    loss.observe("unrouted", "fan-out", lost.unrouted);
  };
  const checkLoss = async (): Promise<void> => {
    observeLoss();
    if (udp === null) return;
    const k = await kernel();
    for (const l of udp.listeners) {
      const c = k.get(l.port);
      if (c) loss.observe("kernel_drops", l.name, c.drops, { source: "kernel", rebase: true });
    }
  };
  const lossTimer = setInterval(() => {
    checkLoss().catch((err: unknown) => log.error({ err }, "loss check failed"));
  }, 1000);
  lossTimer.unref();

  const recentLoss = (): string[] => {
    observeLoss();
    return loss.recent().map((r) => LossMonitor.describe(r, loss.recentMs));
  };
  const health = () =>
    evaluateHealth({
      phase,
      workersConfigured: config.workers,
      workersListening: udp?.workersListening ?? 0,
      sinks: fanout.stats(),
      nowMs: Date.now(),
      remote: [
        ...remoteSinks.map((s) => {
          const st = s.remoteStats();
          return remoteHealth(s.name, st, st.lastError);
        }),
        ...hooks.remote(),
      ],
      loss: recentLoss(),
      sinkFailures: sinks.flatMap((s) => {
        const failure = s.failure?.() ?? null;
        return failure === null ? [] : [{ name: s.name, failure }];
      }),
    });

  const prometheus = async (): Promise<string> =>
    (await m.prometheus()) +
    renderSinkSamples(sinks.flatMap((s) => s.samples?.() ?? [])) +
    archivePrometheus(sinks) +
    hooks.prometheusExtra();

  const view: OpsView = {
    health: () => {
      const h = health();
      return {
        httpStatus: h.httpStatus,
        body: {
          status: h.status,
          service: "clarion-collector",
          backend_url: config.backendUrl,
          mode: config.mode,
          version: version(),
          uptime_seconds: Math.round((Date.now() - started) / 1000),
          reasons: h.reasons,
          workers: { configured: config.workers, listening: udp?.workersListening ?? 0 },
          listeners: (udp?.listeners ?? []).map((l) => ({
            name: l.name,
            address: l.address,
            port: l.port,
            roles: l.roles,
            receive_buffer_bytes: l.receiveBufferBytes,
            requested_buffer_bytes: l.requestedBufferBytes,
          })),
          sinks: fanout.stats().map((s) => {
            const st = remoteSinks.find((x) => x.name === s.name)?.remoteStats();
            return {
              name: s.name,
              queue_batches: s.length,
              capacity: s.capacity,
              ...(st
                ? {
                    spooling: st.spooling,
                    spool_batches: st.spoolBatches,
                    spool_bytes: st.spoolBytes,
                    breaker: st.breakerState,
                    last_error: st.lastError,
                  }
                : {}),
            };
          }),
        },
      };
    },
    clarionMetrics: () => {
      // Clarion's keys keep their meaning, for one output: total_sent, pending and dropped are those of the
      // backend output (--backend-url) when there is one, else of the first output; every output's own are
      // under `sinks`. For that output total_received = total_sent + pending + dropped (+ skipped).
      observeLoss();
      const t = m.totals;
      const sinkStats = fanout.stats();
      const primary = backendSink?.name ?? sinkStats[0]?.name ?? "";
      let sent = 0;
      let queued = 0;
      let primaryDropped = 0;
      let writeErrors = 0;
      const sinksOut: Record<string, object> = {};
      for (const s of sinkStats) {
        const h = remoteSinks.find((x) => x.name === s.name);
        const st = h?.remoteStats();
        const sinkSent = st ? st.delivered : s.writtenRecords;
        const pending = s.pendingRecords + (st ? st.spoolRecords : 0);
        const dropped = st
          ? {
              ...s.droppedRecords,
              spool_full: st.droppedRecordsOnFull,
              dead_lettered: st.deadLetteredRecords,
            }
          : s.droppedRecords;
        const droppedTotal = Object.values(dropped).reduce((a, b) => a + b, 0);
        writeErrors += s.droppedBatches.write_error + (st ? st.deadLettered : 0);
        if (s.name === primary) {
          sent = sinkSent;
          queued = pending;
          primaryDropped = droppedTotal;
        }
        sinksOut[s.name] = {
          ...archiveMetricsJson(sinks.find((x) => x.name === s.name)),
          sent: sinkSent,
          pending,
          queue_batches: s.length,
          dropped,
          dropped_total: droppedTotal,
          ...(s.name === primary ? { primary: true } : {}),
          ...(st
            ? {
                written: s.writtenRecords,
                skipped: st.skippedNoAddress,
                spool_records: st.spoolRecords,
                spool_batches: st.spoolBatches,
                spool_bytes: st.spoolBytes,
                spool_corrupt_frames: st.spoolCorruptFrames,
                spool_corrupt_bytes: st.spoolCorruptBytes,
                spool_oldest_age_seconds: st.oldestAgeMs / 1000,
                spooling: st.spooling,
                retried: st.retried,
                dead_lettered: st.deadLettered,
                dead_lettered_records: st.deadLetteredRecords,
                breaker: st.breakerState,
                last_error: st.lastError,
              }
            : {}),
        };
      }
      const lost = m.pipelineDropped();
      const byReason = loss.totals();
      return {
        total_received: t.df ?? 0,
        total_sent: sent,
        pending: m.batcherPending() + queued,
        errors: (t.de ?? 0) + (t.ie ?? 0) + (t.en ?? 0) + writeErrors,
        batch_size: config.batchSize,
        batch_interval_seconds: config.batchInterval,
        datagrams_received: t.rd ?? 0,
        datagrams_refused: t.ra ?? 0,
        bytes_received: t.rb ?? 0,
        decode_errors: t.de ?? 0,
        dropped: primaryDropped + lost.worker_exit + lost.unrouted,
        dropped_by_reason: {
          kernel_datagrams: byReason.kernel_drops,
          sequence_gap_flows: byReason.sequence_gap_flows,
          sequence_gap_datagrams: byReason.sequence_gap_datagrams,
          missing_template_sets: byReason.missing_template,
          queue_full: byReason.queue_full,
          write_error: byReason.write_error,
          closed: byReason.closed,
          spool_full: byReason.spool_full,
          dead_lettered: byReason.dead_lettered,
          worker_exit: byReason.worker_exit,
          unrouted: byReason.unrouted,
          encode_error_batches: byReason.encode_error,
          decode_ring_full_datagrams: byReason.decode_ring_full,
        },
        held_sets: m.workers.reduce((n, w) => n + w.missingTemplates.reduce((a, e) => a + e.heldSets, 0), 0),
        sequence_resets: m.workers.reduce((n, w) => n + w.sequenceTotals.resets, 0),
        templates: m.workers.reduce((n, w) => n + w.templates, 0),
        workers: config.workers,
        udp_receive_buffer_bytes: Object.fromEntries(
          (udp?.listeners ?? []).map((l) => [l.name, l.receiveBufferBytes]),
        ),
        udp_receive_buffer_requested_bytes: config.udpRcvbuf,
        // per listener, as last read from /proc/net/udp* (every second); cumulative over our open sockets
        udp_kernel_dropped_datagrams: Object.fromEntries(
          (udp?.listeners ?? []).map((l) => [l.name, kernelCache?.value.get(l.port)?.drops ?? 0]),
        ),
        uptime_seconds: Math.round((Date.now() - started) / 1000),
        ...(primary ? { primary_output: primary } : {}),
        ...(backendSink ? { backend_output: backendSink.name } : {}),
        sinks: sinksOut,
        // the live tail is a view: what it drops for a slow reader is not lost for the outputs
        tail: tail.stats,
      };
    },
    prometheus: async () => ({ contentType: m.contentType, body: await prometheus() }),
    templates: async (q) => {
      const page = udp ? await udp.templates(q) : { total: 0, templates: [] };
      const iso = (ms: number): string | null => (ms ? new Date(ms).toISOString() : null);
      return {
        count: page.total,
        offset: q.offset,
        limit: q.limit,
        templates: page.templates.map((t) => ({
          exporter: t.exporter,
          port: t.port,
          version: t.version === 10 ? "ipfix" : "netflow9",
          domain: t.domain,
          template_id: t.id,
          options: t.options,
          scope_count: t.scopeCount,
          fields: t.fields,
          learned: iso(t.learnedMs),
          refreshed: iso(t.refreshedMs),
          last_used: iso(t.lastUsedMs),
        })),
      };
    },
    exporters: (q) => {
      let all = mergeExporters(m.workers);
      if (q.exporter !== undefined) all = all.filter((e) => e.exporter === q.exporter);
      return {
        count: all.length,
        offset: q.offset,
        limit: q.limit,
        exporters: all.slice(q.offset, q.offset + q.limit),
      };
    },
    tail: (out, filter) => tail.subscribe(out, filter),
    ui: { queries, scale: !config.scaleBySampling },
  };

  const countersLog = new RateLimitedLogger(log);
  const counters = new CountersWriter(sinks, (sink, err, records) => {
    m.countersWriteFailed(sink);
    countersLog.error(`counters:${sink}`, { sink, err, records }, "writing sFlow interface counters failed");
  });

  let ops: OpsServer | null = null;
  let stage = "--http-port";
  try {
    ops = await startOpsServer({ host: config.bindHost, port: config.httpPort, view });
    log.info({ port: ops.port, host: config.bindHost }, "ops server listening");
    stage = "--netflow-port/--ipfix-port/--sflow-port";
    const state = await readStateFile(statePath, log);
    if (state.length) log.info({ path: statePath, states: state.length }, "template state loaded");
    udp = await UdpInput.start({
      ports: [
        { port: config.netflowPort, role: "netflow" },
        { port: config.ipfixPort, role: "ipfix" },
        { port: config.sflowPort, role: "sflow" },
      ],
      bindHost: config.bindHost,
      workers: config.workers,
      state,
      logger: log.child({ component: "udp" }),
      onBatch: (b) => (tail.owns(b) ? tail.offer(b) : fanout.offer(b)),
      onCounters: (records) => counters.write(records),
      onStats: (s) => m.workerStats(s),
      onWorkerExit: (worker, lost) => m.workerExited(worker, lost),
      worker: {
        udpRcvbuf: config.udpRcvbuf,
        allowExporters: config.allowExporters,
        outputs: [...config.outputs, tail.output],
        batchSize: config.batchSize,
        batchIntervalMs: config.batchInterval * 1000,
        decoder: {
          templateTimeoutMs: config.templateTimeout * 1000,
          templateScope: config.templateScope,
          switchIdFromIp: config.switchIdFromIp,
          scaleBySampling: config.scaleBySampling,
          samplingMap: config.samplingMap,
          tunnelHeader: config.tunnelHeader,
        },
        logLevel: config.logLevel,
        statsIntervalMs: opts.statsIntervalMs ?? 1000,
        tickIntervalMs: 1000,
        decodeThreads: config.decodeThreads,
      },
    });
  } catch (err) {
    await ops?.close();
    await fanout.close();
    throw listenError(err, stage, config.bindHost);
  }
  phase = "running";
  const input = udp;
  log.info(
    {
      workers: config.workers,
      listeners: input.listeners.map((l) => `${l.address}:${l.port}`),
      outputs: config.outputs.map((o) => o.uri),
      receiveBufferBytes: input.listeners[0]?.receiveBufferBytes,
    },
    "collector listening",
  );

  const saveState = serialSaves(async (states?: object[]): Promise<void> => {
    try {
      const s = states ?? (await input.states());
      if (s.length === 0) return;
      await writeStateFile(statePath, s);
    } catch (err) {
      log.error({ err, path: statePath }, "cannot write template state");
    }
  });
  const stateTimer = setInterval(() => void saveState(), opts.stateSaveIntervalMs ?? 60_000);
  stateTimer.unref();

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      phase = "stopping";
      clearInterval(stateTimer);
      clearInterval(lossTimer);
      log.info("stopping: closing listeners, flushing batches");
      const finalStates = await input.stop();
      // Before draining: a backend that hangs must not make the save miss the stop grace period.
      await saveState(finalStates);
      const pending = fanout.pendingRecords;
      log.info({ records: pending }, "draining sink queues");
      await counters.settled();
      const errors = await fanout.close();
      for (const err of errors) log.error({ err }, "sink failed to flush or close");
      tail.close();
      await ops?.close();
      await queries?.close();
      // Per sink: flows written (local sinks), or for remote sinks (HTTP, Kafka) flows spooled (accepted)
      // and delivered (acknowledged by the destination); what is still spooled goes out after the next start.
      const sinksOut: Record<string, object> = {};
      for (const s of fanout.stats()) {
        const st = remoteSinks.find((x) => x.name === s.name)?.remoteStats();
        sinksOut[s.name] = st
          ? {
              spooled: s.writtenRecords,
              delivered: st.delivered,
              left_in_spool: st.spoolRecords,
              dropped: { ...s.droppedRecords, spool_full: st.droppedRecordsOnFull },
            }
          : { written: s.writtenRecords, dropped: s.droppedRecords };
      }
      log.info({ sinks: sinksOut }, "stopped");
    })();
    return stopping;
  };

  return {
    config,
    httpPort: ops.port,
    listeners: input.listeners,
    prometheus,
    saveState: () => saveState(),
    reopen: async () => {
      for (const s of sinks) {
        try {
          await s.reopen?.();
        } catch (err) {
          log.error({ err, sink: s.name }, "sink reopen failed");
        }
      }
      log.info("sinks reopened");
    },
    stop,
  };
}

/**
 * The agent collector (edge-agent HTTP relay on --agent-port): relays to --backend-url with the delivery
 * settings of the HTTP outputs (retries, backoff, spool bound) through `<dataDir>/spool/agent-relay`.
 */
async function startAgent(
  config: Config,
  log: Logger,
  renderPrometheus: (() => Promise<string>) | undefined,
): Promise<AgentCollector> {
  try {
    return await startAgentCollector({
      host: config.bindHost,
      port: config.agentPort,
      backendUrl: config.backendUrl,
      ...(config.agentToken ? { token: config.agentToken } : {}),
      bodyLimit: config.agentBodyLimit,
      dataDir: config.dataDir,
      retry: { attempts: config.retryAttempts, backoff: config.retryBackoff },
      spoolMaxBytes: config.spoolMaxBytes,
      batchSize: config.batchSize,
      batchIntervalSeconds: config.batchInterval,
      ...(renderPrometheus ? { renderPrometheus } : {}),
      logger: log.child({ component: "agent" }),
    });
  } catch (err) {
    throw listenError(err, "--agent-port", config.bindHost);
  }
}

/**
 * Starts the components the mode asks for: native (UDP collector), agent (edge-agent relay) or both.
 * Throws ConfigError for configuration that only proves bad at start (an output that cannot be opened, a
 * port in use); nothing stays half-started.
 */
export async function startCollector(config: Config, opts: StartOptions = {}): Promise<Collector> {
  const log = opts.logger ?? createLogger({ level: config.logLevel });
  let agent: AgentCollector | null = null;
  const hooks: NativeHooks = {
    remote: () => {
      if (agent === null) return [];
      const s = agent.stats();
      return [remoteHealth("agent-relay", s, s.relay.lastError)];
    },
    prometheusExtra: () => (agent === null ? "" : agentPrometheusText(agent.stats())),
  };
  const native = config.mode === "agent" ? null : await startNative(config, log, opts, hooks);
  if (config.mode !== "native") {
    try {
      agent = await startAgent(config, log, native ? () => native.prometheus() : undefined);
    } catch (err) {
      await native?.stop();
      throw err;
    }
  }
  const relay = agent;
  let stopping: Promise<void> | null = null;
  return {
    config,
    httpPort: native?.httpPort ?? relay?.port ?? 0,
    agentPort: relay?.port ?? 0,
    listeners: native?.listeners ?? [],
    saveState: async () => {
      await native?.saveState();
    },
    reopen: async () => {
      await native?.reopen();
    },
    stop: () => {
      stopping ??= (async () => {
        const results = await Promise.allSettled([
          native?.stop(),
          relay
            ?.close()
            .then(() => log.info({ relayed: relay.stats().relay.delivered }, "agent collector stopped")),
        ]);
        for (const r of results) if (r.status === "rejected") throw r.reason;
      })();
      return stopping;
    },
  };
}
