/**
 * Reliable delivery from a spool to a remote destination, shared by the HTTP sinks and the agent relay.
 *
 * A loop takes entries from the spool in order and keeps up to `concurrency` of them in flight. Each entry
 * is sent until the destination answers for good:
 * - success (2xx): acknowledged in the spool;
 * - retryable (network error, timeout, 429, 5xx, 408, 401/403): retried `attempts` times with exponential backoff
 *   (`baseDelayMs * backoff^n`, ± `jitter`, at most `maxDelayMs`), a `Retry-After` is honoured (up to
 *   `maxRetryAfterMs`); when a round of attempts is spent the entry is counted as failed and stays where it
 *   is (on disk) and a new round starts after the breaker's delay: nothing is ever dropped for being late;
 * - 413: split in half (when the caller can split) and each half delivered the same way, recursively; a
 *   single record still too large is dead-lettered;
 * - 401/403 (credentials refused: a rotated or wrong token): retryable failures that count toward the
 *   breaker, so the data stays in the spool until the token is fixed; a rate-limited error says so. (Dead-
 *   lettering them would send all traffic to the dead-letter file.)
 * - any other 4xx (or 3xx): written to the dead-letter file with the response, counted, logged, acknowledged;
 *   when the dead-letter file cannot be written the entry stays in the spool and the write is retried with
 *   backoff (it is not counted as dead-lettered until it is in the file).
 * A circuit breaker (closed → open after `failureThreshold` consecutive failures → half-open after
 * `resetMs`, doubling up to `maxResetMs` while probes fail) stops hammering a dead destination: while it is
 * open nothing is sent, and one probe at a time tests it when half-open. 429 does not count as a failure
 * (the destination is alive and asked to slow down).
 * Every unit carries its idempotency key; halves get `<key>-1` and `<key>-2`, stable across retries and
 * restarts.
 */
import { dirname } from "node:path";
import { makeDirs, openPrivate, PRIVATE_DIR_MODE } from "../core/fs.ts";
import type { Spool, SpooledEntry, SpoolLogger } from "./spool.ts";

/** One request's worth of data. */
export interface DeliveryUnit {
  readonly id: string;
  readonly key: string;
  readonly meta: string;
  readonly records: number;
  readonly createdMs: number;
  readonly data: Uint8Array;
}

export type SendOutcome =
  | { readonly kind: "ok"; readonly status: number }
  | {
      readonly kind: "retry";
      readonly status: number;
      readonly reason: string;
      /** Counts toward opening the breaker (not for 429). */
      readonly breaker: boolean;
      /** The request may have been processed (timeout, reset after sending). */
      readonly unknown: boolean;
      readonly retryAfterMs?: number;
      /** The destination refused the credentials (401/403). */
      readonly auth?: boolean;
    }
  | { readonly kind: "too_large"; readonly status: number; readonly body: string }
  | { readonly kind: "reject"; readonly status: number; readonly body: string };

export interface RetryOptions {
  /** Attempts per round (RETRY_ATTEMPTS). Default 3. */
  attempts?: number;
  /** Backoff multiplier (RETRY_BACKOFF). Default 1.5. */
  backoff?: number;
  /** First retry delay. Default 500 ms. */
  baseDelayMs?: number;
  /** Largest backoff delay. Default 30 s. */
  maxDelayMs?: number;
  /** Relative jitter (0.25 = ±25 %). Default 0.25. */
  jitter?: number;
  /** Largest Retry-After honoured. Default 120 s. */
  maxRetryAfterMs?: number;
}

export interface BreakerOptions {
  /** Consecutive failures that open the breaker. Default 5. */
  failureThreshold?: number;
  /** First open period. Default 5 s. */
  resetMs?: number;
  /** Longest open period (doubling while probes fail). Default 60 s. */
  maxResetMs?: number;
}

export const BREAKER_STATES = ["closed", "open", "half_open"] as const;
export type BreakerState = (typeof BREAKER_STATES)[number];

