/**
 * HTTP backend sinks (DESIGN §3):
 * - `clarion+http://HOST:PORT[/prefix]` (and `clarion+https`): POST `{prefix}/api/netflow/netflow`, one
 *   request per exporter (`switch_id`), src/encode/clarion.ts;
 * - `flows-v1+http://HOST:PORT/v1/ingest` (and `flows-v1+https`): the telemetry API, src/encode/flows-v1.ts,
 *   `Authorization: Bearer <key>`, `batchSize` (200) records per request.
 *
 * Encoder half (receive workers): builds the request bodies, at most `maxRecords` (10,000) records and
 * `maxBytes` (5 MiB, uncompressed) each, gzipped when larger than `gzipThreshold` (flows-v1: 51,200 bytes;
 * clarion: off, the Clarion backend does not decode gzip requests). Bodies are line-framed so a 413 can be
 * split at the record level (src/encode/json-batch.ts).
 * Writer half (main thread): `write()` appends every body to the sink's disk spool under
 * `<dataDir>/spool/<sink>` with a fresh idempotency key and resolves once it is written (write-ahead); a
 * delivery loop (src/pipeline/delivery.ts) sends the spool in order over one keep-alive pool, with retries,
 * backoff, Retry-After, 413 splitting, a dead-letter file `<dataDir>/deadletter/<sink>.jsonl` and a
 * circuit breaker. Every request carries `Idempotency-Key`.
 *
 * The bearer key comes from `token`, the file `tokenFile` or the variable `tokenEnv`; it is never logged.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { ConfigError } from "../core/errors.ts";
import type { FlowRecord } from "../core/flow.ts";
import { clarionBody, clarionRecord, clarionSwitchId } from "../encode/clarion.ts";
import { flowsV1Body, flowsV1Record } from "../encode/flows-v1.ts";
import { isGzip, jsonString, plainBody, splitBody } from "../encode/json-batch.ts";
import type { BreakerOptions, Delivery, DeliveryUnit, RetryOptions } from "../pipeline/delivery.ts";
import { type HttpDelivery, startHttpDelivery } from "../pipeline/http-transport.ts";
import { remoteSinkStats, spoolBatch } from "../pipeline/remote-sink.ts";
import type { FsyncPolicy, Spool } from "../pipeline/spool.ts";
import type {
  EncodedBatch,
  EncodedPart,
  RemoteSinkStats,
  Sink,
  SinkContext,
  SinkDefinition,
  SinkEncoder,
  SinkGlobals,
} from "./types.ts";

export const HTTP_FORMATS = ["clarion", "flows-v1"] as const;
export type HttpFormat = (typeof HTTP_FORMATS)[number];

/** The destination a sink URI names. */
export interface HttpTarget {
  format: HttpFormat;
  /** The URL requests go to. */
  url: URL;
}

/** Encoder options (all optional; defaults per format). */
export interface HttpEncoderOptions {
  /** flows-v1 `collector_id`. Default "gw-local" (the nf2ingest mapper's default). */
  collectorId: string;
  /** Records per request (flows-v1: 200; clarion: 10,000). */
  batchSize: number;
  /** Hard cap of records per request. Default 10,000. */
  maxRecords: number;
  /** Hard cap of (uncompressed) bytes per request. Default 5 MiB. */
  maxBytes: number;
  /** Gzip bodies larger than this; -1 disables. flows-v1: 51,200; clarion: -1. */
  gzipThreshold: number;
  /** zlib level 1..9. Default 1: 7x smaller JSON at ~3x the speed of level 6 (bench/deliver.bench.ts). */
  gzipLevel: number;
  /** Clarion: switch_id is the exporter address (SWITCH_ID_FROM_IP). Default true. */
  switchIdFromIp: boolean;
  /**
   * Longest a record waits in the receive worker's batcher for this output, ms; 0: --batch-interval
   * alone. flows-v1: 1000 (the nf2ingest mapper flushed every second); clarion: 0.
   */
  flushIntervalMs: number;
}

/** Writer options. */
export interface HttpSinkOptions extends HttpEncoderOptions {
  token: string;
  timeoutMs: number;
  concurrency: number;
  retry: Required<RetryOptions>;
  breaker: Required<BreakerOptions>;
  spoolMaxBytes: number;
  spoolSegmentBytes: number;
  fsync: FsyncPolicy;
  fsyncIntervalMs: number;
  /** How long flush()/close() wait for the backend before leaving data in the spool. */
  flushTimeoutMs: number;
}

