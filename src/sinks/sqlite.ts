/**
 * `sqlite:PATH`: flows into an SQLite database through node:sqlite (DatabaseSync, no native build).
 *
 * PATH is absolute, or relative to the working directory like any path on a command line (so the default
 * `sqlite:./data/flows.db` is `./data/flows.db`); `sqlite:` alone means `<dataDir>/flows.db`;
 * `sqlite:///abs/path` is accepted too.
 *
 * Schema (version 1, `PRAGMA user_version`), created with CREATE ... IF NOT EXISTS:
 * - `flows`: one row per flow. `src_ip, dst_ip, src_port, dst_port, protocol, bytes, packets` are the
 *   columns existing readers use; times are ms since the epoch (integers); MACs "aa:bb:cc:dd:ee:ff";
 *   `src_net`/`dst_net` are CIDR text like GoFlow2's ("10.0.0.0/24"); absent values (empty address, MAC 0,
 *   prefix length 0, no SGT...) are NULL; `extra` is the JSON object of the other decoded elements or NULL,
 *   with the VRF ids and the names options data resolved (`in_vrf_id`, `in_vrf_name`, `mpls_vpn_rd`,
 *   `application_name`...) when known;
 *   `post_nat_src_ip/_dst_ip/_src_port/_dst_port` (NAT) and `reverse_bytes/_packets` (RFC 5103 biflows)
 *   are NULL unless the exporter sent them (columns added to an older table by ALTER TABLE).
 *   Indexed by `time_received`; by `(exporter, time_received)` too only with `exporterIndex: true` (that
 *   index costs ~30 % of the insert rate; a database that already has it keeps it).
 * - `exporters`: per exporter first/last seen (ms), flows, bytes, packets; upserted with every batch.
 * - `interface_counters`: sFlow generic interface counters (`insertCounters` takes the sFlow decoder's
 *   InterfaceCounters records or generic rows; retention applies by `time`).
 * WAL journal, `synchronous=NORMAL`.
 *
 * Counters: bytes/packets are stored exactly as INTEGER up to 2^63−1 (SQLite's int64; beyond 2^53 they
 * travel as decimal text and are bound as BigInt). A uint64 above 2^63−1 cannot be an SQLite INTEGER
 * (text into an INTEGER column would turn into a lossy REAL), so the column saturates at 2^63−1 and the
 * exact decimal goes into `extra` under "bytes"/"packets"; `stats.saturated` counts such values
 * (reverse_bytes/reverse_packets are stored the same way; a saturated one is counted, not copied to extra). The
 * `exporters` sums add in SQLite (an overflow past 2^63−1 there becomes REAL).
 *
 * Encoding happens in the receive workers: the batch becomes one columnar binary document in one
 * transferable ArrayBuffer (numeric columns as float64 arrays, text columns as indexes into a UTF-8 string
 * table; layout below, at the encoder), so the main thread parses nothing. The writer inserts the batch in
 * one transaction with multi-row INSERTs of up to 1024 rows, prepared once per shape: a column with one
 * value over a chunk (exporter, type, zeros, NULLs) is bound once, the others per row straight from the
 * typed arrays. Measured (bench/sqlite.bench.ts, 2-core machine) against the former JSON rows + JSON.parse
 * + 200-row INSERTs: encode 0.2 M → 1.5–3 M rows/s, insert 0.2 M → 0.3–0.5 M rows/s (a numbered
 * parameter `?NNN` would be far slower: node:sqlite and SQLite look numbered names up linearly).
 *
 * Options (ctx.options; the encoder reads none):
 * - `retentionMs` (number, default 7 days; 0 keeps everything): rows older than now − retentionMs (by
 *   time_received, and interface_counters by time) are deleted,
 * - `retentionIntervalMs` (default 60000): how often the deletion runs (unref'd timer),
 * - `retentionChunkRows` (default 5000): rows per DELETE; the sweep yields to the event loop between chunks,
 * - `busyTimeoutMs` (default 5000): wait for a lock held by another connection (readers, backups),
 * - `exporterIndex` (boolean, default false): create the `(exporter, time_received)` index.
 * Pragmas: WAL, synchronous=NORMAL, cache_size 64 MiB, temp_store MEMORY, journal_size_limit 64 MiB, and
 * page_size 32 KiB for a new database (~+25 % insert rate against 4 KiB; an existing one keeps its own).
 *
 * Disk full. SQLite checkpoints the WAL by itself only at 1000 pages (32 MiB with 32 KiB pages), and
 * every commit appends whole pages (~200 KiB for a 200-row batch), so on a nearly full disk the WAL, not the
 * rows, takes the last space and the checkpoint that would give it back never comes. Hence:
 * - while the filesystem has less than LOW_SPACE_BYTES free (statfs, checked at most once a second), each
 *   write is followed by `wal_checkpoint(TRUNCATE)`, so the WAL stays one batch long and the space goes to
 *   the database itself;
 * - a write that fails with SQLITE_FULL or SQLITE_IOERR is rejected (the queue counts the batch as a write
 *   error), and from then on the WAL must be checkpointed before anything else is written (letting new rows
 *   take the space that comes back would fill the disk again before any checkpoint ran): each later write
 *   first tries `wal_checkpoint(TRUNCATE)`, at most once a second (batches in between are refused at once);
 *   when it succeeds, writing resumes. Both transitions are logged once.
 */
import { statfsSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { setImmediate as nextTurn } from "node:timers/promises";
import { ipv4Text, writeIPv4, writeOctet } from "../core/address.ts";
import { ConfigError } from "../core/errors.ts";
import type { FlowRecord } from "../core/flow.ts";
import { createPrivateFile, makeDirs, PRIVATE_DIR_MODE } from "../core/fs.ts";
import { ipv4Number, jsonString, macString, networkString } from "../encode/goflow2.ts";
import { batchBuffers } from "../pipeline/buffer-pool.ts";
import { InterfaceCounters } from "../protocols/sflow5.ts";
import type { EncodedBatch, Sink, SinkContext, SinkDefinition, SinkEncoder } from "./types.ts";

export const SCHEMA_VERSION = 1;
const DAY_MS = 86_400_000;
const INT64_MAX = 9223372036854775807n;

/** Columns of `flows`, in the order of the encoded row arrays. */
export const FLOW_COLUMNS = [
  "time_received",
  "time_flow_start",
  "time_flow_end",
  "exporter",
  "type",
  "sequence_num",
  "sampling_rate",
  "src_ip",
  "dst_ip",
  "src_port",
  "dst_port",
  "protocol",
  "etype",
  "bytes",
  "packets",
  "in_if",
  "out_if",
  "src_mac",
  "dst_mac",
  "src_vlan",
  "dst_vlan",
  "vlan_id",
  "ip_tos",
  "tcp_flags",
  "icmp_type",
  "icmp_code",
  "src_as",
  "dst_as",
  "next_hop",
  "src_net",
  "dst_net",
  "src_sgt",
  "dst_sgt",
  "flow_direction",
  "in_if_name",
  "out_if_name",
  "observation_domain_id",
  "extra",
  // issue 19: added to an existing table by ALTER TABLE (see #migrate); NULL when the exporter sent none
  "post_nat_src_ip",
  "post_nat_dst_ip",
  "post_nat_src_port",
  "post_nat_dst_port",
  "reverse_bytes",
  "reverse_packets",
] as const;

const TEXT_COLUMNS = new Set([
  "exporter",
  "type",
  "src_ip",
  "dst_ip",
  "src_mac",
  "dst_mac",
  "next_hop",
  "src_net",
  "dst_net",
  "in_if_name",
  "out_if_name",
  "extra",
  "post_nat_src_ip",
  "post_nat_dst_ip",
]);

const SCHEMA = `
CREATE TABLE IF NOT EXISTS flows (
  id INTEGER PRIMARY KEY,
  ${FLOW_COLUMNS.map((c) => `${c} ${TEXT_COLUMNS.has(c) ? "TEXT" : "INTEGER"}${c === "time_received" || c === "exporter" ? " NOT NULL" : ""}`).join(",\n  ")}
);
CREATE INDEX IF NOT EXISTS flows_time_received ON flows(time_received);
CREATE TABLE IF NOT EXISTS exporters (
  exporter TEXT PRIMARY KEY,
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  flows INTEGER NOT NULL DEFAULT 0,
  bytes INTEGER NOT NULL DEFAULT 0,
  packets INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS interface_counters (
  id INTEGER PRIMARY KEY,
  time INTEGER NOT NULL,
  agent TEXT NOT NULL,
  sub_agent_id INTEGER,
  if_index INTEGER NOT NULL,
  if_type INTEGER,
  if_speed INTEGER,
  if_direction INTEGER,
  if_admin_up INTEGER,
  if_oper_up INTEGER,
  in_octets INTEGER,
  in_ucast_pkts INTEGER,
  in_multicast_pkts INTEGER,
  in_broadcast_pkts INTEGER,
  in_discards INTEGER,
  in_errors INTEGER,
  in_unknown_protos INTEGER,
  out_octets INTEGER,
  out_ucast_pkts INTEGER,
  out_multicast_pkts INTEGER,
  out_broadcast_pkts INTEGER,
  out_discards INTEGER,
  out_errors INTEGER,
  promiscuous INTEGER
);
CREATE INDEX IF NOT EXISTS interface_counters_time ON interface_counters(time);
CREATE INDEX IF NOT EXISTS interface_counters_agent_if ON interface_counters(agent, if_index, time);
`;

// ---------------------------------------------------------------------------------------------------------
// Encoder (receive workers)
//
// One batch becomes one columnar binary document in a single transferable ArrayBuffer (little-endian):
//   header   8 × uint32: MAGIC, rows, saturated, strings, string bytes, exporters JSON bytes, 0, 0
//   numeric  NUMERIC_COLUMNS.length × rows float64, column-major; NaN is NULL; for bytes/packets a
//            negative value −(k+1) means "string k holds the exact decimal" (values above 2^53)
//   text     TEXT_COLUMNS.length × rows int32, column-major: an index into the string table, −1 is NULL
//   strings  (strings + 1) × uint32 byte offsets, then the UTF-8 bytes (each distinct string once a batch:
//            addresses, MACs, networks and the exporter repeat a lot)
//   exporters JSON `[[exporter,first,last,flows,bytes,packets],...]` (counters above 2^53 as digit strings)
// The main thread decodes the string table once and binds the columns directly (no JSON.parse).

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

/** The options-dictionary fields (issue 18) known for the record, as JSON members for `extra`. */
function dictionaryJson(r: FlowRecord): string {
  const m: string[] = [];
  if (r.in_vrf_id !== null) m.push(`"in_vrf_id":${r.in_vrf_id}`);
  if (r.out_vrf_id !== null) m.push(`"out_vrf_id":${r.out_vrf_id}`);
  if (r.in_vrf_name !== "") m.push(`"in_vrf_name":${jsonString(r.in_vrf_name)}`);
  if (r.out_vrf_name !== "") m.push(`"out_vrf_name":${jsonString(r.out_vrf_name)}`);
  if (r.mpls_vpn_rd !== "") m.push(`"mpls_vpn_rd":${jsonString(r.mpls_vpn_rd)}`);
  if (r.application_name !== "") m.push(`"application_name":${jsonString(r.application_name)}`);
  return m.join(",");
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
 * Builds one columnar batch; keeps its scratch arrays and caches between batches (one encoder per worker).
 * Strings are appended to the table as UTF-8 as they come; the low-cardinality ones (exporter, type, next
 * hop, interface names) and a column's value equal to the row before's are stored once. Addresses are not
 * looked up in a map: that costs more than the bytes it saves.
 */
class ColumnarEncoder {
  #num = new Float64Array(0);
  #txt = new Int32Array(0);
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
    const key = v * 64; // length 0: the address itself, never a network key (those have lengths 1..32)
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
    const v4 = !(len <= 32 && Number.isInteger(len)) ? -1 : num >= 0 ? num : ipv4Number(addr);
    if (v4 >= 0) {
      const key = (len === 32 ? v4 : (v4 & ~(0xffffffff >>> len)) >>> 0) * 64 + len;
      if (key === this.#prevNet[t]) return this.#prevAt[t]!;
      this.#prev[t] = "";
      this.#prevNet[t] = key;
      const k = this.#addV4Net(key);
      this.#prevAt[t] = k;
      return k;
    }
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

  encode(records: readonly FlowRecord[]): Uint8Array {
    const n = records.length;
    if (this.#num.length < NUM * n) {
      this.#num = new Float64Array(NUM * n);
      this.#txt = new Int32Array(TXT * n);
    }
    const f = this.#num;
    const t = this.#txt;
    this.#count = 0;
    this.#used = 0;
    this.#ascii = true;
    this.#index.clear();
    this.#prev.fill("");
    this.#prevNet.fill(-1);
    this.saturated = 0;
    const exporters = new Map<string, ExporterAgg>();
    let lastExporter = "";
    let lastExporterIdx = -1;
    let lastType = "";
    let lastTypeIdx = -1;
    for (let i = 0; i < n; i++) {
      const r = records[i]!;
      const exporter = r.sampler_address !== "" ? r.sampler_address : r.switch_id;
      const tr = timeMs(r.time_received_ms);
      f[i] = tr;
      f[n + i] = timeMs(r.time_flow_start_ms);
      f[2 * n + i] = timeMs(r.time_flow_end_ms);
      f[3 * n + i] = r.sequence_num;
      f[4 * n + i] = r.sampling_rate;
      f[5 * n + i] = r.src_port;
      f[6 * n + i] = r.dst_port;
      f[7 * n + i] = r.proto;
      f[8 * n + i] = r.etype;
      const sat = this.saturated;
      f[9 * n + i] = this.#counter(r.bytes);
      const bytesSaturated = this.saturated !== sat;
      f[10 * n + i] = this.#counter(r.packets);
      const packetsSaturated = this.saturated - sat > (bytesSaturated ? 1 : 0);
      f[11 * n + i] = r.in_if;
      f[12 * n + i] = r.out_if;
      f[13 * n + i] = r.src_vlan;
      f[14 * n + i] = r.dst_vlan;
      f[15 * n + i] = r.vlan_id;
      f[16 * n + i] = r.ip_tos;
      f[17 * n + i] = r.tcp_flags;
      f[18 * n + i] = r.icmp_type;
      f[19 * n + i] = r.icmp_code;
      f[20 * n + i] = r.src_as;
      f[21 * n + i] = r.dst_as;
      f[22 * n + i] = r.src_sgt ?? Number.NaN;
      f[23 * n + i] = r.dst_sgt ?? Number.NaN;
      f[24 * n + i] = r.flow_direction ?? Number.NaN;
      f[25 * n + i] = r.observation_domain_id;
      f[26 * n + i] = r.post_nat_src_port ?? Number.NaN;
      f[27 * n + i] = r.post_nat_dst_port ?? Number.NaN;
      f[28 * n + i] = r.reverse_bytes === null ? Number.NaN : this.#counter(r.reverse_bytes);
      f[29 * n + i] = r.reverse_packets === null ? Number.NaN : this.#counter(r.reverse_packets);
      if (exporter !== lastExporter || lastExporterIdx < 0) {
        lastExporter = exporter;
        lastExporterIdx = this.#intern(exporter);
      }
      t[i] = lastExporterIdx;
      if (r.type !== lastType || lastTypeIdx < 0) {
        lastType = r.type;
        lastTypeIdx = this.#intern(r.type);
      }
      t[n + i] = lastTypeIdx;
      const src4 = r.src_v4;
      const dst4 = r.dst_v4;
      const srcText = src4 >= 0 ? "" : r.src_addr_text;
      const dstText = dst4 >= 0 ? "" : r.dst_addr_text;
      t[2 * n + i] = this.#addr(2, src4, srcText);
      t[3 * n + i] = this.#addr(3, dst4, dstText);
      t[4 * n + i] = this.#mac(4, r.src_mac);
      t[5 * n + i] = this.#mac(5, r.dst_mac);
      const nextHop4 = r.next_hop_v4;
      const nextHop = nextHop4 >= 0 ? "" : r.next_hop_text;
      t[6 * n + i] = nextHop4 >= 0 ? this.#v4(6, nextHop4) : nextHop === "" ? -1 : this.#intern(nextHop);
      t[7 * n + i] = this.#net(7, 0, src4, srcText, r.src_net);
      t[8 * n + i] = this.#net(8, 1, dst4, dstText, r.dst_net);
      t[9 * n + i] = r.in_if_name === "" ? -1 : this.#intern(r.in_if_name);
      t[10 * n + i] = r.out_if_name === "" ? -1 : this.#intern(r.out_if_name);
      let over = "";
      if (bytesSaturated) over = `"bytes":${r.bytes.toString()}`;
      if (packetsSaturated) over += `${over === "" ? "" : ","}"packets":${r.packets.toString()}`;
      if (r.in_vrf_id !== null || r.out_vrf_id !== null || r.application_name !== "")
        over += `${over === "" ? "" : ","}${dictionaryJson(r)}`;
      t[11 * n + i] = r.extra === null && over === "" ? -1 : this.#add(extraJson(r.extra ?? {}, over));
      t[12 * n + i] = r.post_nat_src_addr === "" ? -1 : this.#intern(r.post_nat_src_addr);
      t[13 * n + i] = r.post_nat_dst_addr === "" ? -1 : this.#intern(r.post_nat_dst_addr);
      const agg = exporters.get(exporter);
      if (agg === undefined) {
        exporters.set(exporter, { first: tr, last: tr, flows: 1, bytes: r.bytes, packets: r.packets });
      } else {
        if (tr < agg.first) agg.first = tr;
        if (tr > agg.last) agg.last = tr;
        agg.flows++;
        agg.bytes = addCounter(agg.bytes, r.bytes);
        agg.packets = addCounter(agg.packets, r.packets);
      }
    }
    let e = "";
    for (const [name, a] of exporters) {
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
        new Float64Array(out.buffer, numAt + c * n * 8, n).set(f.subarray(c * n, (c + 1) * n));
      }
      new Int32Array(out.buffer, txtAt, TXT * n).set(t.subarray(0, TXT * n));
    }
    new Uint32Array(out.buffer, offAt, ns + 1).set(this.#offs.subarray(0, ns + 1));
    out.set(this.#bytes.subarray(0, bytes), strAt);
    out.write(exportersJson, strAt + bytes, eBytes, "utf8");
    return out;
  }
}

/** Encodes one batch into the columnar document (see above): a view at offset 0 of a pooled buffer. */
export function encodeSqliteBatch(records: readonly FlowRecord[]): Uint8Array {
  return new ColumnarEncoder().encode(records);
}

export function createSqliteEncoder(sinkName: string): SinkEncoder {
  const enc = new ColumnarEncoder();
  return {
    encode(records: readonly FlowRecord[]): EncodedBatch {
      let oldestMs = records.length > 0 ? records[0]!.time_received_ms : 0;
      for (const r of records) if (r.time_received_ms < oldestMs) oldestMs = r.time_received_ms;
      if (records.length === 0) return { sink: sinkName, records: 0, parts: [], oldestMs };
      const data = enc.encode(records);
      return {
        sink: sinkName,
        records: records.length,
        parts: [{ key: "", records: records.length, data: new Uint8Array(data.buffer, 0, data.length) }],
        oldestMs,
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Interface counters (sFlow counter samples)

/**
 * One interface counter sample (sFlow generic interface counters, RFC 3176 / sFlow v5 if_counters).
 * Generic on purpose: the sFlow decoder's record maps onto it field by field.
 */
export interface InterfaceCounterRow {
  /** Receive time, ms since the epoch. */
  time: number;
  /** sFlow agent (exporter) address. */
  agent: string;
  subAgentId?: number;
  ifIndex: number;
  ifType?: number;
  ifSpeed?: number | bigint;
  /** 0 unknown, 1 full duplex, 2 half duplex, 3 in, 4 out. */
  ifDirection?: number;
  /** ifStatus bit 0 (admin up) and bit 1 (oper up). */
  ifStatus?: number;
  inOctets?: number | bigint;
  inUcastPkts?: number;
  inMulticastPkts?: number;
  inBroadcastPkts?: number;
  inDiscards?: number;
  inErrors?: number;
  inUnknownProtos?: number;
  outOctets?: number | bigint;
  outUcastPkts?: number;
  outMulticastPkts?: number;
  outBroadcastPkts?: number;
  outDiscards?: number;
  outErrors?: number;
  promiscuous?: number;
}

/** Maps the sFlow decoder's generic interface counters (src/protocols/sflow5.ts) onto a row; null without them. */
export function counterRowFromSflow(c: InterfaceCounters): InterfaceCounterRow | null {
  if (!c.has_generic) return null;
  return {
    time: c.time_received_ms,
    agent: c.sampler_address,
    subAgentId: c.sub_agent_id,
    ifIndex: c.if_index,
    ifType: c.if_type,
    ifSpeed: c.if_speed,
    ifDirection: c.if_direction,
    ifStatus: (c.if_admin_status_up ? 1 : 0) | (c.if_oper_status_up ? 2 : 0),
    inOctets: c.if_in_octets,
    inUcastPkts: c.if_in_ucast_pkts,
    inMulticastPkts: c.if_in_multicast_pkts,
    inBroadcastPkts: c.if_in_broadcast_pkts,
    inDiscards: c.if_in_discards,
    inErrors: c.if_in_errors,
    inUnknownProtos: c.if_in_unknown_protos,
    outOctets: c.if_out_octets,
    outUcastPkts: c.if_out_ucast_pkts,
    outMulticastPkts: c.if_out_multicast_pkts,
    outBroadcastPkts: c.if_out_broadcast_pkts,
    outDiscards: c.if_out_discards,
    outErrors: c.if_out_errors,
    promiscuous: c.if_promiscuous_mode,
  };
}

const COUNTER_SQL = `INSERT INTO interface_counters(time, agent, sub_agent_id, if_index, if_type, if_speed,
  if_direction, if_admin_up, if_oper_up, in_octets, in_ucast_pkts, in_multicast_pkts, in_broadcast_pkts,
  in_discards, in_errors, in_unknown_protos, out_octets, out_ucast_pkts, out_multicast_pkts,
  out_broadcast_pkts, out_discards, out_errors, promiscuous)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;

type SqlValue = number | bigint | string | null;

function counterValue(v: number | bigint | undefined): SqlValue {
  if (v === undefined) return null;
  if (typeof v === "bigint") return v > INT64_MAX ? INT64_MAX : v;
  return v;
}

/** Inserts interface counter rows into an open database (one transaction). Returns the rows inserted. */
export function insertInterfaceCounters(db: DatabaseSync, rows: readonly InterfaceCounterRow[]): number {
  if (rows.length === 0) return 0;
  const stmt = db.prepare(COUNTER_SQL);
  db.exec("BEGIN");
  try {
    for (const c of rows) {
      const status = c.ifStatus;
      stmt.run(
        Math.floor(c.time),
        c.agent,
        c.subAgentId ?? null,
        c.ifIndex,
        c.ifType ?? null,
        counterValue(c.ifSpeed),
        c.ifDirection ?? null,
        status === undefined ? null : status & 1,
        status === undefined ? null : (status >>> 1) & 1,
        counterValue(c.inOctets),
        c.inUcastPkts ?? null,
        c.inMulticastPkts ?? null,
        c.inBroadcastPkts ?? null,
        c.inDiscards ?? null,
        c.inErrors ?? null,
        c.inUnknownProtos ?? null,
        counterValue(c.outOctets),
        c.outUcastPkts ?? null,
        c.outMulticastPkts ?? null,
        c.outBroadcastPkts ?? null,
        c.outDiscards ?? null,
        c.outErrors ?? null,
        c.promiscuous ?? null,
      );
    }
    db.exec("COMMIT");
  } catch (err) {
    db.exec("ROLLBACK");
    throw err;
  }
  return rows.length;
}

// ---------------------------------------------------------------------------------------------------------
// Writer (main thread)

export interface SqliteSinkOptions {
  retentionMs: number;
  retentionIntervalMs: number;
  retentionChunkRows: number;
  busyTimeoutMs: number;
  /** Also index flows by (exporter, time_received): faster per-exporter queries, ~30 % slower inserts. */
  exporterIndex: boolean;
}

function numberOption(
  options: Readonly<Record<string, unknown>>,
  key: string,
  def: number,
  min: number,
): number {
  const v = options[key];
  if (v === undefined) return def;
  if (typeof v !== "number" || !Number.isFinite(v) || v < min) {
    throw new ConfigError(key, `expected a number ≥ ${min}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function booleanOption(options: Readonly<Record<string, unknown>>, key: string, def: boolean): boolean {
  const v = options[key];
  if (v === undefined) return def;
  if (typeof v !== "boolean") throw new ConfigError(key, `expected true or false, got ${JSON.stringify(v)}`);
  return v;
}

export function parseSqliteOptions(options: Readonly<Record<string, unknown>>): SqliteSinkOptions {
  return {
    retentionMs: numberOption(options, "retentionMs", 7 * DAY_MS, 0),
    retentionIntervalMs: numberOption(options, "retentionIntervalMs", 60_000, 10),
    retentionChunkRows: numberOption(options, "retentionChunkRows", 5000, 1),
    busyTimeoutMs: numberOption(options, "busyTimeoutMs", 5000, 0),
    exporterIndex: booleanOption(options, "exporterIndex", false),
  };
}

export function parseSqliteUri(uri: string, dataDir: string, cwd: string = process.cwd()): string {
  if (!uri.startsWith("sqlite:")) throw new ConfigError("sink", `not an sqlite: URI: ${uri}`);
  let rest = uri.slice("sqlite:".length);
  if (rest.startsWith("//")) rest = rest.slice(2);
  if (rest === "") return join(dataDir, "flows.db");
  if (rest === ":memory:") return rest;
  return isAbsolute(rest) ? rest : resolve(cwd, rest);
}

export interface SqliteStats {
  batches: number;
  rows: number;
  /** Counter values above 2^63−1 stored saturated (exact value in `extra`). */
  saturated: number;
  retentionDeleted: number;
  errors: number;
}

const EXPORTER_UPSERT_ROW = `INSERT INTO exporters(exporter, first_seen, last_seen, flows, bytes, packets)
  VALUES (?, ?, ?, ?, ?, ?)
  ON CONFLICT(exporter) DO UPDATE SET
    first_seen = min(first_seen, excluded.first_seen),
    last_seen = max(last_seen, excluded.last_seen),
    flows = flows + excluded.flows,
    bytes = bytes + excluded.bytes,
    packets = packets + excluded.packets`;

/** Page size of a new database. */
const PAGE_SIZE = 32768;
/** SQLite's default SQLITE_MAX_VARIABLE_NUMBER (since 3.32). */
const MAX_VARIABLES = 32766;
/** Most rows one INSERT takes (a power of two; chunks are powers of two so few statements get prepared). */
const MAX_CHUNK_ROWS = 1024;
/** Prepared multi-row INSERTs kept (by shape and row count); the cache is emptied when it grows past this. */
const MAX_STATEMENTS = 64;

/** Where each `flows` column lives in the columnar batch: numeric block column, or −(text column + 1). */
const COLUMN_SOURCE = FLOW_COLUMNS.map((c) =>
  TEXT_COLUMNS.has(c) ? -TEXT_COLUMN_LIST.indexOf(c) - 1 : NUMERIC_COLUMNS.indexOf(c),
);

/** A columnar batch seen from the writer: the blocks as typed arrays, the string table decoded once. */
interface ColumnarBatch {
  rows: number;
  saturated: number;
  num: Float64Array;
  txt: Int32Array;
  strings: string[];
  exporters: SqlValue[][];
}

function decodeColumnar(data: Uint8Array): ColumnarBatch {
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

/**
 * Which columns hold one value over rows [at, at + size): bit c of the mask (a number, 44 bits) is set for
 * a column that varies. A constant column is bound once per INSERT and referenced by every row.
 */
function varyingMask(b: ColumnarBatch, at: number, size: number): number {
  const n = b.rows;
  const end = at + size;
  let mask = 0;
  let bit = 1;
  for (let c = 0; c < FLOW_COLUMNS.length; c++, bit *= 2) {
    const src = COLUMN_SOURCE[c]!;
    if (src >= 0) {
      const col = b.num;
      const base = src * n;
      const first = col[base + at]!;
      if (!Number.isNaN(first)) {
        for (let i = base + at + 1; i < base + end; i++) {
          if (col[i] !== first) {
            mask += bit;
            break;
          }
        }
      } else {
        for (let i = base + at + 1; i < base + end; i++) {
          if (!Number.isNaN(col[i]!)) {
            mask += bit;
            break;
          }
        }
      }
    } else {
      const col = b.txt;
      const base = (-src - 1) * n;
      const first = col[base + at]!;
      for (let i = base + at + 1; i < base + end; i++) {
        if (col[i] !== first) {
          mask += bit;
          break;
        }
      }
    }
  }
  return mask;
}

function countVarying(mask: number): number {
  let v = 0;
  for (let c = 0; c < FLOW_COLUMNS.length; c++, mask = Math.floor(mask / 2)) v += mask % 2;
  return v;
}

/**
 * The multi-row INSERT for a mask. Every parameter is an anonymous "?" (numbered ones make node:sqlite and
 * SQLite look names up linearly for every bound value): the constants come first, in a one-row
 * sub-select, then the varying columns row by row in a VALUES list.
 */
function multiInsertSql(mask: number, size: number): string {
  const constant: string[] = [];
  const varying: string[] = [];
  for (let c = 0, m = mask; c < FLOW_COLUMNS.length; c++, m = Math.floor(m / 2)) {
    (m % 2 === 1 ? varying : constant).push(FLOW_COLUMNS[c]!);
  }
  const row = `(${varying.map(() => "?").join(",")})`;
  const values = new Array(size).fill(row).join(",");
  const columns = [...constant, ...varying].join(", ");
  if (constant.length === 0) return `INSERT INTO flows(${columns}) VALUES ${values}`;
  const k = constant.map((c) => `? AS ${c}`).join(", ");
  const select = [...constant.map((c) => `k.${c}`), ...varying.map((_, j) => `v.column${j + 1}`)].join(", ");
  if (varying.length === 0)
    return `INSERT INTO flows(${columns}) SELECT ${select} FROM (SELECT ${k}) AS k, (VALUES ${new Array(size).fill("(0)").join(",")}) AS v`;
  return `INSERT INTO flows(${columns}) SELECT ${select} FROM (SELECT ${k}) AS k, (VALUES ${values}) AS v`;
}

/** Writes column c's values for rows [at, at + size) into args from `to` (NULL, text, BigInt counters). */
function bindColumn(
  b: ColumnarBatch,
  c: number,
  at: number,
  size: number,
  args: SqlValue[],
  to: number,
  stride: number,
): void {
  const src = COLUMN_SOURCE[c]!;
  const n = b.rows;
  const strings = b.strings;
  if (src < 0) {
    const col = b.txt;
    const base = (-src - 1) * n + at;
    for (let i = 0; i < size; i++) {
      const k = col[base + i]!;
      args[to + i * stride] = k < 0 ? null : strings[k]!;
    }
  } else {
    const col = b.num;
    const base = src * n + at;
    if (src === N_BYTES || src === N_PACKETS || src === N_REV_BYTES || src === N_REV_PACKETS) {
      for (let i = 0; i < size; i++) {
        const v = col[base + i]!;
        args[to + i * stride] = v >= 0 ? v : v < 0 ? BigInt(strings[-v - 1]!) : null;
      }
    } else {
      for (let i = 0; i < size; i++) {
        const v = col[base + i]!;
        args[to + i * stride] = Number.isNaN(v) ? null : v;
      }
    }
  }
}

/** How often a sink waiting for disk space tries the WAL checkpoint again. */
const CHECKPOINT_RETRY_MS = 1000;
/** Below this much free space, the WAL is checkpointed after every write (twice the automatic threshold). */
const LOW_SPACE_BYTES = 64 * 1024 * 1024;
const FULL_LOG_MS = 60_000;

/** SQLITE_FULL (13) or SQLITE_IOERR (10), extended codes included: the storage, not the statement, failed. */
function isStorageError(err: unknown): boolean {
  const code = (err as { errcode?: unknown }).errcode;
  return typeof code === "number" && ((code & 0xff) === 13 || (code & 0xff) === 10);
}

/**
 * Columns added to `flows` after schema version 1 was first released (the NAT and biflow columns): an
 * older table gets them by ALTER TABLE, NULL in its existing rows. Additive, so the version stays 1 and an
 * older collector still writes to the table (it names its columns).
 */
function addMissingColumns(db: DatabaseSync): void {
  const have = new Set(
    (db.prepare("PRAGMA table_info(flows)").all() as { name: string }[]).map((c) => c.name),
  );
  for (const c of FLOW_COLUMNS) {
    if (!have.has(c))
      db.exec(`ALTER TABLE flows ADD COLUMN ${c} ${TEXT_COLUMNS.has(c) ? "TEXT" : "INTEGER"}`);
  }
}

export class SqliteSink implements Sink {
  readonly name: string;
  /** Inserts are synchronous and copy every value: a batch's bytes are free once write() resolves. */
  readonly releasesBatches = true;
  readonly path: string;
  readonly options: SqliteSinkOptions;
  readonly stats: SqliteStats = { batches: 0, rows: 0, saturated: 0, retentionDeleted: 0, errors: 0 };
  #db: DatabaseSync;
  #logger: SinkContext["logger"] | null;
  /** Multi-row INSERTs by varying-column mask × 16 + log2(rows). */
  #inserts = new Map<number, StatementSync>();
  #args = new Map<number, SqlValue[]>();
  #upsertExporterRow: StatementSync;
  #deleteFlows: StatementSync;
  #deleteCounters: StatementSync;
  #timer: NodeJS.Timeout | null = null;
  #sweeping: Promise<number> | null = null;
  #closed = false;
  /** A write failed for lack of space (or I/O): checkpoint the WAL before writing again. */
  #mustCheckpoint = false;
  #checkpointTriedMs = 0;
  #checkpointError = "";
  /** Free space below LOW_SPACE_BYTES at the last statfs (checked at most once a second). */
  #lowSpace = false;
  #spaceCheckedMs = 0;
  /** Disk-full episodes logged once a minute; `#fullTimes` counts those not logged since. */
  #fullLoggedMs = 0;
  #fullTimes = 0;

  /** Opens (creating if needed) the database; throws an Error naming the path when it cannot. */
  constructor(
    name: string,
    path: string,
    options: SqliteSinkOptions,
    logger: SinkContext["logger"] | null = null,
  ) {
    this.name = name;
    this.path = path;
    this.options = options;
    this.#logger = logger;
    try {
      if (path !== ":memory:") {
        // Flow data: the database (and the -wal/-shm files SQLite makes with its mode) is 0600.
        makeDirs(dirname(path), PRIVATE_DIR_MODE);
        createPrivateFile(path);
      }
      this.#db = new DatabaseSync(path, { timeout: options.busyTimeoutMs });
    } catch (err) {
      throw new Error(`sqlite sink: cannot open ${path}: ${(err as Error).message}`, { cause: err });
    }
    try {
      this.#migrate();
      this.#upsertExporterRow = this.#db.prepare(EXPORTER_UPSERT_ROW);
      this.#deleteFlows = this.#db.prepare(
        "DELETE FROM flows WHERE id IN (SELECT id FROM flows WHERE time_received < ? ORDER BY time_received LIMIT ?)",
      );
      this.#deleteCounters = this.#db.prepare(
        "DELETE FROM interface_counters WHERE id IN (SELECT id FROM interface_counters WHERE time < ? ORDER BY time LIMIT ?)",
      );
    } catch (err) {
      this.#db.close();
      throw new Error(`sqlite sink: cannot use ${path}: ${(err as Error).message}`, { cause: err });
    }
    if (options.retentionMs > 0) {
      this.#timer = setInterval(() => {
        this.runRetention().catch((err: unknown) =>
          this.#logger?.error({ sink: this.name, err }, "sqlite: retention failed"),
        );
      }, options.retentionIntervalMs);
      this.#timer.unref();
    }
  }

  /** The open database, for readers in the same process and tests. */
  get db(): DatabaseSync {
    return this.#db;
  }

  #migrate(): void {
    const db = this.#db;
    // Larger pages: fewer WAL frames and b-tree pages per row appended (~+25 % insert rate measured against
    // 4096). Takes effect only for a new database (an existing one keeps its page size).
    db.exec(`PRAGMA page_size = ${PAGE_SIZE}`);
    db.exec("PRAGMA journal_mode = WAL");
    // the WAL file shrinks back to this after a checkpoint that found it larger (a reader held it up)
    db.exec("PRAGMA journal_size_limit = 67108864");
    db.exec("PRAGMA synchronous = NORMAL");
    db.exec("PRAGMA cache_size = -65536"); // 64 MiB: the time index's pages stay cached
    db.exec("PRAGMA temp_store = MEMORY");
    const version = Number(
      (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version,
    );
    if (version > SCHEMA_VERSION) {
      throw new Error(`schema version ${version} is newer than this collector's (${SCHEMA_VERSION})`);
    }
    db.exec("BEGIN");
    try {
      db.exec(SCHEMA);
      addMissingColumns(db);
      if (this.options.exporterIndex) {
        db.exec("CREATE INDEX IF NOT EXISTS flows_exporter_time ON flows(exporter, time_received)");
      }
      if (version < SCHEMA_VERSION) db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
      db.exec("COMMIT");
    } catch (err) {
      db.exec("ROLLBACK");
      throw err;
    }
  }

  write(batch: EncodedBatch): Promise<void> {
    try {
      if (this.#closed) throw new Error(`${this.name}: write after close`);
      if (this.#mustCheckpoint) this.#checkpointBeforeWrite();
      for (const part of batch.parts) this.#insert(part.data);
      this.stats.batches++;
      this.stats.rows += batch.records;
      this.#checkpointIfLowSpace();
      return Promise.resolve();
    } catch (err) {
      this.stats.errors++;
      if (!this.#mustCheckpoint && isStorageError(err)) {
        this.#mustCheckpoint = true;
        const now = Date.now();
        this.#checkpointTriedMs = now;
        if (now - this.#fullLoggedMs >= FULL_LOG_MS) {
          this.#fullLoggedMs = now;
          this.#logger?.error(
            { sink: this.name, err: (err as Error).message, path: this.path, times: this.#fullTimes + 1 },
            "sqlite: write failed (disk full?); writing resumes once the WAL can be checkpointed",
          );
          this.#fullTimes = 0;
        } else this.#fullTimes++;
      }
      return Promise.reject(err);
    }
  }

  /** Near a full disk, keep the WAL one batch long (see the module comment). */
  #checkpointIfLowSpace(): void {
    if (this.path === ":memory:") return;
    const now = Date.now();
    if (now - this.#spaceCheckedMs >= CHECKPOINT_RETRY_MS) {
      this.#spaceCheckedMs = now;
      try {
        const s = statfsSync(dirname(this.path));
        this.#lowSpace = s.bavail * s.bsize < LOW_SPACE_BYTES;
      } catch {
        this.#lowSpace = false;
      }
    }
    if (!this.#lowSpace) return;
    try {
      this.#db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    } catch {
      // the batch is in (in the WAL); the next write checkpoints first
      this.#mustCheckpoint = true;
      this.#checkpointTriedMs = now;
    }
  }

  /**
   * Disk-full recovery: checkpoint the WAL into the database and truncate it before any new row may take
   * the space back. Throws (the batch is refused) while that is not possible yet.
   */
  #checkpointBeforeWrite(): void {
    const now = Date.now();
    if (now - this.#checkpointTriedMs < CHECKPOINT_RETRY_MS) {
      throw new Error(
        `${this.name}: waiting for disk space to checkpoint the WAL (last error: ${this.#checkpointError || "disk full"})`,
      );
    }
    this.#checkpointTriedMs = now;
    let r: { busy: number; log: number; checkpointed: number };
    try {
      r = this.#db.prepare("PRAGMA wal_checkpoint(TRUNCATE)").get() as typeof r;
    } catch (err) {
      this.#checkpointError = (err as Error).message;
      throw new Error(`${this.name}: cannot checkpoint the WAL yet: ${this.#checkpointError}`, {
        cause: err,
      });
    }
    // busy: another connection (a reader) holds part of the WAL; the copied part is in the database, and
    // that reader, not a full disk, is what keeps the WAL: writing resumes.
    this.#mustCheckpoint = false;
    this.#checkpointError = "";
    if (this.#fullTimes > 0) return; // still failing now and then: the error line said it (rate-limited)
    this.#logger?.info(
      {
        sink: this.name,
        path: this.path,
        busy: r.busy === 1,
        wal_frames: r.log,
        checkpointed: r.checkpointed,
      },
      "sqlite: WAL checkpointed after a failed write, writing resumes",
    );
  }

  #insert(data: Uint8Array): void {
    const b = decodeColumnar(data);
    const db = this.#db;
    db.exec("BEGIN");
    try {
      this.#insertRows(b);
      for (const e of b.exporters) {
        if (typeof e[4] === "string") e[4] = BigInt(e[4]);
        if (typeof e[5] === "string") e[5] = BigInt(e[5]);
        this.#upsertExporterRow.run(...e);
      }
      db.exec("COMMIT");
    } catch (err) {
      try {
        if (db.isTransaction) db.exec("ROLLBACK");
      } catch {
        // a failed COMMIT may have rolled back already; the insert's error is the one to report
      }
      throw err;
    }
    this.stats.saturated += b.saturated;
  }

  /**
   * Multi-row INSERTs of power-of-two chunks (up to MAX_CHUNK_ROWS rows, within SQLite's variable limit).
   * Per chunk, a column with one value over its rows (the exporter, the type, zeros, NULLs...) is bound
   * once; only the varying columns are bound per row, column by column from the typed arrays.
   */
  #insertRows(b: ColumnarBatch): void {
    const n = b.rows;
    let at = 0;
    while (at < n) {
      let size = MAX_CHUNK_ROWS;
      while (size > n - at) size >>= 1;
      let mask = varyingMask(b, at, size);
      let varying = countVarying(mask);
      while (size > 1 && FLOW_COLUMNS.length + varying * size > MAX_VARIABLES) {
        size >>= 1;
        mask = varyingMask(b, at, size);
        varying = countVarying(mask);
      }
      const key = mask * 16 + (31 - Math.clz32(size)); // size is a power of two; exact below 2^49 columns
      let stmt = this.#inserts.get(key);
      if (stmt === undefined) {
        if (this.#inserts.size >= MAX_STATEMENTS) this.#inserts.clear();
        stmt = this.#db.prepare(multiInsertSql(mask, size));
        this.#inserts.set(key, stmt);
      }
      const constants = FLOW_COLUMNS.length - varying;
      const args = this.#argsOf(constants + varying * size);
      // constants first (one each), then row by row the varying columns (see multiInsertSql)
      let k = 0;
      let j = constants;
      for (let c = 0, m = mask; c < FLOW_COLUMNS.length; c++, m = Math.floor(m / 2)) {
        if (m % 2 === 1) bindColumn(b, c, at, size, args, j++, varying);
        else bindColumn(b, c, at, 1, args, k++, 1);
      }
      stmt.run(...args);
      at += size;
    }
  }

  /** A reused array of `length` bound values (a fresh one for every chunk would be a large allocation). */
  #argsOf(length: number): SqlValue[] {
    let args = this.#args.get(length);
    if (args === undefined) {
      if (this.#args.size >= 16) this.#args.clear();
      args = new Array(length).fill(null);
      this.#args.set(length, args);
    }
    return args;
  }

  /** Inserts interface counters: generic rows, or the sFlow decoder's records (those without generic counters are skipped). */
  insertCounters(rows: readonly (InterfaceCounterRow | InterfaceCounters)[]): number {
    const out: InterfaceCounterRow[] = [];
    for (const r of rows) {
      // sFlow records may arrive as structured clones (no prototype): recognise them by their fields
      const row =
        r instanceof InterfaceCounters || "has_generic" in r
          ? counterRowFromSflow(r as InterfaceCounters)
          : r;
      if (row !== null) out.push(row);
    }
    return insertInterfaceCounters(this.#db, out);
  }
  async writeCounters(records: readonly InterfaceCounters[]): Promise<void> {
    this.insertCounters(records);
  }

  /**
   * Deletes flows (and interface counters) older than now − retentionMs, chunk by chunk, yielding to the
   * event loop between chunks. Resolves with the number of rows deleted. Concurrent calls share one sweep.
   */
  runRetention(nowMs: number = Date.now()): Promise<number> {
    if (this.options.retentionMs <= 0 || this.#closed) return Promise.resolve(0);
    if (this.#sweeping !== null) return this.#sweeping;
    const sweep = this.#sweep(nowMs - this.options.retentionMs).finally(() => {
      this.#sweeping = null;
    });
    this.#sweeping = sweep;
    return sweep;
  }

  async #sweep(cutoff: number): Promise<number> {
    const chunk = this.options.retentionChunkRows;
    let total = 0;
    for (const stmt of [this.#deleteFlows, this.#deleteCounters]) {
      for (;;) {
        if (this.#closed) return total;
        const changes = Number(stmt.run(cutoff, chunk).changes);
        total += changes;
        if (changes < chunk) break;
        await nextTurn();
      }
    }
    this.stats.retentionDeleted += total;
    return total;
  }

  flush(): Promise<void> {
    // Every write committed synchronously; with synchronous=NORMAL the WAL reaches disk at checkpoints.
    return Promise.resolve();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#sweeping !== null) await this.#sweeping.catch(() => 0);
    this.#closed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    try {
      this.#db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    } catch {
      // another connection may hold the WAL; closing still checkpoints what it can
    }
    this.#db.close();
  }
}

export const sqliteSink: SinkDefinition = {
  schemes: ["sqlite"],
  optionKeys: ["retentionMs", "retentionIntervalMs", "retentionChunkRows", "busyTimeoutMs", "exporterIndex"],
  // --retention is the output's retentionMs unless it sets its own.
  globals: (g) => ({ retentionMs: g.retentionMs }),
  path(uri: string, dataDir: string, cwd: string): string | null {
    const p = parseSqliteUri(uri, dataDir, cwd);
    return p === ":memory:" ? null : p;
  },
  createEncoder(uri: string): SinkEncoder {
    if (!uri.startsWith("sqlite:")) throw new ConfigError("sink", `not an sqlite: URI: ${uri}`);
    return createSqliteEncoder(uri);
  },
  async create(uri: string, ctx: SinkContext): Promise<Sink> {
    const options = parseSqliteOptions(ctx.options);
    return new SqliteSink(uri, parseSqliteUri(uri, ctx.dataDir), options, ctx.logger);
  },
};
