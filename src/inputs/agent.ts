/**
 * The agent collector (Clarion `--mode agent|both`, `--agent-port` 8080): edge agents POST their traffic
 * sketches to `/api/edge/<path>`; the collector relays them to `{backend}/api/edge/<path>`.
 *
 * - Authentication: when a token is configured (CLARION_COLLECTOR_AGENT_TOKEN), `Authorization: Bearer
 *   <token>` is required (401 otherwise), checked before the body is read.
 * - Body: at most `bodyLimit` bytes (413), raw or `Content-Encoding: gzip` (the decoded size is bounded
 *   too); JSON bodies (any `application/json`, `+json`, `text/*` or missing content type) must parse (400
 *   with the reason); other content types (e.g. `application/octet-stream` binary sketches) pass as is.
 * - 202 once the payload is durably in the relay spool (`<dataDir>/spool/agent-relay`); the relay sends
 *   it with the same retry / backoff / breaker / dead-letter machinery as the HTTP sinks
 *   (src/pipeline/delivery.ts), preserving the body byte for byte, its content type and encoding and the
 *   agent's `X-*` headers, with an `Idempotency-Key` per payload.
 * - `/health` and `/metrics` with the Clarion JSON keys (Prometheus text when the client asks for it).
 */
import { createHash, randomUUID, timingSafeEqual } from "node:crypto";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { BreakerOptions, DeliveryStats, DeliveryUnit, RetryOptions } from "../pipeline/delivery.ts";
import { startHttpDelivery } from "../pipeline/http-transport.ts";
import type { FsyncPolicy, SpoolLogger } from "../pipeline/spool.ts";
import { edgePath, relayUrl } from "./edge-path.ts";

export interface AgentCollectorOptions {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  /** Clarion backend base URL, e.g. http://backend:8000. */
  backendUrl: string;
  /** Bearer token agents must present (CLARION_COLLECTOR_AGENT_TOKEN); none when empty/undefined. */
  token?: string;
  /** Largest request body, raw and decoded. Default 10 MiB. */
  bodyLimit?: number;
  dataDir: string;
  retry?: RetryOptions;
  breaker?: BreakerOptions;
  /** Relay request timeout. Default 30 s. */
  timeoutMs?: number;
  /** Relay requests in flight. Default 4. */
  concurrency?: number;
  spoolMaxBytes?: number;
  fsync?: FsyncPolicy;
  /** For /metrics' Clarion keys. */
  batchSize?: number;
  batchIntervalSeconds?: number;
  /** Prometheus text for /metrics when asked (the app's registry); a built-in rendering otherwise. */
  renderPrometheus?: () => string | Promise<string>;
  logger: SpoolLogger;
}

export interface AgentCollectorStats {
  /** Payload items accepted (sketches, or 1 per payload without a `sketches` array). */
  received: number;
  receivedPayloads: number;
  rejected: { unauthorized: number; invalid: number; tooLarge: number; unsupported: number };
  relay: DeliveryStats;
  spoolBytes: number;
  spoolBatches: number;
  oldestAgeMs: number;
  droppedOnFull: number;
  /** Damaged relay-spool regions skipped and their bytes (moved to quarantine). */
  spoolCorruptFrames: number;
  spoolCorruptBytes: number;
  spooling: boolean;
}

export interface AgentCollector {
  readonly port: number;
  readonly url: string;
  stats(): AgentCollectorStats;
  close(): Promise<void>;
}

interface RelayMeta {
  /** content-type */
  ct?: string;
  /** content-encoding */
  ce?: string;
  /** X-* headers */
  h?: Record<string, string>;
}

const JSON_TYPE = /^(application\/([\w.+-]*\+)?json|text\/)/i;

/** Served without the agent token (GET only). */
const OPEN_PATHS = new Set(["/health", "/metrics"]);

function sha256(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

/** The credentials of `Authorization: Bearer <token>`; the scheme is case-insensitive (RFC 7235 §2.1). */
export function bearerToken(header: string | string[] | undefined): string | null {
  if (typeof header !== "string") return null;
  const m = /^bearer[ ]+([^ ].*?)[ ]*$/i.exec(header);
  return m ? (m[1] ?? null) : null;
}

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

function countItems(value: unknown): number {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const sk = (value as { sketches?: unknown }).sketches;
    if (Array.isArray(sk)) return sk.length;
  }
  return 1;
}