/** The HTTP sinks' delivery state (the generic remote-sink stats). */
export type HttpSinkStats = RemoteSinkStats;

/** An encoded batch with what the encoder left out (flows-v1 records without addresses). */
export interface HttpEncodedBatch extends EncodedBatch {
  /** Records of the input that are in no part (crosses the worker boundary with the batch). */
  skipped: number;
}

export interface HttpSink extends Sink {
  stats(): HttpSinkStats;
  readonly target: HttpTarget;
}

const SCHEMES: Record<string, HttpFormat> = {
  "clarion+http": "clarion",
  "clarion+https": "clarion",
  "flows-v1+http": "flows-v1",
  "flows-v1+https": "flows-v1",
};

/** Parse `clarion+http(s)://…` / `flows-v1+http(s)://…`; throws ConfigError naming the output. */
export function parseHttpSinkUri(uri: string): HttpTarget {
  const m = /^([a-z0-9+-]+):\/\//i.exec(uri);
  const scheme = m?.[1]?.toLowerCase() ?? "";
  const format = SCHEMES[scheme];
  if (format === undefined) throw new ConfigError("output", `not an HTTP sink URI: ${uri}`);
  let url: URL;
  try {
    url = new URL(`${scheme.endsWith("https") ? "https" : "http"}${uri.slice(scheme.length)}`);
  } catch {
    throw new ConfigError("output", `invalid URL: ${uri}`);
  }
  if (url.username || url.password) {
    throw new ConfigError(
      "output",
      "credentials in the URL are not allowed: use the tokenEnv or tokenFile option",
    );
  }
  if (!url.hostname) throw new ConfigError("output", `missing host: ${uri}`);
  const path = url.pathname.replace(/\/+$/, "");
  if (format === "clarion") url.pathname = `${path}/api/netflow/netflow`;
  else if (path === "") url.pathname = "/v1/ingest";
  return { format, url };
}

function num(
  options: Readonly<Record<string, unknown>>,
  key: string,
  def: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const v = options[key];
  if (v === undefined || v === null || v === "") return def;
  const n = typeof v === "number" ? v : typeof v === "string" ? Number(v) : Number.NaN;
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new ConfigError(key, `expected a number between ${min} and ${max}, got ${JSON.stringify(v)}`);
  }
  return n;
}

function bool(options: Readonly<Record<string, unknown>>, key: string, def: boolean): boolean {
  const v = options[key];
  if (v === undefined || v === null || v === "") return def;
  if (typeof v === "boolean") return v;
  if (typeof v === "string" && /^(1|true|yes|on)$/i.test(v)) return true;
  if (typeof v === "string" && /^(0|false|no|off)$/i.test(v)) return false;
  throw new ConfigError(key, `expected a boolean, got ${JSON.stringify(v)}`);
}

function str(options: Readonly<Record<string, unknown>>, key: string, def: string): string {
  const v = options[key];
  if (v === undefined || v === null) return def;
  if (typeof v !== "string") throw new ConfigError(key, `expected a string, got ${typeof v}`);
  return v;
}

/** Encoder options with defaults for a format. */
export function resolveEncoderOptions(
  format: HttpFormat,
  options: Readonly<Record<string, unknown>>,
): HttpEncoderOptions {
  const flows = format === "flows-v1";
  const maxRecords = num(options, "maxRecords", 10_000, 1);
  return {
    collectorId: str(options, "collectorId", "gw-local"),
    batchSize: Math.min(maxRecords, num(options, "batchSize", flows ? 200 : 10_000, 1)),
    maxRecords,
    maxBytes: num(options, "maxBytes", 5 * 1024 * 1024, 1024),
    gzipThreshold: num(options, "gzipThreshold", flows ? 51_200 : -1, -1),
    gzipLevel: num(options, "gzipLevel", 1, 1, 9),
    switchIdFromIp: bool(options, "switchIdFromIp", true),
    flushIntervalMs: num(options, "flushIntervalMs", flows ? 1000 : 0, 0, 3_600_000),
  };
}

function resolveToken(options: Readonly<Record<string, unknown>>): string {
  const literal = str(options, "token", "");
  if (literal) return literal.trim();
  const file = str(options, "tokenFile", "");
  if (file) {
    try {
      return readFileSync(file, "utf8").trim();
    } catch (err) {
      throw new ConfigError(
        "tokenFile",
        `cannot read the token file: ${(err as NodeJS.ErrnoException).code ?? "error"}`,
      );
    }
  }
  const env = str(options, "tokenEnv", "");
  if (env) {
    const v = process.env[env];
    if (v === undefined || v === "") throw new ConfigError("tokenEnv", `variable ${env} is not set`);
    return v.trim();
  }
  return "";
}

