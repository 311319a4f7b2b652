/**
 * The columnar batch: how a batch of flows travels from a receive worker (which encodes it, here) to the
 * SQLite writer on the main thread (./sink.ts, which reads it with `decodeColumnar`, here too). Private to
 * the two: both sides are built from the same source, so the format has no version beyond its MAGIC.
 * This comment is the one description of the format and its tricks; the writer refers to it.
 *
 * Why: the main thread parses nothing. Measured (bench/sqlite.bench.ts, 2-core machine) against the former
 * JSON rows + JSON.parse + 200-row INSERTs: encode 0.2 M → 1.5–3 M rows/s, insert 0.2 M → 0.3–0.5 M
 * rows/s (with the writer's multi-row INSERTs).
 *
 * Layout: one document in one transferable ArrayBuffer (a pooled buffer, src/pipeline/buffer-pool.ts;
 * the document is a view at offset 0, possibly shorter than the buffer), little-endian:
 *   header   8 × uint32: MAGIC, rows, saturated, strings, string bytes, exporters JSON bytes, ascii, 0
 *   numeric  NUMERIC_COLUMNS.length × rows float64, column-major (the integer columns of FLOW_COLUMNS, in
 *            its order)
 *   text     TEXT_COLUMN_LIST.length × rows int32, column-major (the TEXT columns, in FLOW_COLUMNS order)
 *   strings  (strings + 1) × uint32 byte offsets, then the UTF-8 bytes: entry k is bytes[off[k], off[k+1])
 *   exporters JSON `[[exporter,first,last,flows,bytes,packets],...]`: per exporter of the batch its
 *            receive-time range and sums for the `exporters` table (counters above 2^53 as digit strings,
 *            capped at 2^63−1)
 *
 * The tricks (every reader of the blocks must honour them):
 * - NULL: a numeric value NaN is SQL NULL (absent SGT, flow direction, NAT port, reverse counter...); a
 *   text value −1 is NULL (empty address, MAC 0, no prefix, empty name, no `extra`).
 * - Text values are indexes into the string table, never strings: each distinct low-cardinality string
 *   (exporter, type, next hop text, interface, VRF and application names, RDs) is stored once a batch,
 *   and a column's value equal to the row before's reuses its entry; addresses are not looked up in a map
 *   (that costs more than the bytes it saves). IPv4 addresses and networks are written as ASCII straight
 *   from the record's numbers.
 * - Counters (bytes, packets, reverse_bytes, reverse_packets; COUNTER_SOURCES): a value ≥ 0 is the count,
 *   exact in a double up to 2^53; above, the value is −(k+1) for string k holding the exact decimal (the
 *   writer binds it as a BigInt). A count above 2^63−1 (SQLite's INTEGER) is capped at 2^63−1, counted in
 *   the header's `saturated`, and for bytes/packets the exact value is added to the row's `extra` JSON.
 * - `ascii` (header word 6) = 1 when every string byte is below 0x80: the reader then decodes the whole
 *   table with one latin1 decode and slices it (byte offsets are character offsets).
 * - Typed-array views need 8-byte alignment: `decodeColumnar` copies a document that reaches it at an
 *   offset that is not a multiple of 8 once, then views the copy.
 * - The writer's column mask: per chunk of rows, a column holding one value over the chunk (exporter, type,
 *   zeros, NULLs) is bound once and the others row by row; the comparison is on the blocks' raw values
 *   (NaN against NaN counts as equal, text by index: equal strings in different entries count as
 *   different, which only costs a bound value). Bit c of the mask is column c of FLOW_COLUMNS.
 * - `ColumnarEncoder` takes one record at a time (`append`, streaming: no record is held until the batch is
 *   cut) and writes each column of row i at its fixed position in its scratch blocks (`f[k * cap + i]`,
 *   `t[k * cap + i]`, k its index in NUMERIC_COLUMNS or TEXT_COLUMN_LIST, cap the blocks' row capacity);
 *   `cut` copies the first n rows of each column into the document. A column appended to FLOW_COLUMNS
 *   needs its line in `#row` (test/sinks/sqlite.test.ts reads every column of a stored record back).
 */
