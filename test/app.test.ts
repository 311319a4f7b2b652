/**
 * The service in-process: startCollector → datagrams → stop(); the template state file carries NetFlow v9
 * templates across a restart so data decodes at once.
 */

import assert from "node:assert/strict";
import { createSocket, type Socket } from "node:dgram";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import {
  CountersWriter,
  readStateFile,
  STATE_FILE,
  serialSaves,
  startCollector,
  writeStateFile,
} from "../src/app.ts";
import { loadConfig } from "../src/config/index.ts";
import { createLogger } from "../src/core/log.ts";
import { FlowDecoder } from "../src/protocols/decoder.ts";
import type { InterfaceCounters } from "../src/protocols/sflow5.ts";
import type { EncodedBatch, Sink } from "../src/sinks/types.ts";
import { loopbackArgs } from "./helpers/service.ts";

const log = createLogger({ level: "silent" });
let dir = "";
before(() => {
  dir = mkdtempSync(join(tmpdir(), "clarion-app-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** NetFlow v9: header (20 bytes), then a template FlowSet (id 0) and/or a data FlowSet (id 256). */
function netflowV9(seq: number, withTemplate: boolean, srcPorts: number[]): Buffer {
  const fields: Array<[number, number]> = [
    [8, 4], // IPV4_SRC_ADDR
    [12, 4], // IPV4_DST_ADDR
    [7, 2], // L4_SRC_PORT
    [11, 2], // L4_DST_PORT
    [4, 1], // PROTOCOL
    [1, 4], // IN_BYTES
    [2, 4], // IN_PKTS
  ];
  const parts: Buffer[] = [];
  let count = 0;
  if (withTemplate) {
    const t = Buffer.alloc(8 + fields.length * 4);
    t.writeUInt16BE(0, 0);
    t.writeUInt16BE(t.length, 2);
    t.writeUInt16BE(256, 4);
    t.writeUInt16BE(fields.length, 6);
    fields.forEach(([type, len], i) => {
      t.writeUInt16BE(type, 8 + i * 4);
      t.writeUInt16BE(len, 10 + i * 4);
    });
    parts.push(t);
    count++;
  }
  if (srcPorts.length) {
    const recLen = 21;
    const body = 4 + recLen * srcPorts.length;
    const d = Buffer.alloc(body + ((4 - (body % 4)) % 4));
    d.writeUInt16BE(256, 0);
    d.writeUInt16BE(d.length, 2);
    srcPorts.forEach((p, i) => {
      const o = 4 + i * recLen;
      d.writeUInt32BE(0xc0a80001, o);
      d.writeUInt32BE(0xc0a80002, o + 4);
      d.writeUInt16BE(p, o + 8);
      d.writeUInt16BE(53, o + 10);
      d[o + 12] = 17;
      d.writeUInt32BE(100, o + 13);
      d.writeUInt32BE(1, o + 17);
    });
    parts.push(d);
    count += srcPorts.length;
  }
  const h = Buffer.alloc(20);
  const now = Date.now();
  h.writeUInt16BE(9, 0);
  h.writeUInt16BE(count, 2);
  h.writeUInt32BE(1_000_000, 4);
  h.writeUInt32BE(Math.floor(now / 1000), 8);
  h.writeUInt32BE(seq, 12);
  h.writeUInt32BE(7, 16); // source id
  return Buffer.concat([h, ...parts]);
}

function send(sock: Socket, msg: Buffer, port: number): Promise<void> {
  return new Promise((resolve, reject) =>
    sock.send(msg, port, "127.0.0.1", (e) => (e ? reject(e) : resolve())),
  );
}

function lines(path: string): Array<Record<string, unknown>> {
  let text = "";
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return [];
  }
  return text
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe("state file", () => {
  /** A logger that keeps its lines. */
  function recording() {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: "info" }, { write: (l: string) => lines.push(JSON.parse(l)) });
    return { logger, lines };
  }

  function realState(): object {
    const d = new FlowDecoder({ now: () => 1_700_000_000_000 });
    const tpl = [0, 10, 0, 28, 0x65, 0x53, 0xf1, 0x00, 0, 0, 0, 1, 0, 0, 0, 0];
    const set = [0, 2, 0, 12, 1, 0, 0, 1, 0, 8, 0, 4];
    d.decode(
      {
        payload: Buffer.from([...tpl, ...set]),
        exporter: "192.0.2.1",
        port: 9,
        receivedAtMs: 1_700_000_000_000,
        listener: "",
      },
      { flow: () => {} },
    );
    return d.saveState();
  }

  it("round-trips real decoder states; a missing file is an empty start", async () => {
    const p = join(dir, "s.json");
    const states = [realState(), realState()];
    await writeStateFile(p, states);
    assert.deepEqual(await readStateFile(p, log), states);
    assert.deepEqual(await readStateFile(join(dir, "missing.json"), log), []);
  });

  it("moves a damaged or absurd file aside with one warning naming the reason, and starts empty", async () => {
    const good = realState() as { templates: Record<string, unknown>[]; sampling: unknown[] };
    const t = good.templates[0]!;
    const file = (states: unknown[]) =>
      JSON.stringify({ format: "clarion-collector/templates", version: 1, savedAt: "x", states });
    let deep = "1";
    for (let i = 0; i < 100_000; i++) deep = `[${deep}]`;
    const cases: [string, string][] = [
      ["not JSON", "{broken"],
      ["another format", JSON.stringify({ format: "other", states: [{}] })],
      // JSON.parse itself overflows the stack on this: a RangeError, not a SyntaxError
      [
        "deeply nested arrays",
        file([{ ...good, templates: [{ ...t, fields: "DEEP" }] }]).replace('"DEEP"', deep),
      ],
      ["a field length of 1e9", file([{ ...good, templates: [{ ...t, fields: [[0, 8, 1e9]] }] }])],
      ["a field count of -5", file([{ ...good, templates: [{ ...t, scopeCount: -5 }] }])],
      ["null fields", file([{ ...good, templates: [{ ...t, fields: null }] }])],
      [
        "a sampling rate of -1",
        file([
          {
            ...good,
            sampling: [
              {
                exporter: "192.0.2.1",
                port: 0,
                domain: 0,
                rate: -1,
                bySampler: [],
                ifNames: [],
                sysInitMs: 0,
              },
            ],
          },
        ]),
      ],
    ];
    for (const [what, text] of cases) {
      const sub = mkdtempSync(join(dir, "bad-"));
      const p = join(sub, "templates.json");
      writeFileSync(p, text);
      const { logger, lines } = recording();
      assert.deepEqual(await readStateFile(p, logger), [], what);
      assert.ok(!existsSync(p), `${what}: moved away`);
      const moved = readdirSync(sub).filter((f) => f.startsWith("templates.json.bad-"));
      assert.equal(moved.length, 1, `${what}: one .bad- file`);
      assert.equal(readFileSync(join(sub, moved[0]!), "utf8"), text, `${what}: kept as it was`);
      const warnings = lines.filter((l) => l.level === 40);
      assert.equal(warnings.length, 1, `${what}: one warning`);
      assert.equal(typeof warnings[0]!.reason, "string", what);
    }
  });
});

describe("serialSaves", () => {
  it("runs one save at a time, in order, and shares a waiting periodic save", async () => {
    const events: string[] = [];
    const gates: Array<() => void> = [];
    let n = 0;
    const save = serialSaves(async (states) => {
      const id = states ? `final${states.length}` : `p${++n}`;
      events.push(`start ${id}`);
      await new Promise<void>((r) => gates.push(r));
      events.push(`end ${id}`);
    });
    const a = save();
    assert.equal(save(), a); // a has not started yet: shared
    await sleep(10);
    assert.deepEqual(events, ["start p1"]);
    const b = save(); // waits for a
    const c = save(); // shares b
    const d = save([{}]); // explicit states: its own save, after b
    assert.equal(b, c);
    assert.notEqual(b, a);
    await sleep(10);
    assert.deepEqual(events, ["start p1"]);
    gates.shift()!();
    await a;
    await sleep(10);
    assert.deepEqual(events, ["start p1", "end p1", "start p2"]);
    gates.shift()!();
    await b;
    await sleep(10);
    gates.shift()!();
    await d;
    assert.deepEqual(events, ["start p1", "end p1", "start p2", "end p2", "start final1", "end final1"]);
  });
});

describe("CountersWriter", () => {
  const sink = (name: string, writeCounters?: Sink["writeCounters"]): Sink => ({
    name,
    write: async (_b: EncodedBatch) => {},
    flush: async () => {},
    close: async () => {},
    ...(writeCounters ? { writeCounters } : {}),
  });

  it("contains synchronous throws and rejections, reporting each, and waits for writes in flight", async () => {
    const written: number[] = [];
    const failures: Array<[string, string, number]> = [];
    let release: () => void = () => {};
    const w = new CountersWriter(
      [
        sink("sync-throw", () => {
          throw new Error("sync boom");
        }),
        sink("rejects", () => Promise.reject(new Error("async boom"))),
        sink("no-counters"),
        sink(
          "slow",
          (r) =>
            new Promise<void>((res) => {
              release = () => {
                written.push(r.length);
                res();
              };
            }),
        ),
      ],
      (name, err, records) => failures.push([name, (err as Error).message, records]),
    );
    const records = [{}, {}] as unknown as InterfaceCounters[];
    assert.doesNotThrow(() => w.write(records));
    let settled = false;
    const s = w.settled().then(() => {
      settled = true;
    });
    await sleep(10);
    assert.deepEqual(failures.sort(), [
      ["rejects", "async boom", 2],
      ["sync-throw", "sync boom", 2],
    ]);
    assert.equal(settled, false);
    release();
    await s;
    assert.deepEqual(written, [2]);
  });
});

describe("startCollector in-process", () => {
  it("asks 32 MiB by default, warns once with the remedy when the kernel grants less, shows the grant", async () => {
    const warnings: Array<Record<string, unknown>> = [];
    const logger = pino(
      { level: "warn" },
      {
        write: (line: string) => {
          warnings.push(JSON.parse(line) as Record<string, unknown>);
        },
      },
    );
    const cfg = loadConfig(
      [...loopbackArgs(), "--workers", "1", "--data-dir", join(dir, "data-rcvbuf"), "--output", "jsonl:-"],
      {},
    );
    assert.equal(cfg.udpRcvbuf, 32 * 1024 * 1024);
    const c = await startCollector(cfg, { logger });
    try {
      const granted = c.listeners[0]!.receiveBufferBytes;
      assert.ok(granted > 0);
      const health = (await (await fetch(`http://127.0.0.1:${c.httpPort}/health`)).json()) as {
        listeners: Array<{ receive_buffer_bytes: number; requested_buffer_bytes: number }>;
      };
      assert.equal(health.listeners[0]!.receive_buffer_bytes, granted);
      assert.equal(health.listeners[0]!.requested_buffer_bytes, 32 * 1024 * 1024);
      const metrics = (await (await fetch(`http://127.0.0.1:${c.httpPort}/metrics`)).json()) as {
        udp_receive_buffer_bytes: Record<string, number>;
      };
      assert.equal(metrics.udp_receive_buffer_bytes[c.listeners[0]!.name], granted);
      const capped = warnings.filter((w) => String(w.msg).includes("UDP receive buffer smaller than asked"));
      // Linux reports twice what it accepted: short of 64 MiB means net.core.rmem_max capped the request.
      if (granted < 2 * 32 * 1024 * 1024) {
        assert.equal(capped.length, 1, JSON.stringify(warnings)); // one warning for every listener
        assert.equal(capped[0]!.granted, granted);
        assert.equal(capped[0]!.remedy, "sysctl -w net.core.rmem_max=33554432");
        assert.match(String(capped[0]!.msg), new RegExp(`granted ${granted} bytes`));
        assert.match(String(capped[0]!.msg), /sysctl -w net\.core\.rmem_max=33554432/);
        assert.deepEqual((capped[0]!.listeners as string[]).length, 3);
      } else {
        assert.equal(capped.length, 0);
      }
    } finally {
      await c.stop();
    }
  });

  it("keeps the kernel default with --udp-rcvbuf 0, without a warning", async () => {
    const warnings: string[] = [];
    const logger = pino({ level: "warn" }, { write: (line: string) => void warnings.push(line) });
    const cfg = loadConfig(
      [
        ...loopbackArgs(),
        "--workers",
        "1",
        "--udp-rcvbuf",
        "0",
        "--data-dir",
        join(dir, "data-rcvbuf0"),
        "--output",
        "jsonl:-",
      ],
      {},
    );
    const c = await startCollector(cfg, { logger });
    try {
      assert.equal(c.listeners[0]!.requestedBufferBytes, 0);
      assert.ok(!warnings.some((w) => w.includes("receive buffer")), warnings.join("\n"));
    } finally {
      await c.stop();
    }
  });

  it("decodes NetFlow v9, serves /templates, and restores templates after a restart", async () => {
    const out = join(dir, "v9.jsonl");
    const argv = [
      ...loopbackArgs(),
      "--workers",
      "2",
      "--batch-interval",
      "600",
      "--data-dir",
      join(dir, "data"),
      "--output",
      `jsonl:${out}`,
    ];
    const client = createSocket("udp4");
    await new Promise<void>((r) => client.bind(0, "127.0.0.1", () => r()));
    try {
      const c1 = await startCollector(loadConfig(argv, {}), { logger: log });
      try {
        await send(client, netflowV9(1, true, [1, 2, 3]), c1.listeners[0]!.port);
        let templates: { count: number; templates: Array<Record<string, unknown>> } = {
          count: 0,
          templates: [],
        };
        for (let i = 0; i < 100 && templates.count === 0; i++) {
          await sleep(50);
          templates = (await (
            await fetch(`http://127.0.0.1:${c1.httpPort}/templates`)
          ).json()) as typeof templates;
        }
        assert.equal(templates.count, 1);
        const t = templates.templates[0]!;
        assert.equal(t.exporter, "127.0.0.1");
        assert.equal(t.version, "netflow9");
        assert.equal(t.domain, 7);
        assert.equal(t.template_id, 256);
        assert.equal((t.fields as unknown[]).length, 7);
        assert.ok(typeof t.learned === "string" && typeof t.last_used === "string");
      } finally {
        await c1.stop();
      }
      assert.deepEqual(
        lines(out).map((r) => r.src_port),
        [1, 2, 3],
      );
      const state = JSON.parse(readFileSync(join(dir, "data", STATE_FILE), "utf8")) as { states: unknown[] };
      assert.equal(state.states.length, 2);

      // Restart: data without a template decodes at once from the same exporter session.
      const c2 = await startCollector(loadConfig(argv, {}), { logger: log });
      try {
        await send(client, netflowV9(2, false, [4, 5]), c2.listeners[0]!.port);
        let received = 0;
        for (let i = 0; i < 100 && received < 2; i++) {
          await sleep(50);
          const m = (await (await fetch(`http://127.0.0.1:${c2.httpPort}/metrics`)).json()) as {
            total_received: number;
          };
          received = m.total_received;
        }
        assert.equal(received, 2);
      } finally {
        await c2.stop();
      }
      assert.deepEqual(
        lines(out).map((r) => r.src_port),
        [1, 2, 3, 4, 5],
      );
    } finally {
      client.close();
    }
  });
});

describe("stop with a hanging HTTP backend", () => {
  it("saves the template state before draining the sinks, and drains the HTTP sink once", async () => {
    // A backend that takes requests and never answers.
    const held: Array<() => void> = [];
    const backend = createServer((_req, res) => held.push(() => res.destroy()));
    await new Promise<void>((r) => backend.listen(0, "127.0.0.1", () => r()));
    const bport = (backend.address() as { port: number }).port;
    const data = join(dir, "data-hang");
    const cfg = loadConfig(
      [
        ...loopbackArgs(),
        "--workers",
        "1",
        "--data-dir",
        data,
        "--output",
        `flows-v1+http://127.0.0.1:${bport}/v1/ingest`,
      ],
      { CLARION_COLLECTOR_INGEST_TOKEN: "k" },
    );
    const FLUSH_MS = 3000;
    cfg.outputs[0]!.options = { ...cfg.outputs[0]!.options, flushTimeoutMs: FLUSH_MS, timeoutMs: 60_000 };
    const client = createSocket("udp4");
    await new Promise<void>((r) => client.bind(0, "127.0.0.1", () => r()));
    const c = await startCollector(cfg, { logger: log });
    try {
      await send(client, netflowV9(1, true, [1, 2]), c.listeners[0]!.port);
      // flows-v1 flushes within a second; the request then hangs at the backend.
      for (let i = 0; i < 100 && held.length === 0; i++) await sleep(50);
      assert.ok(held.length > 0, "the backend got a request");
      const statePath = join(data, STATE_FILE);
      assert.equal(existsSync(statePath), false);
      const t0 = Date.now();
      let stopped = false;
      const stopping = c.stop().then(() => {
        stopped = true;
      });
      for (let i = 0; i < 100 && !existsSync(statePath); i++) await sleep(20);
      assert.ok(existsSync(statePath), "state file written");
      assert.equal(stopped, false, "the state was saved while the sink was still draining");
      await stopping;
      // One drain (flushTimeoutMs) plus the delivery stop (≤ 2 s): ~5 s; two drains took ~8 s.
      const took = Date.now() - t0;
      assert.ok(took < 2 * FLUSH_MS + 500, `stop took ${took} ms`);
      const st = JSON.parse(readFileSync(statePath, "utf8")) as { states: unknown[] };
      assert.equal(st.states.length, 1);
    } finally {
      client.close();
      await c.stop();
      for (const h of held) h();
      backend.closeAllConnections();
      await new Promise<void>((r) => backend.close(() => r()));
    }
  });
});