const FSYNC: readonly FsyncPolicy[] = ["always", "interval", "never"];

/** Writer options with defaults. */
export function resolveSinkOptions(
  format: HttpFormat,
  options: Readonly<Record<string, unknown>>,
): HttpSinkOptions {
  const fsync = str(options, "fsync", "interval") as FsyncPolicy;
  if (!FSYNC.includes(fsync))
    throw new ConfigError("fsync", `expected one of ${FSYNC.join(", ")}, got ${fsync}`);
  return {
    ...resolveEncoderOptions(format, options),
    token: resolveToken(options),
    timeoutMs: num(options, "timeoutMs", 30_000, 1),
    concurrency: num(options, "concurrency", 4, 1, 256),
    retry: {
      attempts: num(options, "retryAttempts", 3, 1, 1000),
      backoff: num(options, "retryBackoff", 1.5, 1, 100),
      baseDelayMs: num(options, "retryBaseMs", 500, 0),
      maxDelayMs: num(options, "retryMaxMs", 30_000, 0),
      jitter: num(options, "retryJitter", 0.25, 0, 1),
      maxRetryAfterMs: num(options, "maxRetryAfterMs", 120_000, 0),
    },
    breaker: {
      failureThreshold: num(options, "breakerThreshold", 5, 1),
      resetMs: num(options, "breakerResetMs", 5000, 1),
      maxResetMs: num(options, "breakerMaxResetMs", 60_000, 1),
    },
    spoolMaxBytes: num(options, "spoolMaxBytes", 1024 ** 3, 256 * 1024),
    spoolSegmentBytes: num(options, "spoolSegmentBytes", 16 * 1024 ** 2, 64 * 1024),
    fsync,
    fsyncIntervalMs: num(options, "fsyncIntervalMs", 1000, 1),
    flushTimeoutMs: num(options, "flushTimeoutMs", 10_000, 0),
  };
}

function finishPart(
  header: (body: string[]) => string,
  key: string,
  records: string[],
  o: HttpEncoderOptions,
): EncodedPart {
  const body = Buffer.from(header(records), "utf8");
  const data =
    o.gzipThreshold >= 0 && body.length > o.gzipThreshold ? gzipSync(body, { level: o.gzipLevel }) : body;
  return { key, records: records.length, data };
}

/** Cut one-line records into request-sized groups. */
function chunkRecords(
  lines: readonly string[],
  o: HttpEncoderOptions,
  overhead: number,
  emit: (records: string[]) => void,
): void {
  let cur: string[] = [];
  let bytes = overhead;
  for (const line of lines) {
    const size = line.length + 2; // ",\n"; UTF-16 length ≈ bytes for the ASCII JSON we build
    if (cur.length > 0 && (cur.length >= o.batchSize || bytes + size > o.maxBytes)) {
      emit(cur);
      cur = [];
      bytes = overhead;
    }
    cur.push(line);
    bytes += size;
  }
  if (cur.length > 0) emit(cur);
}

/** The encoder half for a sink URI. */
export function createHttpEncoder(uri: string, options: Readonly<Record<string, unknown>>): SinkEncoder {
  const target = parseHttpSinkUri(uri);
  const o = resolveEncoderOptions(target.format, options);
  if (target.format === "flows-v1") {
    const overhead = 64 + o.collectorId.length;
    return {
      flushIntervalMs: o.flushIntervalMs > 0 ? o.flushIntervalMs : undefined,
      encode(records: readonly FlowRecord[]): HttpEncodedBatch {
        const lines: string[] = [];
        let oldest = 0;
        let skipped = 0;
        for (const r of records) {
          if (oldest === 0 || (r.time_received_ms > 0 && r.time_received_ms < oldest))
            oldest = r.time_received_ms;
          // A record without both addresses (e.g. a non-IP or options-like flow) is left out: the telemetry
          // API requires src_ip and dst_ip and rejects the whole request for one invalid address, as the
          // nf2ingest mapper knew. Left out, but counted: the sink reports them (stats().skippedNoAddress).
          const line = flowsV1Record(r);
          if (line !== null) lines.push(line);
          else skipped++;
        }
        const parts: EncodedPart[] = [];
        chunkRecords(lines, o, overhead, (recs) =>
          parts.push(finishPart((b) => flowsV1Body(o.collectorId, b), "", recs, o)),
        );
        return { sink: uri, records: lines.length, parts, oldestMs: oldest, skipped };
      },
    };
  }
  return {
    flushIntervalMs: o.flushIntervalMs > 0 ? o.flushIntervalMs : undefined,
    encode(records: readonly FlowRecord[]): EncodedBatch {
      const groups = new Map<string, string[]>();
      const idJson = new Map<string, string>();
      let oldest = 0;
      for (const r of records) {
        if (oldest === 0 || (r.time_received_ms > 0 && r.time_received_ms < oldest))
          oldest = r.time_received_ms;
        const sw = clarionSwitchId(r, o.switchIdFromIp);
        let g = groups.get(sw);
        let j = idJson.get(sw);
        if (g === undefined || j === undefined) {
          g = [];
          j = jsonString(sw);
          groups.set(sw, g);
          idJson.set(sw, j);
        }
        g.push(clarionRecord(r, j));
      }
      const parts: EncodedPart[] = [];
      for (const [sw, lines] of groups) {
        chunkRecords(lines, o, 32 + sw.length, (recs) =>
          parts.push(finishPart((b) => clarionBody(sw, b), sw, recs, o)),
        );
      }
      return { sink: uri, records: records.length, parts, oldestMs: oldest };
    },
  };
}

