/**
 * `parquet:DIR`: a columnar flow archive, written by the receive workers themselves (DESIGN §2, §3).
 *
 * Files: `DIR/YYYY/MM/DD/flows-HHMMSS-w<worker>.parquet` (UTC; the time the file was opened, which for
 * time rotation is the start of its interval), so names sort by time. Each worker writes its own files:
 * each flow is appended as the worker decodes it straight into typed column buffers (no batch held, no
 * JSON, no hop to the main thread), a row group is compressed and written every `rowGroupRows` rows, and a file is
 * finished (footer) and renamed into place when its interval ends (`rotateMs`, default 5 min, aligned to
 * the clock like nfcapd's `-t`), when it reaches `maxFileBytes`, or at shutdown. Until then it lives as
 * `DIR/.tmp/<name>.tmp`; readers only ever see complete files.
 *
 * What a crash loses: a process killed without a shutdown (SIGKILL, power loss, a worker thread dying)
 * loses each worker's open file, i.e. the flows received since that worker's last rotation — at most
 * `rotateMs` of flows per worker, plus up to a second (the boundary is checked every 1024 flows and on the
 * worker's 1 s tick); set a shorter `rotateMs`, e.g. 60000, to bound it tighter. Finished files are
 * fsync'ed before the rename and are never touched again. Leftover temporary files are deleted (and counted under
 * `abandoned_files`) when the archive next starts.
 *
 * Columns (Parquet logical types; names follow the GoFlow2 JSON fields, DESIGN §3):
 * - `time_received`, `time_flow_start`, `time_flow_end`: TIMESTAMP(NANOS), UTC (DuckDB TIMESTAMP_NS,
 *   ClickHouse DateTime64(9)); row-group min/max statistics let readers skip by time;
 * - `type`, `sampler_address`, `switch_id`: STRING;
 * - addresses `src_addr`, `dst_addr`, `next_hop`, `bgp_next_hop`: STRING, the usual text ("10.0.0.1",
 *   "2001:db8::1"; "" when absent): the one form every engine filters, groups and joins on without a
 *   conversion (ClickHouse: `toIPv4OrNull`/`toIPv6` or an IPv6 column on insert; DuckDB: as is). Written from
 *   the decoded IPv4 number straight as ASCII bytes, no string made;
 * - `bytes`, `packets`, `sampling_rate`, `src_mac`, `dst_mac` (48-bit MAC as an integer): UINT64;
 * - the other numbers as unsigned integers of their element's width (UINT8/16/32): `etype`, `proto` are
 *   numbers (GoFlow2 prints names), `src_net`/`dst_net` the prefix lengths;
 * - `src_sgt`, `dst_sgt`, `flow_direction`, `in_if_name`, `out_if_name`: NULL when absent;
 * - `extra`: NULL, or a JSON object of every other decoded element plus non-empty `bgp_communities`,
 *   `as_path`, `mpls_label` lists and, when known, the VRF, application, NAT and reverse-counter fields
 *   under their JSON-lines names (`in_vrf_id` … `application_name`, `post_nat_*`, `reverse_*`).
 *
 * Options (snake_case keys are rejected by config, like every sink's): `rotateMs` (300000), `maxFileBytes`
 * (256 MiB), `rowGroupRows` (65536), `codec` ("zstd" | "gzip" | "none", default "zstd"), `level` (1),
 * `retentionMs` (0: keep), `maxBytes` (0: no limit; the oldest files are deleted beyond it),
 * `retentionIntervalMs` (60000).
 *
 * Sink contract: the encoder (one per worker) returns empty batches from `encode` and hands "receipts" to
 * the main thread from `poll`: one batch per finished file (records = its rows, counted as written) or per
 * failed one (records = the rows lost, which the main-thread sink rejects so the queue counts them under
 * write_error, logs them and turns /health degraded). The main-thread sink keeps the per-archive metrics
 * and applies retention.
 */
