/**
 * The flow filter language of `top`, `tail` and `/ui`: a small expression language close to nfdump's and
 * tcpdump's words, parsed into an AST, then compiled either to a parameterized SQL condition over the
 * SQLite `flows` table (values only ever travel as `?` parameters, never pasted into the SQL text) or to a
 * JavaScript predicate over a row object with the same column names (the live tail). Both compilations
 * give the same answer for the same row (test/query/filter.test.ts checks them against each other).
 *
 * Grammar (keywords case-insensitive; `and`/`or`/`not` also `&&`/`||`/`!`):
 *   expr    := and ( "or" and )*
 *   and     := unary ( "and" unary )*
 *   unary   := "not" unary | "(" expr ")" | term
 *   term    := [dir] ("host" | "ip") ADDRESS
 *            | [dir] "net" ADDRESS "/" LEN          (also ADDRESS alone after "net": a host route)
 *            | [dir] ("port" | "as" | "sgt") [cmp] NUMBER
 *            | ("in_if" | "out_if" | "if") [cmp] NUMBER      ("in if", "out if" too, as nfdump writes)
 *            | ("in_vrf" | "out_vrf" | "vrf") VALUE          ("in vrf", "out vrf" too)
 *            | ("app" | "application") VALUE
 *            | "proto" (NAME | [cmp] NUMBER) | "tcp" | "udp" | "icmp" | "icmp6" | "gre" | "esp" | "sctp" ...
 *            | ("bytes" | "packets" | "tos" | "vlan" | "icmp_type" | "icmp_code") [cmp] NUMBER
 *            | "exporter" (ADDRESS | NAME)
 *            | "ipv4" | "ipv6" | "inet" | "inet6"
 *   dir     := "src" | "dst"            (absent: either side matches)
 *   cmp     := "=" | "==" | "!=" | "<" | "<=" | ">" | ">=" | "eq" | "ne" | "lt" | "le" | "gt" | "ge"
 *   NUMBER  := decimal digits, for bytes/packets with an optional k, m, g suffix (×1000, ×10^6, ×10^9)
 *   VALUE   := a word (letters, digits and _ . : / -), compared exactly (case-sensitive)
 *
 * Meaning: a term without `src`/`dst` is true when either side matches (`port 53` = `src port 53 or dst
 * port 53`, also for `!=`, so "neither side is 53" is `not port 53`). Absent numeric values (SQLite NULL)
 * compare as 0; an absent address matches no host or net. Every term is true or false, never NULL, so `not`
 * is the plain complement. bytes/packets compare the stored counters (not scaled by sampling). A VRF
 * matches by its name (from options data) or, for a VALUE of digits, by its id too (`vrf 0`: the default
 * VRF, named or not); an application by its name; absent names and ids match nothing.
 */

import type { DatabaseSync } from "node:sqlite";
import { addressText, inNetwork, maskAddress, type Network, parseAddress } from "./address.ts";

/** A filter that does not parse: `position` is the 0-based offset in the text, `length` the span. */
export class FilterError extends Error {
  readonly position: number;
  readonly length: number;
  constructor(message: string, position: number, length = 1) {
    super(message);
    this.name = "FilterError";
    this.position = position;
    this.length = Math.max(1, length);
  }
}

/** The error as two or three lines: message, the filter text, a caret under the position. */
export function formatFilterError(text: string, err: FilterError): string {
  return `${err.message} (at column ${err.position + 1})\n  ${text}\n  ${" ".repeat(err.position)}${"^".repeat(
    Math.min(err.length, Math.max(1, text.length - err.position)),
  )}`;
}

export const CMP_OPS = ["=", "!=", "<", "<=", ">", ">="] as const;
export type CmpOp = (typeof CMP_OPS)[number];
export type Dir = "src" | "dst" | "any";

