/**
 * A receive worker (worker_threads). Each worker owns one SO_REUSEPORT socket per listener port, a
 * FlowDecoder (so the exporters the kernel hashes to it keep their templates here), and its outputs
 * (`createPipeline`; src/inputs/outputs.ts: one encoder per configured output, fed each record as decoded,
 * one shared batcher). Encoded batches go to the main thread with their bytes transferred, never copied
 * when avoidable. The socket callback never awaits. With
 * --decode-threads N the worker keeps its sockets, allow-list and receive counts and hands each datagram to
 * one of N decode threads of its own, each with such a pipeline (src/inputs/spread.ts); the main thread
 * sees one worker either way.
 *
 * Protocol with the main thread (src/inputs/udp.ts):
 *   main → worker: { t: "request", id, what: "templates" | "state", query? } | { t: "stop" }
 *   worker → main: listening | fatal | batch | stats | reply | state | stopped (in that order at shutdown:
 *   last batches, last stats, state, stopped)
 */
import { createSocket, type Socket } from "node:dgram";
import { PerformanceObserver, performance } from "node:perf_hooks";
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import type { OutputConfig } from "../config/options.ts";
import { type Datagram, normalizeAddress } from "../core/datagram.ts";
import { DecodeError } from "../core/errors.ts";
import type { RecordHandler } from "../core/flow.ts";
import { createLogger, type LogLevel, RateLimitedLogger } from "../core/log.ts";
import { batchBuffers, transferables } from "../pipeline/buffer-pool.ts";
import type { DecoderOptions, DecoderStats, ExporterStats, TemplateQuery } from "../protocols/decoder.ts";
import { FlowDecoder } from "../protocols/decoder.ts";
import type { SequenceExporterStats, SequenceTotals } from "../protocols/sequence.ts";
import type { InterfaceCounters } from "../protocols/sflow5.ts";
import type { MissingTemplateExporterStats } from "../protocols/state/missing-templates.ts";
import { findSink } from "../sinks/index.ts";
import type { EncodedBatch } from "../sinks/types.ts";
import { type RefusedCount, RefusedSources, SourceFilter } from "./allow.ts";
import { WorkerOutputs } from "./outputs.ts";
import { spreadReceiver } from "./spread.ts";
import { warmUpTraffic } from "./warmup.ts";

export interface ListenerSpec {
  /** e.g. "udp:2055" */
  name: string;
  port: number;
}

export interface WorkerInit {
  kind: "clarion-udp-worker";
  index: number;
  /** Spawn count of this worker index (1 for the first, +1 at each restart); echoed in its stats. */
  generation: number;
  listeners: ListenerSpec[];
  /** Resolved IP address to bind. */
  bindHost: string;
  udpRcvbuf: number;
  /** --allow-exporters: sources whose datagrams are decoded (empty: all). */
  allowExporters?: readonly string[];
  outputs: OutputConfig[];
  batchSize: number;
  batchIntervalMs: number;
  decoder: Partial<DecoderOptions>;
  logLevel: LogLevel;
  /** Saved decoder states (one per worker of the previous run); every worker loads them all. */
  state: object[];
  statsIntervalMs: number;
  tickIntervalMs: number;
  /**
   * --decode-threads: 0 decodes in this thread (the default); N > 0 hands each datagram to one of N decode
   * threads of this worker (src/inputs/spread.ts).
   */
  decodeThreads?: number;
  /**
   * Bytes of each decode thread's datagram ring. Default 8 MiB, or the internal (test) environment
   * variable CLARION_COLLECTOR_DECODE_RING_BYTES.
   */
  ringBytes?: number;
}

/** What one decode pipeline (decoder, batcher, encoders) needs: a receive worker's or a decode thread's. */
export interface PipelineInit {
  /** The encoders' worker number (parquet file names): the receive worker's index, or a decode thread's. */
  index: number;
  outputs: OutputConfig[];
  batchSize: number;
  batchIntervalMs: number;
  decoder: Partial<DecoderOptions>;
  state: object[];
}

/** A pipeline's part of WorkerStats (the rest is the receive worker's). */
export type PipelineStats = Omit<
  WorkerStats,
  | "worker"
  | "generation"
  | "sequences"
  | "sequenceTotals"
  | "receive"
  | "refused"
  | "socketErrors"
  | "gcMaxMs"
>;

