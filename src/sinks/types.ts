/**
 * The sink contract (DESIGN §2). A sink has two halves so that encoding runs where the records are decoded
 * (the receive workers) and only bytes cross threads:
 * - a `SinkEncoder`, synchronous and pure, turns FlowRecords into `EncodedBatch`es (transferable byte
 *   arrays): a batch of records at a time (`encode`), or one record at a time as they are decoded
 *   (`append`, then `cut` when the worker's batcher says; no record is held meanwhile);
 * - a `Sink`, in the main thread, writes encoded batches (file, SQLite, HTTP, Kafka) and owns the I/O.
 * A `SinkDefinition` registers a URI scheme with both and owns everything else about the sink: its URI
 * parsing, its option keys, its path rules, whether it writes through the durable spool, and which global
 * settings it takes; a `Sink` with remote delivery reports `remoteStats()` (health, metrics). Config
 * (src/config/load.ts) and the app (src/app.ts) treat every sink alike: adding a sink is one file plus one
 * line in src/sinks/index.ts.
 */
import type { FlowRecord } from "../core/flow.ts";
import type { BreakerState } from "../pipeline/delivery.ts";
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
  /**
   * A batch of records in, its encoding out. A batch with no parts and no records is not sent on (a sink
   * that writes from the worker itself). A streaming encoder (`append`/`cut`) gives the same bytes as
   * appending each record and cutting; the worker uses `append`/`cut` then (tests and tools call `encode`).
   */
  encode(records: readonly FlowRecord[]): EncodedBatch;
  /**
   * Streaming (jsonl, sqlite, Kafka): encodes one record into the encoder's open batch as it is decoded, so the
   * worker holds no records for this output. The encoder keeps nothing of the record itself (only values
   * and bytes it encoded): the decoder may refill the same record for the next flow
   * (RecordHandler.scratch). When it throws, the open batch is as before the call (that record is lost for
   * this output; the worker counts it in encodeErrors). Implemented together with `cut`.
   */
  append?(record: FlowRecord): void;
  /**
   * Closes the open batch and returns it (no parts and 0 records when nothing was appended since the last
   * cut); the next `append` opens a new one. The worker's batcher decides when: --batch-size records
   * decoded, the oldest waiting --batch-interval (or the smallest `flushIntervalMs` of the outputs), and
   * shutdown. `encode` must not be called while a batch is open.
   */
  cut?(): EncodedBatch;
  /**
   * For a sink that writes from the receive worker (parquet): called after each batch, on the worker's
   * tick and once with `closing` at shutdown; returns batches for the main-thread half (receipts).
   */
  poll?(closing: boolean): EncodedBatch[];
  /**
   * A sink that takes each record as it is decoded and writes from the worker itself (parquet: straight
   * into its column buffers and files) implements this; the worker then never cuts batches for it
   * (`encode` is unused, its `poll` hands over what the main thread needs).
   * It copies what it keeps before returning: when every other output is streaming or `idle`-capable, the
   * worker's decoder refills one record for every flow (RecordHandler.scratch).
   */
  add?(record: FlowRecord): void;
  /**
   * True while this (batched, not streaming) output would encode nothing whatever the records (the live
   * tail while nobody reads): the worker then holds no records in its batcher for it (no batch of records
   * kept alive, and the decoder may refill one record per flow for the `add` and streaming outputs).
   * Checked for every record.
   */
  idle?(): boolean;
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
  /**
   * A throwaway encoder that warms the JIT before the worker's sockets open (src/inputs/warmup.ts): it runs
   * the encoder's code on synthetic flows and leaves nothing behind (no file, no directory); whatever it
   * returns is dropped.
   */
  discard?: boolean;
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
  /**
   * A lasting failure the sink cannot recover from by itself (e.g. its stdout reader went away), shown by
   * /health until it clears; null while it works. Undefined: the sink has none to report.
   */
  failure?(): string | null;
  /**
   * Sinks delivering to a remote destination through a disk spool (HTTP, Kafka): their delivery state,
   * polled by /health (degraded while `spooling`) and /metrics (clarion_collector_sink_* series).
   */
  remoteStats?(): RemoteSinkStats;
  /** The sink's own series (e.g. Kafka per topic), polled at scrape time and rendered into /metrics. */
  samples?(): SinkSample[];
}

