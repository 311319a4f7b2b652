/**
 * --decode-threads (issue 17, src/inputs/spread.ts): one receive worker handing its datagrams to decode
 * threads gives the same flows and the same counters as decoding itself. The same traffic (NetFlow v5,
 * v9 and IPFIX with templates mid-stream, data before its template, options data for sampling, sFlow) goes
 * through --decode-threads 0 and 3; the JSON lines (time of receipt aside) are the same multiset and the
 * counters agree, with no sequence gap. A real gap is counted once; a full ring's drops are counted under
 * their loss reason in /metrics, /health, Prometheus and the log.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  type FieldSpec,
  ipfixOptionsTemplate,
  ipfixPacket,
  ipfixTemplate,
  record,
  set,
  v9OptionsTemplate,
  v9Packet,
  v9Template,
} from "../helpers/netflow-builder.ts";
import {
  dirs,
  getJson,
  loopbackArgs,
  netflowV5,
  type Service,
  send,
  startService,
  udpClient,
  waitFor,
} from "../helpers/service.ts";
import { datagram, flowSample, sampledIPv4 } from "../helpers/sflow-builder.ts";

const FLOW: FieldSpec[] = [
  [8, 4],
  [12, 4],
  [1, 4],
  [2, 4],
];
const FLOW2: FieldSpec[] = [
  [8, 4],
  [12, 4],
  [7, 2],
  [11, 2],
  [1, 4],
];
const V9_SCOPE: FieldSpec[] = [[1, 4]];
const V9_OPT: FieldSpec[] = [
  [34, 4],
  [35, 1],
];
const IPFIX_SCOPE: FieldSpec[] = [[149, 4]];
const IPFIX_OPT: FieldSpec[] = [[34, 4]];

interface Stream {
  /** Which listener: 0 NetFlow (v5, v9), 1 IPFIX, 2 sFlow. */
  listener: number;
  datagrams: Buffer[];
}

const flows = (fields: FieldSpec[], n: number, base: number): number[] =>
  Array.from({ length: n }, (_, i) =>
    record(
      fields,
      fields.length === 4
        ? [`10.1.${base % 250}.${i + 1}`, "10.2.0.1", 1000 + base * 10 + i, 3]
        : [`10.3.${base % 250}.${i + 1}`, "10.4.0.1", 1000 + i, 443, 2000 + base],
    ),
  ).flat();

/** v5, 12 datagrams of 5 flows, flow_sequence in step. */
function v5Stream(): Stream {
  return { listener: 0, datagrams: Array.from({ length: 12 }, (_, i) => netflowV5(i * 5, i * 5, 5)) };
}

/** v9 source id 1: templates and options template, options data (rate 100), data with a template refresh. */
function v9Stream(): Stream {
  const dg: Buffer[] = [];
  let seq = 1;
  const p = (sets: number[][]) => v9Packet(sets, { sourceId: 1, sequence: seq++ });
  dg.push(p([set(0, v9Template(256, FLOW)), set(1, v9OptionsTemplate(300, V9_SCOPE, V9_OPT))]));
  for (let i = 0; i < 3; i++) dg.push(p([set(256, flows(FLOW, 4, i))])); // before the rate
  dg.push(p([set(300, record([...V9_SCOPE, ...V9_OPT], [0, 100, 2]))]));
  for (let i = 3; i < 12; i++) {
    if (i === 7) dg.push(p([set(0, v9Template(256, FLOW)), set(256, flows(FLOW, 4, i))]));
    else dg.push(p([set(256, flows(FLOW, 4, i))]));
  }
  return { listener: 0, datagrams: dg };
}

/**
 * IPFIX domain 7: data before its template (held, then released), the template, data, an options template
 * and its data (rate 50), a second template mid-stream and data of both.
 */
function ipfixStream(gapAfter = -1): Stream {
  const dg: Buffer[] = [];
  let seq = 0;
  const p = (sets: number[][], records: number) => {
    const b = ipfixPacket(sets, { domain: 7, sequence: seq });
    seq += records;
    if (dg.length === gapAfter) seq += 5; // 5 records "lost" on the way
    return b;
  };
  dg.push(p([set(256, flows(FLOW, 3, 100))], 3));
  dg.push(p([set(2, ipfixTemplate(256, FLOW))], 0));
  for (let i = 0; i < 4; i++) dg.push(p([set(256, flows(FLOW, 4, 101 + i))], 4));
  dg.push(
    p(
      [
        set(3, ipfixOptionsTemplate(300, IPFIX_SCOPE, IPFIX_OPT)),
        set(300, record([...IPFIX_SCOPE, ...IPFIX_OPT], [7, 50])),
      ],
      1,
    ),
  );
  for (let i = 0; i < 4; i++) dg.push(p([set(256, flows(FLOW, 4, 110 + i))], 4));
  dg.push(p([set(2, ipfixTemplate(257, FLOW2)), set(257, flows(FLOW2, 2, 120))], 2));
  for (let i = 0; i < 6; i++)
    dg.push(p([set(i % 2 ? 257 : 256, flows(i % 2 ? FLOW2 : FLOW, 3, 130 + i))], 3));
  return { listener: 1, datagrams: dg };
}

