/**
 * `top --archive` over a large archive, side by side in one run with the same question asked other ways:
 * the top 10 destinations by bytes over every file.
 *
 * 1. `clarion-collector top --archive DIR --by dst_ip` as a user runs it (a child process: Node start, the
 *    lazy DuckDB import, listing and checking the files, the query), default scaling and `--no-scale`;
 * 2. runArchiveTop (src/query/archive.ts) in this process: the query layer alone;
 * 3. the DuckDB CLI-style query of the README (`SELECT dst_addr, sum(bytes) … FROM read_parquet(glob)`)
 *    through @duckdb/node-api, the same DuckDB build;
 * 4. a JavaScript reader of our own files, for choosing the engine: the file and column-chunk offsets come
 *    from DuckDB's parquet_metadata() (a footer parser would cost next to nothing), then the page headers
 *    (Thrift compact), zstd via node:zlib and the PLAIN values of `dst_addr` and `bytes` only, grouped in a
 *    Map, one thread. It answers only this one question (no filter, no scaling, no other key): a lower
 *    bound for what a reader of our own would cost.
 * Each is run RUNS times, interleaved; the best wall-clock time and its CPU time (this process's, DuckDB's
 * threads included; for the child process the child's, from /proc/self/stat) are reported. The answers are
 * checked to agree with the DuckDB SQL's.
 *
 * 5. with --from/--to (ISO times with a zone): `top --archive` over that window, and how many files it opens.
 * Run: node bench/top-archive.bench.ts --dir DIR [--runs 3] [--skip-js] [--from ISO --to ISO]
 *      (write DIR first: node bench/archive.bench.ts --rows 20000000 --dir DIR)
 */
import { spawnSync } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { zstdDecompressSync } from "node:zlib";
import { DuckDBInstance } from "@duckdb/node-api";
import { closeArchiveEngine, filesForWindow, listArchiveFiles, runArchiveTop } from "../src/query/archive.ts";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
}
const dir = arg("dir", "");
if (dir === "") {
  console.error("give --dir DIR (an archive; write one with bench/archive.bench.ts --dir DIR)");
  process.exit(2);
}
const RUNS = Number(arg("runs", "3"));
const skipJs = process.argv.includes("--skip-js");
const files = listArchiveFiles(dir);

interface Timing {
  ms: number;
  cpuMs: number;
  top: Array<[string, number]>;
}

async function timed(f: () => Promise<Array<[string, number]>>): Promise<Timing> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const top = await f();
  const c = process.cpuUsage(c0);
  return { ms: performance.now() - t0, cpuMs: (c.user + c.system) / 1000, top };
}

const cli = (extra: string[]) => async (): Promise<Array<[string, number]>> => {
  const cliPath = join(import.meta.dirname, "..", "src", "cli.ts");
  const r = spawnSync(
    process.execPath,
    [cliPath, "top", "--archive", dir, "--by", "dst_ip", "-n", "10", "--format", "csv", ...extra],
    { encoding: "utf8", maxBuffer: 1 << 20 },
  );
  if (r.status !== 0) throw new Error(`top exited ${r.status}: ${r.stderr}`);
  return r.stdout
    .trim()
    .split("\n")
    .slice(1)
    .map((l) => {
      const c = l.split(",");
      return [c[0]!, Number(c[3])];
    });
};

/** CPU (ms) of this process's waited-for children: cutime + cstime of /proc/self/stat (100 ticks a second). */
function childrenCpuMs(): number {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[13]) + Number(f[14])) * 10;
}

async function timedChild(f: () => Promise<Array<[string, number]>>): Promise<Timing> {
  const c0 = childrenCpuMs();
  const r = await timed(f);
  return { ...r, cpuMs: childrenCpuMs() - c0 };
}

async function inProcess(): Promise<Array<[string, number]>> {
  const r = await runArchiveTop(dir, { by: ["dst_ip"], order: "bytes", limit: 10, scale: false });
  return r.rows.map((x) => [String(x.key.dst_ip), x.bytes]);
}