/** The agent collector's Prometheus series (clarion_collector_agent_…) as exposition text. */
export function agentPrometheusText(s: AgentCollectorStats): string {
  const lines: string[] = [];
  const metric = (name: string, type: string, help: string, value: number, labels = ""): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name}${labels} ${value}`);
  };
  metric("clarion_collector_agent_received_total", "counter", "Edge payload items accepted.", s.received);
  metric(
    "clarion_collector_agent_relayed_total",
    "counter",
    "Edge payload items relayed to the backend.",
    s.relay.delivered,
  );
  metric(
    "clarion_collector_agent_dead_lettered_total",
    "counter",
    "Payloads rejected by the backend.",
    s.relay.deadLettered,
  );
  metric("clarion_collector_agent_retries_total", "counter", "Relay attempts repeated.", s.relay.retried);
  metric(
    "clarion_collector_agent_spool_bytes",
    "gauge",
    "Relay spool bytes not yet delivered.",
    s.spoolBytes,
  );
  metric(
    "clarion_collector_agent_spool_batches",
    "gauge",
    "Relay payloads not yet delivered.",
    s.spoolBatches,
  );
  metric(
    "clarion_collector_agent_spool_oldest_age_seconds",
    "gauge",
    "Age of the oldest undelivered payload.",
    s.oldestAgeMs / 1000,
  );
  metric(
    "clarion_collector_agent_spool_dropped_total",
    "counter",
    "Payloads dropped because the spool was full.",
    s.droppedOnFull,
  );
  metric(
    "clarion_collector_agent_spool_corrupt_frames_total",
    "counter",
    "Damaged relay-spool regions skipped (bytes moved to quarantine/).",
    s.spoolCorruptFrames,
  );
  metric(
    "clarion_collector_agent_spool_corrupt_bytes_total",
    "counter",
    "Bytes of damaged relay-spool regions skipped.",
    s.spoolCorruptBytes,
  );
  lines.push(
    "# HELP clarion_collector_agent_rejected_total Requests refused.",
    "# TYPE clarion_collector_agent_rejected_total counter",
  );
  for (const [reason, v] of Object.entries(s.rejected))
    lines.push(`clarion_collector_agent_rejected_total{reason="${reason}"} ${v}`);
  return `${lines.join("\n")}\n`;
}

/** Start the agent collector HTTP server and its relay. */
export async function startAgentCollector(opts: AgentCollectorOptions): Promise<AgentCollector> {
  let backend: URL;
  try {
    backend = new URL(opts.backendUrl);
  } catch {
    throw new Error(`backend-url: invalid URL ${JSON.stringify(opts.backendUrl)}`);
  }
  const bodyLimit = opts.bodyLimit ?? 10 * 1024 * 1024;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const concurrency = opts.concurrency ?? 4;
  const log = opts.logger;
  const expected = opts.token ? sha256(opts.token) : null;

  const request = (unit: DeliveryUnit) => {
    let meta: RelayMeta = {};
    try {
      meta = unit.meta ? (JSON.parse(unit.meta) as RelayMeta) : {};
    } catch {
      meta = {};
    }
    const headers: Record<string, string> = { ...meta.h, "user-agent": "clarion-collector" };
    if (meta.ct) headers["content-type"] = meta.ct;
    if (meta.ce) headers["content-encoding"] = meta.ce;
    // Entries spooled by an older version may carry a path (or a query) that is no longer accepted:
    // those go to the dead-letter file instead of the backend.
    let url: URL;
    try {
      url = relayUrl(backend, unit.key);
    } catch (err) {
      return { reject: `not relayed: ${(err as Error).message}: ${JSON.stringify(unit.key.slice(0, 200))}` };
    }
    return { url, headers };
  };
  const relay = await startHttpDelivery({
    name: "agent-relay",
    spool: {
      dir: join(opts.dataDir, "spool", "agent-relay"),
      maxBytes: opts.spoolMaxBytes,
      fsync: opts.fsync,
    },
    url: backend,
    request,
    timeoutMs,
    concurrency,
    retry: opts.retry,
    breaker: opts.breaker,
    deadLetterPath: join(opts.dataDir, "deadletter", "agent-relay.jsonl"),
    logger: log,
    describeBody: (u) => ({ body_base64: Buffer.from(u.data).toString("base64") }),
  });
  const { spool, delivery } = relay;

  const counters = { received: 0, receivedPayloads: 0 };
  const rejected = { unauthorized: 0, invalid: 0, tooLarge: 0, unsupported: 0 };

  const stats = (): AgentCollectorStats => {
    const s = spool.stats();
    return {
      ...counters,
      rejected: { ...rejected },
      relay: delivery.stats(),
      spoolBytes: s.bytes,
      spoolBatches: s.batches,
      oldestAgeMs: s.oldestCreatedMs > 0 ? Math.max(0, Date.now() - s.oldestCreatedMs) : 0,
      droppedOnFull: s.droppedBatches,
      spoolCorruptFrames: s.corruptFrames,
      spoolCorruptBytes: s.corruptBytes,
      spooling: delivery.spooling,
    };
  };

  const app: FastifyInstance = Fastify({ logger: false, bodyLimit, forceCloseConnections: true });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer", bodyLimit }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    const status = err instanceof HttpError ? err.status : (err.statusCode ?? 500);
    if (status === 413) rejected.tooLarge++;
    else if (status === 415) rejected.unsupported++;
    else if (status === 400) rejected.invalid++;
    if (status >= 500) log.error({ err: err.message }, "agent collector: request failed");
    void reply
      .code(status)
      .send({ detail: status === 413 ? `Payload too large (limit ${bodyLimit} bytes)` : err.message });
  });

  app.addHook("onRequest", async (req, reply) => {
    if (expected === null) return;
    // Everything but the read-only ops endpoints needs the token (not only what the router maps to
    // /api/edge/: a request the router would treat differently must not skip the check).
    const target = req.raw.url ?? "";
    if (req.method === "GET" && OPEN_PATHS.has(target.split("?")[0] ?? "")) return;
    const token = bearerToken(req.headers.authorization);
    if (token === null || !timingSafeEqual(sha256(token), expected)) {
      rejected.unauthorized++;
      await reply.code(401).header("www-authenticate", "Bearer").send({ detail: "Unauthorized" });
    }
  });

  const receive = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    // The raw request target, not the router's decoded parameter (src/inputs/edge-path.ts).
    const checked = edgePath(req.raw.url ?? "");
    if ("error" in checked) throw new HttpError(400, `Invalid edge path: ${checked.error}`);
    const path = checked.path;
    const raw = (req.body as Buffer | undefined) ?? Buffer.alloc(0);
    const ce = String(req.headers["content-encoding"] ?? "")
      .toLowerCase()
      .trim();
    const ct = String(req.headers["content-type"] ?? "");
    let decoded: Buffer = raw;
    if (ce === "gzip" || ce === "x-gzip") {
      try {
        decoded = gunzipSync(raw, { maxOutputLength: bodyLimit });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE")
          throw new HttpError(413, "too large");
        throw new HttpError(400, `Invalid gzip body: ${(err as Error).message}`);
      }
    } else if (ce !== "" && ce !== "identity") {
      throw new HttpError(415, `Unsupported Content-Encoding: ${ce}`);
    }
    let items = 1;
    if (ct === "" || JSON_TYPE.test(ct)) {
      let value: unknown;
      try {
        value = JSON.parse(decoded.toString("utf8"));
      } catch (err) {
        throw new HttpError(400, `Invalid JSON: ${(err as Error).message}`);
      }
      items = countItems(value);
    }
    const h: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (k.startsWith("x-") && typeof v === "string") h[k] = v;
    }
    const meta: RelayMeta = {};
    if (ct) meta.ct = ct;
    if (ce && ce !== "identity") meta.ce = ce;
    if (Object.keys(h).length > 0) meta.h = h;
    const id = randomUUID();
    await spool.append({
      id,
      key: path,
      meta: JSON.stringify(meta),
      records: items,
      createdMs: Date.now(),
      data: raw,
    });
    counters.received += items;
    counters.receivedPayloads++;
    await reply.code(202).send({ status: "accepted", queued: true, items, idempotency_key: id });
  };
  app.post("/api/edge/*", receive);

  app.get("/health", async () => ({
    status: delivery.spooling || spool.stats().corruptFrames > 0 ? "degraded" : "healthy",
    service: "agent-collector",
    backend_url: opts.backendUrl,
    spooling: delivery.spooling,
    spool_batches: spool.stats().batches,
    spool_corrupt_frames: spool.stats().corruptFrames,
  }));

  app.get("/metrics", async (req, reply) => {
    const s = stats();
    const accept = String(req.headers.accept ?? "");
    if (/text\/plain|openmetrics/i.test(accept) && !/application\/json/i.test(accept)) {
      const text = opts.renderPrometheus ? await opts.renderPrometheus() : agentPrometheusText(s);
      return reply.type("text/plain; version=0.0.4; charset=utf-8").send(text);
    }
    return {
      total_received: s.received,
      total_sent: s.relay.delivered,
      total_forwarded: s.relay.delivered,
      pending: s.spoolBatches,
      errors: s.rejected.invalid + s.rejected.tooLarge + s.rejected.unsupported + s.relay.deadLettered,
      batch_size: opts.batchSize ?? 1000,
      batch_interval_seconds: opts.batchIntervalSeconds ?? 5,
      spool_bytes: s.spoolBytes,
      spool_batches: s.spoolBatches,
      spool_oldest_age_seconds: s.oldestAgeMs / 1000,
      spool_dropped: s.droppedOnFull,
      spool_corrupt_frames: s.spoolCorruptFrames,
      spool_corrupt_bytes: s.spoolCorruptBytes,
      dead_lettered: s.relay.deadLettered,
      retried: s.relay.retried,
      breaker_state: s.relay.breakerState,
      unauthorized: s.rejected.unauthorized,
    };
  });

  try {
    await app.listen({ host: opts.host, port: opts.port });
  } catch (err) {
    await relay.close(0, 0);
    throw err;
  }
  const port = (app.server.address() as AddressInfo).port;
  log.info(
    { host: opts.host, port, backend: opts.backendUrl, auth: expected !== null },
    "agent collector listening",
  );
  let closed = false;
  return {
    port,
    url: `http://${opts.host.includes(":") ? `[${opts.host}]` : opts.host}:${port}`,
    stats,
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await app.close();
      await relay.close(Math.min(timeoutMs, 5000), 1000);
    },
  };
}