/** Numeric fields and their (src, dst) or single columns of `flows`. */
const NUMERIC_FIELDS = {
  port: ["src_port", "dst_port"],
  as: ["src_as", "dst_as"],
  sgt: ["src_sgt", "dst_sgt"],
  if: ["in_if", "out_if"],
  proto: ["protocol"],
  bytes: ["bytes"],
  packets: ["packets"],
  tos: ["ip_tos"],
  vlan: ["vlan_id"],
  icmp_type: ["icmp_type"],
  icmp_code: ["icmp_code"],
  etype: ["etype"],
} as const;
export type NumericField = keyof typeof NUMERIC_FIELDS;

/** Named fields (options dictionaries): (in, out) or single name columns, and id columns matched by digits. */
const NAME_FIELDS = {
  vrf: { names: ["in_vrf_name", "out_vrf_name"], ids: ["in_vrf_id", "out_vrf_id"] },
  app: { names: ["application_name"], ids: [] },
} as const;
export type NameField = keyof typeof NAME_FIELDS;

export type FilterNode =
  | { readonly kind: "and" | "or"; readonly left: FilterNode; readonly right: FilterNode }
  | { readonly kind: "not"; readonly operand: FilterNode }
  | {
      readonly kind: "num";
      readonly field: NumericField;
      /** Which columns: one for single fields; src/dst/any for pairs (in_if = src side, out_if = dst). */
      readonly dir: Dir;
      readonly op: CmpOp;
      readonly value: number;
    }
  | { readonly kind: "host"; readonly dir: Dir; readonly address: string }
  | { readonly kind: "net"; readonly dir: Dir; readonly network: Network; readonly text: string }
  | { readonly kind: "exporter"; readonly value: string }
  | {
      readonly kind: "name";
      readonly field: NameField;
      /** For vrf: src = ingress (in), dst = egress (out), any = either. */
      readonly dir: Dir;
      readonly value: string;
      /** The value as an id when it is digits (vrf only), else null. */
      readonly id: number | null;
    };

/** Protocol names accepted after `proto` (and alone as a term when marked bare). */
export const PROTOCOLS: Readonly<Record<string, number>> = {
  icmp: 1,
  igmp: 2,
  tcp: 6,
  udp: 17,
  gre: 47,
  esp: 50,
  ah: 51,
  icmp6: 58,
  "ipv6-icmp": 58,
  icmpv6: 58,
  ospf: 89,
  pim: 103,
  vrrp: 112,
  sctp: 132,
};
const BARE_PROTOCOLS = new Set(["icmp", "igmp", "tcp", "udp", "gre", "esp", "ah", "icmp6", "sctp"]);

const MAX_FILTER_LENGTH = 4096;
const MAX_DEPTH = 64;

interface Token {
  kind: "word" | "op" | "lparen" | "rparen" | "end";
  text: string;
  pos: number;
}

const OP_WORDS: Readonly<Record<string, CmpOp>> = {
  "=": "=",
  "==": "=",
  eq: "=",
  "!=": "!=",
  ne: "!=",
  "<": "<",
  lt: "<",
  "<=": "<=",
  le: "<=",
  ">": ">",
  gt: ">",
  ">=": ">=",
  ge: ">=",
};

function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      i++;
      continue;
    }
    if (c === "(" || c === ")") {
      out.push({ kind: c === "(" ? "lparen" : "rparen", text: c, pos: i });
      i++;
      continue;
    }
    const two = text.slice(i, i + 2);
    if (two === "&&" || two === "||") {
      out.push({ kind: "word", text: two === "&&" ? "and" : "or", pos: i });
      i += 2;
      continue;
    }
    if (two === "==" || two === "!=" || two === "<=" || two === ">=") {
      out.push({ kind: "op", text: two, pos: i });
      i += 2;
      continue;
    }
    if (c === "=" || c === "<" || c === ">") {
      out.push({ kind: "op", text: c, pos: i });
      i++;
      continue;
    }
    if (c === "!") {
      out.push({ kind: "word", text: "not", pos: i });
      i++;
      continue;
    }
    let j = i;
    while (j < text.length && /[A-Za-z0-9_.:/-]/.test(text[j]!)) j++;
    if (j === i) throw new FilterError(`unexpected character "${c}"`, i);
    out.push({ kind: "word", text: text.slice(i, j), pos: i });
    i = j;
  }
  out.push({ kind: "end", text: "", pos: text.length });
  return out;
}

