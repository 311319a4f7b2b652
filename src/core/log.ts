/**
 * Logging: pino to stderr (stdout may carry `jsonl:-`), one JSON line per event, and a rate limiter for
 * error logs so a flood of malformed datagrams or a failing sink cannot flood the log.
 *
 * Unique keys (DESIGN §5): pino writes a child logger's bindings and the call's object side by side, so a
 * key in both (a sink's `sink`) would appear twice, and a `msg` in the object would precede the message's
 * own `msg` (a JSON parser keeps the last: the real error was lost). So a `msg` field of the object is
 * written as `detail`, and a line that still repeats a key is written again from its parsed form (the
 * last value at the first place; log volume is low and rate-limited, and lines without repeats, that is
 * every line, are written as pino made them).
 */
import { pino } from "pino";

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type Logger = pino.Logger;

export interface LoggerOptions {
  level: LogLevel;
  /** Bound into every line (e.g. { worker: 1 }). */
  bindings?: Record<string, unknown>;
  /** File descriptor to write to; 2 (stderr) by default. */
  fd?: number;
}

/**
 * A pino logger writing synchronously to stderr: log volume is low (errors are rate-limited), and a
 * synchronous destination loses nothing when the process exits.
 */
export function createLogger(opts: LoggerOptions): Logger {
  const dest = pino.destination({ fd: opts.fd ?? 2, sync: true });
  return pino(
    {
      level: opts.level,
      base: { service: "clarion-collector", ...opts.bindings },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        level: (label) => ({ level: label }),
        log: (o) => {
          if (!Object.hasOwn(o, "msg")) return o;
          const { msg, ...rest } = o;
          return { ...rest, detail: msg };
        },
      },
      hooks: { streamWrite: uniqueKeys },
    },
    dest,
  );
}

/** `line` (one JSON object and a newline) with repeated keys folded; unchanged when it repeats none. */
export function uniqueKeys(line: string): string {
  let o: unknown;
  try {
    o = JSON.parse(line);
  } catch {
    return line;
  }
  const again = `${JSON.stringify(o)}\n`;
  return again.length === line.length ? line : again;
}

interface Bucket {
  windowStart: number;
  count: number;
  suppressed: number;
}

/**
 * Lets at most `limit` messages per key through in each `intervalMs` window; the first message let
 * through in a new window carries how many were suppressed in the previous ones.
 */
export class RateLimitedLogger {
  readonly #log: Pick<Logger, "error" | "warn">;
  readonly #limit: number;
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, Bucket>();

  constructor(
    log: Pick<Logger, "error" | "warn">,
    opts: { limit?: number; intervalMs?: number; now?: () => number } = {},
  ) {
    this.#log = log;
    this.#limit = opts.limit ?? 5;
    this.#intervalMs = opts.intervalMs ?? 10_000;
    this.#now = opts.now ?? Date.now;
  }

  /** Logs an error under `key` unless the key is over its budget; returns whether it was logged. */
  error(key: string, obj: Record<string, unknown>, msg: string): boolean {
    return this.#emit("error", key, obj, msg);
  }

  warn(key: string, obj: Record<string, unknown>, msg: string): boolean {
    return this.#emit("warn", key, obj, msg);
  }

  /** Messages suppressed so far and not yet reported, over all keys. */
  get suppressed(): number {
    let n = 0;
    for (const b of this.#buckets.values()) n += b.suppressed;
    return n;
  }

  #emit(level: "error" | "warn", key: string, obj: Record<string, unknown>, msg: string): boolean {
    const now = this.#now();
    let b = this.#buckets.get(key);
    if (!b) {
      if (this.#buckets.size > 1000) this.#buckets.clear(); // keys are codes, not addresses; stay bounded anyway
      b = { windowStart: now, count: 0, suppressed: 0 };
      this.#buckets.set(key, b);
    }
    if (now - b.windowStart >= this.#intervalMs) {
      b.windowStart = now;
      b.count = 0;
    }
    if (b.count >= this.#limit) {
      b.suppressed++;
      return false;
    }
    b.count++;
    const fields = b.suppressed > 0 ? { ...obj, suppressed: b.suppressed } : obj;
    b.suppressed = 0;
    this.#log[level](fields, msg);
    return true;
  }
}
