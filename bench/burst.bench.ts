/**
 * Largest lossless back-to-back burst on defaults (issue 11 §1): the real collector (child process,
 * `src/cli.ts`, or CLARION_BENCH_CLI for another checkout) started with nothing but free loopback ports and
 * a data dir (so: default receive buffer, default workers, default sqlite output), then bench/burst-sender.c
 * sends N NetFlow v5 datagrams (30 flows each, one exporter, consecutive flow_sequence) to 127.0.0.1 back
 * to back, as fast as a sendto loop goes (faster than softflowd or pmacctd replaying a pcap; tcpreplay on
 * `lo` does not reach local sockets here). A step is lossless when every flow was decoded (total_received) and the
 * kernel dropped nothing (clarion_collector_udp_kernel_dropped_datagrams_total). The ladder doubles N until
 * a step loses; each step runs `--repeat` times (default 2) on a fresh collector and passes only if all do.
 *
 * Run (needs cc): npm run bench:burst [-- --max 64000 --repeat 2 --args "--udp-rcvbuf 0"]
 * Also prints, per step, the longest receive-thread stall the workers reported (clarion_collector_
 * receive_stall_max_seconds, when the collector has it).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { v5Packet } from "../test/helpers/netflow-builder.ts";

const NODE = process.execPath;
const CLI = process.env.CLARION_BENCH_CLI ?? new URL("../src/cli.ts", import.meta.url).pathname;

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : def;
}
const MAX = Number(arg("max", "64000"));
const START = Number(arg("start", "125"));
const REPEAT = Number(arg("repeat", "2"));
const EXTRA = arg("args", "").split(" ").filter(Boolean);

const SENDER = join(tmpdir(), `clarion-burst-sender-${process.pid}`);
{
  const cc = spawnSync("cc", ["-O2", "-o", SENDER, new URL("./burst-sender.c", import.meta.url).pathname]);
  if (cc.status !== 0) throw new Error(`cc failed: ${cc.stderr}`);
}

/** NetFlow v5, 30 flows, flow_sequence `seq`. */
function v5(seq: number): Buffer {
  const now = Math.floor(Date.now() / 1000);
  const flows = Array.from({ length: 30 }, (_, i) => ({
    src: `10.0.${(seq >> 8) & 255}.${i}`,
    dst: "192.168.0.1",
    packets: 1,
    bytes: 100,
    first: 1000,
    last: 2000,
    srcPort: 1024 + i,
    dstPort: 443,
    proto: 6,
  }));
  return v5Packet(flows, { sequence: seq, unixSecs: now, uptimeMs: 100_000 });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Running {
  proc: ChildProcess;
  httpPort: number;
  udpPort: number;
  dir: string;
}

async function start(): Promise<Running> {
  const dir = mkdtempSync(join(tmpdir(), "clarion-burst-"));
  const args = [
    CLI,
    "--bind-host",
    "127.0.0.1",
    "--netflow-port",
    "0",
    "--ipfix-port",
    "0",
    "--sflow-port",
    "0",
    "--http-port",
    "0",
    "--data-dir",
    dir,
    ...EXTRA,
  ];
  const proc = spawn(NODE, args, { stdio: ["ignore", "ignore", "pipe"] });
  let httpPort = 0;
  let udpPort = 0;
  let buf = "";
  proc.stderr!.setEncoding("utf8");
  proc.stderr!.on("data", (c: string) => {
    buf += c;
    for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        const o = JSON.parse(line) as { msg?: string; port?: number; listeners?: string[] };
        if (o.msg === "ops server listening") httpPort = o.port ?? 0;
        if (o.msg === "collector listening") {
          const l = o.listeners?.[0] ?? "";
          udpPort = Number(l.slice(l.lastIndexOf(":") + 1));
        }
      } catch {
        // not JSON
      }
    }
  });
  for (let i = 0; i < 400 && (httpPort === 0 || udpPort === 0); i++) await sleep(50);
  if (httpPort === 0 || udpPort === 0) throw new Error("collector did not start");
  return { proc, httpPort, udpPort, dir };
}

async function prom(port: number): Promise<Map<string, number>> {
  const r = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { accept: "text/plain" } });
  const out = new Map<string, number>();
  for (const line of (await r.text()).split("\n")) {
    if (line.startsWith("#") || line === "") continue;
    const sp = line.lastIndexOf(" ");
    const cause = /cause="(\w+)"/.exec(line)?.[1];
    const name = line.slice(0, sp).replace(/\{.*\}$/, "") + (cause ? `:${cause}` : "");
    const v = Number(line.slice(sp + 1));
    // a maximum over workers; the rest summed over their labels
    out.set(name, name.endsWith("_max_seconds") ? Math.max(out.get(name) ?? 0, v) : (out.get(name) ?? 0) + v);
  }
  return out;
}

let sendSeconds = 0;
const ms = (v: number): string => (Number.isNaN(v) ? "n/a" : `${v.toFixed(1)} ms`);

async function step(n: number): Promise<{ lost: number; kernel: number; encodeMs: number; gcMs: number }> {
  const c = await start();
  try {
    const file = join(c.dir, "burst.bin");
    writeFileSync(
      file,
      Buffer.concat(
        Array.from({ length: n }, (_, i) => {
          const d = v5(i * 30);
          const len = Buffer.alloc(4);
          len.writeUInt32LE(d.length);
          return Buffer.concat([len, d]);
        }),
      ),
    );
    const r = spawnSync(SENDER, ["127.0.0.1", String(c.udpPort), file], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`burst-sender failed: ${r.stderr}`);
    sendSeconds = (JSON.parse(r.stdout) as { seconds: number }).seconds;
    // Wait until every flow is decoded, or the decoded count stops moving for longer than the workers'
    // stats interval (1 s).
    let last = -1;
    let m = await prom(c.httpPort);
    for (let i = 0; i < 60; i++) {
      await sleep(1200);
      m = await prom(c.httpPort);
      const now = m.get("clarion_collector_decoded_flows_total") ?? 0;
      if (now === n * 30 || (now === last && now > 0)) break;
      last = now;
    }
    const received = m.get("clarion_collector_decoded_flows_total") ?? 0;
    return {
      lost: n * 30 - received,
      kernel: m.get("clarion_collector_udp_kernel_dropped_datagrams_total") ?? 0,
      encodeMs: (m.get("clarion_collector_receive_stall_max_seconds:encode") ?? Number.NaN) * 1000,
      gcMs: (m.get("clarion_collector_receive_stall_max_seconds:gc") ?? Number.NaN) * 1000,
    };
  } finally {
    c.proc.kill("SIGKILL");
    rmSync(c.dir, { recursive: true, force: true });
  }
}

console.log(`collector: ${CLI} ${EXTRA.join(" ")}`);
let best = 0;
for (let n = START; n <= MAX; n *= 2) {
  let ok = true;
  for (let k = 0; k < REPEAT; k++) {
    const r = await step(n);
    console.log(
      `burst ${n} datagrams (${n * 30} flows) sent in ${(sendSeconds * 1000).toFixed(1)} ms: lost ${r.lost} flows, kernel drops ${r.kernel}, longest batch encode ${ms(r.encodeMs)}, GC pause ${ms(r.gcMs)}`,
    );
    if (r.lost > 0 || r.kernel > 0) ok = false;
  }
  if (!ok) break;
  best = n;
}
console.log(`largest lossless burst: ${best} datagrams (${best * 30} flows)`);
rmSync(SENDER, { force: true });
