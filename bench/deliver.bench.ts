/**
 * Delivery throughput: flows/s through each HTTP sink to a local backend (gzip on), and the spool's write
 * and replay rates.
 * Run: npm run bench:deliver   (`--json` prints JSON; `--flows N` changes the volume, default 1,000,000)
 * Target (issue 5): ≥ 500,000 flows/s through flows-v1 with gzip; the spool must not be the bottleneck.
 *
 * The backend (test/helpers/fake-backend.ts in light mode: gunzip + count records) runs in a child process.
 * Rows:
 * - encode: the encoder half alone on one core (it runs in the receive workers);
 * - deliver: pre-encoded batches written one at a time (as the sink queue does) through spool + keep-alive
 *   pool until the backend acknowledged every flow: the main-thread cost of the sink;
 * - end-to-end (1 thread): encode + deliver on one thread;
 * - spool append / replay: raw spool rates with 1000-flow batch bodies.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FlowRecord } from "../src/core/flow.ts";
import { Spool } from "../src/pipeline/spool.ts";
import { createHttpEncoder, createHttpSink } from "../src/sinks/http.ts";
import type { EncodedBatch } from "../src/sinks/types.ts";
import { FakeBackend } from "../test/helpers/fake-backend.ts";

function record(i: number): FlowRecord {
  const r = new FlowRecord();
  r.type = "IPFIX";
  r.time_received_ms = 1_767_324_720_787 + i;
  r.time_flow_start_ms = 1_767_324_700_000 + (i % 20_000);
  r.time_flow_end_ms = r.time_flow_start_ms + 1500;
  r.sampler_address = `192.168.88.${1 + (i % 4)}`;
  r.src_addr = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  r.dst_addr = `172.16.${(i * 7) & 255}.${(i * 13) & 255}`;
  r.src_port = 1024 + ((i * 31) % 60_000);
  r.dst_port = [443, 80, 53, 22, 8080][i % 5]!;
  r.proto = i % 5 === 2 ? 17 : 6;
  r.bytes = 143 + ((i * 97) % 150_000);
  r.packets = 1 + (i % 120);
  r.in_if = 1 + (i % 8);
  r.out_if = 9 + (i % 4);
  return r;
}

interface Row {
  name: string;
  flowsPerSec?: number;
  mbPerSec?: number;
  batchesPerSec?: number;
  note?: string;
}

async function startBackend(): Promise<{ port: number; count(): Promise<number>; stop(): void }> {
  const child = spawn(process.execPath, [import.meta.filename, "--backend"], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  let buf = "";
  const waiters: ((line: string) => void)[] = [];
  child.stdout.on("data", (d: Buffer) => {
    buf += d.toString();
    let nl = buf.indexOf("\n");
    while (nl >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      waiters.shift()?.(line);
      nl = buf.indexOf("\n");
    }
  });
  const next = () => new Promise<string>((r) => waiters.push(r));
  const port = Number((await next()).split(" ")[1]);
  return {
    port,
    async count() {
      const p = next();
      child.stdin.write("?\n");
      return Number((await p).split(" ")[1]);
    },
    stop() {
      child.stdin.end();
      child.kill();
    },
  };
}

const quiet = { info() {}, warn() {}, error() {} };

async function deliver(
  scheme: string,
  options: Record<string, unknown>,
  total: number,
  batch: number,
  preEncoded: boolean,
): Promise<Row> {
  const backend = await startBackend();
  const dir = mkdtempSync(join(tmpdir(), "deliver-bench-"));
  const uri = `${scheme}://127.0.0.1:${backend.port}`;
  const enc = createHttpEncoder(uri, options);
  const recs: FlowRecord[] = [];
  for (let i = 0; i < batch * 16; i++) recs.push(record(i));
  const batches: FlowRecord[][] = [];
  for (let i = 0; i < 16; i++) batches.push(recs.slice(i * batch, (i + 1) * batch));
  let encoded: EncodedBatch[] = [];
  if (preEncoded) encoded = batches.map((b) => enc.encode(b));
  const sink = await createHttpSink(uri, { dataDir: dir, logger: quiet, options });
  const t0 = process.hrtime.bigint();
  let sent = 0;
  for (let i = 0; sent < total; i++) {
    const b = preEncoded ? encoded[i % 16]! : enc.encode(batches[i % 16]!);
    await sink.write(b);
    sent += b.records;
  }
  while (sink.stats().delivered < sent) await new Promise((r) => setTimeout(r, 2));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const got = await backend.count();
  const st = sink.stats();
  await sink.close();
  backend.stop();
  rmSync(dir, { recursive: true, force: true });
  return {
    name: `${preEncoded ? "deliver" : "end-to-end (1 thread)"} ${scheme} ${JSON.stringify(options)} batch ${batch}`,
    flowsPerSec: sent / secs,
    note: `backend counted ${got}/${sent}, ${st.deliveredBatches} requests, retried ${st.retried}`,
  };
}

function encodeRate(scheme: string, options: Record<string, unknown>, batch: number): Row {
  const enc = createHttpEncoder(`${scheme}://127.0.0.1:1`, options);
  const recs: FlowRecord[] = [];
  for (let i = 0; i < batch; i++) recs.push(record(i));
  let n = 0;
  let bytes = 0;
  const t0 = process.hrtime.bigint();
  let secs = 0;
  while (secs < 1.5) {
    const b = enc.encode(recs);
    n += b.records;
    for (const p of b.parts) bytes += p.data.byteLength;
    secs = Number(process.hrtime.bigint() - t0) / 1e9;
  }
  return {
    name: `encode ${scheme} ${JSON.stringify(options)} batch ${batch}`,
    flowsPerSec: n / secs,
    note: `${(bytes / n).toFixed(1)} bytes/flow on the wire`,
  };
}

async function spoolRates(fsync: "interval" | "always", concurrentAppends: number): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), "spool-bench-"));
  const enc = createHttpEncoder("flows-v1+http://127.0.0.1:1", { batchSize: 1000 });
  const recs: FlowRecord[] = [];
  for (let i = 0; i < 1000; i++) recs.push(record(i));
  const body = enc.encode(recs).parts[0]!.data;
  const count = Math.ceil((512 * 1024 * 1024) / body.byteLength);
  let s = await Spool.open({ dir, fsync, maxBytes: 4 * 1024 ** 3 });
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < count; i += concurrentAppends) {
    const ps: Promise<void>[] = [];
    for (let j = i; j < Math.min(count, i + concurrentAppends); j++) {
      ps.push(
        s.append({ id: `id-${j}`, key: "", meta: "", records: 1000, createdMs: Date.now(), data: body }),
      );
    }
    await Promise.all(ps);
  }
  const wsecs = Number(process.hrtime.bigint() - t0) / 1e9;
  const bytes = s.stats().appendedBytes;
  await s.close();
  s = await Spool.open({ dir, memoryBytes: 0 });
  const t1 = process.hrtime.bigint();
  let n = 0;
  for (let e = s.next(); e !== null; e = s.next()) {
    s.ack(e);
    n++;
  }
  const rsecs = Number(process.hrtime.bigint() - t1) / 1e9;
  await s.close();
  rmSync(dir, { recursive: true, force: true });
  const kb = (body.byteLength / 1024).toFixed(0);
  return [
    {
      name: `spool append fsync=${fsync}, ${concurrentAppends} at a time, ${kb} KiB gzip bodies`,
      mbPerSec: bytes / wsecs / 1e6,
      batchesPerSec: count / wsecs,
      flowsPerSec: (count * 1000) / wsecs,
    },
    ...(concurrentAppends === 1 && fsync === "interval"
      ? [
          {
            name: `spool replay from disk (after reopen), ${kb} KiB bodies`,
            mbPerSec: bytes / rsecs / 1e6,
            batchesPerSec: n / rsecs,
            flowsPerSec: (n * 1000) / rsecs,
          },
        ]
      : []),
  ];
}

async function main(): Promise<void> {
  const json = process.argv.includes("--json");
  const fi = process.argv.indexOf("--flows");
  const total = fi > 0 ? Number(process.argv[fi + 1]) : 1_000_000;
  const rows: Row[] = [];
  const add = (r: Row | Row[]) => {
    for (const x of Array.isArray(r) ? r : [r]) {
      rows.push(x);
      if (!json) {
        const parts = [x.name.padEnd(92)];
        if (x.flowsPerSec !== undefined)
          parts.push(`${Math.round(x.flowsPerSec).toLocaleString("en-US").padStart(11)} flows/s`);
        if (x.mbPerSec !== undefined) parts.push(`${x.mbPerSec.toFixed(0).padStart(5)} MB/s`);
        if (x.batchesPerSec !== undefined)
          parts.push(`${Math.round(x.batchesPerSec).toLocaleString("en-US").padStart(7)} batches/s`);
        if (x.note) parts.push(x.note);
        console.log(parts.join("  "));
      }
    }
  };
  add(encodeRate("flows-v1+http", {}, 1000));
  add(encodeRate("flows-v1+http", { batchSize: 1000 }, 1000));
  add(encodeRate("flows-v1+http", { batchSize: 1000, gzipLevel: 6 }, 1000));
  add(encodeRate("clarion+http", { gzipThreshold: 51200 }, 1000));
  add(await deliver("flows-v1+http", {}, total, 1000, true));
  add(await deliver("flows-v1+http", { batchSize: 1000 }, total, 1000, true));
  add(await deliver("flows-v1+http", { batchSize: 5000 }, total, 5000, true));
  add(await deliver("clarion+http", { gzipThreshold: 51200 }, total, 1000, true));
  add(await deliver("flows-v1+http", { batchSize: 1000 }, total, 1000, false));
  add(await spoolRates("interval", 1));
  add(await spoolRates("always", 1));
  add(await spoolRates("always", 16));
  if (json) console.log(JSON.stringify(rows, null, 2));
}

if (process.argv.includes("--backend")) {
  const b = new FakeBackend();
  b.light = true;
  await b.up();
  process.stdout.write(`PORT ${b.port}\n`);
  process.stdin.on("data", () => {
    process.stdout.write(`COUNT ${b.acceptedRecords}\n`);
  });
  process.stdin.on("end", () => process.exit(0));
} else {
  await main();
}