/** Decoder, batcher and encoders of one thread: what follows the socket callback. */
export interface Pipeline {
  readonly decoder: FlowDecoder;
  /** Decodes one datagram into the outputs; logs and counts what it refuses. */
  decode(dg: Datagram): void;
  /** FlowDecoder.decodeStateOnly of a copy another pipeline decodes. */
  decodeStateOnly(dg: Datagram): void;
  /** Expiry of templates and held data, and the outputs' time-based work (every tick). */
  tick(): void;
  /** Last batches and files (shutdown). */
  close(): void;
  /** The end of a throwaway pipeline (PipelineOptions.discard): nothing cut, nothing posted. */
  discard(): void;
  /** Serves a request of the main thread ("templates" page or decoder "state"). */
  request(what: "templates" | "state", query: TemplateQuery | undefined): unknown;
  stats(): PipelineStats;
}

export interface ListenerStatus {
  name: string;
  port: number;
  address: string;
  family: "IPv4" | "IPv6";
  /** SO_RCVBUF as granted by the kernel (Linux reports twice the requested value). */
  receiveBufferBytes: number;
}

export interface ReceiveCount {
  listener: string;
  exporter: string;
  datagrams: number;
  bytes: number;
}

export interface WorkerStats {
  worker: number;
  /** WorkerInit.generation: a new value means a restarted worker whose counters start again from 0. */
  generation: number;
  decoder: DecoderStats;
  exporters: ExporterStats[];
  /** Export sequence gaps and resets per exporter (src/protocols/sequence.ts), and their totals. */
  sequences: SequenceExporterStats[];
  sequenceTotals: SequenceTotals;
  /** Data sets dropped or held for a missing template, per exporter and template id. */
  missingTemplates: MissingTemplateExporterStats[];
  templates: number;
  receive: ReceiveCount[];
  /** Datagrams refused by --allow-exporters, per listener and source (bounded), not in `receive`. */
  refused?: RefusedCount[];
  /** Records handed to the encoders. */
  recordsBatched: number;
  /** Records sitting in the batcher. */
  recordsPending: number;
  batchesPosted: number;
  /** Encoder failures (a batch lost for one sink), by sink. */
  encodeErrors: Record<string, number>;
  /**
   * Decoder bugs: exceptions escaping the decoder's tick, and datagrams the decoder reported with code
   * INTERNAL (it turns its own bugs into a DecodeError so nothing crashes).
   */
  internalErrors: number;
  socketErrors: number;
  /** The worker's batch buffer pool (src/pipeline/buffer-pool.ts): takes served by reuse / allocation. */
  batchBuffers: { hits: number; misses: number };
  /**
   * Longest the worker's thread was kept from its sockets by work other than receiving and decoding, ms
   * since it started: encoding one batch for every output (runs inside a datagram's callback when the
   * batch fills), and one garbage-collection pause. A burst arriving meanwhile must fit in the socket's
   * receive buffer.
   */
  encodeMaxMs: number;
  gcMaxMs: number;
  /** With --decode-threads: datagrams dropped because their decode thread's ring was full. */
  ringDrops?: number;
}

export type WorkerToMain =
  | { t: "listening"; worker: number; listeners: ListenerStatus[] }
  | { t: "fatal"; worker: number; message: string; code: string }
  | { t: "batch"; batch: EncodedBatch }
  | { t: "counters"; records: InterfaceCounters[] }
  | { t: "stats"; stats: WorkerStats }
  | { t: "reply"; id: number; data: unknown }
  | { t: "state"; state: object | null }
  | { t: "stopped"; worker: number };

export type MainToWorker =
  /** "templates" answers one page (FlowDecoder.templatePage) of `query`, "state" the decoder state. */
  | { t: "request"; id: number; what: "templates" | "state"; query?: TemplateQuery }
  | { t: "stop" }
  /** Buffers of written batches coming back (transferred) for the encoders to reuse. */
  | { t: "recycle"; buffers: ArrayBuffer[] };

/** Exporters beyond this many get the label "other" in the receive counts (bounded memory and labels). */
const MAX_EXPORTERS = 10_000;

/**
 * True for the DecodeError FlowDecoder.decode makes of an exception that is not a DecodeError (a bug in a
 * decoder, not malformed input): code INTERNAL.
 */
export function isInternalDecodeError(err: unknown): boolean {
  return err instanceof DecodeError && err.code === "INTERNAL";
}

