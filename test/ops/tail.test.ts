/**
 * The live tail: the workers' tail encoder (idle when nobody reads, capped per batch), the hub's per-reader
 * filter and slow-reader drops over a real HTTP connection (flows received + flows reported dropped = flows
 * offered), and `clarion-collector tail` against an in-process collector fed NetFlow v5.
 */
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { mkdtempSync, rmSync } from "node:fs";
import { get, type IncomingMessage } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { after, describe, it } from "node:test";
import { startCollector } from "../../src/app.ts";
import { formatTailLine, runTailCommand, tcpFlagsText } from "../../src/commands/tail.ts";
import { loadConfig } from "../../src/config/index.ts";
import { FlowRecord } from "../../src/core/flow.ts";
import { createLogger } from "../../src/core/log.ts";
import { startOpsServer } from "../../src/ops/server.ts";
import { MAX_TAIL_READERS, TailHub } from "../../src/ops/tail.ts";
import { compileFilter, type FlowRow } from "../../src/query/filter.ts";
import { createTailEncoder, MAX_TAIL_RECORDS, TAIL_URI, tailRow } from "../../src/sinks/tail.ts";
import { ipfixPacket, ipfixTemplate, record, set, v5Packet } from "../helpers/netflow-builder.ts";
import { loopbackArgs } from "../helpers/service.ts";

