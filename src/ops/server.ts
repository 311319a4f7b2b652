/**
 * The ops HTTP server (fastify): /health, /metrics (Clarion JSON for plain clients, Prometheus text when
 * the client asks for it, as Prometheus does with its Accept header), /templates, /exporters, and the live
 * tail /tail?filter=… (NDJSON stream, src/ops/tail.ts; 400 with the position for a bad filter, 429 when
 * too many readers; streams end when the server closes), and /ui (src/ops/ui.ts).
 *
 * /templates and /exporters answer one page: `?limit=` (default 1000, at most 10000), `?offset=` and
 * `?exporter=<address>`; `count` is the number of entries that match, so a client pages with offset.
 */
import type { ServerResponse } from "node:http";
import { fastify } from "fastify";
import { compileFilter, FilterError } from "../query/filter.ts";
import type { TailWritable } from "./tail.ts";
import { registerUi, type UiOptions } from "./ui.ts";

export interface OpsView {
  health(): { httpStatus: number; body: object };
  clarionMetrics(): object;
  prometheus(): Promise<{ contentType: string; body: string }>;
  templates(q: ListQuery): Promise<object>;
  exporters(q: ListQuery): object;
  /** Live tail: adds a reader (null when too many read already); absent where there is no UDP collector. */
  tail?(out: TailWritable, filter: string | undefined): { detach(): void } | null;
  /** The /ui page and its query endpoints (src/ops/ui.ts); absent where there is no UDP collector. */
  ui?: UiOptions;
}

/** One page of /templates or /exporters. */
export interface ListQuery {
  limit: number;
  offset: number;
  exporter?: string;
}

export const LIST_DEFAULT_LIMIT = 1000;
export const LIST_MAX_LIMIT = 10_000;

/** The page a query string asks for, or the reason it is not one. */
export function parseListQuery(q: {
  limit?: string;
  offset?: string;
  exporter?: string;
}): ListQuery | string {
  const int = (v: string | undefined, dflt: number): number =>
    v === undefined || v === "" ? dflt : Number(v);
  const limit = int(q.limit, LIST_DEFAULT_LIMIT);
  const offset = int(q.offset, 0);
  if (!Number.isSafeInteger(limit) || limit < 0 || limit > LIST_MAX_LIMIT)
    return `limit must be an integer from 0 to ${LIST_MAX_LIMIT}`;
  if (!Number.isSafeInteger(offset) || offset < 0) return "offset must be an integer ≥ 0";
  return q.exporter ? { limit, offset, exporter: q.exporter } : { limit, offset };
}

export interface OpsServer {
  readonly port: number;
  close(): Promise<void>;
}

interface MediaRange {
  type: string;
  q: number;
}

function parseAccept(accept: string): MediaRange[] {
  return accept.split(",").flatMap((part) => {
    const [type, ...params] = part.split(";").map((s) => s.trim().toLowerCase());
    if (!type) return [];
    let q = 1;
    for (const p of params) {
      const m = /^q=([0-9.]+)$/.exec(p);
      if (m) q = Number(m[1]);
    }
    return [{ type, q: Number.isFinite(q) ? q : 0 }];
  });
}

/**
 * True when the client asks for the Prometheus text format: it names text/plain or
 * application/openmetrics-text (as Prometheus's scrape Accept header does) with a q at least that of
 * application/json. Plain clients (curl's * / *, browsers' text/html, application/json) get JSON.
 */
export function wantsPrometheus(accept: string | undefined, format?: string): boolean {
  if (format === "prometheus" || format === "text") return true;
  if (format === "json") return false;
  if (!accept) return false;
  let prom = 0;
  let json = 0;
  for (const r of parseAccept(accept)) {
    if (r.type === "text/plain" || r.type === "application/openmetrics-text") prom = Math.max(prom, r.q);
    else if (r.type === "application/json") json = Math.max(json, r.q);
  }
  return prom > 0 && prom >= json;
}

export async function startOpsServer(opts: {
  host: string;
  port: number;
  view: OpsView;
}): Promise<OpsServer> {
  const app = fastify({ logger: false });
  const { view } = opts;
  app.get("/health", async (_req, reply) => {
    const h = view.health();
    return reply.code(h.httpStatus).header("cache-control", "no-store").send(h.body);
  });
  app.get<{ Querystring: { format?: string } }>("/metrics", async (req, reply) => {
    reply.header("cache-control", "no-store").header("vary", "Accept");
    if (wantsPrometheus(req.headers.accept, req.query.format)) {
      const m = await view.prometheus();
      return reply.type(m.contentType).send(m.body);
    }
    return reply.send(view.clarionMetrics());
  });
  type ListRequest = { Querystring: { limit?: string; offset?: string; exporter?: string } };
  app.get<ListRequest>("/templates", async (req, reply) => {
    const q = parseListQuery(req.query);
    if (typeof q === "string") return reply.code(400).send({ error: q });
    return reply.header("cache-control", "no-store").send(await view.templates(q));
  });
  app.get<ListRequest>("/exporters", async (req, reply) => {
    const q = parseListQuery(req.query);
    if (typeof q === "string") return reply.code(400).send({ error: q });
    return reply.header("cache-control", "no-store").send(view.exporters(q));
  });
  const tails = new Set<ServerResponse>();
  app.get<{ Querystring: { filter?: string } }>("/tail", (req, reply) => {
    if (!view.tail) return reply.code(404).send({ error: "no live tail here (no UDP collector)" });
    const filter = req.query.filter;
    try {
      compileFilter(filter);
    } catch (err) {
      if (!(err instanceof FilterError)) throw err;
      return reply.code(400).send({ error: err.message, position: err.position, length: err.length });
    }
    reply.hijack();
    const raw = reply.raw;
    raw.setHeader("content-type", "application/x-ndjson");
    raw.setHeader("cache-control", "no-store");
    const sub = view.tail(raw, filter);
    if (!sub) {
      raw.statusCode = 429;
      raw.setHeader("content-type", "application/json");
      raw.end(JSON.stringify({ error: "too many tail readers" }));
      return;
    }
    tails.add(raw);
    raw.once("close", () => {
      tails.delete(raw);
      sub.detach();
    });
  });
  app.addHook("preClose", (done) => {
    for (const raw of tails) raw.end();
    done();
  });
  if (view.ui) registerUi(app, view.ui);
  app.get("/", async () => ({
    service: "clarion-collector",
    endpoints: [
      "/health",
      "/metrics",
      "/templates",
      "/exporters",
      ...(view.tail ? ["/tail"] : []),
      ...(view.ui ? ["/ui"] : []),
    ],
  }));
  await app.listen({ host: opts.host, port: opts.port });
  const addr = app.server.address();
  const port = typeof addr === "object" && addr ? addr.port : opts.port;
  return {
    port,
    close: () => app.close(),
  };
}