class Parser {
  readonly #tokens: Token[];
  #at = 0;
  #depth = 0;

  constructor(tokens: Token[]) {
    this.#tokens = tokens;
  }

  get #peek(): Token {
    return this.#tokens[this.#at]!;
  }

  #word(): string {
    const t = this.#peek;
    return t.kind === "word" ? t.text.toLowerCase() : "";
  }

  #next(): Token {
    const t = this.#tokens[this.#at]!;
    if (t.kind !== "end") this.#at++;
    return t;
  }

  #fail(message: string, t: Token = this.#peek): never {
    throw new FilterError(
      t.kind === "end" ? `${message}, found the end of the filter` : `${message}, found "${t.text}"`,
      t.pos,
      t.text.length,
    );
  }

  parse(): FilterNode {
    if (this.#peek.kind === "end") this.#fail('empty filter: expected a term such as "proto tcp"');
    const node = this.#or();
    const t = this.#peek;
    if (t.kind === "rparen") this.#fail('unbalanced ")"');
    if (t.kind !== "end") this.#fail('expected "and", "or" or the end of the filter');
    return node;
  }

  #or(): FilterNode {
    let left = this.#and();
    while (this.#word() === "or") {
      this.#next();
      left = { kind: "or", left, right: this.#and() };
    }
    return left;
  }

  #and(): FilterNode {
    let left = this.#unary();
    while (this.#word() === "and") {
      this.#next();
      left = { kind: "and", left, right: this.#unary() };
    }
    return left;
  }

  #unary(): FilterNode {
    if (++this.#depth > MAX_DEPTH) this.#fail(`filter nested deeper than ${MAX_DEPTH} levels`);
    try {
      const t = this.#peek;
      if (this.#word() === "not") {
        this.#next();
        return { kind: "not", operand: this.#unary() };
      }
      if (t.kind === "lparen") {
        this.#next();
        const inner = this.#or();
        if (this.#peek.kind !== "rparen") this.#fail(`expected ")" to close the "(" at column ${t.pos + 1}`);
        this.#next();
        return inner;
      }
      return this.#term();
    } finally {
      this.#depth--;
    }
  }

  #term(): FilterNode {
    const t = this.#peek;
    if (t.kind !== "word") this.#fail('expected a term such as "proto tcp" or "dst port 443"');
    let w = this.#word();
    let dir: Dir = "any";
    if (w === "src" || w === "dst") {
      dir = w;
      this.#next();
      w = this.#word();
      if (!["host", "ip", "net", "port", "as", "sgt"].includes(w))
        this.#fail(`expected host, ip, net, port, as or sgt after "${dir}"`);
    }
    switch (w) {
      case "host":
      case "ip": {
        this.#next();
        return { kind: "host", dir, address: this.#address() };
      }
      case "net":
        this.#next();
        return this.#network(dir);
      case "port":
      case "as":
      case "sgt": {
        this.#next();
        const max = w === "port" ? 65535 : 4294967295;
        return this.#numeric(w, dir, max);
      }
      case "in_if":
      case "out_if":
      case "if":
        this.#next();
        return this.#numeric("if", w === "in_if" ? "src" : w === "out_if" ? "dst" : "any", 4294967295);
      case "in":
      case "out": {
        this.#next();
        const what = this.#word();
        if (what !== "if" && what !== "vrf") this.#fail(`expected "if" or "vrf" after "${w}"`);
        this.#next();
        if (what === "vrf") return this.#name("vrf", w === "in" ? "src" : "dst");
        return this.#numeric("if", w === "in" ? "src" : "dst", 4294967295);
      }
      case "in_vrf":
      case "out_vrf":
      case "vrf":
        this.#next();
        return this.#name("vrf", w === "in_vrf" ? "src" : w === "out_vrf" ? "dst" : "any");
      case "app":
      case "application":
        this.#next();
        return this.#name("app", "any");
      case "proto": {
        this.#next();
        const name = this.#word();
        if (name in PROTOCOLS) {
          this.#next();
          return { kind: "num", field: "proto", dir: "any", op: "=", value: PROTOCOLS[name]! };
        }
        if (this.#peek.kind === "word" && !/^\d+$/.test(name))
          this.#fail(`unknown protocol (known: ${Object.keys(PROTOCOLS).join(", ")}, or a number 0-255)`);
        return this.#numeric("proto", "any", 255);
      }
      case "bytes":
      case "packets":
        this.#next();
        return this.#numeric(w, "any", Number.MAX_SAFE_INTEGER, true);
      case "tos":
      case "icmp_type":
      case "icmp_code":
        this.#next();
        return this.#numeric(w, "any", 255);
      case "vlan":
        this.#next();
        return this.#numeric("vlan", "any", 4095);
      case "exporter": {
        this.#next();
        const v = this.#peek;
        if (v.kind !== "word") this.#fail('expected an exporter address or name after "exporter"');
        this.#next();
        const b = parseAddress(v.text);
        return { kind: "exporter", value: b ? addressText(b) : v.text };
      }
      case "ipv4":
      case "inet":
        this.#next();
        return { kind: "num", field: "etype", dir: "any", op: "=", value: 0x0800 };
      case "ipv6":
      case "inet6":
        this.#next();
        return { kind: "num", field: "etype", dir: "any", op: "=", value: 0x86dd };
      default:
        if (BARE_PROTOCOLS.has(w)) {
          this.#next();
          return { kind: "num", field: "proto", dir: "any", op: "=", value: PROTOCOLS[w]! };
        }
        this.#fail(
          'unknown term (expected host, ip, net, port, src, dst, proto, tcp, udp, icmp, as, sgt, in_if, out_if, vrf, app, exporter, bytes, packets, tos, vlan, icmp_type, icmp_code, ipv4, ipv6, not or "(")',
        );
    }
  }

  #name(field: NameField, dir: Dir): FilterNode {
    const t = this.#peek;
    if (t.kind !== "word")
      this.#fail(field === "vrf" ? "expected a VRF name or id" : "expected an application name");
    this.#next();
    const digits = field === "vrf" && /^\d{1,10}$/.test(t.text) ? Number(t.text) : null;
    const id = digits !== null && digits <= 4294967295 ? digits : null;
    return { kind: "name", field, dir: field === "vrf" ? dir : "any", value: t.text, id };
  }

  #address(): string {
    const t = this.#peek;
    if (t.kind !== "word") this.#fail("expected an IPv4 or IPv6 address");
    const b = parseAddress(t.text);
    if (!b) this.#fail("expected an IPv4 or IPv6 address");
    this.#next();
    return addressText(b);
  }

  #network(dir: Dir): FilterNode {
    const t = this.#peek;
    if (t.kind !== "word") this.#fail("expected a network such as 10.0.0.0/8 or 2001:db8::/32");
    const slash = t.text.indexOf("/");
    const addr = slash < 0 ? t.text : t.text.slice(0, slash);
    const b = parseAddress(addr);
    if (!b) this.#fail("expected a network such as 10.0.0.0/8 or 2001:db8::/32");
    const bits = b.length * 8;
    let prefix = bits;
    if (slash >= 0) {
      const len = t.text.slice(slash + 1);
      if (!/^\d{1,3}$/.test(len) || Number(len) > bits)
        throw new FilterError(
          `bad prefix length "${len}" (0-${bits} for IPv${bits === 32 ? 4 : 6})`,
          t.pos + slash + 1,
          Math.max(1, len.length),
        );
      prefix = Number(len);
    }
    this.#next();
    const network = { bytes: maskAddress(b, prefix), prefix };
    return { kind: "net", dir, network, text: `${addressText(network.bytes)}/${prefix}` };
  }

  #numeric(field: NumericField, dir: Dir, max: number, suffix = false): FilterNode {
    let op: CmpOp = "=";
    const o = this.#peek;
    const ow = o.kind === "op" ? o.text : this.#word();
    if (ow in OP_WORDS) {
      op = OP_WORDS[ow]!;
      this.#next();
    }
    const t = this.#peek;
    const m = t.kind === "word" ? /^(\d+)([kmg]?)$/i.exec(t.text) : null;
    if (!m || (!suffix && m[2] !== ""))
      this.#fail(`expected a number${suffix ? " (k, m, g suffixes allowed)" : ""} after "${field}"`);
    const mult = { "": 1, k: 1e3, m: 1e6, g: 1e9 }[m[2]!.toLowerCase() as "" | "k" | "m" | "g"];
    const value = Number(m[1]) * mult;
    if (!Number.isSafeInteger(value) || value > max)
      this.#fail(`number out of range for "${field}" (0-${max})`);
    this.#next();
    return { kind: "num", field, dir: NUMERIC_FIELDS[field].length === 1 ? "any" : dir, op, value };
  }
}

