/**
 * A decode thread (--decode-threads, src/inputs/spread.ts): a worker_thread of a receive worker that reads
 * datagrams from its ring (ring.ts) and runs the pipeline that follows the socket callback in a worker
 * without decode threads (worker.ts createPipeline: decoder, batcher, encoders). Export sequences are not
 * tracked here: per datagram decoded as usual it reports (receive index, registry index, records, exact)
 * in batches, and the receive worker applies them in receive order. State-only copies change the decoder's
 * state and report nothing.
 *
 * Protocol with its receive worker:
 *   receive worker → thread: { t: "request", id, what, query? } | { t: "recycle", buffers } | { t: "stats" }
 *     (answered with pstats) | { t: "stop" }
 *   thread → receive worker: batch | counters (forwarded to the main thread as they are) |
 *     { t: "done", results } | { t: "pstats", stats } | { t: "reply", id, data } | { t: "state", state } |
 *     { t: "ready" } (once, when it reads its ring) | { t: "stopped" } (at stop: the ring drained, last batches, results, stats, state, stopped)
 */
import { parentPort, workerData } from "node:worker_threads";
import { createLogger, type LogLevel, RateLimitedLogger } from "../core/log.ts";
import { batchBuffers } from "../pipeline/buffer-pool.ts";
import type { TemplateQuery } from "../protocols/decoder.ts";
import { RING_NORMAL, RingReader } from "./ring.ts";
import {
  createPipeline,
  type PipelineInit,
  type PipelineStats,
  type WorkerToMain,
  warmUpPipeline,
} from "./worker.ts";

export interface DecodeThreadInit extends PipelineInit {
  kind: "clarion-decode-thread";
  /** Receive worker index and this thread's number within it (logs). */
  worker: number;
  thread: number;
  ring: SharedArrayBuffer;
  /** Listener names by the index the ring carries. */
  listeners: string[];
  logLevel: LogLevel;
  tickIntervalMs: number;
}

export type ToDecodeThread =
  | { t: "request"; id: number; what: "templates" | "state"; query?: TemplateQuery }
  | { t: "recycle"; buffers: ArrayBuffer[] }
  | { t: "stats" }
  | { t: "stop" };

/** Per datagram decoded as usual: receive index, registry index (-1: refused), records, exact (1/0). */
export const RESULT_FIELDS = 4;

export type FromDecodeThread =
  | WorkerToMain
  | { t: "done"; results: Float64Array }
  | { t: "pstats"; stats: PipelineStats }
  | { t: "ready" }
  | { t: "stopped"; worker: number };

/** Datagrams decoded between two looks at the event loop (timers, messages). */
const CHUNK = 256;
/** Empty looks at the ring, a millisecond apart, before sleeping until woken. */
const IDLE_POLLS = 200;

export function runDecodeThread(init: DecodeThreadInit): void {
  const port = parentPort;
  if (!port) throw new Error("runDecodeThread must run in a worker thread");
  const post = (m: FromDecodeThread, transfer?: ArrayBuffer[]): void => port.postMessage(m, transfer);
  const log = createLogger({ level: init.logLevel, bindings: { worker: init.worker, thread: init.thread } });
  warmUpPipeline(init, log);
  const pipe = createPipeline(init, post, log, new RateLimitedLogger(log), { track: false });
  const ring = new RingReader(init.ring, init.listeners);
  let results = new Float64Array(CHUNK * RESULT_FIELDS);
  let n = 0;
  const flush = (): void => {
    if (n === 0) return;
    const out = results.subarray(0, n * RESULT_FIELDS);
    post({ t: "done", results: out }, [results.buffer as ArrayBuffer]);
    results = new Float64Array(CHUNK * RESULT_FIELDS);
    n = 0;
  };
  const last = pipe.decoder.last;
  /** Decodes up to CHUNK datagrams; how many. */
  const drain = (): number => {
    for (let i = 0; i < CHUNK; i++) {
      const e = ring.read();
      if (e === null) {
        flush();
        return i;
      }
      if (e.kind === RING_NORMAL) {
        pipe.decode(e.dg);
        const o = n * RESULT_FIELDS;
        results[o] = e.index;
        results[o + 1] = last.decoder;
        results[o + 2] = last.records;
        results[o + 3] = last.exact ? 1 : 0;
        n++;
      } else pipe.decodeStateOnly(e.dg);
    }
    flush();
    return CHUNK;
  };
  // Wake-ups are batched by polling: while datagrams come, the ring is looked at every millisecond (a
  // timer here, nothing in the receive worker); after IDLE_POLLS empty looks the thread sleeps until the
  // receive worker's next write wakes it (Atomics.notify, only then).
  let stopping = false;
  let idle = 0;
  const loop = (): void => {
    if (stopping) return;
    const n = drain();
    if (n === CHUNK) {
      idle = 0;
      setImmediate(loop);
    } else if (n > 0 || ++idle < IDLE_POLLS) {
      if (n > 0) idle = 0;
      setTimeout(loop, 1);
    } else {
      idle = 0;
      void ring.wait().then(loop);
    }
  };

  const tickTimer = setInterval(() => pipe.tick(), init.tickIntervalMs);
  port.on("message", (m: ToDecodeThread) => {
    if (m.t === "request") post({ t: "reply", id: m.id, data: pipe.request(m.what, m.query) });
    else if (m.t === "stats") post({ t: "pstats", stats: pipe.stats() });
    else if (m.t === "recycle") for (const b of m.buffers) batchBuffers.give(b);
    else if (m.t === "stop") {
      // the receive worker closed its sockets before: what is in the ring is all there is
      stopping = true;
      clearInterval(tickTimer);
      while (drain() > 0) {}
      pipe.close();
      post({ t: "pstats", stats: pipe.stats() });
      post({ t: "state", state: pipe.request("state", undefined) as object | null });
      post({ t: "stopped", worker: init.thread });
      port.close();
    }
  });
  post({ t: "ready" });
  loop();
}

const init = workerData as DecodeThreadInit | undefined;
if (init?.kind === "clarion-decode-thread") runDecodeThread(init);
