/**
 * `kafka://HOST[:PORT][,HOST[:PORT]...]/TOPIC` (and `kafkas://` for TLS): one Kafka message per flow.
 *
 * Encoder half (receive workers, src/encode/goflow2-pb.ts): `format` `protobuf` (default; GoFlow2's
 * FlowMessage length-delimited as GoFlow2 writes it, our fields on numbers 2001–2006) or `json` (our GoFlow2
 * JSON line). The key is the exporter address (one exporter's flows stay in one partition, in order), or
 * GoFlow2's FNV-1 hash of `key_fields`. Frames are cut at `batch_size` messages and `message_max_bytes`.
 * Streaming: each flow is framed as it is decoded (KafkaFrameStream), no record is held for this output.
 * `linger_ms` (default 1000) is how long a flow may wait in the worker's batcher for this output.
 *
 * Writer half (main thread): at least once through the same write-ahead disk spool and delivery loop as the
 * HTTP sinks (src/pipeline/spool.ts, src/pipeline/delivery.ts): `write()` appends the frames to
 * `<dataDir>/spool/<sink>` and resolves; one produce request at a time (order kept) sends the spool oldest
 * first and a unit is released only when the brokers acknowledged every message (acks=all by default).
 * Broker down, leader changes and retriable errors: retried with backoff and a circuit breaker, the data
 * stays on disk (also across restarts). MESSAGE_TOO_LARGE / RECORD_LIST_TOO_LARGE: the unit is split in
 * half, recursively; a single message too large is dead-lettered. Topic or cluster authorization refused,
 * invalid topic or record: dead letter (`<dataDir>/deadletter/<sink>.jsonl`), counted, and /health
 * degraded for a minute. SASL authentication refused: retried, the data stays spooled.
 * The producer is idempotent when acks is all (`idempotent`, default true), so the client's own retries
 * do not duplicate; a retry of a whole unit after an unknown outcome can (at least once).
 *
 * Client: @platformatic/kafka (pure JS, maintained, no warnings on Node 24). With librdkafka's mock
 * cluster (and brokers that expect it) InitProducerId must carry producer id −1 / epoch −1, which the
 * client sends only when given explicitly: done here.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Producer } from "@platformatic/kafka";
import { z } from "zod";
import { ConfigError } from "../core/errors.ts";
import type { FlowRecord } from "../core/flow.ts";
import {
  decodeFrames,
  type Frame,
  joinFrames,
  KAFKA_FORMATS,
  KafkaFrameStream,
  KEY_FIELDS,
  type KeyField,
  keyFunction,
} from "../encode/goflow2-pb.ts";
import { Delivery, type DeliveryUnit, type SendOutcome } from "../pipeline/delivery.ts";
import { remoteSinkStats, spoolBatch, spoolOldestAgeMs } from "../pipeline/remote-sink.ts";
import { type FsyncPolicy, Spool } from "../pipeline/spool.ts";
import { sinkSlug } from "./http.ts";
import type {
  EncodedBatch,
  RemoteSinkStats,
  Sink,
  SinkContext,
  SinkDefinition,
  SinkEncoder,
  SinkSample,
} from "./types.ts";

// ---------------------------------------------------------------------------------------------------------
// URI

export interface KafkaTarget {
  tls: boolean;
  brokers: string[];
  topic: string;
}

/** Parses `kafka(s)://h1[:p],h2[:p]/topic`; ports default to 9092. Throws ConfigError. */
export function parseKafkaUri(uri: string): KafkaTarget {
  const m = /^(kafkas?):\/\/([^/?#]*)\/([^/?#]*)$/i.exec(uri);
  if (!m) throw new ConfigError("output", `expected kafka://HOST[:PORT][,HOST[:PORT]...]/TOPIC, got ${uri}`);
  const tls = m[1]!.toLowerCase() === "kafkas";
  const topic = m[3]!;
  if (!/^[A-Za-z0-9._-]{1,249}$/.test(topic) || topic === "." || topic === "..") {
    throw new ConfigError("output", `invalid Kafka topic "${topic}" (letters, digits, . _ -; at most 249)`);
  }
  const brokers: string[] = [];
  for (const raw of m[2]!.split(",")) {
    const h = raw.trim();
    if (h === "") throw new ConfigError("output", `empty broker address in ${uri}`);
    if (h.includes("@"))
      throw new ConfigError("output", "credentials in the URI are not allowed: use the sasl_* options");
    const v6 = /^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$/.exec(h);
    const plain = /^([A-Za-z0-9.-]+)(?::(\d+))?$/.exec(h);
    const hm = v6 ?? plain;
    if (!hm) throw new ConfigError("output", `invalid broker address "${h}" in ${uri}`);
    const port = hm[2] === undefined ? 9092 : Number(hm[2]);
    if (!(port >= 1 && port <= 65535)) throw new ConfigError("output", `invalid broker port in "${h}"`);
    brokers.push(`${v6 ? `[${hm[1]}]` : hm[1]}:${port}`);
  }
  return { tls, brokers, topic };
}

// ---------------------------------------------------------------------------------------------------------
// Options

const num = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const bool = z.union([
  z.boolean(),
  z.enum(["true", "false", "1", "0", "yes", "no", "on", "off"]).transform((v) => /^(true|1|yes|on)$/.test(v)),
]);
const list = z
  .union([z.array(z.string()), z.string()])
  .transform((v) => (Array.isArray(v) ? v : v.split(",")).map((s) => s.trim()).filter((s) => s !== ""));

/** The Kafka output's options (config keys in snake_case; these are the names the sink reads). */
export const KAFKA_OPTIONS = z.object({
  format: z.enum(KAFKA_FORMATS).default("protobuf"),
  keyFields: list.pipe(z.array(z.enum(KEY_FIELDS))).default([]),
  clientId: z.string().min(1).max(255).default("clarion-collector"),
  acks: z
    .union([z.literal("all"), z.literal(-1), z.literal(0), z.literal(1), z.enum(["-1", "0", "1"])])
    .transform((v) => (v === "all" ? -1 : Number(v)))
    .default(-1),
  idempotent: bool.default(true),
  compression: z.enum(["none", "gzip", "snappy", "lz4", "zstd"]).default("none"),
  batchSize: num(1, 1_000_000).default(1000),
  lingerMs: num(0, 3_600_000).default(1000),
  messageMaxBytes: num(1024, 100 * 1024 * 1024).default(1_000_000),
  saslMechanism: z.enum(["plain", "scram-sha-256", "scram-sha-512"]).optional(),
  saslUsername: z.string().min(1).optional(),
  saslPassword: z.string().min(1).optional(),
  saslPasswordFile: z.string().min(1).optional(),
  saslPasswordEnv: z.string().min(1).optional(),
  tlsCaFile: z.string().min(1).optional(),
  tlsCertFile: z.string().min(1).optional(),
  tlsKeyFile: z.string().min(1).optional(),
  tlsInsecure: bool.default(false),
  tlsServerName: z.string().min(1).optional(),
  timeoutMs: num(100, 600_000).default(30_000),
  connectTimeoutMs: num(100, 600_000).default(10_000),
  behindMs: num(1000).default(30_000),
  retryAttempts: num(1, 1000).default(3),
  retryBackoff: z.coerce.number().min(1).max(100).default(1.5),
  retryBaseMs: num(0).default(500),
  retryMaxMs: num(0).default(30_000),
  breakerThreshold: num(1).default(5),
  breakerResetMs: num(1).default(5000),
  breakerMaxResetMs: num(1).default(60_000),
  spoolMaxBytes: num(256 * 1024).default(1024 ** 3),
  spoolSegmentBytes: num(64 * 1024).default(16 * 1024 ** 2),
  fsync: z.enum(["always", "interval", "never"]).default("interval"),
  fsyncIntervalMs: num(1).default(1000),
  flushTimeoutMs: num(0).default(10_000),
});
export type KafkaOptions = z.output<typeof KAFKA_OPTIONS>;

function snake(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Options with defaults; ConfigError naming the (snake_case) key on a bad value or combination. */
export function parseKafkaOptions(uri: string, options: Readonly<Record<string, unknown>>): KafkaOptions {
  const known = new Set(Object.keys(KAFKA_OPTIONS.shape));
  const given: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options))
    if (known.has(k) && v !== undefined && v !== null) given[k] = v;
  const r = KAFKA_OPTIONS.safeParse(given);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const key = String(issue.path[0] ?? "options");
    throw new ConfigError(snake(key), `${issue.message} (got ${JSON.stringify(given[key])})`);
  }
  const o = r.data;
  const target = parseKafkaUri(uri);
  const tlsKeys = ["tlsCaFile", "tlsCertFile", "tlsKeyFile", "tlsServerName"] as const;
  if (!target.tls) {
    for (const k of tlsKeys) {
      if (o[k] !== undefined) throw new ConfigError(snake(k), "TLS options need a kafkas:// output");
    }
    if (o.tlsInsecure) throw new ConfigError("tls_insecure", "TLS options need a kafkas:// output");
  }
  if ((o.tlsCertFile === undefined) !== (o.tlsKeyFile === undefined)) {
    throw new ConfigError(
      o.tlsCertFile ? "tls_key_file" : "tls_cert_file",
      "a client certificate needs both tls_cert_file and tls_key_file",
    );
  }
  const passwordSources = [o.saslPassword, o.saslPasswordFile, o.saslPasswordEnv].filter(
    (v) => v !== undefined,
  );
  if (o.saslMechanism === undefined) {
    if (o.saslUsername !== undefined || passwordSources.length > 0) {
      throw new ConfigError(
        "sasl_mechanism",
        "SASL credentials given without sasl_mechanism (plain, scram-sha-256, scram-sha-512)",
      );
    }
  } else {
    if (o.saslUsername === undefined)
      throw new ConfigError("sasl_username", `sasl_mechanism ${o.saslMechanism} needs sasl_username`);
    if (passwordSources.length !== 1) {
      throw new ConfigError(
        "sasl_password",
        "give exactly one of sasl_password, sasl_password_file, sasl_password_env",
      );
    }
  }
  if (o.idempotent && o.acks !== -1) {
    throw new ConfigError(
      "idempotent",
      "the idempotent producer needs acks all; set idempotent: false to use acks 0 or 1",
    );
  }
  return o;
}