/** Parses a filter; throws FilterError with the position of the problem. */
export function parseFilter(text: string): FilterNode {
  if (text.length > MAX_FILTER_LENGTH)
    throw new FilterError(`filter longer than ${MAX_FILTER_LENGTH} characters`, MAX_FILTER_LENGTH);
  return new Parser(tokenize(text)).parse();
}

// ---------------------------------------------------------------------------------------------------------
// SQL

/** A condition for a WHERE clause and its positional parameters. */
export interface SqlCondition {
  sql: string;
  params: Array<number | string>;
}

/** SQL function the `net` terms call; register it with `registerQueryFunctions` on the connection. */
export const IN_NET_FUNCTION = "clarion_in_net";

function columnsFor(field: NumericField, dir: Dir): readonly string[] {
  const cols = NUMERIC_FIELDS[field];
  if (cols.length === 1 || dir === "any") return cols;
  return [dir === "src" ? cols[0] : cols[1]];
}

/** The name and id columns a name term compares: one side for in/out, both for any. */
export function nameColumns(
  field: NameField,
  dir: Dir,
): { names: readonly string[]; ids: readonly string[] } {
  const f = NAME_FIELDS[field];
  if (dir === "any" || f.names.length === 1) return f;
  const side = dir === "src" ? 0 : 1;
  return { names: [f.names[side]!], ids: f.ids.length === 2 ? [f.ids[side]!] : [] };
}

