/**
 * Top-N statistics over the flow archive (`parquet:DIR`, src/sinks/parquet.ts): what `clarion-collector top
 * --archive DIR` runs. Same keys, orders, window, exporter, filter language and sampling scaling as the
 * SQLite query of src/query/top.ts, with the same answer for the same flows (test/query/archive.test.ts
 * compares the two), computed by DuckDB (`@duckdb/node-api`, an optional dependency imported only here and
 * only when an archive is queried: without it the query fails with an error naming the package).
 *
 * Why DuckDB and not a reader of our own files: measured in bench/top-archive.bench.ts (BENCHMARKS.md,
 * "top over the archive"): DuckDB scans and groups the PLAIN/zstd pages on every core in C++; a JavaScript
 * reader of the same pages, just decompressing two columns and grouping in a Map on one thread, took ~7×
 * DuckDB's CPU time for the whole query (24 against 3.2 CPU-s over 20 M rows), before any filter or key.
 *
 * Files and the window. Names are `YYYY/MM/DD/flows-HHMMSS-w<worker>[-<n>].parquet` (UTC, the time the
 * file was opened: the start of its rotation interval, or the moment of a size rotation), so one worker's
 * files sort by time and a file holds the flows its worker received from its own name time until the name
 * time of that worker's next file (plus the rotation check's lag: a boundary is noticed within a second).
 * A file is therefore opened only when `name − margin < to` and (it is its worker's last file, or its
 * successor's `name + margin > from`), with a margin of ARCHIVE_MARGIN_MS (60 s) for the lag, for flows
 * stamped just before a rotation and for a size-rotated file named when its first row group was written.
 * This assumes one collector per archive directory (two collectors writing the same directory interleave
 * one worker number's files). Inside the opened files DuckDB skips row groups by the `time_received`
 * statistics. Files that do not follow the naming (and `.tmp/`) are not read.
 *
 * Damaged files: a finished file is never rewritten, but a copy can be cut short or a disk can corrupt one.
 * A selected file whose Parquet framing (magic at both ends, footer length) is wrong is skipped before the
 * query; a file DuckDB then fails to read is skipped and the query rerun (the file the error names, else
 * found by halving the file list: DuckDB does not always name it). Either way the file and the reason are in
 * the result's `skipped`, and `top` prints them: the totals then exclude it.
 *
 * Column mapping to the SQLite store's columns (the filter language and the keys speak those names):
 * `src_ip`/`dst_ip` = `src_addr`/`dst_addr` with "" as NULL; `protocol` = `proto`; `exporter` =
 * `sampler_address`, else `switch_id`; `src_net`/`dst_net` (CIDR text in SQLite) = the address masked to the
 * stored prefix length, rendered as the SQLite sink renders it (GoFlow2's networkString). All of it is SQL
 * (macros below): IPv4 addresses as numbers; IPv6 `net` terms from the stored text where the network allows
 * (v6Network), else from the address expanded to 32 hex digits; a network key masks each distinct address
 * once (not each row) and builds its IPv6 text once per group. Measured per million IPv6 rows (CPU): a
 * JavaScript scalar function (DuckDB calls back into the JS thread per 2048-row chunk) ~4 s, and 10× that in
 * wall time on a loaded machine; the SQL expansion per row ~4.4 s; the text test 0.1 s; the network key
 * 0.4 s. Filter values travel as parameters; the window bounds are written into the SQL as integer literals
 * (numbers computed here, not text) so DuckDB prunes row groups by them.
 */
import { closeSync, fstatSync, openSync, readdirSync, readSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DuckDBConnection } from "@duckdb/node-api";
import { ipv6 } from "../core/address.ts";
import type { Network } from "./address.ts";
import { type Dir, type FilterNode, type NumericField, nameColumns, parseFilter } from "./filter.ts";
import {
  keyValue,
  labelOf,
  MAX_TOP_LIMIT,
  TOP_KEYS,
  TOP_ORDERS,
  type TopKey,
  type TopQuery,
  TopQueryError,
  type TopResult,
  type TopRow,
} from "./top.ts";

/** How far a file's flows may lie outside [its name time, its successor's name time). */
export const ARCHIVE_MARGIN_MS = 60_000;

/** The npm package the archive queries need. */
export const ARCHIVE_ENGINE_PACKAGE = "@duckdb/node-api";

// ---------------------------------------------------------------------------------------------------------
// Files

export interface ArchiveFile {
  /** Absolute path. */
  path: string;
  /** Name time, ms since the epoch (UTC, whole seconds). */
  ms: number;
  worker: number;
  /** The `-<n>` suffix a second file of the same worker and second gets (0 for none). */
  seq: number;
}

const NAME = /^flows-(\d{2})(\d{2})(\d{2})-w(\d+)(?:-(\d+))?\.parquet$/;

