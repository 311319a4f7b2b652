/**
 * `clarion-collector top [filter...]`: top-N statistics over the collector's SQLite store (the `nfdump -s`
 * of this project), through the query layer of src/query/top.ts, or over its flow archive (`--archive DIR`,
 * or the collector's `parquet:` output when it has no `sqlite:` one) through src/query/archive.ts. Prints an
 * aligned table with human units and percentages of the window's total, or JSON / CSV. Exit 0 on success
 * (archive files that could not be read are named on stderr and left out), 1 when the database or archive
 * cannot be read, 2 on bad arguments (a bad filter shows its position).
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { Command, CommanderError, Option } from "commander";
import { canonicalAddress } from "../query/address.ts";
import { type ArchiveTopResult, closeArchiveEngine, runArchiveTop } from "../query/archive.ts";
import { FilterError, parseFilter } from "../query/filter.ts";
import {
  humanNumber,
  MAX_TOP_LIMIT,
  openFlowsDb,
  runTop,
  TOP_KEYS,
  TOP_ORDERS,
  type TopKey,
  TopQueryError,
  type TopResult,
} from "../query/top.ts";
import { parseParquetUri } from "../sinks/parquet.ts";
import {
  type CommandIo,
  collectorConfig,
  flowsDbPath,
  reportFilterError,
  timeWindow,
  UsageError,
} from "./common.ts";

interface TopOptions {
  db?: string;
  archive?: string;
  config?: string;
  dataDir?: string;
  by: string[];
  order: string;
  n: string;
  last?: string;
  from?: string;
  to?: string;
  exporter?: string;
  filter?: string;
  format: string;
  scale?: boolean;
}

function command(io: CommandIo): Command {
  return new Command("clarion-collector top")
    .description(
      "Top talkers, ports, protocols... over the collector's SQLite store or its flow archive (--archive).\n" +
        "The filter (arguments or --filter) " +
        'uses nfdump/tcpdump words, e.g. "proto tcp and dst port 443 and not src net 10.0.0.0/8" (README: Filters).',
    )
    .argument("[filter...]", "filter expression (may be given unquoted)")
    .option(
      "--db <path>",
      "SQLite database (default: the collector's sqlite output, else <data-dir>/flows.db)",
    )
    .option(
      "--archive <dir>",
      "flow archive (parquet: output) to read instead (default: the collector's parquet output when it has no sqlite one)",
    )
    .option("--config <file>", "the collector's config file (for its data dir and outputs)")
    .option("--data-dir <dir>", "the collector's data directory")
    .addOption(
      new Option(
        "--by <keys>",
        `group by one or more keys, comma-separated or repeated: ${TOP_KEYS.join(", ")}`,
      )
        .argParser((v: string, prev: string[]) => [...prev, ...v.split(",").map((s) => s.trim())])
        .default([], "src_ip"),
    )
    .addOption(new Option("--order <what>", "sort by").choices(TOP_ORDERS).default("bytes"))
    .option("-n <count>", `rows to show (1-${MAX_TOP_LIMIT})`, "10")
    .option("--last <duration>", "window ending now: 30s, 15m, 12h, 7d")
    .option(
      "--from <time>",
      'window start: ISO 8601 ("2026-12-05T06:00:00Z") or local "2026-12-05 07:00", "07:00"',
    )
    .option("--to <time>", "window end (exclusive), same forms")
    .option("--exporter <ip>", "only flows from this exporter")
    .option("-f, --filter <expr>", "filter expression (instead of arguments)")
    .addOption(
      new Option("--format <format>", "output format").choices(["table", "json", "csv"]).default("table"),
    )
    .option("--no-scale", "do not multiply bytes/packets by the sampling rate")
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out.write(s), writeErr: (s) => io.err.write(s) });
}

function pct(part: number, total: number): string {
  return total > 0 ? `${((100 * part) / total).toFixed(1)}%` : "-";
}

function when(ms: number | null): string {
  return ms === null ? "-" : new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function csvField(v: string): string {
  return /[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

/** The result as text: header lines (and `note`, when given, after them), then an aligned table. */
export function formatTable(r: TopResult, filter: string | undefined, note?: string): string {
  const lines: string[] = [];
  const window =
    r.fromMs === null && r.toMs === null
      ? "all stored flows"
      : `${when(r.fromMs)} .. ${when(r.toMs ?? Date.now())}`;
  lines.push(
    `Top ${r.rows.length} by ${r.by.join(", ")}, ordered by ${r.order} — ${window}${filter ? ` — filter: ${filter}` : ""}`,
  );
  lines.push(
    `Total: ${humanNumber(r.total.bytes, "B")} in ${humanNumber(r.total.packets)} packets, ${humanNumber(r.total.flows)} flows (first ${when(r.firstMs)}, last ${when(r.lastMs)})`,
  );
  if (r.sampled)
    lines.push(
      r.scaled
        ? `Sampled data (rates up to 1:${r.maxSamplingRate}): bytes and packets scaled by each flow's sampling rate`
        : `Sampled data (rates up to 1:${r.maxSamplingRate}): bytes and packets NOT scaled (--no-scale or a collector with --scale-by-sampling)`,
    );
  if (note !== undefined) lines.push(note);
  const header = [
    ...r.by.map((k) => k.toUpperCase()),
    "FLOWS",
    "FLOWS%",
    "PACKETS",
    "PACKETS%",
    "BYTES",
    "BYTES%",
  ];
  const table = r.rows.map((row) => [
    ...row.labels,
    humanNumber(row.flows),
    pct(row.flows, r.total.flows),
    humanNumber(row.packets),
    pct(row.packets, r.total.packets),
    humanNumber(row.bytes, "B"),
    pct(row.bytes, r.total.bytes),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const nKeys = r.by.length;
  const fmt = (cells: string[]): string =>
    cells
      .map((c, i) => (i < nKeys ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join("  ")
      .trimEnd();
  lines.push("", fmt(header), ...table.map(fmt));
  if (r.rows.length === 0) lines.push("(no flows)");
  return `${lines.join("\n")}\n`;
}

export function formatCsv(r: TopResult): string {
  const header = [...r.by, "flows", "packets", "bytes", "flows_pct", "packets_pct", "bytes_pct"];
  const out = [header.join(",")];
  for (const row of r.rows) {
    out.push(
      [
        ...r.by.map((k) => csvField(row.key[k] === null ? "" : String(row.key[k]))),
        String(row.flows),
        String(row.packets),
        String(row.bytes),
        ...[row.flows / r.total.flows, row.packets / r.total.packets, row.bytes / r.total.bytes].map((x) =>
          Number.isFinite(x) ? (100 * x).toFixed(2) : "",
        ),
      ].join(","),
    );
  }
  return `${out.join("\n")}\n`;
}

export async function runTopCommand(
  argv: string[],
  io: CommandIo = { out: process.stdout, err: process.stderr },
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<number> {
  const cmd = command(io);
  try {
    cmd.parse(argv, { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    throw e;
  }
  const o = cmd.opts<TopOptions>();
  const filter = o.filter ?? (cmd.args.length ? cmd.args.join(" ") : undefined);
  let path: string;
  let archive: string | undefined;
  let query: Parameters<typeof runTop>[1];
  let scale = o.scale !== false;
  try {
    if (o.filter !== undefined && cmd.args.length)
      throw new UsageError("give the filter either as arguments or with --filter, not both");
    const by = (o.by.length ? o.by : ["src_ip"]).filter((k) => k !== "");
    for (const k of by)
      if (!TOP_KEYS.includes(k as TopKey))
        throw new UsageError(`--by: unknown key "${k}" (known: ${TOP_KEYS.join(", ")})`);
    if (!/^\d+$/.test(o.n) || Number(o.n) < 1 || Number(o.n) > MAX_TOP_LIMIT)
      throw new UsageError(`-n: "${o.n}" is not a count from 1 to ${MAX_TOP_LIMIT}`);
    if (filter !== undefined) {
      try {
        parseFilter(filter);
      } catch (err) {
        if (err instanceof FilterError) return reportFilterError(io, "top", filter, err);
        throw err;
      }
    }
    let exporter: string | undefined;
    if (o.exporter !== undefined) exporter = canonicalAddress(o.exporter) ?? o.exporter;
    if (o.db !== undefined && o.archive !== undefined)
      throw new UsageError("--db and --archive exclude each other");
    archive = o.archive !== undefined ? resolve(o.archive) : configuredArchive(o, env);
    path = archive ?? flowsDbPath(o, env);
    // A collector that scales by sampling stored scaled counters: do not scale twice.
    if (o.db === undefined && o.archive === undefined && scale && collectorConfig(o, env).scaleBySampling)
      scale = false;
    query = {
      by: by as TopKey[],
      order: o.order as (typeof TOP_ORDERS)[number],
      limit: Number(o.n),
      ...timeWindow(o),
      ...(exporter !== undefined ? { exporter } : {}),
      ...(filter !== undefined ? { filter } : {}),
      scale,
    };
  } catch (err) {
    if (err instanceof UsageError) {
      io.err.write(`clarion-collector top: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (archive !== undefined) return archiveTop(io, archive, query, filter, o.format);
  if (!existsSync(path)) {
    io.err.write(
      `clarion-collector top: no database at ${path} (is the collector writing an sqlite: output?)\n`,
    );
    return 1;
  }
  let result: TopResult;
  try {
    const db = openFlowsDb(path);
    try {
      result = runTop(db, query);
    } finally {
      db.close();
    }
  } catch (err) {
    if (err instanceof FilterError) return reportFilterError(io, "top", filter ?? "", err);
    if (err instanceof TopQueryError) {
      io.err.write(`clarion-collector top: ${err.message}\n`);
      return 1;
    }
    io.err.write(`clarion-collector top: cannot read ${path}: ${(err as Error).message}\n`);
    return 1;
  }
  if (o.format === "json")
    io.out.write(`${JSON.stringify({ database: path, filter: filter ?? null, ...result })}\n`);
  else if (o.format === "csv") io.out.write(formatCsv(result));
  else io.out.write(formatTable(result, filter));
  return 0;
}

/** The collector's archive when `top` is to read it by default: a parquet: output and no sqlite: output. */
function configuredArchive(
  o: { db?: string; config?: string; dataDir?: string },
  env: Readonly<Record<string, string | undefined>>,
): string | undefined {
  if (o.db !== undefined) return undefined;
  const uris = collectorConfig(o, env).outputs.map((out) => out.uri);
  if (uris.some((u) => u.toLowerCase().startsWith("sqlite:"))) return undefined;
  const parquet = uris.find((u) => u.toLowerCase().startsWith("parquet:"));
  return parquet === undefined ? undefined : parseParquetUri(parquet);
}

/** `top` over the archive: the same output, plus which files were read and which were skipped (stderr). */
async function archiveTop(
  io: CommandIo,
  dir: string,
  query: Parameters<typeof runTop>[1],
  filter: string | undefined,
  format: string,
): Promise<number> {
  if (!existsSync(dir)) {
    io.err.write(
      `clarion-collector top: no archive at ${dir} (is the collector writing a parquet: output there?)\n`,
    );
    return 1;
  }
  let result: ArchiveTopResult;
  try {
    result = await runArchiveTop(dir, query);
  } catch (err) {
    if (err instanceof FilterError) return reportFilterError(io, "top", filter ?? "", err);
    if (err instanceof TopQueryError) {
      io.err.write(`clarion-collector top: ${err.message}\n`);
      return 1;
    }
    io.err.write(`clarion-collector top: cannot read the archive ${dir}: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await closeArchiveEngine();
  }
  for (const s of result.skipped)
    io.err.write(
      `clarion-collector top: skipped ${s.path} (unreadable, its flows are not counted): ${s.reason}\n`,
    );
  const { files, skipped } = result;
  if (format === "json") io.out.write(`${JSON.stringify({ filter: filter ?? null, ...result })}\n`);
  else if (format === "csv") io.out.write(formatCsv(result));
  else
    io.out.write(
      formatTable(
        result,
        filter,
        `Archive ${dir}: ${files.read} of ${files.total} files read${skipped.length ? `, ${skipped.length} unreadable skipped` : ""}`,
      ),
    );
  return 0;
}
