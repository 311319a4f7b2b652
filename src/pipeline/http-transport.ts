/**
 * One HTTP POST with the classification the delivery loop needs (src/pipeline/delivery.ts), over a
 * keep-alive connection pool (node:http/https Agent, one per sink).
 *
 * 2xx → ok; 413 → too_large; 408, 429, 5xx → retry (429 and 503 with their Retry-After; 429 does not
 * count toward the breaker); 401, 403 → retry marked `auth` (credentials refused: the data must stay
 * spooled until the token is fixed, not be dead-lettered); other statuses → reject (dead letter); network
 * errors → retry; the overall
 * `timeoutMs` → retry with an unknown outcome (the destination may have processed it).
 * The response body is read (up to 4 KiB kept for the dead-letter file) so the socket goes back to the pool.
 *
 * `startHttpDelivery` is the whole remote path the HTTP sinks and the agent relay share: a disk spool, a
 * keep-alive pool and a delivery loop posting each spooled unit (src/pipeline/delivery.ts).
 */
import { Agent as HttpAgent, request as httpRequest, type OutgoingHttpHeaders } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import {
  type BreakerOptions,
  Delivery,
  type DeliveryOptions,
  type DeliveryUnit,
  parseRetryAfter,
  type RetryOptions,
  type SendOutcome,
} from "./delivery.ts";
import { Spool, type SpoolLogger, type SpoolOptions } from "./spool.ts";

export interface PostOptions {
  url: URL;
  headers: OutgoingHttpHeaders;
  body: Uint8Array;
  timeoutMs: number;
  agent: HttpAgent;
  signal: AbortSignal;
}

/** A keep-alive pool for a URL's protocol. */
export function createAgent(url: URL, maxSockets: number): HttpAgent {
  const opts = {
    keepAlive: true,
    keepAliveMsecs: 1000,
    maxSockets,
    maxFreeSockets: maxSockets,
    scheduling: "fifo" as const,
  };
  return url.protocol === "https:" ? new HttpsAgent(opts) : new HttpAgent(opts);
}

const KEEP = 4096;

export function post(opts: PostOptions): Promise<SendOutcome> {
  return new Promise<SendOutcome>((resolve) => {
    let done = false;
    let sent = false;
    const finish = (o: SendOutcome): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      opts.signal.removeEventListener("abort", onAbort);
      resolve(o);
    };
    const fn = opts.url.protocol === "https:" ? httpsRequest : httpRequest;
    const req = fn(opts.url, {
      method: "POST",
      agent: opts.agent,
      headers: { ...opts.headers, "content-length": opts.body.byteLength },
    });
    const timer = setTimeout(() => {
      req.destroy();
      finish({
        kind: "retry",
        status: 0,
        reason: `timeout after ${opts.timeoutMs} ms`,
        breaker: true,
        unknown: true,
      });
    }, opts.timeoutMs);
    const onAbort = (): void => {
      req.destroy();
      finish({ kind: "retry", status: 0, reason: "aborted", breaker: false, unknown: true });
    };
    opts.signal.addEventListener("abort", onAbort, { once: true });
    req.on("error", (err: NodeJS.ErrnoException) => {
      finish({
        kind: "retry",
        status: 0,
        reason: err.code ?? err.message,
        breaker: true,
        unknown: sent && err.code !== "ECONNREFUSED",
      });
    });
    req.on("finish", () => {
      sent = true;
    });
    req.on("response", (res) => {
      const status = res.statusCode ?? 0;
      const chunks: Buffer[] = [];
      let kept = 0;
      res.on("data", (c: Buffer) => {
        if (kept < KEEP) {
          chunks.push(c);
          kept += c.length;
        }
      });
      res.on("error", () => {});
      res.on("end", () => {
        const body = Buffer.concat(chunks).subarray(0, KEEP).toString("utf8");
        if (status >= 200 && status < 300) finish({ kind: "ok", status });
        else if (status === 413) finish({ kind: "too_large", status, body });
        else if (status === 401 || status === 403) {
          finish({
            kind: "retry",
            status,
            reason: `HTTP ${status}: credentials refused`,
            breaker: true,
            unknown: false,
            auth: true,
          });
        } else if (status === 429 || status === 408 || status >= 500) {
          const ra = res.headers["retry-after"];
          finish({
            kind: "retry",
            status,
            reason: `HTTP ${status}`,
            breaker: status !== 429,
            unknown: status === 504,
            retryAfterMs: parseRetryAfter(Array.isArray(ra) ? ra[0] : ra),
          });
        } else finish({ kind: "reject", status, body });
      });
    });
    req.end(opts.body);
  });
}

export interface HttpDeliveryOptions {
  name: string;
  /** The spool (directory, bounds, fsync policy); the logger is `logger`. */
  spool: Omit<SpoolOptions, "logger">;
  /** Where requests go (its protocol picks the pool's). */
  url: URL;
  /**
   * A unit's request: its URL and headers (`Idempotency-Key` is added), or `{reject}` with the reason when
   * the unit must not be sent (it goes to the dead-letter file).
   */
  request(unit: DeliveryUnit): { url: URL; headers: OutgoingHttpHeaders } | { reject: string };
  timeoutMs: number;
  /** Requests in flight, and sockets in the pool. */
  concurrency: number;
  retry?: RetryOptions;
  breaker?: BreakerOptions;
  deadLetterPath: string;
  describeBody?: DeliveryOptions["describeBody"];
  split?: DeliveryOptions["split"];
  logger: SpoolLogger;
}

/** A running remote path: what callers append to, its delivery loop, and how to stop both. */
export interface HttpDelivery {
  readonly spool: Spool;
  readonly delivery: Delivery;
  /**
   * Wait up to `drainMs` for the spool to empty, stop delivery (in-flight requests get `graceMs`), close
   * the spool and the pool. What is left stays on disk for the next start.
   */
  close(drainMs: number, graceMs: number): Promise<void>;
}

/** Open the spool (delivering what a previous run left), create the pool and start delivering. */
export async function startHttpDelivery(o: HttpDeliveryOptions): Promise<HttpDelivery> {
  const spool = await Spool.open({ ...o.spool, logger: o.logger });
  const agent = createAgent(o.url, o.concurrency);
  const delivery = new Delivery({
    name: o.name,
    spool,
    concurrency: o.concurrency,
    retry: o.retry,
    breaker: o.breaker,
    deadLetterPath: o.deadLetterPath,
    logger: o.logger,
    describeBody: o.describeBody,
    split: o.split,
    send: (unit, signal) => {
      const r = o.request(unit);
      if ("reject" in r) return Promise.resolve({ kind: "reject", status: 0, body: r.reject });
      return post({
        url: r.url,
        headers: { ...r.headers, "idempotency-key": unit.id },
        body: unit.data,
        timeoutMs: o.timeoutMs,
        agent,
        signal,
      });
    },
  });
  delivery.start();
  let closed = false;
  return {
    spool,
    delivery,
    async close(drainMs: number, graceMs: number): Promise<void> {
      if (closed) return;
      closed = true;
      if (drainMs > 0) await delivery.drain(drainMs);
      await delivery.stop(graceMs);
      await spool.close();
      agent.destroy();
    },
  };
}
