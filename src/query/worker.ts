/**
 * Runs `runTop` / `runSeries` (src/query/top.ts) in a worker thread for the ops server's /ui, so a query
 * over a large window never blocks the main thread (which writes the sinks). One worker, one read-only
 * connection, one query at a time; at most MAX_PENDING waiting, further ones are refused (busy).
 *
 * Main → worker: { id, kind: "top" | "series", query }. Worker → main: { id, result } or
 * { id, error: { name, message, position?, length? } } (FilterError and TopQueryError keep their name).
 */

import type { DatabaseSync } from "node:sqlite";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { FilterError } from "./filter.ts";
import { openFlowsDb, runSeries, runTop, type SeriesQuery, type TopQuery, TopQueryError } from "./top.ts";

const MAX_PENDING = 8;
const WORKER_URL = new URL(import.meta.url.endsWith(".ts") ? "./worker.ts" : "./worker.js", import.meta.url);

type Request =
  | { id: number; kind: "top"; query: TopQuery }
  | { id: number; kind: "series"; query: SeriesQuery };
interface ErrorShape {
  name: string;
  message: string;
  position?: number;
  length?: number;
}
type Reply = { id: number; result: unknown } | { id: number; error: ErrorShape };

/** A query refused because too many wait already. */
export class QueryBusyError extends Error {
  constructor() {
    super("too many queries waiting; try again");
    this.name = "QueryBusyError";
  }
}

export class QueryWorker {
  readonly #path: string;
  #worker: Worker | null = null;
  #next = 1;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  constructor(dbPath: string) {
    this.#path = dbPath;
  }

  top(query: TopQuery): Promise<ReturnType<typeof runTop>> {
    return this.#run({ id: 0, kind: "top", query }) as Promise<ReturnType<typeof runTop>>;
  }

  series(query: SeriesQuery): Promise<ReturnType<typeof runSeries>> {
    return this.#run({ id: 0, kind: "series", query }) as Promise<ReturnType<typeof runSeries>>;
  }

  async close(): Promise<void> {
    const w = this.#worker;
    this.#worker = null;
    if (w) await w.terminate();
  }

  #spawn(): Worker {
    const w = new Worker(WORKER_URL, { workerData: { path: this.#path }, stdout: false, stderr: false });
    w.unref();
    w.on("message", (m: Reply) => {
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if ("error" in m) {
        const e = m.error;
        if (e.name === "FilterError") p.reject(new FilterError(e.message, e.position ?? 0, e.length ?? 1));
        else if (e.name === "TopQueryError") p.reject(new TopQueryError(e.message));
        else p.reject(new Error(e.message));
      } else p.resolve(m.result);
    });
    const fail = (err: Error): void => {
      if (this.#worker === w) this.#worker = null;
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
    };
    w.on("error", fail);
    w.on("exit", (code) => fail(new Error(`query worker exited (${code})`)));
    return w;
  }

  #run(req: Request): Promise<unknown> {
    if (this.#pending.size >= MAX_PENDING) return Promise.reject(new QueryBusyError());
    this.#worker ??= this.#spawn();
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker!.postMessage({ ...req, id });
    });
  }
}

// Worker side.
if (!isMainThread && parentPort && (workerData as { path?: string } | null)?.path) {
  const port = parentPort;
  const path = (workerData as { path: string }).path;
  let db: DatabaseSync | null = null;
  port.on("message", (req: Request) => {
    try {
      db ??= openFlowsDb(path);
      const result = req.kind === "top" ? runTop(db, req.query) : runSeries(db, req.query);
      port.postMessage({ id: req.id, result } satisfies Reply);
    } catch (err) {
      const e = err as Error;
      // A database that could not be opened (not created yet) is retried on the next query.
      if (!(err instanceof FilterError) && !(err instanceof TopQueryError)) {
        try {
          db?.close();
        } catch {
          // already closed
        }
        db = null;
      }
      port.postMessage({
        id: req.id,
        error: {
          name: e.name,
          message: e.message,
          ...(err instanceof FilterError ? { position: err.position, length: err.length } : {}),
        },
      } satisfies Reply);
    }
  });
}