import { closeSync, fdatasyncSync, openSync, readdirSync, renameSync, statSync, unlinkSync } from "node:fs";
import { readdir, rmdir, stat, unlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import { writeIPv4 } from "../core/address.ts";
import { ConfigError } from "../core/errors.ts";
import type { FlowRecord } from "../core/flow.ts";
import { makeDirs } from "../core/fs.ts";
import {
  type BytesColumn,
  CODECS,
  type Codec,
  type ColumnBuffer,
  type ColumnSpec,
  columnBuffer,
  Int32Column,
  Int64Column,
  ParquetFileWriter,
  putMsAsNs,
  putU64,
} from "./parquet-writer.ts";
import type {
  EncodedBatch,
  EncoderContext,
  Sink,
  SinkContext,
  SinkDefinition,
  SinkEncoder,
} from "./types.ts";

const u = (bits: 8 | 16 | 32) => ({ physical: "INT32", bits }) as const;
const U64 = { physical: "INT64", bits: 64 } as const;
const TS = { physical: "INT64", timestamp: "NANOS" } as const;
const STR = { physical: "BYTE_ARRAY", string: true } as const;

/** The archive's columns, in file order. */
export const FLOW_SCHEMA: readonly ColumnSpec[] = [
  { name: "type", type: STR, optional: false },
  { name: "time_received", type: TS, optional: false, stats: true },
  { name: "sequence_num", type: u(32), optional: false },
  { name: "sampling_rate", type: U64, optional: false },
  { name: "sampler_address", type: STR, optional: false },
  { name: "time_flow_start", type: TS, optional: false, stats: true },
  { name: "time_flow_end", type: TS, optional: false, stats: true },
  { name: "bytes", type: U64, optional: false },
  { name: "packets", type: U64, optional: false },
  { name: "src_addr", type: STR, optional: false },
  { name: "dst_addr", type: STR, optional: false },
  { name: "etype", type: u(16), optional: false },
  { name: "proto", type: u(8), optional: false },
  { name: "src_port", type: u(16), optional: false },
  { name: "dst_port", type: u(16), optional: false },
  { name: "in_if", type: u(32), optional: false },
  { name: "out_if", type: u(32), optional: false },
  { name: "src_mac", type: U64, optional: false },
  { name: "dst_mac", type: U64, optional: false },
  { name: "src_vlan", type: u(16), optional: false },
  { name: "dst_vlan", type: u(16), optional: false },
  { name: "vlan_id", type: u(16), optional: false },
  { name: "ip_tos", type: u(8), optional: false },
  { name: "forwarding_status", type: u(32), optional: false },
  { name: "ip_ttl", type: u(8), optional: false },
  { name: "ip_flags", type: u(8), optional: false },
  { name: "tcp_flags", type: u(16), optional: false },
  { name: "icmp_type", type: u(8), optional: false },
  { name: "icmp_code", type: u(8), optional: false },
  { name: "ipv6_flow_label", type: u(32), optional: false },
  { name: "fragment_id", type: u(32), optional: false },
  { name: "fragment_offset", type: u(16), optional: false },
  { name: "src_as", type: u(32), optional: false },
  { name: "dst_as", type: u(32), optional: false },
  { name: "next_hop", type: STR, optional: false },
  { name: "next_hop_as", type: u(32), optional: false },
  { name: "src_net", type: u(8), optional: false },
  { name: "dst_net", type: u(8), optional: false },
  { name: "bgp_next_hop", type: STR, optional: false },
  { name: "observation_domain_id", type: u(32), optional: false },
  { name: "observation_point_id", type: u(32), optional: false },
  { name: "src_sgt", type: u(32), optional: true },
  { name: "dst_sgt", type: u(32), optional: true },
  { name: "switch_id", type: STR, optional: false },
  { name: "flow_direction", type: u(8), optional: true },
  { name: "in_if_name", type: STR, optional: true },
  { name: "out_if_name", type: STR, optional: true },
  { name: "template_id", type: u(16), optional: false },
  { name: "extra", type: STR, optional: true },
];

/** JSON.rawJSON (Node ≥ 21; not yet in TypeScript's lib): a bigint as exact JSON digits. */
const rawJSON = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;

/** The `extra` column's JSON: other elements plus the non-empty lists; "" when there is nothing. */
/**
 * Whether a record carries any of the rarer named fields (options dictionaries, issue 18; NAT and RFC 5103
 * reverse counters, issue 19): they go into `extra` under their JSON-lines names (no column of their own yet).
 */
function hasNamedExtras(r: FlowRecord): boolean {
  return (
    r.in_vrf_id !== null ||
    r.out_vrf_id !== null ||
    r.application_name !== "" ||
    r.post_nat_src_addr !== "" ||
    r.post_nat_dst_addr !== "" ||
    r.post_nat_src_port !== null ||
    r.post_nat_dst_port !== null ||
    r.reverse_bytes !== null ||
    r.reverse_packets !== null
  );
}

function extraJson(r: FlowRecord): string {
  const hasLists =
    (r.bgp_communities?.length ?? 0) > 0 || (r.as_path?.length ?? 0) > 0 || (r.mpls_label?.length ?? 0) > 0;
  const named = hasNamedExtras(r);
  if (r.extra === null && !hasLists && !named) return "";
  const o: Record<string, unknown> = {};
  if (r.extra !== null) {
    for (const k in r.extra) {
      const v = r.extra[k]!;
      o[k] = typeof v === "bigint" ? rawJSON(v.toString()) : v;
    }
  }
  if ((r.bgp_communities?.length ?? 0) > 0) o.bgp_communities = r.bgp_communities;
  if ((r.as_path?.length ?? 0) > 0) o.as_path = r.as_path;
  if ((r.mpls_label?.length ?? 0) > 0) o.mpls_label = r.mpls_label;
  if (named) {
    const big = (v: number | bigint) => (typeof v === "bigint" ? rawJSON(v.toString()) : v);
    if (r.in_vrf_id !== null) o.in_vrf_id = r.in_vrf_id;
    if (r.out_vrf_id !== null) o.out_vrf_id = r.out_vrf_id;
    if (r.in_vrf_name !== "") o.in_vrf_name = r.in_vrf_name;
    if (r.out_vrf_name !== "") o.out_vrf_name = r.out_vrf_name;
    if (r.mpls_vpn_rd !== "") o.mpls_vpn_rd = r.mpls_vpn_rd;
    if (r.application_name !== "") o.application_name = r.application_name;
    if (r.post_nat_src_addr !== "") o.post_nat_src_addr = r.post_nat_src_addr;
    if (r.post_nat_dst_addr !== "") o.post_nat_dst_addr = r.post_nat_dst_addr;
    if (r.post_nat_src_port !== null) o.post_nat_src_port = r.post_nat_src_port;
    if (r.post_nat_dst_port !== null) o.post_nat_dst_port = r.post_nat_dst_port;
    if (r.reverse_bytes !== null) o.reverse_bytes = big(r.reverse_bytes);
    if (r.reverse_packets !== null) o.reverse_packets = big(r.reverse_packets);
  }
  const s = JSON.stringify(o);
  return s === "{}" ? "" : s;
}

/** Nodes of ExtraMemo before it starts again (bounded: the elements and values are the exporter's). */
const EXTRA_MEMO_MAX = 4096;

/** A trie node of ExtraMemo: element name → value → node; `json` for the object ending here. */
interface MemoNode {
  next: Map<string, Map<number, MemoNode>>;
  json: string | null;
}

const memoNode = (): MemoNode => ({ next: new Map(), json: null });

/**
 * The `extra` JSON of records carrying only other elements (no lists, no named extras), remembered by their
 * names and numeric values in a trie walked in the object's key order: real exporters send a handful of
 * such elements (flowEndReason, ...) with a few distinct values, and JSON.stringify of even one small
 * object costs ~0.6–1 µs, the walk ~0.2 µs (measured with a scratch micro-benchmark). An object holding
 * a string, boolean or bigint value is rendered each time.
 */
class ExtraMemo {
  #root = memoNode();
  #nodes = 0;

  json(r: FlowRecord): string {
    const e = r.extra!;
    let n = this.#root;
    for (const k in e) {
      const v = e[k];
      if (typeof v !== "number") return extraJson(r);
      let byValue = n.next.get(k);
      if (byValue === undefined) {
        byValue = new Map();
        n.next.set(k, byValue);
      }
      let c = byValue.get(v);
      if (c === undefined) {
        if (++this.#nodes > EXTRA_MEMO_MAX) {
          this.#root = memoNode();
          this.#nodes = 0;
          return extraJson(r);
        }
        c = memoNode();
        byValue.set(v, c);
      }
      n = c;
    }
    n.json ??= extraJson(r);
    return n.json;
  }
}

const col = (name: string): number => FLOW_SCHEMA.findIndex((c) => c.name === name);
/** REQUIRED INT32 columns, stored straight into one block (column k at k × capacity). */
const INTS = FLOW_SCHEMA.filter((c) => !c.optional && c.type.physical === "INT32").map((c) => c.name);
/** REQUIRED INT64 columns, as (low, high) words into one block (column k at 2 × k × capacity). */
const LONGS = FLOW_SCHEMA.filter((c) => !c.optional && c.type.physical === "INT64").map((c) => c.name);
const ii = (name: string): number => INTS.indexOf(name);
const li = (name: string): number => LONGS.indexOf(name);
const I_SEQ = ii("sequence_num");
const I_ETYPE = ii("etype");
const I_PROTO = ii("proto");
const I_SPORT = ii("src_port");
const I_DPORT = ii("dst_port");
const I_IN = ii("in_if");
const I_OUT = ii("out_if");
const I_SVLAN = ii("src_vlan");
const I_DVLAN = ii("dst_vlan");
const I_VLAN = ii("vlan_id");
const I_TOS = ii("ip_tos");
const I_FWD = ii("forwarding_status");
const I_TTL = ii("ip_ttl");
const I_FLAGS = ii("ip_flags");
const I_TCP = ii("tcp_flags");
const I_ICMPT = ii("icmp_type");
const I_ICMPC = ii("icmp_code");
const I_LABEL = ii("ipv6_flow_label");
const I_FRAGID = ii("fragment_id");
const I_FRAGOFF = ii("fragment_offset");
const I_SAS = ii("src_as");
const I_DAS = ii("dst_as");
const I_NHAS = ii("next_hop_as");
const I_SNET = ii("src_net");
const I_DNET = ii("dst_net");
const I_DOMAIN = ii("observation_domain_id");
const I_POINT = ii("observation_point_id");
const I_TEMPLATE = ii("template_id");
const L_TR = li("time_received");
const L_RATE = li("sampling_rate");
const L_START = li("time_flow_start");
const L_END = li("time_flow_end");
const L_BYTES = li("bytes");
const L_PACKETS = li("packets");
const L_SMAC = li("src_mac");
const L_DMAC = li("dst_mac");
if (INTS.length !== 28 || LONGS.length !== 8)
  throw new Error("FlowColumns: FLOW_SCHEMA and its offsets disagree");

/** Bytes of exporter-controlled text a row group holds at most before it is written (bounded memory). */
const MAX_TEXT_BYTES = 64 * 1024 * 1024;

/**
 * Column buffers for FLOW_SCHEMA, filled one record at a time: the required integer columns are plain
 * stores into two typed-array blocks at fixed offsets (no call, no object per cell), the text and nullable
 * ones go through their column's push.
 */
export class FlowColumns {
  readonly #cols: ColumnBuffer[];
  readonly capacity: number;
  readonly #ints: Int32Array;
  readonly #longs: Int32Array;
  #n = 0;
  readonly #type: BytesColumn;
  readonly #sampler: BytesColumn;
  readonly #src: BytesColumn;
  readonly #dst: BytesColumn;
  readonly #nextHop: BytesColumn;
  readonly #bgpNextHop: BytesColumn;
  readonly #switch: BytesColumn;
  readonly #inName: BytesColumn;
  readonly #outName: BytesColumn;
  readonly #extra: BytesColumn;
  readonly #srcSgt: Int32Column;
  readonly #dstSgt: Int32Column;
  readonly #direction: Int32Column;
  readonly #extraMemo = new ExtraMemo();

  constructor(capacity: number) {
    this.capacity = capacity;
    this.#ints = new Int32Array(INTS.length * capacity);
    this.#longs = new Int32Array(2 * LONGS.length * capacity);
    this.#cols = FLOW_SCHEMA.map((s) => {
      if (!s.optional && s.type.physical === "INT32") {
        const k = INTS.indexOf(s.name);
        return new Int32Column(capacity, false, this.#ints.subarray(k * capacity, (k + 1) * capacity));
      }
      if (!s.optional && s.type.physical === "INT64") {
        const k = LONGS.indexOf(s.name);
        return new Int64Column(
          capacity,
          false,
          this.#longs.subarray(2 * k * capacity, 2 * (k + 1) * capacity),
        );
      }
      return columnBuffer(s, capacity);
    });
    const c = this.#cols;
    const bytes = (name: string) => c[col(name)] as BytesColumn;
    const ints = (name: string) => c[col(name)] as Int32Column;
    this.#type = bytes("type");
    this.#sampler = bytes("sampler_address");
    this.#src = bytes("src_addr");
    this.#dst = bytes("dst_addr");
    this.#nextHop = bytes("next_hop");
    this.#bgpNextHop = bytes("bgp_next_hop");
    this.#switch = bytes("switch_id");
    this.#inName = bytes("in_if_name");
    this.#outName = bytes("out_if_name");
    this.#extra = bytes("extra");
    this.#srcSgt = ints("src_sgt");
    this.#dstSgt = ints("dst_sgt");
    this.#direction = ints("flow_direction");
  }

  get rows(): number {
    return this.#n;
  }

  /**
   * True when the buffers should be written as a row group: `capacity` rows, or the columns whose values
   * an exporter controls the length of (interface names, other elements) hold more than MAX_TEXT_BYTES.
   */
  get full(): boolean {
    return (
      this.#n >= this.capacity ||
      this.#extra.size + this.#inName.size + this.#outName.size + this.#bgpNextHop.size > MAX_TEXT_BYTES
    );
  }

  /** The buffers holding the rows so far, in FLOW_SCHEMA order (for ParquetFileWriter.writeRowGroup). */
  columns(): ColumnBuffer[] {
    for (const c of this.#cols)
      if (c instanceof Int32Column || c instanceof Int64Column) if (c.defs === null) c.commit(this.#n);
    return this.#cols;
  }

  reset(): void {
    for (const c of this.#cols) c.reset();
    this.#n = 0;
  }

  append(r: FlowRecord): void {
    const n = this.#n++;
    const C = this.capacity;
    const I = this.#ints;
    I[I_SEQ * C + n] = r.sequence_num;
    I[I_ETYPE * C + n] = r.etype;
    I[I_PROTO * C + n] = r.proto;
    I[I_SPORT * C + n] = r.src_port;
    I[I_DPORT * C + n] = r.dst_port;
    I[I_IN * C + n] = r.in_if;
    I[I_OUT * C + n] = r.out_if;
    I[I_SVLAN * C + n] = r.src_vlan;
    I[I_DVLAN * C + n] = r.dst_vlan;
    I[I_VLAN * C + n] = r.vlan_id;
    I[I_TOS * C + n] = r.ip_tos;
    I[I_FWD * C + n] = r.forwarding_status;
    I[I_TTL * C + n] = r.ip_ttl;
    I[I_FLAGS * C + n] = r.ip_flags;
    I[I_TCP * C + n] = r.tcp_flags;
    I[I_ICMPT * C + n] = r.icmp_type;
    I[I_ICMPC * C + n] = r.icmp_code;
    I[I_LABEL * C + n] = r.ipv6_flow_label;
    I[I_FRAGID * C + n] = r.fragment_id;
    I[I_FRAGOFF * C + n] = r.fragment_offset;
    I[I_SAS * C + n] = r.src_as;
    I[I_DAS * C + n] = r.dst_as;
    I[I_NHAS * C + n] = r.next_hop_as;
    I[I_SNET * C + n] = r.src_net;
    I[I_DNET * C + n] = r.dst_net;
    I[I_DOMAIN * C + n] = r.observation_domain_id;
    I[I_POINT * C + n] = r.observation_point_id;
    I[I_TEMPLATE * C + n] = r.template_id;
    const L = this.#longs;
    const C2 = 2 * C;
    const n2 = 2 * n;
    putMsAsNs(L, L_TR * C2 + n2, r.time_received_ms);
    putMsAsNs(L, L_START * C2 + n2, r.time_flow_start_ms);
    putMsAsNs(L, L_END * C2 + n2, r.time_flow_end_ms);
    putU64(L, L_RATE * C2 + n2, r.sampling_rate);
    putU64(L, L_BYTES * C2 + n2, r.bytes);
    putU64(L, L_PACKETS * C2 + n2, r.packets);
    putU64(L, L_SMAC * C2 + n2, r.src_mac);
    putU64(L, L_DMAC * C2 + n2, r.dst_mac);
    this.#type.pushString(r.type);
    this.#sampler.pushString(r.sampler_address);
    if (r.src_v4 >= 0) this.#src.pushWith(r.src_v4, 15, writeIPv4);
    else this.#src.pushString(r.src_addr_text);
    if (r.dst_v4 >= 0) this.#dst.pushWith(r.dst_v4, 15, writeIPv4);
    else this.#dst.pushString(r.dst_addr_text);
    if (r.next_hop_v4 >= 0) this.#nextHop.pushWith(r.next_hop_v4, 15, writeIPv4);
    else this.#nextHop.pushString(r.next_hop_text);
    if (r.bgp_next_hop_v4 >= 0) this.#bgpNextHop.pushWith(r.bgp_next_hop_v4, 15, writeIPv4);
    else this.#bgpNextHop.pushString(r.bgp_next_hop_text);
    this.#switch.pushString(r.switch_id);
    if (r.src_sgt === null) this.#srcSgt.pushNull();
    else this.#srcSgt.push(r.src_sgt);
    if (r.dst_sgt === null) this.#dstSgt.pushNull();
    else this.#dstSgt.push(r.dst_sgt);
    if (r.flow_direction === null) this.#direction.pushNull();
    else this.#direction.push(r.flow_direction);
    if (r.in_if_name === "") this.#inName.pushNull();
    else this.#inName.pushString(r.in_if_name);
    if (r.out_if_name === "") this.#outName.pushNull();
    else this.#outName.pushString(r.out_if_name);
    let x = "";
    if (r.bgp_communities !== null || r.as_path !== null || r.mpls_label !== null || hasNamedExtras(r))
      x = extraJson(r);
    else if (r.extra !== null) x = this.#extraMemo.json(r); // the same few elements and values recur
    if (x === "") this.#extra.pushNull();
    else this.#extra.pushString(x);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Options

export interface ParquetOptions {
  rotateMs: number;
  maxFileBytes: number;
  rowGroupRows: number;
  codec: Codec;
  level: number;
  retentionMs: number;
  maxBytes: number;
  retentionIntervalMs: number;
}

export const PARQUET_OPTION_KEYS = [
  "rotateMs",
  "maxFileBytes",
  "rowGroupRows",
  "codec",
  "level",
  "retentionMs",
  "maxBytes",
  "retentionIntervalMs",
] as const;

function intOption(o: Readonly<Record<string, unknown>>, key: string, def: number, min: number): number {
  const v = o[key];
  if (v === undefined) return def;
  const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isInteger(n) || n < min) {
    throw new ConfigError(key, `expected an integer ≥ ${min}, got ${JSON.stringify(v)}`);
  }
  return n;
}

export function parseParquetOptions(o: Readonly<Record<string, unknown>>): ParquetOptions {
  const codec = o.codec ?? "zstd";
  if (typeof codec !== "string" || !(CODECS as readonly string[]).includes(codec)) {
    throw new ConfigError("codec", `expected one of ${CODECS.join(", ")}, got ${JSON.stringify(codec)}`);
  }
  return {
    rotateMs: intOption(o, "rotateMs", 300_000, 1000),
    maxFileBytes: intOption(o, "maxFileBytes", 256 * 1024 * 1024, 1),
    rowGroupRows: intOption(o, "rowGroupRows", 65_536, 1),
    codec: codec as Codec,
    level: intOption(o, "level", 1, -7),
    retentionMs: intOption(o, "retentionMs", 0, 0),
    maxBytes: intOption(o, "maxBytes", 0, 0),
    retentionIntervalMs: intOption(o, "retentionIntervalMs", 60_000, 100),
  };
}

/** The archive directory of a `parquet:DIR` URI (relative to the working directory; `parquet://DIR` too). */
export function parseParquetUri(uri: string): string {
  if (!uri.toLowerCase().startsWith("parquet:")) throw new ConfigError("sink", `not a parquet: URI: ${uri}`);
  let rest = uri.slice("parquet:".length);
  if (rest.startsWith("//")) rest = rest.slice(2);
  if (rest === "")
    throw new ConfigError("sink", `${uri}: give the archive directory, e.g. parquet:./archive`);
  return resolve(rest);
}

// ---------------------------------------------------------------------------------------------------------
// Worker side: the archive writer

const TMP = ".tmp";

/** What a worker tells the main thread (the JSON of a receipt part). */
export interface Receipt {
  worker: number;
  /** Finished files (in their final place). */
  files: Array<{ path: string; rows: number; bytes: number }>;
  /** Increments since the previous receipt. */
  compressMs: number;
  writeMs: number;
  rowGroups: number;
  /** Leftover temporary files of an earlier run deleted when this worker opened its first file. */
  abandonedFiles: number;
  /** Set when a file could not be written: its rows are lost. */
  error?: string;
  lostRows?: number;
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/** Relative path of a file opened at `ms` by `worker`: YYYY/MM/DD/flows-HHMMSS-wN.parquet (UTC). */
export function archiveFileName(ms: number, worker: number): string {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}/${pad(d.getUTCMonth() + 1)}/${pad(d.getUTCDate())}/flows-${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}-w${worker}.parquet`;
}

export interface ArchiveWriterOptions extends ParquetOptions {
  dir: string;
  worker: number;
  /** Clock (ms since the epoch); Date.now by default (tests step it). */
  now?: () => number;
  /** EncoderContext.discard: row groups are built and compressed as usual, then written to /dev/null. */
  discard?: boolean;
}

interface OpenFile {
  fd: number;
  tmp: string;
  name: string;
  writer: ParquetFileWriter;
  rows: number;
}

/** One worker's archive: appends, rotates, finishes and renames; synchronous. */
export class ArchiveWriter {
  readonly #o: ArchiveWriterOptions;
  readonly #now: () => number;
  readonly #cols: FlowColumns;
  #file: OpenFile | null = null;
  /**
   * End of the open interval (ms), 0 when none: its rows (buffered or in the open file) are finished into
   * a file at the first append or poll at or after it.
   */
  #intervalEnd = 0;
  /** Time the next file is named by; −1: the time it opens (after a size rotation). */
  #nameMs = -1;
  #sinceCheck = 0;
  #swept = false;
  #receipts: Receipt[] = [];
  #pending: Receipt;
  /** Oldest receive time of the rows in the open file (for the receipt batch's latency). */
  #oldestMs = 0;

  constructor(o: ArchiveWriterOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
    this.#cols = new FlowColumns(o.rowGroupRows);
    this.#pending = this.#blank();
  }

  #blank(): Receipt {
    return {
      worker: this.#o.worker,
      files: [],
      compressMs: 0,
      writeMs: 0,
      rowGroups: 0,
      abandonedFiles: 0,
    };
  }

  /** Rows appended and not yet in a finished file. */
  get openRows(): number {
    return (this.#file?.rows ?? 0) + this.#cols.rows;
  }

  /** Deletes this worker's leftover temporary files (a crash of an earlier run or an earlier thread). */
  #sweep(): void {
    this.#swept = true;
    const dir = join(this.#o.dir, TMP);
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    const suffix = `-w${this.#o.worker}.parquet.tmp`;
    for (const n of names) {
      if (!n.endsWith(suffix)) continue;
      try {
        unlinkSync(join(dir, n));
        this.#pending.abandonedFiles++;
      } catch {
        // gone already
      }
    }
  }

  #open(now: number): OpenFile {
    if (this.#o.discard === true) {
      const fd = openSync("/dev/null", "w");
      const writer = new ParquetFileWriter(fd, FLOW_SCHEMA, { codec: this.#o.codec, level: this.#o.level });
      return { fd, tmp: "", name: "", writer, rows: 0 };
    }
    if (!this.#swept) this.#sweep();
    const tmpDir = join(this.#o.dir, TMP);
    makeDirs(tmpDir);
    // time rotation: named by its interval start; after a size rotation within the interval: by now
    const name = archiveFileName(this.#nameMs >= 0 ? this.#nameMs : now, this.#o.worker);
    const base = name.slice(name.lastIndexOf("/") + 1);
    const tmp = join(tmpDir, `${base}.tmp`);
    const fd = openSync(tmp, "w", 0o600);
    try {
      const writer = new ParquetFileWriter(fd, FLOW_SCHEMA, { codec: this.#o.codec, level: this.#o.level });
      return { fd, tmp, name, writer, rows: 0 };
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** Writes the buffered rows as a row group (opening a file if none is open); false on failure. */
  #flushGroup(now: number): boolean {
    const rows = this.#cols.rows;
    if (rows === 0) return true;
    try {
      this.#file ??= this.#open(now);
      const f = this.#file;
      const before = { ...f.writer.cost };
      f.writer.writeRowGroup(this.#cols.columns(), rows);
      f.rows += rows;
      this.#pending.compressMs += f.writer.cost.compressMs - before.compressMs;
      this.#pending.writeMs += f.writer.cost.writeMs - before.writeMs;
      this.#pending.rowGroups++;
      this.#cols.reset();
    } catch (err) {
      this.#fail(err);
      return false;
    }
    if (this.#file.writer.bytes >= this.#o.maxFileBytes) {
      this.#finish();
      this.#nameMs = -1;
    }
    return true;
  }

  /** Drops the open file and the buffered rows after a failure; reports them lost. */
  #fail(err: unknown): void {
    const lost = (this.#file?.rows ?? 0) + this.#cols.rows;
    if (this.#file !== null) {
      try {
        closeSync(this.#file.fd);
      } catch {
        // already closed
      }
      try {
        unlinkSync(this.#file.tmp);
      } catch {
        // never created or gone
      }
      this.#file = null;
    }
    this.#cols.reset();
    this.#oldestMs = 0;
    this.#intervalEnd = 0;
    const r = this.#pending;
    r.error = (err as Error)?.message ?? String(err);
    r.lostRows = (r.lostRows ?? 0) + lost;
    this.#receipts.push(r);
    this.#pending = this.#blank();
  }

  /** Flushes the buffered rows, writes the footer, syncs and renames the file into place. */
  #finish(): void {
    if (this.#cols.rows > 0 && !this.#flushGroup(this.#now())) return;
    const f = this.#file;
    if (f === null) return;
    if (this.#o.discard === true) {
      f.writer.finish();
      closeSync(f.fd);
      this.#file = null;
      return;
    }
    try {
      const t0 = performance.now();
      const bytes = f.writer.finish();
      fdatasyncSync(f.fd);
      closeSync(f.fd);
      const dest = this.#destination(f.name);
      renameSync(f.tmp, dest);
      this.#file = null;
      this.#pending.writeMs += performance.now() - t0;
      this.#pending.files.push({ path: dest, rows: f.rows, bytes });
      this.#receipts.push(this.#pending);
      this.#pending = this.#blank();
      this.#oldestMs = 0;
    } catch (err) {
      this.#fail(err);
    }
  }

  /** The final path for `name`, made unique (a size rotation within the same second). */
  #destination(name: string): string {
    const path = join(this.#o.dir, name);
    makeDirs(join(path, ".."));
    let dest = path;
    for (let n = 1; ; n++) {
      try {
        statSync(dest);
      } catch {
        return dest;
      }
      dest = path.replace(/\.parquet$/, `-${n}.parquet`);
    }
  }

  append(records: readonly FlowRecord[]): void {
    const now = this.#now();
    if (this.#intervalEnd > 0 && now >= this.#intervalEnd) this.#endInterval();
    if (this.#intervalEnd === 0 && records.length > 0) this.#startInterval(now);
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      if (this.#oldestMs === 0 || r.time_received_ms < this.#oldestMs) this.#oldestMs = r.time_received_ms;
      this.#cols.append(r);
      if (this.#cols.full) this.#flushGroup(now);
    }
  }

  /**
   * One record, as the worker decodes it (no batch held). The interval clock is read every 1024 records
   * (and the worker's tick polls every second), so a file may run a little past its boundary.
   */
  add(r: FlowRecord): void {
    if (this.#intervalEnd === 0) this.#startInterval(this.#now());
    else if ((++this.#sinceCheck & 1023) === 0 && this.#now() >= this.#intervalEnd) {
      this.#endInterval();
      this.#startInterval(this.#now());
    }
    if (this.#oldestMs === 0 || r.time_received_ms < this.#oldestMs) this.#oldestMs = r.time_received_ms;
    this.#cols.append(r);
    if (this.#cols.full) this.#flushGroup(this.#now());
  }

  #startInterval(now: number): void {
    const start = Math.floor(now / this.#o.rotateMs) * this.#o.rotateMs;
    this.#intervalEnd = start + this.#o.rotateMs;
    this.#nameMs = start;
  }

  #endInterval(): void {
    this.#finish();
    this.#intervalEnd = 0;
  }

  /** Rotates on time (call it now and then: the worker's tick), or finishes everything when `closing`. */
  poll(closing: boolean): void {
    if (closing || (this.#intervalEnd > 0 && this.#now() >= this.#intervalEnd)) this.#endInterval();
  }

  /** Receipts since the last call (finished and failed files; metrics increments). */
  takeReceipts(): Receipt[] {
    const out = this.#receipts;
    this.#receipts = [];
    const p = this.#pending;
    if (p.rowGroups > 0 || p.abandonedFiles > 0) {
      out.push(p);
      this.#pending = this.#blank();
    }
    return out;
  }

  get oldestMs(): number {
    return this.#oldestMs;
  }
}

/** A receipt as a batch for the main thread: records = finished rows (or lost rows when `error`). */
function receiptBatch(sink: string, r: Receipt, oldestMs: number): EncodedBatch {
  const records = r.error !== undefined ? (r.lostRows ?? 0) : r.files.reduce((n, f) => n + f.rows, 0);
  return {
    sink,
    records,
    parts: [{ key: "parquet", records, data: new TextEncoder().encode(JSON.stringify(r)) }],
    oldestMs,
  };
}

function createParquetEncoder(uri: string, options: ParquetOptions, ctx?: EncoderContext): SinkEncoder {
  const dir = parseParquetUri(uri);
  // opened lazily: configuration validation builds encoders in the main thread too
  let archive: ArchiveWriter | null = null;
  const get = (): ArchiveWriter => {
    archive ??= new ArchiveWriter(
      ctx?.discard === true
        ? // the warm-up: small row groups, so that building and compressing them runs a few times
          {
            ...options,
            rowGroupRows: Math.min(options.rowGroupRows, 4096),
            dir,
            worker: ctx.worker,
            discard: true,
          }
        : { ...options, dir, worker: ctx?.worker ?? 0 },
    );
    return archive;
  };
  const empty = (): EncodedBatch => ({ sink: uri, records: 0, parts: [], oldestMs: 0 });
  return {
    encode(records: readonly FlowRecord[]): EncodedBatch {
      get().append(records);
      return empty();
    },
    add(record: FlowRecord): void {
      (archive ?? get()).add(record);
    },
    poll(closing: boolean): EncodedBatch[] {
      if (archive === null) return [];
      const oldest = archive.oldestMs;
      archive.poll(closing);
      const receipts = archive.takeReceipts();
      if (ctx?.discard === true) return []; // nothing was written: nothing to report
      return receipts.map((r) => receiptBatch(uri, r, oldest > 0 ? oldest : Date.now()));
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Main thread: receipts, metrics, retention

export interface ArchiveStats {
  dir: string;
  /** Finished files and their rows and bytes, since start. */
  files: number;
  rows: number;
  bytes: number;
  rowGroups: number;
  compressSeconds: number;
  writeSeconds: number;
  /** Files that could not be written, and their rows (lost). */
  writeErrors: number;
  lostRows: number;
  abandonedFiles: number;
  lastError: string;
  /** On disk at the last retention sweep (every finished file in the archive, any run). */
  diskFiles: number;
  diskBytes: number;
  retentionDeletedFiles: number;
  retentionDeletedBytes: number;
}

interface FileEntry {
  path: string;
  size: number;
  mtimeMs: number;
}

async function listArchive(dir: string): Promise<FileEntry[]> {
  const out: FileEntry[] = [];
  const walk = async (d: string, depth: number): Promise<void> => {
    let entries: import("node:fs").Dirent[];
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory() && depth < 3 && e.name !== TMP) await walk(p, depth + 1);
      else if (e.isFile() && e.name.endsWith(".parquet")) {
        try {
          const s = await stat(p);
          out.push({ path: p, size: s.size, mtimeMs: s.mtimeMs });
        } catch {
          // deleted meanwhile
        }
      }
    }
  };
  await walk(dir, 0);
  return out;
}

export class ParquetSink implements Sink {
  readonly name: string;
  readonly dir: string;
  readonly #o: ParquetOptions;
  readonly #log: SinkContext["logger"];
  readonly #s: ArchiveStats;
  #timer: NodeJS.Timeout | null = null;
  #sweeping: Promise<void> | null = null;

  constructor(name: string, dir: string, o: ParquetOptions, log: SinkContext["logger"]) {
    this.name = name;
    this.dir = dir;
    this.#o = o;
    this.#log = log;
    this.#s = {
      dir,
      files: 0,
      rows: 0,
      bytes: 0,
      rowGroups: 0,
      compressSeconds: 0,
      writeSeconds: 0,
      writeErrors: 0,
      lostRows: 0,
      abandonedFiles: 0,
      lastError: "",
      diskFiles: 0,
      diskBytes: 0,
      retentionDeletedFiles: 0,
      retentionDeletedBytes: 0,
    };
  }

  /** Creates the directory (fails fast when it cannot), removes leftover temporary files, starts retention. */
  static async open(
    name: string,
    dir: string,
    o: ParquetOptions,
    log: SinkContext["logger"],
  ): Promise<ParquetSink> {
    makeDirs(join(dir, TMP));
    const probe = join(dir, TMP, `.probe-${process.pid}`);
    closeSync(openSync(probe, "w", 0o600));
    unlinkSync(probe);
    const s = new ParquetSink(name, dir, o, log);
    for (const n of await readdir(join(dir, TMP))) {
      if (!n.endsWith(".parquet.tmp")) continue;
      await unlink(join(dir, TMP, n)).catch(() => {});
      s.#s.abandonedFiles++;
    }
    if (s.#s.abandonedFiles > 0) {
      log.warn(
        { dir, files: s.#s.abandonedFiles },
        "deleted unfinished archive files of an earlier run (their flows were lost when it stopped without a shutdown)",
      );
    }
    await s.sweep();
    s.#timer = setInterval(() => void s.sweep(), o.retentionIntervalMs);
    s.#timer.unref();
    return s;
  }

  stats(): ArchiveStats {
    return { ...this.#s };
  }

  async write(batch: EncodedBatch): Promise<void> {
    let error: string | undefined;
    for (const p of batch.parts) {
      const r = JSON.parse(new TextDecoder().decode(p.data)) as Receipt;
      const s = this.#s;
      for (const f of r.files) {
        s.files++;
        s.rows += f.rows;
        s.bytes += f.bytes;
        s.diskFiles++;
        s.diskBytes += f.bytes;
      }
      s.rowGroups += r.rowGroups;
      s.compressSeconds += r.compressMs / 1000;
      s.writeSeconds += r.writeMs / 1000;
      s.abandonedFiles += r.abandonedFiles;
      if (r.error !== undefined) {
        s.writeErrors++;
        s.lostRows += r.lostRows ?? 0;
        s.lastError = r.error;
        error = `archive worker ${r.worker}: ${r.error} (${r.lostRows ?? 0} flows lost)`;
      }
    }
    if (error !== undefined) throw new Error(error);
  }

  /** Applies retention (age, then total size) and refreshes the on-disk totals. */
  sweep(): Promise<void> {
    this.#sweeping ??= this.#sweep().finally(() => {
      this.#sweeping = null;
    });
    return this.#sweeping;
  }

  async #sweep(): Promise<void> {
    try {
      const files = await listArchive(this.dir);
      files.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.path < b.path ? -1 : 1));
      let total = 0;
      for (const f of files) total += f.size;
      const cutoff = this.#o.retentionMs > 0 ? Date.now() - this.#o.retentionMs : -Infinity;
      const dirs = new Set<string>();
      let kept = files.length;
      for (const f of files) {
        const old = f.mtimeMs < cutoff;
        const over = this.#o.maxBytes > 0 && total > this.#o.maxBytes;
        if (!old && !over) break;
        try {
          await unlink(f.path);
          total -= f.size;
          kept--;
          this.#s.retentionDeletedFiles++;
          this.#s.retentionDeletedBytes += f.size;
          dirs.add(join(f.path, ".."));
        } catch (err) {
          this.#log.warn({ err, path: f.path }, "retention could not delete an archive file");
        }
      }
      // empty day, month and year directories go too
      for (const d of dirs) {
        for (let p = d, i = 0; i < 3 && p.startsWith(this.dir) && p !== this.dir; i++, p = join(p, "..")) {
          try {
            await rmdir(p);
          } catch {
            break;
          }
        }
      }
      this.#s.diskFiles = kept;
      this.#s.diskBytes = total;
    } catch (err) {
      this.#log.warn({ err, dir: this.dir }, "archive retention sweep failed");
    }
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await this.#sweeping;
  }
}

/** Prometheus text for the archives among `sinks` (one HELP/TYPE per series whatever their number). */
export function archivePrometheus(sinks: readonly Sink[]): string {
  const list = sinks.filter((s): s is ParquetSink => s instanceof ParquetSink);
  if (list.length === 0) return "";
  const series: Array<[string, "counter" | "gauge", string, (s: ArchiveStats) => number]> = [
    ["archive_files_total", "counter", "Archive files finished.", (s) => s.files],
    ["archive_rows_total", "counter", "Flow records in finished archive files.", (s) => s.rows],
    ["archive_written_bytes_total", "counter", "Bytes of finished archive files.", (s) => s.bytes],
    ["archive_row_groups_total", "counter", "Row groups written.", (s) => s.rowGroups],
    [
      "archive_compress_seconds_total",
      "counter",
      "Receive-worker time compressing pages.",
      (s) => s.compressSeconds,
    ],
    [
      "archive_write_seconds_total",
      "counter",
      "Receive-worker time in file writes and syncs.",
      (s) => s.writeSeconds,
    ],
    [
      "archive_write_errors_total",
      "counter",
      "Archive files that could not be written.",
      (s) => s.writeErrors,
    ],
    [
      "archive_lost_records_total",
      "counter",
      "Flow records lost with files that could not be written.",
      (s) => s.lostRows,
    ],
    [
      "archive_abandoned_files_total",
      "counter",
      "Unfinished files of an earlier run (crash) deleted at start.",
      (s) => s.abandonedFiles,
    ],
    ["archive_files", "gauge", "Archive files on disk (at the last retention sweep).", (s) => s.diskFiles],
    ["archive_bytes", "gauge", "Archive bytes on disk (at the last retention sweep).", (s) => s.diskBytes],
    [
      "archive_retention_deleted_files_total",
      "counter",
      "Archive files deleted by retention.",
      (s) => s.retentionDeletedFiles,
    ],
    [
      "archive_retention_deleted_bytes_total",
      "counter",
      "Archive bytes deleted by retention.",
      (s) => s.retentionDeletedBytes,
    ],
  ];
  let out = "";
  for (const [name, type, help, pick] of series) {
    const full = `clarion_collector_${name}`;
    out += `# HELP ${full} ${help}\n# TYPE ${full} ${type}\n`;
    for (const s of list) out += `${full}{sink=${JSON.stringify(s.name)}} ${pick(s.stats())}\n`;
  }
  return out;
}

/** The JSON /metrics view of an archive sink (snake_case keys), {} for any other sink. */
export function archiveMetricsJson(sink: Sink | undefined): object {
  if (!(sink instanceof ParquetSink)) return {};
  const s = sink.stats();
  return {
    archive: {
      dir: s.dir,
      files: s.files,
      rows: s.rows,
      bytes: s.bytes,
      row_groups: s.rowGroups,
      compress_seconds: s.compressSeconds,
      write_seconds: s.writeSeconds,
      write_errors: s.writeErrors,
      lost_rows: s.lostRows,
      abandoned_files: s.abandonedFiles,
      last_error: s.lastError,
      disk_files: s.diskFiles,
      disk_bytes: s.diskBytes,
      retention_deleted_files: s.retentionDeletedFiles,
      retention_deleted_bytes: s.retentionDeletedBytes,
    },
  };
}

export const parquetSink: SinkDefinition = {
  schemes: ["parquet"],
  optionKeys: PARQUET_OPTION_KEYS,
  createEncoder(uri: string, options: Readonly<Record<string, unknown>>, ctx?: EncoderContext): SinkEncoder {
    return createParquetEncoder(uri, parseParquetOptions(options), ctx);
  },
  async create(uri: string, ctx: SinkContext): Promise<Sink> {
    return ParquetSink.open(uri, parseParquetUri(uri), parseParquetOptions(ctx.options), ctx.logger);
  },
};
