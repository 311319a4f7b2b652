/**
 * A minimal Parquet file writer over typed column buffers (the fenced fast path of `parquet:DIR`,
 * src/sinks/parquet.ts). Hand-written on purpose, by measurement (BENCHMARKS.md, "Parquet writers": the same
 * 500 k synthetic flows of 37 columns, zstd, one core, CPU time including building each library's input):
 * hyparquet-writer 0.09 M rows per CPU-second, parquet-wasm (Rust `parquet` in wasm, fed Arrow IPC from
 * apache-arrow) 0.20 M, DuckDB's COPY after a data-chunk appender (@duckdb/node-api) 0.21 M, this writer
 * 0.6 M with the same generic per-cell loop and far more from FlowColumns' straight stores. The libraries
 * all need a JS value (string, bigint, object) per cell first; this one takes numbers into typed arrays and
 * writes their bytes as they lie in memory.
 *
 * What it writes (Parquet format 2 files any reader takes: DuckDB, ClickHouse, Arrow/pandas, Spark):
 * - flat schemas only: REQUIRED or OPTIONAL columns of physical INT32, INT64 or BYTE_ARRAY, with their
 *   logical type (unsigned INTEGER of 8/16/32/64 bits, TIMESTAMP(NANOS) holding UTC, STRING);
 * - one row group per `writeRowGroup()`, one data page (v1) per column chunk, compressed with zstd
 *   (node:zlib), gzip or nothing;
 * - encodings: PLAIN; a column chunk holding a single distinct value is written as a one-entry dictionary
 *   page and an RLE_DICTIONARY data page of one run (flow records have many such columns: VLANs, ToS,
 *   exporter, type...), uncompressed (the codec is per column chunk), so it costs a few bytes and no
 *   compression work; definition levels are RLE runs;
 * - statistics (min/max, null count) for the columns marked `stats` (the timestamps), so readers skip row
 *   groups outside a time range.
 * The footer is written by `finish()`; a file without it is unreadable (callers write to a temporary name
 * and rename after `finish()`).
 *
 * Ownership: the column buffers belong to one writer user (one receive worker); `writeRowGroup` reads them
 * and the caller `reset()`s them afterwards. Nothing is retained across row groups but the metadata.
 */
import { writevSync } from "node:fs";
import { constants, gzipSync, zstdCompressSync } from "node:zlib";

export type Codec = "zstd" | "gzip" | "none";
export const CODECS: readonly Codec[] = ["zstd", "gzip", "none"];

export type ColumnType =
  | { physical: "INT32"; bits: 8 | 16 | 32 }
  | { physical: "INT64"; bits: 64 }
  | { physical: "INT64"; timestamp: "NANOS" }
  | { physical: "BYTE_ARRAY"; string: true };

export interface ColumnSpec {
  name: string;
  type: ColumnType;
  optional: boolean;
  /** Write min/max statistics (INT64 columns only). */
  stats?: boolean;
}

// Thrift enums (parquet.thrift)
const T_INT32 = 1;
const T_INT64 = 2;
const T_BYTE_ARRAY = 6;
const ENC_PLAIN = 0;
const ENC_RLE = 3;
const ENC_RLE_DICTIONARY = 8;
const CODEC_ID: Record<Codec, number> = { none: 0, gzip: 2, zstd: 6 };
const PAGE_DATA = 0;
const PAGE_DICTIONARY = 2;

// ---------------------------------------------------------------------------------------------------------
// Column buffers

/** Stores an unsigned 64-bit integer (a non-negative safe integer, or a bigint modulo 2^64) at w[at], w[at+1]. */
export function putU64(w: Int32Array, at: number, v: number | bigint): void {
  if (typeof v === "number") {
    if (v >= 0 && v <= 9007199254740991) {
      w[at] = v >>> 0;
      w[at + 1] = Math.floor(v / 4294967296);
      return;
    }
    v = v > 0 && Number.isFinite(v) ? BigInt(v) : 0n;
  }
  const u = BigInt.asUintN(64, v);
  w[at] = Number(u & 0xffffffffn);
  w[at + 1] = Number(u >> 32n);
}

