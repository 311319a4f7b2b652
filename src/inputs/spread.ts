/**
 * --decode-threads N (issue 17, "one busy exporter must not be capped by one thread"): a receive worker
 * keeps its sockets, allow-list and receive counts, and hands each datagram to one of N decode threads of
 * its own (decode-thread.ts) through a SharedArrayBuffer ring each (ring.ts). The main thread still sees
 * one worker: stats, template pages and the decoder state are answered here from the decode threads'.
 *
 * Spreading: NetFlow v5, sFlow and v9/IPFIX data datagrams go round robin. A v9/IPFIX datagram that
 * carries a template or options-template set, or data of an options template (which ids those are, per
 * exporter, version and domain, is learned here from the template sets that pass: `OptionTemplates`), goes
 * to every decode thread in receive order: to one as usual, to the others as a state-only copy (they learn
 * its templates and options data, emit no flow and count nothing: FlowDecoder.decodeStateOnly). Each ring
 * keeps receive order, so a template is ahead of the data that follows it in every thread. Data that came
 * before its template is held by the thread that got it and released there when the template's copy comes.
 *
 * Export sequences: the decode threads do not track them. Per datagram decoded as usual they report
 * (receive index, registry index, records, exact) in batches; this worker keeps each datagram (its payload
 * is the socket's own buffer) until its result is in, and calls the protocol's `sequence()` in receive
 * order (a reorder window of at most WINDOW datagrams), so gaps count as without decode threads.
 *
 * Loss: a datagram whose ring is full (or that would overflow the reorder window) is dropped and counted
 * in WorkerStats.ringDrops, loss reason `decode_ring_full`. A state-only copy that finds its ring full is
 * counted there too (that thread may then miss a template: its data is then held or dropped, counted under
 * missing_template).
 *
 * Counters: the decode threads' counters are summed, except the template count and templates expired,
 * which every thread has for its own copy of the same templates (the largest is shown).
 */
import { Worker } from "node:worker_threads";
import type { Datagram } from "../core/datagram.ts";
import type { createLogger, RateLimitedLogger } from "../core/log.ts";
import { recyclables } from "../pipeline/buffer-pool.ts";
import { type ExporterStats, emptyStats, type TemplateQuery } from "../protocols/decoder.ts";
import { DECODERS } from "../protocols/index.ts";
import { SequenceTracker } from "../protocols/sequence.ts";
import type { MissingTemplateExporterStats } from "../protocols/state/missing-templates.ts";
import { mergeExporterStats } from "../protocols/stats.ts";
import type { DecodeThreadInit, FromDecodeThread, ToDecodeThread } from "./decode-thread.ts";
import { RESULT_FIELDS } from "./decode-thread.ts";
import { createRingBuffer, DEFAULT_RING_BYTES, RING_NORMAL, RING_STATE_ONLY, RingWriter } from "./ring.ts";
import type { PipelineStats, Receiver, WorkerInit, WorkerToMain } from "./worker.ts";

const THREAD_URL = new URL(
  import.meta.url.endsWith(".ts") ? "./decode-thread.ts" : "./decode-thread.js",
  import.meta.url,
);

/** Datagrams between the oldest whose sequence is not applied yet and the newest (bounded memory). */
export const WINDOW = 65_536;

/** Options-template ids tracked at most (over all exporters); beyond, the oldest exporter's are forgotten. */
const MAX_OPTION_TEMPLATES = 65_536;

/**
 * Which v9/IPFIX datagrams every decode thread must see: those with template sets, and those with data of
 * an options template. Keyed by exporter, version, domain and id (not the source port: devices send
 * options from other ports, and a wider key only broadcasts more).
 */
export class OptionTemplates {
  readonly #byExporter = new Map<string, Set<number>>();
  #size = 0;
  /** Exporters forgotten to stay within the bound. */
  evicted = 0;

  static key(version: number, domain: number, id: number): number {
    return (domain * 65536 + id) * 2 + (version === 10 ? 1 : 0);
  }