function numericDirs(dir: string, digits: number): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "ENOTDIR")
      return [];
    throw err;
  }
  const re = new RegExp(`^\\d{${digits}}$`);
  return names.filter((n) => re.test(n)).sort();
}

/**
 * The archive's finished files (`YYYY/MM/DD/flows-HHMMSS-wN[-n].parquet`), sorted by (name time, worker,
 * n). Directory listings only: no file is opened. Throws when `dir` itself cannot be read.
 */
export function listArchiveFiles(dir: string): ArchiveFile[] {
  readdirSync(dir); // a missing or unreadable archive is an error, not an empty result
  const out: ArchiveFile[] = [];
  for (const y of numericDirs(dir, 4))
    for (const m of numericDirs(join(dir, y), 2))
      for (const d of numericDirs(join(dir, y, m), 2)) {
        const day = join(dir, y, m, d);
        let names: string[];
        try {
          names = readdirSync(day);
        } catch {
          continue; // a file named like a day directory
        }
        for (const n of names) {
          const f = NAME.exec(n);
          if (!f) continue;
          const ms = Date.UTC(Number(y), Number(m) - 1, Number(d), Number(f[1]), Number(f[2]), Number(f[3]));
          if (Number.isNaN(ms)) continue;
          out.push({
            path: join(day, n),
            ms,
            worker: Number(f[4]),
            seq: f[5] === undefined ? 0 : Number(f[5]),
          });
        }
      }
  out.sort((a, b) => a.ms - b.ms || a.worker - b.worker || a.seq - b.seq);
  return out;
}

/**
 * The files that can hold flows received in [fromMs, toMs) (either bound may be absent): a file's flows lie
 * in [its name − margin, the name of its worker's next file + margin) (module comment).
 */
export function filesForWindow(
  files: readonly ArchiveFile[],
  fromMs: number | undefined,
  toMs: number | undefined,
  marginMs: number = ARCHIVE_MARGIN_MS,
): ArchiveFile[] {
  const next = new Map<ArchiveFile, ArchiveFile>();
  const lastOf = new Map<number, ArchiveFile>();
  for (const f of files) {
    const prev = lastOf.get(f.worker);
    if (prev !== undefined) next.set(prev, f);
    lastOf.set(f.worker, f);
  }
  return files.filter((f) => {
    if (toMs !== undefined && f.ms - marginMs >= toMs) return false;
    const succ = next.get(f);
    if (fromMs !== undefined && succ !== undefined && succ.ms + marginMs <= fromMs) return false;
    return true;
  });
}

/**
 * Why `path` cannot be a complete Parquet file (too short, no "PAR1" at either end, a footer length that
 * does not fit), or null when its framing is right. Reads 4 bytes at the start and 8 at the end.
 */
