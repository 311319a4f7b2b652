/**
 * Golden files (akvorado-style): what the decoders and the GoFlow2 encoder produce for fixed inputs, kept
 * under test/fixtures/golden/ and compared by test/protocols/golden.test.ts and test/encode/goflow2.test.ts.
 *
 * - `corpus/<case>.jsonl`, one per case of the logstash corpus (test/fixtures/logstash, fed as corpus.test.ts
 *   feeds it: one decoder per case, exporter 192.0.2.10, fixed clocks). Line 1 is the decoder's state after
 *   the case: its stats (flows, templates learned, errors by reason, ...), the exporter counters, the
 *   template and held-set counts and the DecodeErrors thrown. Then one line per record in decode order:
 *   `{"at":"<file>#<datagram>","record":"flow",...}` with the normalized FlowRecord's fields that differ from
 *   a fresh FlowRecord (addresses as text, bigints as "<digits>n"), keys sorted; options records likewise.
 * - `goflow2/corpus.jsonl`: the GoFlow2 JSON lines of the first flows of every corpus case;
 *   `goflow2/crafted.jsonl`: those of the crafted records of test/helpers/goflow2-records.ts.
 * - `sqlite/columnar.txt`: the sqlite output's columnar batches (src/sinks/sqlite/columnar.ts) of every
 *   corpus flow then every crafted record, cut every SQLITE_GOLDEN_BATCH records by one encoder (so its
 *   caches carry over between batches), one base64 line per batch.
 *
 * Regenerate after an intended change of the decoded output (new fields, fixes) with one command, then
 * review the diff: `node tools/golden.ts --write` (without `--write` it only reports what differs).
 */
import { FlowRecord } from "../../src/core/flow.ts";
import { Goflow2Writer } from "../../src/encode/goflow2.ts";
import { createSqliteEncoder } from "../../src/sinks/sqlite/columnar.ts";
import { type CorpusCase, decodeCase, loadCorpus } from "./corpus.ts";
import { CRAFTED } from "./goflow2-records.ts";

export { type CorpusCase, loadCorpus };

export const GOLDEN_DIR = new URL("../fixtures/golden/", import.meta.url);

/** The file name of a case's golden file: its name in lower case, runs of other characters as "-". */
export function caseFile(c: CorpusCase): string {
  return `${c.name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-|-$/g, "")}.jsonl`;
}

const DEFAULTS = new FlowRecord() as unknown as Record<string, unknown>;
/** The in-memory forms of the addresses; the normalized record has their text (src_addr, ...) instead. */
const INTERNAL = new Set([
  "src_v4",
  "dst_v4",
  "next_hop_v4",
  "bgp_next_hop_v4",
  "src_addr_text",
  "dst_addr_text",
  "next_hop_text",
  "bgp_next_hop_text",
]);

/** JSON with bigints as "<digits>n" and top-level keys in the given order. */
function stringify(o: Record<string, unknown>): string {
  return JSON.stringify(o, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v));
}

function sortedKeys(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o).sort()) {
    const v = o[k];
    out[k] =
      v !== null && typeof v === "object" && !Array.isArray(v) ? sortedKeys(v as Record<string, unknown>) : v;
  }
  return out;
}

/** A flow as the golden files hold it: the fields that differ from a fresh FlowRecord, sorted by name. */
export function normalizedFlow(r: FlowRecord): Record<string, unknown> {
  const view: Record<string, unknown> = {
    ...r,
    src_addr: r.src_addr,
    dst_addr: r.dst_addr,
    next_hop: r.next_hop,
    bgp_next_hop: r.bgp_next_hop,
  };
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(view).sort()) {
    if (INTERNAL.has(k)) continue;
    const v = view[k];
    const d =
      k in DEFAULTS ? DEFAULTS[k] : k === "src_addr" || k === "dst_addr" || k === "next_hop" ? "" : undefined;
    if (Object.is(v, d)) continue;
    out[k] = v; // `extra` keeps its (wire) order
  }
  return out;
}

/** The golden text of one corpus case (see the module comment). */
export function caseGolden(c: CorpusCase): string {
  const { records, decoder, thrown } = decodeCase(c);
  const lines = [
    stringify({
      case: c.name,
      stats: sortedKeys({ ...decoder.stats }),
      exporters: decoder.exporters().map((e) => sortedKeys({ ...e })),
      templates: decoder.templateCount(),
      held: decoder.heldCount(),
      thrown,
    }),
  ];
  for (const { at, flow, options } of records) {
    if (flow !== null) lines.push(stringify({ at, record: "flow", ...normalizedFlow(flow) }));
    else if (options !== null) {
      // scope and values keep their (wire) order
      const { elements: _e, scope, values, ...rest } = options;
      lines.push(stringify({ at, record: "options", ...sortedKeys(rest), scope, values }));
    }
  }
  return `${lines.join("\n")}\n`;
}

/** Flows per case whose GoFlow2 lines go into goflow2/corpus.jsonl. */
export const GOFLOW2_PER_CASE = 4;

