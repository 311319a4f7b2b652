/**
 * Assembles the service (DESIGN §2): sinks and their bounded queues, the receive workers, the ops server,
 * the template state file. `startCollector(config)` runs in-process (tests) or from src/cli.ts.
 *
 * Components (by --mode): the native UDP collector (native, both) and the agent collector, the edge-agent
 * HTTP relay of src/inputs/agent.ts on --agent-port (agent, both). In mode both the native /health counts
 * the relay's spool, and both Prometheus endpoints expose every series of the process.
 */
import { open, readFile, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Config, OutputConfig } from "./config/options.ts";
import { ConfigError } from "./core/errors.ts";
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
import { CollectorMetrics } from "./ops/metrics.ts";
import { type OpsServer, type OpsView, startOpsServer } from "./ops/server.ts";
import { Fanout } from "./pipeline/fanout.ts";
import { SinkQueue } from "./pipeline/queue.ts";
import type { ExporterStats, TemplateInfo } from "./protocols/decoder.ts";
import type { InterfaceCounters } from "./protocols/sflow5.ts";
import { isHttpSink } from "./sinks/http.ts";
import { findSink } from "./sinks/index.ts";
import type { Sink } from "./sinks/types.ts";

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

/** Reads the saved decoder states; a missing or unreadable file means starting empty. */
export async function readStateFile(path: string, log: Logger): Promise<object[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT")
      log.warn({ err, path }, "cannot read template state");
    return [];
  }
  try {
    const doc = JSON.parse(text) as Partial<StateFile>;
    if (doc.format !== STATE_FORMAT || !Array.isArray(doc.states))
      throw new Error("not a template state file");
    return doc.states.filter((s): s is object => s !== null && typeof s === "object");
  } catch (err) {
    log.warn({ err: (err as Error).message, path }, "ignoring unreadable template state file");
    return [];
  }
}