import { ipv4Text, macString, maskIPv4, parseIPv4Number, writeIPv4, writeOctet } from "../../core/address.ts";
import type { FlowRecord } from "../../core/flow.ts";
import { networkString } from "../../encode/goflow2.ts";
import { jsonString } from "../../encode/json-batch.ts";
import { batchBuffers } from "../../pipeline/buffer-pool.ts";
import type { EncodedBatch, SinkEncoder } from "../types.ts";
import { FLOW_COLUMNS, INT64_MAX, TEXT_COLUMNS } from "./schema.ts";

/** A value bound to an SQLite parameter. */
export type SqlValue = number | bigint | string | null;

/** First word of a columnar batch ("CSQ1"); a JSON document would start with "{". */
const MAGIC = 0x31515343;
const HEADER_WORDS = 8;

/** Integer columns of `flows`, in the order of the numeric block. */
const NUMERIC_COLUMNS = FLOW_COLUMNS.filter((c) => !TEXT_COLUMNS.has(c));
/** Text columns of `flows`, in the order of the text block. */
const TEXT_COLUMN_LIST = FLOW_COLUMNS.filter((c) => TEXT_COLUMNS.has(c));
const NUM = NUMERIC_COLUMNS.length;
const TXT = TEXT_COLUMN_LIST.length;
const N_BYTES = NUMERIC_COLUMNS.indexOf("bytes");
const N_PACKETS = NUMERIC_COLUMNS.indexOf("packets");
const N_REV_BYTES = NUMERIC_COLUMNS.indexOf("reverse_bytes");
const N_REV_PACKETS = NUMERIC_COLUMNS.indexOf("reverse_packets");

function timeMs(ms: number): number {
  return ms > 0 && Number.isFinite(ms) ? Math.floor(ms) : 0;
}

function extraJson(extra: Record<string, number | bigint | string | boolean>, over: string): string {
  let s = "{";
  for (const k in extra) {
    const v = extra[k]!;
    let t: string;
    switch (typeof v) {
      case "string":
        t = jsonString(v);
        break;
      case "bigint":
        t = v.toString();
        break;
      case "boolean":
        t = v ? "true" : "false";
        break;
      default:
        t = Number.isFinite(v) ? `${v}` : "null";
    }
    s += `${s.length > 1 ? "," : ""}${jsonString(k)}:${t}`;
  }
  if (over !== "") s += `${s.length > 1 ? "," : ""}${over}`;
  return `${s}}`;
}

interface ExporterAgg {
  first: number;
  last: number;
  flows: number;
  bytes: number | bigint;
  packets: number | bigint;
}

function addCounter(a: number | bigint, b: number | bigint): number | bigint {
  if (typeof a === "number" && typeof b === "number") {
    const s = a + b;
    if (s <= Number.MAX_SAFE_INTEGER) return s;
  }
  return BigInt(a) + BigInt(b);
}

/** A counter as JSON for the exporters trailer: a number while exact in a double, else a digit string. */
function counterJson(v: number | bigint): string {
  if (typeof v === "number") {
    if (v <= 9007199254740992) return v >= 0 ? `${v}` : "0";
    v = BigInt(Math.floor(v));
  }
  if (v <= 9007199254740992n) return v >= 0n ? v.toString() : "0";
  return `"${v > INT64_MAX ? INT64_MAX : v}"`;
}

/** CIDR text of addr/len as GoFlow2 prints it, without quotes; "" (NULL) where GoFlow2 says "invalid Prefix". */
function networkText(addr: string, len: number): string {
  const text = networkString(addr, len);
  return text.charCodeAt(1) === 105 /* "invalid Prefix" */ ? "" : text.slice(1, -1);
}

/** Cache entries kept across batches (MAC and network text) before the caches are emptied. */
const MAX_CACHED = 1 << 16;

/**
 * Builds columnar batches a row at a time; keeps its scratch arrays and caches between batches (one encoder
 * per worker).
 * Strings are appended to the table as UTF-8 as they come; the low-cardinality ones (exporter, type, next
 * hop, interface names) and a column's value equal to the row before's are stored once. Addresses are not
 * looked up in a map: that costs more than the bytes it saves.
 */