const dir = mkdtempSync(join(tmpdir(), "clarion-tail-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function flow(i: number): FlowRecord {
  const r = new FlowRecord();
  r.type = "NETFLOW_V5";
  r.time_received_ms = 1_700_000_000_000 + i;
  r.sampler_address = "192.0.2.1";
  r.src_addr = `10.0.${(i >> 8) & 255}.${i & 255}`;
  r.dst_addr = "198.51.100.7";
  r.src_port = 40000 + (i % 1000);
  r.dst_port = i % 2 === 0 ? 443 : 80;
  r.proto = 6;
  r.bytes = 1000 + i;
  r.packets = 1 + (i % 7);
  r.tcp_flags = 0x1b;
  return r;
}

const viewBase = {
  health: () => ({ httpStatus: 200, body: {} }),
  clarionMetrics: () => ({}),
  prometheus: async () => ({ contentType: "text/plain", body: "" }),
  templates: async () => ({}),
  exporters: () => ({}),
};

describe("tail encoder", () => {
  it("encodes nothing while nobody reads, rows with the flows columns while someone does, capped", () => {
    const active = new Int32Array(new SharedArrayBuffer(4));
    const enc = createTailEncoder(TAIL_URI, { active });
    const recs = [flow(0), flow(1)];
    assert.deepEqual(enc.encode(recs), { sink: TAIL_URI, records: 0, parts: [], oldestMs: 0 });
    Atomics.store(active, 0, 1);
    const b = enc.encode(recs);
    assert.equal(b.records, 2);
    const lines = Buffer.from(b.parts[0]!.data).toString().trimEnd().split("\n");
    assert.deepEqual(JSON.parse(lines[0]!), tailRow(recs[0]!));
    assert.equal(JSON.parse(lines[1]!).src_ip, "10.0.0.1");
    assert.equal(JSON.parse(lines[1]!).protocol, 6);
    const many = Array.from({ length: MAX_TAIL_RECORDS + 5 }, (_x, i) => flow(i));
    const capped = enc.encode(many);
    assert.equal(capped.records, MAX_TAIL_RECORDS);
    assert.equal(Buffer.from(capped.parts[0]!.data).toString().split("\n")[0], '{"skipped":5}');
    // Without the shared flag (a misconfigured output) it never encodes.
    assert.equal(createTailEncoder(TAIL_URI, {}).encode(recs).records, 0);
    // idle() follows the flag: the worker batches no records for the tail while it is idle
    assert.equal(enc.idle?.(), false);
    Atomics.store(active, 0, 0);
    assert.equal(enc.idle?.(), true);
    assert.equal(createTailEncoder(TAIL_URI, {}).idle?.(), true);
  });

  it("carries the VRF and application columns, so their filter terms mean the same live (issue 18)", () => {
    const r = flow(3);
    r.in_vrf_id = 1;
    r.in_vrf_name = "CUST-A";
    r.out_vrf_id = 7;
    r.application_name = "https";
    const live = JSON.parse(JSON.stringify(tailRow(r))) as FlowRow;
    const plain = JSON.parse(JSON.stringify(tailRow(flow(4)))) as FlowRow;
    for (const [text, want] of [
      ["in vrf CUST-A and out vrf 7 and app https", [true, false]],
      ["vrf 0", [false, false]],
      ["not app https", [false, true]],
    ] as const) {
      const p = compileFilter(text)!.predicate;
      assert.deepEqual([p(live), p(plain)], want, text);
    }
  });

  it("prints one readable line per flow", () => {
    assert.equal(tcpFlagsText(0x1b), "...AP.SF");
    assert.equal(tcpFlagsText(0xff), "CEUAPRSF");
    const row = tailRow(flow(2));
    const line = formatTailLine(row);
    assert.match(
      line,
      /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.002 {2}192\.0\.2\.1 {7} TCP {3}10\.0\.0\.2:40002 -> 198\.51\.100\.7:443 {2}1\.0 kB {2}3 pkts {2}\.\.\.AP\.SF$/,
    );
    const v6 = { ...row, src_ip: "2001:db8::1", protocol: 17, sampling_rate: 100, packets: 1 };
    assert.match(
      formatTailLine(v6),
      /UDP {3}\[2001:db8::1\]:40002 -> 198\.51\.100\.7:443 {2}1\.0 kB {2}1 pkt {2}\(sampled 1:100\)$/,
    );
  });
});

function lines(res: IncomingMessage, onLine: (o: Record<string, unknown>) => void): Promise<void> {
  let buf = "";
  res.setEncoding("utf8");
  res.on("data", (c: string) => {
    buf += c;
    let nl = buf.indexOf("\n");
    while (nl >= 0) {
      onLine(JSON.parse(buf.slice(0, nl)));
      buf = buf.slice(nl + 1);
      nl = buf.indexOf("\n");
    }
  });
  return new Promise((resolve, reject) => {
    res.on("end", resolve);
    res.on("error", reject);
  });
}

describe("tail hub over HTTP", () => {
  it("filters per reader, drops for a slow reader and reports every dropped flow", async () => {
    const hub = new TailHub({ highWaterBytes: 16 * 1024 });
    const ops = await startOpsServer({
      host: "127.0.0.1",
      port: 0,
      view: { ...viewBase, tail: (out, f) => hub.subscribe(out, f) },
    });
    try {
      const bad = await fetch(`http://127.0.0.1:${ops.port}/tail?filter=${encodeURIComponent("dst port x")}`);
      assert.equal(bad.status, 400);
      assert.deepEqual(await bad.json(), {
        error: 'expected a number after "port", found "x"',
        position: 9,
        length: 1,
      });

      const res = await new Promise<IncomingMessage>((resolve) =>
        get(`http://127.0.0.1:${ops.port}/tail?filter=${encodeURIComponent("dst port 443")}`, resolve),
      );
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers["content-type"], "application/x-ndjson");
      let received = 0;
      let reported = 0;
      let started = false;
      let wrongPort = 0;
      const done = lines(res, (o) => {
        if (o.event === "start") started = true;
        else if (o.event === "dropped") reported = Number(o.count);
        else if (o.event === undefined) {
          received++;
          if (o.dst_port !== 443) wrongPort++;
        }
      });
      while (!started) await new Promise((r) => setTimeout(r, 10));
      assert.equal(hub.stats.readers, 1);
      // The slow reader: stops reading while the collector keeps offering flows.
      res.pause();
      const enc = createTailEncoder(TAIL_URI, hub.output.options);
      const batches = 150;
      for (let b = 0; b < batches; b++) {
        hub.offer(enc.encode(Array.from({ length: 1000 }, (_x, i) => flow(b * 1000 + i))));
        await new Promise((r) => setImmediate(r));
      }
      const offered = (batches * 1000) / 2; // every other flow has dst port 443
      const dropped = hub.stats.dropped;
      assert.ok(dropped > 0, "a reader that stopped reading must lose flows");
      assert.ok(hub.stats.sent < offered);
      res.resume();
      // Once it drains, the reader is told how many it lost; then the stream ends cleanly.
      for (let i = 0; i < 1500 && reported !== dropped; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(reported, dropped, "the reader is told the drop count");
      hub.close();
      await done;
      assert.equal(wrongPort, 0, "the filter applies per reader");
      assert.equal(received + reported, offered, "every flow is either received or reported dropped");
      assert.equal(received, hub.stats.sent);
    } finally {
      hub.close();
      await ops.close();
    }
  });

  it("refuses readers beyond the bound with 429", async () => {
    const hub = new TailHub();
    const ops = await startOpsServer({
      host: "127.0.0.1",
      port: 0,
      view: { ...viewBase, tail: (out, f) => hub.subscribe(out, f) },
    });
    const controllers: AbortController[] = [];
    try {
      for (let i = 0; i < MAX_TAIL_READERS; i++) {
        const c = new AbortController();
        controllers.push(c);
        const r = await fetch(`http://127.0.0.1:${ops.port}/tail`, { signal: c.signal });
        assert.equal(r.status, 200);
      }
      const over = await fetch(`http://127.0.0.1:${ops.port}/tail`);
      assert.equal(over.status, 429);
      controllers[0]!.abort();
      while (hub.stats.readers === MAX_TAIL_READERS) await new Promise((r) => setTimeout(r, 10));
      const again = new AbortController();
      controllers.push(again);
      assert.equal((await fetch(`http://127.0.0.1:${ops.port}/tail`, { signal: again.signal })).status, 200);
    } finally {
      for (const c of controllers) c.abort();
      hub.close();
      await ops.close();
    }
  });
});

describe("tail next to the archive alone", () => {
  it("shows each flow of a datagram although the worker refills one record per flow for the archive", async () => {
    const config = loadConfig(
      loopbackArgs(
        "--data-dir",
        dir,
        "--workers",
        "1",
        "--batch-interval",
        "0.1",
        "--output",
        `parquet:${join(dir, "archive")}`,
      ),
      {},
    );
    const collector = await startCollector(config, { logger: createLogger({ level: "silent" }) });
    const sock = createSocket("udp4");
    try {
      const fields: Array<[number, number]> = [
        [8, 4],
        [12, 4],
        [7, 2],
        [11, 2],
        [4, 1],
        [1, 8],
        [2, 8],
      ];
      // IPFIX (its data sets use the refilled record): three distinct flows in one datagram
      const packet = ipfixPacket([
        set(2, ipfixTemplate(300, fields)),
        set(300, [
          ...record(fields, ["10.9.0.1", "192.0.2.1", 1001, 53, 17, 100, 1]),
          ...record(fields, ["10.9.0.2", "192.0.2.2", 1002, 53, 17, 200, 2]),
          ...record(fields, ["10.9.0.3", "192.0.2.3", 1003, 53, 17, 300, 3]),
        ]),
      ]);
      let text = "";
      const out = new PassThrough();
      out.on("data", (c: Buffer) => {
        text += c.toString();
      });
      const err = new PassThrough();
      err.resume();
      const run = runTailCommand(
        ["--url", `http://127.0.0.1:${collector.httpPort}`, "--count", "3", "--format", "json", "udp"],
        { out, err },
        {},
      );
      let finished = false;
      void run.then(() => {
        finished = true;
      });
      for (let i = 0; i < 200 && !finished; i++) {
        sock.send(packet, collector.listeners[0]!.port, "127.0.0.1");
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(await run, 0);
      const rows = text
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l) as { src_ip: string; src_port: number; bytes: number });
      assert.deepEqual(
        rows.map((r) => [r.src_ip, r.src_port, r.bytes]),
        [
          ["10.9.0.1", 1001, 100],
          ["10.9.0.2", 1002, 200],
          ["10.9.0.3", 1003, 300],
        ],
      );
    } finally {
      sock.close();
      await collector.stop();
    }
  });
});