function bindSocket(init: WorkerInit, l: ListenerSpec): Promise<Socket> {
  const v6 = init.bindHost.includes(":");
  const sock = createSocket({
    type: v6 ? "udp6" : "udp4",
    reusePort: true,
    ipv6Only: false,
    ...(init.udpRcvbuf > 0 ? { recvBufferSize: init.udpRcvbuf } : {}),
  });
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      sock.close();
      reject(err);
    };
    sock.once("error", onError);
    sock.bind({ port: l.port, address: init.bindHost }, () => {
      sock.off("error", onError);
      resolve(sock);
    });
  });
}

export interface PipelineOptions {
  /** false: export sequences are the caller's (decode threads: their receive worker tracks, in order). */
  track?: boolean;
  /** A throwaway pipeline (the JIT warm-up): encoders with EncoderContext.discard; end it with `discard()`. */
  discard?: boolean;
}

/** The decoder, batcher and encoders of one thread. `post` sends batches and counters on. */
export function createPipeline(
  init: PipelineInit,
  post: (m: WorkerToMain, transfer?: ArrayBuffer[]) => void,
  log: ReturnType<typeof createLogger>,
  limited: RateLimitedLogger,
  opts: PipelineOptions = {},
): Pipeline {
  const decoder = new FlowDecoder(init.decoder, opts.track ?? true);
  for (const s of init.state) {
    try {
      decoder.loadState(s);
    } catch (err) {
      log.warn({ err }, "ignoring unreadable saved template state");
    }
  }

  const encoders = init.outputs.map((o) => {
    const def = findSink(o.uri);
    const ctx = opts.discard === true ? { worker: init.index, discard: true } : { worker: init.index };
    return { name: o.uri, enc: def.createEncoder(o.uri, o.options, ctx) };
  });

  let internalErrors = 0;

  // Every decoded record to every output; batches cut by size and age (src/inputs/outputs.ts).
  const outputs = new WorkerOutputs({
    encoders,
    batchSize: init.batchSize,
    batchIntervalMs: init.batchIntervalMs,
    post: (batch) => post({ t: "batch", batch }, transferables(batch)),
    error: (key, fields, message) => limited.error(key, fields, message),
  });
  let counters: InterfaceCounters[] = [];
  const handler: RecordHandler = {
    flow: outputs.flow,
    counters: (c) => counters.push(c as InterfaceCounters),
    ...(outputs.scratch !== undefined ? { scratch: outputs.scratch } : {}),
  };

  const decode = (dg: Datagram): void => {
    const { exporter, listener } = dg;
    try {
      decoder.decode(dg, handler);
    } catch (err) {
      if (isInternalDecodeError(err)) {
        // Counted by the decoder under INTERNAL too; here also as the bug it is.
        internalErrors++;
        limited.error(
          "decode:internal",
          { err, exporter, listener, protocol: (err as DecodeError).protocol },
          "decoder failure (bug)",
        );
      } else if (err instanceof DecodeError) {
        limited.warn(
          `decode:${err.code}`,
          { code: err.code, exporter, protocol: err.protocol, reason: err.message },
          "malformed datagram",
        );
      } else {
        internalErrors++;
        limited.error("decode:internal", { err, exporter, listener }, "decoder failure (bug)");
      }
    }
    if (counters.length > 0) {
      post({ t: "counters", records: counters });
      counters = [];
    }
  };
  const safeTick = (): void => {
    try {
      decoder.tick(Date.now(), handler);
    } catch (err) {
      internalErrors++;
      limited.error("tick", { err }, "decoder tick failed");
    }
  };
  return {
    decoder,
    decode,
    decodeStateOnly: (dg) => {
      decoder.decodeStateOnly(dg, handler);
      if (counters.length > 0) {
        post({ t: "counters", records: counters });
        counters = [];
      }
    },
    tick: () => {
      safeTick();
      outputs.poll(false);
    },
    close: () => {
      safeTick();
      outputs.close();
      outputs.poll(true);
    },
    discard: () => outputs.discard(),
    request: (what, query) => {
      try {
        return what === "templates"
          ? decoder.templatePage(query ?? { offset: 0, limit: Number.MAX_SAFE_INTEGER })
          : decoder.saveState();
      } catch (err) {
        limited.error(`request:${what}`, { err }, "request failed");
        return null;
      }
    },
    stats: () => ({
      decoder: decoder.stats,
      exporters: decoder.exporters(),
      missingTemplates: decoder.missingTemplates.stats(decoder.heldSets()),
      templates: decoder.templateCount(),
      recordsBatched: outputs.recordsBatched,
      recordsPending: outputs.recordsPending,
      batchesPosted: outputs.batchesPosted,
      encodeErrors: { ...outputs.encodeErrors },
      internalErrors,
      batchBuffers: { hits: batchBuffers.stats.hits, misses: batchBuffers.stats.misses },
      encodeMaxMs: outputs.encodeMaxMs,
    }),
  };
}

