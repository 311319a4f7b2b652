/**
 * A receive worker's outputs: how each decoded record reaches every configured output's encoder, and when
 * batches are cut. Three kinds of encoder (src/sinks/types.ts SinkEncoder):
 * - `add` (parquet): takes each record as decoded and writes from the worker itself; `poll` hands over
 *   what the main thread needs (on the worker's tick and at shutdown);
 * - streaming (`append` + `cut`: jsonl, sqlite, Kafka): encodes each record as decoded into its open batch;
 * - batched (`encode`: HTTP, the live tail): gets the batch's records, held until the cut.
 * One Batcher for all: it counts every record (held only for batched outputs) and cuts at --batch-size
 * records, when the oldest has waited --batch-interval (or the smallest `flushIntervalMs`), and at
 * `close()`; at a cut every streaming and batched output hands over its batch, in configuration order.
 *
 * Ownership: when no batched output needs records held (none, or all `idle`-capable, like the tail), the
 * decoder refills one record for every flow (`scratch`, RecordHandler.scratch): `add` and `append` copy
 * what they keep before returning, and a record held for a batched output meanwhile (someone tails) is a
 * copy. So the default configuration (sqlite) allocates no FlowRecord per flow.
 *
 * Counting (WorkerStats): `recordsBatched` counts records when their batch is cut (records no batch waits
 * for, with only `add` or idle outputs, at once); `encodeErrors` by output: one per record an `add` or
 * `append` failed on (that record lost for that output) and one per batch a `cut`, `encode` or `poll`
 * failed on (that batch lost for that output).
 */
import { performance } from "node:perf_hooks";
import { FlowRecord } from "../core/flow.ts";
import { Batcher } from "../pipeline/batcher.ts";
import type { EncodedBatch, SinkEncoder } from "../sinks/types.ts";

export interface NamedEncoder {
  /** The output's URI as configured. */
  name: string;
  enc: SinkEncoder;
}

export interface WorkerOutputsOptions {
  encoders: readonly NamedEncoder[];
  batchSize: number;
  batchIntervalMs: number;
  /** Sends one encoded batch on (to the main thread). */
  post(batch: EncodedBatch): void;
  /** Logs an encoder failure (the caller rate-limits by `key`). */
  error(key: string, fields: Record<string, unknown>, message: string): void;
}

export class WorkerOutputs {
  /** Records handed to the encoders (see the module comment). */
  recordsBatched = 0;
  batchesPosted = 0;
  /** Encoder failures by output. */
  readonly encodeErrors: Record<string, number> = {};
  /** Longest cut (every output's batch encoded and posted), ms. */
  encodeMaxMs = 0;
  /** The record handler's `flow`. */
  readonly flow: (r: FlowRecord) => void;
  /** The record the decoder may refill for every flow, when the outputs allow it. */
  readonly scratch: FlowRecord | undefined;
  readonly #opts: WorkerOutputsOptions;
  readonly #batcher: Batcher<FlowRecord>;

