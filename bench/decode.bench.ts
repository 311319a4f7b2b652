/**
 * Decode throughput on one core: datagrams → complete FlowRecords (no sink), per protocol.
 * Run: npm run bench:decode    (prints a table; `--json` prints JSON)
 * Targets (issue 2): ≥ 2,000,000 flows/s for v9/IPFIX, ≥ 3,000,000 for v5; sFlow ≥ 1,000,000 samples/s.
 */

import { readdirSync, readFileSync } from "node:fs";
import { DecodeError } from "../src/core/errors.ts";
import type { FlowRecord } from "../src/core/flow.ts";
import { FlowDecoder } from "../src/protocols/decoder.ts";
import {
  ipfixPacket,
  ipfixTemplate,
  record,
  set,
  v5Packet,
  v9Packet,
  v9Template,
} from "../test/helpers/netflow-builder.ts";
import { IPFIX_FIELDS, V9_FIELDS, values } from "./flows.ts";

interface Result {
  name: string;
  datagramsPerSec: number;
  flowsPerSec: number;
  flowsPerDatagram: number;
}

function ipfixDatagrams(records: number): Buffer[] {
  const tpl = ipfixPacket([set(2, ipfixTemplate(256, IPFIX_FIELDS))]);
  const data: number[] = [];
  const now = 1_700_000_000_000;
  for (let i = 0; i < records; i++) data.push(...record(IPFIX_FIELDS, values(i, now - 5000, now - 1000)));
  return [tpl, ipfixPacket([set(256, data)])];
}

function v9Datagrams(records: number): Buffer[] {
  const tpl = v9Packet([set(0, v9Template(256, V9_FIELDS))]);
  const data: number[] = [];
  for (let i = 0; i < records; i++) data.push(...record(V9_FIELDS, values(i, 95_000, 99_000)));
  return [tpl, v9Packet([set(256, data)])];
}

function v5Datagram(records: number): Buffer {
  return v5Packet(
    Array.from({ length: records }, (_, i) => ({
      src: `10.0.${i}.1`,
      dst: `192.168.1.${i}`,
      packets: i + 1,
      bytes: 1500 * (i + 1),
      first: 90_000,
      last: 99_000,
      srcPort: 1024 + i,
      dstPort: 80,
      proto: 6,
    })),
  );
}

/** Decode `setup` once (templates), then `hot` in a loop for about `seconds`. */
function measure(name: string, setup: Buffer[], hot: Buffer[], seconds = 2): Result {
  const decoder = new FlowDecoder();
  let flows = 0;
  let sink: FlowRecord | null = null;
  const handler = {
    flow: (r: FlowRecord) => {
      flows++;
      sink = r;
    },
    options: () => {},
  };
  const feed = (payload: Buffer) => {
    try {
      decoder.decode(
        { payload, exporter: "192.0.2.1", port: 2055, receivedAtMs: 1_700_000_000_000, listener: "" },
        handler,
      );
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
    }
  };
  for (const p of setup) feed(p);
  // warm up
  for (let i = 0; i < 2000; i++) for (const p of hot) feed(p);
  flows = 0;
  let datagrams = 0;
  const start = process.hrtime.bigint();
  const limit = start + BigInt(Math.round(seconds * 1e9));
  let now = start;
  while (now < limit) {
    for (let i = 0; i < 200; i++) for (const p of hot) feed(p);
    datagrams += 200 * hot.length;
    now = process.hrtime.bigint();
  }
  const secs = Number(now - start) / 1e9;
  void sink;
  return {
    name,
    datagramsPerSec: datagrams / secs,
    flowsPerSec: flows / secs,
    flowsPerDatagram: flows / datagrams,
  };
}

function corpus(): { setup: Buffer[]; hot: Buffer[] } {
  const dir = new URL("../test/fixtures/logstash/", import.meta.url);
  const files = readdirSync(dir).filter((f) => f.endsWith(".dat") && !f.includes("invalid"));
  const templates = files.filter((f) => /tpl/.test(f)).map((f) => readFileSync(new URL(f, dir)));
  const data = files
    .filter((f) => !/tpl/.test(f) && f !== "netflow5.dat" && f !== "ipfix.dat")
    .map((f) => readFileSync(new URL(f, dir)));
  return { setup: templates, hot: [...templates, ...data] };
}

export async function benchDecode(seconds = 2): Promise<Result[]> {
  const results: Result[] = [];
  results.push(measure("netflow5 (30 records/datagram)", [], [v5Datagram(30)], seconds));
  const [v9t, v9d] = v9Datagrams(25);
  results.push(measure("netflow9 (20 fields, 25 records/datagram)", [v9t!], [v9d!], seconds));
  const [it, id] = ipfixDatagrams(25);
  results.push(measure("ipfix (20 fields, 25 records/datagram)", [it!], [id!], seconds));
  const c = corpus();
  results.push(measure("logstash corpus (all vendors, mixed)", c.setup, c.hot, seconds));
  try {
    const { benchSflow } = (await import("./sflow.bench.ts")) as {
      benchSflow: (s?: number) => {
        samplesPerSec: number;
        datagramsPerSec: number;
        samplesPerDatagram?: number;
      };
    };
    const s = benchSflow(seconds);
    results.push({
      name: "sflow5 (flow samples)",
      datagramsPerSec: s.datagramsPerSec,
      flowsPerSec: s.samplesPerSec,
      flowsPerDatagram: s.samplesPerSec / s.datagramsPerSec,
    });
  } catch (e) {
    process.stderr.write(`sflow benchmark unavailable: ${(e as Error).message}\n`);
  }
  return results;
}

if (import.meta.main) {
  const json = process.argv.includes("--json");
  const results = await benchDecode(Number(process.env.BENCH_SECONDS ?? 2));
  if (json) {
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  } else {
    const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
    process.stdout.write(`decode throughput, one core, Node ${process.version}\n`);
    process.stdout.write(`${"input".padEnd(45)} ${"datagrams/s".padStart(12)} ${"flows/s".padStart(12)}\n`);
    for (const r of results) {
      process.stdout.write(
        `${r.name.padEnd(45)} ${fmt(r.datagramsPerSec).padStart(12)} ${fmt(r.flowsPerSec).padStart(12)}\n`,
      );
    }
  }
}