function sideColumns(prefix: "ip", dir: Dir): string[] {
  return dir === "src"
    ? [`src_${prefix}`]
    : dir === "dst"
      ? [`dst_${prefix}`]
      : [`src_${prefix}`, `dst_${prefix}`];
}

/** Compiles the AST to a parameterized SQL condition over `flows` (column names are fixed identifiers). */
export function toSql(node: FilterNode): SqlCondition {
  const params: Array<number | string> = [];
  const walk = (n: FilterNode): string => {
    switch (n.kind) {
      case "and":
      case "or":
        return `(${walk(n.left)} ${n.kind.toUpperCase()} ${walk(n.right)})`;
      case "not":
        return `(NOT ${walk(n.operand)})`;
      case "num": {
        const parts = columnsFor(n.field, n.dir).map((c) => {
          params.push(n.value);
          return `IFNULL(${c}, 0) ${n.op} ?`;
        });
        return parts.length === 1 ? parts[0]! : `(${parts.join(" OR ")})`;
      }
      case "host": {
        const parts = sideColumns("ip", n.dir).map((c) => {
          params.push(n.address);
          return `${c} IS ?`;
        });
        return parts.length === 1 ? parts[0]! : `(${parts.join(" OR ")})`;
      }
      case "net": {
        const parts = sideColumns("ip", n.dir).map((c) => {
          params.push(n.text);
          return `${IN_NET_FUNCTION}(${c}, ?)`;
        });
        return parts.length === 1 ? parts[0]! : `(${parts.join(" OR ")})`;
      }
      case "exporter":
        params.push(n.value);
        return "exporter IS ?";
      case "name": {
        const { names, ids } = nameColumns(n.field, n.dir);
        const parts = names.map((c) => {
          params.push(n.value);
          return `${c} IS ?`;
        });
        const id = n.id;
        if (id !== null)
          for (const c of ids) {
            params.push(id);
            parts.push(`${c} IS ?`);
          }
        return parts.length === 1 ? parts[0]! : `(${parts.join(" OR ")})`;
      }
    }
  };
  return { sql: walk(node), params };
}