export interface DeliveryOptions {
  name: string;
  spool: Spool;
  send(unit: DeliveryUnit, signal: AbortSignal): Promise<SendOutcome>;
  /** Split a unit in two (413); null when it cannot be split. */
  split?(unit: DeliveryUnit): [DeliveryUnit, DeliveryUnit] | null;
  /** Requests in flight at once. Default 4 (1 keeps strict order). */
  concurrency?: number;
  retry?: RetryOptions;
  breaker?: BreakerOptions;
  /** Dead-letter file (JSON lines). */
  deadLetterPath: string;
  /** Render a unit's body for the dead-letter file. Default: UTF-8 text. */
  describeBody?(unit: DeliveryUnit): Record<string, unknown>;
  logger: SpoolLogger;
}

export interface DeliveryStats {
  /** Records (flows, payload items) acknowledged by the destination. */
  delivered: number;
  deliveredBatches: number;
  /** Rounds of attempts that were all spent (the entry stays spooled and is tried again). */
  failed: number;
  /** Attempts repeated after a retryable failure. */
  retried: number;
  /** Attempts whose outcome was unknown (timeout, reset after sending): a duplicate is possible. */
  unknownOutcomes: number;
  /** 413 splits performed. */
  splits: number;
  deadLettered: number;
  deadLetteredRecords: number;
  inFlight: number;
  /** Units in a retry cycle: from their first failed attempt until delivered, dead-lettered or stopped. */
  waitingRetry: number;
  breakerState: BreakerState;
  breakerOpens: number;
  lastError: string;
  lastErrorMs: number;
  lastSuccessMs: number;
}

class Stopped extends Error {}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(new Stopped("stopped"));
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(t);
      reject(new Stopped("stopped"));
    };
    const t = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** A circuit breaker: closed, open (nothing passes), half-open (one probe at a time). */
export class CircuitBreaker {
  readonly #threshold: number;
  readonly #resetMs: number;
  readonly #maxResetMs: number;
  #state: BreakerState = "closed";
  #failures = 0;
  #openUntil = 0;
  #delay: number;
  #probing = false;
  #opens = 0;
  #waiters: (() => void)[] = [];

  constructor(opts: BreakerOptions = {}) {
    this.#threshold = Math.max(1, opts.failureThreshold ?? 5);
    this.#resetMs = Math.max(1, opts.resetMs ?? 5000);
    this.#maxResetMs = Math.max(this.#resetMs, opts.maxResetMs ?? 60_000);
    this.#delay = this.#resetMs;
  }

  get state(): BreakerState {
    return this.#state;
  }

  get opens(): number {
    return this.#opens;
  }

  /** Current open period (the pause between rounds of attempts). */
  get delayMs(): number {
    return this.#delay;
  }