/** Flows in ipfixStream(): 3 held, 8 × 4, 2, 6 × 3 (and one options record, not a flow). */
const IPFIX_FLOWS = 3 + 8 * 4 + 2 + 6 * 3;

/** sFlow: 8 datagrams of 2 flow samples, both sequences in step. */
function sflowStream(): Stream {
  const dg: Buffer[] = [];
  for (let i = 0; i < 8; i++) {
    const samples = [0, 1].map((j) =>
      flowSample({
        sequence: i * 2 + j + 1,
        rate: 256,
        input: 3,
        output: 4,
        records: [
          sampledIPv4({
            length: 100 + j,
            protocol: 6,
            src: `10.9.${i}.${j}`,
            dst: "10.9.9.9",
            srcPort: 1000 + i,
          }),
        ],
      }),
    );
    dg.push(datagram({ agent: "192.0.2.9", sequence: i + 1, samples }));
  }
  return { listener: 2, datagrams: dg };
}

/** Sends each stream from its own socket, the streams interleaved, in order within each. */
async function play(svc: Service, streams: Stream[]): Promise<number> {
  const socks = await Promise.all(streams.map(() => udpClient("udp4", "127.0.0.1")));
  let sent = 0;
  try {
    const longest = Math.max(...streams.map((s) => s.datagrams.length));
    for (let i = 0; i < longest; i++) {
      for (let k = 0; k < streams.length; k++) {
        const b = streams[k]!.datagrams[i];
        if (b === undefined) continue;
        await send(socks[k]!, b, svc.udpPorts[streams[k]!.listener]!, "127.0.0.1");
        sent++;
      }
    }
  } finally {
    for (const s of socks) s.close();
  }
  return sent;
}

interface Metrics {
  total_received: number;
  datagrams_received: number;
  decode_errors: number;
  held_sets: number;
  dropped_by_reason: Record<string, number>;
}

/** Runs `streams` through a collector and waits for `flows` flows counted and written. */
async function run(
  threads: number,
  streams: Stream[],
  flows: number,
  env: Record<string, string> = {},
  workers = 1,
) {
  const dir = mkdtempSync(join(tmpdir(), "clarion-decode-threads-"));
  dirs.push(dir);
  const out = join(dir, "f.jsonl");
  const svc = await startService(
    loopbackArgs(
      "--workers",
      String(workers),
      "--decode-threads",
      String(threads),
      "--batch-interval",
      "0.2",
      "--data-dir",
      join(dir, "data"),
      "--output",
      `jsonl:${out}`,
    ),
    { env },
  );
  const sent = await play(svc, streams);
  let m: Metrics | undefined;
  await waitFor(
    `${sent} datagrams counted and every flow written`,
    async () => {
      m = (await getJson(svc.httpPort, "/metrics")).body as unknown as Metrics;
      if (m.datagrams_received < sent || m.total_received < flows) return false;
      const lines = readFileSync(out, "utf8").split("\n").filter(Boolean).length;
      return lines === m.total_received && m.held_sets === 0;
    },
    30_000,
  );
  const lines = readFileSync(out, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const o = JSON.parse(l) as Record<string, unknown>;
      delete o.time_received_ns;
      if (o.type === "SFLOW_5") {
        // sFlow flows are timed at receipt
        delete o.time_flow_start_ns;
        delete o.time_flow_end_ns;
      }
      return JSON.stringify(o);
    })
    .sort();
  return { svc, m: m!, lines, dir };
}

const allStreams = (): Stream[] => [v5Stream(), v9Stream(), ipfixStream(), sflowStream()];