const duck = await DuckDBInstance.create(":memory:");
const con = await duck.connect();
async function duckdbSql(): Promise<Array<[string, number]>> {
  const out = await con.runAndReadAll(
    `SELECT dst_addr, sum(bytes) AS b FROM read_parquet('${dir}/*/*/*/*.parquet') GROUP BY dst_addr ORDER BY b DESC LIMIT 10`,
  );
  return out.getRows().map((r) => [String(r[0]), Number(r[1])]);
}

// ---------------------------------------------------------------------------------------------------------
// The JavaScript reader (bench only)

interface Chunk {
  file: string;
  column: string;
  start: number;
  size: number;
}

async function chunks(): Promise<Chunk[]> {
  const list = files.map((f) => `'${f.path}'`).join(", ");
  const r = await con.runAndReadAll(
    `SELECT file_name, path_in_schema, coalesce(dictionary_page_offset, data_page_offset) AS start, total_compressed_size FROM parquet_metadata([${list}]) WHERE path_in_schema IN ('dst_addr', 'bytes')`,
  );
  return r.getRows().map((x) => ({
    file: String(x[0]),
    column: String(x[1]),
    start: Number(x[2]),
    size: Number(x[3]),
  }));
}

/** Thrift compact protocol: just enough to read a PageHeader's type, compressed size and value count. */
class Compact {
  at = 0;
  readonly b: Uint8Array;
  constructor(b: Uint8Array) {
    this.b = b;
  }
  varint(): number {
    let v = 0;
    let mul = 1;
    for (;;) {
      const x = this.b[this.at++]!;
      v += (x & 0x7f) * mul;
      if (x < 0x80) return v;
      mul *= 128;
    }
  }
  zigzag(): number {
    const v = this.varint();
    return v % 2 === 0 ? v / 2 : -(v + 1) / 2;
  }
  skip(type: number): void {
    switch (type) {
      case 1:
      case 2:
        return;
      case 3:
        this.at++;
        return;
      case 4:
      case 5:
      case 6:
        this.varint();
        return;
      case 7:
        this.at += 8;
        return;
      case 8:
        this.at += this.varint();
        return;
      case 9:
      case 10: {
        const h = this.b[this.at++]!;
        let n = h >> 4;
        if (n === 15) n = this.varint();
        for (let i = 0; i < n; i++) this.skip(h & 15);
        return;
      }
      case 12:
        this.struct(() => false);
        return;
      default:
        throw new Error(`thrift type ${type}`);
    }
  }
  /** Reads a struct; `field(id, type)` returns true when it consumed the value. */
  struct(field: (id: number, type: number) => boolean): void {
    let last = 0;
    for (;;) {
      const h = this.b[this.at++]!;
      if (h === 0) return;
      const type = h & 15;
      const id = h >> 4 === 0 ? this.zigzag() : last + (h >> 4);
      last = id;
      if (!field(id, type)) this.skip(type);
    }
  }
}

/** Pages of one column chunk: [dictionary?, data] as {dict, values, num}. */
function pages(buf: Uint8Array): Array<{ dict: boolean; data: Uint8Array; num: number }> {
  const out: Array<{ dict: boolean; data: Uint8Array; num: number }> = [];
  let at = 0;
  while (at < buf.length) {
    const c = new Compact(buf.subarray(at));
    let type = 0;
    let compressed = 0;
    let num = 0;
    c.struct((id, t) => {
      if (id === 1) type = c.zigzag();
      else if (id === 3) compressed = c.zigzag();
      else if ((id === 5 || id === 7) && t === 12)
        c.struct((sid) => {
          if (sid !== 1) return false;
          num = c.zigzag();
          return true;
        });
      else return false;
      return true;
    });
    const body = buf.subarray(at + c.at, at + c.at + compressed);
    out.push({ dict: type === 2, data: zstdDecompressSync(body), num });
    at += c.at + compressed;
  }
  return out;
}

