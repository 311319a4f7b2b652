/**
 * Top-N statistics over the SQLite `flows` table: the one query layer behind `clarion-collector top` and the
 * `/ui` page (two faces, one query). Grouping keys are fixed column expressions chosen from TOP_KEYS; every
 * value (time window, exporter, filter) travels as a `?` parameter.
 *
 * Counting: `bytes` and `packets` are summed with TOTAL() (a float: a sum past 2^63 does not abort the
 * query, and precision below 2^53 is exact). When `scale` is set, each row counts `bytes × sampling_rate`
 * (rates of 0 or 1 count once), as the collector does with --scale-by-sampling; a database written with
 * --scale-by-sampling already holds scaled counters, so its readers pass `scale: false`. `flows` counts
 * stored records (not scaled). The window is on `time_received` (ms since the epoch, the indexed column):
 * from inclusive, to exclusive.
 */
import { DatabaseSync } from "node:sqlite";
import { protoName } from "../encode/goflow2.ts";
import { compileFilter, registerQueryFunctions } from "./filter.ts";

/** Grouping keys and the column expressions they select (conversation and sgt select two). */
const KEY_COLUMNS = {
  src_ip: ["src_ip"],
  dst_ip: ["dst_ip"],
  src_port: ["src_port"],
  dst_port: ["dst_port"],
  proto: ["protocol"],
  exporter: ["exporter"],
  in_if: ["in_if"],
  out_if: ["out_if"],
  src_as: ["src_as"],
  dst_as: ["dst_as"],
  src_net: ["src_net"],
  dst_net: ["dst_net"],
  // Both directions of an address pair count as one conversation (the smaller address first, as text).
  conversation: ["MIN(src_ip, dst_ip)", "MAX(src_ip, dst_ip)"],
  sgt: ["src_sgt", "dst_sgt"],
  // VRFs by name where options data named them, else by id (as text: one type per key, as over the archive);
  // applications by name (issue 18).
  in_vrf: ["COALESCE(in_vrf_name, CAST(in_vrf_id AS TEXT))"],
  out_vrf: ["COALESCE(out_vrf_name, CAST(out_vrf_id AS TEXT))"],
  application: ["application_name"],
} as const;

export type TopKey = keyof typeof KEY_COLUMNS;
export const TOP_KEYS = Object.keys(KEY_COLUMNS) as TopKey[];
export const TOP_ORDERS = ["bytes", "packets", "flows"] as const;
export type TopOrder = (typeof TOP_ORDERS)[number];
export const MAX_TOP_LIMIT = 10_000;

export interface TopQuery {
  by: readonly TopKey[];
  order: TopOrder;
  limit: number;
  /** Window on time_received, ms since the epoch: [fromMs, toMs). Undefined: unbounded. */
  fromMs?: number;
  toMs?: number;
  /** Only this exporter (its address as stored). */
  exporter?: string;
  /** Filter language text (src/query/filter.ts); FilterError when it does not parse. */
  filter?: string;
  /** Multiply bytes/packets by sampling_rate (default true). */
  scale?: boolean;
}

export interface TopRow {
  /** Value per key: for conversation "a <-> b", for sgt "src -> dst"; null when absent. */
  key: Record<string, string | number | null>;
  /** Each key's value as readable text (protocol names, "-" when absent), in `by` order. */
  labels: string[];
  bytes: number;
  packets: number;
  flows: number;
}

export interface TopResult {
  by: readonly TopKey[];
  order: TopOrder;
  rows: TopRow[];
  total: { bytes: number; packets: number; flows: number };
  /** Some record in the window carries a sampling rate above 1. */
  sampled: boolean;
  /** Counters were multiplied by the sampling rate. */
  scaled: boolean;
  /** Highest sampling rate seen in the window (0 when none). */
  maxSamplingRate: number;
  fromMs: number | null;
  toMs: number | null;
  /** Receive times of the first and last flow in the window. */
  firstMs: number | null;
  lastMs: number | null;
}

export class TopQueryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TopQueryError";
  }
}

/** Opens a flows database for reading (no schema changes) with the query functions registered. */
export function openFlowsDb(path: string, opts: { busyTimeoutMs?: number } = {}): DatabaseSync {
  const db = new DatabaseSync(path, { readOnly: true, timeout: opts.busyTimeoutMs ?? 5000 });
  try {
    registerQueryFunctions(db);
    db.prepare("SELECT 1 FROM flows LIMIT 0").all();
  } catch (err) {
    db.close();
    throw new TopQueryError(`${path} has no flows table (${(err as Error).message})`);
  }
  return db;
}

function where(q: Pick<TopQuery, "fromMs" | "toMs" | "exporter" | "filter">): {
  sql: string;
  params: Array<number | string>;
} {
  const parts: string[] = [];
  const params: Array<number | string> = [];
  if (q.fromMs !== undefined) {
    parts.push("time_received >= ?");
    params.push(Math.floor(q.fromMs));
  }
  if (q.toMs !== undefined) {
    parts.push("time_received < ?");
    params.push(Math.floor(q.toMs));
  }
  if (q.exporter !== undefined && q.exporter !== "") {
    parts.push("exporter = ?");
    params.push(q.exporter);
  }
  const f = compileFilter(q.filter);
  if (f) {
    parts.push(f.sql.sql);
    params.push(...f.sql.params);
  }
  return { sql: parts.length ? `WHERE ${parts.join(" AND ")}` : "", params };
}

