/**
 * `/ui` on the ops port: one page (no build step) showing the exporters (flows/s, flows, datagrams,
 * templates, sampling, errors, last seen), flows/s and bytes/s over the last hour (uPlot, served from the
 * `uplot` npm package), top talkers, destinations, ports and protocols for a chosen window and filter, and
 * the loss counters (every Prometheus counter about drops, losses, gaps, missing templates and errors).
 *
 * The page reads the existing ops endpoints (/exporters, /templates, /metrics) and two JSON endpoints here,
 * `/ui/api/top` and `/ui/api/series`, which run the same query layer as `clarion-collector top`
 * (src/query/top.ts) over the collector's SQLite output, in a worker thread (src/query/worker.ts) so a
 * large window never blocks the main thread. Without an sqlite: output they answer 503 and the page says so.
 *
 * GET /ui/api/top?by=src_ip[,dst_port]&order=bytes|packets|flows&n=10&last=15m (or from/to: ISO or ms)
 *   &exporter=IP&filter=EXPR → the TopResult JSON; a bad filter → 400 {error, position, length}.
 * GET /ui/api/series?last=1h&step=60 (seconds) &filter=… → {t, flowsPerSec, bytesPerSec, packetsPerSec}.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { FastifyInstance, FastifyReply } from "fastify";
import { canonicalAddress } from "../query/address.ts";
import { FilterError } from "../query/filter.ts";
import {
  MAX_TOP_LIMIT,
  parseDuration,
  parseTime,
  TOP_KEYS,
  TOP_ORDERS,
  type TopKey,
  type TopOrder,
  TopQueryError,
} from "../query/top.ts";
import { QueryBusyError, type QueryWorker } from "../query/worker.ts";
import { UI_PAGE, UI_SCRIPT } from "./ui-page.ts";

export interface UiOptions {
  /** The query worker over the collector's SQLite output; null when there is none. */
  queries: QueryWorker | null;
  /** Multiply bytes/packets by the sampling rate (false when the collector already scales). */
  scale: boolean;
}

type Q = Record<string, string | undefined>;

class BadRequest extends Error {}

function window(q: Q, defLast: string, now = Date.now()): { fromMs: number; toMs: number } {
  if (q.from !== undefined || q.to !== undefined) {
    const t = (v: string | undefined, name: string, def: number): number => {
      if (v === undefined || v === "") return def;
      const ms = /^\d+$/.test(v) ? Number(v) : parseTime(v);
      if (ms === null) throw new BadRequest(`${name}: "${v}" is not a time`);
      return ms;
    };
    const fromMs = t(q.from, "from", now - 3_600_000);
    const toMs = t(q.to, "to", now + 1);
    if (toMs <= fromMs) throw new BadRequest("to must be after from");
    return { fromMs, toMs };
  }
  const d = parseDuration(q.last ?? defLast);
  if (d === null) throw new BadRequest(`last: "${q.last}" is not a duration such as 15m, 1h, 7d`);
  return { fromMs: now - d, toMs: now + 1 };
}

function common(q: Q): { exporter?: string; filter?: string } {
  const out: { exporter?: string; filter?: string } = {};
  if (q.exporter) out.exporter = canonicalAddress(q.exporter) ?? q.exporter;
  if (q.filter !== undefined && q.filter.trim() !== "") out.filter = q.filter;
  return out;
}

async function answer(reply: FastifyReply, run: () => Promise<unknown>): Promise<FastifyReply> {
  reply.header("cache-control", "no-store");
  try {
    return reply.send(await run());
  } catch (err) {
    if (err instanceof FilterError)
      return reply.code(400).send({ error: err.message, position: err.position, length: err.length });
    if (err instanceof BadRequest || err instanceof TopQueryError)
      return reply.code(400).send({ error: err.message });
    if (err instanceof QueryBusyError) return reply.code(503).send({ error: err.message });
    return reply.code(500).send({ error: (err as Error).message });
  }
}

function asset(path: string): Buffer {
  return readFileSync(createRequire(import.meta.url).resolve(path));
}

export function registerUi(app: FastifyInstance, opts: UiOptions): void {
  const uplotJs = asset("uplot/dist/uPlot.iife.min.js");
  const uplotCss = asset("uplot/dist/uPlot.min.css");
  const noDb = (reply: FastifyReply) =>
    reply
      .code(503)
      .header("cache-control", "no-store")
      .send({ error: "no sqlite: output configured; top talkers and the chart read the SQLite store" });

  app.get("/ui", async (_req, reply) => reply.type("text/html; charset=utf-8").send(UI_PAGE));
  app.get("/ui/", async (_req, reply) => reply.redirect("/ui"));
  app.get("/ui/app.js", async (_req, reply) => reply.type("text/javascript; charset=utf-8").send(UI_SCRIPT));
  app.get("/ui/uplot.js", async (_req, reply) =>
    reply.type("text/javascript; charset=utf-8").header("cache-control", "max-age=86400").send(uplotJs),
  );
  app.get("/ui/uplot.css", async (_req, reply) =>
    reply.type("text/css; charset=utf-8").header("cache-control", "max-age=86400").send(uplotCss),
  );

  app.get<{ Querystring: Q }>("/ui/api/top", async (req, reply) => {
    const queries = opts.queries;
    if (!queries) return noDb(reply);
    return answer(reply, async () => {
      const q = req.query;
      const by = (q.by ?? "src_ip").split(",").map((s) => s.trim());
      for (const k of by) if (!TOP_KEYS.includes(k as TopKey)) throw new BadRequest(`by: unknown key "${k}"`);
      const order = (q.order ?? "bytes") as TopOrder;
      if (!TOP_ORDERS.includes(order)) throw new BadRequest(`order: unknown "${q.order}"`);
      const n = Number(q.n ?? 10);
      if (!Number.isInteger(n) || n < 1 || n > MAX_TOP_LIMIT) throw new BadRequest("n: 1 to 10000");
      return queries.top({
        by: by as TopKey[],
        order,
        limit: n,
        ...window(q, "15m"),
        ...common(q),
        scale: opts.scale,
      });
    });
  });

  app.get<{ Querystring: Q }>("/ui/api/series", async (req, reply) => {
    const queries = opts.queries;
    if (!queries) return noDb(reply);
    return answer(reply, async () => {
      const q = req.query;
      const step = Number(q.step ?? 60);
      if (!Number.isFinite(step) || step < 1) throw new BadRequest("step: seconds, at least 1");
      return queries.series({ ...window(q, "1h"), stepMs: step * 1000, ...common(q), scale: opts.scale });
    });
  });
}