  /** Wait until a request may be sent. */
  async permit(signal: AbortSignal): Promise<void> {
    for (;;) {
      if (signal.aborted) throw new Stopped("stopped");
      if (this.#state === "closed") return;
      const now = Date.now();
      if (this.#state === "open") {
        if (now < this.#openUntil) {
          await Promise.race([sleep(this.#openUntil - now, signal), this.#changed()]);
          continue;
        }
        this.#state = "half_open";
      }
      if (!this.#probing) {
        this.#probing = true;
        return;
      }
      await Promise.race([sleep(this.#resetMs, signal), this.#changed()]);
    }
  }

  #changed(): Promise<void> {
    return new Promise((r) => this.#waiters.push(r));
  }

  #notify(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const r of w) r();
  }

  success(): void {
    const was = this.#state;
    this.#state = "closed";
    this.#failures = 0;
    this.#probing = false;
    this.#delay = this.#resetMs;
    if (was !== "closed") this.#notify();
  }

  failure(): void {
    if (this.#state === "half_open") {
      this.#probing = false;
      this.#delay = Math.min(this.#delay * 2, this.#maxResetMs);
      this.#open();
      return;
    }
    if (this.#state === "open") return;
    if (++this.#failures >= this.#threshold) this.#open();
  }

  /** An answer that says nothing about health (429): release a probe without changing state. */
  neutral(): void {
    if (this.#state === "half_open" && this.#probing) {
      this.#probing = false;
      this.#notify();
    }
  }

  #open(): void {
    this.#state = "open";
    this.#opens++;
    this.#openUntil = Date.now() + this.#delay;
    this.#notify();
  }
}

/** Parse a Retry-After header (delta seconds or HTTP date) into ms; undefined when absent or invalid. */
export function parseRetryAfter(value: string | undefined | null, now = Date.now()): number | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

export class Delivery {
  readonly name: string;
  readonly #spool: Spool;
  readonly #opts: DeliveryOptions;
  readonly #concurrency: number;
  readonly #attempts: number;
  readonly #backoff: number;
  readonly #baseDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #jitter: number;
  readonly #maxRetryAfterMs: number;
  readonly breaker: CircuitBreaker;
  readonly #stop = new AbortController();
  readonly #halt = new AbortController();
  #authLoggedMs = 0;
  #authSuppressed = 0;
  #dlLoggedMs = 0;
  #stopping = false;
  #loop: Promise<void> | null = null;
  #inFlight = new Set<Promise<void>>();
  #slotFreed: (() => void) | null = null;
  #deadLetterChain: Promise<void> = Promise.resolve();
  #s = {
    delivered: 0,
    deliveredBatches: 0,
    failed: 0,
    retried: 0,
    unknownOutcomes: 0,
    splits: 0,
    deadLettered: 0,
    deadLetteredRecords: 0,
    waitingRetry: 0,
    lastError: "",
    lastErrorMs: 0,
    lastSuccessMs: 0,
  };

  constructor(opts: DeliveryOptions) {
    this.name = opts.name;
    this.#spool = opts.spool;
    this.#opts = opts;
    this.#concurrency = Math.max(1, opts.concurrency ?? 4);
    const r = opts.retry ?? {};
    this.#attempts = Math.max(1, r.attempts ?? 3);
    this.#backoff = Math.max(1, r.backoff ?? 1.5);
    this.#baseDelayMs = Math.max(0, r.baseDelayMs ?? 500);
    this.#maxDelayMs = Math.max(this.#baseDelayMs, r.maxDelayMs ?? 30_000);
    this.#jitter = Math.min(1, Math.max(0, r.jitter ?? 0.25));
    this.#maxRetryAfterMs = Math.max(0, r.maxRetryAfterMs ?? 120_000);
    this.breaker = new CircuitBreaker(opts.breaker);
  }

  /** Start the delivery loop. */
  start(): void {
    this.#loop ??= this.#run();
  }

  async #run(): Promise<void> {
    const spool = this.#spool;
    while (!this.#stopping) {
      if (this.#inFlight.size >= this.#concurrency) {
        await new Promise<void>((r) => {
          this.#slotFreed = r;
        });
        continue;
      }
      const e = spool.next();
      if (e === null) {
        await this.#idle();
        continue;
      }
      const p: Promise<void> = this.#deliverEntry(e).finally(() => {
        this.#inFlight.delete(p);
        const f = this.#slotFreed;
        this.#slotFreed = null;
        f?.();
      });
      this.#inFlight.add(p);
    }
  }

  /**
   * Wait for new spool data or stop. The abort listener goes when data comes, so idle wakes leave nothing
   * behind (no `Promise.race` against a long-lived promise either: each race would keep a reaction).
   */
  #idle(): Promise<void> {
    const signal = this.#halt.signal;
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const onAbort = (): void => resolve();
      signal.addEventListener("abort", onAbort, { once: true });
      void this.#spool.waitForData().then(() => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      });
    });
  }