function readFileOption(key: string, path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(snake(key), `cannot read "${path}": ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
}

function saslPassword(o: KafkaOptions): string {
  if (o.saslPassword !== undefined) return o.saslPassword;
  if (o.saslPasswordFile !== undefined) return readFileOption("saslPasswordFile", o.saslPasswordFile).trim();
  const v = process.env[o.saslPasswordEnv ?? ""];
  if (v === undefined || v === "")
    throw new ConfigError("sasl_password_env", `variable ${o.saslPasswordEnv} is not set`);
  return v;
}

/** The client's connection settings (TLS files read, SASL secret resolved); ConfigError on unreadable files. */
function connection(target: KafkaTarget, o: KafkaOptions): Record<string, unknown> {
  const c: Record<string, unknown> = {};
  if (target.tls) {
    const tls: Record<string, unknown> = { rejectUnauthorized: !o.tlsInsecure };
    if (o.tlsCaFile) tls.ca = readFileOption("tlsCaFile", o.tlsCaFile);
    if (o.tlsCertFile) tls.cert = readFileOption("tlsCertFile", o.tlsCertFile);
    if (o.tlsKeyFile) tls.key = readFileOption("tlsKeyFile", o.tlsKeyFile);
    if (o.tlsServerName) tls.servername = o.tlsServerName;
    c.tls = tls;
  }
  if (o.saslMechanism !== undefined) {
    c.sasl = {
      mechanism: o.saslMechanism.toUpperCase(),
      username: o.saslUsername,
      password: saslPassword(o),
    };
  }
  return c;
}

// ---------------------------------------------------------------------------------------------------------
// Encoder

/**
 * Streaming (`append`/`cut`): each record is framed as it is decoded (KafkaFrameStream), in groups of at
 * most `batchSize` messages and about `messageMaxBytes` bytes; `encode` is the same over a whole batch.
 */
export function createKafkaEncoder(uri: string, options: Readonly<Record<string, unknown>>): SinkEncoder {
  parseKafkaUri(uri);
  const o = parseKafkaOptions(uri, options);
  const stream = new KafkaFrameStream(
    o.format,
    keyFunction(o.keyFields as KeyField[]),
    o.batchSize,
    o.messageMaxBytes,
  );
  let oldestMs = 0;
  const enc = {
    flushIntervalMs: o.lingerMs > 0 ? o.lingerMs : undefined,
    append(r: FlowRecord): void {
      stream.append(r);
      const t = r.time_received_ms;
      if (oldestMs === 0 || (t > 0 && t < oldestMs)) oldestMs = t;
    },
    cut(): EncodedBatch {
      const records = stream.records;
      const parts = stream.cut().map((p) => ({ key: "", records: p.records, data: p.data }));
      const batch = { sink: uri, records, parts, oldestMs };
      oldestMs = 0;
      return batch;
    },
    encode(records: readonly FlowRecord[]): EncodedBatch {
      if (stream.records > 0) throw new Error(`${uri}: encode() while a batch is open`);
      try {
        for (const r of records) enc.append(r);
      } catch (err) {
        enc.cut(); // the batch is lost for this output, as a whole (the caller counts it)
        throw err;
      }
      return enc.cut();
    },
  };
  return enc;
}

// ---------------------------------------------------------------------------------------------------------
// Errors

/** Kafka error names (the protocol's) found in an error from the client, outermost first. */
export function kafkaErrorCodes(err: unknown): string[] {
  const codes: string[] = [];
  const seen = new Set<unknown>();
  const walk = (e: unknown, depth: number): void => {
    if (e === null || typeof e !== "object" || seen.has(e) || depth > 6) return;
    seen.add(e);
    const x = e as { apiId?: unknown; code?: unknown; errors?: unknown; cause?: unknown };
    if (typeof x.apiId === "string") codes.push(x.apiId);
    if (Array.isArray(x.errors)) for (const c of x.errors) walk(c, depth + 1);
    walk(x.cause, depth + 1);
  };
  walk(err, 0);
  if (codes.length === 0) {
    const c = (err as { code?: unknown })?.code;
    codes.push(typeof c === "string" ? c : "UNKNOWN");
  }
  return codes;
}

const TOO_LARGE = new Set(["MESSAGE_TOO_LARGE", "RECORD_LIST_TOO_LARGE"]);
/** Refusals retrying cannot fix: dead letter. */
const FATAL = new Set([
  "TOPIC_AUTHORIZATION_FAILED",
  "CLUSTER_AUTHORIZATION_FAILED",
  "INVALID_TOPIC_EXCEPTION",
  "INVALID_RECORD",
  "CORRUPT_MESSAGE",
  "INVALID_REQUIRED_ACKS",
  "UNSUPPORTED_FOR_MESSAGE_FORMAT",
]);
const AUTH = new Set(["SASL_AUTHENTICATION_FAILED", "ILLEGAL_SASL_STATE", "UNSUPPORTED_SASL_MECHANISM"]);
/** The producer's idempotence state is lost: make a new producer before the next attempt. */
const RESET = new Set([
  "OUT_OF_ORDER_SEQUENCE_NUMBER",
  "UNKNOWN_PRODUCER_ID",
  "INVALID_PRODUCER_EPOCH",
  "INVALID_PRODUCER_ID_MAPPING",
  "DUPLICATE_SEQUENCE_NUMBER",
]);

// ---------------------------------------------------------------------------------------------------------
// Writer

type KafkaProducer = Producer<Buffer, Buffer, Buffer, Buffer>;
type ProducerClass = typeof Producer;

class KafkaSink implements Sink {
  readonly name: string;
  readonly target: KafkaTarget;
  readonly #o: KafkaOptions;
  readonly #ctx: SinkContext;
  readonly #conn: Record<string, unknown>;
  readonly #spool: Spool;
  readonly #delivery: Delivery;
  readonly #Producer: ProducerClass;
  #producer: KafkaProducer;
  #closed = false;
  #messages = 0;
  #bytes = 0;
  #errors = new Map<string, number>();
  /** Requests the client repeated itself (see retryDelay). */
  #clientRetries = 0;
  #rttLastMs = 0;
  #rttSumMs = 0;
  #rttCount = 0;
  #problem = "";
  #problemMs = 0;

  constructor(
    name: string,
    target: KafkaTarget,
    o: KafkaOptions,
    conn: Record<string, unknown>,
    spool: Spool,
    ctx: SinkContext,
    producerClass: ProducerClass,
  ) {
    this.#Producer = producerClass;
    this.name = name;
    this.target = target;
    this.#o = o;
    this.#ctx = ctx;
    this.#conn = conn;
    this.#spool = spool;
    this.#producer = this.#newProducer();
    this.#delivery = new Delivery({
      name,
      spool,
      concurrency: 1,
      retry: {
        attempts: o.retryAttempts,
        backoff: o.retryBackoff,
        baseDelayMs: o.retryBaseMs,
        maxDelayMs: o.retryMaxMs,
      },
      breaker: {
        failureThreshold: o.breakerThreshold,
        resetMs: o.breakerResetMs,
        maxResetMs: o.breakerMaxResetMs,
      },
      deadLetterPath: join(ctx.dataDir, "deadletter", `${sinkSlug(name)}.jsonl`),
      describeBody: (unit) => describeUnit(unit, o.format),
      split: (unit) => splitUnit(unit),
      logger: ctx.logger,
      send: (unit, signal) => this.#send(unit, signal),
    });
    this.#delivery.start();
  }

  #newProducer(): KafkaProducer {
    const o = this.#o;
    return new this.#Producer({
      clientId: o.clientId,
      bootstrapBrokers: this.target.brokers,
      acks: o.acks,
      idempotent: o.idempotent,
      // A new idempotent producer asks InitProducerId with id −1 / epoch −1 (librdkafka's mock cluster
      // refuses the client's default 0 / 0 with UNKNOWN_PRODUCER_ID).
      ...(o.idempotent ? { producerId: -1n, producerEpoch: -1 } : {}),
      ...(o.compression !== "none" ? { compression: o.compression } : {}),
      timeout: o.timeoutMs,
      requestTimeout: o.timeoutMs,
      connectTimeout: o.connectTimeoutMs,
      // The client retries a request twice (counted here, by error code) before reporting to our delivery
      // loop, which retries with backoff and a breaker. (Left unset, an idempotent client retries forever
      // and no error is ever seen.)
      retries: 2,
      retryDelay: (_client: unknown, _op: string, attempt: number, _retries: number, error: unknown) => {
        this.#clientRetries++;
        for (const code of new Set(kafkaErrorCodes(error))) this.#countError(code);
        return 100 * attempt;
      },
      autocreateTopics: false,
      strict: false,
      ...this.#conn,
    } as ConstructorParameters<ProducerClass>[0]) as KafkaProducer;
  }

  async #send(unit: DeliveryUnit, signal: AbortSignal): Promise<SendOutcome> {
    let frames: Frame[];
    try {
      frames = decodeFrames(unit.data);
    } catch (err) {
      return { kind: "reject", status: 0, body: `corrupt spooled frames: ${(err as Error).message}` };
    }
    if (frames.length === 0) return { kind: "ok", status: 0 };
    let bytes = 0;
    for (const f of frames) {
      bytes += f.value.length;
      if (f.key.length + f.value.length > this.#o.messageMaxBytes) {
        this.#countError("MESSAGE_TOO_LARGE");
        return frames.length > 1
          ? { kind: "too_large", status: 0, body: "a message is larger than message_max_bytes" }
          : {
              kind: "reject",
              status: 0,
              body: `message of ${f.value.length} bytes is larger than message_max_bytes`,
            };
      }
    }
    const topic = this.target.topic;
    const messages = frames.map((f) => ({
      topic,
      key: Buffer.from(f.key.buffer, f.key.byteOffset, f.key.byteLength),
      value: Buffer.from(f.value.buffer, f.value.byteOffset, f.value.byteLength),
    }));
    const producer = this.#producer;
    const started = performance.now();
    let onAbort: (() => void) | null = null;
    const aborted = new Promise<"aborted">((resolve) => {
      onAbort = () => resolve("aborted");
      signal.addEventListener("abort", onAbort, { once: true });
    });
    try {
      const r = await Promise.race([producer.send({ messages }), aborted]);
      if (r === "aborted")
        return { kind: "retry", status: 0, reason: "aborted", breaker: false, unknown: true };
      const rtt = performance.now() - started;
      this.#rttLastMs = rtt;
      this.#rttSumMs += rtt;
      this.#rttCount++;
      this.#messages += frames.length;
      this.#bytes += bytes;
      return { kind: "ok", status: 0 };
    } catch (err) {
      const codes = kafkaErrorCodes(err);
      const code =
        codes.find((c) => TOO_LARGE.has(c) || FATAL.has(c) || AUTH.has(c) || RESET.has(c)) ?? codes[0]!;
      this.#countError(code);
      const reason = `${code}: ${(err as Error).message}`.slice(0, 300);
      if (TOO_LARGE.has(code)) return { kind: "too_large", status: 0, body: reason };
      if (FATAL.has(code)) {
        this.#problem = `${code} for topic ${topic} (batches go to the dead-letter file)`;
        this.#problemMs = Date.now();
        this.#ctx.logger.error(
          { topic, code, records: unit.records },
          "kafka: refused for good, dead-lettering",
        );
        return { kind: "reject", status: 0, body: reason };
      }
      if (RESET.has(code)) this.#resetProducer(producer);
      return { kind: "retry", status: 0, reason, breaker: true, unknown: true, auth: AUTH.has(code) };
    } finally {
      if (onAbort) signal.removeEventListener("abort", onAbort);
    }
  }

  #resetProducer(old: KafkaProducer): void {
    if (this.#producer !== old) return;
    this.#producer = this.#newProducer();
    void old.close(true).catch(() => {});
  }

  #countError(code: string): void {
    this.#errors.set(code, (this.#errors.get(code) ?? 0) + 1);
  }

  async write(batch: EncodedBatch): Promise<void> {
    if (this.#closed) throw new Error(`${this.name}: closed`);
    await spoolBatch(this.#spool, batch);
  }

  async flush(): Promise<void> {
    await this.#delivery.drain(this.#o.flushTimeoutMs);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#o.flushTimeoutMs > 0) await this.#delivery.drain(this.#o.flushTimeoutMs);
    await this.#delivery.stop(Math.min(this.#o.timeoutMs, 2000));
    await this.#spool.close();
    await this.#producer.close(true).catch(() => {});
  }

  remoteStats(): RemoteSinkStats {
    const s = this.#spool.stats();
    if (this.#problem && Date.now() - this.#problemMs > 60_000) this.#problem = "";
    // unreachable (retrying) or behind (the oldest spooled flow waits longer than behind_ms)
    const spooling = this.#delivery.spooling || spoolOldestAgeMs(s) > this.#o.behindMs;
    return { ...remoteSinkStats(this.#delivery.stats(), s, spooling), problem: this.#problem };
  }

  samples(): SinkSample[] {
    const labels = { sink: this.name, topic: this.target.topic };
    const st = this.remoteStats();
    const out: SinkSample[] = [
      {
        name: "kafka_messages_total",
        type: "counter",
        help: "Messages (flows) the Kafka brokers acknowledged, per topic.",
        labels,
        value: this.#messages,
      },
      {
        name: "kafka_bytes_total",
        type: "counter",
        help: "Message value bytes the Kafka brokers acknowledged, per topic.",
        labels,
        value: this.#bytes,
      },
      {
        name: "kafka_retries_total",
        type: "counter",
        help: "Requests repeated after a retriable error (by the client or the delivery loop), per topic.",
        labels,
        value: st.retried + this.#clientRetries,
      },
      {
        name: "kafka_spool_records",
        type: "gauge",
        help: "Flows in the Kafka output's disk spool not yet acknowledged, per topic.",
        labels,
        value: st.spoolRecords,
      },
      {
        name: "kafka_spool_bytes",
        type: "gauge",
        help: "Bytes in the Kafka output's disk spool not yet acknowledged, per topic.",
        labels,
        value: st.spoolBytes,
      },
      {
        name: "kafka_produce_rtt_seconds",
        type: "gauge",
        help: "Round-trip time of the last acknowledged produce request (all partitions), per topic.",
        labels,
        value: this.#rttLastMs / 1000,
      },
      {
        name: "kafka_produce_rtt_seconds_sum",
        type: "counter",
        help: "Sum of produce round-trip times, per topic (divide by _count for the mean).",
        labels,
        value: this.#rttSumMs / 1000,
      },
      {
        name: "kafka_produce_rtt_seconds_count",
        type: "counter",
        help: "Acknowledged produce requests, per topic.",
        labels,
        value: this.#rttCount,
      },
    ];
    for (const [code, n] of this.#errors) {
      out.push({
        name: "kafka_errors_total",
        type: "counter",
        help: "Produce errors by Kafka error code, per topic.",
        labels: { ...labels, code },
        value: n,
      });
    }
    return out;
  }
}

function describeUnit(unit: DeliveryUnit, format: KafkaOptions["format"]): Record<string, unknown> {
  try {
    const frames = decodeFrames(unit.data);
    return {
      messages: frames.map((f) => ({
        key: Buffer.from(f.key).toString("utf8"),
        ...(format === "json"
          ? { value: Buffer.from(f.value).toString("utf8") }
          : { value_base64: Buffer.from(f.value).toString("base64") }),
      })),
    };
  } catch {
    return { body_base64: Buffer.from(unit.data).toString("base64") };
  }
}

function splitUnit(unit: DeliveryUnit): [DeliveryUnit, DeliveryUnit] | null {
  const frames = decodeFrames(unit.data);
  if (frames.length < 2) return null;
  const half = frames.length >> 1;
  const mk = (i: number, fs: Frame[]): DeliveryUnit => ({
    id: `${unit.id}-${i}`,
    key: unit.key,
    meta: unit.meta,
    records: fs.length,
    createdMs: unit.createdMs,
    data: joinFrames(fs),
  });
  return [mk(1, frames.slice(0, half)), mk(2, frames.slice(half))];
}

export async function createKafkaSink(uri: string, ctx: SinkContext): Promise<Sink> {
  const target = parseKafkaUri(uri);
  const o = parseKafkaOptions(uri, ctx.options);
  const conn = connection(target, o);
  if (!target.tls && o.saslMechanism === "plain") {
    ctx.logger.warn(
      "kafka: SASL PLAIN over a plaintext connection sends the password in clear (use kafkas://)",
    );
  }
  // Loaded here, not at the top: the client costs about a CPU-second to import, which every receive
  // worker (they only encode) and every run without a Kafka output would otherwise pay.
  const { Producer } = await import("@platformatic/kafka");
  const spool = await Spool.open({
    dir: join(ctx.dataDir, "spool", sinkSlug(uri)),
    maxBytes: o.spoolMaxBytes,
    segmentBytes: o.spoolSegmentBytes,
    fsync: o.fsync as FsyncPolicy,
    fsyncIntervalMs: o.fsyncIntervalMs,
    logger: ctx.logger,
  });
  ctx.logger.info(
    {
      brokers: target.brokers,
      topic: target.topic,
      format: o.format,
      acks: o.acks,
      idempotent: o.idempotent,
      compression: o.compression,
    },
    "kafka sink ready",
  );
  return new KafkaSink(uri, target, o, conn, spool, ctx, Producer);
}

export const kafkaSink: SinkDefinition = {
  schemes: ["kafka", "kafkas"],
  optionKeys: Object.keys(KAFKA_OPTIONS.shape),
  spool: true,
  createEncoder: createKafkaEncoder,
  async create(uri: string, ctx: SinkContext): Promise<Sink> {
    return createKafkaSink(uri, ctx);
  },
};