/** Passes over the warm-up traffic (src/inputs/warmup.ts): 12 × 1,360 flows. */
const WARM_UP_PASSES = 12;

/**
 * Runs the code of `init`'s pipeline (decoder and every output's encoder, batches cut at its batch size)
 * over synthetic traffic in a throwaway pipeline, so that V8 has optimized it before real traffic arrives
 * (src/inputs/warmup.ts). Its batches are dropped, their buffers not counted as the pool's.
 * The internal (benchmark) environment variable CLARION_COLLECTOR_WARM_UP=0 skips it (before/after runs).
 */
export function warmUpPipeline(init: PipelineInit, log: ReturnType<typeof createLogger>): void {
  if (process.env.CLARION_COLLECTOR_WARM_UP === "0") return;
  const t0 = performance.now();
  const silent = createLogger({ level: "silent" });
  let flows = 0;
  try {
    batchBuffers.uncounted(() => {
      const pipe = createPipeline(
        // no saved state, nothing posted, no cut by time (only by size)
        { ...init, state: [], batchIntervalMs: 2 ** 31 - 1 },
        () => {},
        silent,
        new RateLimitedLogger(silent),
        { discard: true },
      );
      const traffic = warmUpTraffic();
      for (let p = 0; p < WARM_UP_PASSES; p++) for (const dg of traffic) pipe.decode(dg);
      const st = pipe.stats();
      flows = st.recordsBatched + st.recordsPending;
      pipe.discard();
    });
  } catch (err) {
    // a warm-up that fails costs only speed: the real pipeline is built and reports its own errors
    log.warn({ err }, "JIT warm-up failed (ignored)");
    return;
  }
  log.debug({ flows, ms: Math.round(performance.now() - t0) }, "decode pipeline warmed up");
}

/** The receive side of a worker: what a datagram goes through after its allow-list and receive count. */
export interface Receiver {
  /** The datagram (its payload is the receiver's to keep). */
  datagram(dg: Datagram): void;
  tick(): void;
  /** Last batches and files; `done` when everything is posted. */
  close(done: () => void): void;
  request(
    what: "templates" | "state",
    query: TemplateQuery | undefined,
    reply: (data: unknown) => void,
  ): void;
  recycle(buffers: ArrayBuffer[]): void;
  /** Brings `stats()` up to date (decode threads report theirs), then calls `done`. */
  refresh(done: () => void): void;
  /** Everything of WorkerStats but the receive counts. */
  stats(): Omit<WorkerStats, "worker" | "generation" | "receive" | "refused" | "socketErrors" | "gcMaxMs">;
}

/** --decode-threads 0: the worker decodes in its own thread. */
function localReceiver(
  init: WorkerInit,
  post: (m: WorkerToMain, transfer?: ArrayBuffer[]) => void,
  log: ReturnType<typeof createLogger>,
  limited: RateLimitedLogger,
): Receiver {
  warmUpPipeline(init, log);
  const pipe = createPipeline(init, post, log, limited);
  return {
    datagram: pipe.decode,
    tick: pipe.tick,
    close: (done) => {
      pipe.close();
      done();
    },
    request: (what, query, reply) => reply(pipe.request(what, query)),
    recycle: (buffers) => {
      for (const b of buffers) batchBuffers.give(b);
    },
    refresh: (done) => done(),
    stats: () => ({
      ...pipe.stats(),
      sequences: pipe.decoder.sequences.stats(),
      sequenceTotals: { ...pipe.decoder.sequences.totals },
    }),
  };
}