  /** An options template seen (from a datagram, or a saved state). */
  add(exporter: string, version: number, domain: number, id: number): void {
    let s = this.#byExporter.get(exporter);
    if (s === undefined) {
      while (this.#size >= MAX_OPTION_TEMPLATES && this.#byExporter.size > 0) {
        const [first, set] = this.#byExporter.entries().next().value!;
        this.#byExporter.delete(first);
        this.#size -= set.size;
        this.evicted++;
      }
      s = new Set();
      this.#byExporter.set(exporter, s);
    }
    const k = OptionTemplates.key(version, domain, id);
    if (!s.has(k) && this.#size < MAX_OPTION_TEMPLATES) {
      s.add(k);
      this.#size++;
    }
  }

  /** A (non-options) template with this id replaces an options template, if there was one. */
  delete(exporter: string, version: number, domain: number, id: number): void {
    const s = this.#byExporter.get(exporter);
    if (s?.delete(OptionTemplates.key(version, domain, id))) this.#size--;
  }

  /**
   * True when the datagram has a template set, or a data set of a known options template; learns the
   * options templates of its template sets. Malformed bytes end the walk (the decoder reports them).
   */
  broadcast(b: Buffer, exporter: string): boolean {
    if (b.length < 4) return false;
    const version = b.readUInt16BE(0);
    if (version === 9)
      return this.#sets(b, exporter, 9, 20, b.length, b.length >= 20 ? b.readUInt32BE(16) : 0);
    if (version !== 10) return false;
    let all = false;
    let m = 0;
    while (m + 16 <= b.length && b.readUInt16BE(m) === 10) {
      const len = b.readUInt16BE(m + 2);
      if (len < 16) break;
      const end = Math.min(b.length, m + len);
      if (this.#sets(b, exporter, 10, m + 16, end, b.readUInt32BE(m + 12))) all = true;
      m += len;
    }
    return all;
  }

  #sets(b: Buffer, exporter: string, version: 9 | 10, o: number, end: number, domain: number): boolean {
    const known = this.#byExporter.get(exporter);
    const tmpl = version === 9 ? 0 : 2;
    const opts = version === 9 ? 1 : 3;
    let all = false;
    while (o + 4 <= end) {
      const id = b.readUInt16BE(o);
      const len = b.readUInt16BE(o + 2);
      if (len < 4) break;
      const setEnd = Math.min(end, o + len);
      if (id === tmpl || id === opts) {
        all = true;
        this.#templates(b, exporter, version, o + 4, setEnd, domain, id === opts);
      } else if (id >= 256 && known?.has(OptionTemplates.key(version, domain, id))) all = true;
      o += len;
    }
    return all;
  }

  #templates(
    b: Buffer,
    exporter: string,
    version: 9 | 10,
    o: number,
    end: number,
    domain: number,
    options: boolean,
  ): void {
    while (o + 4 <= end) {
      const id = b.readUInt16BE(o);
      const count = b.readUInt16BE(o + 2);
      if (id < 256) return; // padding or a reserved id (the decoder says which)
      if (version === 9 && options) {
        // id, option scope length (bytes), option length (bytes), then the fields
        if (o + 6 > end) return;
        this.add(exporter, version, domain, id);
        o += 6 + count + b.readUInt16BE(o + 4);
        continue;
      }
      if (count === 0) {
        // an IPFIX withdrawal
        this.delete(exporter, version, domain, id);
        o += 4;
        continue;
      }
      if (options) this.add(exporter, version, domain, id);
      else this.delete(exporter, version, domain, id);
      let p = o + (version === 10 && options ? 6 : 4);
      for (let i = 0; i < count && p + 4 <= end; i++) {
        const raw = b.readUInt16BE(p);
        p += version === 10 && raw & 0x8000 ? 8 : 4;
      }
      o = p;
    }
  }
}