/** One sample of a sink's own metric series (`name` without the clarion_collector_ prefix). */
export interface SinkSample {
  name: string;
  type: "counter" | "gauge";
  help: string;
  labels: Readonly<Record<string, string>>;
  value: number;
}

/** Delivery state of a sink with a disk spool and remote delivery (cumulative counters, current gauges). */
export interface RemoteSinkStats {
  /** Flow records acknowledged by the destination. */
  delivered: number;
  deliveredBatches: number;
  failed: number;
  retried: number;
  unknownOutcomes: number;
  splits: number;
  deadLettered: number;
  deadLetteredRecords: number;
  spoolBytes: number;
  spoolBatches: number;
  spoolRecords: number;
  oldestAgeMs: number;
  breakerState: BreakerState;
  breakerOpens: number;
  droppedOnFull: number;
  droppedRecordsOnFull: number;
  /** Spool writes that failed (disk full, I/O error); the batches they held were refused, not kept. */
  spoolWriteErrors: number;
  /** Damaged spool regions skipped (each at least one frame) and their bytes, moved to quarantine. */
  spoolCorruptFrames: number;
  spoolCorruptBytes: number;
  /** True while batches wait on retries or an unreachable destination (health: degraded). */
  spooling: boolean;
  lastError: string;
  /** A condition that makes the output unhealthy besides spooling (e.g. Kafka topic authorization), or "". */
  problem?: string;
  /**
   * Records the encoder left out (flows-v1: records without a source or destination address, which the
   * telemetry API rejects). 0 for sinks that send every record.
   */
  skippedNoAddress: number;
}

/** Global settings a sink may take as defaults for its options (see `SinkDefinition.globals`). */
export interface SinkGlobals {
  /** --spool-max-bytes. */
  spoolMaxBytes: number;
  /** --retention, ms (0 keeps everything). */
  retentionMs: number;
  /** --collector-id. */
  collectorId: string;
  /** The ingest bearer key (CLARION_COLLECTOR_INGEST_TOKEN, --ingest-token-file), "" when unset. */
  ingestToken: string;
}

export interface SinkDefinition {
  /** URI schemes this sink takes, without the colon (e.g. ["jsonl"], ["sqlite"], ["clarion+http", "clarion+https"]). */
  schemes: readonly string[];
  /** Validate the URI and options; throw ConfigError naming the key on a bad value. Runs in every worker. */
  createEncoder(uri: string, options: Readonly<Record<string, unknown>>, ctx?: EncoderContext): SinkEncoder;
  /** Create the writing half; fails fast (rejects) on bad configuration or an unusable destination. */
  create(uri: string, ctx: SinkContext): Promise<Sink>;
  /**
   * Every option key the sink (encoder and writer) reads, as the sink reads them (camelCase). A config
   * file gives each in snake_case (`token_file`; the camelCase spelling is a deprecated alias) and
   * configuration rejects any other key (a misspelt key would otherwise be ignored silently).
   */
  readonly optionKeys: readonly string[];
  /** The file the output writes, resolved (checked writable at load), or null (stdout, memory, remote). */
  path?(uri: string, dataDir: string, cwd: string): string | null;
  /** True when the sink writes every batch to the durable disk spool first (gets --spool-max-bytes). */
  readonly spool?: boolean;
  /**
   * Option defaults the sink takes from global settings, given the output's own options (which win).
   * Spool sinks get `spoolMaxBytes` without saying so.
   */
  globals?(g: SinkGlobals, options: Readonly<Record<string, unknown>>): Record<string, unknown>;
}