async function jsReader(): Promise<Array<[string, number]>> {
  const list = await chunks();
  const byFile = new Map<string, Chunk[]>();
  for (const c of list) byFile.set(c.file, [...(byFile.get(c.file) ?? []), c]);
  const sums = new Map<string, number>();
  for (const [file, cs] of byFile) {
    const whole = readFileSync(file);
    const addrs = cs.filter((c) => c.column === "dst_addr").sort((a, b) => a.start - b.start);
    const bytes = cs.filter((c) => c.column === "bytes").sort((a, b) => a.start - b.start);
    for (let g = 0; g < addrs.length; g++) {
      const a = pages(whole.subarray(addrs[g]!.start, addrs[g]!.start + addrs[g]!.size));
      const b = pages(whole.subarray(bytes[g]!.start, bytes[g]!.start + bytes[g]!.size));
      // values: a one-value chunk is a dictionary page (one entry) + an RLE data page
      const n = a[a.length - 1]!.num;
      const counters = new Float64Array(n);
      if (b[0]!.dict)
        counters.fill(new DataView(b[0]!.data.buffer, b[0]!.data.byteOffset).getUint32(0, true));
      else {
        const v = new DataView(b[0]!.data.buffer, b[0]!.data.byteOffset, b[0]!.data.byteLength);
        for (let i = 0; i < n; i++)
          counters[i] = v.getUint32(8 * i, true) + v.getUint32(8 * i + 4, true) * 4294967296;
      }
      const p = a[0]!.data;
      const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
      let at = 0;
      for (let i = 0; i < n; i++) {
        const len = view.getUint32(at, true);
        const key = Buffer.from(p.buffer, p.byteOffset + at + 4, len).toString("latin1");
        at += a[0]!.dict ? 0 : 4 + len;
        sums.set(key, (sums.get(key) ?? 0) + counters[i]!);
      }
    }
  }
  return [...sums].sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1)).slice(0, 10);
}

// ---------------------------------------------------------------------------------------------------------

const contenders: Array<[string, () => Promise<Timing>]> = [
  ["`clarion-collector top --archive DIR --by dst_ip` (child process)", () => timedChild(cli([]))],
  ["… with `--no-scale`", () => timedChild(cli(["--no-scale"]))],
  ["runArchiveTop in this process (`scale: false`)", () => timed(inProcess)],
  ["DuckDB SQL of the README over the glob (@duckdb/node-api)", () => timed(duckdbSql)],
];
const from = arg("from", "");
const to = arg("to", "");
if (from !== "" && to !== "") {
  const opened = filesForWindow(files, Date.parse(from), Date.parse(to)).length;
  contenders.push([
    `… with \`--from ${from} --to ${to}\` (opens ${opened} of ${files.length} files)`,
    () => timedChild(cli(["--from", from, "--to", to])),
  ]);
}
if (!skipJs)
  contenders.push(["JS reader of our files (dst_addr + bytes only, 1 thread)", () => timed(jsReader)]);

const best = new Map<string, Timing>();
for (let run = 0; run < RUNS; run++) {
  for (const [name, f] of contenders) {
    const t = await f();
    const prev = best.get(name);
    if (prev === undefined || t.ms < prev.ms) best.set(name, t);
  }
}
await closeArchiveEngine();
con.closeSync();
duck.closeSync();

let bytes = 0;
for (const f of files) bytes += statSync(f.path).size;
const reference = JSON.stringify(best.get(contenders[3]![0])!.top);
console.log(
  `top-archive bench: Node ${process.version}, ${dir}: ${files.length} files, ${(bytes / 1e9).toFixed(2)} GB; best of ${RUNS}`,
);
console.log("| top 10 destinations by bytes, every file | wall s | CPU s | same answer |");
console.log("|---|---:|---:|---|");
for (const [name] of contenders) {
  const t = best.get(name)!;
  const cpu = (t.cpuMs / 1000).toFixed(1);
  console.log(
    `| ${name} | ${(t.ms / 1000).toFixed(1)} | ${cpu} | ${JSON.stringify(t.top) === reference ? "yes" : name.includes("--from") ? "(a window)" : `NO: ${JSON.stringify(t.top.slice(0, 2))}`} |`,
  );
}