/** A file-system-safe, collision-free name for a sink's spool and dead-letter file. */
export function sinkSlug(uri: string): string {
  const base = uri
    .replace(/^[a-z0-9+-]+:\/\//i, (s) => s.replace(/[+:/]+/g, "_"))
    .replace(/[^A-Za-z0-9._-]+/g, "_")
    .slice(0, 80);
  return `${base}-${createHash("sha256").update(uri).digest("hex").slice(0, 8)}`;
}

function describeBody(unit: DeliveryUnit): Record<string, unknown> {
  try {
    return { body: plainBody(unit.data).toString("utf8") };
  } catch {
    return { body_base64: Buffer.from(unit.data).toString("base64") };
  }
}

/** Halve a line-framed body for a 413 (gzipped again when the halves are still large). */
function splitUnit(unit: DeliveryUnit, o: HttpEncoderOptions): [DeliveryUnit, DeliveryUnit] | null {
  const halves = splitBody(unit.data);
  if (halves === null) return null;
  const [a, b, na, nb] = halves;
  const pack = (body: Buffer): Uint8Array =>
    o.gzipThreshold >= 0 && body.length > o.gzipThreshold ? gzipSync(body, { level: o.gzipLevel }) : body;
  return [
    {
      id: `${unit.id}-1`,
      key: unit.key,
      meta: unit.meta,
      records: na,
      createdMs: unit.createdMs,
      data: pack(a),
    },
    {
      id: `${unit.id}-2`,
      key: unit.key,
      meta: unit.meta,
      records: nb,
      createdMs: unit.createdMs,
      data: pack(b),
    },
  ];
}

class HttpSinkImpl implements HttpSink {
  readonly name: string;
  readonly target: HttpTarget;
  readonly #o: HttpSinkOptions;
  readonly #spool: Spool;
  readonly #delivery: Delivery;
  readonly #remote: HttpDelivery;
  readonly #logger: SinkContext["logger"];
  #closed = false;
  #skipped = 0;
  #skippedLoggedMs = 0;

  constructor(name: string, target: HttpTarget, o: HttpSinkOptions, remote: HttpDelivery, ctx: SinkContext) {
    this.name = name;
    this.target = target;
    this.#o = o;
    this.#remote = remote;
    this.#spool = remote.spool;
    this.#delivery = remote.delivery;
    this.#logger = ctx.logger;
  }

  async write(batch: EncodedBatch): Promise<void> {
    if (this.#closed) throw new Error(`${this.name}: closed`);
    const skipped = (batch as Partial<HttpEncodedBatch>).skipped ?? 0;
    if (skipped > 0) this.#countSkipped(skipped);
    await spoolBatch(this.#spool, batch);
  }

  #countSkipped(n: number): void {
    this.#skipped += n;
    const now = Date.now();
    if (now - this.#skippedLoggedMs >= 60_000) {
      this.#skippedLoggedMs = now;
      this.#logger.warn(
        { sink: this.name, skipped: n, total: this.#skipped },
        "flows-v1: records without a source or destination address are not sent (the API requires both)",
      );
    }
  }

  async flush(): Promise<void> {
    await this.#delivery.drain(this.#o.flushTimeoutMs);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#remote.close(this.#o.flushTimeoutMs, Math.min(this.#o.timeoutMs, 2000));
  }

  remoteStats(): RemoteSinkStats {
    return this.stats();
  }

  stats(): HttpSinkStats {
    return remoteSinkStats(
      this.#delivery.stats(),
      this.#spool.stats(),
      this.#delivery.spooling,
      this.#skipped,
    );
  }
}

/** The writing half: opens the spool (delivering what a previous run left) and starts delivery. */
export async function createHttpSink(uri: string, ctx: SinkContext): Promise<HttpSink> {
  const target = parseHttpSinkUri(uri);
  const o = resolveSinkOptions(target.format, ctx.options);
  if (target.format === "flows-v1" && !o.token) {
    ctx.logger.warn(
      { sink: uri },
      "flows-v1 sink without a bearer key (set CLARION_COLLECTOR_INGEST_TOKEN, --ingest-token-file, or the output's tokenEnv/tokenFile)",
    );
  }
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "user-agent": "clarion-collector",
  };
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  const remote = await startHttpDelivery({
    name: uri,
    spool: {
      dir: join(ctx.dataDir, "spool", sinkSlug(uri)),
      maxBytes: o.spoolMaxBytes,
      segmentBytes: o.spoolSegmentBytes,
      fsync: o.fsync,
      fsyncIntervalMs: o.fsyncIntervalMs,
    },
    url: target.url,
    request: (unit) => ({
      url: target.url,
      headers: isGzip(unit.data) ? { ...headers, "content-encoding": "gzip" } : headers,
    }),
    timeoutMs: o.timeoutMs,
    concurrency: o.concurrency,
    retry: o.retry,
    breaker: o.breaker,
    deadLetterPath: join(ctx.dataDir, "deadletter", `${sinkSlug(uri)}.jsonl`),
    describeBody,
    split: (unit) => splitUnit(unit, o),
    logger: ctx.logger,
  });
  ctx.logger.info(
    {
      sink: uri,
      url: target.url.href,
      format: target.format,
      concurrency: o.concurrency,
      spoolMaxBytes: o.spoolMaxBytes,
      fsync: o.fsync,
    },
    "http sink ready",
  );
  return new HttpSinkImpl(uri, target, o, remote, ctx);
}

/** Every option key the HTTP sinks read (encoder, token, delivery, retries, breaker, spool). */
const HTTP_OPTION_KEYS = [
  "collectorId",
  "batchSize",
  "maxRecords",
  "maxBytes",
  "gzipThreshold",
  "gzipLevel",
  "switchIdFromIp",
  "flushIntervalMs",
  "token",
  "tokenFile",
  "tokenEnv",
  "timeoutMs",
  "concurrency",
  "retryAttempts",
  "retryBackoff",
  "retryBaseMs",
  "retryMaxMs",
  "retryJitter",
  "maxRetryAfterMs",
  "breakerThreshold",
  "breakerResetMs",
  "breakerMaxResetMs",
  "spoolMaxBytes",
  "spoolSegmentBytes",
  "fsync",
  "fsyncIntervalMs",
  "flushTimeoutMs",
] as const;

export const clarionHttpSink: SinkDefinition = {
  schemes: ["clarion+http", "clarion+https"],
  optionKeys: HTTP_OPTION_KEYS,
  spool: true,
  createEncoder: createHttpEncoder,
  create: createHttpSink,
};

export const flowsV1HttpSink: SinkDefinition = {
  schemes: ["flows-v1+http", "flows-v1+https"],
  optionKeys: HTTP_OPTION_KEYS,
  spool: true,
  /** --collector-id, and the ingest key unless the output names its own token. */
  globals(g: SinkGlobals, options: Readonly<Record<string, unknown>>): Record<string, unknown> {
    const own = ["token", "tokenFile", "tokenEnv"].some((k) => options[k] !== undefined);
    return { collectorId: g.collectorId, ...(g.ingestToken && !own ? { token: g.ingestToken } : {}) };
  },
  createEncoder: createHttpEncoder,
  create: createHttpSink,
};

/** The Clarion sink URI for a `--backend-url` (`http://backend:8000` → `clarion+http://backend:8000`). */
export function clarionUriFromBackendUrl(backendUrl: string): string {
  const u = new URL(backendUrl);
  if (u.protocol !== "http:" && u.protocol !== "https:")
    throw new ConfigError("backend-url", `expected http(s), got ${u.protocol}`);
  return `clarion+${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, "")}`;
}