/** Sums `b` into `a` (numbers, and records of numbers one level down). */
function addInto(a: Record<string, unknown>, b: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(b)) {
    if (typeof v === "number") a[k] = ((a[k] as number | undefined) ?? 0) + v;
    else if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      if (a[k] === undefined) a[k] = {};
      addInto(a[k] as Record<string, unknown>, v as Record<string, unknown>);
    }
  }
}

/** The decode threads' counters as one worker's. */
export function mergePipelineStats(all: readonly PipelineStats[]): PipelineStats {
  const decoder = emptyStats();
  const exporters = new Map<string, ExporterStats>();
  const missing = new Map<string, MissingTemplateExporterStats>();
  const encodeErrors: Record<string, number> = {};
  let expired = 0;
  const out: PipelineStats = {
    decoder,
    exporters: [],
    missingTemplates: [],
    templates: 0,
    recordsBatched: 0,
    recordsPending: 0,
    batchesPosted: 0,
    encodeErrors,
    internalErrors: 0,
    batchBuffers: { hits: 0, misses: 0 },
    encodeMaxMs: 0,
  };
  for (const s of all) {
    addInto(decoder as unknown as Record<string, unknown>, s.decoder as unknown as Record<string, unknown>);
    expired = Math.max(expired, s.decoder.templatesExpired);
    for (const e of s.exporters) mergeExporterStats(exporters, e);
    for (const e of s.missingTemplates) {
      const m = missing.get(e.exporter);
      if (m === undefined) {
        missing.set(e.exporter, { ...e, templates: e.templates.map((t) => ({ ...t })) });
        continue;
      }
      m.droppedSets += e.droppedSets;
      m.heldSets += e.heldSets;
      for (const t of e.templates) {
        const same = m.templates.find(
          (x) => x.version === t.version && x.domain === t.domain && x.template_id === t.template_id,
        );
        if (same) {
          same.dropped += t.dropped;
          same.held += t.held;
        } else m.templates.push({ ...t });
      }
    }
    out.templates = Math.max(out.templates, s.templates);
    out.recordsBatched += s.recordsBatched;
    out.recordsPending += s.recordsPending;
    out.batchesPosted += s.batchesPosted;
    addInto(encodeErrors, s.encodeErrors);
    out.internalErrors += s.internalErrors;
    out.batchBuffers.hits += s.batchBuffers.hits;
    out.batchBuffers.misses += s.batchBuffers.misses;
    out.encodeMaxMs = Math.max(out.encodeMaxMs, s.encodeMaxMs);
  }
  if (all.length > 0) decoder.templatesExpired = expired;
  out.exporters = [...exporters.values()];
  out.missingTemplates = [...missing.values()];
  return out;
}

/** The internal (test) override of the ring size, else the default. */
function ringBytesFromEnv(): number {
  const v = Number(process.env.CLARION_COLLECTOR_DECODE_RING_BYTES);
  return Number.isInteger(v) && v > 0 ? Math.min(v, 1 << 30) : DEFAULT_RING_BYTES;
}

interface Thread {
  worker: Worker;
  ring: SharedArrayBuffer;
  writer: RingWriter;
  stats: PipelineStats | null;
  state: object | null;
  stopped: boolean;
}