/**
 * Stores milliseconds since the epoch (a fraction is sub-ms precision) as integer nanoseconds at w[at],
 * w[at+1], the fraction rounded to the nearest ns as msToNs renders it; negative times (an exporter's clock
 * before 1970) too; 0 for a value that is not finite.
 */
export function putMsAsNs(w: Int32Array, at: number, ms: number): void {
  let whole = Math.floor(ms);
  let frac = 0;
  if (whole !== ms) {
    if (!Number.isFinite(ms)) whole = 0;
    else {
      frac = Math.round((ms - whole) * 1e6);
      if (frac >= 1e6) {
        whole += 1;
        frac -= 1e6;
      }
    }
  }
  if (whole >= 0 && whole < 9007199254740992) {
    // ns = whole × 1e6 + frac in exact double arithmetic: split whole at 2^32
    const hi = Math.floor(whole / 4294967296);
    const low = (whole - hi * 4294967296) * 1e6 + frac; // < 2^32 × 1e6 + 1e6 < 2^53
    const carry = Math.floor(low / 4294967296);
    w[at] = (low - carry * 4294967296) >>> 0;
    w[at + 1] = hi * 1e6 + carry;
    return;
  }
  const ns = BigInt.asUintN(64, BigInt(whole) * 1000000n + BigInt(frac));
  w[at] = Number(ns & 0xffffffffn);
  w[at + 1] = Number(ns >> 32n);
}

/** INT32 values (unsigned ones stored as their 32-bit pattern), one slot a row. */
export class Int32Column {
  values: Int32Array;
  /** Definition levels (1 present, 0 null), one a row; null for a REQUIRED column. */
  readonly defs: Uint8Array | null;
  /** Values written (non-null). */
  count = 0;
  rows = 0;
  /** `values`: an array of `capacity` slots to fill (a view into a caller's block), or a new one. */
  constructor(capacity: number, optional: boolean, values?: Int32Array) {
    this.values = values ?? new Int32Array(capacity);
    this.defs = optional ? new Uint8Array(capacity) : null;
  }
  /** For a caller that stored `rows` values into `values` itself (a REQUIRED column). */
  commit(rows: number): void {
    this.count = rows;
    this.rows = rows;
  }
  push(v: number): void {
    if (this.defs !== null) this.defs[this.rows] = 1;
    this.values[this.count++] = v;
    this.rows++;
  }
  pushNull(): void {
    this.defs![this.rows++] = 0;
  }
  reset(): void {
    this.count = 0;
    this.rows = 0;
  }
}

/** INT64 values as (low, high) 32-bit words, little-endian as PLAIN wants them. */
export class Int64Column {
  words: Int32Array;
  readonly defs: Uint8Array | null;
  count = 0;
  rows = 0;
  /** `words`: 2 × `capacity` slots to fill (a view into a caller's block), or a new array. */
  constructor(capacity: number, optional: boolean, words?: Int32Array) {
    this.words = words ?? new Int32Array(2 * capacity);
    this.defs = optional ? new Uint8Array(capacity) : null;
  }
  /** For a caller that stored `rows` values into `words` itself (with putU64/putMsAsNs). */
  commit(rows: number): void {
    this.count = rows;
    this.rows = rows;
  }
  /** An unsigned integer (a non-negative safe integer, or a bigint taken modulo 2^64). */
  push(v: number | bigint): void {
    if (this.defs !== null) this.defs[this.rows] = 1;
    putU64(this.words, 2 * this.count++, v);
    this.rows++;
  }
  /** Milliseconds since the epoch as TIMESTAMP(NANOS) (see putMsAsNs). */
  pushMsAsNs(ms: number): void {
    if (this.defs !== null) this.defs[this.rows] = 1;
    putMsAsNs(this.words, 2 * this.count++, ms);
    this.rows++;
  }
  pushNull(): void {
    this.defs![this.rows++] = 0;
  }
  reset(): void {
    this.count = 0;
    this.rows = 0;
  }
}

