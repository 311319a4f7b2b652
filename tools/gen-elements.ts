/**
 * Generates src/protocols/elements.generated.ts from the information element data files:
 *   tools/data/iana-ipfix-information-elements.csv  (IANA "IPFIX Information Elements" registry)
 *   tools/data/vendor-elements.csv                  (NetFlow v9 vendor field types, enterprise elements)
 * See tools/data/README.md for where the data comes from.
 *
 * Usage: node tools/gen-elements.ts [output-path]
 * (default output: src/protocols/elements.generated.ts). The output is deterministic, so a test can
 * regenerate into a temporary file and compare.
 */

import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ABSTRACT_TYPES as ABSTRACT_TYPES_LIST } from "../src/protocols/abstract-types.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const IANA_CSV = join(ROOT, "tools/data/iana-ipfix-information-elements.csv");
const VENDOR_CSV = join(ROOT, "tools/data/vendor-elements.csv");
const DEFAULT_OUT = join(ROOT, "src/protocols/elements.generated.ts");

const ABSTRACT_TYPES: ReadonlySet<string> = new Set(ABSTRACT_TYPES_LIST);

/**
 * Registry types the decoders have no dedicated handling for, mapped to the type they are decoded as.
 * unsigned256 (RFC 9740, used by flag IEs 515/520/525) is a big-endian bit field that may use
 * reduced-size encoding: it is kept as raw bytes.
 */
const TYPE_ALIASES: Record<string, string> = { unsigned256: "octetArray" };

/** RFC 4180 CSV: quoted fields may hold commas, doubled quotes and newlines. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else field += c;
  }
  if (field !== "" || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

function column(header: string[] | undefined, ...names: string[]): number {
  if (header === undefined) throw new Error("empty table: no header row");
  for (const n of names) {
    const i = header.indexOf(n);
    if (i >= 0) return i;
  }
  throw new Error(`column ${names.join(" / ")} not found in ${header.join(",")}`);
}

/** A row's cell; a short row reads as empty cells, which the checks below refuse with the row's name. */
function cell(row: string[], i: number): string {
  return row[i] ?? "";
}

function checkType(raw: string, where: string): string {
  const t = TYPE_ALIASES[raw] ?? raw;
  if (!ABSTRACT_TYPES.has(t)) throw new Error(`${where}: unknown abstract data type "${raw}"`);
  return t;
}

type Row = [pen: number, id: number, name: string, type: string];

export function readIana(text: string): Row[] {
  const [header, ...rows] = parseCsv(text).filter((r) => r.length > 1 || r[0] !== "");
  const cId = column(header, "ElementID");
  const cName = column(header, "Name");
  const cType = column(header, "Abstract Data Type", "Data Type");
  const out: Row[] = [];
  const seen = new Set<number>();
  for (const r of rows) {
    const idText = cell(r, cId).trim();
    const name = cell(r, cName).trim();
    const type = cell(r, cType).trim();
    // Ranges ("105-127", "534-32767") are unassigned or kept for NetFlow v9; rows without a type are
    // reserved or withdrawn (0, 416, 419).
    if (!/^\d+$/.test(idText) || name === "" || type === "") continue;
    const id = Number(idText);
    if (id < 1 || id > 32767) throw new Error(`IANA element id out of range: ${idText}`);
    if (seen.has(id)) throw new Error(`IANA element ${id} listed twice`);
    if (!/^[A-Za-z][A-Za-z0-9]*$/.test(name)) throw new Error(`IANA element ${id}: odd name "${name}"`);
    seen.add(id);
    out.push([0, id, name, checkType(type, `IANA element ${id}`)]);
  }
  return out.sort((a, b) => a[1] - b[1]);
}

export function readVendor(text: string): Row[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== "" && !l.startsWith("#"));
  const [header, ...rows] = parseCsv(lines.join("\n"));
  const cPen = column(header, "PEN");
  const cId = column(header, "ElementID");
  const cName = column(header, "Name");
  const cType = column(header, "Abstract Data Type");
  const out: Row[] = [];
  const seen = new Set<string>();
  for (const r of rows) {
    const pen = Number(cell(r, cPen));
    const id = Number(cell(r, cId));
    const name = cell(r, cName).trim();
    const where = `vendor element ${cell(r, cPen)}/${cell(r, cId)}`;
    if (!Number.isInteger(pen) || pen < 0 || pen > 0xffffffff) throw new Error(`${where}: bad PEN`);
    // pen 0 rows are NetFlow v9 field types (16 bits); enterprise element ids are 15 bits.
    if (!Number.isInteger(id) || id < 1 || id > (pen === 0 ? 0xffff : 0x7fff)) {
      throw new Error(`${where}: bad id`);
    }
    if (name === "" || /[\s",\\]/.test(name)) throw new Error(`${where}: bad name "${name}"`);
    if (pen === 29305) throw new Error(`${where}: PEN 29305 (RFC 5103) is derived from the IANA table`);
    const key = `${pen}/${id}`;
    if (seen.has(key)) throw new Error(`${where}: listed twice`);
    seen.add(key);
    out.push([pen, id, name, checkType(cell(r, cType).trim(), where)]);
  }
  return out.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
}

export function render(iana: Row[], vendor: Row[]): string {
  const ianaIds = new Set(iana.map((r) => r[1]));
  for (const [pen, id] of vendor) {
    if (pen === 0 && ianaIds.has(id)) {
      throw new Error(`NetFlow v9 vendor type ${id} collides with an assigned IANA element`);
    }
  }
  const perPen = new Map<number, number>();
  for (const [pen] of vendor) perPen.set(pen, (perPen.get(pen) ?? 0) + 1);
  const counts = [...perPen].map(([pen, n]) => `${pen}: ${n}`).join(", ");
  const row = (r: Row) => `[${r[1]},${JSON.stringify(r[2])},${JSON.stringify(r[3])}]`;
  const vrow = (r: Row) => `[${r[0]},${r[1]},${JSON.stringify(r[2])},${JSON.stringify(r[3])}]`;
  return [
    "// generated by tools/gen-elements.ts, do not edit.",
    "// Sources: tools/data/iana-ipfix-information-elements.csv, tools/data/vendor-elements.csv",
    "// (provenance in tools/data/README.md). Regenerate: node tools/gen-elements.ts",
    `// IANA elements: ${iana.length}. Vendor elements per PEN (0 = NetFlow v9 field type): ${counts}.`,
    'import type { AbstractType } from "./elements.ts";',
    "",
    "/** IANA IPFIX information elements: [elementId, name, abstract data type], sorted by id. */",
    "export const IANA_ELEMENTS: ReadonlyArray<readonly [number, string, AbstractType]> = [",
    ...iana.map((r) => `${row(r)},`),
    "];",
    "",
    "/** Vendor elements: [pen, id, name, abstract data type]; pen 0 = NetFlow v9 field type. */",
    "export const VENDOR_ELEMENTS: ReadonlyArray<readonly [number, number, string, AbstractType]> = [",
    ...vendor.map((r) => `${vrow(r)},`),
    "];",
    "",
  ].join("\n");
}

export function generate(): string {
  return render(readIana(readFileSync(IANA_CSV, "utf8")), readVendor(readFileSync(VENDOR_CSV, "utf8")));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = resolve(process.argv[2] ?? DEFAULT_OUT);
  writeFileSync(out, generate());
  process.stdout.write(`wrote ${out}\n`);
}
