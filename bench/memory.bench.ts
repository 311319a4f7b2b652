/**
 * Memory per exporter and per template: the real collector (child process, `src/cli.ts`, one receive
 * worker, SQLite output) is fed IPFIX from many exporters (each its own loopback address 127.1.x.y), each
 * exporter sending `--templates` 20-field templates (bench/flows.ts) and one data record per template.
 * The collector's resident set (/proc/PID/status VmRSS, all threads) is read when idle, after the
 * exporters' state is in place, and again after a second, equal round of new exporters; figures are the
 * RSS growth divided by exporters and by templates (both rounds are printed: the resident set grows in
 * heap-sized steps, so their spread is the noise of the figure). Counts come from /exporters (datagrams
 * lost on loopback show as fewer exporters known).
 *
 * Run: npm run bench:memory [-- --exporters 1000 --templates 10 --workers 1]
 */
import { spawn } from "node:child_process";
import { createSocket, type Socket } from "node:dgram";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ipfixPacket, ipfixTemplate, record, set } from "../test/helpers/netflow-builder.ts";
import { IPFIX_FIELDS, values } from "./flows.ts";

const { values: opts } = parseArgs({
  options: {
    exporters: { type: "string", default: "1000" },
    templates: { type: "string", default: "10" },
    workers: { type: "string", default: "1" },
  },
});
const EXPORTERS = Number(opts.exporters);
const TEMPLATES = Number(opts.templates);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

/** RSS after the collector settled: the lowest of several readings over ~3 s (GC lowers it, never raises). */
async function settledRss(pid: number): Promise<number> {
  let low = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 12; i++) {
    await sleep(250);
    low = Math.min(low, rssBytes(pid));
  }
  return low;
}

const dir = mkdtempSync(join(tmpdir(), "clarion-memory-"));
const cli = new URL("../src/cli.ts", import.meta.url).pathname;
const proc = spawn(
  process.execPath,
  [
    cli,
    ...["--bind-host", "127.0.0.1", "--netflow-port", "0", "--ipfix-port", "0", "--sflow-port", "0"],
    ...["--http-port", "0", "--workers", opts.workers, "--data-dir", dir, "--batch-interval", "0.5"],
    ...["--template-timeout", "3600"],
  ],
  { stdio: ["ignore", "ignore", "pipe"] },
);
let httpPort = 0;
let udpPort = 0;
let buf = "";
proc.stderr.setEncoding("utf8");
proc.stderr.on("data", (c: string) => {
  buf += c;
  for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
    const line = buf.slice(0, nl);
    buf = buf.slice(nl + 1);
    try {
      const o = JSON.parse(line) as { msg?: string; port?: number; listeners?: string[] };
      if (o.msg === "ops server listening") httpPort = o.port ?? 0;
      if (o.msg === "collector listening" && o.listeners?.[0])
        udpPort = Number(o.listeners[0].slice(o.listeners[0].lastIndexOf(":") + 1));
    } catch {
      // not a log line
    }
  }
});
for (let i = 0; i < 400 && (httpPort === 0 || udpPort === 0); i++) await sleep(50);
if (!httpPort || !udpPort) throw new Error("collector did not start");

async function exporterCount(): Promise<number> {
  const r = await fetch(`http://127.0.0.1:${httpPort}/exporters`);
  const body = (await r.json()) as { exporters?: unknown[] } | unknown[];
  return Array.isArray(body) ? body.length : (body.exporters?.length ?? 0);
}

/** Exporters first..first+n-1: one datagram with every template, then one with a record of each. */
async function feed(first: number, n: number): Promise<void> {
  const now = Math.floor(Date.now() / 1000);
  for (let e = first; e < first + n; e++) {
    const address = `127.1.${e >> 8}.${e & 255}`;
    const s: Socket = createSocket("udp4");
    await new Promise<void>((r) => s.bind(0, address, () => r()));
    const templates = Array.from({ length: TEMPLATES }, (_, t) => ipfixTemplate(256 + t, IPFIX_FIELDS));
    const data = Array.from({ length: TEMPLATES }, (_, t) =>
      set(256 + t, record(IPFIX_FIELDS, values(e * TEMPLATES + t, now * 1000 - 2000, now * 1000))),
    );
    const send = (b: Buffer) =>
      new Promise<void>((r, j) => s.send(b, udpPort, "127.0.0.1", (x) => (x ? j(x) : r())));
    await send(ipfixPacket([set(2, templates.flat())], { exportTime: now, sequence: 0 }));
    await send(ipfixPacket(data, { exportTime: now, sequence: 0 }));
    s.close();
    if (e % 10 === 0) await sleep(10); // an exporter's pace: keep the socket buffer from overflowing
  }
}

const idle = await settledRss(proc.pid!);
await feed(0, EXPORTERS);
await sleep(1500);
const seen1 = await exporterCount();
const round1 = await settledRss(proc.pid!);
await feed(EXPORTERS, EXPORTERS);
await sleep(1500);
const seen2 = await exporterCount();
const round2 = await settledRss(proc.pid!);
proc.kill("SIGTERM");
await new Promise((r) => proc.once("exit", r));
rmSync(dir, { recursive: true, force: true });

const mib = (b: number) => (b / 1024 / 1024).toFixed(1);
const per = (bytes: number, n: number) => (n > 0 ? Math.round(bytes / n) : 0);
console.log(
  `exporters per round ${EXPORTERS}, templates per exporter ${TEMPLATES} (20 fields each), workers ${opts.workers}`,
);
console.log(`idle RSS ${mib(idle)} MiB`);
console.log(
  `round 1: ${seen1} exporters known, RSS ${mib(round1)} MiB, +${per(round1 - idle, EXPORTERS)} B/exporter, +${per(round1 - idle, EXPORTERS * TEMPLATES)} B/template`,
);
console.log(
  `round 2: ${seen2} exporters known, RSS ${mib(round2)} MiB, +${per(round2 - round1, EXPORTERS)} B/exporter, +${per(round2 - round1, EXPORTERS * TEMPLATES)} B/template`,
);