export function parquetFramingProblem(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (err) {
    return `cannot open: ${(err as Error).message}`;
  }
  try {
    const size = fstatSync(fd).size;
    if (size < 12) return `${size} bytes: too short for a Parquet file (half-written or cut short?)`;
    const head = Buffer.alloc(4);
    const tail = Buffer.alloc(8);
    readSync(fd, head, 0, 4, 0);
    readSync(fd, tail, 0, 8, size - 8);
    if (head.toString("latin1") !== "PAR1") return "no Parquet magic at the start";
    if (tail.toString("latin1", 4) !== "PAR1")
      return "no Parquet magic at the end (half-written or cut short?)";
    const footer = tail.readUInt32LE(0);
    if (footer > size - 12) return `footer length ${footer} does not fit in ${size} bytes`;
    return null;
  } catch (err) {
    return `cannot read: ${(err as Error).message}`;
  } finally {
    closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------------------------
// SQL over the archive's columns (DuckDB)

/** `exporter` of the SQLite store: the sampler address, else the switch id. */
const EXPORTER = "(CASE WHEN sampler_address <> '' THEN sampler_address ELSE switch_id END)";

/** IPv4 text → its number (UBIGINT), NULL when not a dotted quad. */
const V4_MACRO =
  "CREATE OR REPLACE TEMP MACRO clarion_v4(a) AS " +
  [1, 2, 3, 4]
    .map((i, j) => `TRY_CAST(split_part(a, '.', ${i}) AS UTINYINT)::UBIGINT * ${2 ** (24 - 8 * j)}`)
    .join(" + ");

/** Number `m` and prefix length `p` → "a.b.c.d/p". */
const V4_TEXT_MACRO =
  "CREATE OR REPLACE TEMP MACRO clarion_v4_text(m, p) AS " +
  "concat(m // 16777216, '.', (m // 65536) % 256, '.', (m // 256) % 256, '.', m % 256, '/', p)";

/** IPv6 text with a dotted IPv4 tail ("::ffff:192.0.2.1") → the tail as two hex groups ("::ffff:c000:201"). */
const V6_DOTTED_MACRO =
  "CREATE OR REPLACE TEMP MACRO clarion_v6n(a) AS CASE WHEN contains(a, '.') THEN " +
  "left(a, length(a) - length(string_split(a, ':')[-1])) || lower(hex(clarion_v4(string_split(a, ':')[-1]) // 65536)) " +
  "|| ':' || lower(hex(clarion_v4(string_split(a, ':')[-1]) % 65536)) ELSE a END";

/** IPv6 text → its 8 groups as hex text, "::" expanded: "2001:db8:0:0:0:0:0:1". */
const V6_GROUPS_MACRO =
  "CREATE OR REPLACE TEMP MACRO clarion_v6x(a) AS trim(replace(clarion_v6n(a), '::', ':' || " +
  "repeat('0:', 8 - len(list_filter(string_split(clarion_v6n(a), ':'), lambda g: g <> '')))), ':')";

/** Group value `g` keeping its first `bits` bits (all for ≥ 16, none for ≤ 0). */
const MASK16_MACRO =
  "CREATE OR REPLACE TEMP MACRO clarion_mask16(g, bits) AS CASE WHEN bits >= 16 THEN g WHEN bits <= 0 THEN 0 " +
  "ELSE g & ((65535 << (16 - bits)) & 65535) END";

/** IPv6 text masked to `p` bits, as 32 hex digits. */
const V6_MASKED_MACRO =
  "CREATE OR REPLACE TEMP MACRO clarion_v6masked(a, p) AS array_to_string(list_transform(" +
  "string_split(clarion_v6x(a), ':'), lambda g, i: lpad(lower(hex(clarion_mask16(TRY_CAST('0x' || g AS INTEGER), " +
  "p - 16 * (i - 1)))), 4, '0')), '')";

/**
 * The grouping value of a `src_net`/`dst_net` key, cheap to compute per row, one value per network: NULL
 * where the SQLite sink stores NULL; "T" + the final text for IPv4 ("a.b.c.d/p"); "H" + 32 hex digits of
 * the masked IPv6 address + the length, turned into the RFC 5952 text once per group (NET_TEXT_STAGES)
 * rather than once per row.
 */
const NET_KEY_MACRO =
  "CREATE OR REPLACE TEMP MACRO clarion_netkey(a, p) AS CASE WHEN p IS NULL OR p = 0 OR a = '' THEN NULL " +
  "WHEN contains(a, ':') THEN CASE WHEN p > 128 THEN NULL ELSE 'H' || clarion_v6masked(a, p::INTEGER) || p END " +
  "WHEN p > 32 OR clarion_v4(a) IS NULL THEN NULL " +
  "ELSE 'T' || clarion_v4_text((clarion_v4(a) >> (32 - p::INTEGER)) << (32 - p::INTEGER), p) END";

/**
 * From a clarion_netkey value to the CIDR text, in steps applied once per group (each a query level over
 * the grouped rows; `$` is the previous level's value): an IPv4-mapped network in its dotted form ("T::ffff:
 * a.b.c.d/p"), else "S:g0:…:g7:/p" (groups without leading zeros, ":" at both ends); "R" + that with the first longest run of two or more zero groups replaced by "::"; "L" + that
 * without its first ":" unless it starts a "::"; the text without its last ":" unless it ends a "::". The
 * same text as networkString (GoFlow2's rendering, RFC 5952) for the same address and length.
 */
const NET_TEXT_STAGES: readonly string[] = [
  "CASE WHEN $ IS NULL OR starts_with($, 'T') THEN $ " +
    "WHEN substr($, 2, 24) = '00000000000000000000ffff' THEN 'T::ffff:' || array_to_string(list_transform(range(4), " +
    "lambda i: CAST('0x' || substr($, 26 + 2 * i, 2) AS INTEGER)), '.') || '/' || substr($, 34) " +
    "ELSE 'S:' || array_to_string(list_transform(range(8), " +
    "lambda i: lower(hex(CAST('0x' || substr($, 2 + 4 * i, 4) AS INTEGER)))), ':') || ':/' || substr($, 34) END",
  "CASE WHEN $ IS NULL OR starts_with($, 'T') THEN $ ELSE 'R' || CASE " +
    "WHEN contains($, ':0:0:0:0:0:0:0:0:') THEN regexp_replace(substr($, 2), ':0:0:0:0:0:0:0:0:', '::') WHEN contains($, ':0:0:0:0:0:0:0:') THEN regexp_replace(substr($, 2), ':0:0:0:0:0:0:0:', '::') WHEN contains($, ':0:0:0:0:0:0:') THEN regexp_replace(substr($, 2), ':0:0:0:0:0:0:', '::') WHEN contains($, ':0:0:0:0:0:') THEN regexp_replace(substr($, 2), ':0:0:0:0:0:', '::') WHEN contains($, ':0:0:0:0:') THEN regexp_replace(substr($, 2), ':0:0:0:0:', '::') WHEN contains($, ':0:0:0:') THEN regexp_replace(substr($, 2), ':0:0:0:', '::') WHEN contains($, ':0:0:') THEN regexp_replace(substr($, 2), ':0:0:', '::') ELSE substr($, 2) END END",
  "CASE WHEN $ IS NULL OR starts_with($, 'T') THEN $ " +
    "ELSE 'L' || CASE WHEN starts_with(substr($, 2), '::') THEN substr($, 2) ELSE substr($, 3) END END",
  "CASE WHEN $ IS NULL THEN NULL WHEN starts_with($, 'T') THEN substr($, 2) ELSE " +
    "CASE WHEN ends_with(split_part(substr($, 2), '/', 1), '::') THEN split_part(substr($, 2), '/', 1) " +
    "ELSE rtrim(split_part(substr($, 2), '/', 1), ':') END || '/' || split_part($, '/', 2) END",
];

/**
 * How a grouping key is computed: `raw` column expressions grouped first (per row: cheap); `fold`, when
 * present, turns one group's raw values ($0, $1) into the key's group value, and groups again (once per
 * distinct raw value: a network key masks each distinct address once, not each row); `text`: steps turning
 * the value into the key's text (NET_TEXT_STAGES).
 */
interface KeySql {
  raw: readonly string[];
  fold?: string;
  text?: readonly string[];
}

const column = (expr: string): readonly KeySql[] => [{ raw: [expr] }];
/** A member of the `extra` JSON column as text (NULL when absent); `name` is a fixed identifier, never input. */
const extraText = (name: string): string => `json_extract_string(extra, '$.${name}')`;
const network = (addr: string, len: string): readonly KeySql[] => [
  { raw: [addr, len], fold: "clarion_netkey($0, $1)", text: NET_TEXT_STAGES },
];

/** The grouping keys of top.ts over the archive's columns (conversation and sgt select two values). */
const KEY_EXPRESSIONS: Partial<Record<TopKey, readonly KeySql[]>> = {
  src_ip: column("NULLIF(src_addr, '')"),
  dst_ip: column("NULLIF(dst_addr, '')"),
  src_port: column("src_port"),
  dst_port: column("dst_port"),
  proto: column("proto"),
  exporter: column(EXPORTER),
  in_if: column("in_if"),
  out_if: column("out_if"),
  src_as: column("src_as"),
  dst_as: column("dst_as"),
  src_net: network("src_addr", "src_net"),
  dst_net: network("dst_addr", "dst_net"),
  // SQLite's MIN(a, b)/MAX(a, b) are NULL when either is: the same here.
  conversation: [
    { raw: ["(CASE WHEN src_addr = '' OR dst_addr = '' THEN NULL ELSE least(src_addr, dst_addr) END)"] },
    { raw: ["(CASE WHEN src_addr = '' OR dst_addr = '' THEN NULL ELSE greatest(src_addr, dst_addr) END)"] },
  ],
  sgt: [{ raw: ["src_sgt"] }, { raw: ["dst_sgt"] }],
  // The options-dictionary fields (issue 18) are in the archive's `extra` JSON under their JSON-lines names:
  // VRFs by name where options data named them, else by id (as text); applications by name.
  in_vrf: column(`COALESCE(${extraText("in_vrf_name")}, ${extraText("in_vrf_id")})`),
  out_vrf: column(`COALESCE(${extraText("out_vrf_name")}, ${extraText("out_vrf_id")})`),
  application: column(extraText("application_name")),
};

/** The filter's numeric fields as archive columns (src side first for pairs), as in filter.ts. */
const FILTER_COLUMNS: Partial<Record<NumericField, readonly string[]>> = {
  port: ["src_port", "dst_port"],
  as: ["src_as", "dst_as"],
  sgt: ["src_sgt", "dst_sgt"],
  if: ["in_if", "out_if"],
  proto: ["proto"],
  bytes: ["bytes"],
  packets: ["packets"],
  tos: ["ip_tos"],
  vlan: ["vlan_id"],
  icmp_type: ["icmp_type"],
  icmp_code: ["icmp_code"],
  etype: ["etype"],
};

/** Whether every `top` key can be computed over the archive (a key added to top.ts needs one here). */
export function archiveKeyMissing(): TopKey[] {
  return TOP_KEYS.filter((k) => KEY_EXPRESSIONS[k] === undefined);
}

/** A DuckDB condition and its positional parameters. */
export interface ArchiveCondition {
  sql: string;
  params: Array<number | string>;
}

function sides(dir: Dir): string[] {
  return dir === "src" ? ["src_addr"] : dir === "dst" ? ["dst_addr"] : ["src_addr", "dst_addr"];
}

function anyOf(parts: string[]): string {
  return parts.length === 1 ? parts[0]! : `(${parts.join(" OR ")})`;
}

/** IPv4 network as a number, or -1. */
function v4Number(net: Network): number {
  if (net.bytes.length !== 4) return -1;
  const b = net.bytes;
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

/**
 * `column` (IPv6 text) in the IPv6 network. Expanding an address in SQL costs ~2-5 µs a row, so where the
 * network's leading whole 16-bit groups are all non-zero the text itself answers: an address has those
 * first groups exactly when its text (RFC 5952, as stored) starts with them and a ":" (a non-zero group is
 * never compressed); the next field of the text is then the next group ("" when a "::" starts there: 0),
 * whose range a partial prefix bounds. Networks with a zero among their whole leading groups (rare) take
 * the expansion.
 */
function v6Network(column: string, net: Network, params: Array<number | string>): string {
  const b = net.bytes;
  const p = net.prefix;
  if (p === 0) return `contains(${column}, ':')`;
  const groups = Array.from({ length: 8 }, (_x, i) => (b[2 * i]! << 8) | b[2 * i + 1]!);
  const lead = groups.slice(0, Math.floor(p / 16));
  if (lead.includes(0)) {
    params.push(p, Buffer.from(b).toString("hex"));
    return `COALESCE(contains(${column}, ':') AND clarion_v6masked(${column}, CAST(? AS INTEGER)) = ?, false)`;
  }
  if (lead.length === 8) {
    params.push(ipv6(b, 0));
    return `${column} = ?`;
  }
  const parts: string[] = [];
  if (lead.length === 0) parts.push(`contains(${column}, ':')`);
  else {
    params.push(`${lead.map((g) => g.toString(16)).join(":")}:`);
    parts.push(`starts_with(${column}, ?)`);
  }
  const bits = p % 16;
  if (bits !== 0) {
    const lo = groups[lead.length]!;
    params.push(lead.length + 1, lo, lo | (0xffff >> bits));
    parts.push(
      `COALESCE(TRY_CAST('0x' || NULLIF(split_part(${column}, ':', CAST(? AS INTEGER)), '') AS INTEGER), 0) BETWEEN CAST(? AS INTEGER) AND CAST(? AS INTEGER)`,
    );
  }
  return `COALESCE(${parts.join(" AND ")}, false)`;
}

/**
 * Compiles a filter AST (src/query/filter.ts) to a DuckDB condition over the archive's columns, with the
 * meaning of `toSql` over the SQLite store: every term is TRUE or FALSE (never NULL), absent numbers are 0,
 * an absent address ("") matches no host or net. Throws TopQueryError for a field with no archive column.
 */
export function toArchiveSql(node: FilterNode): ArchiveCondition {
  const params: Array<number | string> = [];
  const walk = (n: FilterNode): string => {
    switch (n.kind) {
      case "and":
      case "or":
        return `(${walk(n.left)} ${n.kind.toUpperCase()} ${walk(n.right)})`;
      case "not":
        return `(NOT ${walk(n.operand)})`;
      case "num": {
        const cols = FILTER_COLUMNS[n.field];
        if (cols === undefined)
          throw new TopQueryError(`the filter term "${n.field}" is not available over the archive`);
        const chosen = cols.length === 1 || n.dir === "any" ? cols : [n.dir === "src" ? cols[0]! : cols[1]!];
        return anyOf(
          chosen.map((c) => {
            params.push(n.value);
            return `COALESCE(${c}, 0) ${n.op} CAST(? AS UBIGINT)`;
          }),
        );
      }
      case "host":
        return anyOf(
          sides(n.dir).map((c) => {
            params.push(n.address);
            return `${c} = ?`;
          }),
        );
      case "net": {
        const v4 = v4Number(n.network);
        return anyOf(
          sides(n.dir).map((c) => {
            if (v4 >= 0) {
              const shift = 32 - n.network.prefix;
              params.push(shift, Math.floor(v4 / 2 ** shift));
              return `COALESCE(NOT contains(${c}, ':') AND (clarion_v4(${c}) >> CAST(? AS INTEGER)) = CAST(? AS UBIGINT), false)`;
            }
            return v6Network(c, n.network, params);
          }),
        );
      }
      case "exporter":
        params.push(n.value);
        return `${EXPORTER} = ?`;
      case "name": {
        // From `extra` (see KEY_EXPRESSIONS); COALESCE keeps every term TRUE or FALSE when the member is absent.
        const { names, ids } = nameColumns(n.field, n.dir);
        const parts = names.map((c) => {
          params.push(n.value);
          return `COALESCE(${extraText(c)} = ?, false)`;
        });
        if (n.id !== null)
          for (const c of ids) {
            params.push(n.id);
            parts.push(`COALESCE(TRY_CAST(${extraText(c)} AS BIGINT) = ?, false)`);
          }
        return parts.length === 1 ? parts[0]! : `(${parts.join(" OR ")})`;
      }
    }
  };
  return { sql: walk(node), params };
}

// ---------------------------------------------------------------------------------------------------------
// The engine

type DuckDB = typeof import("@duckdb/node-api");

let engine: Promise<DuckDB> | null = null;

/** Imports DuckDB (once, unless `importer` replaces the import); a missing package is a TopQueryError naming it. */
export function loadArchiveEngine(importer?: () => Promise<DuckDB>): Promise<DuckDB> {
  if (importer === undefined) {
    engine ??= loadArchiveEngine(() => import("@duckdb/node-api")).catch((err: unknown) => {
      engine = null;
      throw err;
    });
    return engine;
  }
  return importer().catch((err: unknown) => {
    const code = (err as NodeJS.ErrnoException)?.code;
    if (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND")
      throw new TopQueryError(
        `querying the archive needs the npm package ${ARCHIVE_ENGINE_PACKAGE} (an optional dependency of clarion-collector that is not installed here): npm install ${ARCHIVE_ENGINE_PACKAGE}`,
      );
    throw new TopQueryError(
      `cannot load ${ARCHIVE_ENGINE_PACKAGE} (needed to query the archive): ${(err as Error)?.message ?? err}`,
    );
  });
}

async function prepareConnection(con: DuckDBConnection): Promise<void> {
  for (const macro of [
    V4_MACRO,
    V4_TEXT_MACRO,
    V6_DOTTED_MACRO,
    V6_GROUPS_MACRO,
    MASK16_MACRO,
    V6_MASKED_MACRO,
    NET_KEY_MACRO,
  ])
    await con.run(macro);
}

/** A file left out of the query and why. */
export interface SkippedFile {
  path: string;
  reason: string;
}

export interface ArchiveTopResult extends TopResult {
  /** The archive directory. */
  archive: string;
  /** Finished files in the archive, files whose names can overlap the window (opened), files skipped. */
  files: { total: number; selected: number; read: number };
  skipped: SkippedFile[];
}

export interface ArchiveTopOptions {
  marginMs?: number;
}

function quote(path: string): string {
  return `'${path.replace(/'/g, "''")}'`;
}

/** The most damaged files one query looks for before it gives up with the engine's error. */
const MAX_DAMAGED = 16;

/**
 * The files that make `run` fail with `err`: the one the error names, else found by halving the list (a
 * footer or page DuckDB cannot decode does not always name its file). Throws a TopQueryError with the
 * engine's message when the failure is not a file's (no single file fails, or too many do; with one file
 * selected it cannot tell, and the error names that file).
 */
async function damagedFiles(
  run: (files: string[]) => Promise<unknown>,
  paths: string[],
  err: unknown,
): Promise<SkippedFile[]> {
  const message = (e: unknown) => ((e as Error)?.message ?? String(e)).replace(/\s+/g, " ").trim();
  const fail = (): never => {
    throw new TopQueryError(
      `cannot query the archive${paths.length === 1 ? ` (${paths[0]})` : ""}: ${message(err)}`,
    );
  };
  const named = paths.find((p) => message(err).includes(`'${p}'`) || message(err).includes(`"${p}"`));
  if (named !== undefined) return [{ path: named, reason: message(err) }];
  const bad: SkippedFile[] = [];
  const search = async (set: string[]): Promise<void> => {
    try {
      await run(set);
    } catch (e) {
      if (set.length === 1) {
        bad.push({ path: set[0]!, reason: message(e) });
        if (bad.length > MAX_DAMAGED) fail();
        return;
      }
      const half = Math.ceil(set.length / 2);
      await search(set.slice(0, half));
      await search(set.slice(half));
    }
  };
  if (paths.length > 1) await search(paths);
  // nothing, or everything, failing alone: the query, not a file, is the problem
  if (bad.length === 0 || (bad.length === paths.length && paths.length > 1)) fail();
  return bad;
}

// One DuckDB instance and connection per process, made at the first archive query (the CLI runs one query;
// the tests and a long-lived caller run many): ~0.25 s to create, with our macros defined once.
let shared: Promise<{ close(): void; con: DuckDBConnection }> | null = null;

function connection(): Promise<DuckDBConnection> {
  shared ??= (async () => {
    const duck = await loadArchiveEngine();
    // spills of a large grouping go to the system temp directory, not to ./.tmp of the caller
    const temp = join(tmpdir(), `clarion-top-duckdb-${process.pid}`);
    const db = await duck.DuckDBInstance.create(":memory:", { temp_directory: temp });
    const con = await db.connect();
    await prepareConnection(con);
    return {
      con,
      close() {
        con.closeSync();
        db.closeSync();
        rmSync(temp, { recursive: true, force: true });
      },
    };
  })().catch((err: unknown) => {
    shared = null;
    throw err;
  });
  return shared.then((s) => s.con);
}

/** Closes the shared DuckDB instance (if any); the next archive query opens a new one. */
export async function closeArchiveEngine(): Promise<void> {
  const s = shared;
  shared = null;
  if (s !== null) (await s.catch(() => null))?.close();
}

/**
 * Runs the top-N query of `q` (the TopQuery of src/query/top.ts) over the archive in `dir`. Throws
 * FilterError for a bad filter and TopQueryError for bad input, a missing archive or engine, or a query
 * that fails for another reason than a damaged file.
 */
export async function runArchiveTop(
  dir: string,
  q: TopQuery,
  opts: ArchiveTopOptions = {},
): Promise<ArchiveTopResult> {
  if (q.by.length === 0) throw new TopQueryError("--by needs at least one key");
  for (const k of q.by) {
    if (!TOP_KEYS.includes(k)) throw new TopQueryError(`unknown key "${k}" (known: ${TOP_KEYS.join(", ")})`);
    if (KEY_EXPRESSIONS[k] === undefined)
      throw new TopQueryError(`the key "${k}" is not available over the archive`);
  }
  if (!TOP_ORDERS.includes(q.order))
    throw new TopQueryError(`unknown order "${q.order}" (known: ${TOP_ORDERS.join(", ")})`);
  if (!Number.isInteger(q.limit) || q.limit < 1 || q.limit > MAX_TOP_LIMIT)
    throw new TopQueryError(`-n must be an integer from 1 to ${MAX_TOP_LIMIT}`);
  const filter =
    q.filter !== undefined && q.filter.trim() !== "" ? toArchiveSql(parseFilter(q.filter)) : null;
  const fromMs = q.fromMs === undefined ? undefined : Math.floor(q.fromMs);
  const toMs = q.toMs === undefined ? undefined : Math.floor(q.toMs);
  // the bound goes into the SQL as nanoseconds in an int64
  for (const t of [fromMs, toMs])
    if (t !== undefined && !(Number.isSafeInteger(t) && Math.abs(t) < 9e12))
      throw new TopQueryError(`time out of range: ${t} ms`);

  let all: ArchiveFile[];
  try {
    all = listArchiveFiles(dir);
  } catch (err) {
    throw new TopQueryError(`cannot read the archive ${dir}: ${(err as Error).message}`);
  }
  const selected = filesForWindow(all, fromMs, toMs, opts.marginMs);
  const skipped: SkippedFile[] = [];
  let paths: string[] = [];
  for (const f of selected) {
    const problem = parquetFramingProblem(f.path);
    if (problem === null) paths.push(f.path);
    else skipped.push({ path: f.path, reason: problem });
  }

  const scale = q.scale ?? true;
  const result: ArchiveTopResult = {
    by: q.by,
    order: q.order,
    rows: [],
    total: { bytes: 0, packets: 0, flows: 0 },
    sampled: false,
    scaled: false,
    maxSamplingRate: 0,
    fromMs: fromMs ?? null,
    toMs: toMs ?? null,
    firstMs: null,
    lastMs: null,
    archive: dir,
    files: { total: all.length, selected: selected.length, read: 0 },
    skipped,
  };
  if (paths.length === 0) return result;

  const con = await connection();
  const conds: string[] = [];
  const params: Array<number | string> = [];
  // Window bounds as literals (numbers computed above): DuckDB skips row groups by their statistics.
  if (fromMs !== undefined) conds.push(`time_received >= make_timestamp_ns(${fromMs}000000)`);
  if (toMs !== undefined) conds.push(`time_received < make_timestamp_ns(${toMs}000000)`);
  if (q.exporter !== undefined && q.exporter !== "") {
    conds.push(`${EXPORTER} = ?`);
    params.push(q.exporter);
  }
  if (filter !== null) {
    conds.push(filter.sql);
    params.push(...filter.params);
  }
  // scaled: sum(c × max(rate, 1)) as sum(c) + sum(c × (rate − 1)) over the sampled rows only, exact in
  // 128 bits, and no multiplication for the (usual) unsampled rows
  const sum = (c: string): string =>
    scale
      ? `(sum(${c}) + COALESCE(sum(CASE WHEN sampling_rate > 1 THEN ${c}::HUGEINT * (sampling_rate - 1) END), 0))`
      : `sum(${c})`;
  const bytes = sum("bytes");
  const packets = sum("packets");
  const cols: KeySql[] = [];
  for (const k of q.by) cols.push(...KEY_EXPRESSIONS[k]!);
  const rawCols = cols.flatMap((c, i) =>
    c.raw.map((e, j) => ({ expr: e, name: c.fold ? `r${i}_${j}` : `k${i}` })),
  );
  const groups = cols.map((_c, i) => `k${i}`).join(", ");
  const sums = "s_bytes, s_packets, s_flows, m_rate, m_first, m_last";
  const order = { bytes: "s_bytes", packets: "s_packets", flows: "s_flows" }[q.order];
  const run = async (files: string[]): Promise<Record<string, unknown>[]> => {
    // the groups of raw values; folded into key values and grouped again; the steps that turn values into
    // key text; then the order and the window's totals
    let sql =
      `SELECT ${rawCols.map((r) => `${r.expr} AS ${r.name}`).join(", ")}, ${bytes} AS s_bytes, ${packets} AS s_packets, ` +
      "count(*) AS s_flows, max(sampling_rate) AS m_rate, min(time_received) AS m_first, max(time_received) AS m_last " +
      `FROM read_parquet([${files.map(quote).join(", ")}]) ${conds.length ? `WHERE ${conds.join(" AND ")}` : ""} ` +
      `GROUP BY ${rawCols.map((r) => r.name).join(", ")}`;
    if (cols.some((c) => c.fold))
      sql =
        `SELECT ${cols.map((c, i) => (c.fold ? `${c.fold.replace(/\$(\d)/g, (_m, j) => `r${i}_${j}`)} AS k${i}` : `k${i}`)).join(", ")}, ` +
        "sum(s_bytes) AS s_bytes, sum(s_packets) AS s_packets, sum(s_flows) AS s_flows, max(m_rate) AS m_rate, " +
        `min(m_first) AS m_first, max(m_last) AS m_last FROM (${sql}) GROUP BY ${groups}`;
    const steps = Math.max(...cols.map((c) => c.text?.length ?? 0));
    for (let j = 0; j < steps; j++)
      sql = `SELECT ${cols.map((c, i) => (j < (c.text?.length ?? 0) ? `${c.text![j]!.replaceAll("$", `k${i}`)} AS k${i}` : `k${i}`)).join(", ")}, ${sums} FROM (${sql})`;
    sql =
      `SELECT ${groups}, s_bytes, s_packets, s_flows, sum(s_bytes) OVER () AS t_bytes, sum(s_packets) OVER () AS t_packets, ` +
      "sum(s_flows) OVER () AS t_flows, max(m_rate) OVER () AS t_rate, epoch_ms(min(m_first) OVER ()) AS t_first, " +
      `epoch_ms(max(m_last) OVER ()) AS t_last FROM (${sql}) ` +
      `ORDER BY ${order} DESC, ${cols.map((_c, i) => `k${i} ASC NULLS FIRST`).join(", ")} LIMIT ${q.limit}`;
    return (await con.runAndReadAll(sql, params)).getRowObjects() as Record<string, unknown>[];
  };
  let raw: Record<string, unknown>[] | null = null;
  while (raw === null) {
    try {
      raw = await run(paths);
    } catch (err) {
      const bad = await damagedFiles(run, paths, err);
      skipped.push(...bad);
      paths = paths.filter((p) => !bad.some((b) => b.path === p));
      if (paths.length === 0) return result;
    }
  }
  result.files.read = paths.length;
  result.rows = raw.map((r): TopRow => {
    const key: Record<string, string | number | null> = {};
    const labels: string[] = [];
    let i = 0;
    for (const k of q.by) {
      const a = r[`k${i}`];
      if (KEY_EXPRESSIONS[k]!.length === 2) {
        const text = labelOf(k, a, r[`k${i + 1}`]);
        key[k] = text;
        labels.push(text);
        i += 2;
      } else {
        key[k] = keyValue(a);
        labels.push(labelOf(k, a, null));
        i += 1;
      }
    }
    return {
      key,
      labels,
      bytes: Number(r.s_bytes),
      packets: Number(r.s_packets),
      flows: Number(r.s_flows),
    };
  });
  const first = raw[0];
  if (first !== undefined) {
    const rate = Number(first.t_rate ?? 0);
    result.total = {
      bytes: Number(first.t_bytes),
      packets: Number(first.t_packets),
      flows: Number(first.t_flows),
    };
    result.maxSamplingRate = rate;
    result.sampled = rate > 1;
    result.scaled = scale && rate > 1;
    result.firstMs = first.t_first === null ? null : Number(first.t_first);
    result.lastMs = first.t_last === null ? null : Number(first.t_last);
  }
  return result;
}
