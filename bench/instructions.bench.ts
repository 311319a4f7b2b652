/**
 * Instructions per flow of the receive worker's work, counted by valgrind's callgrind: the one measure on a
 * shared, noisy machine that repeats to within a percent, so it is what A/B comparisons of the decode and
 * encode paths use (time-based benches on this kind of machine swing by 30 % and more).
 *
 * Method: the bench traffic of bench:ingest / bench:pipeline (16 exporters, 64 datagrams each) goes through
 * a FlowDecoder and the sink's worker-side encoder fed as the worker feeds it (src/inputs/outputs.ts, batches
 * cut every 5,000 records: streaming `append`/`cut`, `add`, or held records and `encode`, with the decoder
 * refilling one record where the outputs allow it; a checkout from before outputs.ts: its worker's Batcher
 * of 5,000 and `encode`, or `add`) for a fixed number of passes, in
 * `node --single-threaded` under `valgrind --tool=callgrind`, once with `--low` passes and once with
 * `--high`; (instructions(high) − instructions(low)) / (flows(high) − flows(low)) is the marginal cost of a
 * flow, free of startup, compilation and warm-up (the first 20 passes of both runs are the same).
 *
 * Run: npm run bench:instructions [-- --protocol ipfix,v9,v5,sflow] [--stage decode,jsonl,sqlite,kafka,kafka-json,parquet]
 *                                 [--low 20] [--high 60] [--pcap FILE]
 * `--pcap FILE` replaces the synthetic traffic by a capture's datagrams (e.g. the peer bench's blaster
 * traffic: `blaster -P ipfix -n 2000 -w ipfix.pcap`, whose records are all distinct and carry
 * flowEndReason and a BGP next hop); the protocol column then reads `pcap`.
 * Needs valgrind (Debian: apt-get install valgrind). One row takes ~1–3 minutes.
 * `CLARION_BENCH_ROOT=/path/to/other/checkout` counts another checkout's code with this traffic (A/B);
 * `CLARION_BENCH_NODE_FLAGS="--max-semi-space-size=32"` passes V8/Node flags to the measured process.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import type { FlowRecord, RecordHandler } from "../src/core/flow.ts";
import { benchDatagrams, type Protocol } from "./flows.ts";

type Stage = "decode" | "jsonl" | "sqlite" | "kafka" | "kafka-json" | "parquet";
const URIS: Record<Exclude<Stage, "decode">, string> = {
  jsonl: "jsonl:/dev/null",
  sqlite: "sqlite:/dev/null",
  kafka: "kafka://127.0.0.1:9092/bench",
  "kafka-json": "kafka://127.0.0.1:9092/bench-json",
  // the archive writes (and compresses) its files itself: a temporary directory, removed afterwards
  parquet: `parquet:${tmpdir()}/clarion-instructions-${process.pid}`,
};
const OPTIONS: Partial<Record<Stage, Record<string, unknown>>> = { "kafka-json": { format: "json" } };

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
}
const pcapFile = arg("pcap", "");

/** The FlowRecord class of the measured checkout (its decoder fills that class's records). */
async function flowRecordClass(root: string): Promise<typeof FlowRecord> {
  return ((await import(`${root}/src/core/flow.ts`)) as typeof import("../src/core/flow.ts")).FlowRecord;
}