/** A group's key value(s) as the text `top` prints (shared by the SQLite and archive backends). */
export function labelOf(key: TopKey, v: unknown, w: unknown): string {
  const text = (x: unknown): string => (x === null || x === undefined ? "-" : String(x));
  switch (key) {
    case "proto":
      return v === null || v === undefined ? "-" : protoName(Number(v));
    case "conversation":
      return `${text(v)} <-> ${text(w)}`;
    case "sgt":
      return `${text(v)} -> ${text(w)}`;
    default:
      return text(v);
  }
}

/** A key value as JSON output carries it (bigint → number; absent → null). */
export function keyValue(v: unknown): string | number | null {
  if (v === null || v === undefined) return null;
  if (typeof v === "bigint") return Number(v);
  return v as string | number;
}

/** Runs the top-N query and the window totals. Throws FilterError or TopQueryError on bad input. */
export function runTop(db: DatabaseSync, q: TopQuery): TopResult {
  if (q.by.length === 0) throw new TopQueryError("--by needs at least one key");
  for (const k of q.by)
    if (!(k in KEY_COLUMNS)) throw new TopQueryError(`unknown key "${k}" (known: ${TOP_KEYS.join(", ")})`);
  if (!TOP_ORDERS.includes(q.order))
    throw new TopQueryError(`unknown order "${q.order}" (known: ${TOP_ORDERS.join(", ")})`);
  if (!Number.isInteger(q.limit) || q.limit < 1 || q.limit > MAX_TOP_LIMIT)
    throw new TopQueryError(`-n must be an integer from 1 to ${MAX_TOP_LIMIT}`);
  const scale = q.scale ?? true;
  const w = where(q);
  const factor = scale ? " * (CASE WHEN sampling_rate > 1 THEN sampling_rate ELSE 1 END)" : "";
  const sums = `TOTAL(bytes${factor}) AS bytes, TOTAL(packets${factor}) AS packets, COUNT(*) AS flows`;

  const exprs: string[] = [];
  for (const k of q.by) for (const c of KEY_COLUMNS[k]) exprs.push(c);
  const select = exprs.map((e, i) => `${e} AS k${i}`).join(", ");
  const groups = exprs.map((_e, i) => `k${i}`).join(", ");
  // One pass: the window totals come from the groups through window functions evaluated before LIMIT
  // (sum of the groups' sums = the window's total). Ties are broken by the keys, so the answer is stable.
  const totals =
    "SUM(TOTAL(bytes" +
    factor +
    ")) OVER () AS t_bytes, SUM(TOTAL(packets" +
    factor +
    ")) OVER () AS t_packets, SUM(COUNT(*)) OVER () AS t_flows, MAX(MAX(sampling_rate)) OVER () AS t_rate, " +
    "MIN(MIN(time_received)) OVER () AS t_first, MAX(MAX(time_received)) OVER () AS t_last";
  const sql = `SELECT ${select}, ${sums}, ${totals} FROM flows ${w.sql} GROUP BY ${groups} ORDER BY ${q.order} DESC, ${groups} LIMIT ?`;
  const raw = db.prepare(sql).all(...w.params, q.limit);

  const rows: TopRow[] = raw.map((r) => {
    const key: Record<string, string | number | null> = {};
    const labels: string[] = [];
    let i = 0;
    for (const k of q.by) {
      if (KEY_COLUMNS[k].length === 2) {
        const a = r[`k${i}`];
        const b = r[`k${i + 1}`];
        key[k] = labelOf(k, a, b);
        labels.push(labelOf(k, a, b));
        i += 2;
      } else {
        const a = r[`k${i}`];
        key[k] = keyValue(a);
        labels.push(labelOf(k, a, null));
        i += 1;
      }
    }
    return {
      key,
      labels,
      bytes: Number(r.bytes),
      packets: Number(r.packets),
      flows: Number(r.flows),
    };
  });

  const first = raw[0];
  const t: Record<string, unknown> = first
    ? {
        bytes: first.t_bytes,
        packets: first.t_packets,
        flows: first.t_flows,
        max_rate: first.t_rate,
        first: first.t_first,
        last: first.t_last,
      }
    : { bytes: 0, packets: 0, flows: 0, max_rate: 0, first: null, last: null };
  const maxRate = Number(t.max_rate ?? 0);
  return {
    by: q.by,
    order: q.order,
    rows,
    total: { bytes: Number(t.bytes), packets: Number(t.packets), flows: Number(t.flows) },
    sampled: maxRate > 1,
    scaled: scale && maxRate > 1,
    maxSamplingRate: maxRate,
    fromMs: q.fromMs ?? null,
    toMs: q.toMs ?? null,
    firstMs: t.first === null ? null : Number(t.first),
    lastMs: t.last === null ? null : Number(t.last),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Time series (the /ui chart)

export interface SeriesQuery {
  fromMs: number;
  toMs: number;
  /** Bucket width, ms (at least 1000). */
  stepMs: number;
  exporter?: string;
  filter?: string;
  scale?: boolean;
}

export interface SeriesResult {
  /** Bucket start times, ms; every bucket of the window is present (0 where no flow). */
  t: number[];
  flowsPerSec: number[];
  bytesPerSec: number[];
  packetsPerSec: number[];
  scaled: boolean;
}

export const MAX_SERIES_POINTS = 2000;

/** Flows, bytes and packets per second in buckets of `stepMs` over [fromMs, toMs). */
export function runSeries(db: DatabaseSync, q: SeriesQuery): SeriesResult {
  const step = Math.max(1000, Math.floor(q.stepMs));
  const from = Math.floor(q.fromMs / step) * step;
  const n = Math.ceil((q.toMs - from) / step);
  if (!(n > 0) || n > MAX_SERIES_POINTS)
    throw new TopQueryError(`a series needs 1 to ${MAX_SERIES_POINTS} points (asked for ${n})`);
  const scale = q.scale ?? true;
  const factor = scale ? " * (CASE WHEN sampling_rate > 1 THEN sampling_rate ELSE 1 END)" : "";
  const w = where({ ...q, fromMs: from });
  const raw = db
    .prepare(
      `SELECT CAST((time_received - ?) / ? AS INTEGER) AS b, COUNT(*) AS flows, TOTAL(bytes${factor}) AS bytes, TOTAL(packets${factor}) AS packets, MAX(sampling_rate) AS rate FROM flows ${w.sql} GROUP BY b`,
    )
    .all(from, step, ...w.params);
  const out: SeriesResult = {
    t: Array.from({ length: n }, (_x, i) => from + i * step),
    flowsPerSec: new Array<number>(n).fill(0),
    bytesPerSec: new Array<number>(n).fill(0),
    packetsPerSec: new Array<number>(n).fill(0),
    scaled: false,
  };
  const perSec = 1000 / step;
  for (const r of raw) {
    const i = Math.floor(Number(r.b));
    if (!(i >= 0 && i < n)) continue;
    out.flowsPerSec[i] = Number(r.flows) * perSec;
    out.bytesPerSec[i] = Number(r.bytes) * perSec;
    out.packetsPerSec[i] = Number(r.packets) * perSec;
    if (scale && Number(r.rate ?? 0) > 1) out.scaled = true;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Time windows and units

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** "15m", "12h", "7d", "30s" → ms; null when the text is not a duration. */
export function parseDuration(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)\s*([smhd])$/i.exec(text.trim());
  if (!m) return null;
  const ms = Number(m[1]) * UNIT_MS[m[2]!.toLowerCase() as keyof typeof UNIT_MS];
  return Number.isFinite(ms) && ms > 0 ? Math.round(ms) : null;
}

/**
 * A point in time: ISO 8601 with a zone (`2026-12-05T06:00:00Z`, `…+01:00`), local time
 * `YYYY-MM-DD[ HH:MM[:SS]]` (a space or a T), or `HH:MM[:SS]` today, local. Null when not understood.
 */
export function parseTime(text: string, now: Date = new Date()): number | null {
  const s = text.trim();
  const local = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?)?$/.exec(s);
  if (local) {
    const [y, mo, d, h, mi, se, ms] = local.slice(1).map((x) => (x === undefined ? 0 : Number(x)));
    const t = new Date(y!, mo! - 1, d!, h!, mi!, se!, ms!);
    if (t.getMonth() !== mo! - 1 || t.getDate() !== d! || h! > 23 || mi! > 59 || se! > 59) return null;
    return t.getTime();
  }
  const clock = /^(\d{1,2}):(\d{2})(?::(\d{2}))?$/.exec(s);
  if (clock) {
    const [h, mi, se] = clock.slice(1).map((x) => (x === undefined ? 0 : Number(x)));
    if (h! > 23 || mi! > 59 || se! > 59) return null;
    return new Date(now.getFullYear(), now.getMonth(), now.getDate(), h!, mi!, se!).getTime();
  }
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i.test(s)) {
    const t = Date.parse(s);
    return Number.isNaN(t) ? null : t;
  }
  return null;
}

/** 1234567 → "1.2 M"; with `unit` "B": "1.2 MB". Decimal prefixes, three significant digits. */
export function humanNumber(n: number, unit = ""): string {
  if (!Number.isFinite(n)) return String(n);
  if (Math.abs(n) < 1000) return `${Number.isInteger(n) ? n : n.toFixed(1)}${unit ? ` ${unit}` : ""}`;
  const prefixes = ["k", "M", "G", "T", "P", "E"];
  let v = n;
  let i = -1;
  while (Math.abs(v) >= 1000 && i < prefixes.length - 1) {
    v /= 1000;
    i++;
  }
  const digits = Math.abs(v) >= 100 ? 0 : 1;
  return `${v.toFixed(digits)} ${prefixes[i]}${unit}`;
}
