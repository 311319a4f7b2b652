/**
 * What the looking commands (`top`, `tail`) share: finding the collector's database and ops port from the
 * collector's own configuration (--config, --data-dir, CLARION_COLLECTOR_* variables, as the collector
 * would resolve them), the time-window flags, and printing a filter error with its position (exit 2).
 */
import { resolve } from "node:path";
import { loadConfig } from "../config/index.ts";
import type { Config } from "../config/options.ts";
import { ConfigError } from "../core/errors.ts";
import { type FilterError, formatFilterError } from "../query/filter.ts";
import { parseDuration, parseTime } from "../query/top.ts";
import { parseSqliteUri } from "../sinks/sqlite/sink.ts";

export interface CommandIo {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

/** A bad argument: the message goes to stderr and the command exits 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The collector configuration as the collector itself would load it from these flags and the environment. */
export function collectorConfig(
  o: { config?: string; dataDir?: string },
  env: Readonly<Record<string, string | undefined>>,
): Config {
  const argv: string[] = [];
  if (o.config !== undefined) argv.push("--config", o.config);
  if (o.dataDir !== undefined) argv.push("--data-dir", o.dataDir);
  try {
    return loadConfig(argv, env, { prepareDirs: false });
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.message);
    throw err;
  }
}

/**
 * The database `top` reads: --db, else the collector's first sqlite: output, else <data-dir>/flows.db.
 */
export function flowsDbPath(
  o: { db?: string; config?: string; dataDir?: string },
  env: Readonly<Record<string, string | undefined>>,
): string {
  if (o.db !== undefined) return resolve(o.db);
  const config = collectorConfig(o, env);
  const sqlite = config.outputs.find((out) => out.uri.toLowerCase().startsWith("sqlite:"));
  return sqlite ? parseSqliteUri(sqlite.uri, config.dataDir) : resolve(config.dataDir, "flows.db");
}

/** --last / --from / --to into a window; --last excludes --from/--to. */
export function timeWindow(
  o: { last?: string; from?: string; to?: string },
  nowMs: number = Date.now(),
): { fromMs?: number; toMs?: number } {
  if (o.last !== undefined) {
    if (o.from !== undefined || o.to !== undefined) throw new UsageError("--last excludes --from and --to");
    const d = parseDuration(o.last);
    if (d === null) throw new UsageError(`--last: "${o.last}" is not a duration such as 30s, 15m, 12h or 7d`);
    return { fromMs: nowMs - d };
  }
  const out: { fromMs?: number; toMs?: number } = {};
  const when = (flag: string, v: string): number => {
    const t = parseTime(v, new Date(nowMs));
    if (t === null)
      throw new UsageError(
        `${flag}: "${v}" is not a time (ISO 8601 with a zone, local "YYYY-MM-DD HH:MM[:SS]", or "HH:MM" today)`,
      );
    return t;
  };
  if (o.from !== undefined) out.fromMs = when("--from", o.from);
  if (o.to !== undefined) out.toMs = when("--to", o.to);
  if (out.fromMs !== undefined && out.toMs !== undefined && out.toMs <= out.fromMs)
    throw new UsageError("--to must be after --from");
  return out;
}

/** Writes a FilterError with a caret under the position; returns the exit code (2). */
export function reportFilterError(io: CommandIo, command: string, text: string, err: FilterError): number {
  io.err.write(`clarion-collector ${command}: bad filter: ${formatFilterError(text, err)}\n`);
  return 2;
}