/** The measured child: `passes` passes over the traffic; prints the number of flows. */
async function child(root: string, p: Protocol | "pcap", stage: Stage, passes: number): Promise<void> {
  const { FlowDecoder } = (await import(
    `${root}/src/protocols/decoder.ts`
  )) as typeof import("../src/protocols/decoder.ts");
  const { Batcher } = (await import(
    `${root}/src/pipeline/batcher.ts`
  )) as typeof import("../src/pipeline/batcher.ts");
  const { findSink } = (await import(`${root}/src/sinks/index.ts`)) as typeof import("../src/sinks/index.ts");
  const pcap = process.env.CLARION_BENCH_PCAP;
  const dgs =
    p === "pcap" && pcap !== undefined
      ? ((await import(`${root}/src/core/pcap.ts`)) as typeof import("../src/core/pcap.ts")).readCapture(
          readFileSync(pcap),
        )
      : benchDatagrams(p as Protocol);
  const decoder = new FlowDecoder();
  const enc =
    stage === "decode"
      ? null
      : findSink(URIS[stage]).createEncoder(URIS[stage], OPTIONS[stage] ?? {}, { worker: 0 });
  let flows = 0;
  let sink = 0; // keeps the work observable
  const outputsModule = await import(`${root}/src/inputs/outputs.ts`).then(
    (m) => m as typeof import("../src/inputs/outputs.ts"),
    () => null, // a checkout from before src/inputs/outputs.ts: its worker's path, below
  );
  let handler: RecordHandler;
  let finish: () => void;
  if (enc !== null && outputsModule !== null) {
    // as src/inputs/worker.ts: its outputs (streaming, `add`, or batched), cut every 5,000 records
    const outputs = new outputsModule.WorkerOutputs({
      encoders: [{ name: URIS[stage as Exclude<Stage, "decode">], enc }],
      batchSize: 5000,
      batchIntervalMs: 1e9,
      post: (b) => {
        for (const part of b.parts) sink += part.data.byteLength;
      },
      error: (key, _fields, message) => {
        throw new Error(`${key}: ${message}`);
      },
    });
    const flow = outputs.flow;
    handler = {
      flow: (r) => {
        flows++;
        sink += r.src_port;
        flow(r);
      },
      ...(outputs.scratch !== undefined ? { scratch: outputs.scratch } : {}),
    };
    finish = () => {
      outputs.close();
      outputs.poll(true);
    };
  } else {
    const batcher = new Batcher<FlowRecord>({
      size: 5000,
      intervalMs: 1e9,
      onBatch: (records) => {
        if (enc === null) return;
        for (const part of enc.encode(records).parts) sink += part.data.byteLength;
      },
    });
    // as that checkout's worker: an encoder that takes records one by one (parquet) gets them as decoded
    const add = enc?.add?.bind(enc);
    handler = {
      flow:
        add !== undefined
          ? (r) => {
              flows++;
              sink += r.src_port;
              add(r);
            }
          : (r) => {
              flows++;
              sink += r.src_port;
              batcher.add(r);
            },
      // as the worker: an `add` encoder copies each record, so the decoder refills one (if the code has it)
      ...(add !== undefined ? { scratch: new (await flowRecordClass(root))() } : {}),
    };
    finish = () => {
      batcher.flush();
      batcher.close();
      enc?.poll?.(true);
    };
  }
  const receivedAtMs = 1_700_000_000_000;
  for (let i = 0; i < passes; i++)
    for (const d of dgs)
      decoder.decode(
        { payload: d.payload, exporter: d.exporter, port: 2055, receivedAtMs, listener: "udp:2055" },
        handler,
      );
  finish();
  if (stage === "parquet") rmSync(URIS.parquet.slice("parquet:".length), { recursive: true, force: true });
  process.stdout.write(`${flows} ${sink}\n`);
}

/** Runs the child under callgrind; returns the instructions executed and the flows decoded. */
function count(
  root: string,
  p: Protocol | "pcap",
  stage: Stage,
  passes: number,
): { ir: number; flows: number } {
  const self = fileURLToPath(import.meta.url);
  const r = spawnSync(
    "valgrind",
    [
      "--tool=callgrind",
      "--callgrind-out-file=/dev/null",
      process.execPath,
      "--single-threaded",
      ...(process.env.CLARION_BENCH_NODE_FLAGS ?? "").split(" ").filter((f) => f !== ""),
      self,
      "--child",
      root,
      p,
      stage,
      String(passes),
    ],
    { encoding: "utf8", maxBuffer: 1 << 26, env: { ...process.env, CLARION_BENCH_PCAP: pcapFile } },
  );
  if (r.error) throw new Error(`cannot run valgrind (Debian: apt-get install valgrind): ${r.error.message}`);
  const m = /Collected\s*:\s*(\d+)/.exec(r.stderr);
  if (r.status !== 0 || m === null)
    throw new Error(`valgrind failed (exit ${r.status}):\n${r.stderr.slice(-2000)}`);
  return { ir: Number(m[1]), flows: Number(r.stdout.trim().split(" ")[0]) };
}

if (process.argv[2] === "--child") {
  const [root, p, stage, passes] = process.argv.slice(3);
  await child(root!, p as Protocol | "pcap", stage as Stage, Number(passes));
} else {
  const root = process.env.CLARION_BENCH_ROOT ?? fileURLToPath(new URL("..", import.meta.url));
  const protocols = (pcapFile !== "" ? ["pcap"] : arg("protocol", "ipfix,v9,v5").split(",")) as Array<
    Protocol | "pcap"
  >;
  const stages = arg("stage", "decode,jsonl,sqlite").split(",") as Stage[];
  const low = Number(arg("low", "20"));
  const high = Number(arg("high", "60"));
  console.log(`instructions bench: Node ${process.version}, ${root}, passes ${low} and ${high}`);
  console.log("| protocol | stage | instructions/flow |");
  console.log("|---|---|---:|");
  for (const p of protocols)
    for (const s of stages) {
      const a = count(root, p, s, low);
      const b = count(root, p, s, high);
      const per = (b.ir - a.ir) / (b.flows - a.flows);
      console.log(`| ${p} | ${s === "decode" ? "decode" : `decode + ${s} encode`} | ${Math.round(per)} |`);
    }
}
