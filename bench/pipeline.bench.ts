/**
 * The receive worker's work without sockets, on one core: the ingest bench's datagrams (16 exporters) go
 * through a FlowDecoder, a Batcher of `--batch-size` records and each sink's worker-side encoder, as in
 * src/inputs/worker.ts. Reports µs per flow for decode alone and for decode + batch + encode, per sink, so
 * the end-to-end figures of bench:ingest can be split into their parts.
 *
 * Run: node bench/pipeline.bench.ts [--protocol ipfix,v9,v5] [--sink jsonl,sqlite,parquet] [--batch-size 5000]
 *      [--seconds 2]
 * The parquet encoder writes its archive itself (a temporary directory): its figure includes compressing
 * and writing the files, and bytes/flow is the size of the finished files.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FlowRecord, RecordHandler } from "../src/core/flow.ts";
import { createLogger } from "../src/core/log.ts";
import { Batcher } from "../src/pipeline/batcher.ts";
import { FlowDecoder } from "../src/protocols/decoder.ts";
import { findSink } from "../src/sinks/index.ts";
import type { EncodedBatch, SinkContext } from "../src/sinks/types.ts";
import { type BenchDatagram, benchDatagrams, type Protocol } from "./flows.ts";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
}

const protocols = arg("protocol", "ipfix,v9,v5").split(",") as Protocol[];
const sinks = arg("sink", "jsonl,sqlite").split(",");
const batchSize = Number(arg("batch-size", "5000"));
const seconds = Number(arg("seconds", "2"));

/** Runs `seconds` of datagrams through decode (+ encode when `uri` is given); returns µs per flow. */
function run(
  dgs: BenchDatagram[],
  uri: string | null,
  keep?: EncodedBatch[],
): { usPerFlow: number; bytesPerFlow: number } {
  const decoder = new FlowDecoder();
  const enc = uri === null ? null : findSink(uri).createEncoder(uri, {}, { worker: 0 });
  let bytes = 0;
  let flows = 0;
  const batcher = new Batcher<FlowRecord>({
    size: batchSize,
    intervalMs: 1e9,
    onBatch: (records) => {
      if (enc === null) return;
      const b = enc.encode(records);
      if (keep !== undefined && keep.length < 200) keep.push(b);
      for (const part of b.parts) bytes += part.data.byteLength;
    },
  });
  const handler: RecordHandler = {
    flow: (r) => {
      flows++;
      batcher.add(r);
    },
  };
  const once = (): void => {
    for (const d of dgs)
      decoder.decode(
        {
          payload: d.payload,
          exporter: d.exporter,
          port: 2055,
          receivedAtMs: Date.now(),
          listener: "udp:2055",
        },
        handler,
      );
  };
  for (let i = 0; i < 20; i++) once(); // warm up
  batcher.flush();
  enc?.poll?.(true);
  if (uri?.startsWith("parquet:")) rmSync(uri.slice("parquet:".length), { recursive: true, force: true });
  flows = 0;
  bytes = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) once();
  batcher.flush();
  enc?.poll?.(true);
  const ms = performance.now() - t0;
  batcher.close();
  if (uri?.startsWith("parquet:")) bytes = treeBytes(uri.slice("parquet:".length));
  return { usPerFlow: (ms * 1000) / flows, bytesPerFlow: bytes / flows };
}

function treeBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith(".parquet")) n += statSync(join(e.parentPath, e.name)).size;
  }
  return n;
}

/** The main thread's half of the SQLite sink: inserts the kept batches into a new database file. */
async function insert(batches: EncodedBatch[]): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "clarion-pipeline-bench-"));
  try {
    const sink = await findSink("sqlite:").create(`sqlite:${join(dir, "flows.db")}`, {
      logger: createLogger({ level: "warn" }),
      dataDir: dir,
      options: { retentionMs: 0 },
    } satisfies SinkContext);
    await sink.write(batches[0]!); // statements, page cache
    let rows = 0;
    const t0 = performance.now();
    for (let i = 1; i < batches.length; i++) {
      await sink.write(batches[i]!);
      rows += batches[i]!.records;
    }
    const ms = performance.now() - t0;
    await sink.close();
    return (ms * 1000) / rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const archiveDir = mkdtempSync(join(tmpdir(), "clarion-pipeline-parquet-"));
process.on("exit", () => rmSync(archiveDir, { recursive: true, force: true }));
const URIS: Record<string, string> = {
  jsonl: "jsonl:/dev/null",
  sqlite: "sqlite:/dev/null",
  parquet: `parquet:${archiveDir}`,
};

console.log(`pipeline bench: Node ${process.version}, batch ${batchSize}, ${seconds}s per row, one core`);
console.log("| protocol | stage | µs/flow | flows/s | bytes/flow |");
console.log("|---|---|---:|---:|---:|");
for (const p of protocols) {
  const dgs = benchDatagrams(p);
  const d = run(dgs, null);
  console.log(
    `| ${p} | decode | ${d.usPerFlow.toFixed(3)} | ${Math.round(1e6 / d.usPerFlow).toLocaleString("en")} | |`,
  );
  for (const s of sinks) {
    const kept: EncodedBatch[] = [];
    const r = run(dgs, URIS[s]!, s === "sqlite" ? kept : undefined);
    console.log(
      `| ${p} | decode + ${s} encode | ${r.usPerFlow.toFixed(3)} | ${Math.round(1e6 / r.usPerFlow).toLocaleString("en")} | ${r.bytesPerFlow.toFixed(0)} |`,
    );
    if (s === "sqlite") {
      const us = await insert(kept);
      console.log(
        `| ${p} | sqlite insert (main thread) | ${us.toFixed(3)} | ${Math.round(1e6 / us).toLocaleString("en")} | |`,
      );
    }
  }
}