class ColumnarEncoder {
  /** The column blocks of the open batch: column k's rows at [k × #cap, k × #cap + #n). */
  #num = new Float64Array(0);
  #txt = new Int32Array(0);
  #cap = 0;
  #n = 0;
  #exporters = new Map<string, ExporterAgg>();
  #lastExporter = "";
  #lastExporterIdx = -1;
  #lastType = "";
  #lastTypeIdx = -1;
  /** String table: UTF-8 bytes and start offsets (entry k is bytes[offs[k], offs[k + 1])). */
  #bytes = new Uint8Array(1 << 16);
  #offs = new Uint32Array(1 << 12);
  #count = 0;
  #used = 0;
  #ascii = true;
  #index = new Map<string, number>();
  #macs = new Map<number, string>();
  #nets = [new Map<string, string>(), new Map<string, string>()];
  /** Per text column: the previous row's IPv4 network key (masked address × 64 + length), or −1. */
  #prevNet = new Float64Array(TXT).fill(-1);
  #netLen = [-1, -1];
  /** Per text column: the previous row's string and its entry. */
  #prev: string[] = new Array(TXT).fill("");
  #prevAt = new Int32Array(TXT);
  saturated = 0;

  /** A new string table entry starting at the end of the bytes, with room for `maxBytes` more. */
  #entry(maxBytes: number): number {
    const k = this.#count++;
    if (k + 2 > this.#offs.length) {
      const offs = new Uint32Array(this.#offs.length * 2);
      offs.set(this.#offs);
      this.#offs = offs;
    }
    const at = this.#used;
    if (at + maxBytes > this.#bytes.length) {
      const bytes = new Uint8Array(Math.max(this.#bytes.length * 2, at + maxBytes));
      bytes.set(this.#bytes.subarray(0, at));
      this.#bytes = bytes;
    }
    this.#offs[k] = at;
    return k;
  }

  /** Appends s to the string table; returns its entry. */
  #add(s: string): number {
    const len = s.length;
    const k = this.#entry(len * 3);
    const out = this.#bytes;
    let at = this.#used;
    for (let c = 0; c < len; c++) {
      const ch = s.charCodeAt(c);
      if (ch > 0x7f) {
        this.#ascii = false;
        at =
          this.#offs[k]! + Buffer.from(out.buffer, out.byteOffset).write(s, this.#offs[k]!, len * 3, "utf8");
        break;
      }
      out[at++] = ch;
    }
    this.#used = at;
    return k;
  }

  /** Appends "a.b.c.d/len" for key = masked address × 64 + len ("a.b.c.d" for len 0); returns its entry. */
  #addV4Net(key: number): number {
    const k = this.#entry(20); // "255.255.255.255/32" + the 2 bytes writeOctet may write past the end
    const out = this.#bytes;
    let at = this.#used;
    const len = key % 64;
    at = writeIPv4(out, at, (key - len) / 64);
    if (len !== 0) {
      out[at++] = 47;
      at = writeOctet(out, at, len);
    }
    this.#used = at;
    return k;
  }

  /** Text column t holding the IPv4 address `v` (a number): the previous row's entry when equal, else new. */
  #v4(t: number, v: number): number {
    return this.#v4Key(t, v * 64); // length 0: the address itself, never a network (lengths 1..32)
  }

  /** Text column t holding IPv4 key `key` (address × 64 + prefix length): the previous row's entry or new. */
  #v4Key(t: number, key: number): number {
    if (key === this.#prevNet[t]) return this.#prevAt[t]!;
    this.#prev[t] = "";
    this.#prevNet[t] = key;
    const k = this.#addV4Net(key);
    this.#prevAt[t] = k;
    return k;
  }

  /** An address column: from the IPv4 number when the record has one (no string made), else its text. */
  #addr(t: number, v4: number, text: string): number {
    return v4 >= 0 ? this.#v4(t, v4) : this.#text(t, text);
  }