describe("--decode-threads", () => {
  it("gives the same flows and counters as decoding in the receive worker", async () => {
    const streams = allStreams();
    const expected = 12 * 5 + 12 * 4 + IPFIX_FLOWS + 16;
    const off = await run(0, streams, expected);
    const on = await run(3, streams, expected);
    off.svc.proc.kill("SIGTERM");
    on.svc.proc.kill("SIGTERM");
    assert.equal(off.m.total_received, expected, "every flow decoded without decode threads");
    assert.equal(on.m.total_received, expected, "every flow decoded with decode threads");
    assert.equal(on.lines.length, off.lines.length);
    const extra = on.lines.filter((l, i) => l !== off.lines[i]);
    assert.deepEqual(extra.slice(0, 3), [], "the same JSON lines (sorted)");
    for (const key of ["total_received", "datagrams_received", "decode_errors", "held_sets"] as const)
      assert.equal(on.m[key], off.m[key], key);
    assert.deepEqual(on.m.dropped_by_reason, { ...off.m.dropped_by_reason, decode_ring_full_datagrams: 0 });
    for (const [reason, n] of Object.entries(on.m.dropped_by_reason)) assert.equal(n, 0, reason);
    // options data reached every decode thread: every flow after it has the rate
    const rated = (rate: number) => on.lines.filter((l) => l.includes(`"sampling_rate":${rate},`)).length;
    assert.equal(rated(100), 9 * 4, "v9 flows after the options data: rate 100");
    assert.equal(rated(50), 4 * 4 + 2 + 6 * 3, "IPFIX flows after the options data: rate 50");
    assert.equal(on.lines.filter((l) => l.includes('"sequence_num":0,') && l.includes("IPFIX")).length, 3);
  });

  it("decodes data with a template another decode thread got, and counts a real gap once", async () => {
    const { svc, m, dir } = await run(3, [ipfixStream(4)], IPFIX_FLOWS);
    // the receive worker answers for its decode threads: templates, and the state saved at shutdown
    const t = (await getJson(svc.httpPort, "/templates")).body as { count: number };
    assert.equal(t.count, 3, "templates 256, 257 and options template 300");
    svc.proc.kill("SIGTERM");
    assert.equal(await svc.exited, 0, "a clean shutdown");
    const saved = JSON.parse(readFileSync(join(dir, "data", "templates.json"), "utf8")) as {
      states: { templates: unknown[] }[];
    };
    assert.equal(saved.states.length, 1, "one state per receive worker");
    assert.equal(saved.states[0]!.templates.length, 3);
    assert.equal(m.total_received, IPFIX_FLOWS);
    assert.equal(m.dropped_by_reason.missing_template_sets, 0);
    assert.equal(m.dropped_by_reason.sequence_gap_flows, 5, "the 5 records skipped, once");
    assert.equal(m.dropped_by_reason.decode_ring_full_datagrams, 0);
  });

  it("works with several receive workers, each with its decode threads", async () => {
    const expected = 12 * 5 + 12 * 4 + IPFIX_FLOWS + 16;
    const { svc, m, lines } = await run(2, allStreams(), expected, {}, 2);
    svc.proc.kill("SIGTERM");
    assert.equal(await svc.exited, 0);
    assert.equal(m.total_received, expected);
    assert.equal(lines.length, expected);
    assert.equal(new Set(lines).size, lines.length, "no flow twice");
    for (const [reason, n] of Object.entries(m.dropped_by_reason)) assert.equal(n, 0, reason);
  });

  it("counts datagrams a full ring refuses under decode_ring_full", async () => {
    // a 1 KiB ring: a v5 datagram of 22 flows (1080 bytes) never fits; one of 2 flows always does
    const big = Array.from({ length: 7 }, (_, i) => netflowV5(i * 22, i * 22, 22));
    const { svc, m } = await run(2, [{ listener: 0, datagrams: [...big, netflowV5(7 * 22, 0, 2)] }], 2, {
      CLARION_COLLECTOR_DECODE_RING_BYTES: "1024",
    });
    assert.equal(m.dropped_by_reason.decode_ring_full_datagrams, 7);
    assert.equal(m.total_received, 2);
    assert.equal(m.datagrams_received, 8, "received (then dropped) datagrams are counted as received");
    await waitFor("/health degraded with the reason", async () => {
      const h = (await getJson(svc.httpPort, "/health")).body;
      return JSON.stringify(h).includes("decode_ring_full");
    });
    const prom = await (await fetch(`http://127.0.0.1:${svc.httpPort}/metrics?format=prometheus`)).text();
    assert.match(prom, /clarion_collector_loss_total\{reason="decode_ring_full"\} 7/);
    await waitFor("the loss log line", async () =>
      svc.stderr.some((l) => l.includes('"reason":"decode_ring_full"') && l.includes('"lost":7')),
    );
    svc.proc.kill("SIGTERM");
  });
});
