/**
 * Kafka output throughput.
 * Run: npm run bench:kafka   (`--json` prints JSON; `--flows N` changes the volume, default 500,000)
 * Target (issue 13): the protobuf encoder ≥ 2 M flows/s per core, far cheaper than the JSON line, and not the
 * bottleneck of the pipeline.
 *
 * Rows:
 * - encode protobuf / json: the encoder half alone (src/encode/goflow2-pb.ts; it runs in the receive
 *   workers), batches of 1000 decoded-like records (IPv4 addresses as numbers, as the decoders leave them);
 *   flows per CPU-second of this thread;
 * - deliver protobuf / json (+ lz4): pre-encoded batches written one at a time (as the sink queue does)
 *   through the write-ahead spool and the producer to librdkafka's mock cluster (3 brokers, topic of 6
 *   partitions, acks all, idempotent) until every flow is acknowledged: wall-clock flows/s, and the main
 *   thread's CPU-seconds per million flows. The mock cluster (test/helpers/kafka-mock.c, built with cc and
 *   librdkafka-dev) runs in its own process; its own CPU use is not counted.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FlowRecord } from "../src/core/flow.ts";
import { encodeKafkaFrames, keyFunction } from "../src/encode/goflow2-pb.ts";
import { createKafkaEncoder, createKafkaSink } from "../src/sinks/kafka.ts";
import type { EncodedBatch } from "../src/sinks/types.ts";

function record(i: number): FlowRecord {
  const r = new FlowRecord();
  r.type = "IPFIX";
  r.time_received_ms = 1_767_324_720_787 + i;
  r.time_flow_start_ms = 1_767_324_700_000 + (i % 20_000);
  r.time_flow_end_ms = r.time_flow_start_ms + 1500;
  r.sampler_address = `192.168.88.${1 + (i % 4)}`;
  r.switch_id = r.sampler_address;
  r.sequence_num = i;
  r.src_v4 = (0x0a000000 + i) >>> 0;
  r.dst_v4 = (0xac100000 + ((i * 7) & 0xffff)) >>> 0;
  r.src_port = 1024 + ((i * 31) % 60_000);
  r.dst_port = [443, 80, 53, 22, 8080][i % 5]!;
  r.proto = i % 5 === 2 ? 17 : 6;
  r.etype = 0x800;
  r.bytes = 143 + ((i * 97) % 150_000);
  r.packets = 1 + (i % 120);
  r.in_if = 1 + (i % 8);
  r.out_if = 9 + (i % 4);
  r.tcp_flags = 0x18;
  r.src_as = 65000;
  r.dst_as = 15169;
  r.src_net = 24;
  r.dst_net = 16;
  r.next_hop_v4 = 0x0a0000fe;
  return r;
}

const args = process.argv.slice(2);
const json = args.includes("--json");
const flowsArg = args.indexOf("--flows");
const FLOWS = flowsArg >= 0 ? Number(args[flowsArg + 1]) : 500_000;
const BATCH = 1000;

interface Row {
  name: string;
  flowsPerSec: number;
  flowsPerCpuSec?: number;
  cpuSecPerMillion?: number;
  bytesPerFlow?: number;
}
const rows: Row[] = [];

const records = Array.from({ length: 10_000 }, (_, i) => record(i));
const batches: FlowRecord[][] = [];
for (let i = 0; i < records.length; i += BATCH) batches.push(records.slice(i, i + BATCH));

function cpuSec(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function benchEncode(format: "protobuf" | "json"): void {
  const key = keyFunction([]);
  // warm up
  for (let i = 0; i < 50; i++) encodeKafkaFrames(batches[i % batches.length]!, format, key, 1000, 1_000_000);
  let bytes = 0;
  const c0 = cpuSec();
  const t0 = performance.now();
  for (let n = 0; n < FLOWS; n += BATCH) {
    for (const p of encodeKafkaFrames(batches[(n / BATCH) % batches.length]!, format, key, 1000, 1_000_000)) {
      bytes += p.data.length;
    }
  }
  const wall = (performance.now() - t0) / 1000;
  const cpu = cpuSec() - c0;
  rows.push({
    name: `encode ${format}`,
    flowsPerSec: Math.round(FLOWS / wall),
    flowsPerCpuSec: Math.round(FLOWS / cpu),
    bytesPerFlow: Math.round(bytes / FLOWS),
  });
}

async function startMock(): Promise<{ bootstrap: string; command(l: string): Promise<void>; stop(): void }> {
  const dir = mkdtempSync(join(tmpdir(), "kafka-bench-"));
  const bin = join(dir, "kafka-mock");
  const src = new URL("../test/helpers/kafka-mock.c", import.meta.url).pathname;
  const cc = spawnSync("cc", ["-O2", "-o", bin, src, "-lrdkafka"], { encoding: "utf8" });
  if (cc.status !== 0) throw new Error(`cannot build the mock cluster (cc, librdkafka-dev): ${cc.stderr}`);
  const child = spawn(bin, ["3"], { stdio: ["pipe", "pipe", "inherit"] });
  let buf = "";
  const waiters: ((l: string) => void)[] = [];
  child.stdout.on("data", (d: Buffer) => {
    buf += d.toString();
    for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      waiters.shift()?.(line);
    }
  });
  const next = (): Promise<string> => new Promise((r) => waiters.push(r));
  const first = await next();
  return {
    bootstrap: first.replace(/^BOOTSTRAP /, ""),
    async command(l: string): Promise<void> {
      const a = next();
      child.stdin.write(`${l}\n`);
      if ((await a) !== "ok") throw new Error(`mock: ${l} failed`);
    },
    stop(): void {
      child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const quiet = { info() {}, warn() {}, error() {} };

async function benchDeliver(
  mock: { bootstrap: string; command(l: string): Promise<void> },
  format: "protobuf" | "json",
  compression: string,
): Promise<void> {
  const topic = `bench-${format}-${compression}`;
  await mock.command(`topic ${topic} 6 3`);
  const uri = `kafka://${mock.bootstrap}/${topic}`;
  const options = {
    format,
    compression,
    fsync: "never",
    spoolMaxBytes: 4 * 1024 ** 3,
    flushTimeoutMs: 600_000,
  };
  const enc = createKafkaEncoder(uri, options);
  const encoded: EncodedBatch[] = batches.map((b) => enc.encode(b));
  const dataDir = mkdtempSync(join(tmpdir(), "kafka-bench-data-"));
  const sink = await createKafkaSink(uri, { dataDir, logger: quiet, options });
  const c0 = cpuSec();
  const t0 = performance.now();
  for (let n = 0; n < FLOWS; n += BATCH) await sink.write(encoded[(n / BATCH) % encoded.length]!);
  await sink.flush();
  const wall = (performance.now() - t0) / 1000;
  const cpu = cpuSec() - c0;
  const delivered = sink.remoteStats!().delivered;
  await sink.close();
  rmSync(dataDir, { recursive: true, force: true });
  if (delivered !== FLOWS) throw new Error(`${topic}: delivered ${delivered} of ${FLOWS}`);
  rows.push({
    name: `deliver ${format}${compression === "none" ? "" : ` + ${compression}`}`,
    flowsPerSec: Math.round(FLOWS / wall),
    cpuSecPerMillion: Math.round((cpu / FLOWS) * 1e6 * 100) / 100,
  });
}

benchEncode("protobuf");
benchEncode("json");
const mock = await startMock();
try {
  await benchDeliver(mock, "protobuf", "none");
  await benchDeliver(mock, "json", "none");
  await benchDeliver(mock, "protobuf", "lz4");
} finally {
  mock.stop();
}

if (json) {
  console.log(JSON.stringify({ flows: FLOWS, rows }, null, 2));
} else {
  console.log(
    `Kafka output, ${FLOWS.toLocaleString("en")} flows, batches of ${BATCH} (node ${process.version})`,
  );
  for (const r of rows) {
    const parts = [`${r.flowsPerSec.toLocaleString("en")} flows/s`];
    if (r.flowsPerCpuSec) parts.push(`${r.flowsPerCpuSec.toLocaleString("en")} flows per CPU-second`);
    if (r.bytesPerFlow) parts.push(`${r.bytesPerFlow} bytes/flow`);
    if (r.cpuSecPerMillion !== undefined) parts.push(`${r.cpuSecPerMillion} main-thread CPU-s per million`);
    console.log(`  ${r.name.padEnd(22)} ${parts.join(", ")}`);
  }
}