/** Parses "addr/len" as written by toSql (from a trusted compile, so a bad value is simply no match). */
function networkFromText(text: string): Network | null {
  const slash = text.indexOf("/");
  const b = parseAddress(slash < 0 ? text : text.slice(0, slash));
  if (!b) return null;
  const prefix = slash < 0 ? b.length * 8 : Number(text.slice(slash + 1));
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > b.length * 8) return null;
  return { bytes: maskAddress(b, prefix), prefix };
}

/** Registers the SQL functions compiled filters call (`clarion_in_net(ip, "net/len")` → 0 or 1). */
export function registerQueryFunctions(db: DatabaseSync): void {
  const cache = new Map<string, Network | null>();
  db.function(IN_NET_FUNCTION, { deterministic: true }, (ip, net) => {
    if (typeof net !== "string") return 0;
    let n = cache.get(net);
    if (n === undefined) {
      n = networkFromText(net);
      if (cache.size < 1024) cache.set(net, n);
    }
    return n && inNetwork(ip, n) ? 1 : 0;
  });
}

// ---------------------------------------------------------------------------------------------------------
// JavaScript predicate (live tail)

/** A flow row keyed by the `flows` column names (values as SQLite returns them, or null/absent). */
export type FlowRow = Readonly<Record<string, unknown>>;

function num(v: unknown): number {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  if (typeof v === "string" && v !== "") return Number(v);
  return 0;
}

function compare(a: number, op: CmpOp, b: number): boolean {
  switch (op) {
    case "=":
      return a === b;
    case "!=":
      return a !== b;
    case "<":
      return a < b;
    case "<=":
      return a <= b;
    case ">":
      return a > b;
    case ">=":
      return a >= b;
  }
}

/** Compiles the AST to a predicate over rows with the `flows` column names (same meaning as toSql). */
export function toPredicate(node: FilterNode): (row: FlowRow) => boolean {
  switch (node.kind) {
    case "and": {
      const l = toPredicate(node.left);
      const r = toPredicate(node.right);
      return (row) => l(row) && r(row);
    }
    case "or": {
      const l = toPredicate(node.left);
      const r = toPredicate(node.right);
      return (row) => l(row) || r(row);
    }
    case "not": {
      const p = toPredicate(node.operand);
      return (row) => !p(row);
    }
    case "num": {
      const cols = columnsFor(node.field, node.dir);
      const { op, value } = node;
      return (row) => cols.some((c) => compare(num(row[c]), op, value));
    }
    case "host": {
      const cols = sideColumns("ip", node.dir);
      const want = node.address;
      return (row) => cols.some((c) => row[c] === want);
    }
    case "net": {
      const cols = sideColumns("ip", node.dir);
      const net = node.network;
      return (row) => cols.some((c) => inNetwork(row[c], net));
    }
    case "exporter": {
      const want = node.value;
      return (row) => row.exporter === want;
    }
    case "name": {
      const { names, ids } = nameColumns(node.field, node.dir);
      const { value, id } = node;
      const idCols = id === null ? [] : ids;
      return (row) =>
        names.some((c) => row[c] === value) ||
        idCols.some((c) => {
          const v = row[c];
          return (typeof v === "number" || typeof v === "bigint") && Number(v) === id;
        });
    }
  }
}

/** Parses and compiles in one step; an empty or blank filter is null (everything matches). */
export function compileFilter(text: string | undefined): {
  node: FilterNode;
  sql: SqlCondition;
  predicate: (row: FlowRow) => boolean;
} | null {
  if (text === undefined || text.trim() === "") return null;
  const node = parseFilter(text);
  return { node, sql: toSql(node), predicate: toPredicate(node) };
}
