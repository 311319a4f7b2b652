/**
 * The sink contract (DESIGN §2). A sink has two halves so that encoding runs where the records are decoded
 * (the receive workers) and only bytes cross threads:
 * - a `SinkEncoder`, synchronous and pure, turns a batch of FlowRecords into an `EncodedBatch`
 *   (transferable byte arrays);
 * - a `Sink`, in the main thread, writes encoded batches (file, SQLite, HTTP, Kafka) and owns the I/O.
 * A `SinkDefinition` registers a URI scheme with both; adding a sink is one file plus one line in
 * src/sinks/index.ts.
 */
import type { FlowRecord } from "../core/flow.ts";
import type { InterfaceCounters } from "../protocols/sflow5.ts";

/** One unit of delivery: a request body, a block of lines, a set of rows. */
export interface EncodedPart {
  /** Grouping key: the exporter for per-exporter requests (Clarion), "" when the sink does not group. */
  key: string;
  /** How many flow records the part holds. */
  records: number;
  /** The encoded bytes (JSON lines, a JSON body, rows as JSON for SQLite's json_each...). */
  data: Uint8Array;
}

export interface EncodedBatch {
  /** Sink name (its URI as configured) the batch is for. */
  sink: string;
  /** Total flow records over all parts. */
  records: number;
  parts: EncodedPart[];
  /** Receive time of the oldest record, ms since the epoch (for latency and spool age metrics). */
  oldestMs: number;
  /** Index of the receive worker that encoded it (set by the main thread on arrival; for buffer reuse). */
  origin?: number;
}

export interface SinkEncoder {
  /** A batch with no parts and no records is not sent on (a sink that writes from the worker itself). */
  encode(records: readonly FlowRecord[]): EncodedBatch;
  /**
   * For a sink that writes from the receive worker (parquet): called after each batch, on the worker's
   * tick and once with `closing` at shutdown; returns batches for the main-thread half (receipts).
   */
  poll?(closing: boolean): EncodedBatch[];
  /**
   * A sink that takes each record as it is decoded (parquet: straight into its column buffers, so records
   * are not held in a batch) implements this; the worker then hands it no batches (`encode` is unused).
   */
  add?(record: FlowRecord): void;
  /**
   * Longest a record may wait for this output, ms (flows-v1: 1000). The worker's batcher flushes at the
   * smallest of --batch-interval and its outputs' values. Undefined: --batch-interval alone.
   */
  readonly flushIntervalMs?: number;
}

/** Where an encoder runs (receive workers pass it; configuration validation does not). */
export interface EncoderContext {
  /** Receive worker index. */
  worker: number;
}

export interface SinkContext {
  /** Data directory (SQLite database, spools, state). */
  dataDir: string;
  /** A pino logger (typed loosely so sinks do not depend on the logger's exact type). */
  logger: {
    info(o: object | string, m?: string): void;
    warn(o: object | string, m?: string): void;
    error(o: object | string, m?: string): void;
  };
  /** Sink-specific options from configuration (retention, batch sizes, tokens, ...). */
  options: Readonly<Record<string, unknown>>;
}

export interface Sink {
  readonly name: string;
  /** Write (or durably accept) one batch. Rejects only when the batch could not be written or kept. */
  write(batch: EncodedBatch): Promise<void>;
  /** Push everything accepted so far to its destination. */
  flush(): Promise<void>;
  /** Flush and release resources. */
  close(): Promise<void>;
  /** SIGHUP: reopen files (logrotate). */
  reopen?(): Promise<void>;
  /**
   * True when the sink holds no reference to a batch's bytes once `write()` has resolved: the pipeline then
   * hands the buffers back to the worker that encoded them, for reuse (src/pipeline/buffer-pool.ts).
   * A sink that keeps bytes after resolving (queued stream writes, retries, in-memory spools) leaves it unset.
   */
  readonly releasesBatches?: boolean;
  /**
   * sFlow interface counters (rare: one per interface per polling interval). Sinks that keep them
   * implement this; the others never see counters. Records arrive as plain objects (structured clones).
   */
  writeCounters?(records: readonly InterfaceCounters[]): Promise<void>;
}

export interface SinkDefinition {
  /** URI schemes this sink takes, without the colon (e.g. ["jsonl"], ["sqlite"], ["clarion+http", "clarion+https"]). */
  schemes: readonly string[];
  /** Validate the URI and options; throw ConfigError naming the key on a bad value. Runs in every worker. */
  createEncoder(uri: string, options: Readonly<Record<string, unknown>>, ctx?: EncoderContext): SinkEncoder;
  /** Create the writing half; fails fast (rejects) on bad configuration or an unusable destination. */
  create(uri: string, ctx: SinkContext): Promise<Sink>;
  /**
   * Every option key the sink (encoder and writer) reads. Configuration rejects any other key given for
   * the output (a misspelt key would otherwise be ignored silently). Undefined: see the per-scheme lists
   * in src/config/load.ts.
   */
  readonly optionKeys?: readonly string[];
}