  /** The entry of a low-cardinality string (stored once a batch). */
  #intern(s: string): number {
    let k = this.#index.get(s);
    if (k === undefined) {
      k = this.#add(s);
      this.#index.set(s, k);
    }
    return k;
  }

  /** Text column t: −1 (NULL) for "", the previous row's entry for the same string, else a new entry. */
  #text(t: number, s: string): number {
    if (s === "") return -1;
    if (s === this.#prev[t]) return this.#prevAt[t]!;
    const k = this.#add(s);
    this.#prev[t] = s;
    this.#prevNet[t] = -1;
    this.#prevAt[t] = k;
    return k;
  }

  #mac(t: number, mac: number): number {
    if (mac === 0) return -1;
    let s = this.#macs.get(mac);
    if (s === undefined) {
      if (this.#macs.size >= MAX_CACHED) this.#macs.clear();
      s = macString(mac);
      this.#macs.set(mac, s);
    }
    return this.#text(t, s);
  }

  /**
   * CIDR text of an address and prefix length like GoFlow2's, or −1 (NULL) for no prefix. The address is
   * `num` (the record's IPv4 number) when ≥ 0, else the text `addr`. An IPv4 network is written as ASCII
   * straight into the string table (no string made), reusing the previous row's entry for the same network;
   * others are cached per address and length.
   */
  #net(t: number, side: number, num: number, addr: string, len: number): number {
    if (len <= 0 || (num < 0 && addr === "")) return -1;
    const v4 = !(len <= 32 && Number.isInteger(len)) ? -1 : num >= 0 ? num : parseIPv4Number(addr);
    if (v4 >= 0) return this.#v4Key(t, maskIPv4(v4, len) * 64 + len);
    // a length no IPv4 prefix has (GoFlow2 prints "invalid Prefix": NULL here)
    if (num >= 0) return this.#text(t, networkText(ipv4Text(num), len));
    const cache = this.#nets[side]!;
    if (this.#netLen[side] !== len) {
      cache.clear();
      this.#netLen[side] = len;
    }
    let s = cache.get(addr);
    if (s === undefined) {
      if (cache.size >= MAX_CACHED) cache.clear();
      s = networkText(addr, len);
      cache.set(addr, s);
    }
    return this.#text(t, s);
  }

  /** A counter: the number while exact (≤ 2^53), else −(k+1) for string k holding the digits; saturates. */
  #counter(v: number | bigint): number {
    if (typeof v === "number") {
      if (v <= 9007199254740992) return v >= 0 ? v : 0;
      v = BigInt(Math.floor(v));
    }
    if (v <= 9007199254740992n) return v >= 0n ? Number(v) : 0;
    if (v > INT64_MAX) {
      this.saturated++;
      v = INT64_MAX;
    }
    return -this.#add(v.toString()) - 1;
  }

  /** Rows in the open batch. */
  get rows(): number {
    return this.#n;
  }

  /** Starts a new batch: per-batch state cleared (the MAC and network caches stay). */
  #reset(): void {
    this.#n = 0;
    this.#count = 0;
    this.#used = 0;
    this.#ascii = true;
    this.#index.clear();
    this.#prev.fill("");
    this.#prevNet.fill(-1);
    this.saturated = 0;
    this.#exporters = new Map();
    this.#lastExporter = "";
    this.#lastExporterIdx = -1;
    this.#lastType = "";
    this.#lastTypeIdx = -1;
  }

  /** Room for `rows` rows in the column blocks (each column keeps its rows at c × capacity). */
  #reserve(rows: number): void {
    const cap = this.#cap;
    if (rows <= cap) return;
    const next = Math.max(rows, cap * 2, 1024);
    const f = new Float64Array(NUM * next);
    const t = new Int32Array(TXT * next);
    const n = this.#n;
    for (let c = 0; c < NUM; c++) f.set(this.#num.subarray(c * cap, c * cap + n), c * next);
    for (let c = 0; c < TXT; c++) t.set(this.#txt.subarray(c * cap, c * cap + n), c * next);
    this.#num = f;
    this.#txt = t;
    this.#cap = next;
  }

  /**
   * Adds one record as the next row of the open batch. Keeps nothing of the record (values and string
   * table bytes only). When it throws, the row is not added (its string table entries stay, unreferenced).
   */
  append(r: FlowRecord): void {
    const i = this.#n;
    if (i === this.#cap) this.#reserve(i + 1);
    const c = this.#cap;
    const f = this.#num;
    const t = this.#txt;
    const saturatedBefore = this.saturated;
    try {
      this.#row(r, i, c, f, t);
    } catch (err) {
      this.saturated = saturatedBefore;
      throw err;
    }
    this.#n = i + 1;
  }

  /** Row i of the blocks f and t (columns `c` apart) from record r; the exporter's sums last. */
  #row(r: FlowRecord, i: number, c: number, f: Float64Array, t: Int32Array): void {
    const exporter = r.sampler_address !== "" ? r.sampler_address : r.switch_id;
    const tr = timeMs(r.time_received_ms);
    f[i] = tr;
    f[c + i] = timeMs(r.time_flow_start_ms);
    f[2 * c + i] = timeMs(r.time_flow_end_ms);
    f[3 * c + i] = r.sequence_num;
    f[4 * c + i] = r.sampling_rate;
    f[5 * c + i] = r.src_port;
    f[6 * c + i] = r.dst_port;
    f[7 * c + i] = r.proto;
    f[8 * c + i] = r.etype;
    const sat = this.saturated;
    f[9 * c + i] = this.#counter(r.bytes);
    const bytesSaturated = this.saturated !== sat;
    f[10 * c + i] = this.#counter(r.packets);
    const packetsSaturated = this.saturated - sat > (bytesSaturated ? 1 : 0);
    f[11 * c + i] = r.in_if;
    f[12 * c + i] = r.out_if;
    f[13 * c + i] = r.src_vlan;
    f[14 * c + i] = r.dst_vlan;
    f[15 * c + i] = r.vlan_id;
    f[16 * c + i] = r.ip_tos;
    f[17 * c + i] = r.tcp_flags;
    f[18 * c + i] = r.icmp_type;
    f[19 * c + i] = r.icmp_code;
    f[20 * c + i] = r.src_as;
    f[21 * c + i] = r.dst_as;
    f[22 * c + i] = r.src_sgt ?? Number.NaN;
    f[23 * c + i] = r.dst_sgt ?? Number.NaN;
    f[24 * c + i] = r.flow_direction ?? Number.NaN;
    f[25 * c + i] = r.observation_domain_id;
    f[26 * c + i] = r.post_nat_src_port ?? Number.NaN;
    f[27 * c + i] = r.post_nat_dst_port ?? Number.NaN;
    f[28 * c + i] = r.reverse_bytes === null ? Number.NaN : this.#counter(r.reverse_bytes);
    f[29 * c + i] = r.reverse_packets === null ? Number.NaN : this.#counter(r.reverse_packets);
    f[30 * c + i] = r.in_vrf_id ?? Number.NaN;
    f[31 * c + i] = r.out_vrf_id ?? Number.NaN;
    if (exporter !== this.#lastExporter || this.#lastExporterIdx < 0) {
      this.#lastExporter = exporter;
      this.#lastExporterIdx = this.#intern(exporter);
    }
    t[i] = this.#lastExporterIdx;
    if (r.type !== this.#lastType || this.#lastTypeIdx < 0) {
      this.#lastType = r.type;
      this.#lastTypeIdx = this.#intern(r.type);
    }
    t[c + i] = this.#lastTypeIdx;
    const src4 = r.src_v4;
    const dst4 = r.dst_v4;
    const srcText = src4 >= 0 ? "" : r.src_addr_text;
    const dstText = dst4 >= 0 ? "" : r.dst_addr_text;
    t[2 * c + i] = this.#addr(2, src4, srcText);
    t[3 * c + i] = this.#addr(3, dst4, dstText);
    t[4 * c + i] = this.#mac(4, r.src_mac);
    t[5 * c + i] = this.#mac(5, r.dst_mac);
    const nextHop4 = r.next_hop_v4;
    const nextHop = nextHop4 >= 0 ? "" : r.next_hop_text;
    t[6 * c + i] = nextHop4 >= 0 ? this.#v4(6, nextHop4) : nextHop === "" ? -1 : this.#intern(nextHop);
    t[7 * c + i] = this.#net(7, 0, src4, srcText, r.src_net);
    t[8 * c + i] = this.#net(8, 1, dst4, dstText, r.dst_net);
    t[9 * c + i] = r.in_if_name === "" ? -1 : this.#intern(r.in_if_name);
    t[10 * c + i] = r.out_if_name === "" ? -1 : this.#intern(r.out_if_name);
    let over = "";
    if (bytesSaturated) over = `"bytes":${r.bytes.toString()}`;
    if (packetsSaturated) over += `${over === "" ? "" : ","}"packets":${r.packets.toString()}`;
    t[11 * c + i] = r.extra === null && over === "" ? -1 : this.#add(extraJson(r.extra ?? {}, over));
    t[12 * c + i] = r.post_nat_src_addr === "" ? -1 : this.#intern(r.post_nat_src_addr);
    t[13 * c + i] = r.post_nat_dst_addr === "" ? -1 : this.#intern(r.post_nat_dst_addr);
    t[14 * c + i] = r.in_vrf_name === "" ? -1 : this.#intern(r.in_vrf_name);
    t[15 * c + i] = r.out_vrf_name === "" ? -1 : this.#intern(r.out_vrf_name);
    t[16 * c + i] = r.mpls_vpn_rd === "" ? -1 : this.#intern(r.mpls_vpn_rd);
    t[17 * c + i] = r.application_name === "" ? -1 : this.#intern(r.application_name);
    const agg = this.#exporters.get(exporter);
    if (agg === undefined) {
      this.#exporters.set(exporter, { first: tr, last: tr, flows: 1, bytes: r.bytes, packets: r.packets });
    } else {
      if (tr < agg.first) agg.first = tr;
      if (tr > agg.last) agg.last = tr;
      agg.flows++;
      agg.bytes = addCounter(agg.bytes, r.bytes);
      agg.packets = addCounter(agg.packets, r.packets);
    }
  }

  /** The open batch as a columnar document (a view at offset 0 of a pooled buffer); a new batch opens. */
  cut(): Uint8Array {
    const n = this.#n;
    const cap = this.#cap;
    const f = this.#num;
    const t = this.#txt;
    let e = "";
    for (const [name, a] of this.#exporters) {
      e += `${e === "" ? "" : ","}[${jsonString(name)},${a.first},${a.last},${a.flows},${counterJson(a.bytes)},${counterJson(a.packets)}]`;
    }
    const exportersJson = `[${e}]`;
    const ns = this.#count;
    const bytes = this.#used;
    this.#offs[ns] = bytes;
    const eBytes = Buffer.byteLength(exportersJson, "utf8");
    const numAt = HEADER_WORDS * 4;
    const txtAt = numAt + NUM * n * 8;
    const offAt = txtAt + TXT * n * 4;
    const strAt = offAt + (ns + 1) * 4;
    const total = strAt + bytes + eBytes;
    // A pooled buffer (possibly longer than `total`, with old bytes): every section below is written whole.
    const view = batchBuffers.take(total);
    const out = Buffer.from(view.buffer, 0, total);
    const head = new Uint32Array(out.buffer, 0, HEADER_WORDS);
    head[0] = MAGIC;
    head[1] = n;
    head[2] = this.saturated;
    head[3] = ns;
    head[4] = bytes;
    head[5] = eBytes;
    head[6] = this.#ascii ? 1 : 0;
    head[7] = 0;
    if (n > 0) {
      for (let c = 0; c < NUM; c++) {
        new Float64Array(out.buffer, numAt + c * n * 8, n).set(f.subarray(c * cap, c * cap + n));
      }
      for (let c = 0; c < TXT; c++) {
        new Int32Array(out.buffer, txtAt + c * n * 4, n).set(t.subarray(c * cap, c * cap + n));
      }
    }
    new Uint32Array(out.buffer, offAt, ns + 1).set(this.#offs.subarray(0, ns + 1));
    out.set(this.#bytes.subarray(0, bytes), strAt);
    out.write(exportersJson, strAt + bytes, eBytes, "utf8");
    this.#reset();
    return out;
  }
}

/**
 * The sqlite output's encoder. Streaming: each appended record becomes a row of the open batch's column
 * blocks at once (no record held), `cut` writes the document; `encode` is the same for a whole batch.
 */
export function createSqliteEncoder(sinkName: string): SinkEncoder {
  const enc = new ColumnarEncoder();
  let oldestMs = 0;
  const self = {
    append(r: FlowRecord): void {
      enc.append(r);
      const t = r.time_received_ms;
      if (enc.rows === 1 || t < oldestMs) oldestMs = t;
    },
    cut(): EncodedBatch {
      const n = enc.rows;
      if (n === 0) return { sink: sinkName, records: 0, parts: [], oldestMs: 0 };
      const data = enc.cut();
      return {
        sink: sinkName,
        records: n,
        parts: [{ key: "", records: n, data: new Uint8Array(data.buffer, 0, data.length) }],
        oldestMs,
      };
    },
    encode(records: readonly FlowRecord[]): EncodedBatch {
      if (enc.rows > 0) throw new Error(`${sinkName}: encode() while a batch is open`);
      try {
        for (const r of records) self.append(r);
      } catch (err) {
        enc.cut(); // the batch is lost for this output, as a whole (the caller counts it)
        throw err;
      }
      return self.cut();
    },
  };
  return self;
}

// ---------------------------------------------------------------------------------------------------------
// Reading (the writer, main thread)

/** Where each `flows` column lives in the columnar batch: numeric block column, or −(text column + 1). */
export const COLUMN_SOURCE: readonly number[] = FLOW_COLUMNS.map((c) =>
  TEXT_COLUMNS.has(c) ? -TEXT_COLUMN_LIST.indexOf(c) - 1 : NUMERIC_COLUMNS.indexOf(c),
);

/** Numeric block columns holding counters (−(k+1) = string k, see the module comment). */
export const COUNTER_SOURCES: ReadonlySet<number> = new Set([N_BYTES, N_PACKETS, N_REV_BYTES, N_REV_PACKETS]);

/** A columnar batch seen from the writer: the blocks as typed arrays, the string table decoded once. */
export interface ColumnarBatch {
  rows: number;
  saturated: number;
  num: Float64Array;
  txt: Int32Array;
  strings: string[];
  exporters: SqlValue[][];
}

/** Reads a columnar document (see the module comment); throws on one that is not, or is cut short. */
export function decodeColumnar(data: Uint8Array): ColumnarBatch {
  if (data.byteOffset % 8 !== 0) data = new Uint8Array(data); // typed-array views need alignment
  const head =
    data.length >= HEADER_WORDS * 4 ? new Uint32Array(data.buffer, data.byteOffset, HEADER_WORDS) : null;
  if (head === null || head[0] !== MAGIC) {
    throw new Error("sqlite sink: not a columnar batch (encoded by another version?)");
  }
  const n = head[1]!;
  const ns = head[3]!;
  const numAt = data.byteOffset + HEADER_WORDS * 4;
  const txtAt = numAt + NUM * n * 8;
  const offAt = txtAt + TXT * n * 4;
  const strAt = offAt + (ns + 1) * 4;
  if (strAt + head[4]! + head[5]! !== data.byteOffset + data.length) {
    throw new Error("sqlite sink: truncated columnar batch");
  }
  const offsets = new Uint32Array(data.buffer, offAt, ns + 1);
  const buf = Buffer.from(data.buffer, 0, data.byteOffset + data.length);
  const strings: string[] = new Array(ns);
  if (head[6] === 1) {
    // all ASCII: one latin1 decode, then substrings (byte offsets are character offsets)
    const all = buf.toString("latin1", strAt, strAt + head[4]!);
    for (let k = 0; k < ns; k++) strings[k] = all.slice(offsets[k], offsets[k + 1]);
  } else {
    for (let k = 0; k < ns; k++)
      strings[k] = buf.toString("utf8", strAt + offsets[k]!, strAt + offsets[k + 1]!);
  }
  const eAt = strAt + head[4]!;
  const exporters = JSON.parse(buf.toString("utf8", eAt, eAt + head[5]!)) as SqlValue[][];
  return {
    rows: n,
    saturated: head[2]!,
    num: new Float64Array(data.buffer, numAt, NUM * n),
    txt: new Int32Array(data.buffer, txtAt, TXT * n),
    strings,
    exporters,
  };
}