/** BYTE_ARRAY values in PLAIN layout (4-byte little-endian length, then the bytes), appended as they come. */
export class BytesColumn {
  data = new Uint8Array(1 << 16);
  used = 0;
  readonly defs: Uint8Array | null;
  count = 0;
  rows = 0;
  /** Whether every value so far had the same key (an IPv4 number or a string): one-value chunks. */
  same = true;
  #key: number | string = -1;
  /** The previous value's string (when it was pushed as one) and its byte range. */
  #last: string | null = null;
  #lastStart = 0;
  /** Repeats of the last value counted but not yet written. */
  #repeat = 0;
  /** Byte range of the first value (for the one-entry dictionary). */
  firstEnd = 0;
  constructor(capacity: number, optional: boolean) {
    this.defs = optional ? new Uint8Array(capacity) : null;
  }
  #room(n: number): void {
    if (this.used + n <= this.data.length) return;
    const next = new Uint8Array(Math.max(this.data.length * 2, this.used + n));
    next.set(this.data.subarray(0, this.used));
    this.data = next;
  }
  #track(key: number | string): void {
    if (this.count === 0) this.#key = key;
    else if (this.same && key !== this.#key) this.same = false;
  }
  #done(start: number): void {
    const len = this.used - start - 4;
    const d = this.data;
    d[start] = len;
    d[start + 1] = len >>> 8;
    d[start + 2] = len >>> 16;
    d[start + 3] = len >>> 24;
    if (this.count === 0) this.firstEnd = this.used;
    if (this.defs !== null) this.defs[this.rows] = 1;
    this.count++;
    this.rows++;
  }
  /**
   * A string (UTF-8). The previous value again (the exporter, the type) is only counted; its bytes are
   * repeated when another value comes or the bytes are read (`plain()`), and never when the chunk holds
   * that one value throughout (written as a one-entry dictionary).
   */
  pushString(s: string): void {
    if (s === this.#last) {
      this.#repeat++;
      if (this.defs !== null) this.defs[this.rows] = 1;
      this.count++;
      this.rows++;
      return;
    }
    this.#track(s);
    if (this.#repeat > 0) this.#materialize();
    this.#last = s;
    this.#lastStart = this.used;
    const len = s.length;
    this.#room(4 + 3 * len);
    const start = this.used;
    const d = this.data;
    let at = start + 4;
    for (let i = 0; i < len; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) {
        at = start + 4 + Buffer.from(d.buffer, d.byteOffset, d.length).write(s, start + 4, 3 * len, "utf8");
        break;
      }
      d[at++] = c;
    }
    this.used = at;
    this.#done(start);
  }
  /** Writes the counted repeats of the last value. */
  #materialize(): void {
    const from = this.#lastStart;
    const n = this.used - from;
    const k = this.#repeat;
    this.#repeat = 0;
    this.#room(n * k);
    const d = this.data;
    let at = this.used;
    for (let r = 0; r < k; r++) for (let i = 0; i < n; i++) d[at++] = d[from + i]!;
    this.#lastStart = at - n;
    this.used = at;
  }
  /** Size of the PLAIN bytes of every value so far (counted repeats included). */
  get size(): number {
    return this.used + this.#repeat * (this.used - this.#lastStart);
  }
  /** The PLAIN bytes of every value so far. */
  plain(): Uint8Array {
    if (this.#repeat > 0) this.#materialize();
    return this.data.subarray(0, this.used);
  }
  /** Bytes written by `write(out, at)` (at most `max` of them), e.g. an address's dotted text. */
  pushWith(key: number, max: number, write: (out: Uint8Array, at: number, key: number) => number): void {
    this.#track(key);
    if (this.#repeat > 0) this.#materialize();
    this.#last = null;
    this.#room(4 + max + 2);
    const start = this.used;
    this.used = write(this.data, start + 4, key);
    this.#done(start);
  }
  pushNull(): void {
    this.defs![this.rows++] = 0;
  }
  reset(): void {
    this.count = 0;
    this.rows = 0;
    this.used = 0;
    this.same = true;
    this.#key = -1;
    this.#last = null;
    this.#repeat = 0;
    this.firstEnd = 0;
  }
}

export type ColumnBuffer = Int32Column | Int64Column | BytesColumn;

/** A buffer of the right kind for a column spec. */
export function columnBuffer(spec: ColumnSpec, capacity: number): ColumnBuffer {
  switch (spec.type.physical) {
    case "INT32":
      return new Int32Column(capacity, spec.optional);
    case "INT64":
      return new Int64Column(capacity, spec.optional);
    default:
      return new BytesColumn(capacity, spec.optional);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Thrift compact protocol (only what the footer and page headers need)

class Thrift {
  buf = new Uint8Array(1024);
  at = 0;
  #last: number[] = [];
  #lastId = 0;
  #room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.at + n));
    next.set(this.buf.subarray(0, this.at));
    this.buf = next;
  }
  byte(b: number): void {
    this.#room(1);
    this.buf[this.at++] = b;
  }
  /** Unsigned varint of a non-negative safe integer. */
  varint(v: number): void {
    this.#room(10);
    while (v >= 128) {
      this.buf[this.at++] = (v % 128) | 128;
      v = Math.floor(v / 128);
    }
    this.buf[this.at++] = v;
  }
  #field(id: number, type: number): void {
    const delta = id - this.#lastId;
    if (delta > 0 && delta <= 15) this.byte((delta << 4) | type);
    else {
      this.byte(type);
      this.varint(id * 2); // i16 zigzag, id > 0
    }
    this.#lastId = id;
  }
  /** i32/i64 field of a non-negative value (zigzag: 2v). */
  int(id: number, v: number, type: 5 | 6 = 5): void {
    this.#field(id, type);
    this.varint(v * 2);
  }
  long(id: number, v: number): void {
    this.int(id, v, 6);
  }
  bool(id: number, v: boolean): void {
    this.#field(id, v ? 1 : 2);
  }
  i8(id: number, v: number): void {
    this.#field(id, 3);
    this.byte(v & 255);
  }
  binary(id: number, bytes: Uint8Array): void {
    this.#field(id, 8);
    this.varint(bytes.length);
    this.#room(bytes.length);
    this.buf.set(bytes, this.at);
    this.at += bytes.length;
  }
  string(id: number, s: string): void {
    this.binary(id, Buffer.from(s, "utf8"));
  }
  beginStruct(id: number): void {
    this.#field(id, 12);
    this.#last.push(this.#lastId);
    this.#lastId = 0;
  }
  /** A struct as a list element (no field header). */
  beginElement(): void {
    this.#last.push(this.#lastId);
    this.#lastId = 0;
  }
  end(): void {
    this.byte(0);
    this.#lastId = this.#last.pop() ?? 0;
  }
  list(id: number, elemType: number, size: number): void {
    this.#field(id, 9);
    if (size < 15) this.byte((size << 4) | elemType);
    else {
      this.byte(0xf0 | elemType);
      this.varint(size);
    }
  }
  /** Plain (non-zigzag) list elements: i32 values are zigzag varints too. */
  listI32(v: number): void {
    this.varint(v * 2);
  }
  listString(s: string): void {
    const b = Buffer.from(s, "utf8");
    this.varint(b.length);
    this.#room(b.length);
    this.buf.set(b, this.at);
    this.at += b.length;
  }
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.at);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Pages

interface ChunkMeta {
  spec: ColumnSpec;
  /** CODEC_ID of the chunk's pages: one-value chunks are left uncompressed (a few bytes). */
  codec: number;
  encodings: number[];
  numValues: number;
  uncompressed: number;
  compressed: number;
  dataPageOffset: number;
  dictionaryPageOffset: number;
  nullCount: number;
  min: Uint8Array | null;
  max: Uint8Array | null;
}

interface RowGroupMeta {
  rows: number;
  bytes: number;
  compressed: number;
  offset: number;
  chunks: ChunkMeta[];
}

/** Bytes defLevels may write for `rows` rows (at most 6 per run, one run a row, and the prefix). */
const defLevelsMax = (rows: number): number => 4 + 6 * Math.max(1, rows);

/**
 * RLE runs (bit width 1) of definition levels, with the 4-byte length prefix of a v1 data page, written
 * into `out` from `at` (room for defLevelsMax(rows)); returns the end.
 */
function defLevels(defs: Uint8Array, rows: number, out: Uint8Array, at: number): number {
  const from = at;
  at += 4;
  let i = 0;
  while (i < rows) {
    const v = defs[i]!;
    let j = i + 1;
    while (j < rows && defs[j] === v) j++;
    let run = (j - i) * 2; // RLE run header: count << 1
    while (run >= 128) {
      out[at++] = (run % 128) | 128;
      run = Math.floor(run / 128);
    }
    out[at++] = run;
    out[at++] = v;
    i = j;
  }
  const len = at - from - 4;
  out[from] = len;
  out[from + 1] = len >>> 8;
  out[from + 2] = len >>> 16;
  out[from + 3] = len >>> 24;
  return at;
}

/** One RLE run of `n` zeros at bit width 1: the dictionary indices of a one-value column chunk. */
function oneRun(n: number): Uint8Array {
  const out: number[] = [1]; // bit width
  let run = n * 2;
  while (run >= 128) {
    out.push((run % 128) | 128);
    run = Math.floor(run / 128);
  }
  out.push(run, 0);
  return Uint8Array.from(out);
}

/** The index of the smallest and largest signed int64 among the first `count` word pairs. */
function int64MinMax(w: Int32Array, count: number): [number, number] {
  let lo = 0;
  let hi = 0;
  for (let i = 1; i < count; i++) {
    const h = w[2 * i + 1]!;
    const l = w[2 * i]! >>> 0;
    const mh = w[2 * lo + 1]!;
    if (h < mh || (h === mh && l < w[2 * lo]! >>> 0)) lo = i;
    const xh = w[2 * hi + 1]!;
    if (h > xh || (h === xh && l > w[2 * hi]! >>> 0)) hi = i;
  }
  return [lo, hi];
}

function allEqual32(v: Int32Array, count: number): boolean {
  const first = v[0];
  for (let i = 1; i < count; i++) if (v[i] !== first) return false;
  return true;
}

function allEqual64(w: Int32Array, count: number): boolean {
  const a = w[0];
  const b = w[1];
  for (let i = 1; i < count; i++) if (w[2 * i] !== a || w[2 * i + 1] !== b) return false;
  return true;
}

export interface WriterOptions {
  codec: Codec;
  /** zstd level (default 1) or gzip level (default 1). */
  level?: number;
  createdBy?: string;
}

/** Statistics of the file written so far. */
export interface WriteCost {
  /** ms spent compressing pages. */
  compressMs: number;
  /** ms spent in write system calls. */
  writeMs: number;
}

/**
 * Writes one Parquet file to an open file descriptor: the magic at construction, a row group per
 * `writeRowGroup`, the footer at `finish`. Synchronous (receive workers own their files and never await).
 */
export class ParquetFileWriter {
  readonly #fd: number;
  readonly #schema: readonly ColumnSpec[];
  readonly #codec: Codec;
  readonly #level: number;
  readonly #createdBy: string;
  #offset = 0;
  #rows = 0;
  #groups: RowGroupMeta[] = [];
  readonly cost: WriteCost = { compressMs: 0, writeMs: 0 };
  /** Page bodies that need assembling (levels + values); compressed (copied) before the next one. */
  #scratch = new Uint8Array(1 << 16);

  constructor(fd: number, schema: readonly ColumnSpec[], options: WriterOptions) {
    this.#fd = fd;
    this.#schema = schema;
    this.#codec = options.codec;
    this.#level = options.level ?? 1;
    this.#createdBy = options.createdBy ?? "clarion-collector";
    this.#write([Buffer.from("PAR1")]);
  }

  /** Bytes written so far (the file size once finished). */
  get bytes(): number {
    return this.#offset;
  }

  get rows(): number {
    return this.#rows;
  }

  #write(parts: Uint8Array[]): void {
    const t0 = performance.now();
    let n = 0;
    for (const p of parts) n += p.length;
    let done = 0;
    while (done < n) {
      // writevSync may write less than asked (a full disk writes what fits, then throws on the next call)
      let skip = done;
      const rest: Uint8Array[] = [];
      for (const p of parts) {
        if (skip >= p.length) {
          skip -= p.length;
          continue;
        }
        rest.push(skip > 0 ? p.subarray(skip) : p);
        skip = 0;
      }
      done += writevSync(this.#fd, rest);
    }
    this.#offset += n;
    this.cost.writeMs += performance.now() - t0;
  }

  /** The scratch buffer, with room for `n` bytes. */
  #room(n: number): Uint8Array {
    if (this.#scratch.length < n) this.#scratch = new Uint8Array(Math.max(n, 2 * this.#scratch.length));
    return this.#scratch;
  }

  /** The page data for `b` (a copy or the compressed bytes: `b` may be the scratch buffer). */
  #compress(b: Uint8Array, raw: boolean): Uint8Array {
    if (raw || this.#codec === "none" || b.length === 0)
      return b.buffer === this.#scratch.buffer ? b.slice() : b;
    const t0 = performance.now();
    const out =
      this.#codec === "zstd"
        ? zstdCompressSync(b, { params: { [constants.ZSTD_c_compressionLevel]: this.#level } })
        : gzipSync(b, { level: this.#level });
    this.cost.compressMs += performance.now() - t0;
    return out;
  }

  /** A page header followed by the (compressed) body; returns [header + body, uncompressed size]. */
  #page(
    type: number,
    body: Uint8Array,
    numValues: number,
    encoding: number,
    raw = false,
  ): [Uint8Array[], number, number] {
    const data = this.#compress(body, raw);
    const t = new Thrift();
    t.int(1, type);
    t.int(2, body.length);
    t.int(3, data.length);
    if (type === PAGE_DATA) {
      t.beginStruct(5);
      t.int(1, numValues);
      t.int(2, encoding);
      t.int(3, ENC_RLE);
      t.int(4, ENC_RLE);
      t.end();
    } else {
      t.beginStruct(7);
      t.int(1, numValues);
      t.int(2, ENC_PLAIN);
      t.end();
    }
    t.byte(0);
    const header = t.bytes().slice();
    return [[header, data], header.length + body.length, header.length + data.length];
  }

  /** Writes the buffers (each holding `rows` rows) as one row group. */
  writeRowGroup(columns: readonly ColumnBuffer[], rows: number): void {
    if (rows === 0) return;
    const groupOffset = this.#offset;
    const chunks: ChunkMeta[] = [];
    const out: Uint8Array[] = [];
    let at = this.#offset;
    let uncompressed = 0;
    let compressed = 0;
    for (let c = 0; c < this.#schema.length; c++) {
      const spec = this.#schema[c]!;
      const col = columns[c]!;
      const count = col.count;
      let plain: Uint8Array;
      let single: Uint8Array | null = null;
      let min: Uint8Array | null = null;
      let max: Uint8Array | null = null;
      if (col instanceof Int32Column) {
        plain = new Uint8Array(col.values.buffer, col.values.byteOffset, 4 * count);
        if (count > 0 && allEqual32(col.values, count)) single = plain.subarray(0, 4);
      } else if (col instanceof Int64Column) {
        plain = new Uint8Array(col.words.buffer, col.words.byteOffset, 8 * count);
        if (count > 0 && allEqual64(col.words, count)) single = plain.subarray(0, 8);
        if (spec.stats === true && count > 0) {
          const [lo, hi] = int64MinMax(col.words, count);
          min = plain.slice(8 * lo, 8 * lo + 8);
          max = plain.slice(8 * hi, 8 * hi + 8);
        }
      } else {
        if (count > 0 && col.same) {
          single = col.data.subarray(0, col.firstEnd);
          plain = single;
        } else plain = col.plain();
      }
      // an OPTIONAL column's page body: its levels, then the values, in the writer's scratch buffer
      const defs = col.defs;
      const withLevels = (values: Uint8Array): Uint8Array => {
        const end = defLevels(defs!, col.rows, this.#room(defLevelsMax(col.rows) + values.length), 0);
        this.#scratch.set(values, end);
        return this.#scratch.subarray(0, end + values.length);
      };
      const meta: ChunkMeta = {
        spec,
        codec: single !== null ? CODEC_ID.none : CODEC_ID[this.#codec],
        encodings: [],
        numValues: col.rows,
        uncompressed: 0,
        compressed: 0,
        dataPageOffset: 0,
        dictionaryPageOffset: 0,
        nullCount: col.rows - count,
        min,
        max,
      };
      if (single !== null) {
        const [dict, du, dc] = this.#page(PAGE_DICTIONARY, single, 1, ENC_PLAIN, true);
        meta.dictionaryPageOffset = at;
        out.push(...dict);
        at += dc;
        const body = defs !== null ? withLevels(oneRun(count)) : oneRun(count);
        const [page, pu, pc] = this.#page(PAGE_DATA, body, col.rows, ENC_RLE_DICTIONARY, true);
        meta.dataPageOffset = at;
        out.push(...page);
        at += pc;
        meta.uncompressed = du + pu;
        meta.compressed = dc + pc;
        meta.encodings = [ENC_PLAIN, ENC_RLE, ENC_RLE_DICTIONARY];
      } else {
        const body = defs !== null ? withLevels(plain) : plain;
        const [page, pu, pc] = this.#page(PAGE_DATA, body, col.rows, ENC_PLAIN);
        meta.dataPageOffset = at;
        out.push(...page);
        at += pc;
        meta.uncompressed = pu;
        meta.compressed = pc;
        meta.encodings = [ENC_PLAIN, ENC_RLE];
      }
      uncompressed += meta.uncompressed;
      compressed += meta.compressed;
      chunks.push(meta);
    }
    this.#write(out);
    this.#rows += rows;
    this.#groups.push({ rows, bytes: uncompressed, compressed, offset: groupOffset, chunks });
  }

  /** Writes the footer; the file is complete afterwards. Returns the file size. */
  finish(): number {
    const t = new Thrift();
    t.int(1, 2); // version
    t.list(2, 12, this.#schema.length + 1);
    t.beginElement();
    t.string(4, "schema");
    t.int(5, this.#schema.length);
    t.end();
    for (const s of this.#schema) {
      t.beginElement();
      const ty = s.type;
      t.int(1, ty.physical === "INT32" ? T_INT32 : ty.physical === "INT64" ? T_INT64 : T_BYTE_ARRAY);
      t.int(3, s.optional ? 1 : 0);
      t.string(4, s.name);
      if ("string" in ty) {
        t.int(6, 0); // UTF8
        t.beginStruct(10);
        t.beginStruct(1); // STRING
        t.end();
        t.end();
      } else if ("timestamp" in ty) {
        t.beginStruct(10);
        t.beginStruct(8); // TIMESTAMP, isAdjustedToUTC false: DuckDB keeps ns (TIMESTAMP_NS); values are UTC
        t.bool(1, false);
        t.beginStruct(2);
        t.beginStruct(3); // NANOS
        t.end();
        t.end();
        t.end();
        t.end();
      } else {
        t.int(6, ty.bits === 8 ? 11 : ty.bits === 16 ? 12 : ty.bits === 32 ? 13 : 14); // UINT_n
        t.beginStruct(10);
        t.beginStruct(10); // INTEGER
        t.i8(1, ty.bits);
        t.bool(2, false);
        t.end();
        t.end();
      }
      t.end();
    }
    t.long(3, this.#rows);
    t.list(4, 12, this.#groups.length);
    for (const g of this.#groups) {
      t.beginElement();
      t.list(1, 12, g.chunks.length);
      for (const c of g.chunks) {
        t.beginElement();
        t.long(2, c.dictionaryPageOffset > 0 ? c.dictionaryPageOffset : c.dataPageOffset);
        t.beginStruct(3);
        const ty = c.spec.type;
        t.int(1, ty.physical === "INT32" ? T_INT32 : ty.physical === "INT64" ? T_INT64 : T_BYTE_ARRAY);
        t.list(2, 5, c.encodings.length);
        for (const e of c.encodings) t.listI32(e);
        t.list(3, 8, 1);
        t.listString(c.spec.name);
        t.int(4, c.codec);
        t.long(5, c.numValues);
        t.long(6, c.uncompressed);
        t.long(7, c.compressed);
        t.long(9, c.dataPageOffset);
        if (c.dictionaryPageOffset > 0) t.long(11, c.dictionaryPageOffset);
        t.beginStruct(12);
        t.long(3, c.nullCount);
        if (c.max !== null && c.min !== null) {
          t.binary(5, c.max);
          t.binary(6, c.min);
        }
        t.end();
        t.end();
        t.end();
      }
      t.long(2, g.bytes);
      t.long(3, g.rows);
      t.long(5, g.offset);
      t.long(6, g.compressed);
      t.end();
    }
    t.string(6, this.#createdBy);
    t.byte(0);
    const footer = t.bytes();
    const tail = new Uint8Array(8);
    new DataView(tail.buffer).setUint32(0, footer.length, true);
    tail.set(Buffer.from("PAR1"), 4);
    this.#write([footer, tail]);
    return this.#offset;
  }
}
