/**
 * Memory under sustained garbage (issue 12 item 9): the real collector (child process, `src/cli.ts`)
 * receives hostile datagrams at full rate from bench/udp-sender.c: random 64 KB datagrams, short ones, and
 * valid NetFlow v5/v9, IPFIX and sFlow headers with absurd counts and lengths, from `--sources` source ports.
 * Prints the collector's RSS (/proc/PID/status VmRSS, all threads) and the main thread's V8 heap (from
 * Prometheus /metrics) every `--sample` seconds, so one can see whether memory levels off.
 *
 * Run: npm run bench:garbage [-- --seconds 180 --workers 2 --sources 64 --sample 10 --host 127.0.0.1]
 * Env CLARION_BENCH_NODE_OPTIONS passes NODE_OPTIONS to the collector; CLARION_BENCH_ENV="K=V,K=V" sets
 * more of its environment (e.g. MALLOC_ARENA_MAX=2 to compare).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const NODE = process.execPath;
const CLI = new URL("../src/cli.ts", import.meta.url).pathname;
const SENDER_C = new URL("./udp-sender.c", import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Options {
  seconds: number;
  workers: number;
  sources: number;
  sample: number;
  host: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { seconds: 180, workers: 2, sources: 64, sample: 10, host: "127.0.0.1" };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!.replace(/^--/, "");
    const v = argv[++i] ?? "";
    if (k === "host") o.host = v;
    else if (k in o) (o as unknown as Record<string, number>)[k] = Number(v);
    else throw new Error(`unknown option --${k}`);
  }
  return o;
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n & 0xffff);
  return b;
}
function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** The garbage of one source: what a scanner, a broken exporter or an attacker sends. */
function garbageOf(source: number): Buffer[] {
  const out: Buffer[] = [];
  out.push(randomBytes(65_000)); // random 64 KB
  for (let i = 0; i < 8; i++) out.push(randomBytes(1 + ((source * 7 + i * 13) % 40))); // short ones
  // NetFlow v5: 65535 records announced, 3 present
  out.push(Buffer.concat([u16(5), u16(65_535), randomBytes(20), randomBytes(48 * 3)]));
  // NetFlow v9: a template flowset announcing a template of 16,000 fields, and data for unknown templates
  const fields = Buffer.concat(
    Array.from({ length: 2000 }, (_, i) => Buffer.concat([u16(1 + (i % 80)), u16(4)])),
  );
  const tpl = Buffer.concat([u16(256 + (source % 200)), u16(16_000), fields]);
  out.push(
    Buffer.concat([
      u16(9),
      u16(65_535),
      u32(1),
      u32(1_700_000_000),
      u32(source),
      u32(source),
      u16(0),
      u16(tpl.length + 4),
      tpl,
    ]),
  );
  out.push(
    Buffer.concat([
      u16(9),
      u16(1),
      u32(1),
      u32(1_700_000_000),
      u32(source),
      u32(source),
      u16(300 + source),
      u16(60_000),
      randomBytes(1400),
    ]),
  );
  // valid v9 and IPFIX headers in front of random 64 KB bodies (random set ids and lengths: data sets for
  // templates that never come, which the decoder holds for a while)
  for (let i = 0; i < 2; i++) {
    out.push(
      Buffer.concat([
        u16(9),
        u16(65_535),
        u32(1),
        u32(1_700_000_000),
        u32(source),
        u32(source),
        randomBytes(60_000),
      ]),
    );
    out.push(
      Buffer.concat([
        u16(10),
        u16(60_016),
        u32(1_700_000_000),
        u32(source),
        u32(source),
        randomBytes(60_000),
      ]),
    );
  }
  // IPFIX: length field larger than the datagram; a set of 65535 bytes; a template with absurd counts
  out.push(
    Buffer.concat([u16(10), u16(65_535), u32(1_700_000_000), u32(source), u32(source), randomBytes(200)]),
  );
  const ipfixTpl = Buffer.concat([
    u16(2),
    u16(4 + 4 + fields.length),
    u16(400 + (source % 200)),
    u16(65_535),
    fields,
  ]);
  out.push(
    Buffer.concat([
      u16(10),
      u16(16 + ipfixTpl.length),
      u32(1_700_000_000),
      u32(source),
      u32(source),
      ipfixTpl,
    ]),
  );
  // sFlow v5: 2^31 samples announced, a sample whose length runs past the end
  out.push(
    Buffer.concat([
      u32(5),
      u32(1),
      Buffer.from([127, 0, 0, 1]),
      u32(0),
      u32(source),
      u32(1000),
      u32(0x7fffffff),
      u32(1),
      u32(0xfffffff0),
      randomBytes(300),
    ]),
  );
  return out;
}