/** The receive side of a worker with decode threads. Resolves when every thread is running. */
export async function spreadReceiver(
  init: WorkerInit,
  post: (m: WorkerToMain, transfer?: ArrayBuffer[]) => void,
  log: ReturnType<typeof createLogger>,
  limited: RateLimitedLogger,
): Promise<Receiver> {
  const n = init.decodeThreads ?? 1;
  const listeners = init.listeners.map((l) => l.name);
  const listenerIndex = new Map(listeners.map((name, i) => [name, i]));
  const sequences = new SequenceTracker();
  const optionTemplates = new OptionTemplates();
  for (const s of init.state) {
    const templates = (s as { templates?: unknown }).templates;
    if (!Array.isArray(templates)) continue;
    for (const t of templates.slice(0, MAX_OPTION_TEMPLATES)) {
      const x = t as {
        exporter?: unknown;
        version?: unknown;
        domain?: unknown;
        id?: unknown;
        options?: unknown;
      };
      if (x.options === true && typeof x.exporter === "string")
        optionTemplates.add(x.exporter, Number(x.version), Number(x.domain), Number(x.id));
    }
  }
  let ringDrops = 0;
  let stopping = false;
  // the reorder window: datagrams decoded as usual, by receive index, until their sequence is applied
  const pending: (Datagram | undefined)[] = new Array(WINDOW);
  const resolved = new Uint8Array(WINDOW);
  const result = new Float64Array(WINDOW * 3);
  let nextIndex = 0;
  let nextApply = 0;
  const apply = (): void => {
    while (nextApply < nextIndex) {
      const slot = nextApply % WINDOW;
      if (resolved[slot] === 0) return;
      const decoder = result[slot * 3]!;
      const dg = pending[slot];
      if (decoder >= 0 && dg !== undefined) {
        try {
          DECODERS[decoder]!.sequence(dg, sequences, result[slot * 3 + 1]!, result[slot * 3 + 2] === 1);
        } catch (err) {
          limited.error("sequence", { err }, "sequence tracking failed");
        }
      }
      pending[slot] = undefined;
      resolved[slot] = 0;
      nextApply++;
    }
  };
  const settle = (index: number, decoder: number, records: number, exact: number): void => {
    if (index < nextApply || index >= nextIndex) return;
    const slot = index % WINDOW;
    resolved[slot] = 1;
    result[slot * 3] = decoder;
    result[slot * 3 + 1] = records;
    result[slot * 3 + 2] = exact;
  };

  const threads: Thread[] = [];
  let onAllStopped: (() => void) | null = null;
  const pendingReplies = new Map<number, (data: unknown) => void>();
  let replyId = 0;
  let nextRecycle = 0;

  const spawn = (t: number): Promise<void> => {
    const ring = createRingBuffer(init.ringBytes ?? ringBytesFromEnv());
    const tinit: DecodeThreadInit = {
      kind: "clarion-decode-thread",
      index: (init.index + 1) * 1000 + t,
      worker: init.index,
      thread: t,
      ring,
      listeners,
      outputs: init.outputs,
      batchSize: init.batchSize,
      batchIntervalMs: init.batchIntervalMs,
      decoder: init.decoder,
      state: init.state,
      logLevel: init.logLevel,
      tickIntervalMs: init.tickIntervalMs,
    };
    // (the name is the OS thread's too: per-thread CPU in /proc tells decode threads from the rest)
    const worker = new Worker(THREAD_URL, {
      workerData: tinit,
      stderr: false,
      stdout: false,
      name: "clarion-decode",
    });
    const th: Thread = {
      worker,
      ring,
      writer: new RingWriter(ring),
      stats: null,
      state: null,
      stopped: false,
    };
    threads[t] = th;
    worker.on("message", (m: FromDecodeThread) => {
      switch (m.t) {
        case "batch":
          // every buffer of a batch that arrived here is this thread's to hand on whole
          post(m, recyclables(m.batch));
          break;
        case "counters":
          post(m);
          break;
        case "done": {
          const r = m.results;
          for (let i = 0; i + RESULT_FIELDS <= r.length; i += RESULT_FIELDS)
            settle(r[i]!, r[i + 1]!, r[i + 2]!, r[i + 3]!);
          apply();
          break;
        }
        case "pstats":
          th.stats = m.stats;
          if (--awaiting === 0) refreshed();
          break;
        case "reply": {
          const reply = pendingReplies.get(m.id);
          pendingReplies.delete(m.id);
          reply?.(m.data);
          break;
        }
        case "state":
          th.state = m.state;
          break;
        case "stopped":
          th.stopped = true;
          void worker.terminate();
          if (threads.every((x) => x.stopped)) onAllStopped?.();
          break;
      }
    });
    const died = (why: unknown): void => {
      if (th.stopped) return;
      log.error({ err: why, thread: t }, "decode thread failed: the receive worker exits and is restarted");
      process.exit(1);
    };
    worker.on("error", died);
    worker.on("exit", (code) => {
      if (!th.stopped && !stopping) died(new Error(`decode thread exited with code ${code}`));
    });
    return new Promise((resolve, reject) => {
      // "ready": its modules loaded and its pipeline built (a receive worker listens only then)
      worker.on("message", (m: FromDecodeThread) => {
        if (m.t === "ready") resolve();
      });
      worker.once("error", reject);
      worker.once("exit", (code) => reject(new Error(`decode thread exited with code ${code}`)));
    });
  };
  await Promise.all(Array.from({ length: n }, (_, t) => spawn(t)));

  // stats: asked of every thread at once; the worker's report waits for the answers (at most a second)
  let awaiting = 0;
  let onRefreshed: (() => void) | null = null;
  let refreshTimer: NodeJS.Timeout | undefined;
  const refreshed = (): void => {
    clearTimeout(refreshTimer);
    const done = onRefreshed;
    onRefreshed = null;
    awaiting = 0;
    done?.();
  };

  let rr = 0;
  const request = (
    what: "templates" | "state",
    query: TemplateQuery | undefined,
    reply: (d: unknown) => void,
  ) => {
    const th = threads[0]!;
    if (th.stopped) {
      reply(what === "state" ? th.state : null);
      return;
    }
    const id = ++replyId;
    pendingReplies.set(id, reply);
    th.worker.postMessage({ t: "request", id, what, ...(query ? { query } : {}) } satisfies ToDecodeThread);
  };

  return {
    datagram: (dg) => {
      if (nextIndex - nextApply >= WINDOW) {
        ringDrops++;
        limited.warn("ring", { exporter: dg.exporter }, "decode threads behind: datagram dropped");
        return;
      }
      const listener = listenerIndex.get(dg.listener) ?? 0;
      const target = rr;
      rr = rr + 1 === n ? 0 : rr + 1;
      const index = nextIndex++;
      const slot = index % WINDOW;
      pending[slot] = dg;
      if (n > 1 && optionTemplates.broadcast(dg.payload, dg.exporter)) {
        for (let t = 0; t < n; t++) {
          if (t === target) continue;
          if (!threads[t]!.writer.write(dg, listener, -1, RING_STATE_ONLY)) {
            ringDrops++;
            limited.warn(
              "ring",
              { exporter: dg.exporter, thread: t },
              "decode thread's ring full: template copy dropped",
            );
          }
        }
      }
      if (!threads[target]!.writer.write(dg, listener, index, RING_NORMAL)) {
        ringDrops++;
        limited.warn(
          "ring",
          { exporter: dg.exporter, thread: target },
          "decode thread's ring full: datagram dropped",
        );
        settle(index, -1, 0, 0);
        apply();
      }
    },
    tick: () => {},
    close: (done) => {
      stopping = true;
      onAllStopped = () => {
        apply();
        done();
      };
      for (const th of threads) th.worker.postMessage({ t: "stop" } satisfies ToDecodeThread);
    },
    request,
    refresh: (done) => {
      if (onRefreshed !== null || stopping) {
        done();
        return;
      }
      onRefreshed = done;
      awaiting = n;
      refreshTimer = setTimeout(refreshed, 1000);
      for (const th of threads) th.worker.postMessage({ t: "stats" } satisfies ToDecodeThread);
    },
    recycle: (buffers) => {
      const th = threads[nextRecycle]!;
      nextRecycle = (nextRecycle + 1) % n;
      if (!th.stopped) th.worker.postMessage({ t: "recycle", buffers } satisfies ToDecodeThread, buffers);
    },
    stats: () => ({
      ...mergePipelineStats(threads.flatMap((t) => (t.stats ? [t.stats] : []))),
      sequences: sequences.stats(),
      sequenceTotals: { ...sequences.totals },
      ringDrops,
    }),
  };
}