  constructor(opts: WorkerOutputsOptions) {
    this.#opts = opts;
    const encoders = opts.encoders;
    // One batcher for every output: it flushes at the shortest wait any output allows (flows-v1: 1 s).
    let intervalMs = opts.batchIntervalMs;
    for (const { enc } of encoders) {
      if (enc.flushIntervalMs !== undefined && enc.flushIntervalMs > 0)
        intervalMs = Math.min(intervalMs, enc.flushIntervalMs);
    }
    const direct = encoders.filter((e) => e.enc.add !== undefined);
    const streaming = encoders.filter((e) => e.enc.add === undefined && isStreaming(e.enc));
    const batched = encoders.filter((e) => e.enc.add === undefined && !isStreaming(e.enc));
    const cutters = encoders.filter((e) => e.enc.add === undefined);
    this.#batcher = new Batcher<FlowRecord>({
      size: opts.batchSize,
      intervalMs,
      onBatch: (records, count) => {
        const t0 = performance.now();
        this.#cut(cutters, records, count);
        const ms = performance.now() - t0;
        if (ms > this.encodeMaxMs) this.encodeMaxMs = ms;
      },
    });
    const batcher = this.#batcher;

    // Batched outputs that can all say they would encode nothing (the live tail while nobody reads): while
    // they do, no records are held for them.
    const idleCapable = batched.length > 0 && batched.every((e) => e.enc.idle !== undefined);
    const allIdle = !idleCapable
      ? () => false
      : batched.length === 1
        ? batched[0]!.enc.idle!.bind(batched[0]!.enc)
        : () => batched.every((e) => e.enc.idle!());
    const refill = direct.length + streaming.length > 0 && (batched.length === 0 || idleCapable);
    this.scratch = refill ? new FlowRecord() : undefined;

    const adds = direct.map((e) => e.enc.add!.bind(e.enc));
    const appends = streaming.map((e) => e.enc.append!.bind(e.enc));
    const addNames = direct.map((e) => e.name);
    const appendNames = streaming.map((e) => e.name);
    const give = (r: FlowRecord): void => {
      for (let i = 0; i < adds.length; i++) {
        try {
          adds[i]!(r);
        } catch (err) {
          this.#failed(addNames[i]!, err, "encoder failed; record lost for this sink");
        }
      }
      for (let i = 0; i < appends.length; i++) {
        try {
          appends[i]!(r);
        } catch (err) {
          this.#failed(appendNames[i]!, err, "encoder failed; record lost for this sink");
        }
      }
    };
    const hold = batched.length > 0;
    const cuts = streaming.length > 0 || batched.length > 0;
    this.flow = !cuts
      ? (r) => {
          give(r);
          this.recordsBatched++;
        }
      : !hold
        ? (r) => {
            give(r);
            batcher.tally();
          }
        : (r) => {
            give(r);
            if (!allIdle()) batcher.add(refill ? Object.assign(new FlowRecord(), r) : r);
            else if (streaming.length > 0) batcher.tally();
            else this.recordsBatched++; // only idle batched outputs: no batch to cut
          };
  }

  /** Records counted in the open batch. */
  get recordsPending(): number {
    return this.#batcher.length;
  }

  /** Every output's `poll` (worker-side writers): on the worker's tick, and with `closing` at shutdown. */
  poll(closing: boolean): void {
    for (const e of this.#opts.encoders) this.#poll(e, closing);
  }

  /** Cuts the open batch and refuses further records (shutdown: nothing is left behind). */
  close(): void {
    this.#batcher.close();
  }

  /**
   * Throwaway outputs (the JIT warm-up, src/inputs/warmup.ts): drops the open batch without cutting it,
   * lets the worker-side writers finish (`poll(true)`: the archive's discarded file), and refuses further
   * records.
   */
  discard(): void {
    this.#batcher.discard();
    this.poll(true);
  }

  #cut(cutters: readonly NamedEncoder[], records: FlowRecord[], count: number): void {
    this.recordsBatched += count;
    for (const e of cutters) {
      const { name, enc } = e;
      let batch: EncodedBatch;
      try {
        if (enc.cut !== undefined && enc.append !== undefined) batch = enc.cut();
        else if (records.length > 0) batch = enc.encode(records);
        else continue;
      } catch (err) {
        this.#failed(name, err, "encoder failed; batch lost for this sink", count);
        continue;
      }
      if (batch.records > 0 || batch.parts.length > 0) {
        this.batchesPosted++;
        this.#opts.post(batch);
      }
      this.#poll(e, false);
    }
  }

  #poll({ name, enc }: NamedEncoder, closing: boolean): void {
    if (enc.poll === undefined) return;
    try {
      for (const batch of enc.poll(closing)) {
        this.batchesPosted++;
        this.#opts.post(batch);
      }
    } catch (err) {
      this.#failed(name, err, "sink poll failed");
    }
  }

  #failed(name: string, err: unknown, message: string, records?: number): void {
    this.encodeErrors[name] = (this.encodeErrors[name] ?? 0) + 1;
    this.#opts.error(
      `encode:${name}`,
      records === undefined ? { err, sink: name } : { err, sink: name, records },
      message,
    );
  }
}

function isStreaming(enc: SinkEncoder): boolean {
  return enc.append !== undefined && enc.cut !== undefined;
}