describe("clarion-collector tail", () => {
  it("prints flows a running collector receives, filtered; exit 2 on a bad filter", async () => {
    const config = loadConfig(
      loopbackArgs(
        "--data-dir",
        dir,
        "--workers",
        "1",
        "--batch-interval",
        "0.1",
        "--output",
        "jsonl:/dev/null",
      ),
      {},
    );
    const collector = await startCollector(config, { logger: createLogger({ level: "silent" }) });
    const sock = createSocket("udp4");
    try {
      const out = new PassThrough();
      const err = new PassThrough();
      let text = "";
      out.on("data", (c: Buffer) => {
        text += c.toString();
      });
      err.resume();
      const port = collector.listeners[0]!.port;
      const packet = v5Packet([
        {
          src: "10.1.1.1",
          dst: "192.0.2.80",
          srcPort: 5555,
          dstPort: 80,
          proto: 6,
          packets: 3,
          bytes: 1500,
          first: 1,
          last: 2,
          tcpFlags: 0x12,
        },
        {
          src: "10.1.1.2",
          dst: "192.0.2.53",
          srcPort: 5353,
          dstPort: 53,
          proto: 17,
          packets: 1,
          bytes: 90,
          first: 1,
          last: 2,
        },
      ]);
      const run = runTailCommand(
        [
          "--url",
          `http://127.0.0.1:${collector.httpPort}`,
          "--count",
          "2",
          "udp",
          "and",
          "dst",
          "port",
          "53",
        ],
        { out, err },
        {},
      );
      let finished = false;
      void run.then(() => {
        finished = true;
      });
      // The reader subscribes asynchronously: keep sending until it has seen two flows.
      for (let i = 0; i < 200 && !finished; i++) {
        sock.send(packet, port, "127.0.0.1");
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(await run, 0);
      const got = text.trimEnd().split("\n");
      assert.equal(got.length, 2);
      for (const l of got)
        assert.match(l, /127\.0\.0\.1 +UDP {3}10\.1\.1\.2:5353 -> 192\.0\.2\.53:53 {2}90 B {2}1 pkt$/);

      // Without --url: the collector's own settings (variables here) name the ops address.
      let viaEnv = "";
      const out2 = new PassThrough();
      out2.on("data", (c: Buffer) => {
        viaEnv += c.toString();
      });
      const run2 = runTailCommand(
        ["-c", "1", "--format", "json", "tcp"],
        { out: out2, err },
        {
          BIND_HOST: "127.0.0.1",
          CLARION_COLLECTOR_HTTP_PORT: String(collector.httpPort),
          CLARION_COLLECTOR_DATA_DIR: dir,
        },
      );
      let finished2 = false;
      void run2.then(() => {
        finished2 = true;
      });
      for (let i = 0; i < 200 && !finished2; i++) {
        sock.send(packet, port, "127.0.0.1");
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(await run2, 0);
      assert.equal(JSON.parse(viaEnv).dst_port, 80);

      const e = new PassThrough();
      let etext = "";
      e.on("data", (c: Buffer) => {
        etext += c.toString();
      });
      const code = await runTailCommand(
        ["--url", `http://127.0.0.1:${collector.httpPort}`, "port", "99999"],
        { out, err: e },
        {},
      );
      assert.equal(code, 2);
      assert.match(
        etext,
        /bad filter: number out of range for "port" \(0-65535\), found "99999" \(at column 6\)/,
      );
    } finally {
      sock.close();
      await collector.stop();
    }
  });
});
