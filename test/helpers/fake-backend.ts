/**
 * A fake backend for delivery tests: a real Node HTTP server on 127.0.0.1 implementing the Clarion
 * backend (`POST /api/netflow/netflow`, `POST /api/edge/*`) and the telemetry API (`POST /v1/ingest`),
 * recording every accepted request (decoded body, idempotency key, headers) and injecting faults:
 * - `down()` / `up()`: stop listening and drop connections (refused connections), then listen again on the
 *   same port;
 * - `fault`: a function deciding per request: a status (500, 429 + Retry-After, 400, …), or `slow` (the
 *   request is accepted and recorded, but the answer comes after `delayMs`: the client may time out);
 * - `maxRecords`: 413 for bodies with more records than that.
 */
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { gunzipSync } from "node:zlib";

export interface ReceivedRequest {
  path: string;
  headers: IncomingHttpHeaders;
  idempotencyKey: string;
  gzip: boolean;
  /** Decoded (gunzipped) body. */
  body: Buffer;
  /** Raw body as sent. */
  raw: Buffer;
  json: unknown;
  records: number;
}

export type Fault =
  | { kind: "status"; status: number; retryAfter?: string; body?: string }
  | { kind: "slow"; delayMs: number }
  | { kind: "reset" };

export interface FaultContext {
  path: string;
  /** 1-based number of the request. */
  n: number;
  records: number;
  idempotencyKey: string;
}

export class FakeBackend {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  port = 0;
  /** Accepted requests (2xx), in arrival order. */
  readonly accepted: ReceivedRequest[] = [];
  /** Every request seen, with the status answered. */
  readonly log: { path: string; status: number; idempotencyKey: string; records: number }[] = [];
  fault: ((ctx: FaultContext) => Fault | null) | null = null;
  maxRecords = Number.POSITIVE_INFINITY;
  /** Only count records, do not keep bodies (benchmarks). */
  light = false;
  acceptedRecords = 0;
  #n = 0;
  #listening = false;

  constructor() {
    this.#server = createServer({ keepAliveTimeout: 5000 }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const raw = Buffer.concat(chunks);
        const path = req.url ?? "/";
        const gzip = req.headers["content-encoding"] === "gzip";
        const key = String(req.headers["idempotency-key"] ?? "");
        let body: Buffer;
        try {
          body = gzip ? gunzipSync(raw) : raw;
        } catch {
          this.#answer(res, path, key, 0, 400, '{"detail":"bad gzip"}');
          return;
        }
        const n = ++this.#n;
        let json: unknown = null;
        let records = 0;
        const isFlows = path === "/api/netflow/netflow" || path.startsWith("/v1/ingest");
        if (isFlows) {
          if (this.light) {
            // count records by their line framing
            let i = body.indexOf(10);
            while (i >= 0) {
              records++;
              i = body.indexOf(10, i + 1);
            }
            records = Math.max(0, records - 1);
          } else {
            try {
              json = JSON.parse(body.toString("utf8"));
            } catch (err) {
              this.#answer(
                res,
                path,
                key,
                0,
                400,
                JSON.stringify({ detail: `Invalid JSON: ${(err as Error).message}` }),
              );
              return;
            }
            const recs = (json as { records?: unknown }).records;
            records = Array.isArray(recs) ? recs.length : 0;
          }
        } else if (path.startsWith("/api/edge/")) {
          records = 1;
        } else {
          this.#answer(res, path, key, 0, 404, '{"detail":"Not Found"}');
          return;
        }
        if (records > this.maxRecords) {
          this.#answer(res, path, key, records, 413, '{"detail":"Payload too large"}');
          return;
        }
        const f = this.fault?.({ path, n, records, idempotencyKey: key }) ?? null;
        if (f?.kind === "reset") {
          req.socket.destroy();
          this.log.push({ path, status: 0, idempotencyKey: key, records });
          return;
        }
        if (f?.kind === "status") {
          const headers: Record<string, string> = { "content-type": "application/json" };
          if (f.retryAfter !== undefined) headers["retry-after"] = f.retryAfter;
          this.log.push({ path, status: f.status, idempotencyKey: key, records });
          res.writeHead(f.status, headers).end(f.body ?? `{"detail":"injected ${f.status}"}`);
          return;
        }
        const rec: ReceivedRequest = {
          path,
          headers: req.headers,
          idempotencyKey: key,
          gzip,
          body: this.light ? Buffer.alloc(0) : body,
          raw: this.light ? Buffer.alloc(0) : raw,
          json,
          records,
        };
        this.accepted.push(rec);
        this.acceptedRecords += records;
        const status = path.startsWith("/v1/ingest") || path.startsWith("/api/edge/") ? 202 : 200;
        if (f?.kind === "slow") {
          setTimeout(() => this.#answer(res, path, key, records, status, '{"status":"accepted"}'), f.delayMs);
        } else this.#answer(res, path, key, records, status, '{"status":"accepted"}');
      });
    });
    this.#server.on("connection", (s: Socket) => {
      this.#sockets.add(s);
      s.on("close", () => this.#sockets.delete(s));
    });
  }

  #answer(
    res: import("node:http").ServerResponse,
    path: string,
    key: string,
    records: number,
    status: number,
    body: string,
  ): void {
    this.log.push({ path, status, idempotencyKey: key, records });
    if (res.destroyed) return;
    res.writeHead(status, { "content-type": "application/json" }).end(body);
  }

  /** Listen on 127.0.0.1 (a free port the first time, the same port afterwards). */
  async up(): Promise<void> {
    if (this.#listening) return;
    await new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(this.port, "127.0.0.1", () => {
        this.#server.off("error", reject);
        resolve();
      });
    });
    this.port = (this.#server.address() as AddressInfo).port;
    this.#listening = true;
  }

  /** Stop listening and drop every connection: clients get refused connections. */
  async down(): Promise<void> {
    if (!this.#listening) return;
    this.#listening = false;
    const closed = new Promise<void>((r) => this.#server.close(() => r()));
    for (const s of this.#sockets) s.destroy();
    await closed;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** All flow records accepted on a path prefix, in order. */
  records(pathPrefix = "/"): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const r of this.accepted) {
      if (!r.path.startsWith(pathPrefix)) continue;
      const recs = (r.json as { records?: Record<string, unknown>[] } | null)?.records;
      if (Array.isArray(recs)) out.push(...recs);
    }
    return out;
  }

  async close(): Promise<void> {
    await this.down();
    this.#server.closeAllConnections();
  }
}