/** goflow2/corpus.jsonl: the GoFlow2 lines of the first flows of each case, one writer per case. */
export function goflow2CorpusGolden(corpus: readonly CorpusCase[] = loadCorpus()): string {
  let text = "";
  for (const c of corpus) {
    const flows = decodeCase(c)
      .records.filter((r) => r.flow !== null)
      .slice(0, GOFLOW2_PER_CASE)
      .map((r) => r.flow!);
    text += new TextDecoder().decode(new Goflow2Writer().lines(flows));
  }
  return text;
}

/** goflow2/crafted.jsonl: the GoFlow2 lines of the crafted records, in order. */
export function goflow2CraftedGolden(): string {
  return new TextDecoder().decode(new Goflow2Writer().lines(CRAFTED.map(([, make]) => make())));
}

/** Records per batch of sqlite/columnar.txt (not a divisor of the record count: the last batch is short). */
export const SQLITE_GOLDEN_BATCH = 97;

/** The records of sqlite/columnar.txt, in order: every corpus flow, then every crafted record. */
export function sqliteGoldenRecords(corpus: readonly CorpusCase[] = loadCorpus()): FlowRecord[] {
  const flows: FlowRecord[] = [];
  for (const c of corpus) for (const r of decodeCase(c).records) if (r.flow !== null) flows.push(r.flow);
  for (const [, make] of CRAFTED) flows.push(make());
  return flows;
}

/** sqlite/columnar.txt: one base64 line per columnar batch (see the module comment). */
export function sqliteColumnarGolden(corpus: readonly CorpusCase[] = loadCorpus()): string {
  const records = sqliteGoldenRecords(corpus);
  const enc = createSqliteEncoder("sqlite:golden");
  let text = "";
  for (let i = 0; i < records.length; i += SQLITE_GOLDEN_BATCH) {
    const batch = enc.encode(records.slice(i, i + SQLITE_GOLDEN_BATCH));
    text += `${Buffer.from(batch.parts[0]!.data).toString("base64")}\n`;
  }
  return text;
}

/** Every golden file: path under GOLDEN_DIR → expected contents. */
export function goldenFiles(): Map<string, string> {
  const files = new Map<string, string>();
  const corpus = loadCorpus();
  for (const c of corpus) {
    const name = `corpus/${caseFile(c)}`;
    if (files.has(name)) throw new Error(`two corpus cases map to ${name}: rename one in caseFile`);
    files.set(name, caseGolden(c));
  }
  files.set("goflow2/corpus.jsonl", goflow2CorpusGolden(corpus));
  files.set("goflow2/crafted.jsonl", goflow2CraftedGolden());
  files.set("sqlite/columnar.txt", sqliteColumnarGolden(corpus));
  return files;
}

/**
 * Where two golden texts first differ: the line, and in it the first field whose value differs (numbers
 * compared by their exact text), as "line N: field: expected X, got Y"; null when they are equal.
 */
export function firstDifference(expected: string, actual: string): string | null {
  if (expected === actual) return null;
  const e = expected.split("\n");
  const a = actual.split("\n");
  for (let i = 0; i < Math.max(e.length, a.length); i++) {
    if (e[i] === a[i]) continue;
    if (e[i] === undefined || a[i] === undefined)
      return `line ${i + 1}: expected ${e[i] === undefined ? "no line" : e[i]}, got ${a[i] === undefined ? "no line" : a[i]}`;
    const field = fieldDifference(parseExact(e[i]!), parseExact(a[i]!), "");
    return `line ${i + 1}: ${field ?? "same fields, different text"}\n  expected: ${e[i]}\n  actual:   ${a[i]}`;
  }
  return "different text";
}

/** JSON with every number kept as its exact source text ("#<text>"), so 2^64−1 and 2^64 differ. */
function parseExact(line: string): unknown {
  try {
    return JSON.parse(line, (_k, v: unknown, ctx?: { source?: string }) =>
      typeof v === "number" ? `#${ctx?.source ?? v}` : v,
    );
  } catch {
    return line;
  }
}

function show(v: unknown): string {
  if (v === undefined) return "(absent)";
  const s = JSON.stringify(v);
  return typeof v === "string" && v.startsWith("#") ? v.slice(1) : s;
}

function fieldDifference(e: unknown, a: unknown, path: string): string | null {
  if (e !== null && a !== null && typeof e === "object" && typeof a === "object") {
    const keys = [...new Set([...Object.keys(e), ...Object.keys(a)])];
    const ek = Object.keys(e);
    const ak = Object.keys(a);
    for (const k of keys) {
      const d = fieldDifference(
        (e as Record<string, unknown>)[k],
        (a as Record<string, unknown>)[k],
        path ? `${path}.${k}` : k,
      );
      if (d !== null) return d;
    }
    if (ek.join() !== ak.join())
      return `${path || "keys"}: expected key order ${ek.join(",")}, got ${ak.join(",")}`;
    return null;
  }
  return e === a ? null : `${path || "value"}: expected ${show(e)}, got ${show(a)}`;
}
