/**
 * Template state at scale (issue 12 item 2): the collector (the real CLI, one worker) learns `--exporters`
 * exporters × `--templates` NetFlow v9 templates of 20 fields each, sent over loopback from that many
 * source addresses (127.1.x.y); then the bench reports the process RSS and how long /templates (one page,
 * and one exporter) and /exporters take.
 *
 * Run: node bench/templates.bench.ts [--exporters 10000] [--templates 10]
 */
import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}
const EXPORTERS = arg("exporters", 10_000);
const TEMPLATES = arg("templates", 10);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const u16 = (v: number) => [(v >>> 8) & 255, v & 255];
const u32 = (v: number) => [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
/** One v9 packet with TEMPLATES templates of 20 fields. */
function templatePacket(): Buffer {
  const ids = [1, 2, 4, 5, 6, 7, 8, 10, 11, 12, 14, 15, 16, 17, 21, 22, 9, 13, 61, 89];
  const body: number[] = [];
  for (let t = 0; t < TEMPLATES; t++) {
    body.push(...u16(256 + t), ...u16(ids.length));
    for (const id of ids) body.push(...u16(id), ...u16(id === 8 || id === 12 || id === 15 ? 4 : 2));
  }
  const set = [...u16(0), ...u16(body.length + 4), ...body];
  return Buffer.from([
    ...u16(9),
    ...u16(TEMPLATES),
    ...u32(1000),
    ...u32(1_700_000_000),
    ...u32(1),
    ...u32(0),
    ...set,
  ]);
}

const dir = mkdtempSync(join(tmpdir(), "clarion-templates-bench-"));
const cli = new URL("../src/cli.ts", import.meta.url).pathname;
const proc = spawn(
  process.execPath,
  [
    cli,
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
    "--workers",
    "1",
    "--data-dir",
    dir,
    "--output",
    "jsonl:/dev/null",
    "--log-level",
    "info",
  ],
  { stdio: ["ignore", "ignore", "pipe"] },
);
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
    } catch {}
  }
});
const rss = (): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${proc.pid}/status`, "utf8"));
  const kb = Number(m?.[1] ?? 0);
  // the worker is a thread of the same process: VmRSS covers it
  return Math.round(kb / 1024);
};
const get = async (path: string) => {
  const t0 = performance.now();
  const r = await fetch(`http://127.0.0.1:${httpPort}${path}`);
  const text = await r.text();
  return { ms: performance.now() - t0, bytes: text.length, body: JSON.parse(text) as { count?: number } };
};

try {
  for (let i = 0; i < 400 && (httpPort === 0 || udpPort === 0); i++) await sleep(50);
  if (httpPort === 0) throw new Error("collector did not start");
  await sleep(1000);
  const before = rss();
  const pkt = templatePacket();
  for (let i = 0; i < EXPORTERS; i++) {
    const s = createSocket("udp4");
    await new Promise<void>((res, rej) =>
      s.bind(0, `127.1.${(i >>> 8) & 255}.${i & 255}`, () => res()).once("error", rej),
    );
    await new Promise<void>((res, rej) => s.send(pkt, udpPort, "127.0.0.1", (e) => (e ? rej(e) : res())));
    s.close();
    if (i % 250 === 249) {
      // let the worker keep up (no loss wanted here): wait until it has counted what was sent
      for (let w = 0; w < 100; w++) {
        const got = ((await get("/metrics")).body as { datagrams_received?: number }).datagrams_received ?? 0;
        if (got >= i + 1) break;
        await sleep(100);
      }
    }
  }
  // wait until every template is learned, or the count stops growing (datagrams lost: reported below)
  let count = 0;
  for (let still = 0; count < EXPORTERS * TEMPLATES && still < 25; ) {
    await sleep(200);
    const n = (await get("/templates?limit=0")).body.count ?? 0;
    still = n === count ? still + 1 : 0;
    count = n;
  }
  await sleep(3000); // a stats interval, so /exporters has them
  const page = await get("/templates?limit=1000");
  const page2 = await get("/templates?limit=1000&offset=50000");
  const one = await get("/templates?exporter=127.1.0.1");
  const ex = await get("/exporters?limit=1000");
  console.log(
    `templates bench: ${EXPORTERS} exporters × ${TEMPLATES} templates of 20 fields, 1 worker, Node ${process.version}`,
  );
  const metrics = (await get("/metrics")).body as { datagrams_received?: number };
  console.log(
    `datagrams sent: ${EXPORTERS}, received: ${metrics.datagrams_received}; templates learned: ${count}`,
  );
  console.log(`RSS: ${before} MB before, ${rss()} MB after`);
  console.log(`GET /templates?limit=1000: ${page.ms.toFixed(0)} ms, ${page.bytes} bytes`);
  console.log(`GET /templates?limit=1000&offset=50000: ${page2.ms.toFixed(0)} ms, ${page2.bytes} bytes`);
  console.log(`GET /templates?exporter=127.1.0.1: ${one.ms.toFixed(0)} ms, ${one.bytes} bytes`);
  console.log(
    `GET /exporters?limit=1000: ${ex.ms.toFixed(0)} ms, ${ex.bytes} bytes (count ${ex.body.count})`,
  );
} finally {
  proc.kill("SIGTERM");
  await new Promise((r) => proc.once("exit", r));
  rmSync(dir, { recursive: true, force: true });
}