/** Writes the state file atomically: temporary file, fsync, rename. */
export async function writeStateFile(path: string, states: object[]): Promise<void> {
  const doc: StateFile = { format: STATE_FORMAT, version: 1, savedAt: new Date().toISOString(), states };
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, "w", 0o644);
  try {
    await fh.writeFile(JSON.stringify(doc));
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
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

function mergeExporters(workers: readonly WorkerStats[]): object[] {
  const byIp = new Map<string, ExporterStats>();
  for (const w of workers) {
    for (const e of w.exporters) {
      const m = byIp.get(e.exporter);
      if (!m) {
        byIp.set(e.exporter, { ...e, protocols: { ...e.protocols } });
        continue;
      }
      m.datagrams += e.datagrams;
      m.bytes += e.bytes;
      m.flows += e.flows;
      m.errors += e.errors;
      if (e.lastSeenMs > m.lastSeenMs) {
        m.lastSeenMs = e.lastSeenMs;
        if (e.samplingRate) m.samplingRate = e.samplingRate;
      }
      for (const [p, n] of Object.entries(e.protocols)) {
        const k = p as keyof ExporterStats["protocols"];
        m.protocols[k] = (m.protocols[k] ?? 0) + (n ?? 0);
      }
    }
  }
  return [...byIp.values()]
    .sort((a, b) => a.exporter.localeCompare(b.exporter))
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
  s: { spooling: boolean; spoolBatches: number },
  lastError: string,
): RemoteHealth {
  return { name, spooling: s.spooling, spoolBatches: s.spoolBatches, lastError };
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
  const httpSinks = sinks.filter(isHttpSink);
  const backendSink = httpSinks.find((s) => s.name === config.backendOutput) ?? null;
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

  let kernelCache: { at: number; value: Map<number, KernelUdpCounters> } | null = null;
  const kernel = async (): Promise<Map<number, KernelUdpCounters>> => {
    if (kernelCache && Date.now() - kernelCache.at < 1000) return kernelCache.value;
    const value = await readKernelUdpCounters((udp?.listeners ?? []).map((l) => l.port));
    kernelCache = { at: Date.now(), value };
    return value;
  };
  metrics = new CollectorMetrics(
    {
      queues: () => fanout.stats(),
      listeners: () => udp?.listeners ?? [],
      kernel,
      workers: () => ({ configured: config.workers, listening: udp?.workersListening ?? 0 }),
      remoteSinks: () => httpSinks.map((s) => ({ name: s.name, stats: s.stats() })),
      unroutedRecords: () => fanout.unroutedRecords,
    },
    version(),
  );
  const m = metrics;

  const health = () =>
    evaluateHealth({
      phase,
      workersConfigured: config.workers,
      workersListening: udp?.workersListening ?? 0,
      sinks: fanout.stats(),
      nowMs: Date.now(),
      remote: [
        ...httpSinks.map((s) => {
          const st = s.stats();
          return remoteHealth(s.name, st, st.lastError);
        }),
        ...hooks.remote(),
      ],
    });

  const prometheus = async (): Promise<string> => (await m.prometheus()) + hooks.prometheusExtra();

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
            const h = httpSinks.find((x) => x.name === s.name);
            const st = h?.stats();
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
      // Clarion's keys keep their meaning: total_sent counts flows the backend acknowledged when there is
      // one (--backend-url); otherwise flows each sink wrote (HTTP sinks: acknowledged), summed.
      const t = m.totals;
      const sinkStats = fanout.stats();
      let sent = 0;
      let queued = 0;
      let spooled = 0;
      let dropped = 0;
      let writeErrors = 0;
      const sinksOut: Record<string, object> = {};
      for (const s of sinkStats) {
        const h = httpSinks.find((x) => x.name === s.name);
        const st = h?.stats();
        const sinkSent = st ? st.delivered : s.writtenRecords;
        const d = s.droppedRecords.queue_full + s.droppedRecords.write_error + s.droppedRecords.closed;
        dropped += d + (st ? st.droppedRecordsOnFull : 0);
        writeErrors += s.droppedBatches.write_error + (st ? st.deadLettered : 0);
        if (backendSink === null || h === backendSink) {
          sent += sinkSent;
          queued += s.pendingRecords;
          spooled += st ? st.spoolRecords : 0;
        }
        sinksOut[s.name] = {
          sent: sinkSent,
          pending: s.pendingRecords + (st ? st.spoolRecords : 0),
          queue_batches: s.length,
          dropped: st ? { ...s.droppedRecords, spool_full: st.droppedRecordsOnFull } : s.droppedRecords,
          ...(st
            ? {
                written: s.writtenRecords,
                spool_records: st.spoolRecords,
                spool_batches: st.spoolBatches,
                spool_bytes: st.spoolBytes,
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
      dropped += lost.worker_exit + lost.unrouted;
      return {
        total_received: t.df ?? 0,
        total_sent: sent,
        pending: m.batcherPending() + queued + spooled,
        errors: (t.de ?? 0) + (t.ie ?? 0) + (t.en ?? 0) + writeErrors,
        batch_size: config.batchSize,
        batch_interval_seconds: config.batchInterval,
        datagrams_received: t.rd ?? 0,
        bytes_received: t.rb ?? 0,
        decode_errors: t.de ?? 0,
        dropped,
        templates: m.workers.reduce((n, w) => n + w.templates, 0),
        workers: config.workers,
        uptime_seconds: Math.round((Date.now() - started) / 1000),
        ...(backendSink ? { backend_output: backendSink.name } : {}),
        sinks: sinksOut,
      };
    },
    prometheus: async () => ({ contentType: m.contentType, body: await prometheus() }),
    templates: async () => {
      const list = (udp ? await udp.templates() : []) as TemplateInfo[];
      list.sort(
        (a, b) =>
          a.exporter.localeCompare(b.exporter) ||
          a.port - b.port ||
          a.version - b.version ||
          a.domain - b.domain ||
          a.id - b.id,
      );
      const iso = (ms: number): string | null => (ms ? new Date(ms).toISOString() : null);
      return {
        count: list.length,
        templates: list.map((t) => ({
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
    exporters: () => ({ exporters: mergeExporters(m.workers) }),
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
      onBatch: (b) => fanout.offer(b),
      onCounters: (records) => counters.write(records),
      onStats: (s) => m.workerStats(s),
      onWorkerExit: (worker, lost) => m.workerExited(worker, lost),
      worker: {
        udpRcvbuf: config.udpRcvbuf,
        outputs: config.outputs,
        batchSize: config.batchSize,
        batchIntervalMs: config.batchInterval * 1000,
        decoder: {
          templateTimeoutMs: config.templateTimeout * 1000,
          switchIdFromIp: config.switchIdFromIp,
          scaleBySampling: config.scaleBySampling,
          tunnelHeader: config.tunnelHeader,
        },
        logLevel: config.logLevel,
        statsIntervalMs: opts.statsIntervalMs ?? 1000,
        tickIntervalMs: 1000,
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
      log.info("stopping: closing listeners, flushing batches");
      const finalStates = await input.stop();
      // Before draining: a backend that hangs must not make the save miss the stop grace period.
      await saveState(finalStates);
      const pending = fanout.pendingRecords;
      log.info({ records: pending }, "draining sink queues");
      await counters.settled();
      const errors = await fanout.close();
      for (const err of errors) log.error({ err }, "sink failed to flush or close");
      await ops?.close();
      const t = fanout.stats();
      log.info(
        {
          sent: Object.fromEntries(t.map((s) => [s.name, s.writtenRecords])),
          dropped: t.map((s) => s.droppedRecords),
        },
        "stopped",
      );
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