  async #deliverEntry(e: SpooledEntry): Promise<void> {
    try {
      await this.#deliverUnit(e);
      this.#spool.ack(e);
    } catch (err) {
      if (err instanceof Stopped) return; // stays in the spool for the next start
      this.#opts.logger.error({ sink: this.name, err: (err as Error).message }, "delivery: unexpected error");
    }
  }

  #delay(attempt: number, retryAfterMs: number | undefined): number {
    let d = Math.min(this.#maxDelayMs, this.#baseDelayMs * this.#backoff ** (attempt - 1));
    d *= 1 + this.#jitter * (2 * Math.random() - 1);
    if (retryAfterMs !== undefined) d = Math.max(d, Math.min(retryAfterMs, this.#maxRetryAfterMs));
    return Math.max(0, Math.round(d));
  }

  async #deliverUnit(unit: DeliveryUnit): Promise<void> {
    // From its first failed attempt until it is delivered (or stopped), the unit counts in waitingRetry:
    // the sink is "spooling" for that whole time, not only while it sleeps between attempts.
    const waiting = { counted: false };
    try {
      await this.#deliverLoop(unit, waiting);
    } finally {
      if (waiting.counted) this.#s.waitingRetry--;
    }
  }

  #markWaiting(waiting: { counted: boolean }): void {
    if (waiting.counted) return;
    waiting.counted = true;
    this.#s.waitingRetry++;
  }

  async #deliverLoop(unit: DeliveryUnit, waiting: { counted: boolean }): Promise<void> {
    const signal = this.#stop.signal;
    let attempt = 0;
    for (;;) {
      await this.breaker.permit(signal);
      let out: SendOutcome;
      try {
        out = await this.#opts.send(unit, signal);
      } catch (err) {
        if (signal.aborted) throw new Stopped("stopped");
        out = { kind: "retry", status: 0, reason: (err as Error).message, breaker: true, unknown: true };
      }
      if (signal.aborted && out.kind === "retry") throw new Stopped("stopped");
      switch (out.kind) {
        case "ok":
          this.breaker.success();
          this.#s.delivered += unit.records;
          this.#s.deliveredBatches++;
          this.#s.lastSuccessMs = Date.now();
          return;
        case "too_large": {
          this.breaker.success();
          const halves = this.#opts.split?.(unit) ?? null;
          if (halves === null) {
            await this.#deadLetterOrWait(unit, out.status, out.body, signal);
            return;
          }
          this.#s.splits++;
          this.#opts.logger.warn(
            {
              sink: this.name,
              records: unit.records,
              bytes: unit.data.byteLength,
              halves: [halves[0].records, halves[1].records],
            },
            "delivery: 413 from destination, splitting batch",
          );
          await this.#deliverUnit(halves[0]);
          await this.#deliverUnit(halves[1]);
          return;
        }
        case "reject":
          this.breaker.success();
          await this.#deadLetterOrWait(unit, out.status, out.body, signal);
          return;
        case "retry": {
          if (out.breaker) this.breaker.failure();
          else this.breaker.neutral();
          this.#s.lastError = out.status ? `HTTP ${out.status}` : out.reason;
          this.#s.lastErrorMs = Date.now();
          if (out.unknown) this.#s.unknownOutcomes++;
          if (out.auth) this.#authRefused(unit, out.status);
          attempt++;
          let wait: number;
          if (attempt >= this.#attempts) {
            this.#s.failed++;
            this.#opts.logger.warn(
              {
                sink: this.name,
                id: unit.id,
                records: unit.records,
                attempts: attempt,
                error: this.#s.lastError,
              },
              "delivery: attempts spent, batch stays spooled",
            );
            attempt = 0;
            wait = Math.max(this.#delay(this.#attempts, out.retryAfterMs), this.breaker.delayMs);
          } else {
            wait = this.#delay(attempt, out.retryAfterMs);
          }
          this.#s.retried++;
          this.#markWaiting(waiting);
          await sleep(wait, signal);
          break;
        }
      }
    }
  }

  #authRefused(unit: DeliveryUnit, status: number): void {
    const now = Date.now();
    if (now - this.#authLoggedMs < 60_000) {
      this.#authSuppressed++;
      return;
    }
    this.#opts.logger.error(
      { sink: this.name, status, id: unit.id, suppressed: this.#authSuppressed },
      "delivery: the destination refused the credentials (check the token); batches stay spooled and are retried",
    );
    this.#authLoggedMs = now;
    this.#authSuppressed = 0;
  }

  /**
   * Dead-letter a unit; while the dead-letter file cannot be written, retry with backoff (the entry stays
   * in the spool, unacknowledged, and is sent again after a restart).
   */
  async #deadLetterOrWait(unit: DeliveryUnit, status: number, response: string, signal: AbortSignal) {
    const waiting = { counted: false };
    try {
      await this.#deadLetterLoop(unit, status, response, signal, waiting);
    } finally {
      if (waiting.counted) this.#s.waitingRetry--;
    }
  }

  async #deadLetterLoop(
    unit: DeliveryUnit,
    status: number,
    response: string,
    signal: AbortSignal,
    waiting: { counted: boolean },
  ): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#deadLetter(unit, status, response);
        return;
      } catch (err) {
        this.#s.lastError = `dead-letter file: ${(err as Error).message}`;
        this.#s.lastErrorMs = Date.now();
        if (this.#s.lastErrorMs - this.#dlLoggedMs >= 10_000) {
          this.#dlLoggedMs = this.#s.lastErrorMs;
          this.#opts.logger.error(
            { sink: this.name, id: unit.id, err: (err as Error).message, file: this.#opts.deadLetterPath },
            "delivery: cannot write the dead-letter file; the batch stays spooled, retrying",
          );
        }
        this.#markWaiting(waiting);
        await sleep(this.#delay(Math.min(attempt, this.#attempts + 1), undefined), signal);
      }
    }
  }

  /** Append a unit to the dead-letter file; rejects (and counts nothing) when the file cannot be written. */
  #deadLetter(unit: DeliveryUnit, status: number, response: string): Promise<void> {
    const body = this.#opts.describeBody?.(unit) ?? { body: Buffer.from(unit.data).toString("utf8") };
    const line = `${JSON.stringify({
      time: new Date().toISOString(),
      sink: this.name,
      status,
      response: response.slice(0, 4096),
      idempotency_key: unit.id,
      key: unit.key,
      meta: unit.meta,
      records: unit.records,
      ...body,
    })}\n`;
    const path = this.#opts.deadLetterPath;
    const p = this.#deadLetterChain.then(async () => {
      makeDirs(dirname(path), PRIVATE_DIR_MODE);
      const fh = await openPrivate(path, "a");
      try {
        await fh.appendFile(line);
      } finally {
        await fh.close();
      }
    });
    this.#deadLetterChain = p.catch(() => {});
    return p.then(() => {
      this.#s.deadLettered++;
      this.#s.deadLetteredRecords += unit.records;
      this.#opts.logger.error(
        { sink: this.name, id: unit.id, status, records: unit.records, file: path },
        "delivery: rejected by destination, dead-lettered",
      );
    });
  }

  /** True while data waits on retries or an open breaker (the sink is "spooling"). */
  get spooling(): boolean {
    return this.breaker.state !== "closed" || this.#s.waitingRetry > 0;
  }

  stats(): DeliveryStats {
    return {
      ...this.#s,
      inFlight: this.#inFlight.size,
      breakerState: this.breaker.state,
      breakerOpens: this.breaker.opens,
    };
  }

  /**
   * Wait until the spool is empty (all acknowledged), at most `timeoutMs`; gives up at once while the
   * breaker is open (the data is safe in the spool). True when drained.
   */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.#spool.stats().batches > 0) {
      if (Date.now() >= deadline || this.#stopping || this.breaker.state === "open") return false;
      await new Promise((r) => setTimeout(r, 5));
    }
    await this.#deadLetterChain;
    return true;
  }

  /**
   * Stop: no new entries are taken; in-flight requests get `graceMs` to finish, then are aborted (they stay
   * in the spool and are delivered after the next start).
   */
  async stop(graceMs = 0): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#halt.abort();
    const f = this.#slotFreed;
    this.#slotFreed = null;
    f?.();
    if (this.#inFlight.size > 0 && graceMs > 0) {
      let t: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.#inFlight]),
        new Promise((r) => {
          t = setTimeout(r, graceMs);
        }),
      ]);
      clearTimeout(t);
    }
    this.#stop.abort();
    await Promise.allSettled([...this.#inFlight]);
    await this.#loop;
    await this.#deadLetterChain;
  }
}