/** The C sender's file: [u16 exporter][u16 flows][u32 length][payload] little endian, one loop. */
function senderFile(dir: string, sources: number): string {
  const parts: Buffer[] = [];
  for (let s = 0; s < sources; s++) {
    for (const g of garbageOf(s)) {
      const h = Buffer.alloc(8);
      h.writeUInt16LE(s, 0);
      h.writeUInt16LE(1, 2);
      h.writeUInt32LE(g.length, 4);
      parts.push(h, g);
    }
  }
  const file = join(dir, "garbage.dgrams");
  writeFileSync(file, Buffer.concat(parts));
  return file;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

async function promValue(port: number, name: string): Promise<number> {
  const r = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { accept: "text/plain" } });
  const text = await r.text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : Number.NaN;
}

async function startCollector(o: Options, dataDir: string) {
  const extraEnv = Object.fromEntries(
    (process.env.CLARION_BENCH_ENV ?? "")
      .split(",")
      .filter((x) => x.includes("="))
      .map((x) => [x.slice(0, x.indexOf("=")), x.slice(x.indexOf("=") + 1)]),
  );
  const proc: ChildProcess = spawn(
    NODE,
    [
      CLI,
      "--bind-host",
      o.host,
      "--netflow-port",
      "0",
      "--ipfix-port",
      "0",
      "--sflow-port",
      "0",
      "--http-port",
      "0",
      "--workers",
      String(o.workers),
      "--data-dir",
      dataDir,
      "--output",
      "jsonl:/dev/null",
      "--log-level",
      "info",
      "--udp-rcvbuf",
      "8M",
    ],
    {
      stdio: ["ignore", "ignore", "pipe"],
      env: {
        PATH: process.env.PATH ?? "",
        ...(process.env.CLARION_BENCH_NODE_OPTIONS
          ? { NODE_OPTIONS: process.env.CLARION_BENCH_NODE_OPTIONS }
          : {}),
        ...extraEnv,
      },
    },
  );
  let httpPort = 0;
  let udpPort = 0;
  let buf = "";
  const log: string[] = [];
  proc.stderr!.setEncoding("utf8");
  proc.stderr!.on("data", (chunk: string) => {
    buf += chunk;
    for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (log.length < 200) log.push(line);
      try {
        const m = JSON.parse(line) as { msg?: string; port?: number; listeners?: string[] };
        if (m.msg === "ops server listening") httpPort = m.port ?? 0;
        if (m.msg === "collector listening" && m.listeners?.[0]) {
          const l = m.listeners[0];
          udpPort = Number(l.slice(l.lastIndexOf(":") + 1));
        }
      } catch {
        // not a log line
      }
    }
  });
  for (let i = 0; i < 600 && (httpPort === 0 || udpPort === 0) && proc.exitCode === null; i++)
    await sleep(50);
  if (httpPort === 0 || udpPort === 0) {
    proc.kill("SIGKILL");
    throw new Error(`collector did not start:\n${log.join("\n")}`);
  }
  return { proc, httpPort, udpPort, log };
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), "clarion-garbage-"));
  try {
    const exe = join(dir, "udp-sender");
    const cc = spawnSync("cc", ["-O2", "-o", exe, SENDER_C], { stdio: ["ignore", "ignore", "inherit"] });
    if (cc.status !== 0) throw new Error("cannot compile bench/udp-sender.c (needs cc)");
    const file = senderFile(dir, o.sources);
    const c = await startCollector(o, join(dir, "data"));
    const pid = c.proc.pid!;
    console.log(
      `garbage: ${o.sources} sources, ${o.workers} workers, ${o.seconds} s at full rate, sampled every ${o.sample} s`,
    );
    console.log("t_s\trss_mib\tmain_heap_mib\tdatagrams\tdecode_errors");
    const sample = async (t: number) => {
      const r = await fetch(`http://127.0.0.1:${c.httpPort}/metrics`);
      const m = (await r.json()) as { datagrams_received: number; decode_errors: number };
      const heap = await promValue(c.httpPort, "clarion_collector_nodejs_heap_size_used_bytes");
      console.log(
        `${t}\t${rssMiB(pid).toFixed(0)}\t${(heap / 1024 ** 2).toFixed(0)}\t${m.datagrams_received}\t${m.decode_errors}`,
      );
    };
    await sample(0);
    const sender = spawn(exe, [o.host, String(c.udpPort), "0", String(o.seconds), file], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    sender.stdout!.on("data", (b: Buffer) => {
      out += b.toString();
    });
    const done = new Promise<void>((r) => sender.once("exit", () => r()));
    const t0 = Date.now();
    let finished = false;
    void done.then(() => {
      finished = true;
    });
    while (!finished) {
      await Promise.race([sleep(o.sample * 1000), done]);
      await sample(Math.round((Date.now() - t0) / 1000));
    }
    await sleep(o.sample * 1000);
    await sample(Math.round((Date.now() - t0) / 1000));
    console.log(`sender: ${out.trim()}`);
    c.proc.kill("SIGTERM");
    await new Promise((r) => c.proc.once("exit", r));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