export async function runWorker(init: WorkerInit): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error("runWorker must run in a worker thread");
  const post = (m: WorkerToMain, transfer?: ArrayBuffer[]): void => port.postMessage(m, transfer);
  const log = createLogger({ level: init.logLevel, bindings: { worker: init.index } });
  const limited = new RateLimitedLogger(log);
  let socketErrors = 0;
  const receive = new Map<string, ReceiveCount>();
  const allowed = new SourceFilter(init.allowExporters ?? []);
  const refused = new RefusedSources();
  const receiver =
    (init.decodeThreads ?? 0) > 0
      ? await spreadReceiver(init, post, log, limited)
      : localReceiver(init, post, log, limited);

  const onMessage = (listener: string) => (msg: Buffer, rinfo: { address: string; port: number }) => {
    const exporter = normalizeAddress(rinfo.address);
    if (!allowed.allows(exporter)) {
      refused.count(listener, exporter, msg.length);
      limited.warn(
        "refused",
        { exporter, listener },
        "datagram from a source not in --allow-exporters dropped",
      );
      return;
    }
    const key = `${listener}|${exporter}`;
    let c = receive.get(key);
    if (!c) {
      if (receive.size >= MAX_EXPORTERS) {
        const other = `${listener}|other`;
        c = receive.get(other) ?? { listener, exporter: "other", datagrams: 0, bytes: 0 };
        receive.set(other, c);
      } else {
        c = { listener, exporter, datagrams: 0, bytes: 0 };
        receive.set(key, c);
      }
    }
    c.datagrams++;
    c.bytes += msg.length;
    receiver.datagram({ payload: msg, exporter, port: rinfo.port, receivedAtMs: Date.now(), listener });
  };

  const sockets: Socket[] = [];
  const statuses: ListenerStatus[] = [];
  try {
    for (const l of init.listeners) {
      const s = await bindSocket(init, l);
      sockets.push(s);
      const addr = s.address();
      statuses.push({
        name: l.name,
        port: addr.port,
        address: addr.address,
        family: addr.family === "IPv6" ? "IPv6" : "IPv4",
        receiveBufferBytes: s.getRecvBufferSize(),
      });
      s.on("message", onMessage(l.name));
      s.on("error", (err) => {
        socketErrors++;
        limited.error(`socket:${l.name}`, { err, listener: l.name }, "socket error");
      });
    }
  } catch (err) {
    for (const s of sockets) s.close();
    const e = err as NodeJS.ErrnoException;
    post({ t: "fatal", worker: init.index, message: e.message, code: e.code ?? "" });
    port.close();
    return;
  }
  post({ t: "listening", worker: init.index, listeners: statuses });

  const stats = (): WorkerStats => ({
    worker: init.index,
    generation: init.generation,
    ...receiver.stats(),
    receive: [...receive.values()],
    refused: refused.list(),
    socketErrors,
    gcMaxMs,
  });
  let gcMaxMs = 0;
  const gc = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if (e.duration > gcMaxMs) gcMaxMs = e.duration;
  });
  gc.observe({ entryTypes: ["gc"] });
  const tickTimer = setInterval(() => receiver.tick(), init.tickIntervalMs);
  const statsTimer = setInterval(
    () => receiver.refresh(() => post({ t: "stats", stats: stats() })),
    init.statsIntervalMs,
  );

  port.on("message", (m: MainToWorker) => {
    if (m.t === "request") {
      receiver.request(m.what, m.query, (data) => post({ t: "reply", id: m.id, data }));
    } else if (m.t === "recycle") {
      receiver.recycle(m.buffers);
    } else if (m.t === "stop") {
      clearInterval(tickTimer);
      clearInterval(statsTimer);
      gc.disconnect();
      void Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r())))).then(() => {
        receiver.close(() =>
          receiver.request("state", undefined, (saved) => {
            post({ t: "stats", stats: stats() });
            const state = (saved as object | null) ?? null;
            if (state === null) log.error("cannot save template state");
            post({ t: "state", state });
            post({ t: "stopped", worker: init.index });
            port.close();
          }),
        );
      });
    }
  });
}

const init = workerData as WorkerInit | undefined;
if (!isMainThread && init?.kind === "clarion-udp-worker") {
  runWorker(init).catch((err: unknown) => {
    const e = err as Error;
    parentPort?.postMessage({
      t: "fatal",
      worker: init.index,
      message: e.message,
      code: "",
    } satisfies WorkerToMain);
    parentPort?.close();
  });
}
